"""What the beats of each class look like: mean templates, example beats, one beat's window.

An analyst judges a misclassified beat by comparing it with what a typical beat of its true class
and of its predicted class looks like; the mean window of each class is that typical beat, and a
few random beats per class show how much a class varies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import BeatSet


def class_templates(beats: BeatSet) -> dict[str, np.ndarray]:
    """The mean window of every class present in ``beats`` (class name → float array of 187)."""
    templates = {}
    for label, name in enumerate(CLASS_NAMES):
        rows = beats.y == label
        if rows.any():
            templates[name] = beats.X[rows].mean(axis=0)
    return templates


def class_examples(beats: BeatSet, per_class: int, *, seed: int = 0) -> BeatSet:
    """Up to ``per_class`` random beats of every class (the same ones for the same seed)."""
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(beats.y == label), size=min(per_class, int((beats.y == label).sum())),
                         replace=False)
              for label in range(len(CLASS_NAMES))]
    return beats.subset(np.sort(np.concatenate(picked)).astype(np.int64))


def beat_index(beats: BeatSet) -> pd.Series:
    """Row number of every beat keyed by (record, sample): the key the stream and the logs carry."""
    keys = pd.MultiIndex.from_arrays([beats.meta["record"].astype(str), beats.meta["sample"].astype("int64")])
    return pd.Series(np.arange(len(beats)), index=keys)


def find_beat(beats: BeatSet, index: pd.Series, record: str, sample: int) -> np.ndarray | None:
    """The window of the beat at (record, sample), or None when ``beats`` does not hold it."""
    row = index.get((str(record), int(sample)))
    if row is None:
        return None
    if isinstance(row, pd.Series):  # duplicated key (two sources with one record name): first wins
        row = row.iloc[0]
    return beats.X[int(row)]
