"""``bench model``: figures over seeds, the per-record EC57 table, the Kaggle rows the model never saw,
the targets judged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hbcore.bench import modelbench as bench
from hbcore.data import dataset
from hbcore.data.dataset import BeatSet
from hbcore.model import metrics

# Two DS1 records to train on, two DS2 records to test on (F beats: 213; S beats: 100, 118).
SUBSET_RECORDS = ["106", "118", "100", "213"]


@pytest.fixture(scope="module")
def subset(mitdb_dir) -> BeatSet:
    return dataset.build_beats(mitdb_dir, SUBSET_RECORDS)


@pytest.fixture(scope="module")
def inter(subset) -> dict:
    return bench.bench_inter(subset, [], seeds=2)


def test_spread_is_mean_sd_min_max_over_the_defined_seeds():
    assert bench.spread([0.5, None, 0.7, 0.6]) == pytest.approx(
        {"mean": 0.6, "sd": 0.1, "min": 0.5, "max": 0.7, "n": 3})
    assert bench.spread([0.4]) == {"mean": 0.4, "sd": 0.0, "min": 0.4, "max": 0.4, "n": 1}
    assert bench.spread([None])["mean"] is None


def test_targets_are_judged_on_the_figure_they_name():
    at_least = bench.Target("x >= 0.5", "minimum", lambda r: r["x"], at_least=0.5)
    at_most = bench.Target("t <= 180 s", "required", lambda r: r["t"], at_most=180)
    assert at_least.judge({"x": 0.5})["met"] and not at_least.judge({"x": 0.49})["met"]
    assert not at_least.judge({"x": None})["met"]
    assert at_most.judge({"t": 179.0}) == {"target": "t <= 180 s", "tier": "required", "value": 179.0, "met": True}
    assert not at_most.judge({"t": 181.0})["met"]


def test_the_per_record_table_covers_the_test_records_over_seeds(inter, subset):
    assert inter["records"] == ["100", "213"]
    assert [row["record"] for row in inter["per_record"]] == ["100", "213"]
    test = subset.subset(np.isin(subset.meta["record"], ["100", "213"]))
    assert inter["n_test"] == int((test.y < 4).sum())
    for row in inter["per_record"]:
        beats = test.subset(test.meta["record"] == row["record"])
        assert row["counts"] == {name: int((beats.y == label).sum()) for label, name in enumerate("NSVF")}
        assert row["beats"] == sum(row["counts"].values())
        assert row["se"]["F"] is None if row["counts"]["F"] == 0 else row["se"]["F"] is not None
    assert inter["accuracy"]["n"] == 2 and inter["gross"]["V"]["se"]["n"] == 2
    assert inter["all_n_baseline"] == pytest.approx(metrics.all_n_baseline(test.y))


def test_record_confusions_sum_to_the_gross_confusion(subset):
    from hbcore.model.training import evaluate_model

    model, test = bench._fit(subset, [], "inter", bench._model_seeds("inter", 1)[0])
    per_record = bench.record_confusions(model, test)
    assert list(per_record) == ["100", "213"]
    assert np.array_equal(sum(per_record.values()), np.asarray(evaluate_model(model, test)["aami4"]["confusion"]))


def test_unseen_rows_leave_out_the_training_beats_and_the_unmatched_rows(subset):
    rebuilt = subset  # rows cut from these very windows match them exactly
    picked = np.array([0, 1, 2, 3000])
    rows = subset.subset(picked)
    rows = BeatSet(np.vstack([rows.X, np.zeros((1, 187))]), np.append(rows.y, 0), dataset.meta_frame(
        {"record": np.full(5, "kaggle:x"), "sample": np.arange(5), "label": np.append(rows.y, 0)}))
    unseen, counts = bench.unseen_rows(rows, rebuilt, trained_on=subset.subset([0, 2]))
    assert unseen.tolist() == [False, True, False, True, False]
    assert counts == {"rows": 5, "matched": 4, "in_training": 2, "unseen": 2}


def test_the_report_shows_the_figures_per_record_and_the_targets(inter, subset, capsys):
    _model, _test, intra = bench.bench_intra(subset, [], seeds=1)
    intra.pop("models")
    result = {"seeds": [0, 1], "inter": inter, "intra": intra, "kaggle": {"rows": 0},
              "inference": {"inference_beats_per_s": 30_000.0}, "load_avg_1m": {"before": 1.0, "after": 2.0}}
    result["targets"] = [target.judge(result) for target in bench.TARGETS]
    bench.print_report(result)
    text, json_line = capsys.readouterr().out.rstrip("\n").rsplit("\n", 1)
    assert "over 2 seed(s) [0, 1], never the best seed" in text
    assert any(line.split()[:2] == ["213", str(inter["per_record"][1]["beats"])] for line in text.splitlines())
    assert "all-N baseline" in text and "86.2" not in text
    assert sum(line.lstrip().startswith(("met", "MISSED")) for line in text.splitlines()) == len(bench.TARGETS)
    parsed = json.loads(json_line)
    assert parsed["bench"] == "model" and parsed["targets"][-1]["met"] is True
    assert parsed["inter"]["per_record"][0]["record"] == "100"


def test_bench_inference_times_a_batch_and_one_request_per_content_type(small_model_tar, subset):
    from hbcore.model.training import load_model

    figures = bench.bench_inference(load_model(small_model_tar), subset)
    assert figures["inference_batch_beats"] == len(subset) and figures["inference_beats_per_s"] > 0
    assert figures["request_beats"] == bench.REQUEST_BEATS
    steps = [f"request_{kind}_{step}_ms" for kind in ("csv", "json") for step in ("parse", "predict", "output")]
    assert all(figures[step] > 0 for step in steps)
