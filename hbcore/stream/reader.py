"""The results reader: the handler's log lines read back from CloudWatch Logs with Logs Insights.

:class:`ResultsReader` polls Logs Insights over the function's log group with a query that means the
same on AWS and on moto (moto evaluates only ``fields``, ``sort`` and ``limit``, ignoring ``filter``
and ``stats``, and returns no discovered JSON fields): it reads raw ``@message`` lines in time
windows and hands them to its :class:`~hbcore.stream.tally.ResultsStore`, which files each once.

- Windows: each poll reads from the end of the last one minus ``lag_s`` (events arrive in Logs a
  few seconds late) up to now. ``startTime``/``endTime`` are whole epoch seconds, both inclusive.
  A window whose result reaches the query limit is split at the last second it returned and the
  rest is read by another query.
- Statuses Scheduled/Running are waited for up to ``query_timeout_s``; Failed, Cancelled, Timeout
  and Unknown fail the poll, which leaves the window to be read again by the next one.
"""

from __future__ import annotations

import contextlib
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
READER_COUNTS = ("queries", "failed_queries", "truncated_windows")


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
    the poll under way at its next query (:class:`~hbcore.background.BackgroundTask`).

    Parameters
    ----------
    logs : boto3 CloudWatch Logs client
    log_group : str
        ``/aws/lambda/<function>`` (``hbcore.aws.names.Names.log_group``).
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
        super().__init__(f"results-{log_group}")  # its _lock guards the counters below (the store has its own)
        self._poll_lock = threading.Lock()  # one poll at a time; taken before _lock, never while holding it
        self.store = ResultsStore(keep_rows, keep_misclassified, keep_rejected)
        self._counts = dict.fromkeys(READER_COUNTS, 0)
        self._read_until_s: int | None = None
        self._last_poll_s: float | None = None

    def _work(self) -> str:
        """Poll until stopped; a failed query is noted and the next poll reads its window again."""
        while True:
            try:
                self.poll_once()
            except (QueryFailed, ClientError, BotoCoreError) as error:
                with self._lock:
                    self._note_error_locked(str(error))
            if self._wait_for_stop(self.poll_interval_s):
                return "stopped"

    def snapshot(self) -> ResultsSnapshot:
        """The deduplicated results read so far (cheap: the frames and totals are those of the last poll)."""
        with self._lock:
            return self.store.snapshot(state=self._state, read_until_s=self._read_until_s,
                                       last_poll_s=self._last_poll_s, errors=tuple(self._errors),
                                       error_count=self._error_count, **self._counts)

    progress = snapshot  # the name every background task answers to (``stop`` returns it)

    # -- reading --

    def poll_once(self, now_s: float | None = None) -> int:
        """Read the log group up to ``now_s`` (default: now); the number of new events. Raises QueryFailed.

        Once the reader is stopped, a poll ends at its next query, leaving the rest of its window unread.
        """
        with self._poll_lock:
            end_s = int(time.time() if now_s is None else now_s) + 1
            with self._lock:
                start_s = (self.start_s if self._read_until_s is None
                           else max(self.start_s, self._read_until_s - self.lag_s))
            self.store.forget_events_before(start_s)
            new = 0
            while True:
                rows = self._run_query(start_s, end_s)
                if rows is None:
                    return new
                new += self.store.ingest([(parse_timestamp(row.get("@timestamp", "")), row.get("@logStream", ""),
                                           row.get("@message", "")) for row in rows])
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

    def _run_query(self, start_s: int, end_s: int) -> list[dict[str, str]] | None:
        """One Logs Insights query over [start_s, end_s]; its rows as field → value, None once stopped."""
        with self._lock:
            if self._stop_requested:
                return None
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
