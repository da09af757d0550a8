"""Synthetic beats for tests that stream them: no data folder needed, ids and times known in advance."""

from __future__ import annotations

import numpy as np

from hbcore.data.dataset import BeatSet, meta_frame


def make_beats(per_record: dict[str, int], rr_s: float = 0.8, timed: bool = True) -> BeatSet:
    """Synthetic beats: ``per_record`` beats for each record, one every ``rr_s`` seconds."""
    rng = np.random.default_rng(7)
    records, samples, times = [], [], []
    for record, count in per_record.items():
        t_s = (np.arange(count) + 0.5) * rr_s
        records += [record] * count
        times.append(t_s)
        samples.append(np.rint(t_s * 360).astype(np.int64))
    n = len(records)
    t_s = np.concatenate(times) if timed else np.full(n, np.nan)
    X = rng.random((n, 187)).astype(np.float32)
    X[:, 120:] = 0.0
    y = (np.arange(n) % 5).astype(np.int8)
    meta = meta_frame({"record": np.array(records), "sample": np.concatenate(samples), "t_s": t_s,
                       "label": y.astype(np.int64), "rr_prev_s": np.full(n, rr_s), "rr_next_s": np.full(n, rr_s),
                       "rr_local_s": np.full(n, rr_s)})
    return BeatSet(X, y, meta)
