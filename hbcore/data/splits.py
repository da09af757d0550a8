"""Train/test splits of a :class:`~hbcore.data.dataset.BeatSet`: intra-patient and inter-patient.

Both return ``(train, test)`` BeatSets; the ``*_index`` functions return the row index arrays
(sorted, so each part keeps the records in time order) for callers that split other arrays too.

- Intra-patient (the Kaggle convention): a stratified random 80/20 split over beats with a fixed
  seed. Beats of one patient fall on both sides, so scores are optimistic.
- Inter-patient (de Chazal et al. 2004): train on the DS1 records, test on the DS2 records; the
  paced records 102, 104, 107, 217 are in neither. This is the honest figure for unseen patients.
- By records (:func:`records_index`): any two disjoint lists of records, scored as inter-patient.
- Cross-validation folds by record (:func:`record_folds`): no patient on both sides of a fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hbcore.data.dataset import BeatSet

SPLIT_SEED = 42
TEST_SIZE = 0.2
DS1_RECORDS: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
DS2_RECORDS: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")


def intra_patient_index(y: np.ndarray, test_size: float = TEST_SIZE,
                        seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a stratified random split of labels ``y`` (same seed, same split)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y)
    return np.sort(train), np.sort(test)


def intra_patient(beats: BeatSet, test_size: float = TEST_SIZE, seed: int = SPLIT_SEED) -> tuple[BeatSet, BeatSet]:
    """Stratified random 80/20 split over beats (the Kaggle convention)."""
    train, test = intra_patient_index(beats.y, test_size, seed)
    return beats.subset(train), beats.subset(test)


def inter_patient_index(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the DS1 (train) and DS2 (test) beats, given each row's record."""
    records = np.asarray(records).astype(str)
    train = np.flatnonzero(np.isin(records, DS1_RECORDS))
    test = np.flatnonzero(np.isin(records, DS2_RECORDS))
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            "inter-patient split needs beats of MIT-BIH records from both DS1 and DS2 "
            f"(found {len(train)} DS1 and {len(test)} DS2 beats); Kaggle rows carry no record"
        )
    return train, test


def inter_patient(beats: BeatSet) -> tuple[BeatSet, BeatSet]:
    """DS1 → DS2 split by record (de Chazal 2004); paced records are left out."""
    train, test = inter_patient_index(beats.meta["record"].to_numpy())
    return beats.subset(train), beats.subset(test)


def check_records(train_records: Sequence[str], test_records: Sequence[str], available: Sequence[str]) -> None:
    """Refuse a records split that cannot be made: ``ValueError`` naming the first record not in
    ``available``, or the records named on both sides (a patient in both parts would make the
    figure intra-patient)."""
    present = set(available)
    for side, names in (("train", train_records), ("test", test_records)):
        if not names:
            raise ValueError(f"no {side} records given")
        for name in names:
            if name not in present:
                shown = ", ".join(sorted(present)[:3]) + (", ..." if len(present) > 3 else "")
                raise ValueError(f"record {name!r} ({side}) is not among the {len(present)} records here ({shown})")
    both = sorted(set(train_records) & set(test_records))
    if both:
        raise ValueError(f"records {', '.join(both)} are in both the train and the test records: "
                         "a patient on both sides is not an inter-patient split")


def records_index(records: np.ndarray, train_records: Sequence[str],
                  test_records: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the beats of ``train_records`` and of ``test_records``, given each row's record
    (checked by :func:`check_records` against the records the rows hold)."""
    records = np.asarray(records).astype(str)
    check_records(train_records, test_records, np.unique(records).tolist())
    return np.flatnonzero(np.isin(records, list(train_records))), np.flatnonzero(np.isin(records, list(test_records)))


def record_folds(records: np.ndarray, n_folds: int, seed: int = SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train, test) row-index pairs in which no record is on both sides.

    The distinct records are shuffled with ``seed`` and dealt to the folds in turn, so every record
    is tested in exactly one fold and the folds differ in size by at most one record.
    """
    records = np.asarray(records).astype(str)
    names = np.unique(records)
    if not 2 <= n_folds <= len(names):
        raise ValueError(f"{n_folds} folds over {len(names)} records: expected 2 to {len(names)} folds")
    order = np.random.default_rng(seed).permutation(names)
    folds = []
    for fold in range(n_folds):
        tested = np.isin(records, order[fold::n_folds])
        folds.append((np.flatnonzero(~tested), np.flatnonzero(tested)))
    return folds
