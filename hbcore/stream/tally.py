"""The reader's store: log lines deduplicated and tallied, with bounded memory however long it runs.

- Deduplication: a log event read twice (overlapping windows) is recognised by its timestamp,
  stream and text; a beat logged twice (Kinesis retries, a replay resend) by its id. The first
  prediction of an id is kept and later ones are counted as duplicates; rejected records are keyed
  by shard and sequence number.
- Memory stays bounded (the soak: 500 beats/s for an hour and more): rows are kept in full only for
  the latest ``keep_rows`` predictions (the live figures: throughput, latency, heart rates, latest
  abnormal beats, a beat's neighbours) and the latest ``keep_misclassified`` / ``keep_rejected``
  misclassified predictions and rejected records (rare); every prediction ever read is counted in
  :class:`RunTotals` per run (confusion matrix, per record, per second and class) and its id kept
  compactly with its class (``hbcore.stream.beatids``, 9 bytes a beat) for deduplication and
  exactly-once accounting.
- Lines: ours are the JSON ``beats`` / ``prediction`` / ``rejected`` / ``summary`` lines of
  lambda_function.py, read by :func:`hbcore.contracts.log_lines.decode_object` (a beats line files
  each of its beats as the prediction line it stands for, so old and new handlers read the same),
  and its EMF lines (:mod:`hbcore.contracts.emf`), counted as ``metric_lines``: ours, not
  predictions, not foreign. START/END/REPORT lines, other text and other JSON (including lines of
  ours in name only) are counted and ignored.
- Reconciliation: every new line carrying ``inv`` goes to a :class:`~hbcore.stream.reconcile.Reconciler`,
  which tells the reader which invocations are short and where to read again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from hbcore.contracts import emf, log_lines
from hbcore.data.classes import CLASS_NAMES
from hbcore.stream.beatids import BeatIds
from hbcore.stream.reconcile import Reconciler, Window

LAMBDA_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START", "INIT_REPORT",
                   "EXTENSION", "TELEMETRY")
KEEP_ROWS = 100_000  # latest predictions kept in full: ~22 MB, 200 s at 500 beats/s (the monitor bench's 100k)
KEEP_MISCLASSIFIED_ROWS = 50_000
KEEP_REJECTED_ROWS = 50_000  # also the rejected records whose copies are recognised (see _file_rejected)
UNLABELLED = len(CLASS_NAMES)  # the row of RunTotals.confusion counting beats without a known label

# The frames' columns: the lines' (hbcore.contracts.log_lines), then "ts", the log event's epoch seconds.
PREDICTION_COLUMNS = (*log_lines.PREDICTION_COLUMNS, "ts")
REJECTED_COLUMNS = (*log_lines.REJECTED_COLUMNS, "ts")
SUMMARY_COLUMNS = (*log_lines.SUMMARY_COLUMNS, "ts")
_DTYPES = {**log_lines.DTYPES, "ts": "float64"}
_prediction_row = attrgetter(*log_lines.PREDICTION_COLUMNS)
_rejected_row = attrgetter(*log_lines.REJECTED_COLUMNS)
STORE_COUNTS = ("events", "reread_events", "duplicate_predictions", "duplicate_rejections", "lambda_lines",
                "foreign_lines", "metric_lines")


@dataclass(frozen=True)
class ReaderStats:
    """Counters of what the reader has read and how (a snapshot)."""

    state: str  # "idle" | "running" | "stopped" | "failed"
    queries: int
    failed_queries: int
    events: int  # distinct log events read
    reread_events: int  # events read again in overlapping windows (expected)
    predictions: int  # distinct beat ids predicted
    duplicate_predictions: int  # prediction lines for an id already seen (Kinesis retries)
    rejected: int
    duplicate_rejections: int
    summaries: int
    lambda_lines: int  # START / END / REPORT ...
    foreign_lines: int  # text or JSON that is not one of our line types
    truncated_windows: int  # seconds holding more events than one query returns
    read_until_s: float | None  # epoch seconds read up to
    last_poll_s: float | None
    errors: tuple[str, ...]
    error_count: int
    dropped_misclassified: int = 0  # misclassified rows no longer kept in full (still counted in the totals)
    dropped_rejected: int = 0  # rejected rows no longer kept (still counted in the totals)
    metric_lines: int = 0  # the handler's EMF lines (hbcore.contracts.emf): ours, not predictions
    # Reconciliation (hbcore.stream.reconcile): how far behind the reader is, for the monitor to show.
    unreconciled: int = 0  # invocations read in part or not at all so far (their lines are looked for again)
    reconciled_invocations: int = 0  # invocations whose every line was read
    abandoned_invocations: int = 0  # invocations still short after reconcile.GIVE_UP_S (a handler that died)
    behind_s: float | None = None  # s from the time up to which everything read is reconciled to now
    lag_s: float | None = None  # s each poll reads back (the configured lag, grown to the ingestion delay seen)
    requeried_windows: int = 0  # windows of a stream read again because an invocation came up short
    probes: int = 0  # count probes run (stats count(*) by bin(1s)), which find seconds read short


def _sum_timelines(parts: list[tuple[int, np.ndarray]]) -> tuple[int, np.ndarray]:
    """Per-second counts ``(start second, (seconds, classes))`` added up over one span covering them all."""
    parts = [(start, timeline) for start, timeline in parts if len(timeline)]
    if not parts:
        return 0, np.zeros((0, len(CLASS_NAMES)), np.int32)
    start = min(first for first, _ in parts)
    total = np.zeros((max(first + len(timeline) for first, timeline in parts) - start, len(CLASS_NAMES)), np.int32)
    for first, timeline in parts:
        total[first - start:first - start + len(timeline)] += timeline
    return int(start), total


def _sum_records(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-record counts added up (new arrays: the parts are never edited)."""
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for record, counts in part.items():
            total[record] = total[record] + counts if record in total else counts
    return total


