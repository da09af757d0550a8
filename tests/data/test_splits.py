"""Intra-patient (stratified 80/20) and inter-patient (DS1/DS2) splits."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.data import dataset, splits
from hbcore.data.dataset import BeatSet

DS1 = {"101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
       "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230"}
DS2 = {"100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
       "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234"}


def _beats(records: list[str], labels: list[int]) -> BeatSet:
    n = len(labels)
    meta = dataset.meta_frame({"record": np.array(records), "sample": np.arange(n), "label": np.array(labels)})
    return BeatSet(np.zeros((n, 187)), np.array(labels), meta)


@pytest.fixture
def imbalanced() -> BeatSet:
    labels = [0] * 800 + [1] * 100 + [2] * 60 + [3] * 15 + [4] * 25
    return _beats(["100"] * len(labels), labels)


def test_record_lists_are_de_chazal_2004() -> None:
    assert set(splits.DS1_RECORDS) == DS1 and set(splits.DS2_RECORDS) == DS2
    assert set(splits.PACED_RECORDS) == {"102", "104", "107", "217"}


def test_intra_split_is_80_20_and_stratified(imbalanced: BeatSet) -> None:
    train, test = splits.intra_patient(imbalanced)
    assert len(test) == 200 and len(train) == 800
    assert test.class_counts() == {"N": 160, "S": 20, "V": 12, "F": 3, "Q": 5}


def test_intra_split_partitions_the_beats(imbalanced: BeatSet) -> None:
    train, test = splits.intra_patient_index(imbalanced.y)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(imbalanced)))
    assert (np.diff(train) > 0).all() and (np.diff(test) > 0).all()


def test_intra_split_is_deterministic_for_a_seed(imbalanced: BeatSet) -> None:
    first = splits.intra_patient_index(imbalanced.y, seed=7)[1]
    assert np.array_equal(first, splits.intra_patient_index(imbalanced.y, seed=7)[1])
    assert not np.array_equal(first, splits.intra_patient_index(imbalanced.y, seed=8)[1])


def test_inter_split_by_record_leaves_paced_records_out() -> None:
    records = ["101", "100", "102", "217", "234", "230"]
    train, test = splits.inter_patient(_beats(records, [0] * len(records)))
    assert train.records() == ["101", "230"] and test.records() == ["100", "234"]


def test_inter_split_needs_mit_bih_records() -> None:
    with pytest.raises(ValueError, match="needs beats of MIT-BIH records"):
        splits.inter_patient(_beats(["kaggle:mitbih_test"] * 3, [0, 1, 2]))


def test_real_inter_split_holds_exactly_ds1_and_ds2(mitdb_beats: BeatSet) -> None:
    train, test = splits.inter_patient(mitdb_beats)
    assert set(train.records()) == DS1 and set(test.records()) == DS2
    assert not set(train.meta["record"]) & set(test.meta["record"])
    assert train.class_counts()["S"] > 0 and test.class_counts()["S"] > 0


@pytest.fixture
def four_records() -> BeatSet:
    records = ["101"] * 5 + ["106"] * 4 + ["100"] * 3 + ["103"] * 2
    return _beats(records, [0] * len(records))


def test_records_split_takes_exactly_the_named_records(four_records: BeatSet) -> None:
    train, test = splits.records_index(four_records.meta["record"].to_numpy(), ["101", "106"], ["103"])
    assert set(four_records.subset(train).records()) == {"101", "106"} and len(train) == 9
    assert four_records.subset(test).records() == ["103"] and len(test) == 2


def test_records_split_names_a_record_the_beats_do_not_hold(four_records: BeatSet) -> None:
    message = r"record '999' \(test\) is not among the 4 records here \(100, 101, 103, \.\.\.\)"
    with pytest.raises(ValueError, match=message):
        splits.records_index(four_records.meta["record"].to_numpy(), ["101"], ["100", "999"])


def test_records_split_refuses_a_record_on_both_sides(four_records: BeatSet) -> None:
    with pytest.raises(ValueError, match="records 100, 101 are in both"):
        splits.records_index(four_records.meta["record"].to_numpy(), ["101", "100"], ["100", "101", "103"])


def test_records_split_needs_both_parts(four_records: BeatSet) -> None:
    with pytest.raises(ValueError, match="no train records"):
        splits.records_index(four_records.meta["record"].to_numpy(), [], ["100"])


def test_record_folds_are_disjoint_by_record_and_test_every_record_once() -> None:
    records = np.repeat(np.array(sorted(DS1)), 7)
    folds = splits.record_folds(records, 5, seed=3)
    tested = [set(records[test]) for _train, test in folds]
    for (train, test), held_out in zip(folds, tested):
        assert not set(records[train]) & held_out
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(records)))
    assert sorted(name for names in tested for name in names) == sorted(DS1)
    assert sorted(len(names) for names in tested) == [4, 4, 4, 5, 5]


def test_record_folds_follow_the_seed() -> None:
    records = np.repeat(np.array(sorted(DS1)), 3)
    first = [test.tolist() for _train, test in splits.record_folds(records, 4, seed=1)]
    assert first == [test.tolist() for _train, test in splits.record_folds(records, 4, seed=1)]
    assert first != [test.tolist() for _train, test in splits.record_folds(records, 4, seed=2)]


def test_record_folds_need_two_to_n_records_folds() -> None:
    with pytest.raises(ValueError, match="3 folds over 2 records"):
        splits.record_folds(np.array(["100", "101"]), 3)
