"""The context settings' sweeps: every candidate scored by the DS1 cross-validation, the best one
chosen (ties to the earlier), and no DS2 record read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hbcore.data import splits
from hbcore.data.dataset import BeatSet, meta_frame
from hbcore.model import selection

DS1_BEATS = 40  # beats of each synthetic DS1 record
DS2_BEATS = 25  # of the DS2 one: a context computed over that many rows would be its own


@pytest.fixture
def mixed_beats() -> BeatSet:
    """Synthetic beats of two DS1 records and one DS2 record, in time order within each record,
    with the context the dataset build would store."""
    counts = {splits.DS1_RECORDS[0]: DS1_BEATS, splits.DS1_RECORDS[1]: DS1_BEATS, splits.DS2_RECORDS[0]: DS2_BEATS}
    n = sum(counts.values())
    rng = np.random.default_rng(0)
    rr = rng.uniform(0.6, 1.0, n)
    meta = meta_frame({"record": np.repeat(list(counts), list(counts.values())),
                       "sample": np.concatenate([np.arange(count) * 300 for count in counts.values()]),
                       "label": np.zeros(n, np.int64), "rr_prev_s": rr, "rr_next_s": np.roll(rr, -1), "rr_local_s": rr})
    beats = BeatSet(rng.random((n, 187)).astype(np.float32), np.zeros(n, np.int8), meta,
                    pre=rng.random((n, 36)).astype(np.float32))
    return selection.with_context(beats)


@pytest.fixture
def scripted_scores(monkeypatch):
    """Replace the cross-validation by a list of scores handed out in call order; the beats each
    call received are kept in ``seen``."""
    script: dict = {"scores": [], "seen": []}

    def cross_validate(beats, params, n_folds=selection.N_FOLDS, seed=selection.FOLD_SEED, views=()):
        script["seen"].append(beats)
        return {"macro_f1": script["scores"][len(script["seen"]) - 1]}

    monkeypatch.setattr(selection, "cross_validate", cross_validate)
    return script


PARAMS = selection.CANDIDATES["lda-context"]


def test_the_sweep_scores_every_setting_and_keeps_the_earlier_of_equal_best(mixed_beats, scripted_scores):
    scripted_scores["scores"] = [0.4, 0.6, 0.6, 0.5]
    messages: list[str] = []

    result = selection.sweep_context(mixed_beats, PARAMS, {"a": 1, "b": 2, "c": 3, "d": 4},
                                     lambda beats, setting: beats, "setting", progress=messages.append)

    assert result == {"chosen": 2, "macro_f1": {"a": 0.4, "b": 0.6, "c": 0.6, "d": 0.5}}
    assert messages[-1] == "setting: chosen b"
    assert len(messages) == 5


def test_the_long_horizon_sweep_scores_each_horizon_with_its_own_context(mixed_beats, scripted_scores):
    scripted_scores["scores"] = [0.5, 0.7]

    result = selection.select_long_horizon(mixed_beats, PARAMS, horizons=(8, 16))

    assert result == {"chosen": 16, "macro_f1": {"8": 0.5, "16": 0.7}}
    ds1 = selection.ds1_only(mixed_beats)
    for beats, horizon in zip(scripted_scores["seen"], (8, 16)):
        np.testing.assert_array_equal(beats.context, selection.with_context(ds1, long_beats=horizon).context)
    first, second = (beats.context for beats in scripted_scores["seen"])
    assert not np.array_equal(first, second, equal_nan=True)


def test_the_previous_beat_ablation_comes_first_and_wins_a_tie(mixed_beats, scripted_scores):
    scripted_scores["scores"] = [0.55, 0.55]

    result = selection.select_previous_beat(mixed_beats, PARAMS)

    assert result == {"chosen": False, "macro_f1": {"without": 0.55, "with": 0.55}}
    without, with_ = scripted_scores["seen"]
    columns = [selection.patient.CONTEXT_NAMES.index(name) for name in selection.PREVIOUS_BEAT_NAMES]
    assert np.isnan(without.context[:, columns]).all()
    np.testing.assert_array_equal(with_.context, selection.ds1_only(mixed_beats).context)
    assert np.isfinite(with_.context[:, columns]).any()


@pytest.mark.parametrize("name", sorted(selection.FEATURE_SWEEPS))
def test_no_ds2_record_reaches_a_feature_sweep(name, mixed_beats, scripted_scores, monkeypatch):
    scripted_scores["scores"] = [0.5] * 8
    contexts_of: list[int] = []
    record_context = selection.patient.record_context

    def counting(X, *args):
        contexts_of.append(len(X))
        return record_context(X, *args)

    monkeypatch.setattr(selection.patient, "record_context", counting)

    selection.FEATURE_SWEEPS[name](mixed_beats, PARAMS)

    assert scripted_scores["seen"]
    for beats in scripted_scores["seen"]:
        assert set(beats.meta["record"]) == set(splits.DS1_RECORDS[:2])
    assert set(contexts_of) <= {DS1_BEATS}  # one DS1 record at a time, never the DS2 one


def test_the_sweeps_choose_the_best_real_cross_validation_score(mitdb_beats):
    """Every 10th DS1 beat, 3 folds: the chosen horizon is the one with the highest score."""
    beats = mitdb_beats.subset(np.arange(0, len(mitdb_beats), 10))
    params = dataclasses.replace(PARAMS, feature_groups=("rr", "context"))

    result = selection.select_long_horizon(beats, params, horizons=(64, 256), n_folds=3)

    scores = result["macro_f1"]
    assert set(scores) == {"64", "256"} and all(0.0 < score <= 1.0 for score in scores.values())
    assert str(result["chosen"]) == max(scores, key=lambda horizon: scores[horizon])
