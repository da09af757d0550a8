"""The live monitor's figures over a results snapshot."""

import math

import numpy as np
import pandas as pd
import pytest

from hbcore import dashboard
from hbcore.results import (_DTYPES, PREDICTION_COLUMNS, REJECTED_COLUMNS, SUMMARY_COLUMNS, ReaderStats,
                            ResultsSnapshot)

NOW_S = 1_800_000_000.0


def frame(columns, rows: dict) -> pd.DataFrame:
    n = len(next(iter(rows.values()))) if rows else 0
    return pd.DataFrame({name: pd.array(rows.get(name, [None] * n), dtype=_DTYPES[name]) for name in columns})


def snapshot(predictions: dict, rejected: dict | None = None) -> ResultsSnapshot:
    stats = ReaderStats("running", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, NOW_S, (), 0)
    return ResultsSnapshot(frame(PREDICTION_COLUMNS, predictions), frame(REJECTED_COLUMNS, rejected or {}),
                           frame(SUMMARY_COLUMNS, {}), stats)


PREDICTIONS = {
    "id": ["a:100:1", "a:100:2", "a:119:1", "a:119:2", "b:100:1"], "run": ["a", "a", "a", "a", "b"],
    "record": ["100", "100", "119", "119", "100"], "sample": [1, 2, 1, 2, 1], "t": [1.0, 1.8, 1.0, 2.0, 1.0],
    "label": [0, 0, 2, None, 0], "pred": [0, 2, 2, 2, 0], "prob": [0.9, 0.6, 0.99, 0.8, 0.9],
    "latency_ms": [100.0, 200.0, 300.0, 400.0, 50.0], "rr_local_s": [0.8, 0.8, 1.0, 1.0, 0.8],
    "ts": [NOW_S - 4, NOW_S - 3, NOW_S - 2, NOW_S - 1, NOW_S - 100],
}


def test_figures_of_one_run():
    figures = dashboard.dashboard_figures(snapshot(PREDICTIONS, {"run": ["a"], "reason": ["186 values"]}), "a", NOW_S)
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


@pytest.mark.parametrize(("span_s", "width_s"), [(0, 2.0), (120, 2.0), (121, 5.0), (1000, 30.0), (3600, 60.0), (3601, 120.0)])
def test_timeline_bins_stay_under_the_bar_limit(span_s, width_s):
    predictions = pd.DataFrame({"ts": [NOW_S, NOW_S + span_s]})
    assert dashboard.timeline_bin_s(predictions) == width_s
