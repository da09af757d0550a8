"""The live monitor's figures over a results snapshot."""

import dataclasses
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


# --- one snapshot, named counts, freshness ---------------------------------------------------------------

def test_counts_name_what_they_count_and_add_up_to_what_was_sent():
    rejected = {"run": ["a"], "reason": ["186 values"], "seq": ["9"], "shard": ["shardId-0"], "ts": [NOW_S - 2]}
    counts = dashboard.dashboard_figures(snapshot(PREDICTIONS, rejected), "a", NOW_S, sent=9).counts
    assert (counts.sent, counts.processed, counts.rejected, counts.labelled) == (9, 4, 1, 3)
    assert counts.in_flight == 4
    assert dashboard.dashboard_figures(snapshot(PREDICTIONS), None, NOW_S).counts.in_flight is None


@pytest.mark.parametrize(("state", "poll_age_s", "expected"), [
    ("running", 1.0, "live"), ("running", dashboard.STALLED_AFTER_S + 1, "stalled"), ("running", None, "waiting"),
    ("failed", 1.0, "failed"), ("stopped", 1.0, "stopped")])
def test_freshness_says_live_or_stalled(state, poll_age_s, expected):
    stats = dataclasses.replace(snapshot({}).stats, state=state,
                                last_poll_s=None if poll_age_s is None else NOW_S - poll_age_s)
    fresh = dashboard.freshness(stats, now_s=NOW_S)
    assert fresh.state == expected and fresh.live == (expected == "live")
    assert fresh.age_s == poll_age_s


def test_freshness_shows_how_far_behind_the_reader_is_when_it_says_so():
    stats = snapshot({}).stats
    plain = dashboard.freshness(stats, now_s=NOW_S)
    text = dashboard.freshness_text(dataclasses.replace(plain, behind_s=12.4, unreconciled=30))
    assert "complete up to 12 s ago" in text and "30 invocations not fully read yet" in text
    assert dashboard.freshness_text(dataclasses.replace(plain, state="stalled")).startswith(":orange-badge[● stalled]")


def test_kaggle_rows_show_their_row_not_none_for_time():
    rows = {"id": ["k:1", "k:2"], "run": ["a", "a"], "record": ["kaggle:test"] * 2, "sample": [7, 8],
            "pred": [2, 0], "ts": [NOW_S - 2, NOW_S - 1]}
    latest = dashboard.dashboard_figures(snapshot(rows), "a", NOW_S).latest_abnormal
    assert latest["time in record"].tolist() == ["row 7"]
    timed = dashboard.dashboard_figures(snapshot(PREDICTIONS), "a", NOW_S).latest_abnormal
    assert timed["time in record"][0] == "2.00 s"


# --- the KPIs over time ----------------------------------------------------------------------------------

def test_kpi_series_gives_throughput_latency_and_reject_rate_per_bin():
    rejected = {"run": ["a"], "reason": ["186 values"], "seq": ["9"], "shard": ["shardId-0"], "ts": [NOW_S - 3.5]}
    figures = dashboard.dashboard_figures(snapshot(PREDICTIONS, rejected), "a", NOW_S)
    series = figures.series  # run a: 4 beats logged in 4 s, 2 per 2-s bin; the rejected record in the first bin
    assert list(series.columns) == ["time", *dashboard.SERIES_COLUMNS]
    assert series["beats_per_s"].tolist() == [1.0, 1.0]
    assert series["reject_rate"].tolist() == pytest.approx([1 / 3, 0.0])
    assert series["latency_p95_ms"].tolist() == pytest.approx([np.percentile([100, 200], 95),
                                                              np.percentile([300, 400], 95)])


