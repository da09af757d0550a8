"""The replay's and the reader's threads never die silently, and a stop ends them promptly.

An unexpected exception (a bug, an answer of a shape nobody expected) is injected where the
thread's work runs; the state and errors a page reads must say so.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest

from hbcore.aws.backend import Backend
from hbcore.data.dataset import BeatSet, meta_frame
from hbcore.stream.reader import ResultsReader
from hbcore.stream.replay import Replay, kinesis_client

WAIT_S = 30.0


@pytest.fixture(scope="module")
def backend(moto_url) -> Backend:
    return Backend(kind="local", endpoint_url=moto_url)


def few_beats(n: int) -> BeatSet:
    t_s = np.arange(n) * 0.8
    meta = meta_frame({"record": np.full(n, "100"), "sample": np.rint(t_s * 360).astype(np.int64), "t_s": t_s,
                       "label": np.zeros(n, np.int64)})
    return BeatSet(np.zeros((n, 187), np.float32), np.zeros(n, np.int8), meta)


def test_an_unexpected_exception_in_the_replay_thread_fails_the_replay(backend):
    stream = f"beats-{uuid.uuid4().hex[:8]}"
    backend.client("kinesis").create_stream(StreamName=stream, ShardCount=1)
    client = kinesis_client(backend)

    def broken(**kwargs):
        raise TypeError("injected")

    client.meta.events.register("before-send.kinesis.PutRecords", broken)
    replay = Replay(client, stream, few_beats(5)).start()

    progress = replay.wait(WAIT_S)

    assert (progress.state, progress.error, progress.errors, progress.error_count) == (
        "failed", "TypeError: injected", ("TypeError: injected",), 1)
    assert (progress.done, progress.sent, progress.pending) == (True, 0, 5)
    assert not replay._thread.is_alive()


@pytest.fixture
def group(backend) -> str:
    """A log group holding one prediction line."""
    name = f"/aws/lambda/hb-threads-{uuid.uuid4().hex[:8]}"
    logs = backend.client("logs")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    line = {"type": "prediction", "id": "run1:100:1", "run": "run1", "record": "100", "sample": 1, "pred": 0}
    logs.put_log_events(logGroupName=name, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(line)}])
    return name


def test_an_unexpected_exception_in_the_reader_thread_fails_the_reader(backend, group, monkeypatch):
    """The bug report: a line made poll_once raise TypeError; the thread died, yet said running, error_count 0."""
    reader = ResultsReader(backend.client("logs"), group, start_s=time.time() - 60, poll_interval_s=0.05)

    def broken(events, *when):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(reader.store, "ingest", broken)
    reader.start()
    reader.wait(WAIT_S)  # the thread ends: it does not poll on as if nothing happened

    stats = reader.snapshot().stats
    assert (stats.state, stats.errors, stats.error_count) == (
        "failed", ("TypeError: unhashable type: 'list'",), 1)
    assert not reader._thread.is_alive()


class RunningForever:
    """A Logs client whose queries never complete (an overloaded Logs Insights)."""

    def __init__(self):
        self.stopped: list[str] = []

    def start_query(self, **kwargs):
        return {"queryId": "q1"}

    def get_query_results(self, queryId):
        return {"status": "Running", "results": []}

    def stop_query(self, queryId):
        self.stopped.append(queryId)
        return {"success": True}


def test_stop_ends_a_poll_waiting_for_its_query_and_cancels_the_query():
    logs = RunningForever()
    reader = ResultsReader(logs, "/aws/lambda/x", query_timeout_s=600.0).start()
    time.sleep(0.3)  # the poll is waiting for its query

    started = time.monotonic()
    stats = reader.stop().stats

    assert time.monotonic() - started < 2.0  # not the query timeout of 600 s
    assert (stats.state, stats.error_count, stats.failed_queries, stats.read_until_s) == ("stopped", 0, 0, None)
    assert logs.stopped == ["q1"]
