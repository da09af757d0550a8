"""The live monitor's figures over a results snapshot."""

import json
import math

import numpy as np
import pytest

from hbcore.app import dashboard
from hbcore.bench.appbench import InMemoryLogsInsights
from hbcore.stream.reader import ResultsReader
from hbcore.stream.tally import ResultsSnapshot

NOW_S = 1_800_000_000.0


def snapshot(predictions: dict, rejected: dict | None = None) -> ResultsSnapshot:
    """What a results reader holds after reading these lines (columns of prediction / rejected fields, with "ts")."""
    lines = [{"type": kind, **dict(zip(columns, values))}
             for kind, columns in (("prediction", predictions), ("rejected", rejected or {}))
             for values in zip(*columns.values())]
    events = sorted((int(line.pop("ts") * 1000), json.dumps(line)) for line in lines)
    reader = ResultsReader(InMemoryLogsInsights(events), "/aws/lambda/test", start_s=NOW_S - 1000)
    reader.poll_once(now_s=NOW_S)
    return reader.snapshot()


PREDICTIONS = {
    "id": ["a:100:1", "a:100:2", "a:119:1", "a:119:2", "b:100:1"], "run": ["a", "a", "a", "a", "b"],
    "record": ["100", "100", "119", "119", "100"], "sample": [1, 2, 1, 2, 1], "t": [1.0, 1.8, 1.0, 2.0, 1.0],
    "label": [0, 0, 2, None, 0], "pred": [0, 2, 2, 2, 0], "prob": [0.9, 0.6, 0.99, 0.8, 0.9],
    "latency_ms": [100.0, 200.0, 300.0, 400.0, 50.0], "rr_local_s": [0.8, 0.8, 1.0, 1.0, 0.8],
    "ts": [NOW_S - 4, NOW_S - 3, NOW_S - 2, NOW_S - 1, NOW_S - 100],
}


def test_figures_of_one_run():
    rejected = {"run": ["a"], "reason": ["186 values"], "seq": ["9"], "shard": ["shardId-0"], "ts": [NOW_S - 2]}
    figures = dashboard.dashboard_figures(snapshot(PREDICTIONS, rejected), "a", NOW_S)
    assert figures.beats == 4 and figures.rejected == 1 and figures.labelled == 3
    assert figures.abnormal_rate == 0.75
    assert figures.accuracy == pytest.approx(2 / 3)
    assert figures.beats_per_s == pytest.approx(4 / dashboard.THROUGHPUT_WINDOW_S)
    assert figures.latency_p95_ms == pytest.approx(np.percentile([100, 200, 300, 400], 95))
    assert figures.confusion.loc["N", "V"] == 1 and figures.confusion.loc["V", "V"] == 1
    assert figures.per_record.loc["119", "abnormal"] == 2
    assert figures.distribution.to_numpy().sum() == 4
    assert figures.rejection_reasons["reason"].tolist() == ["186 values"]


def test_latest_abnormal_is_newest_first_with_class_names():
    latest = dashboard.dashboard_figures(snapshot(PREDICTIONS), "a", NOW_S).latest_abnormal
    assert latest["id"].tolist() == ["a:119:2", "a:119:1", "a:100:2"]
    assert latest["predicted"].tolist() == ["V", "V", "V"] and latest["true"].tolist() == ["", "V", "N"]


def test_all_runs_when_no_run_is_given():
    assert dashboard.dashboard_figures(snapshot(PREDICTIONS), None, NOW_S).beats == 5


def test_no_predictions_gives_empty_figures():
    figures = dashboard.dashboard_figures(snapshot({}), "a", NOW_S)
    assert figures.beats == 0 and figures.labelled == 0 and figures.beats_per_s == 0.0
    assert math.isnan(figures.abnormal_rate) and math.isnan(figures.accuracy) and math.isnan(figures.latency_p95_ms)
    assert figures.latest_abnormal.empty and figures.per_record.empty


@pytest.mark.parametrize(("span_s", "width_s"),
                         [(0, 2.0), (120, 2.0), (121, 5.0), (1000, 30.0), (3600, 60.0), (3601, 120.0)])
def test_timeline_bins_stay_under_the_bar_limit(span_s, width_s):
    assert dashboard.timeline_bin_s(span_s) == width_s


def test_counts_cover_beats_no_longer_kept_as_rows():
    events = [(int((NOW_S - 50 + index / 100) * 1000), json.dumps({
        "type": "prediction", "id": f"a:100:{index}", "run": "a", "record": "100", "sample": index, "t": index * 0.8,
        "label": 0, "pred": 2 if index < 10 else 0, "prob": 0.9, "latency_ms": 100.0, "rr_local_s": 0.8}))
        for index in range(1000)]
    reader = ResultsReader(InMemoryLogsInsights(events), "/aws/lambda/test", start_s=NOW_S - 1000, keep_rows=100)
    reader.poll_once(now_s=NOW_S)

    figures = dashboard.dashboard_figures(reader.snapshot(), "a", NOW_S)

    assert figures.beats == 1000 and figures.labelled == 1000 and figures.confusion.loc["N", "V"] == 10
    assert figures.per_record.loc["100", "beats"] == 1000 and figures.distribution.to_numpy().sum() == 1000
    assert figures.latest_abnormal.empty  # the 10 V beats came first: no longer kept as rows
