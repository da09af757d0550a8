"""The results reader is lossless against the local cloud's Logs Insights rules (ingestion delay longer than
its lag, a small row cap, more events in one second than a query returns), and hbcore.stream.reconcile
on its own: short and missing invocations, the windows to read again, giving up."""

from __future__ import annotations

import contextlib
import time

import pytest
from kit.cloudkit import poll_reader_until, unique

from hbcore.contracts import emf, log_lines
from hbcore.localcloud import insights, motopatches
from hbcore.stream.reader import ResultsReader
from hbcore.stream.reconcile import Reconciler

RUN = "20261202T070000-abc123"


@pytest.fixture
def rules(cloud):
    previous = motopatches.LOGS_RULES

    def use(**values) -> None:
        motopatches.set_logs_rules(insights.Rules(**values))

    yield use
    motopatches.set_logs_rules(previous)


def invocation_lines(inv: int, first_sample: int, beats: int, ts_ms: int) -> list[tuple[int, str]]:
    """What the handler prints for one invocation: a beats line, an EMF line, the summary counting them."""
    rows = tuple(log_lines.BeatRow(0, first_sample + k, (first_sample + k) / 360, 0, k % 5, 0.9, 12.5, 0.8)
                 for k in range(beats))
    body = [log_lines.encode_line(log_lines.Beats(RUN, "v1", 3.0, "shardId-000000000000", inv, ("100",), rows)),
            emf.encode_metrics(emf.PatientMetrics(ts_ms, "100", beats, 1, 1, 3, inv))]
    summary = log_lines.encode_line(log_lines.Summary(beats, beats, 0, 0, 1, 3.0, 5.0, None, inv, len(body)))
    return [(ts_ms + offset, text) for offset, text in enumerate([*body, summary])]


@pytest.fixture
def group(clients) -> str:
    name = unique("/aws/lambda/reconcile")
    clients("logs").create_log_group(logGroupName=name)
    return name


def write(clients, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    logs = clients("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": ts, "message": text} for ts, text in events])


def test_every_beat_is_read_once_when_the_ingestion_delay_exceeds_the_lag_and_rows_are_capped(clients, group, rules):
    """Three streams of 8 invocations (3 lines each, one a second): ~9 events a second against a cap of 10 rows."""
    rules(delay_min_s=2.0, delay_max_s=4.0, max_rows=10)
    now_ms = int(time.time() * 1000)
    reader = ResultsReader(clients("logs"), group, start_s=now_ms / 1000 - 30, lag_s=1, poll_interval_s=0.3)
    expected = 0
    for stream_index in range(3):
        events = []
        for inv in range(1, 9):
            events += invocation_lines(inv, 1000 * stream_index + 20 * inv, 20, now_ms - 9000 + inv * 1000)
            expected += 20
        write(clients, group, f"2026/12/02/[$LATEST]{stream_index}", events)

    # Done when every invocation's summary has been read too: beats can all be in before the last summaries.
    snapshot = poll_reader_until(reader, lambda s: s.stats.predictions >= expected and s.stats.unreconciled == 0
                          and s.stats.reconciled_invocations >= 24)

    stats = snapshot.stats
    assert (stats.predictions, stats.duplicate_predictions, stats.unreconciled) == (expected, 0, 0)
    assert stats.metric_lines == 24 and stats.foreign_lines == 0  # EMF lines are ours, not noise
    assert stats.reconciled_invocations == 24
    assert stats.lag_s > 1  # grown to the delay it met
    assert stats.behind_s is not None and stats.truncated_windows == 0


def test_a_second_holding_more_events_than_a_query_returns_is_read_stream_by_stream(clients, group, rules):
    rules(max_rows=10)
    second_ms = (int(time.time()) - 5) * 1000
    for stream_index in range(4):
        write(clients, group, f"s{stream_index}", [
            (second_ms + k, log_lines.encode_line(log_lines.Prediction(
                f"{RUN}:10{stream_index}:{k}", RUN, f"10{stream_index}", k, None, None, 0, None, None, None, None,
                None, None, None, None))) for k in range(8)])
    reader = ResultsReader(clients("logs"), group, start_s=second_ms / 1000 - 5, query_limit=10)

    reader.poll_once()

    stats = reader.snapshot().stats
    assert (stats.predictions, stats.truncated_windows) == (32, 0)