@dataclass(frozen=True)
class RunTotals:
    """Counts over every prediction of one run (or of all runs) read so far, however long ago."""

    run: str | None
    predicted: int  # distinct beat ids
    rejected: int  # distinct rejected records
    confusion: np.ndarray  # (6, 5) int64: true class (row UNLABELLED: no known label) × predicted class
    records: dict[str, np.ndarray]  # record → its own (6, 5) counts
    timeline_start_s: int  # epoch second of the timeline's first row
    timeline: np.ndarray  # (seconds, 5) int32: predictions logged in each second, per class
    first_ts: float  # epoch seconds of the first and last prediction logged (NaN with none)
    last_ts: float
    ids: BeatIds | None  # the predicted ids, value = class index (None for all runs together)

    @classmethod
    def empty(cls, run: str | None) -> RunTotals:
        return cls(run, 0, 0, np.zeros((UNLABELLED + 1, len(CLASS_NAMES)), np.int64), {}, 0,
                   np.zeros((0, len(CLASS_NAMES)), np.int32), np.nan, np.nan, BeatIds(run or ""))

    @classmethod
    def merged(cls, parts: list[RunTotals]) -> RunTotals:
        """All runs together (no ids: they are per run)."""
        timed = [part for part in parts if len(part.timeline)]
        start, timeline = _sum_timelines([(part.timeline_start_s, part.timeline) for part in timed])
        records = _sum_records([part.records for part in parts])
        return cls(None, sum(part.predicted for part in parts), sum(part.rejected for part in parts),
                   sum((part.confusion for part in parts), np.zeros((UNLABELLED + 1, len(CLASS_NAMES)), np.int64)),
                   records, start, timeline, min((part.first_ts for part in timed), default=np.nan),
                   max((part.last_ts for part in timed), default=np.nan), None)


@dataclass(frozen=True)
class ResultsSnapshot:
    """Deduplicated results at one moment. Frames and totals are shared with the reader: read, do not modify."""

    predictions: pd.DataFrame  # PREDICTION_COLUMNS, one row per beat id, the latest keep_rows in the order read
    rejected: pd.DataFrame  # REJECTED_COLUMNS, one row per rejected record, the latest keep_rejected
    summaries: pd.DataFrame  # SUMMARY_COLUMNS, one row per invocation, the latest keep_rows
    misclassified: pd.DataFrame  # PREDICTION_COLUMNS: the latest keep_misclassified with a label ≠ pred
    runs: dict[str | None, RunTotals]  # run → its totals
    stats: ReaderStats

    def totals(self, run: str | None = None) -> RunTotals:
        """The totals of ``run``, or of all runs together when None."""
        if run is None:
            return RunTotals.merged(list(self.runs.values()))
        return self.runs.get(run) or RunTotals.empty(run)


