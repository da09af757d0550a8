"""A background task that failed shows on its page as an error, never as a page that simply stops changing.

The monitor page runs on its own (``AppTest.from_file``) over a stand-in for the app's Pipeline whose
reader and replay really failed: the reader on a Logs client that raises what botocore never would
(a bug, a hostile answer), the replay on a stream that does not exist (moto on 127.0.0.1).
"""

from __future__ import annotations

import types
import uuid
from pathlib import Path

import pytest
from kit.beatkit import make_beats

from hbcore.app import resources
from hbcore.app.pipeline import Pipeline
from hbcore.aws.backend import Backend
from hbcore.stream.reader import ResultsReader
from hbcore.stream.replay import Replay, kinesis_client

REPO = Path(__file__).resolve().parents[2]
MONITOR = REPO / "pages" / "monitor.py"
RUN_TIMEOUT_S = 30


class BrokenLogs:
    """A Logs client whose every query raises ``error`` (what a reader's thread must survive visibly)."""

    def __init__(self, error: Exception):
        self.error = error

    def start_query(self, **kwargs):
        raise self.error

    def stop_query(self, **kwargs):
        return {}


# Failures no retry can mend, each of another kind: the reader's thread ends with them.
READER_FAILURES = [RuntimeError("the query engine is gone"), KeyError("queryId"),
                   ValueError("@timestamp 'yesterday' is neither epoch milliseconds nor a date"),
                   TypeError("'NoneType' object is not subscriptable")]


def failed_reader(error: Exception) -> ResultsReader:
    reader = ResultsReader(BrokenLogs(error), "/aws/lambda/hb-missing", poll_interval_s=0.05).start()
    assert reader.wait(10).stats.state == "failed"
    return reader


@pytest.fixture(scope="module")
def failed_replay(moto_url) -> Replay:
    replay = Replay(kinesis_client(Backend(kind="local", endpoint_url=moto_url)), f"missing-{uuid.uuid4().hex[:8]}",
                    make_beats({"100": 20})).start()
    assert replay.wait(10).state == "failed"
    return replay


def monitor_over(monkeypatch, reader: ResultsReader, replay: Replay | None):
    """The monitor page, run once over a pipeline holding ``reader`` and ``replay``."""
    from streamlit.testing.v1 import AppTest

    stand_in = types.SimpleNamespace(reader=reader, replay=replay,
                                     current_run=replay.run if replay is not None else None)
    monkeypatch.setattr(resources, "pipeline", lambda: stand_in)
    monkeypatch.setattr(resources, "backend_ready", lambda: True)
    at = AppTest.from_file(str(MONITOR), default_timeout=RUN_TIMEOUT_S)
    at.session_state["monitor_all_runs"] = True
    at.run()
    assert not at.exception, [exception.value for exception in at.exception]
    return at


@pytest.mark.parametrize("error", READER_FAILURES, ids=lambda error: type(error).__name__)
def test_the_monitor_shows_a_failed_reader_as_an_error(monkeypatch, error):
    at = monitor_over(monkeypatch, failed_reader(error), None)

    shown = [str(element.value) for element in at.error]
    assert len(shown) == 1 and shown[0].startswith("The results reader stopped: ")
    assert type(error).__name__ in shown[0]


def test_the_monitor_shows_a_failed_replay_and_reader_as_errors(monkeypatch, failed_replay):
    at = monitor_over(monkeypatch, failed_reader(RuntimeError("the query engine is gone")), failed_replay)

    shown = " | ".join(str(element.value) for element in at.error)
    assert "The replay failed: PutRecords failed: ResourceNotFoundException" in shown
    assert "The results reader stopped: RuntimeError: the query engine is gone" in shown


def test_the_status_panel_names_both_failures(moto_url, failed_replay):
    with Pipeline(backend=Backend(kind="local", endpoint_url=moto_url)) as pipeline:
        pipeline.replay = failed_replay
        pipeline._reader = failed_reader(KeyError("queryId"))
        status = pipeline.status()

    assert status["replay"].state == status["reader"].state == "error"
    assert status["reader"].detail.startswith("the reader stopped: KeyError: 'queryId'")
