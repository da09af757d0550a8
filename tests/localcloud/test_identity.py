"""The local cloud's process identity: leftover state files, concurrent ``up``, orphaned folders.

A pid read from a file is trusted only while its start time and command line are the server's; the
processes standing in for "another process that got the pid" are real ones started here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbcore.localcloud import owner
from hbcore.localcloud.owner import (
    ENDPOINTS_PREFIX,
    REPOSITORY_ROOT,
    WORKDIR_OWNER_FILE,
    WORKDIR_PREFIX,
    detached_status,
    is_our_server,
    process_start,
    reclaim_orphans,
    stop_detached,
)
from hbcore.localcloud.sagemaker_runtime import EndpointServer

SLEEP_S = 120


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def spawn() -> Iterator:
    """Start sleeping processes (optionally with extra argv) and end them after the test."""
    started: list[subprocess.Popen] = []

    def start(*argv: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({SLEEP_S})", *argv])
        started.append(process)
        deadline = time.monotonic() + 5
        while _command(process.pid)[-len(argv) or None:] != list(argv) and time.monotonic() < deadline:
            time.sleep(0.01)  # until exec has replaced the forked child's command line
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def _command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def _leftover(cache: Path, state: dict) -> Path:
    path = (cache / owner.DETACHED_STATE_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"moto_url": "http://127.0.0.1:9", "sagemaker_runtime_url": "http://127.0.0.1:9",
                                **state}))
    return path


LEFTOVERS = {
    "another program, its true start time": lambda p, f: {"pid": p.pid, "process_start": process_start(p.pid)},
    "another program, a wrong start time": lambda p, f: {"pid": p.pid, "process_start": "1"},
    "another program, no start time (an old file)": lambda p, f: {"pid": p.pid},
    "a look-alike server started later": lambda p, f: {"pid": p.pid, "process_start": "1", "_argv": True},
    "a server of another state file": lambda p, f: {"pid": p.pid, "process_start": process_start(p.pid),
                                                    "_argv": "other"},
}


def _sleeper_for(spawn, case: str, state_file: Path) -> subprocess.Popen:
    argv = {"a look-alike server started later": ["cloud", "serve", "--state-file", str(state_file)],
            "a server of another state file": ["cloud", "serve", "--state-file", "/elsewhere/localcloud.json"]}
    return spawn(*argv.get(case, []))


@pytest.mark.parametrize("case", sorted(LEFTOVERS))
def test_status_does_not_report_a_pid_that_is_not_our_server(cache: Path, spawn, case: str) -> None:
    path = (cache / owner.DETACHED_STATE_FILE).resolve()
    sleeper = _sleeper_for(spawn, case, path)
    _leftover(cache, {k: v for k, v in LEFTOVERS[case](sleeper, path).items() if not k.startswith("_")})
    report = detached_status()
    assert report["running"] is False
    assert f"its pid {sleeper.pid} is no longer the local cloud" in report["note"]
    assert not path.exists()


@pytest.mark.parametrize("case", sorted(LEFTOVERS))
def test_down_never_signals_a_pid_that_is_not_our_server(cache: Path, spawn, case: str) -> None:
    path = (cache / owner.DETACHED_STATE_FILE).resolve()
    sleeper = _sleeper_for(spawn, case, path)
    _leftover(cache, {k: v for k, v in LEFTOVERS[case](sleeper, path).items() if not k.startswith("_")})
    assert stop_detached() is None
    time.sleep(0.1)
    assert sleeper.poll() is None  # still alive: no SIGTERM, no SIGKILL
    assert not path.exists()


def test_the_same_process_with_the_recorded_identity_is_ours(tmp_path: Path, spawn) -> None:
    state_file = tmp_path / "state.json"
    server = spawn("cloud", "serve", "--state-file", str(state_file))
    assert is_our_server({"pid": server.pid, "process_start": process_start(server.pid)}, state_file)


@given(pid=st.one_of(st.integers(max_value=0), st.integers(min_value=4_194_305, max_value=2**40), st.text(),
                     st.none(), st.floats()),
       start=st.one_of(st.none(), st.text(max_size=12)))
def test_junk_pids_are_never_ours(pid, start) -> None:
    assert is_our_server({"pid": pid, "process_start": start}, Path("/tmp/localcloud.json")) is False


def test_a_zombie_has_no_start_time() -> None:
    process = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while process_start(process.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_start(process.pid) is None  # exited, not yet reaped: a pid that must not count as alive
    process.wait()


# --- folders left by killed owners --------------------------------------------------------------

def _workdir(root: Path, owner_state: dict | None, child_state: dict | None = None,
             prefix: str = WORKDIR_PREFIX) -> Path:
    folder = root / f"{prefix}{len(list(root.iterdir()))}"
    folder.mkdir()
    if owner_state is not None:
        (folder / WORKDIR_OWNER_FILE).write_text(json.dumps({"started_at": 1_764_650_000, **owner_state}))
    if child_state is not None:
        (folder / "state.json").write_text(json.dumps(child_state))
    return folder


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_folders_of_dead_owners_are_removed_with_a_warning(tmp_path: Path, spawn, caplog) -> None:
    sleeper = spawn()
    dead = [_workdir(tmp_path, {"pid": _dead_pid(), "process_start": "123"}),
            _workdir(tmp_path, {"pid": sleeper.pid, "process_start": "1"}),  # pid reused by another process
            _workdir(tmp_path, {"pid": _dead_pid(), "process_start": None}),
            _workdir(tmp_path, {"pid": _dead_pid(), "process_start": "77"}, prefix=ENDPOINTS_PREFIX)]
    alive = [_workdir(tmp_path, {"pid": os.getpid(), "process_start": process_start(os.getpid())}),
             _workdir(tmp_path, None)]  # no owner file: being set up, or not ours
    with caplog.at_level(logging.WARNING, logger=owner.__name__):
        assert reclaim_orphans(tmp_path) == sorted(dead)
    assert [folder.exists() for folder in dead + alive] == [False] * len(dead) + [True] * len(alive)
    for folder in dead:
        assert f"removed {folder}, left by an interrupted local cloud run" in caplog.text
    assert sleeper.poll() is None


def test_the_endpoint_servers_folder_names_its_owner_and_goes_with_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(owner.tempfile, "tempdir", str(tmp_path))
    with EndpointServer(store=None) as server:  # no request is made, so no store is asked
        (folder,) = tmp_path.glob(ENDPOINTS_PREFIX + "*")
        recorded = json.loads((folder / WORKDIR_OWNER_FILE).read_text())
        assert (recorded["pid"], recorded["process_start"]) == (os.getpid(), process_start(os.getpid()))
        assert reclaim_orphans(tmp_path) == []  # its owner (this process) is alive
    assert server is not None and not folder.exists()


def test_the_orphaned_child_of_a_dead_owner_is_stopped(tmp_path: Path, spawn) -> None:
    folder = tmp_path / f"{WORKDIR_PREFIX}x"
    folder.mkdir()
    child = spawn("cloud", "serve", "--state-file", str(folder / "state.json"))
    bystander = spawn("cloud", "serve", "--state-file", "/elsewhere/state.json")
    (folder / WORKDIR_OWNER_FILE).write_text(json.dumps({"pid": _dead_pid(), "process_start": "9"}))
    (folder / "state.json").write_text(json.dumps({"pid": child.pid, "process_start": process_start(child.pid)}))
    assert reclaim_orphans(tmp_path) == [folder]
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert bystander.poll() is None


# --- real clouds ----------------------------------------------------------------------------------

def _serving(state_file: Path) -> list[int]:
    """Pids of every live ``cloud serve`` naming ``state_file``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = _command(int(entry.name))
            if "serve" in command and str(state_file) in command and process_start(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def test_two_ups_at_once_start_one_cloud_and_down_stops_it(tmp_path: Path) -> None:
    env = {**os.environ, "HB_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "hbcore", "cloud"]
    ups = [subprocess.Popen([*command, "up"], cwd=REPOSITORY_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outputs = [up.communicate(timeout=120) for up in ups]
        assert sorted(up.returncode for up in ups) == [0, 1], outputs
        assert sum("already running" in out for out, _ in outputs) == 1
        assert len(_serving((tmp_path / owner.DETACHED_STATE_FILE).resolve())) == 1
    finally:
        down = subprocess.run([*command, "down"], cwd=REPOSITORY_ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
    assert "stopped" in down.stdout
    assert _serving((tmp_path / owner.DETACHED_STATE_FILE).resolve()) == []


def test_a_killed_owners_folder_and_child_are_reclaimed_by_the_next_run(caplog) -> None:
    killed = subprocess.Popen(
        [sys.executable, "-c", ("import time; from hbcore.localcloud.owner import LocalCloud; "
                                "c = LocalCloud().start(); print(c.pid, c._workdir, flush=True); time.sleep(600)")],
        cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, text=True)
    child_pid, folder = killed.stdout.readline().split()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    with caplog.at_level(logging.WARNING, logger=owner.__name__):
        assert Path(folder) in reclaim_orphans()
    assert not Path(folder).exists()
    # a child that saw its owner die may be ending on its own (its state file already gone): bounded wait
    deadline = time.monotonic() + owner.STOP_TIMEOUT_S
    while process_start(int(child_pid)) is not None and time.monotonic() < deadline:
        time.sleep(owner.POLL_S)
    assert process_start(int(child_pid)) is None
    assert f"removed {folder}, left by an interrupted local cloud run (owner pid {killed.pid}" in caplog.text
