"""The owner of the local cloud's process, and the detached cloud of ``python -m hbcore cloud up|down|status``.

``LocalCloud`` starts ``python -m hbcore cloud serve`` as a child on free loopback ports, waits
until it reports itself healthy (its state file), and hands out a ``Backend`` pointing boto3 at it.
The child watches its owner's pid and exits when the owner dies, so a crashed app or test run
leaves nothing behind. A separate process keeps moto, the poller and the endpoint server off the
app's interpreter (the two cores are shared, and Streamlit reruns don't disturb the pipeline).

``cloud up`` starts a detached one (owner: nobody, :func:`start_detached`) and records it in
``<cache>/localcloud.json`` so that ``down`` and ``status`` (:func:`stop_detached`,
:func:`detached_status`) find it from any shell.

A pid alone names no process for long: pids are reused. A state file's pid is trusted (reported,
signalled) only while that pid's kernel start time is the one the server recorded and its command
line is ``cloud serve`` with that state file (:func:`is_our_server`). ``up`` and ``down`` hold an
``flock`` on ``<cache>/localcloud.lock``, so two ``up`` at once start one cloud, not two. An owner
killed outright leaves its ``hb-localcloud-*`` folder behind (and maybe its child for half a second):
the next :meth:`LocalCloud.start` removes what such dead owners left and says so in a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hbcore.aws.backend import Backend
from hbcore.errors import HbError
from hbcore.paths import cache_dir

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
STDERR_TAIL_LINES = 30
STATUS_TIMEOUT_S = 5.0
DETACHED_STATE_FILE = "localcloud.json"
DETACHED_LOG_FILE = "localcloud.log"
DETACHED_LOCK_FILE = "localcloud.lock"
WORKDIR_PREFIX = "hb-localcloud-"  # an owner's folder: the child's state file and log
ENDPOINTS_PREFIX = "hb-endpoints-"  # a child's folder: the extracted models
WORKDIR_OWNER_FILE = "owner.json"
_log = logging.getLogger(__name__)


class LocalCloudError(HbError, RuntimeError):
    """The local cloud could not be started: its process died or never became healthy.

    From the owner, the first line names the child's log and the rest is the log's tail. A
    ``RuntimeError`` too, as it was before it had a name, so existing callers keep catching it.
    """



def process_start(pid: int) -> str | None:
    """The kernel's start time of a live ``pid`` (clock ticks since boot), None if it is gone or a zombie.

    (pid, start time) names one process for ever, where a pid is handed out again after its exit.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rpartition(")")[2].split()  # the command name in parentheses may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of proc_pid_stat(5), counting from the pid


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def is_our_server(state: dict[str, Any], state_file: Path) -> bool:
    """Whether ``state``'s pid is still the ``cloud serve`` process that wrote ``state_file``.

    Its start time must be the recorded one and its command line must name that state file: a
    leftover file whose pid now belongs to another process (or another cloud) is not ours to report
    as running, nor to signal.
    """
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    recorded = state.get("process_start")
    if recorded is None or process_start(pid) != recorded:
        return False
    command = _command_line(pid)
    serving = any(command[i:i + 2] == ["cloud", "serve"] for i in range(len(command)))
    named = any(command[i:i + 2] == ["--state-file", str(state_file)] for i in range(len(command)))
    return serving and named


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _serve_command(port: int, runtime_port: int, state_file: Path, parent_pid: int,
                   retention_s: float | None, log_retention_s: float | None = None) -> list[str]:
    command = [sys.executable, "-m", "hbcore", "cloud", "serve", "--port", str(port),
               "--runtime-port", str(runtime_port), "--state-file", str(state_file), "--parent-pid", str(parent_pid)]
    if retention_s is not None:
        command += ["--retention-s", str(retention_s)]
    if log_retention_s is not None:
        command += ["--log-retention-s", str(log_retention_s)]
    return command


def _child_environment() -> dict[str, str]:
    """The caller's environment minus endpoint overrides (the child sets its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _wait_for_state(process: subprocess.Popen, state_file: Path, log_file: Path, timeout_s: float) -> dict[str, Any]:
    """The child's state once it is healthy; LocalCloudError naming its log, with the log's tail, otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalCloudError(f"the local cloud exited with code {process.returncode} while starting "
                                  f"(log: {log_file}):\n{_tail(log_file)}")
        if state_file.exists():
            try:
                return json.loads(state_file.read_text())
            except ValueError:
                pass  # written atomically, but a reader may still race the rename on some filesystems
        time.sleep(POLL_S)
    _terminate(process.pid, process)
    raise LocalCloudError(f"the local cloud did not become healthy within {timeout_s:.0f} s "
                          f"(log: {log_file}):\n{_tail(log_file)}")


