"""hbcore.app.pipeline.Pipeline: the parts it makes for a backend."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from kit.beatkit import make_beats

from hbcore.app import pipeline as pipeline_module
from hbcore.app.pipeline import LOCAL_READER_LAG_S, Pipeline, ReplayStillRunning
from hbcore.app.settings import Settings
from hbcore.aws.backend import Backend
from hbcore.stream import reader
from hbcore.stream.replay import kinesis_client


def test_the_local_reader_re_reads_seconds_not_cloudwatchs_ingestion_lag(moto_url):
    with Pipeline(backend=Backend(kind="local", endpoint_url=moto_url)) as pipeline:
        assert pipeline.reader.lag_s == LOCAL_READER_LAG_S < reader.LAG_S


def test_a_dead_local_cloud_is_reported_then_started_again_by_the_next_action():
    with Pipeline() as pipeline:
        pipeline.ensure_stack()
        cloud = pipeline._cloud
        os.kill(cloud.pid, signal.SIGKILL)
        cloud._process.wait(10)

        status = pipeline.status()
        assert status["backend"].state == "error" and "stopped" in status["backend"].detail
        assert status["stack"].state == status["endpoint"].state == "missing"
        assert not cloud.running  # looking never restarts it

        outputs = pipeline.ensure_stack()
        assert cloud.running and outputs["StreamName"] == pipeline.names.stream
        assert pipeline.status()["backend"].state == "ok"


SLOW_CALL_S = 0.15


@pytest.fixture
def slow_pipeline(moto_url, monkeypatch):
    """A pipeline on moto whose replays make PutRecords calls that take SLOW_CALL_S longer, and its stream."""
    backend = Backend(kind="local", endpoint_url=moto_url)

    def slow_client(backend: Backend):
        client = kinesis_client(backend)
        client.meta.events.register("before-send.kinesis.PutRecords", lambda **kwargs: time.sleep(SLOW_CALL_S))
        return client

    monkeypatch.setattr(pipeline_module, "kinesis_client", slow_client)
    with Pipeline(Settings(prefix=f"hb{uuid.uuid4().hex[:6]}"), backend=backend) as pipeline:
        kinesis = backend.client("kinesis")
        kinesis.create_stream(StreamName=pipeline.names.stream, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName=pipeline.names.stream, WaiterConfig={"Delay": 0.1})
        yield pipeline


@pytest.mark.parametrize("rate_bps", [None, 500.0, 5000.0])
def test_a_second_replay_starts_only_once_the_first_has_stopped(slow_pipeline, rate_bps):
    first = slow_pipeline.start_replay(make_beats({"100": 5000}), rate_bps=rate_bps)
    time.sleep(3 * SLOW_CALL_S)

    second = slow_pipeline.start_replay(make_beats({"101": 5000}), rate_bps=rate_bps)

    stopped = first.progress()
    assert stopped.state == "stopped" and not first._thread.is_alive()
    assert 0 < stopped.sent < 5000
    assert slow_pipeline.replay is second and second.progress().state == "running"
    assert first.progress().sent == stopped.sent  # nothing more went out beside the second


def test_a_replay_that_will_not_stop_is_not_joined_by_a_second(slow_pipeline, monkeypatch):
    monkeypatch.setattr(pipeline_module, "REPLAY_STOP_TIMEOUT_S", SLOW_CALL_S / 10)  # shorter than a call
    first = slow_pipeline.start_replay(make_beats({"100": 5000}))
    time.sleep(SLOW_CALL_S / 2)

    with pytest.raises(ReplayStillRunning, match=f"replay {first.run} did not stop"):
        slow_pipeline.start_replay(make_beats({"101": 5000}))
    assert slow_pipeline.replay is first
    assert first.wait(10).state == "stopped"  # asked once, it still ends after its call


def test_the_status_panel_does_not_wait_for_a_stack_being_made(moto_url, monkeypatch):
    """ensure_stack holds the pipeline's lock for seconds to minutes: the panel must still answer at once."""
    import threading

    release = threading.Event()

    def slow_deploy_stack(*args, **kwargs):
        release.wait(30)
        raise RuntimeError("released by the test")

    monkeypatch.setattr(pipeline_module.stack, "deploy_stack", slow_deploy_stack)
    with Pipeline(backend=Backend(kind="local", endpoint_url=moto_url)) as pipeline:
        def make_stack() -> None:
            with pytest.raises(RuntimeError, match="released by the test"):
                pipeline.ensure_stack()

        making = threading.Thread(target=make_stack)
        making.start()
        try:
            time.sleep(0.2)
            started = time.monotonic()
            status = pipeline.status()
            assert time.monotonic() - started < 1.0
            assert status["stack"].state == "working" and "creating" in status["stack"].detail
            assert status["endpoint"].state == "idle"
        finally:
            release.set()
            making.join(10)
        assert pipeline.status()["stack"].state == "missing"  # not busy any more: read from the backend
