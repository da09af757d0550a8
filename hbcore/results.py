"""What the dashboard shows: the handler's log lines read back with Logs Insights, and aggregations.

:class:`ResultsReader` polls CloudWatch Logs Insights over the function's log group with a query that
means the same on AWS and on moto (moto evaluates only ``fields``, ``sort`` and ``limit``, ignoring
``filter`` and ``stats``, and returns no discovered JSON fields): it reads raw ``@message`` lines
in time windows and parses them itself.

- Windows: each poll reads from the end of the last one minus ``lag_s`` (events arrive in Logs a
  few seconds late) up to now. ``startTime``/``endTime`` are whole epoch seconds, both inclusive.
  A window whose result reaches the query limit is split at the last second it returned and the
  rest is read by another query.
- Lines: ours are the JSON ``prediction`` / ``rejected`` / ``summary`` lines of lambda_function.py;
  START/END/REPORT lines, other text and other JSON are counted and ignored.
- Deduplication: a log event read twice (overlapping windows) is recognised by its timestamp,
  stream and text; a beat logged twice (Kinesis retries, a replay resend) by its id. The first
  prediction of an id is kept and later ones are counted as duplicates; rejected records are keyed
  by shard and sequence number.
- Memory stays bounded however long the reader runs (the soak: 500 beats/s for an hour and more):
  rows are kept in full only for the latest ``keep_rows`` predictions (the live figures: throughput,
  latency, heart rates, latest abnormal beats, a beat's neighbours) and the latest
  ``keep_misclassified`` / ``keep_rejected`` misclassified predictions and rejected records (rare);
  every prediction ever read is counted in :class:`RunTotals` per run (confusion matrix, per record,
  per second and class) and its id kept compactly with its class (``hbcore.beatids``, 9 bytes a
  beat) for deduplication and exactly-once accounting.
- Statuses Scheduled/Running are waited for up to ``query_timeout_s``; Failed, Cancelled, Timeout
  and Unknown fail the poll, which leaves the window to be read again by the next one.

Aggregations are functions over a snapshot's totals and frames (numpy and pandas, columnar), so the
pages, the demo and the tests share them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from hbcore.beatids import BeatIds
from hbcore.classes import CLASS_NAMES

# Means the same on AWS and on moto: no filter/stats (moto ignores them), sorted so that a window cut
# by the limit holds its oldest events.
QUERY = "fields @timestamp, @message, @logStream | sort @timestamp asc | limit {limit}"
QUERY_LIMIT = 10_000  # rows per query; Logs Insights caps results at 10,000 by default
POLL_INTERVAL_S = 2.0
LAG_S = 10
LOOKBACK_S = 15 * 60
QUERY_TIMEOUT_S = 60.0
QUERY_WAIT_MIN_S = 0.1
QUERY_WAIT_MAX_S = 1.0
FAILED_STATUSES = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
LAMBDA_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START", "INIT_REPORT",
                   "EXTENSION", "TELEMETRY")
KEPT_ERRORS = 20
HEART_RATE_BEATS = 10
STOP_JOIN_TIMEOUT_S = 10.0
KEEP_ROWS = 100_000  # latest predictions kept in full: ~22 MB, 200 s at 500 beats/s (the monitor bench's 100k)
KEEP_MISCLASSIFIED_ROWS = 50_000
KEEP_REJECTED_ROWS = 50_000  # also the rejected records whose copies are recognised (see _file_rejected)
UNLABELLED = len(CLASS_NAMES)  # the row of RunTotals.confusion counting beats without a known label

PREDICTION_COLUMNS = ("id", "run", "record", "sample", "t", "label", "pred", "prob", "model_version",
                      "latency_ms", "endpoint_ms", "rr_local_s", "seq", "shard", "ts")
REJECTED_COLUMNS = ("id", "run", "record", "seq", "shard", "reason", "ts")
SUMMARY_COLUMNS = ("records", "predicted", "rejected", "failed", "endpoint_calls", "endpoint_ms", "handler_ms",
                   "error", "ts")
_DTYPES = {
    "id": "str", "run": "str", "record": "str", "sample": "Int64", "t": "float64", "label": "Int64",
    "pred": "int8", "prob": "float64", "model_version": "str", "latency_ms": "float64", "endpoint_ms": "float64",
    "rr_local_s": "float64", "seq": "str", "shard": "str", "ts": "float64", "reason": "str",
    "records": "int64", "predicted": "int64", "rejected": "int64", "failed": "int64", "endpoint_calls": "int64",
    "handler_ms": "float64", "error": "str",
}


class QueryFailed(RuntimeError):
    """A Logs Insights query that did not complete; the window is read again by the next poll."""


def parse_timestamp(value: str) -> float:
    """Epoch seconds from an ``@timestamp``: epoch milliseconds (moto) or ``2026-11-27 19:42:35.975`` UTC (AWS)."""
    if value.isdigit():
        return int(value) / 1000.0
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ValueError(f"@timestamp {value!r} is neither epoch milliseconds nor 'YYYY-MM-DD HH:MM:SS.fff'") from None


@dataclass(frozen=True)
class ReaderStats:
    """Counters of what the reader has read and how (a snapshot)."""

    state: str  # "idle" | "running" | "stopped"
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
    """Rows appended as columns of Python lists, folded into a frame that keeps the latest ``keep_rows``."""

    def __init__(self, columns: tuple[str, ...], keep_rows: int):
        self.columns = columns
        self.keep_rows = keep_rows
        self.pending: dict[str, list] = {name: [] for name in columns}
        self.frame = _empty_frame(columns)
        self.dropped = 0  # rows no longer kept

    def append(self, values: tuple) -> None:
        for name, value in zip(self.columns, values):
            self.pending[name].append(value)

    def fold(self) -> pd.DataFrame:
        """Move the appended rows into the frame; returns them as a frame of their own (empty if none)."""
        if not self.pending[self.columns[0]]:
            return self.frame.iloc[:0]
        chunk = pd.DataFrame({name: pd.array(values, dtype=_DTYPES[name]) for name, values in self.pending.items()})
        self.pending = {name: [] for name in self.columns}
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
        self.confusion, self.records = empty.confusion, {}
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
        self.confusion = self.confusion + np.bincount(cells, minlength=self.confusion.size).reshape(self.confusion.shape)
        codes, names = pd.factorize(rows["record"])
        known = codes >= 0
        per_record = np.bincount(codes[known] * self.confusion.size + cells[known],
                                 minlength=len(names) * self.confusion.size).reshape(-1, *self.confusion.shape)
        self.records = _sum_records([self.records, dict(zip(names.tolist(), per_record))])
        ts = rows["ts"].to_numpy(dtype=float)
        seconds = np.floor(ts).astype(np.int64)
        start = int(seconds.min())
        added = np.bincount((seconds - start) * n_classes + rows["pred"].to_numpy(np.int64),
                            minlength=(int(seconds.max()) + 1 - start) * n_classes).reshape(-1, n_classes).astype(np.int32)
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ResultsReader:
    """Owner of the polling of one log group; ``poll_once`` reads, ``snapshot`` returns the results.

    Parameters
    ----------
    logs : boto3 CloudWatch Logs client
    log_group : str
        ``/aws/lambda/<function>`` (``hbcore.config.Names.log_group``).
    start_s : float, default=None
        Epoch seconds to read from; default LOOKBACK_S before now.
    poll_interval_s, lag_s, query_timeout_s, query_limit : see the module constants.
    keep_rows, keep_misclassified, keep_rejected : int
        How many of the latest predictions (and summaries), misclassified predictions and rejected
        records are kept as rows; everything read is counted in the totals whatever these are.
    """

    def __init__(self, logs, log_group: str, *, start_s: float | None = None, poll_interval_s: float = POLL_INTERVAL_S,
                 lag_s: int = LAG_S, query_timeout_s: float = QUERY_TIMEOUT_S, query_limit: int = QUERY_LIMIT,
                 keep_rows: int = KEEP_ROWS, keep_misclassified: int = KEEP_MISCLASSIFIED_ROWS,
                 keep_rejected: int = KEEP_REJECTED_ROWS):
        self.logs = logs
        self.log_group = log_group
        self.start_s = int(time.time() - LOOKBACK_S if start_s is None else start_s)
        self.poll_interval_s = poll_interval_s
        self.lag_s = lag_s
        self.query_timeout_s = query_timeout_s
        self.query_limit = query_limit
        self.query = QUERY.format(limit=query_limit)
        self._lock = threading.Lock()  # the data below
        self._poll_lock = threading.Lock()  # one poll at a time
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._state = "idle"
        self._predictions = _Table(PREDICTION_COLUMNS, keep_rows)
        self._misclassified = _Table(PREDICTION_COLUMNS, keep_misclassified)
        self._rejected = _Table(REJECTED_COLUMNS, keep_rejected)
        self._summaries = _Table(SUMMARY_COLUMNS, keep_rows)
        self._runs: dict[str | None, _RunTally] = {}
        self._rejected_keys: dict[tuple, None] = {}  # insertion-ordered: the oldest go first
        self._recent_events: dict[tuple[str, str, int], float] = {}  # event key → epoch s, for overlaps
        self._summaries_read = 0
        self._counts = dict.fromkeys(("queries", "failed_queries", "events", "reread_events", "duplicate_predictions",
                                      "duplicate_rejections", "lambda_lines", "foreign_lines", "truncated_windows"), 0)
        self._read_until_s: int | None = None
        self._last_poll_s: float | None = None
        self._errors: deque[str] = deque(maxlen=KEPT_ERRORS)
        self._error_count = 0

    # -- owner API --

    def start(self) -> ResultsReader:
        """Poll every ``poll_interval_s`` in a background thread until :meth:`stop`."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the results reader was already started")
            self._state = "running"
            self._thread = threading.Thread(target=self._loop, name=f"results-{self.log_group}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = STOP_JOIN_TIMEOUT_S) -> None:
        with self._lock:
            self._stop_requested = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        with self._lock:
            self._state = "stopped"

    def __enter__(self) -> ResultsReader:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _loop(self) -> None:
        while True:
            try:
                self.poll_once()
            except (QueryFailed, ClientError, BotoCoreError) as error:
                self._note_error(str(error))
            with self._lock:
                if self._wake.wait_for(lambda: self._stop_requested, self.poll_interval_s):
                    return

    def snapshot(self) -> ResultsSnapshot:
        """The deduplicated results read so far (cheap: the frames and totals are those of the last poll)."""
        with self._lock:
            runs = {run: tally.totals() for run, tally in self._runs.items()}
            return ResultsSnapshot(
                predictions=self._predictions.frame,
                rejected=self._rejected.frame,
                summaries=self._summaries.frame,
                misclassified=self._misclassified.frame,
                runs=runs,
                stats=ReaderStats(
                    state=self._state, predictions=sum(totals.predicted for totals in runs.values()),
                    rejected=sum(totals.rejected for totals in runs.values()), summaries=self._summaries_read,
                    read_until_s=self._read_until_s, last_poll_s=self._last_poll_s, errors=tuple(self._errors),
                    error_count=self._error_count, dropped_misclassified=self._misclassified.dropped,
                    dropped_rejected=self._rejected.dropped, **self._counts,
                ),
            )

    # -- reading --

    def poll_once(self, now_s: float | None = None) -> int:
        """Read the log group up to ``now_s`` (default: now); the number of new events. Raises QueryFailed."""
        with self._poll_lock:
            end_s = int(time.time() if now_s is None else now_s) + 1
            with self._lock:
                start_s = self.start_s if self._read_until_s is None else max(self.start_s, self._read_until_s - self.lag_s)
                self._forget_events_before(start_s)
            new = 0
            while True:
                rows = self._run_query(start_s, end_s)
                new += self._ingest(rows)
                if len(rows) < self.query_limit:
                    break
                last_s = int(parse_timestamp(rows[-1]["@timestamp"]))
                if last_s <= start_s:  # one second holds more events than a query returns
                    with self._lock:
                        self._counts["truncated_windows"] += 1
                        self._note_error_locked(f"more than {self.query_limit} log events in second {start_s} of "
                                                f"{self.log_group}: some of them were not read")
                    last_s = start_s + 1
                start_s = last_s
            with self._lock:
                self._read_until_s = end_s
                self._last_poll_s = time.time()
            return new

    def _run_query(self, start_s: int, end_s: int) -> list[dict[str, str]]:
        """One Logs Insights query over [start_s, end_s]; its rows as field → value."""
        with self._lock:
            self._counts["queries"] += 1
        window = f"{self.log_group} [{start_s}, {end_s}]"
        try:
            query_id = self.logs.start_query(logGroupNames=[self.log_group], startTime=start_s, endTime=end_s,
                                             queryString=self.query)["queryId"]
            deadline = time.monotonic() + self.query_timeout_s
            wait_s = QUERY_WAIT_MIN_S
            while True:
                response = self.logs.get_query_results(queryId=query_id)
                status = response.get("status", "Unknown")
                if status == "Complete":
                    return [{field["field"]: field["value"] for field in row} for row in response.get("results", [])]
                if status in FAILED_STATUSES:
                    raise QueryFailed(f"Logs Insights query over {window} ended {status}")
                if time.monotonic() + wait_s > deadline:
                    self._stop_query(query_id)
                    raise QueryFailed(f"Logs Insights query over {window} still {status} after {self.query_timeout_s:g} s")
                time.sleep(wait_s)
                wait_s = min(QUERY_WAIT_MAX_S, wait_s * 2)
        except QueryFailed:
            with self._lock:
                self._counts["failed_queries"] += 1
            raise

    def _stop_query(self, query_id: str) -> None:
        """Cancel a query that took too long (it is billed while it runs); best effort."""
        try:
            self.logs.stop_query(queryId=query_id)
        except (ClientError, BotoCoreError, NotImplementedError):
            pass

    def _forget_events_before(self, start_s: float) -> None:
        """Drop overlap keys of events no later window can return again (caller holds the lock)."""
        if self._recent_events:
            self._recent_events = {key: ts for key, ts in self._recent_events.items() if ts >= start_s - 1}

    def _ingest(self, rows: list[dict[str, str]]) -> int:
        """Parse and file new log events; the number of events not read before."""
        new = 0
        with self._lock:
            for row in rows:
                stamp, message = row.get("@timestamp", ""), row.get("@message", "")
                key = (stamp, row.get("@logStream", ""), hash(message))  # the hash keeps the text out of memory
                if key in self._recent_events:
                    self._counts["reread_events"] += 1
                    continue
                ts = parse_timestamp(stamp)
                self._recent_events[key] = ts
                self._counts["events"] += 1
                new += 1
                self._file(message.strip(), ts)
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

    def _file(self, message: str, ts: float) -> None:
        """Put one log line where it belongs (caller holds the lock)."""
        line = None
        if message.startswith("{"):
            try:
                line = json.loads(message)
            except ValueError:
                pass
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "prediction" and isinstance(line.get("id"), str) and _integer(line.get("pred")) in range(len(CLASS_NAMES)):
            self._file_prediction(line, ts)
        elif kind == "rejected" and isinstance(line.get("reason"), str):
            self._file_rejected(line, ts)
        elif kind == "summary" and _integer(line.get("records")) is not None:
            self._summaries.append((line["records"], _integer(line.get("predicted")) or 0,
                                    _integer(line.get("rejected")) or 0, _integer(line.get("failed")) or 0,
                                    _integer(line.get("endpoint_calls")) or 0, _number(line.get("endpoint_ms")),
                                    _number(line.get("handler_ms")), _text(line.get("error")), ts))
        elif message.startswith(LAMBDA_PREFIXES):
            self._counts["lambda_lines"] += 1
        else:
            self._counts["foreign_lines"] += 1

    def _file_prediction(self, line: dict, ts: float) -> None:
        identity, run = line["id"], _text(line.get("run"))
        tally = self._tally(run)
        if not tally.ids.add(identity, line["pred"]):
            self._counts["duplicate_predictions"] += 1
            return
        label = _integer(line.get("label"))
        self._predictions.append((
            identity, run, _text(line.get("record")), _integer(line.get("sample")),
            _number(line.get("t")), label if label in range(len(CLASS_NAMES)) else None, line["pred"],
            _number(line.get("prob")),
            _text(line.get("model_version")), _number(line.get("latency_ms")), _number(line.get("endpoint_ms")),
            _number(line.get("rr_local_s")), _text(line.get("seq")), _text(line.get("shard")), ts,
        ))

    def _file_rejected(self, line: dict, ts: float) -> None:
        """File a rejected record once. Only the latest keep_rejected keys are remembered: a copy of an
        older one (a retry an hour later, past that many malformed records) would count again."""
        key = (line.get("shard"), line.get("seq")) if line.get("seq") is not None else (line.get("id"), line["reason"])
        if key in self._rejected_keys:
            self._counts["duplicate_rejections"] += 1
            return
        self._rejected_keys[key] = None
        if len(self._rejected_keys) > self._rejected.keep_rows:
            del self._rejected_keys[next(iter(self._rejected_keys))]
        tally = self._tally(_text(line.get("run")))
        tally.rejected += 1
        tally.changed()
        self._rejected.append((_text(line.get("id")), tally.run, _text(line.get("record")),
                               _text(line.get("seq")), _text(line.get("shard")), line["reason"], ts))

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._note_error_locked(message)

    def _note_error_locked(self, message: str) -> None:
        self._errors.append(message)
        self._error_count += 1


# --- aggregations over a snapshot's frames ----------------------------------------------------------

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