def _terminate(pid: int, process: subprocess.Popen | None = None,
               still_ours: Callable[[], bool] | None = None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S.

    A ``process`` of ours cannot change identity (its pid is not reused before we reap it); a pid
    known only from a file is signalled only while ``still_ours()`` says it is the same process.
    """
    def gone() -> bool:
        if process is not None:
            return process.poll() is not None
        return still_ours is None or not still_ours()

    if gone():
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if gone():
            return
        time.sleep(POLL_S)
    if gone():
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(timeout=STOP_TIMEOUT_S)


def fetch_status(moto_url: str) -> dict[str, Any]:
    """The running cloud's ``/_hb/status`` (memory, Kinesis, mappings, endpoints)."""
    with urllib.request.urlopen(moto_url + "/_hb/status", timeout=STATUS_TIMEOUT_S) as response:
        return json.loads(response.read())


def _report(state: dict[str, Any] | None) -> dict[str, Any]:
    """Running or not, the URLs, and the child's own report when it answers (its silence is reported, not raised)."""
    if state is None:
        return {"running": False}
    report = {"running": True, **state}
    try:
        report.update(fetch_status(state["moto_url"]))
    except OSError as error:
        report["error"] = f"no answer from {state['moto_url']}: {error}"
    return report


class LocalCloud:
    """Owner of one local cloud child process; a context manager.

    Ports default to free ones; after the first start they are kept, so ``restart()`` brings the
    cloud back at the same URLs (clients keep working; moto's state starts empty).
    """

    def __init__(self, port: int = 0, runtime_port: int = 0, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 retention_s: float | None = None, log_retention_s: float | None = None) -> None:
        self.port = port
        self.runtime_port = runtime_port
        self.startup_timeout_s = startup_timeout_s
        self.retention_s = retention_s
        self.log_retention_s = log_retention_s
        self.state: dict[str, Any] | None = None
        self._process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._backend: Backend | None = None
        self.reclaimed: list[Path] = []  # folders of interrupted runs removed by the last start

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def launch(self) -> LocalCloud:
        """Start the child (if not running) without waiting for it: :meth:`start` then waits.

        The child's start-up (~1 s of imports) can so run while the caller does its own.
        """
        if self.running:
            return self
        self.stop()  # a child that died (or was killed) leaves its working folder behind
        self.reclaimed = reclaim_orphans()
        self._workdir = claim_folder(WORKDIR_PREFIX)
        with open(self._workdir / "cloud.log", "wb") as log:
            self._process = subprocess.Popen(
                _serve_command(self.port, self.runtime_port, self._workdir / "state.json", os.getpid(),
                               self.retention_s, self.log_retention_s),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=REPOSITORY_ROOT, env=_child_environment())
        self.state = None
        return self

    def start(self) -> LocalCloud:
        """Start the child (if not running, or take the one :meth:`launch` started) and wait until it is healthy."""
        if self.running and self.state is not None:
            return self
        self.launch()
        assert self._process is not None and self._workdir is not None  # launch made both
        self.state = _wait_for_state(self._process, self._workdir / "state.json", self._workdir / "cloud.log",
                                     self.startup_timeout_s)
        self._backend = None
        self.port = int(self.state["moto_url"].rsplit(":", 1)[1])
        self.runtime_port = int(self.state["sagemaker_runtime_url"].rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its working folder."""
        if self._process is not None:
            _terminate(self._process.pid, self._process)
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def restart(self) -> LocalCloud:
        """Stop and start again on the same ports (an empty cloud at the same URLs)."""
        self.stop()
        return self.start()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def backend(self) -> Backend:
        """A local ``Backend`` on this cloud's URLs, the same one until the next start.

        A ``Backend`` holds one boto3 session, and each new session loads the service models again
        (~5 MB for Kinesis): a soak making a replay client per run grew by that much a run.
        """
        if self.state is None:
            raise RuntimeError("the local cloud is not started: call start() first")
        if self._backend is None:
            self._backend = Backend(kind="local", endpoint_url=self.state["moto_url"],
                                    sagemaker_runtime_url=self.state["sagemaker_runtime_url"])
        return self._backend

    def status(self) -> dict[str, Any]:
        """Running or not, the URLs, and the child's own report when it answers."""
        return _report(self.state if self.running else None)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically, so a reader (another run's :func:`reclaim_orphans`) never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _identity_check(state: dict[str, Any], state_file: Path) -> Callable[[], bool]:
    return lambda: is_our_server(state, state_file)


def claim_folder(prefix: str) -> Path:
    """A new temporary folder naming this process as its owner, for :func:`reclaim_orphans` to judge."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _write_json(folder / WORKDIR_OWNER_FILE,
                {"pid": os.getpid(), "process_start": process_start(os.getpid()), "started_at": time.time()})
    return folder


def reclaim_orphans(temp_root: Path | None = None) -> list[Path]:
    """Remove the temporary folders (and stop the children) of owners that died; warn of each.

    ``hb-localcloud-*`` (an owner killed outright) and ``hb-endpoints-*`` (a child killed outright).
    Only folders that name their owner (``owner.json``: pid and kernel start time) are touched, and
    only when that process is gone; a folder without one is being set up, or not ours.
    """
    reclaimed = []
    root = Path(temp_root or tempfile.gettempdir())
    for folder in sorted(path for prefix in (WORKDIR_PREFIX, ENDPOINTS_PREFIX) for path in root.glob(prefix + "*")):
        owner = _read_json(folder / WORKDIR_OWNER_FILE)
        if owner is None or not isinstance(owner.get("pid"), int):
            continue
        if owner.get("process_start") is not None and process_start(owner["pid"]) == owner["process_start"]:
            continue  # its owner is alive
        child, child_file = _read_json(folder / "state.json"), folder / "state.json"
        if child is not None and is_our_server(child, child_file):
            _terminate(child["pid"], still_ours=_identity_check(child, child_file))
        shutil.rmtree(folder, ignore_errors=True)
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(owner.get("started_at") or 0)))
        _log.warning("removed %s, left by an interrupted local cloud run (owner pid %s, started %s)",
                     folder, owner["pid"], started)
        reclaimed.append(folder)
    return reclaimed


# --- the detached cloud of ``python -m hbcore cloud up`` -------------------------------------------

def _detached_state_file() -> Path:
    """Absolute: the child runs in the repository root, and its command line must name this very path."""
    return (cache_dir() / DETACHED_STATE_FILE).resolve()


@contextlib.contextmanager
def _detached_lock() -> Iterator[None]:
    """One ``up`` or ``down`` at a time per cache folder; released when the holder exits, however it exits."""
    with open(cache_dir() / DETACHED_LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _detached() -> tuple[dict[str, Any] | None, str | None]:
    """The detached cloud's state if it is verifiably running, and a note when a leftover file was removed."""
    path = _detached_state_file()
    state = _read_json(path)
    if state is None:
        return None, None
    if is_our_server(state, path):
        return state, None
    path.unlink(missing_ok=True)
    return None, (f"removed the leftover {path}: its pid {state.get('pid')} is no longer the local cloud "
                  "that wrote it")


def detached_state() -> dict[str, Any] | None:
    """The state of the detached local cloud if its process is verifiably ours, else None (leftovers removed)."""
    return _detached()[0]


def exports(state: dict[str, Any]) -> str:
    """The two shell lines that point boto3 (and the AWS CLI) in another shell at this cloud."""
    return (f"export AWS_ENDPOINT_URL={state['moto_url']}\n"
            f"export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={state['sagemaker_runtime_url']}")


def detached_log_file() -> Path:
    """Where the detached cloud's output goes (it outlives the shell that started it)."""
    return cache_dir() / DETACHED_LOG_FILE


def start_detached(port: int = 0, runtime_port: int = 0) -> tuple[dict[str, Any], bool]:
    """The detached local cloud's state once healthy, and whether this call started it.

    At most one runs per cache folder, so that ``down`` and ``status`` know which one they mean: when
    one is alive already it is returned as it is (``False``). :class:`LocalCloudError` when a new one fails.
    """
    with _detached_lock():  # a second ``up`` waits here, then finds the first one's cloud
        running = detached_state()
        if running is not None:
            return running, False
        state_file, log_file = _detached_state_file(), detached_log_file()
        with open(log_file, "wb") as log:
            process = subprocess.Popen(
                _serve_command(port, runtime_port, state_file, 0, None),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=REPOSITORY_ROOT, env=_child_environment(), start_new_session=True)
        return _wait_for_state(process, state_file, log_file, STARTUP_TIMEOUT_S), True


def stop_detached() -> dict[str, Any] | None:
    """Stop the detached local cloud; the state of the one stopped, or None when none was running."""
    with _detached_lock():
        state = detached_state()
        if state is None:
            return None
        path = _detached_state_file()
        _terminate(state["pid"], still_ours=_identity_check(state, path))
        path.unlink(missing_ok=True)
        return state


def detached_status() -> dict[str, Any]:
    """The detached local cloud's report (``{"running": False}`` when there is none, with a note on leftovers)."""
    state, note = _detached()
    report = _report(state)
    if note is not None:
        report["note"] = note
    return report
