"""Matching Kaggle rows to the rebuilt MIT-BIH beats they were cut from (hbcore.data.kaggle.match_rebuilt)."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.data import dataset
from hbcore.data.dataset import BeatSet
from hbcore.data.kaggle import load_kaggle_csv, match_rebuilt


def _windows(signal: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return dataset.beat_windows(signal, starts, lengths, dataset.KAGGLE_STEP)


def _beats(X: np.ndarray, labels: np.ndarray) -> BeatSet:
    meta = dataset.meta_frame({"record": np.full(len(X), "100"), "sample": np.arange(len(X)), "label": labels})
    return BeatSet(X, labels, meta)


@pytest.fixture
def signal() -> np.ndarray:
    """An integer random walk, like ADC values: no two stretches have the same shape."""
    return np.cumsum(np.random.default_rng(5).integers(-6, 7, 60_000)).astype(np.int64)


def test_rows_match_their_beat_whatever_the_window_length(signal):
    starts = np.arange(100, 50_000, 400)
    labels = np.arange(len(starts)) % 5
    rebuilt = _beats(_windows(signal, starts, np.full(len(starts), 120)), labels)
    picked = np.array([3, 40, 7, 99])
    # The published rows of the same beats: other window lengths, so other min-max scaling and padding.
    rows = _beats(_windows(signal, starts[picked], np.array([60, 150, 187, 90])), labels[picked])
    assert match_rebuilt(rows, rebuilt).tolist() == picked.tolist()


def test_a_row_of_no_rebuilt_beat_or_of_another_label_matches_nothing(signal):
    starts = np.arange(100, 20_000, 400)
    rebuilt = _beats(_windows(signal, starts, np.full(len(starts), 120)), np.zeros(len(starts), np.int8))
    elsewhere = _windows(signal, np.array([starts[4] + 3]), np.array([120]))  # one sample off the annotation
    relabelled = _windows(signal, starts[[6]], np.array([120]))
    rows = _beats(np.vstack([elsewhere, relabelled]), np.array([0, 2]))
    assert match_rebuilt(rows, rebuilt).tolist() == [-1, -1]


def test_a_flat_row_matches_nothing(signal):
    starts = np.arange(100, 20_000, 400)
    rebuilt = _beats(_windows(signal, starts, np.full(len(starts), 120)), np.zeros(len(starts), np.int8))
    assert match_rebuilt(_beats(np.zeros((1, 187)), np.zeros(1, np.int8)), rebuilt).tolist() == [-1]


def test_every_real_kaggle_row_matches_one_beat_of_its_class(kaggle_dir, mitdb_dir):
    rebuilt = dataset.build_beats(mitdb_dir, recipe="kaggle")
    for name in ("mitbih_train_sample500.csv", "mitbih_train_head10.csv", "mitbih_test_head10.csv"):
        rows = load_kaggle_csv(kaggle_dir / name)
        matches = match_rebuilt(rows, rebuilt)
        assert (matches >= 0).all(), f"{name}: {(matches < 0).sum()} rows matched no beat"
        assert len(set(matches.tolist())) == len(rows), f"{name}: two rows matched the same beat"
        assert np.array_equal(rebuilt.y[matches], rows.y)
