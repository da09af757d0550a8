"""hbcore.stream.reader and tally: log lines written to moto Logs with put_log_events, read back through Logs Insights.

Moto answers every query ``Complete`` at once with epoch-ms timestamps; the other statuses and AWS's
timestamp format come from a stub client at the end.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from hbcore.aws.backend import Backend
from hbcore.stream.aggregations import (
    class_distribution,
    confusion_matrix,
    for_run,
    heart_rates,
    latency_percentiles,
    misclassified,
    per_record,
    rejection_reasons,
    throughput,
)
from hbcore.stream.reader import LAG_MAX_S, QueryFailed, ResultsReader, parse_timestamp

T0_S = 0  # five minutes before this module's first test (t0_s); moto refuses events older than 14 days


@pytest.fixture(scope="module", autouse=True)
def t0_s() -> int:
    """Set T0_S when the module's tests start, not when it is collected: a local cloud's log-retention trimmer
    (15 minutes, process-wide moto state) must never find these events old, however long the suite ran before."""
    global T0_S
    T0_S = int(time.time()) - 300
    return T0_S


@pytest.fixture(scope="module")
def logs(moto_url):
    return Backend(kind="local", endpoint_url=moto_url).client("logs")


@pytest.fixture
def group(logs) -> str:
    name = f"/aws/lambda/hb-test-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="2026/11/28/[$LATEST]a")
    return name


def write(logs, group: str, events: list[tuple[float, str | dict]], stream: str = "2026/11/28/[$LATEST]a") -> None:
    """Put ``(epoch seconds, line)`` events; dict lines are written as the handler prints them."""
    log_events = [{"timestamp": int(ts * 1000), "message": line if isinstance(line, str) else json.dumps(line) + "\n"}
                  for ts, line in sorted(events, key=lambda event: event[0])]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=log_events)


def prediction(sample: int, *, record: str = "100", label: int | None = 0, pred: int = 0, run: str = "run1",
               t: float | None = None, rr: float | None = 0.8, latency_ms: float | None = 20.0,
               seq: int | None = None) -> dict:
    return {"type": "prediction", "id": f"{run}:{record}:{sample}", "run": run, "record": record, "sample": sample,
            "t": sample / 360 if t is None else t, "label": label, "pred": pred, "pred_name": "NSVFQ"[pred],
            "prob": 0.9, "model_version": "v1", "latency_ms": latency_ms, "endpoint_ms": 5.0, "rr_local_s": rr,
            "seq": str(sample if seq is None else seq), "shard": "shardId-000000000000"}


def rejected(seq: int, reason: str, beat: str | None = None) -> dict:
    return {"type": "rejected", "id": beat, "run": None, "record": "100", "seq": str(seq),
            "shard": "shardId-000000000000", "reason": reason}


def reader_for(logs, group: str, **options) -> ResultsReader:
    return ResultsReader(logs, group, start_s=T0_S - 10, **options)


def read(logs, group: str, **options):
    reader = reader_for(logs, group, **options)
    reader.poll_once()
    return reader.snapshot()


def test_prediction_lines_are_read_with_their_fields(logs, group):
    write(logs, group, [(T0_S + 1.25, prediction(370, label=2, pred=1))])

    row = read(logs, group).predictions.iloc[0]

    keys = ("id", "record", "sample", "label", "pred", "prob", "latency_ms", "seq", "ts")
    assert {key: row[key] for key in keys} == {
        "id": "run1:100:370", "record": "100", "sample": 370, "label": 2, "pred": 1, "prob": 0.9,
        "latency_ms": 20.0, "seq": "370", "ts": T0_S + 1.25}


def test_lines_that_are_not_ours_are_counted_and_ignored(logs, group):
    write(logs, group, [
        (T0_S, "START RequestId: 8f5c Version: $LATEST\n"),
        (T0_S + 0.1, prediction(1)),
        (T0_S + 0.2, "END RequestId: 8f5c\n"),
        (T0_S + 0.3, "REPORT RequestId: 8f5c\tDuration: 12.1 ms\tBilled Duration: 13 ms\n"),
        (T0_S + 0.4, "some text from a library\n"),
        (T0_S + 0.5, {"level": "info", "msg": "foreign JSON"}),
        (T0_S + 0.6, {"type": "prediction", "note": "ours in name only, no id"}),
        (T0_S + 0.7, "{not json at all"),
    ])

    stats = read(logs, group).stats

    assert (stats.predictions, stats.lambda_lines, stats.foreign_lines, stats.events) == (1, 3, 4, 8)


def test_overlapping_polls_read_each_event_once(logs, group):
    write(logs, group, [(T0_S + index / 10, prediction(index)) for index in range(30)])
    reader = reader_for(logs, group)

    reader.poll_once()
    reader.poll_once()  # reads the last lag_s seconds again
    snapshot = reader.snapshot()

    assert len(snapshot.predictions) == 30
    assert snapshot.stats.duplicate_predictions == 0


def test_events_arriving_within_the_lag_are_read_by_the_next_poll(logs, group):
    reader = reader_for(logs, group)
    write(logs, group, [(T0_S + 280, prediction(1))])
    reader.poll_once(now_s=T0_S + 290)
    write(logs, group, [(T0_S + 285, prediction(2))])  # logged before the first poll's end, ingested after it

    reader.poll_once(now_s=T0_S + 295)

    assert reader.snapshot().predictions["sample"].tolist() == [1, 2]


def test_a_beat_logged_twice_is_kept_once_and_counted_as_a_duplicate(logs, group):
    write(logs, group, [(T0_S + 1, prediction(5, seq=11)), (T0_S + 4, prediction(5, seq=11))])

    snapshot = read(logs, group)

    assert snapshot.predictions["id"].tolist() == ["run1:100:5"]
    assert snapshot.stats.duplicate_predictions == 1


def test_a_window_over_the_query_limit_is_read_in_parts(logs, group):
    write(logs, group, [(T0_S + index / 40, prediction(index)) for index in range(120)])  # 3 s, 40 lines each

    snapshot = read(logs, group, query_limit=50)

    assert sorted(snapshot.predictions["sample"]) == list(range(120))
    assert snapshot.stats.queries >= 3
    assert snapshot.stats.truncated_windows == 0


def test_rejected_records_are_deduplicated_by_shard_and_sequence_number(logs, group):
    write(logs, group, [
        (T0_S + 1, rejected(7, "empty record")),
        (T0_S + 2, rejected(7, "empty record")),  # the batch was retried
        (T0_S + 3, rejected(8, "empty record")),
        (T0_S + 4, rejected(9, "missing 'beat'", beat="run1:100:9")),
    ])

    snapshot = read(logs, group)

    assert snapshot.rejected["seq"].tolist() == ["7", "8", "9"]
    assert snapshot.stats.duplicate_rejections == 1
    assert rejection_reasons(snapshot.rejected).values.tolist() == [["empty record", 2], ["missing 'beat'", 1]]


def test_rejected_beats_of_one_aggregated_record_are_counted_apart(logs, group):
    """A KPL aggregate is one Kinesis record (one sequence number) carrying several beats."""
    write(logs, group, [
        (T0_S + 1, rejected(7, "empty record", beat="shardId-000000000000:7:0")),
        (T0_S + 1, rejected(7, "empty record", beat="shardId-000000000000:7:2")),
        (T0_S + 2, rejected(7, "empty record", beat="shardId-000000000000:7:2")),  # the batch was retried
    ])

    snapshot = read(logs, group)

    assert snapshot.rejected["id"].tolist() == ["shardId-000000000000:7:0", "shardId-000000000000:7:2"]
    assert snapshot.stats.duplicate_rejections == 1


def test_summary_lines_are_read(logs, group):
    write(logs, group, [(T0_S + 1, {"type": "summary", "records": 100, "predicted": 98, "rejected": 2, "failed": 0,
                                    "endpoint_calls": 1, "endpoint_ms": 8.5, "handler_ms": 20.1, "error": None})])

    summaries = read(logs, group).summaries

    assert summaries[["records", "predicted", "rejected", "endpoint_calls"]].values.tolist() == [[100, 98, 2, 1]]


def test_a_missing_log_group_fails_the_poll(logs):
    reader = ResultsReader(logs, "/aws/lambda/does-not-exist")

    with pytest.raises(ClientError) as raised:
        reader.poll_once()

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert reader.snapshot().stats.read_until_s is None


def test_the_background_thread_polls_until_stopped(logs, group):
    write(logs, group, [(T0_S + 1, prediction(1))])
    reader = reader_for(logs, group, poll_interval_s=0.05).start()
    deadline = time.monotonic() + 10
    while reader.snapshot().stats.predictions == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    write(logs, group, [(time.time(), prediction(2))])
    while reader.snapshot().stats.predictions < 2 and time.monotonic() < deadline:
        time.sleep(0.02)

    reader.stop()

    snapshot = reader.snapshot()
    assert snapshot.stats.state == "stopped"
    assert snapshot.predictions["sample"].tolist() == [1, 2]
    assert not reader._thread.is_alive()


def test_the_background_thread_records_errors_and_keeps_polling(logs):
    reader = ResultsReader(logs, "/aws/lambda/not-yet-created", poll_interval_s=0.05).start()
    time.sleep(0.3)
    reader.stop()

    stats = reader.snapshot().stats
    assert stats.error_count >= 2
    assert "ResourceNotFoundException" in stats.errors[-1]


# --- aggregations --------------------------------------------------------------------------------

@pytest.fixture
def mixed(logs, group):
    """Two records, 20 s of beats; record 201 has no RR (CSV input) and one misclassified V."""
    events = []
    for index in range(20):
        events.append((T0_S + index, prediction(index * 288, label=0, pred=0, latency_ms=10.0 + index)))
    for index in range(10):
        label, pred = (2, 0) if index == 3 else (1, 1)
        events.append((T0_S + 2 * index + 0.5, prediction(index * 360, record="201", label=label, pred=pred, rr=None,
                                                         t=index * 0.5, latency_ms=None, seq=1000 + index)))
    write(logs, group, events)
    return read(logs, group)


def test_confusion_matrix_counts_true_against_predicted(mixed):
    matrix = confusion_matrix(mixed.totals("run1"))

    assert matrix.loc["N", "N"] == 20
    assert matrix.loc["S", "S"] == 9
    assert matrix.loc["V", "N"] == 1
    assert matrix.to_numpy().sum() == 30


def test_class_distribution_counts_predictions_per_time_bin(mixed):
    distribution = class_distribution(mixed.totals("run1"), bin_s=10.0)

    assert distribution.to_numpy().sum() == 30
    assert distribution["S"].sum() == 9
    assert distribution.index[0] == pd.Timestamp(T0_S // 10 * 10, unit="s", tz="UTC")


def test_misclassified_lists_the_wrong_beats(mixed):
    wrong = misclassified(mixed.misclassified)

    assert wrong.to_dict("records") == [{"id": "run1:201:1080", "record": "201", "sample": 1080, "t": 1.5,
                                         "true": "V", "pred": "N", "prob": 0.9}]


def test_per_record_counts_abnormal_beats_accuracy_and_heart_rate(mixed):
    table = per_record(mixed.totals("run1"), mixed.predictions)

    assert table.loc["100", ["beats", "N", "abnormal"]].tolist() == [20, 20, 0]
    assert table.loc["201", ["beats", "S", "abnormal"]].tolist() == [10, 9, 9]
    assert table.loc["201", "accuracy"] == pytest.approx(0.9)
    assert table.loc["100", "heart_rate_bpm"] == pytest.approx(75.0)  # rr_local_s 0.8 s
    assert table.loc["201", "heart_rate_bpm"] == pytest.approx(120.0)  # beats 0.5 s apart


def test_heart_rate_is_unknown_without_rr_or_time(logs, group):
    write(logs, group, [(T0_S + index, prediction(index, record="kaggle:x", rr=None, t=None)) for index in range(3)])
    predictions = read(logs, group).predictions
    predictions = predictions.assign(t=np.nan)

    assert np.isnan(heart_rates(predictions).loc["kaggle:x"])


def test_throughput_counts_beats_logged_in_the_last_window(mixed):
    assert throughput(mixed.predictions, window_s=10.0, now_s=T0_S + 19.9) == pytest.approx(1.5)  # 10 + 5 beats in 10 s


def test_latency_percentiles_skip_beats_without_sent_at(mixed):
    percentiles = latency_percentiles(mixed.predictions)

    assert percentiles["p50_ms"] == pytest.approx(19.5)
    assert percentiles["p99_ms"] == pytest.approx(np.percentile(np.arange(10, 30), 99))


def test_for_run_keeps_one_replay(logs, group):
    write(logs, group, [(T0_S + 1, prediction(1, run="a")), (T0_S + 2, prediction(1, run="b"))])

    assert for_run(read(logs, group).predictions, "b")["id"].tolist() == ["b:100:1"]


def test_aggregations_of_nothing_are_empty(logs, group):
    snapshot = read(logs, group)
    totals = snapshot.totals("run1")

    assert class_distribution(totals).empty
    assert confusion_matrix(totals).to_numpy().sum() == 0
    assert per_record(totals, snapshot.predictions).empty
    assert throughput(snapshot.predictions) == 0.0
    assert np.isnan(latency_percentiles(snapshot.predictions)["p95_ms"])


# --- bounded memory: the latest rows in full, every beat in the totals -----------------------------

def test_only_the_latest_rows_are_kept_but_every_beat_is_counted(logs, group):
    write(logs, group, [(T0_S + index / 10, prediction(index, label=index % 2, pred=0)) for index in range(30)])

    snapshot = read(logs, group, keep_rows=10, keep_misclassified=4)

    assert snapshot.predictions["sample"].tolist() == list(range(20, 30))
    assert snapshot.misclassified["sample"].tolist() == [23, 25, 27, 29]
    assert snapshot.stats.dropped_misclassified == 11
    totals = snapshot.totals("run1")
    assert (totals.predicted, snapshot.stats.predictions) == (30, 30)
    assert confusion_matrix(totals).loc[["N", "S"], "N"].tolist() == [15, 15]
    assert int(totals.timeline.sum()) == 30 and int(totals.records["100"].sum()) == 30


def test_a_copy_of_a_beat_no_longer_kept_as_a_row_is_still_a_duplicate(logs, group):
    reader = reader_for(logs, group, keep_rows=2)
    write(logs, group, [(T0_S + index, prediction(index)) for index in range(5)])
    reader.poll_once()
    write(logs, group, [(time.time(), prediction(0, seq=99))])  # beat 0 again, long after its row was dropped

    reader.poll_once()

    snapshot = reader.snapshot()
    assert snapshot.stats.duplicate_predictions == 1
    assert snapshot.totals("run1").predicted == 5 and "run1:100:0" in snapshot.totals("run1").ids


def test_the_totals_keep_each_beats_class_by_id(logs, group):
    write(logs, group, [(T0_S + 1, prediction(5, pred=3)), (T0_S + 2, prediction(7, record="201", pred=1))])

    ids = read(logs, group, keep_rows=1).totals("run1").ids

    assert ids.lookup(["100", "201", "100"], [5, 7, 6]).tolist() == [3, 1, -1]


def test_totals_of_all_runs_add_the_runs_up(logs, group):
    write(logs, group, [(T0_S + 1, prediction(1, run="a")), (T0_S + 30, prediction(1, run="b", pred=2))])

    snapshot = read(logs, group)

    both = snapshot.totals(None)
    assert (both.predicted, snapshot.totals("a").predicted, snapshot.totals("missing").predicted) == (2, 1, 0)
    assert len(both.timeline) == 30 and both.timeline[:, 2].sum() == 1
    assert both.first_ts == T0_S + 1 and both.last_ts == T0_S + 30


# --- statuses and AWS's timestamp format (a stub: moto completes every query at once) ------------

class StubLogs:
    """Answers get_query_results with ``statuses`` in turn, then the rows; records stop_query calls."""

    def __init__(self, statuses: list[str], rows: list[list[dict]] | None = None):
        self.statuses = list(statuses)
        self.rows = rows or []
        self.stopped: list[str] = []
        self.windows: list[tuple[int, int]] = []

    def start_query(self, logGroupNames, startTime, endTime, queryString):
        self.windows.append((startTime, endTime))
        return {"queryId": f"q{len(self.windows)}"}

    def get_query_results(self, queryId):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"status": status, "results": self.rows if status == "Complete" else []}

    def stop_query(self, queryId):
        self.stopped.append(queryId)
        return {"success": True}


def aws_row(stamp: str, line: dict) -> list[dict]:
    return [{"field": "@timestamp", "value": stamp}, {"field": "@message", "value": json.dumps(line)},
            {"field": "@logStream", "value": "s"}, {"field": "@ptr", "value": "CmAKJgoi"}]


def test_scheduled_and_running_queries_are_waited_for(monkeypatch):
    monkeypatch.setattr("hbcore.stream.reader.QUERY_WAIT_MIN_S", 0.001)
    stub = StubLogs(["Scheduled", "Running", "Running", "Complete"],
                    [aws_row("2026-11-27 19:42:35.975", prediction(1))])

    reader = ResultsReader(stub, "/aws/lambda/x")
    reader.poll_once()

    assert reader.snapshot().predictions["id"].tolist() == ["run1:100:1"]


def test_aws_timestamps_are_read_as_utc():
    expected = datetime(2026, 11, 27, 19, 42, 35, 975000, tzinfo=UTC).timestamp()

    assert parse_timestamp("2026-11-27 19:42:35.975") == pytest.approx(expected)
    assert parse_timestamp("1795867311975") == pytest.approx(1795867311.975)


def test_an_unreadable_timestamp_is_named():
    with pytest.raises(ValueError, match="@timestamp 'yesterday' is neither epoch milliseconds"):
        parse_timestamp("yesterday")


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout", "Unknown"])
def test_a_query_that_does_not_complete_fails_the_poll_and_the_window_is_read_again(status):
    stub = StubLogs([status])
    reader = ResultsReader(stub, "/aws/lambda/x", start_s=1_000)

    with pytest.raises(QueryFailed, match=f"ended {status}"):
        reader.poll_once(now_s=2_000)
    stub.statuses = ["Complete"]
    reader.poll_once(now_s=2_100)

    # the failed poll's window read again; then the first completed poll's count probe (the last LAG_MAX_S)
    assert stub.windows == [(1_000, 2_001), (1_000, 2_101), (2_101 - LAG_MAX_S, 2_101)]
    assert reader.snapshot().stats.failed_queries == 1


def test_a_query_running_past_the_timeout_is_stopped_and_fails_the_poll(monkeypatch):
    monkeypatch.setattr("hbcore.stream.reader.QUERY_WAIT_MIN_S", 0.01)
    stub = StubLogs(["Running"])
    reader = ResultsReader(stub, "/aws/lambda/x", query_timeout_s=0.05)

    with pytest.raises(QueryFailed, match=r"still Running after 0.05 s"):
        reader.poll_once()

    assert stub.stopped == ["q1"]
