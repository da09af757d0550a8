"""The live monitor's figures, computed from one results snapshot in one pass.

The monitor refreshes every second or two over up to hundreds of thousands of predictions, so every
figure is a columnar aggregation of ``hbcore.stream.aggregations`` (no per-row Python), and the page only draws.
Counts (beats, classes, confusion, per record, the timeline, rejected records) cover every beat of
the run, from the snapshot's totals; the figures of the moment (rate, latency, heart rates, latest
abnormal beats) come from the latest rows the reader keeps. The CLI and the benchmarks compute the
same figures.

Every figure of one refresh comes from one snapshot, and each says what it counts: beats **sent**
(accepted by Kinesis: the replay's count, read right after the snapshot so it is never below what
the snapshot holds), beats **processed** (predicted by the model and logged), beats **labelled**
(processed beats with a known reference class: the confusion matrix). Sent = processed + rejected
+ in flight, and the page shows that sum, so no figure contradicts another.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hbcore.data.classes import CLASS_NAMES
from hbcore.model import store as modelstore
from hbcore.stream import aggregations, tally

LATEST_ABNORMAL_ROWS = 20
TIMELINE_BINS_MAX = 60
THROUGHPUT_WINDOW_S = 10.0
STALLED_AFTER_S = 15.0  # no completed poll for this long (the reader polls every 2 s): the figures are stale
TILE_STATUS = ("alarm", "abnormal", "normal")  # the patient tiles' order: most in need of a look first
TILE_COLORS = {"alarm": "red", "abnormal": "orange", "normal": "green"}  # Streamlit's named markdown colours


@dataclass(frozen=True)
class Freshness:
    """How current the figures are: when the reader last completed a poll, and whether it still does."""

    updated_s: float | None  # epoch s of the reader's last completed poll (None: none yet)
    age_s: float | None  # seconds since then
    state: str  # "live" | "stalled" | "waiting" (no poll yet) | "stopped" | "failed"
    behind_s: float | None  # the reader's results are complete up to this many seconds ago (None: not yet known)
    unreconciled: int  # invocations whose lines the reader has read in part or not at all so far

    @property
    def live(self) -> bool:
        return self.state == "live"


def freshness(stats: tally.ReaderStats, now_s: float | None = None) -> Freshness:
    """The freshness of a snapshot's figures at ``now_s`` (default: now).

    ``behind_s`` and ``unreconciled`` are the reader's own (``hbcore.stream.reconcile``).
    """
    now_s = time.time() if now_s is None else now_s
    updated = stats.last_poll_s
    age = None if updated is None else max(0.0, now_s - updated)
    if stats.state in ("failed", "stopped"):
        state = stats.state
    elif age is None:
        state = "waiting"
    else:
        state = "stalled" if age > STALLED_AFTER_S else "live"
    return Freshness(updated, age, state, stats.behind_s, stats.unreconciled)


FRESHNESS_BADGES = {"live": ("green", "live"), "stalled": ("orange", "stalled"), "waiting": ("gray", "waiting"),
                    "stopped": ("gray", "stopped"), "failed": ("red", "reader failed")}


def clock(epoch_s: float) -> str:
    """An epoch time as the pages print it (UTC wall clock)."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch_s))


def freshness_text(fresh: Freshness) -> str:
    """One markdown line: a coloured live/stalled badge, when the figures were updated, how far behind."""
    color, word = FRESHNESS_BADGES[fresh.state]
    parts = [f":{color}-badge[● {word}]"]
    if fresh.updated_s is None:
        parts.append("no results read yet")
    else:
        parts.append(f"last updated {clock(fresh.updated_s)} ({fresh.age_s:,.0f} s ago)")
    if fresh.behind_s is not None:
        parts.append(f"complete up to {fresh.behind_s:,.0f} s ago")
    if fresh.unreconciled:
        parts.append(f"{fresh.unreconciled:,} invocations not fully read yet")
    return " · ".join(parts)


@dataclass(frozen=True)
class Counts:
    """The beat counts of one refresh, each named for what it counts (see the module docstring)."""

    sent: int | None  # accepted by Kinesis (None: not known, e.g. over all runs)
    processed: int  # predicted and logged
    rejected: int  # records the handler could never classify
    labelled: int  # processed beats with a reference class (the confusion matrix)

    @property
    def in_flight(self) -> int | None:
        """Sent but neither processed nor rejected yet (in the stream, the function or the logs)."""
        return None if self.sent is None else max(0, self.sent - self.processed - self.rejected)


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
    series: pd.DataFrame  # kpi_series: time, beats_per_s, latency_p95_ms, reject_rate per timeline bin
    model_version: str | None  # the model that classified the latest beat
    counts: Counts


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


