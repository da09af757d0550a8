"""The context settings are chosen by DS1 cross-validation: the context recomputed for a candidate
setting is what the dataset build stores for the default one, and another setting changes only the
features that read it."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.data import patient
from hbcore.model import selection


@pytest.fixture(scope="module")
def record_119(mitdb_beats):
    """Record 119 (DS1): many ventricular beats, so every reference and the previous beat matter."""
    return mitdb_beats.subset((mitdb_beats.meta["record"] == "119").to_numpy())


def _columns_except(*names: str) -> list[int]:
    return [i for i, name in enumerate(patient.CONTEXT_NAMES) if name not in names]


def test_context_recomputed_with_the_default_settings_is_the_stored_one(mitdb_beats):
    beats = mitdb_beats.subset(mitdb_beats.meta["record"].isin(["101", "119"]).to_numpy())
    shuffled = beats.subset(np.random.default_rng(0).permutation(len(beats)))  # rows out of time order

    recomputed = selection.with_context(shuffled)

    np.testing.assert_array_equal(recomputed.context, shuffled.context)


def test_another_percentile_changes_only_the_slow_ratio(record_119):
    percentile = 50.0 if patient.SLOW_REFERENCE_PERCENTILE != 50 else 85.0

    other = selection.with_context(record_119, slow_percentile=percentile)

    others = _columns_except("rr_prev_slow_ratio")
    np.testing.assert_array_equal(other.context[:, others], record_119.context[:, others])
    slow = patient.CONTEXT_NAMES.index("rr_prev_slow_ratio")
    assert not np.array_equal(other.context[:, slow], record_119.context[:, slow], equal_nan=True)


def test_another_horizon_changes_only_the_long_ratios(record_119):
    horizon = 64 if patient.LONG_REFERENCE_BEATS != 64 else 128

    other = selection.with_context(record_119, long_beats=horizon)

    long_ratios = ("rr_prev_long_ratio", "rr_next_long_ratio")
    others = _columns_except(*long_ratios)
    np.testing.assert_array_equal(other.context[:, others], record_119.context[:, others])
    for name in long_ratios:
        column = patient.CONTEXT_NAMES.index(name)
        assert not np.array_equal(other.context[:, column], record_119.context[:, column], equal_nan=True)


def test_the_ablation_leaves_only_the_previous_beat_values_unknown(record_119):
    ablated = selection.without_previous_beat(record_119)

    others = _columns_except(*selection.PREVIOUS_BEAT_NAMES)
    np.testing.assert_array_equal(ablated.context[:, others], record_119.context[:, others])
    previous = [patient.CONTEXT_NAMES.index(name) for name in selection.PREVIOUS_BEAT_NAMES]
    assert np.isnan(ablated.context[:, previous]).all()
    assert np.isfinite(record_119.context[1:, previous]).all()  # every beat but the first had a previous one


def test_the_settings_in_use_are_ones_the_cross_validation_chose_among():
    assert patient.SLOW_REFERENCE_PERCENTILE in selection.SLOW_PERCENTILES
    assert patient.LONG_REFERENCE_BEATS in selection.LONG_HORIZONS_BEATS
    assert set(selection.PREVIOUS_BEAT_NAMES) <= set(patient.CONTEXT_NAMES)
