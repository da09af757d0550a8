"""``bench alarms``: the targets' pass/fail and one source scored on a real record."""

from __future__ import annotations

from hbcore.bench import alarmbench


def result(v_run: float | None, af_duration: float | None, source: str = "model") -> dict:
    events = {"v_run": {"se": v_run, "ppv": v_run}, "af": {"se": 1.0, "ppv": 1.0}}
    return {"source": source, "events": events, "af_duration": {"se": af_duration, "ppv": af_duration}}


def test_targets_and_the_minimum_are_told_apart():
    rows = {(row["kind"], row["figure"]): row for row in alarmbench.targets(result(0.85, 0.95))}
    assert not rows["v_run", "se"]["met"] and rows["v_run", "se"]["minimum_met"]
    assert rows["af_duration", "ppv"]["met"] and rows["af", "se"]["minimum"] is None


def test_the_minimum_is_judged_on_the_model_source_alone():
    passing, failing = result(0.85, 0.85), result(0.5, 0.85)
    for item in (passing, failing):
        item["targets"] = alarmbench.targets(item)
    reference_failing = result(0.1, 0.1, "reference") | {"targets": alarmbench.targets(result(0.1, 0.1))}
    assert alarmbench.minimum_met([reference_failing, passing])
    assert not alarmbench.minimum_met([failing])


def test_a_figure_that_cannot_be_computed_misses_its_target():
    rows = alarmbench.targets(result(None, 0.9))
    assert [row["met"] for row in rows if row["kind"] == "v_run"] == [False, False]


def test_one_record_scored_from_its_reference_labels(mitdb_dir):
    from hbcore.data.dataset import build_record

    beats = build_record(mitdb_dir, "233")
    scored = alarmbench.score_source(mitdb_dir, beats, beats.y, ["233"], "reference")
    assert scored["events"]["v_run"]["se"] == 1.0 and scored["events"]["v_run"]["ppv"] == 1.0
    assert scored["latency_max_s"] <= 2.0 and set(scored["per_record"]) == {"233"}


def test_the_af_selection_report_says_when_the_detector_in_use_is_not_the_cv_winner(capsys):
    from hbcore.rhythm.detector import AF_PARAMS, RUN_PARAMS, AfParams, RunParams

    winner = alarmbench._describe(AfParams())
    row = {**winner, "fold_limits": [0.97], "episode_se": 1.0, "episode_ppv": 1.0, "duration_se": 0.9,
           "duration_ppv": 0.5, "score": 0.5}
    default = alarmbench._describe_runs(RunParams())
    runs = {"candidates": [{**default, "se": 0.2, "ppv": 0.1, "n_ref": 10, "n_detected": 20, "score": 0.1}],
            "cross_validated": {"se": 0.2, "ppv": 0.1, "n_ref": 10, "n_detected": 20, "score": 0.1},
            "fold_choices": [default], "chosen": default, "in_use": alarmbench._describe_runs(RUN_PARAMS)}
    alarmbench.print_select_af({"candidates": [row], "chosen": winner, "in_use": alarmbench._describe(AF_PARAMS),
                                "runs": runs})
    out = capsys.readouterr().out
    assert "AF_PARAMS is NOT this choice but {'window': 128, 'metric': 'dash'" in out
    assert "leave-one-record-out (the choice procedure): Se 0.200 +P 0.100" in out


def test_the_trivial_baselines_find_everything_at_a_cost(mitdb_dir):
    """Every beat called V makes one run per stretch without a 1.8 s gap, covering every reference run (Se 1
    under rxr's upward matching, +P the share of those few runs that hold one); AF all the time covers all
    AF time, its +P the share of compared time that is AF."""
    from hbcore.data.dataset import build_record

    runs = alarmbench.trivial_baseline(mitdb_dir, build_record(mitdb_dir, "208"), ["208"])["every_beat_v"]["v_run"]
    assert runs["se"] == 1.0 and runs["n_ref"] > 5 and runs["n_detected"] < runs["n_ref"]
    af = alarmbench.trivial_baseline(mitdb_dir, build_record(mitdb_dir, "201"), ["201"])["af_all_the_time"]
    assert af["af_duration"]["se"] == 1.0 and 0.0 < af["af_duration"]["ppv"] < 0.5
