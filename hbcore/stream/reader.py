"""The results reader: the handler's log lines read back from CloudWatch Logs with Logs Insights.

:class:`ResultsReader` polls Logs Insights over the function's log group and reads raw ``@message``
lines in time windows (``fields``, ``filter`` on ``@logStream``, ``stats count(*) by``, ``sort``,
``limit``: the subset the local cloud evaluates as AWS does, hbcore.localcloud.insights), handing
them to its :class:`~hbcore.stream.tally.ResultsStore`, which files each once. It loses nothing to
the two ways Logs Insights drops events without an error:

- Ingestion delay (seconds, sometimes more than the lag): each poll reads from the end of the
  last one minus the lag up to now; the lag grows to cover the largest delay seen (an event first
  read after a poll that covered its time), up to ``LAG_MAX_S``. Two checks find what still came
  up short: reconciliation (hbcore.stream.reconcile: each invocation's summary line counts its
  lines), after which the stream holding a short or missing invocation is read again from before
  it; and, every ``PROBE_EVERY_POLLS`` polls, a count probe (``stats count(*) by bin(1s)`` over the
  last ``LAG_MAX_S``), after which each second holding more events than were read is read again.
  The probe is what notices a delay longer than the lag at all: with every event late, a poll's
  own window finds nothing to reconcile.
- The row cap (10,000 on AWS, ``HB_LOGS_QUERY_MAX_ROWS`` in the local cloud): a result is cut when
  it holds fewer rows than ``statistics.recordsMatched`` (or reaches the query limit); the window
  is split at the last second returned and the rest read by another query, and a second holding
  more events than one query returns is read stream by stream.

``startTime``/``endTime`` are whole epoch seconds, both inclusive. Statuses Scheduled/Running are
waited for up to ``query_timeout_s``; Failed, Cancelled, Timeout and Unknown fail the poll, which
leaves the window to be read again by the next one. The snapshot's stats say how far behind the
reader is (``behind_s``, ``unreconciled``, ``lag_s``), for the monitor page.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from hbcore.background import BackgroundTask
from hbcore.stream.tally import (
    KEEP_MISCLASSIFIED_ROWS,
    KEEP_REJECTED_ROWS,
    KEEP_ROWS,
    ResultsSnapshot,
    ResultsStore,
)

# Sorted so that a window cut by the limit holds its oldest events.
QUERY = "fields @timestamp, @message, @logStream{filter} | sort @timestamp asc | limit {limit}"
STREAM_FILTER = ' | filter @logStream = "{stream}"'
STREAM_COUNTS = "stats count(*) as events by @logStream"
QUERY_LIMIT = 10_000  # rows per query; Logs Insights caps results at 10,000 by default
POLL_INTERVAL_S = 2.0
# While a run's first beats are awaited (expect_events), polls come this often and each is one query: no
# count probe and no re-read of short invocations (each another query, 0.3-0.6 s in the app, that the poll
# would wait for before the next could see the new run), so the monitor shows the first predictions about a
# poll interval sooner. Once a prediction or rejected record of the run is read (not any line: START/REPORT
# lines have their own ingestion delays), or after AWAIT_MAX_S, the reader goes back to POLL_INTERVAL_S, its
# probes and its re-reads (the next probe covers the LAG_MAX_S the skipped ones would have; a short
# invocation's window is read again from where it starts). One query at a time still: ~2 queries/s for at most
# AWAIT_MAX_S, far below Logs Insights' 30 concurrent.
FIRST_POLL_INTERVAL_S = 0.2
AWAIT_MAX_S = 30.0
LAG_S = 10
LAG_MAX_S = 120  # the most a poll reads back, however late events have come
LAG_MARGIN_S = 3  # read back this much more than the largest ingestion delay seen
REREADS_PER_POLL = 8  # streams read again per poll to reconcile (the oldest short ones first)
PROBE_EVERY_POLLS = 5  # polls between count probes (the first poll probes too): ~12x the ingested bytes scanned
PROBE = "stats count(*) as events by bin(1s)"
LOOKBACK_S = 15 * 60
QUERY_TIMEOUT_S = 60.0
QUERY_WAIT_MIN_S = 0.1
QUERY_WAIT_MAX_S = 1.0
FAILED_STATUSES = frozenset({"Failed", "Cancelled", "Timeout", "Unknown"})
READER_COUNTS = ("queries", "failed_queries", "truncated_windows", "requeried_windows", "probes")


def _runs(seconds: list[int]) -> list[tuple[int, int]]:
    """Sorted seconds as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for second in seconds:
        if runs and second == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], second)
        else:
            runs.append((second, second))
    return runs


