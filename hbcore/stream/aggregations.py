"""Aggregations over a snapshot's totals and frames (numpy and pandas, columnar).

The pages, the demo, the benchmarks and the tests share them, so a figure means the same wherever
it is shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hbcore.data.classes import CLASS_NAMES
from hbcore.stream.tally import UNLABELLED, RunTotals

HEART_RATE_BEATS = 10


def for_run(frame: pd.DataFrame, run: str | None) -> pd.DataFrame:
    """The rows of one replay run (all rows when ``run`` is None)."""
    return frame if run is None else frame[frame["run"] == run]


def class_distribution(totals: RunTotals, bin_s: float = 10.0) -> pd.DataFrame:
    """Predicted beats per class per bin of ``bin_s`` whole seconds: index = bin start (UTC), columns = CLASS_NAMES."""
    if not len(totals.timeline):
        return pd.DataFrame(columns=list(CLASS_NAMES), index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype="int64")
    bins = np.floor((totals.timeline_start_s + np.arange(len(totals.timeline))) / bin_s).astype(np.int64)
    first = bins[0]
    counts = np.zeros((bins[-1] - first + 1, len(CLASS_NAMES)), np.int64)
    np.add.at(counts, bins - first, totals.timeline)
    index = pd.to_datetime((first + np.arange(len(counts))) * bin_s, unit="s", utc=True).rename("time")
    return pd.DataFrame(counts, index=index, columns=list(CLASS_NAMES))


def confusion_matrix(totals: RunTotals) -> pd.DataFrame:
    """Beats with a known label: rows = true class, columns = predicted class (5 × 5 counts)."""
    return pd.DataFrame(totals.confusion[:UNLABELLED], index=pd.Index(CLASS_NAMES, name="true"),
                        columns=pd.Index(CLASS_NAMES, name="predicted"))


def misclassified(predictions: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """Beats whose prediction differs from their label, most recent first (``ResultsSnapshot.misclassified``)."""
    labels = _labels(predictions)
    wrong = np.flatnonzero(~np.isnan(labels) & (labels != predictions["pred"].to_numpy()))
    wrong = wrong[np.argsort(-predictions["ts"].to_numpy()[wrong], kind="stable")][:limit]
    rows = predictions.iloc[wrong]
    names = np.array(CLASS_NAMES, dtype=object)
    return pd.DataFrame({
        "id": rows["id"], "record": rows["record"], "sample": rows["sample"], "t": rows["t"],
        "true": names[labels[wrong].astype(np.int64)], "pred": names[rows["pred"].to_numpy(dtype=np.int64)],
        "prob": rows["prob"],
    }).reset_index(drop=True)


def _labels(predictions: pd.DataFrame) -> np.ndarray:
    """The true labels as floats, NaN where unknown."""
    return predictions["label"].to_numpy(dtype=float, na_value=np.nan)


def heart_rates(predictions: pd.DataFrame, beats: int = HEART_RATE_BEATS) -> pd.Series:
    """Current heart rate per record in beats per minute, from its last ``beats`` beats.

    60 / median of ``rr_local_s`` (the RR interval the replay sends with each beat); for beats
    without RR (CSV input), 60 / median gap between consecutive beat times ``t``. NaN when neither
    is known (Kaggle rows). Plain numpy over record codes: ~10x faster than a pandas groupby sort.
    """
    codes, records = pd.factorize(predictions["record"], sort=True)
    t = predictions["t"].to_numpy(dtype=float)
    order = np.lexsort((t, codes))
    codes, t, rr = codes[order], t[order], predictions["rr_local_s"].to_numpy(dtype=float)[order]
    n = len(codes)
    first, last = np.ones(n, bool), np.ones(n, bool)
    first[1:] = last[:-1] = codes[1:] != codes[:-1]
    gaps = np.where(first, np.nan, t - np.r_[np.nan, t[:-1]])
    rr = np.where(np.isnan(rr) & (gaps > 0), gaps, rr)
    last_row = np.zeros(len(records) + 1, np.int64)  # the extra slot takes code -1 (no record)
    last_row[codes[last]] = np.flatnonzero(last)
    recent = (last_row[codes] - np.arange(n) < beats) & (codes >= 0)
    medians = pd.Series(rr[recent]).groupby(codes[recent]).median()
    rates = pd.Series(np.nan, index=pd.Index(records, name="record"), name="heart_rate_bpm")
    rates.iloc[medians.index] = 60.0 / medians.to_numpy()
    return rates


def per_record(totals: RunTotals, predictions: pd.DataFrame) -> pd.DataFrame:
    """Per record: beats, beats per predicted class, abnormal beats (not N), accuracy (from the totals),
    and heart rate (from the latest ``predictions`` rows; NaN for a record with none left)."""
    records = sorted(totals.records)
    counts = np.array([totals.records[record] for record in records], np.int64).reshape(-1, *totals.confusion.shape)
    table = pd.DataFrame(counts.sum(axis=1), index=pd.Index(records, name="record", dtype=object),
                         columns=list(CLASS_NAMES))
    labelled = counts[:, :UNLABELLED, :]
    right = np.trace(labelled, axis1=1, axis2=2)
    total = labelled.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(total > 0, right / total, np.nan)
    beats = table.sum(axis=1)
    table = table.assign(beats=beats, abnormal=beats - table["N"], accuracy=accuracy,
                         heart_rate_bpm=heart_rates(predictions).reindex(table.index))
    return table[["beats", *CLASS_NAMES, "abnormal", "accuracy", "heart_rate_bpm"]]


def throughput(predictions: pd.DataFrame, window_s: float = 10.0, now_s: float | None = None) -> float:
    """Beats logged per second over the ``window_s`` seconds ending at ``now_s`` (default: the last log time)."""
    if predictions.empty:
        return 0.0
    ts = predictions["ts"].to_numpy()
    end = ts.max() if now_s is None else now_s
    return float(np.count_nonzero((ts > end - window_s) & (ts <= end))) / window_s


def latency_percentiles(predictions: pd.DataFrame) -> dict[str, float]:
    """p50 / p95 / p99 of the put → logged latency in ms (NaN when no beat carried ``sent_at``)."""
    latency = predictions["latency_ms"].dropna().to_numpy()
    if len(latency) == 0:
        return {"p50_ms": np.nan, "p95_ms": np.nan, "p99_ms": np.nan}
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def rejection_reasons(rejected: pd.DataFrame) -> pd.DataFrame:
    """Rejected records per reason, most frequent first."""
    counts = rejected.groupby("reason").size().sort_values(ascending=False)
    return counts.rename("records").reset_index()
