"""The live monitor's figures, computed from one results snapshot in one pass.

The monitor refreshes every second or two over up to hundreds of thousands of predictions, so every
figure is a columnar aggregation of ``hbcore.stream.aggregations`` (no per-row Python), and the page only draws.
Counts (beats, classes, confusion, per record, the timeline, rejected records) cover every beat of
the run, from the snapshot's totals; the figures of the moment (rate, latency, heart rates, latest
abnormal beats) come from the latest rows the reader keeps. The CLI and the benchmarks compute the
same figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hbcore.data.classes import CLASS_NAMES
from hbcore.stream import aggregations, tally

LATEST_ABNORMAL_ROWS = 20
TIMELINE_BINS_MAX = 60
THROUGHPUT_WINDOW_S = 10.0


@dataclass(frozen=True)
class DashboardFigures:
    """What the monitor shows for one run (or all runs)."""

    beats: int
    beats_per_s: float
    abnormal_rate: float  # share of predictions that are not N (NaN with no predictions)
    latency_p95_ms: float  # over the latest rows the reader keeps; NaN when no beat carried sent_at
    rejected: int
    labelled: int  # beats with a known label, the ones in the confusion matrix
    accuracy: float  # over the labelled beats (NaN with none)
    distribution: pd.DataFrame  # aggregations.class_distribution: index time, a column per class
    confusion: pd.DataFrame  # 5 × 5 counts, rows true
    per_record: pd.DataFrame  # aggregations.per_record
    latest_abnormal: pd.DataFrame  # id, record, t, predicted, true, prob; newest first
    rejection_reasons: pd.DataFrame  # reason, records


def timeline_bin_s(span_s: float) -> float:
    """A bin width (2, 5, 10, 30, 60, … s) that keeps a timeline of ``span_s`` seconds under TIMELINE_BINS_MAX bars.

    Never under 2 s: the handler logs a batch at a time, so finer bins show the batching, not the flow.
    """
    if not span_s > 0:
        return 2.0
    for width in (2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600):
        if span_s / width <= TIMELINE_BINS_MAX:
            return float(width)
    return float(math.ceil(span_s / TIMELINE_BINS_MAX / 3600) * 3600)


def latest_abnormal(predictions: pd.DataFrame, rows: int = LATEST_ABNORMAL_ROWS) -> pd.DataFrame:
    """The most recent beats predicted as anything but N, newest first."""
    abnormal = predictions[predictions["pred"] != 0]
    newest = abnormal.iloc[np.argsort(-abnormal["ts"].to_numpy(), kind="stable")[:rows]]
    names = np.array(CLASS_NAMES, dtype=object)
    labels = newest["label"]
    return pd.DataFrame({
        "logged": pd.to_datetime(newest["ts"].to_numpy(), unit="s", utc=True),
        "record": newest["record"].to_numpy(),
        "t_s": newest["t"].to_numpy(),
        "predicted": names[newest["pred"].to_numpy(dtype=np.int64)],
        "true": [names[int(v)] if not pd.isna(v) else "" for v in labels],
        "probability": newest["prob"].to_numpy(),
        "id": newest["id"].to_numpy(),
    })


def dashboard_figures(snapshot: tally.ResultsSnapshot, run: str | None = None,
                      now_s: float | None = None) -> DashboardFigures:
    """Every figure of the monitor for ``run`` (None: all runs in the snapshot)."""
    totals = snapshot.totals(run)
    predictions = aggregations.for_run(snapshot.predictions, run)
    rejected = aggregations.for_run(snapshot.rejected, run)
    confusion = aggregations.confusion_matrix(totals)
    labelled = int(confusion.to_numpy().sum())
    n = totals.predicted
    end_s = now_s if now_s is not None else (snapshot.stats.last_poll_s or time.time())
    return DashboardFigures(
        beats=n,
        beats_per_s=aggregations.throughput(predictions, THROUGHPUT_WINDOW_S, now_s=end_s),
        abnormal_rate=float(1.0 - totals.confusion[:, 0].sum() / n) if n else math.nan,
        latency_p95_ms=aggregations.latency_percentiles(predictions)["p95_ms"],
        rejected=totals.rejected,
        labelled=labelled,
        accuracy=float(np.trace(confusion.to_numpy()) / labelled) if labelled else math.nan,
        distribution=aggregations.class_distribution(totals, timeline_bin_s(totals.last_ts - totals.first_ts)),
        confusion=confusion,
        per_record=aggregations.per_record(totals, predictions),
        latest_abnormal=latest_abnormal(predictions),
        rejection_reasons=aggregations.rejection_reasons(rejected),
    )
