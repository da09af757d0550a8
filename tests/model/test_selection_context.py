"""The slow reference's percentile is chosen by DS1 cross-validation: the context recomputed for a
candidate percentile is what the dataset build stores for the default one."""

from __future__ import annotations

import numpy as np

from hbcore.data import patient
from hbcore.model import selection


def test_context_recomputed_at_the_default_percentile_is_the_stored_one(mitdb_beats):
    beats = mitdb_beats.subset(mitdb_beats.meta["record"].isin(["101", "119"]).to_numpy())
    shuffled = beats.subset(np.random.default_rng(0).permutation(len(beats)))  # rows out of time order

    recomputed = selection.with_slow_percentile(shuffled, patient.SLOW_REFERENCE_PERCENTILE)

    np.testing.assert_array_equal(recomputed.context, shuffled.context)


def test_another_percentile_changes_only_the_slow_ratio(mitdb_beats):
    beats = mitdb_beats.subset((mitdb_beats.meta["record"] == "119").to_numpy())

    other = selection.with_slow_percentile(beats, 50.0 if patient.SLOW_REFERENCE_PERCENTILE != 50 else 85.0)

    slow = patient.CONTEXT_NAMES.index("rr_prev_slow_ratio")
    others = [i for i in range(patient.N_CONTEXT) if i != slow]
    np.testing.assert_array_equal(other.context[:, others], beats.context[:, others])
    assert not np.array_equal(other.context[:, slow], beats.context[:, slow], equal_nan=True)


def test_the_percentile_in_use_is_one_the_cross_validation_chose_among():
    assert patient.SLOW_REFERENCE_PERCENTILE in selection.SLOW_PERCENTILES