def test_a_missing_invocation_is_found_between_the_ones_read():
    reconciler = Reconciler(start_s=0.0)
    for inv, ts in ((1, 100.0), (3, 102.0)):
        reconciler.line("s", inv, ts, hash(inv))
        reconciler.summary("s", inv, 1, ts + 0.1)

    assert reconciler.unreconciled() == 1  # invocation 2 was not read at all
    (window,) = reconciler.windows(now_s=110.0)
    assert (window.stream, window.start_s, window.end_s) == ("s", 99.1, 110.0)  # after invocation 1's last line


def test_a_short_invocation_becomes_complete_when_its_last_line_is_read():
    reconciler = Reconciler(start_s=0.0)
    reconciler.summary("s", 1, 2, 100.5)
    reconciler.line("s", 1, 100.0, 1)
    reconciler.line("s", 1, 100.0, 1)  # the same event read twice counts once
    assert reconciler.unreconciled() == 1

    reconciler.line("s", 1, 100.2, 2)

    assert (reconciler.unreconciled(), reconciler.reconciled, reconciler.windows(200.0)) == (0, 1, [])


def test_an_invocation_short_for_too_long_is_abandoned_and_counted():
    reconciler = Reconciler(start_s=0.0, give_up_s=60.0)
    reconciler.line("s", 1, 100.0, 1)  # a handler that died before its summary

    reconciler.forget_before(now_s=161.0)

    assert (reconciler.unreconciled(), reconciler.abandoned) == (0, 1)


def test_old_prediction_lines_and_new_beats_lines_are_read_alike():
    from hbcore.stream.tally import ResultsStore

    old = log_lines.encode_line(log_lines.Prediction(f"{RUN}:100:7", RUN, "100", 7, 0.02, 0, 2, "V", 0.9, "v1", 10.0,
                                                     3.0, 0.8, "12", "shardId-000000000000"))
    new = invocation_lines(1, 8, 2, 1_764_331_355_000)
    store = ResultsStore()

    store.ingest([(1_764_331_355.0, "s", old), *((ts / 1000, "s", text) for ts, text in new)])

    snapshot = store.snapshot(state="idle", queries=0, failed_queries=0, truncated_windows=0, read_until_s=None,
                              last_poll_s=None, errors=(), error_count=0)
    assert snapshot.predictions["id"].tolist() == [f"{RUN}:100:{sample}" for sample in (7, 8, 9)]
    assert snapshot.predictions["pred"].tolist() == [2, 0, 1]
    assert (snapshot.stats.foreign_lines, snapshot.stats.metric_lines, snapshot.stats.unreconciled) == (0, 1, 0)


def test_a_stream_whose_first_invocations_are_read_late_expects_them_after_all():
    """Ingestion delays differ by event: invocations 5 and 6 read first, then 2, then 1, 3 and 4."""
    reconciler = Reconciler(start_s=0.0)
    for inv in (5, 6):
        reconciler.line("s", inv, 100.0 + inv, inv)
        reconciler.summary("s", inv, 1, 100.1 + inv)
    assert (reconciler.reconciled, reconciler.unreconciled()) == (2, 0)  # 5 looked like the stream's first

    reconciler.line("s", 2, 102.0, 2)
    reconciler.summary("s", 2, 1, 102.1)
    assert (reconciler.reconciled, reconciler.unreconciled()) == (0, 3)  # 1, 3 and 4 now expected
    (window,) = reconciler.windows(now_s=110.0)
    assert window.start_s <= 101.0  # invocation 1 is looked for before the lowest line read

    for inv in (1, 3, 4):
        reconciler.line("s", inv, 100.0 + inv, inv)
        reconciler.summary("s", inv, 1, 100.1 + inv)
    assert (reconciler.reconciled, reconciler.unreconciled(), reconciler.windows(200.0)) == (6, 0, [])


def test_a_stream_older_than_the_reader_keeps_its_floor_at_the_lowest_line_read():
    reconciler = Reconciler(start_s=100.0)
    reconciler.summary("s", 41, 0, 101.0)  # inside the margin after the reader's start: the stream is older
    reconciler.line("s", 40, 100.5, 1)
    reconciler.summary("s", 40, 1, 100.6)

    assert (reconciler.reconciled, reconciler.unreconciled()) == (2, 0)  # nothing below 40 expected
