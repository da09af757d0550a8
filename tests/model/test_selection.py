"""The honest selection protocol: cross-validation folds disjoint by record, inside DS1 only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hbcore.data import splits
from hbcore.model import selection


@pytest.fixture(scope="module")
def sparse_beats(mitdb_beats):
    """Every 10th beat of every record (DS1, DS2 and the paced ones): selection must drop all but DS1."""
    return mitdb_beats.subset(np.arange(0, len(mitdb_beats), 10))


def test_selection_reads_only_ds1(sparse_beats):
    kept = selection.ds1_only(sparse_beats)
    assert set(kept.meta["record"]) == set(splits.DS1_RECORDS)


def test_selection_refuses_beats_without_ds1(sparse_beats):
    ds2 = sparse_beats.subset(sparse_beats.meta["record"].isin(splits.DS2_RECORDS).to_numpy())
    with pytest.raises(ValueError, match="DS1"):
        selection.ds1_only(ds2)


def test_cross_validation_folds_are_disjoint_by_record_and_cover_ds1(sparse_beats):
    params = dataclasses.replace(selection.CANDIDATES["lda-context"], feature_groups=("rr", "context"))

    result = selection.cross_validate(sparse_beats, params, n_folds=4)

    tested = [set(fold) for fold in result["folds"]]
    assert all(not (a & b) for i, a in enumerate(tested) for b in tested[i + 1:])
    assert set().union(*tested) == set(splits.DS1_RECORDS)
    assert 0.0 < result["macro_f1"] <= 1.0
    assert result["prior_power"] in selection.PRIOR_POWERS
    assert set(result["by_prior_power"]) == {str(power) for power in selection.PRIOR_POWERS}


def test_every_beat_is_predicted_by_a_model_that_never_saw_its_record(sparse_beats, monkeypatch):
    beats = selection.ds1_only(sparse_beats)
    folds = splits.record_folds(beats.meta["record"].to_numpy(), 4)
    trained_on: list[set[str]] = []
    train_model = selection.training.train_model

    def recording(train, params, views=(), **info):
        trained_on.append(set(train.meta["record"]))
        return train_model(train, params, views, **info)

    monkeypatch.setattr(selection.training, "train_model", recording)
    selection.out_of_fold_probabilities(beats, dataclasses.replace(selection.CANDIDATES["lda-context"],
                                                                   feature_groups=("rr",)), folds)

    records = beats.meta["record"].to_numpy()
    assert len(trained_on) == len(folds)
    for training_records, (_, test_rows) in zip(trained_on, folds):
        assert not training_records & set(records[test_rows])


def test_select_model_names_the_best_candidate(sparse_beats):
    quick = {name: dataclasses.replace(params, feature_groups=groups)
             for name, params, groups in [("rr", selection.CANDIDATES["lda-context"], ("rr",)),
                                          ("rr-context", selection.CANDIDATES["lda-context"], ("rr", "context"))]}

    result = selection.select_model(sparse_beats, quick, n_folds=3)

    scores = {name: figures["macro_f1"] for name, figures in result["candidates"].items()}
    assert result["chosen"] == max(scores, key=scores.get)
    assert result["params"]["prior_power"] == result["candidates"][result["chosen"]]["prior_power"]
    assert result["records"] == sorted(splits.DS1_RECORDS)
