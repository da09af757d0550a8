"""Class templates, examples per class and the beat lookup by (record, sample)."""

import numpy as np
import pandas as pd
import pytest

from hbcore.data import beat_templates as templates
from hbcore.data.dataset import BeatSet, meta_frame


def beatset() -> BeatSet:
    X = np.zeros((5, 187), np.float32)
    X[:, 0] = [0.1, 0.3, 0.9, 0.7, 0.5]
    y = np.array([0, 0, 2, 2, 0], np.int8)
    meta = meta_frame({"record": np.array(["100", "100", "119", "119", "208"]),
                       "sample": np.array([10, 20, 10, 30, 10]), "label": y.astype(np.int64)})
    return BeatSet(X, y, meta)


def test_class_templates_are_the_mean_window_of_each_present_class():
    shapes = templates.class_templates(beatset())
    assert sorted(shapes) == ["N", "V"]
    assert shapes["N"][0] == pytest.approx(0.3) and shapes["V"][0] == pytest.approx(0.8)


def test_class_examples_takes_at_most_n_per_class_deterministically():
    beats = beatset()
    first = templates.class_examples(beats, 1, seed=3)
    assert sorted(first.y.tolist()) == [0, 2]
    assert first.equals(templates.class_examples(beats, 1, seed=3))
    assert len(templates.class_examples(beats, 10)) == 5


def test_find_beat_by_record_and_sample():
    beats = beatset()
    index = templates.beat_index(beats)
    assert templates.find_beat(beats, index, "119", 30)[0] == np.float32(0.7)
    assert templates.find_beat(beats, index, "119", 31) is None


def test_find_beat_with_a_duplicated_key_takes_the_first():
    beats = beatset()
    doubled = BeatSet(np.vstack([beats.X, beats.X[::-1]]), np.concatenate([beats.y, beats.y[::-1]]),
                      pd.concat([beats.meta, beats.meta], ignore_index=True))
    assert templates.find_beat(doubled, templates.beat_index(doubled), "100", 10)[0] == np.float32(0.1)
