"""The reader's quicker polling while a run's first events are awaited, and its return to the normal cadence."""

from __future__ import annotations

import json
import threading
import time

from hbcore.stream import reader as reader_module
from hbcore.stream.reader import ResultsReader
from hbcore.stream.reconcile import Window


class CountingLogs:
    """A Logs Insights stand-in that answers at once and counts its queries; ``events`` are what a read returns."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[float] = []  # monotonic time of each start_query
        self.events: list[tuple[int, str]] = []  # (epoch ms, message)
        self.results: dict[str, list] = {}

    def start_query(self, *, logGroupNames, startTime, endTime, queryString):  # boto3's parameter names
        with self.lock:
            self.started.append(time.monotonic())
            rows = [] if queryString.startswith("stats") else [
                [{"field": "@timestamp", "value": str(ms)}, {"field": "@message", "value": message},
                 {"field": "@logStream", "value": "s"}]
                for ms, message in self.events if startTime * 1000 <= ms <= endTime * 1000 + 999]
            query_id = str(len(self.results))
            self.results[query_id] = rows
            return {"queryId": query_id}

    def get_query_results(self, *, queryId):
        with self.lock:
            rows = self.results[queryId]
        return {"status": "Complete", "results": rows, "statistics": {"recordsMatched": float(len(rows))}}

    def queries_between(self, since: float, until: float) -> int:
        with self.lock:
            return sum(since <= at < until for at in self.started)


def prediction_line(sample: int, run: str = "run1") -> str:
    return json.dumps({"type": "prediction", "id": f"{run}:100:{sample}", "run": run, "record": "100",
                       "sample": sample, "t": sample / 360, "label": 0, "pred": 0, "pred_name": "N", "prob": 0.9,
                       "model_version": "v", "latency_ms": 100.0, "endpoint_ms": 5.0, "rr_local_s": 0.8,
                       "seq": str(sample), "shard": "shardId-000000000000"})


def test_expect_events_polls_quickly_until_the_first_events_then_at_the_normal_interval():
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 5, poll_interval_s=1.0,
                           first_poll_interval_s=0.1).start()
    try:
        time.sleep(0.3)  # the first poll, then the normal wait
        assert not reader.awaiting_events()
        asked = time.monotonic()
        reader.expect_events("run1")  # wakes the reader out of its 1 s wait
        assert reader.awaiting_events()
        time.sleep(0.65)
        quick = logs.queries_between(asked, time.monotonic())
        assert quick >= 4, f"only {quick} queries in 0.65 s while awaiting events"
        with logs.lock:
            logs.events.append((int(time.time() * 1000), prediction_line(1)))
        deadline = time.monotonic() + 2
        while reader.snapshot().stats.predictions == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reader.snapshot().stats.predictions == 1
        time.sleep(0.3)  # the poll that read the event has ended the quicker polling
        assert not reader.awaiting_events()
        settled = time.monotonic()
        time.sleep(1.5)
        normal = logs.queries_between(settled, time.monotonic())
        assert normal <= 4, f"{normal} queries in 1.5 s at a 1 s interval (a poll is a read, perhaps a probe)"
    finally:
        reader.stop()


def test_the_quicker_polling_ends_after_await_max_s_without_events(monkeypatch):
    monkeypatch.setattr(reader_module, "AWAIT_MAX_S", 0.4)
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 5, poll_interval_s=1.0,
                           first_poll_interval_s=0.05).start()
    try:
        reader.expect_events("run1")
        time.sleep(0.6)
        assert not reader.awaiting_events()
        settled = time.monotonic()
        time.sleep(1.5)
        assert logs.queries_between(settled, time.monotonic()) <= 4
    finally:
        reader.stop()


def test_only_a_beat_of_the_awaited_run_ends_the_wait():
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 5, poll_interval_s=1.0,
                           first_poll_interval_s=0.1)
    now_ms = int(time.time() * 1000)
    logs.events += [(now_ms, "START RequestId: 1 Version: $LATEST"),  # a platform line is no beat
                    (now_ms, prediction_line(1, run="run0"))]  # an earlier run's straggler
    reader.expect_events("run1")
    assert reader.poll_once() == 2
    assert not reader._rest()  # woken by expect_events: returns at once
    assert reader.awaiting_events()
    logs.events.append((now_ms + 1, prediction_line(2)))
    assert reader.poll_once() == 1
    started = time.monotonic()
    assert not reader._rest()  # the run's first beat: back to the 1 s interval
    assert not reader.awaiting_events() and time.monotonic() - started >= 0.9


def test_polls_awaiting_a_run_hold_no_count_probe_and_the_probes_come_back_after(monkeypatch):
    """A probe is a second query in a poll: while the first events are awaited, every query reads the window."""
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 5)
    probes = lambda: reader.snapshot().stats.probes  # noqa: E731
    reader.poll_once()
    assert probes() == 1  # the first poll of a reader probes
    reader.expect_events("run1")
    for _ in range(2 * reader_module.PROBE_EVERY_POLLS):
        reader.poll_once()
    assert probes() == 1
    monkeypatch.setattr(reader_module, "AWAIT_MAX_S", 0.0)
    reader.expect_events("run1")  # expires at once: the normal cadence, probes included
    for _ in range(reader_module.PROBE_EVERY_POLLS):
        reader.poll_once()
    assert probes() == 2


def test_polls_awaiting_a_run_read_no_short_invocation_again_and_the_rereads_come_back_after(monkeypatch):
    """A re-read is another query in a poll: deferred while the first events are awaited, then made."""
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 60)
    short = Window("2026/12/03/[$LATEST]abc", time.time() - 50, time.time() - 49)
    monkeypatch.setattr(reader.store, "windows_to_reread", lambda now_s: [short])
    requeried = lambda: reader.snapshot().stats.requeried_windows  # noqa: E731
    reader.poll_once()
    reader.expect_events("run1")
    for _ in range(3):
        before = len(logs.started)
        reader.poll_once()
        assert len(logs.started) - before == 1  # the window, nothing else
    assert requeried() == 0
    monkeypatch.setattr(reader_module, "AWAIT_MAX_S", 0.0)
    reader.expect_events("run1")  # expires at once: the normal cadence, re-reads included
    reader.poll_once()
    assert requeried() == 1


def test_wait_for_beats_returns_as_the_poll_that_reads_the_runs_first_beat_ends():
    """What the monitor waits on while a run's first predictions are awaited: no refresh interval in between."""
    logs = CountingLogs()
    reader = ResultsReader(logs, "/aws/lambda/f", start_s=time.time() - 5)
    now_ms = int(time.time() * 1000)
    logs.events += [(now_ms, "START RequestId: 1 Version: $LATEST"), (now_ms, prediction_line(1, run="run0"))]
    reader.poll_once()
    started = time.monotonic()
    assert not reader.wait_for_beats("run1", 0.2)  # other lines, another run's beat: not what is awaited
    assert time.monotonic() - started >= 0.2

    def log_and_poll() -> None:
        time.sleep(0.3)
        with logs.lock:
            logs.events.append((now_ms + 1, prediction_line(2)))
        reader.poll_once()

    poller = threading.Thread(target=log_and_poll)
    started = time.monotonic()
    poller.start()
    try:
        assert reader.wait_for_beats("run1", 5.0)
        waited = time.monotonic() - started
    finally:
        poller.join()
    assert 0.3 <= waited < 1.0, f"woke {waited:.2f} s after the wait began (the beat was read after 0.3 s)"
    started = time.monotonic()
    assert reader.wait_for_beats("run1", 5.0)  # already read: at once, not after the timeout
    assert time.monotonic() - started < 1.0