class _Table:
    """Rows appended as tuples, folded into a frame that keeps the latest ``keep_rows``.

    A row is one ``list.append`` (a line is filed in a few µs); the fold turns the rows into
    columns in one ``zip``.
    """

    def __init__(self, columns: tuple[str, ...], keep_rows: int):
        self.columns = columns
        self.keep_rows = keep_rows
        self.pending: list[tuple] = []
        self.frame = _empty_frame(columns)
        self.dropped = 0  # rows no longer kept

    def append(self, values: tuple) -> None:
        self.pending.append(values)

    def fold(self) -> pd.DataFrame:
        """Move the appended rows into the frame; returns them as a frame of their own (empty if none)."""
        if not self.pending:
            return self.frame.iloc[:0]
        chunk = pd.DataFrame({name: pd.array(list(values), dtype=_DTYPES[name])
                              for name, values in zip(self.columns, zip(*self.pending))})
        self.pending = []
        self.extend(chunk)
        return chunk

    def extend(self, chunk: pd.DataFrame) -> None:
        """Append the rows of ``chunk`` (same columns), dropping the oldest beyond ``keep_rows``."""
        if chunk.empty:
            return
        frame = chunk if self.frame.empty else pd.concat([self.frame, chunk], ignore_index=True)
        excess = len(frame) - self.keep_rows
        if excess > 0:
            frame = frame.iloc[excess:].reset_index(drop=True)
            self.dropped += excess
        self.frame = frame


class _RunTally:
    """The live counts behind one run's :class:`RunTotals`; arrays are replaced, never edited in place."""

    def __init__(self, run: str | None):
        self.run = run
        self.ids = BeatIds(run or "")
        self.rejected = 0
        empty = RunTotals.empty(run)
        self.confusion = empty.confusion
        self.records: dict[str, np.ndarray] = {}
        self.timeline_start_s, self.timeline = 0, empty.timeline
        self.first_ts = self.last_ts = np.nan
        self._frozen: RunTotals | None = empty

    def changed(self) -> None:
        self._frozen = None

    def add(self, rows: pd.DataFrame) -> None:
        """Count these prediction rows (of this run, not counted before)."""
        n_classes = len(CLASS_NAMES)
        labels = rows["label"].to_numpy(dtype=float, na_value=np.nan)
        true = np.where(np.isnan(labels), UNLABELLED, labels).astype(np.int64)
        cells = true * n_classes + rows["pred"].to_numpy(np.int64)
        self.confusion = (self.confusion
                          + np.bincount(cells, minlength=self.confusion.size).reshape(self.confusion.shape))
        codes, names = pd.factorize(rows["record"])
        known = codes >= 0
        per_record = np.bincount(codes[known] * self.confusion.size + cells[known],
                                 minlength=len(names) * self.confusion.size).reshape(-1, *self.confusion.shape)
        self.records = _sum_records([self.records, dict(zip(names.tolist(), per_record))])
        ts = rows["ts"].to_numpy(dtype=float)
        seconds = np.floor(ts).astype(np.int64)
        start = int(seconds.min())
        added = np.bincount((seconds - start) * n_classes + rows["pred"].to_numpy(np.int64),
                            minlength=(int(seconds.max()) + 1 - start) * n_classes)
        added = added.reshape(-1, n_classes).astype(np.int32)
        self.timeline_start_s, self.timeline = _sum_timelines([(self.timeline_start_s, self.timeline), (start, added)])
        self.first_ts = float(np.fmin(self.first_ts, ts.min()))
        self.last_ts = float(np.fmax(self.last_ts, ts.max()))
        self.changed()

    def totals(self) -> RunTotals:
        """The current totals (the same object until the next change)."""
        if self._frozen is None:
            self._frozen = RunTotals(self.run, len(self.ids), self.rejected, self.confusion, dict(self.records),
                                     self.timeline_start_s, self.timeline, self.first_ts, self.last_ts, self.ids.copy())
        return self._frozen


def _empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.array([], dtype=_DTYPES[name]) for name in columns})


