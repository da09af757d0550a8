"""The local cloud's process starts as the app's first run begins (hbcore.app.prelaunch), and the first
local Pipeline takes it over instead of starting a second one."""

from __future__ import annotations

import time

import pytest

from hbcore.app import prelaunch
from hbcore.app.pipeline import WARM_UP_ENV, Pipeline
from hbcore.app.settings import Settings, save_settings
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