def in_record_time(t: pd.Series, sample: pd.Series) -> list[str]:
    """A beat's time as text: seconds into its record, or its row for Kaggle rows (which carry no time)."""
    return [f"{time_s:.2f} s" if not pd.isna(time_s) else ("–" if pd.isna(row) else f"row {int(row):,}")
            for time_s, row in zip(t, sample)]


def latest_abnormal(predictions: pd.DataFrame, rows: int = LATEST_ABNORMAL_ROWS) -> pd.DataFrame:
    """The most recent beats predicted as anything but N, newest first."""
    abnormal = predictions[predictions["pred"] != 0]
    newest = abnormal.iloc[np.argsort(-abnormal["ts"].to_numpy(), kind="stable")[:rows]]
    names = np.array(CLASS_NAMES, dtype=object)
    labels = newest["label"]
    return pd.DataFrame({
        "logged": pd.to_datetime(newest["ts"].to_numpy(), unit="s", utc=True),
        "record": newest["record"].to_numpy(),
        "time in record": in_record_time(newest["t"], newest["sample"]),
        "predicted": names[newest["pred"].to_numpy(dtype=np.int64)],
        "true": [names[int(v)] if not pd.isna(v) else "" for v in labels],
        "probability": newest["prob"].to_numpy(),
        "id": newest["id"].to_numpy(),
    })


SERIES_COLUMNS = ("beats_per_s", "latency_p95_ms", "reject_rate")


def kpi_series(totals: tally.RunTotals, predictions: pd.DataFrame, rejected: pd.DataFrame,
               bin_s: float) -> pd.DataFrame:
    """Throughput, p95 latency and reject rate per bin of ``bin_s`` seconds (the KPIs' small charts).

    Throughput counts every beat of the run (the totals' per-second timeline), divided by the seconds
    of the bin the run covered (a run's first and last bins are partial). Latency and reject rate
    come from the rows the reader keeps (NaN in a bin with none: the line has a gap there).
    """
    columns = {"time": pd.Series([], dtype="datetime64[ns, UTC]"),
               **{name: pd.Series([], dtype=float) for name in SERIES_COLUMNS}}
    if not len(totals.timeline):
        return pd.DataFrame(columns)
    seconds = totals.timeline_start_s + np.arange(len(totals.timeline))
    first_s, last_s = int(seconds[0]), int(seconds[-1])
    bins = np.floor(seconds / bin_s).astype(np.int64)
    first_bin = bins[0]
    n = int(bins[-1] - first_bin + 1)
    processed = np.bincount(bins - first_bin, weights=totals.timeline.sum(axis=1), minlength=n)
    starts = (first_bin + np.arange(n)) * bin_s
    covered = np.minimum(starts + bin_s, last_s + 1) - np.maximum(starts, first_s)

    def bin_of(frame: pd.DataFrame) -> np.ndarray:
        return np.floor(frame["ts"].to_numpy(dtype=float) / bin_s).astype(np.int64) - first_bin

    timed = predictions[predictions["latency_ms"].notna()]
    where = bin_of(timed)
    inside = (where >= 0) & (where < n)
    p95 = (pd.Series(timed["latency_ms"].to_numpy(dtype=float)[inside]).groupby(where[inside]).quantile(0.95)
           .reindex(range(n)).to_numpy())
    where = bin_of(rejected)
    refused = np.bincount(where[(where >= 0) & (where < n)], minlength=n).astype(float)
    handled = processed + refused
    with np.errstate(invalid="ignore", divide="ignore"):
        reject_rate = np.where(handled > 0, refused / handled, np.nan)
    return pd.DataFrame({"time": pd.to_datetime(starts, unit="s", utc=True),
                         "beats_per_s": processed / np.maximum(covered, 1),
                         "latency_p95_ms": p95, "reject_rate": reject_rate})


def latest_model_version(predictions: pd.DataFrame) -> str | None:
    """The model version of the most recently logged beat (None when no beat carries one)."""
    versions = predictions["model_version"].dropna()
    return None if versions.empty else str(versions.iloc[-1])