class ResultsStore:
    """Log events filed once each: the rows kept, the per-run tallies and the counts.

    Thread-safe: :meth:`ingest` (the reader's poll) and :meth:`snapshot` (any page) may run at once.

    Parameters
    ----------
    keep_rows, keep_misclassified, keep_rejected : int
        How many of the latest predictions (and summaries), misclassified predictions and rejected
        records are kept as rows; everything read is counted in the totals whatever these are.
    """

    def __init__(self, keep_rows: int = KEEP_ROWS, keep_misclassified: int = KEEP_MISCLASSIFIED_ROWS,
                 keep_rejected: int = KEEP_REJECTED_ROWS, start_s: float = 0.0):
        self._lock = threading.Lock()
        self._reconciler = Reconciler(start_s)
        self.max_late_s = 0.0  # the largest age of an event first read after a poll that covered its time
        self._per_second: dict[int, int] = {}  # epoch second → events filed, for the reader's count probe
        self._predictions = _Table(PREDICTION_COLUMNS, keep_rows)
        self._misclassified = _Table(PREDICTION_COLUMNS, keep_misclassified)
        self._rejected = _Table(REJECTED_COLUMNS, keep_rejected)
        self._summaries = _Table(SUMMARY_COLUMNS, keep_rows)
        self._runs: dict[str | None, _RunTally] = {}
        self._rejected_keys: dict[tuple, None] = {}  # insertion-ordered: the oldest go first
        self._recent_events: dict[tuple[float, str, int], float] = {}  # event key → epoch s, for overlaps
        self._summaries_read = 0
        self._counts = dict.fromkeys(STORE_COUNTS, 0)

    def beats_of_run(self, run: str) -> int:
        """Predictions and rejected records of ``run`` filed so far (cheap: no frame is folded)."""
        with self._lock:
            tally = self._runs.get(run)
            return 0 if tally is None else len(tally.ids) + tally.rejected

    def snapshot(self, **reader_stats: Any) -> ResultsSnapshot:
        """The deduplicated results so far, with ``reader_stats`` (the reader's own counters) in its stats."""
        with self._lock:
            runs = {run: tally.totals() for run, tally in self._runs.items()}
            return ResultsSnapshot(
                predictions=self._predictions.frame,
                rejected=self._rejected.frame,
                summaries=self._summaries.frame,
                misclassified=self._misclassified.frame,
                runs=runs,
                stats=ReaderStats(
                    predictions=sum(totals.predicted for totals in runs.values()),
                    rejected=sum(totals.rejected for totals in runs.values()), summaries=self._summaries_read,
                    dropped_misclassified=self._misclassified.dropped, dropped_rejected=self._rejected.dropped,
                    events=self._counts["events"], reread_events=self._counts["reread_events"],
                    duplicate_predictions=self._counts["duplicate_predictions"],
                    duplicate_rejections=self._counts["duplicate_rejections"],
                    lambda_lines=self._counts["lambda_lines"], foreign_lines=self._counts["foreign_lines"],
                    metric_lines=self._counts["metric_lines"], unreconciled=self._reconciler.unreconciled(),
                    reconciled_invocations=self._reconciler.reconciled,
                    abandoned_invocations=self._reconciler.abandoned,
                    **reader_stats,
                ),
            )

    def forget_events_before(self, start_s: float, now_s: float | None = None) -> None:
        """Drop overlap keys of events no later window can return again (nor a window read again to
        reconcile), and abandon invocations short for too long (``now_s``, default: not yet)."""
        with self._lock:
            if now_s is not None:
                self._reconciler.forget_before(now_s)
            oldest = self._reconciler.oldest_short_s()
            start_s = start_s if oldest is None else min(start_s, oldest)
            if self._recent_events:
                self._recent_events = {key: ts for key, ts in self._recent_events.items() if ts >= start_s - 1}

    def events_per_second(self, since_s: int) -> dict[int, int]:
        """Events filed per epoch second from ``since_s`` on (older seconds are forgotten)."""
        with self._lock:
            self._per_second = {second: count for second, count in self._per_second.items() if second >= since_s}
            return dict(self._per_second)

    def windows_to_reread(self, now_s: float) -> list[Window]:
        """Per log stream with a short invocation, the window to read again (hbcore.stream.reconcile)."""
        with self._lock:
            return self._reconciler.windows(now_s)

    def reconciled_until_s(self) -> float | None:
        """Epoch seconds before which every invocation read is complete (None: no invocation is short)."""
        with self._lock:
            return self._reconciler.oldest_short_s()

    def ingest(self, events: list[tuple[float, str, str]], covered_until_s: float | None = None,
               now_s: float | None = None) -> int:
        """File new log events ``(epoch seconds, log stream, message)``; the number not read before.

        ``covered_until_s``: the end of the windows read before; an event older than it that is new now
        arrived late, and its age at ``now_s`` goes into :attr:`max_late_s` (what the reader's lag must cover).
        """
        new = 0
        with self._lock:
            for ts, stream, message in events:
                text_hash = hash(message)  # the hash keeps the text out of memory
                key = (ts, stream, text_hash)
                if key in self._recent_events:
                    self._counts["reread_events"] += 1
                    continue
                self._recent_events[key] = ts
                self._counts["events"] += 1
                self._per_second[int(ts)] = self._per_second.get(int(ts), 0) + 1
                new += 1
                if covered_until_s is not None and now_s is not None and ts < covered_until_s - 1:
                    self.max_late_s = max(self.max_late_s, now_s - ts)
                self._file(message.strip(), ts, stream, text_hash)
            self._fold()
        return new

    def _fold(self) -> None:
        """Turn the rows filed since the last fold into frames and totals (caller holds the lock)."""
        chunk = self._predictions.fold()
        if not chunk.empty:
            runs = chunk["run"].to_numpy(dtype=object, na_value=None)
            distinct = dict.fromkeys(runs.tolist())
            for run in distinct:
                self._runs[run].add(chunk if len(distinct) == 1 else chunk[runs == run])
            labels = chunk["label"].to_numpy(dtype=float, na_value=np.nan)
            self._misclassified.extend(chunk[~np.isnan(labels) & (labels != chunk["pred"].to_numpy())])
        self._rejected.fold()
        self._summaries_read += len(self._summaries.fold())

    def _tally(self, run: str | None) -> _RunTally:
        tally = self._runs.get(run)
        if tally is None:
            tally = self._runs[run] = _RunTally(run)
        return tally

    def _file(self, message: str, ts: float, stream: str, text_hash: int) -> None:
        """Put one log line where it belongs, and tell the reconciler (caller holds the lock)."""
        document = log_lines.json_object(message)
        line = None if document is None else log_lines.decode_object(document)
        inv = getattr(line, "inv", None)
        if type(line) is log_lines.Beats:
            for prediction in log_lines.beats_predictions(line):
                self._file_prediction(prediction, ts)
        elif type(line) is log_lines.Prediction:
            self._file_prediction(line, ts)
        elif type(line) is log_lines.Rejected:
            self._file_rejected(line, ts)
        elif type(line) is log_lines.Summary:
            self._summaries.append((*line, ts))
            if line.inv is not None and line.lines is not None:
                self._reconciler.summary(stream, line.inv, line.lines, ts)
            return
        elif document is not None and (metrics := emf.decode_metrics(document)) is not None:
            self._counts["metric_lines"] += 1
            inv = metrics.inv
        elif message.startswith(LAMBDA_PREFIXES):
            self._counts["lambda_lines"] += 1
        else:
            self._counts["foreign_lines"] += 1
        if inv is not None:
            self._reconciler.line(stream, inv, ts, text_hash)

    def _file_prediction(self, line: log_lines.Prediction, ts: float) -> None:
        tally = self._tally(line.run)
        if not tally.ids.add(line.id, line.pred):
            self._counts["duplicate_predictions"] += 1
            return
        self._predictions.append((*_prediction_row(line), ts))

    def _file_rejected(self, line: log_lines.Rejected, ts: float) -> None:
        """File a rejected record once. Only the latest keep_rejected keys are remembered: a copy of an
        older one (a retry an hour later, past that many malformed records) would count again. The id
        is part of the key because one Kinesis record (a KPL aggregate) can carry several beats."""
        key = (line.shard, line.seq, line.id) if line.seq is not None else (line.id, line.reason)
        if key in self._rejected_keys:
            self._counts["duplicate_rejections"] += 1
            return
        self._rejected_keys[key] = None
        if len(self._rejected_keys) > self._rejected.keep_rows:
            del self._rejected_keys[next(iter(self._rejected_keys))]
        tally = self._tally(line.run)
        tally.rejected += 1
        tally.changed()
        self._rejected.append((*_rejected_row(line), ts))