def test_kpi_series_of_a_partial_bin_is_a_rate_over_the_seconds_covered():
    rows = {"id": [f"a:1:{i}" for i in range(30)], "run": ["a"] * 30, "record": ["100"] * 30,
            "sample": list(range(30)), "t": [i * 0.8 for i in range(30)], "pred": [0] * 30,
            "ts": [NOW_S - 200 + i * 0.1 for i in range(30)]}  # 30 beats in 3 seconds
    series = dashboard.dashboard_figures(snapshot(rows), "a", NOW_S).series
    assert series["beats_per_s"].max() == pytest.approx(10.0)


def test_kpi_series_is_empty_without_beats():
    assert dashboard.dashboard_figures(snapshot({}), "a", NOW_S).series.empty


# --- patient tiles ---------------------------------------------------------------------------------------

def test_tiles_put_unacknowledged_alarms_first_then_the_most_abnormal():
    import pandas as pd

    per_record = pd.DataFrame({"beats": [100, 100, 100, 50], "abnormal": [0, 30, 5, 0],
                               "accuracy": [0.99, 0.8, 0.9, 1.0], "heart_rate_bpm": [70.0, 80, 90, 60]},
                              index=pd.Index(["100", "119", "208", "233"], name="record"))
    tiles = dashboard.patient_tiles(per_record, alarmed={"233"})
    assert tiles.index.tolist() == ["233", "119", "208", "100"]
    assert tiles["status"].tolist() == ["alarm", "abnormal", "abnormal", "normal"]
    assert tiles["color"].tolist() == ["red", "orange", "orange", "green"]
    assert tiles.loc["119", "abnormal_share"] == pytest.approx(0.3)


# --- the deployed model's offline figures ----------------------------------------------------------------

def test_offline_figures_come_from_the_models_metadata():
    metadata = {"split": "intra", "n_test": 500, "metrics": {
        "accuracy": 0.97, "macro_f1": 0.8, "per_class": {
            "N": {"recall": 0.99, "support": 400}, "S": {"recall": 0.6, "support": 50}, "Q": {"recall": 0.0,
                                                                                           "support": 0}}}}
    figures = dashboard.offline_figures(metadata, "v1")
    assert (figures.version, figures.split, figures.n_test, figures.accuracy, figures.macro_f1) == (
        "v1", "intra", 500, 0.97, 0.8)
    assert figures.sensitivity == {"N": 0.99, "S": 0.6}  # a class without test beats has no Se
    assert dashboard.offline_figures({"split": "intra"}, "v2") is None


def test_offline_figures_prefer_the_models_own_evaluation_summary():
    metadata = {"split": "inter", "n_test": 49_000, "metrics": {"accuracy": 0.5},
                "evaluation": {"split": "inter", "test_records": ["100", "103"], "classes": "N/S/V/F",
                               "accuracy": 0.914, "macro_f1": 0.51, "se": {"N": 0.95, "S": 0.29, "F": None}}}
    figures = dashboard.offline_figures(metadata, "v1")
    assert (figures.accuracy, figures.macro_f1, figures.classes, figures.test_records) == (
        0.914, 0.51, "N/S/V/F", ("100", "103"))
    assert figures.sensitivity == {"N": 0.95, "S": 0.29}


def test_deployed_model_figures_find_the_version_the_beats_carry(tmp_path):
    import json as json_

    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "model.tar.gz").write_bytes(b"x")
    (folder / "metadata.json").write_text(json_.dumps({"split": "inter", "metrics": {"accuracy": 0.9}}))
    assert dashboard.deployed_model_figures("v1", tmp_path).split == "inter"
    assert dashboard.deployed_model_figures("v2", tmp_path) is None
    assert dashboard.deployed_model_figures(None, tmp_path) is None


def test_the_model_is_the_one_of_the_latest_beat():
    rows = {**PREDICTIONS, "model_version": ["m1", "m1", "m2", None, "m1"]}
    assert dashboard.dashboard_figures(snapshot(rows), "a", NOW_S).model_version == "m2"  # a:119:2 carries none
    assert dashboard.dashboard_figures(snapshot({}), "a", NOW_S).model_version is None