def dashboard_figures(snapshot: tally.ResultsSnapshot, run: str | None = None,
                      now_s: float | None = None, sent: int | None = None) -> DashboardFigures:
    """Every figure of the monitor for ``run`` (None: all runs in the snapshot), all from ``snapshot``.

    ``sent`` is the replay's count of beats accepted by Kinesis, read *after* the snapshot was taken
    (so it is never below what the snapshot holds); None when it is not known.
    """
    totals = snapshot.totals(run)
    predictions = aggregations.for_run(snapshot.predictions, run)
    rejected = aggregations.for_run(snapshot.rejected, run)
    confusion = aggregations.confusion_matrix(totals)
    labelled = int(confusion.to_numpy().sum())
    n = totals.predicted
    end_s = now_s if now_s is not None else (snapshot.stats.last_poll_s or time.time())
    bin_s = timeline_bin_s(totals.last_ts - totals.first_ts)
    return DashboardFigures(
        beats=n,
        beats_per_s=aggregations.throughput(predictions, THROUGHPUT_WINDOW_S, now_s=end_s),
        abnormal_rate=float(1.0 - totals.confusion[:, 0].sum() / n) if n else math.nan,
        latency_p95_ms=aggregations.latency_percentiles(predictions)["p95_ms"],
        rejected=totals.rejected,
        labelled=labelled,
        accuracy=float(np.trace(confusion.to_numpy()) / labelled) if labelled else math.nan,
        distribution=aggregations.class_distribution(totals, bin_s),
        confusion=confusion,
        per_record=aggregations.per_record(totals, predictions),
        latest_abnormal=latest_abnormal(predictions),
        rejection_reasons=aggregations.rejection_reasons(rejected),
        series=kpi_series(totals, predictions, rejected, bin_s),
        model_version=latest_model_version(predictions),
        counts=Counts(sent=sent, processed=n, rejected=totals.rejected, labelled=labelled),
    )


def patient_tiles(per_record: pd.DataFrame, alarmed: Collection[str] = ()) -> pd.DataFrame:
    """The patient tiles in the order a glance needs: unacknowledged alarms, then the most abnormal.

    One row per record (``per_record``'s columns) with ``status`` (TILE_STATUS: "alarm" while one of
    its rhythm events is unacknowledged, "abnormal" with any beat predicted not N, else "normal"),
    ``color`` and ``abnormal_share``; sorted by status, then abnormal share (highest first), then record.
    """
    table = per_record.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["abnormal_share"] = np.where(table["beats"] > 0, table["abnormal"] / table["beats"], 0.0)
    alarmed = {str(record) for record in alarmed}
    status = np.where(table.index.isin(list(alarmed)), "alarm", np.where(table["abnormal"] > 0, "abnormal", "normal"))
    table["status"] = status
    table["color"] = [TILE_COLORS[value] for value in status]
    rank = pd.Series(status, index=table.index).map({name: i for i, name in enumerate(TILE_STATUS)})
    order = np.lexsort((table.index.to_numpy(dtype=str), -table["abnormal_share"].to_numpy(), rank.to_numpy()))
    return table.iloc[order]


@dataclass(frozen=True)
class OfflineFigures:
    """What a model scored offline on the test part of the split it was trained with."""

    version: str
    split: str | None  # "intra" | "inter" (None: not recorded)
    n_test: int | None
    test_records: tuple[str, ...]  # () when not recorded
    classes: str  # the classes scored: "N/S/V/F/Q", or "N/S/V/F" for an inter-patient split
    accuracy: float
    macro_f1: float
    sensitivity: dict[str, float]  # class → Se (recall) on the test beats, classes with test beats only


def offline_figures(metadata: dict, version: str) -> OfflineFigures | None:
    """A saved model's offline figures from its metadata (``hbcore.model.store.SavedModel.metadata``).

    The model's own ``evaluation`` summary (``hbcore.model.training.evaluation_summary``: over N, S,
    V, F for an inter-patient split) when it has one; else, for models saved before it, the
    five-class ``metrics``. None when the metadata holds no evaluation at all.
    """
    evaluation = metadata.get("evaluation")
    if evaluation and "accuracy" in evaluation:
        return OfflineFigures(
            version=version, split=evaluation.get("split", metadata.get("split")), n_test=metadata.get("n_test"),
            test_records=tuple(evaluation.get("test_records", ())), classes=evaluation.get("classes", "N/S/V/F/Q"),
            accuracy=float(evaluation["accuracy"]), macro_f1=float(evaluation.get("macro_f1", math.nan)),
            sensitivity={name: float(se) for name, se in (evaluation.get("se") or {}).items() if se is not None},
        )
    metrics = metadata.get("metrics") or {}
    if "accuracy" not in metrics:
        return None
    per_class = metrics.get("per_class", {})
    return OfflineFigures(
        version=version, split=metadata.get("split"), n_test=metadata.get("n_test"), test_records=(),
        classes="N/S/V/F/Q", accuracy=float(metrics["accuracy"]), macro_f1=float(metrics.get("macro_f1", math.nan)),
        sensitivity={name: float(figures["recall"]) for name, figures in per_class.items()
                     if figures.get("support", 0) > 0},
    )


def deployed_model_figures(version: str | None, store: Path | None = None) -> OfflineFigures | None:
    """The offline figures of the model ``version`` (the one the live beats carry) from the model store.

    None when no version is known or the store does not hold that model (trained elsewhere).
    """
    if version is None:
        return None
    saved = next((model for model in modelstore.saved_models(store) if model.version == version), None)
    return None if saved is None else offline_figures(saved.metadata, version)