class QueryFailed(RuntimeError):
    """A Logs Insights query that did not complete; the window is read again by the next poll."""


def parse_timestamp(value: str) -> float:
    """Epoch seconds from an ``@timestamp``: epoch milliseconds (moto) or ``2026-11-27 19:42:35.975`` UTC (AWS)."""
    if value.isdigit():
        return int(value) / 1000.0
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"@timestamp {value!r} is neither epoch milliseconds nor 'YYYY-MM-DD HH:MM:SS.fff'") from None


class ResultsReader(BackgroundTask[ResultsSnapshot]):
    """Owner of the polling of one log group; ``poll_once`` reads, ``snapshot`` returns the results.

    ``start`` polls every ``poll_interval_s`` in a background thread until ``stop``, which also ends
    the poll under way at its next query (:class:`~hbcore.background.BackgroundTask`). After
    :meth:`expect_events` (a replay starts) it polls every ``first_poll_interval_s`` until a beat of
    that run is read, for at most AWAIT_MAX_S.

    Parameters
    ----------
    logs : boto3 CloudWatch Logs client
    log_group : str
        ``/aws/lambda/<function>`` (``hbcore.aws.names.Names.log_group``).
    start_s : float, default=None
        Epoch seconds to read from; default LOOKBACK_S before now.
    poll_interval_s, first_poll_interval_s, lag_s, query_timeout_s, query_limit : see the module constants.
    keep_rows, keep_misclassified, keep_rejected : int
        How many of the latest predictions (and summaries), misclassified predictions and rejected
        records are kept as rows; everything read is counted in the totals whatever these are.
    """

    def __init__(self, logs, log_group: str, *, start_s: float | None = None, poll_interval_s: float = POLL_INTERVAL_S,
                 first_poll_interval_s: float = FIRST_POLL_INTERVAL_S,
                 lag_s: int = LAG_S, query_timeout_s: float = QUERY_TIMEOUT_S, query_limit: int = QUERY_LIMIT,
                 keep_rows: int = KEEP_ROWS, keep_misclassified: int = KEEP_MISCLASSIFIED_ROWS,
                 keep_rejected: int = KEEP_REJECTED_ROWS):
        self.logs = logs
        self.log_group = log_group
        self.start_s = int(time.time() - LOOKBACK_S if start_s is None else start_s)
        self.poll_interval_s = poll_interval_s
        self.first_poll_interval_s = first_poll_interval_s
        self.lag_s = lag_s
        self.query_timeout_s = query_timeout_s
        self.query_limit = query_limit
        self.query = QUERY.format(filter="", limit=query_limit)
        super().__init__(f"results-{log_group}")  # its _lock guards the counters below (the store has its own)
        self._poll_lock = threading.Lock()  # one poll at a time; taken before _lock, never while holding it
        self.store = ResultsStore(keep_rows, keep_misclassified, keep_rejected, start_s=self.start_s)
        self._counts = dict.fromkeys(READER_COUNTS, 0)
        self._read_until_s: int | None = None
        self._last_poll_s: float | None = None
        self._polls = 0
        self._awaiting_until: float | None = None  # monotonic end of the quicker polling (expect_events)
        self._awaited_run: str | None = None
        self._woken = False
        self._filed = threading.Condition()  # notified when a query's rows added events to the store

    def expect_events(self, run: str) -> None:
        """Run ``run`` is starting: poll at once and every ``first_poll_interval_s`` until one of its beats is read."""
        with self._lock:
            self._awaiting_until = time.monotonic() + AWAIT_MAX_S
            self._awaited_run = run
            self._woken = True
            self._wake.notify_all()

    def awaiting_events(self) -> bool:
        """Whether the reader polls at the quicker first interval (see :meth:`expect_events`)."""
        with self._lock:
            return self._awaiting_until is not None and time.monotonic() < self._awaiting_until

    def wait_for_beats(self, run: str, timeout_s: float) -> bool:
        """Whether a beat of ``run`` (a prediction or a rejected record) has been read, waiting up to
        ``timeout_s`` for one (0: not at all): a page awaiting a run's first beats learns of them as the query
        that read them ends, not at its next refresh."""
        deadline = time.monotonic() + timeout_s
        with self._filed:
            while self.store.beats_of_run(run) == 0:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    return False
                self._filed.wait(remaining_s)
            return True

    def _work(self) -> str:
        """Poll until stopped; a failed query is noted and the next poll reads its window again."""
        while True:
            try:
                self.poll_once()
            except (QueryFailed, ClientError, BotoCoreError) as error:
                with self._lock:
                    self._note_error_locked(str(error))
            if self._rest():
                return "stopped"

    def _rest(self) -> bool:
        """Wait until the next poll (cut short by stop or expect_events); whether stop was asked."""
        with self._lock:
            run = self._awaited_run
        arrived = run is not None and self.store.beats_of_run(run) > 0  # the store's lock, not under ours
        with self._lock:
            expired = self._awaiting_until is not None and time.monotonic() >= self._awaiting_until
            if expired or (arrived and self._awaited_run == run):
                self._awaiting_until, self._awaited_run = None, None
            interval_s = self.poll_interval_s if self._awaiting_until is None else self.first_poll_interval_s
            if not self._woken:
                self._wake.wait_for(lambda: self._stop_requested or self._woken, interval_s)
            self._woken = False
            return self._stop_requested

    def snapshot(self) -> ResultsSnapshot:
        """The deduplicated results read so far (cheap: the frames and totals are those of the last poll)."""
        lag_s = self.effective_lag_s()
        short_s = self.store.reconciled_until_s()
        with self._lock:
            behind_s = None
            if self._read_until_s is not None:
                trusted_s = self._read_until_s - lag_s if short_s is None else min(short_s, self._read_until_s - lag_s)
                behind_s = round(max(0.0, time.time() - trusted_s), 1)
            return self.store.snapshot(state=self._state, read_until_s=self._read_until_s,
                                       last_poll_s=self._last_poll_s, errors=tuple(self._errors),
                                       error_count=self._error_count, behind_s=behind_s, lag_s=float(lag_s),
                                       **self._counts)

    def effective_lag_s(self) -> int:
        """Seconds each poll reads back: ``lag_s``, or more to cover the largest ingestion delay seen."""
        return min(LAG_MAX_S, max(self.lag_s, math.ceil(self.store.max_late_s) + LAG_MARGIN_S))

    progress = snapshot  # the name every background task answers to (``stop`` returns it)

    # -- reading --

    def poll_once(self, now_s: float | None = None) -> int:
        """Read the log group up to ``now_s`` (default: now); the number of new events. Raises QueryFailed.

        Once the reader is stopped, a poll ends at its next query, leaving the rest of its window unread.
        """
        with self._poll_lock:
            clock_s = time.time() if now_s is None else now_s
            end_s = int(clock_s) + 1
            with self._lock:
                covered_s = self._read_until_s
                start_s = (self.start_s if covered_s is None
                           else max(self.start_s, covered_s - self.effective_lag_s()))
            # what a later window may read again: the lag, and the probe's LAG_MAX_S
            self.store.forget_events_before(min(start_s, end_s - LAG_MAX_S), clock_s)
            new = self._read_window(start_s, end_s, None, covered_s, clock_s)
            if new is None:
                return 0
            awaiting = self.awaiting_events()
            rereads = [] if awaiting else sorted(self.store.windows_to_reread(end_s), key=lambda window: window.start_s)
            for window in [window for window in rereads if int(window.start_s) < start_s][:REREADS_PER_POLL]:
                with self._lock:
                    self._counts["requeried_windows"] += 1
                found = self._read_window(int(window.start_s), start_s + 1, window.stream, covered_s, clock_s)
                if found is None:
                    return new
                new += found
            if self._polls % PROBE_EVERY_POLLS == 0 and not awaiting:
                found = self._probe(end_s, covered_s, clock_s)
                if found is None:
                    return new
                new += found
            with self._lock:
                self._read_until_s = end_s
                self._last_poll_s = time.time()
                self._polls += 1
            return new

    def _probe(self, end_s: int, covered_s: float | None, now_s: float) -> int | None:
        """Count the events per second over the last LAG_MAX_S and read again each second holding more
        events than were read (late ones); the number of new events, None once stopped."""
        since_s = max(self.start_s, end_s - LAG_MAX_S)
        result = self._run_query(since_s, end_s, None, PROBE)
        if result is None:
            return None
        with self._lock:
            self._counts["probes"] += 1
        held = self.store.events_per_second(since_s)
        short = sorted({int(parse_timestamp(row["bin(1s)"])) for row in result[0]
                        if "bin(1s)" in row and int(row.get("events", 0)) > held.get(
                            int(parse_timestamp(row["bin(1s)"])), 0)})
        new = 0
        for first, last in _runs(short):
            found = self._read_window(first, last + 1, None, covered_s, now_s)
            if found is None:
                return None
            new += found
        return new

    def _ingest(self, rows: list[dict[str, str]], covered_s: float | None, now_s: float) -> int:
        new = self.store.ingest([(parse_timestamp(row.get("@timestamp", "")), row.get("@logStream", ""),
                                  row.get("@message", "")) for row in rows], covered_s, now_s)
        if new:
            with self._filed:
                self._filed.notify_all()
        return new

    def _read_window(self, start_s: int, end_s: int, stream: str | None, covered_s: float | None,
                     now_s: float) -> int | None:
        """Read [start_s, end_s] of the group (or of one ``stream``) in as many queries as the row cap
        needs; the number of new events, None once stopped."""
        new = 0
        while True:
            result = self._run_query(start_s, end_s, stream)
            if result is None:
                return None
            rows, matched = result
            new += self._ingest(rows, covered_s, now_s)
            if len(rows) >= matched and len(rows) < self.query_limit:
                return new
            last_s = int(parse_timestamp(rows[-1]["@timestamp"])) if rows else start_s
            if last_s <= start_s:  # one second holds more events than a query returns
                found = self._read_second(start_s, stream, covered_s, now_s)
                if found is None:
                    return None
                new += found
                last_s = start_s + 1
            start_s = last_s

    def _read_second(self, second: int, stream: str | None, covered_s: float | None, now_s: float) -> int | None:
        """Read one second holding more events than a query returns, stream by stream."""
        if stream is None:
            # endTime is a whole second too, and includes only its first millisecond: read to the next one
            counts = self._run_query(second, second + 1, None, STREAM_COUNTS)
            if counts is None:
                return None
            streams = [row["@logStream"] for row in counts[0] if "@logStream" in row]
            if len(streams) > 1:
                new = 0
                for name in streams:
                    found = self._read_second(second, name, covered_s, now_s)
                    if found is None:
                        return None
                    new += found
                return new
        result = self._run_query(second, second + 1, stream)
        if result is None:
            return None
        rows, matched = result
        new = self._ingest(rows, covered_s, now_s)
        if len(rows) < matched or len(rows) >= self.query_limit:
            with self._lock:
                self._counts["truncated_windows"] += 1
                where = self.log_group if stream is None else f"{self.log_group} stream {stream}"
                self._note_error_locked(f"more than {len(rows):,} log events in second {second} of {where}: "
                                        f"{max(matched - len(rows), 1):,} of them were not read")
        return new

    def _run_query(self, start_s: int, end_s: int, stream: str | None = None,
                   query: str | None = None) -> tuple[list[dict[str, str]], int] | None:
        """One Logs Insights query over [start_s, end_s] (of one ``stream``): its rows as field → value and
        the number of events that matched (``statistics.recordsMatched``: more than the rows when the
        result was cut by the row cap); None once stopped."""
        with self._lock:
            if self._stop_requested:
                return None
            self._counts["queries"] += 1
        window = f"{self.log_group} [{start_s}, {end_s}]"
        if query is None:
            query = self.query if stream is None else QUERY.format(filter=STREAM_FILTER.format(stream=stream),
                                                                   limit=self.query_limit)
        try:
            query_id = self.logs.start_query(logGroupNames=[self.log_group], startTime=start_s, endTime=end_s,
                                             queryString=query)["queryId"]
            deadline = time.monotonic() + self.query_timeout_s
            wait_s = QUERY_WAIT_MIN_S
            while True:
                response = self.logs.get_query_results(queryId=query_id)
                status = response.get("status", "Unknown")
                if status == "Complete":
                    rows = [{field["field"]: field["value"] for field in row} for row in response.get("results", [])]
                    matched = response.get("statistics", {}).get("recordsMatched")
                    return rows, len(rows) if matched is None else int(matched)
                if status in FAILED_STATUSES:
                    raise QueryFailed(f"Logs Insights query over {window} ended {status}")
                if time.monotonic() + wait_s > deadline:
                    self._stop_query(query_id)
                    raise QueryFailed(f"Logs Insights query over {window} still {status} "
                                      f"after {self.query_timeout_s:g} s")
                if self._wait_for_stop(wait_s):
                    self._stop_query(query_id)
                    return None
                wait_s = min(QUERY_WAIT_MAX_S, wait_s * 2)
        except QueryFailed:
            with self._lock:
                self._counts["failed_queries"] += 1
            raise

    def _stop_query(self, query_id: str) -> None:
        """Cancel a query that took too long (it is billed while it runs); best effort."""
        with contextlib.suppress(ClientError, BotoCoreError, NotImplementedError):
            self.logs.stop_query(queryId=query_id)
