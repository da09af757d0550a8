"""The local cloud's process starts as the app's first run begins (hbcore.app.prelaunch), and the first
local Pipeline takes it over instead of starting a second one."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from pathlib import Path

import pytest
import streamlit as st

from hbcore.app import prelaunch
from hbcore.app.pipeline import WARM_UP_ENV, Pipeline
from hbcore.app.settings import Settings, save_settings
from hbcore.bench import appbench
from hbcore.localcloud.owner import LocalCloud


@pytest.fixture
def fresh_process(monkeypatch, tmp_path):
    """This process as a fresh app's: nothing launched yet, the warm-up on, settings of its own."""
    monkeypatch.setattr(prelaunch, "_launched", None)
    monkeypatch.setattr(prelaunch, "_done", False)
    monkeypatch.delenv(WARM_UP_ENV)
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path))
    yield
    cloud = prelaunch.take()
    if cloud is not None:
        cloud.stop()


def test_launch_returns_before_the_child_answers_and_start_waits_for_it():
    cloud = LocalCloud()
    try:
        started = time.monotonic()
        assert cloud.launch() is cloud and cloud.running and cloud.state is None
        assert time.monotonic() - started < 0.5  # the child's imports take ~1 s: not waited for
        assert cloud.start() is cloud and cloud.state is not None
        assert cloud.backend.client("kinesis").list_streams()["StreamNames"] == []
    finally:
        cloud.stop()


def test_the_first_local_pipeline_takes_the_launched_cloud(fresh_process):
    assert prelaunch.launch_local_cloud()
    assert not prelaunch.launch_local_cloud()  # once per process
    launched = prelaunch._launched
    assert launched is not None and launched.running
    with Pipeline(Settings(backend="local")) as pipeline:
        assert pipeline.backend.endpoint_url == launched.backend.endpoint_url
        assert prelaunch.take() is None  # handed over once
        with Pipeline(Settings(backend="local")) as second:  # a later pipeline starts its own
            assert second.backend.endpoint_url != pipeline.backend.endpoint_url
    assert not launched.running  # its owner stopped it


def test_nothing_is_launched_on_aws_or_with_the_warm_up_off(fresh_process, monkeypatch):
    save_settings(Settings(backend="aws", profile="no-such-profile-hb"))
    assert not prelaunch.launch_local_cloud() and prelaunch.take() is None
    save_settings(Settings(backend="local"))
    monkeypatch.setenv(WARM_UP_ENV, "0")
    assert not prelaunch.launch_local_cloud() and prelaunch.take() is None


def test_a_launch_that_fails_leaves_the_start_to_the_pipeline(fresh_process, monkeypatch):
    """The router calls the launch before any page: a failure there must not stop the app from drawing."""
    def refuse(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalCloud, "launch", refuse)
    assert not prelaunch.launch_local_cloud() and prelaunch.take() is None


# --- the launch as the server starts (streamlit_app.py's st.App) ----------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_streamlit_run_finds_the_app_whose_lifespan_launches_the_cloud(fresh_process):
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(REPO / "streamlit_app.py")  # what `streamlit run` checks first
    assert found.is_asgi_app and found.import_string == "streamlit_app:app"
    module = importlib.import_module("streamlit_app")  # as the server imports it: no page is routed
    assert isinstance(module.app, st.App) and prelaunch.take() is None

    async def serve() -> None:
        async with prelaunch.at_server_start(module.app):
            assert prelaunch._launched is not None and prelaunch._launched.running

    asyncio.run(serve())
    assert not prelaunch.launch_local_cloud()  # the page run's call: launched already


def _children(pid: int) -> list[str]:
    """The command lines of ``pid``'s child processes."""
    lines = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(pid):
                lines.append((status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_the_server_launches_the_local_cloud_before_any_browser_connects(tmp_path):
    env = appbench.app_environment(str(tmp_path / "cache"), str(tmp_path / "artifacts"))
    env.pop(WARM_UP_ENV, None)
    with appbench.AppServer(env, tmp_path / "streamlit.log") as server:  # healthy: no session has run
        assert server._process is not None
        deadline = time.monotonic() + 10
        while not any("hbcore cloud serve" in line for line in _children(server._process.pid)):
            assert time.monotonic() < deadline, f"no local cloud child:\n{server.output()}"
            time.sleep(0.1)
