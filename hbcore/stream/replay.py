"""Replay: stream the beats of a BeatSet into Kinesis as the patients' monitors would.

A :class:`Replay` owns one background thread that sends beats with PutRecords, paced at a rate in
beats/s, as fast as the stream takes them, or in real time from the PhysioNet timestamps (``t_s``)
times a speed (several records replay at once, as several patients). Each beat is one stream
record (docs/ARCHITECTURE.md, "Stream record"), partition key = its record. With ``aggregate=True``
the beats of one record that go in the same call are packed, as the Kinesis Producer Library packs
user records, into KPL aggregates (``hbcore.contracts.kpl``) of at most MAX_BEATS_PER_AGGREGATE beats
and MAX_AGGREGATE_BYTES: a shard takes 1,000 Kinesis records/s, so carrying many beats in one raises
the beats a shard takes; the handler de-aggregates them.

Delivery: calls carry ≤ 500 records and ≤ 5 MiB. Beats that fall due are buffered for up to
PUT_BUFFER_S (as the Kinesis Producer Library's RecordMaxBufferedTime does), so a paced replay makes
a few calls per second of many records, not one call per beat. Entries that fail (``ProvisionedThroughputExceeded``
or ``InternalFailure`` in a partial failure, or the whole call throttled, failing with a 5xx or
losing its connection) are resent with exponential backoff and jitter until they are accepted or
the replay is stopped; accepted entries are never resent. An entry is a plain beat or an aggregate;
the ledger accounts for each beat it carries: an aggregate accepted accepts them all, one resent or
refused resends or refuses them all. Entries the stream refuses for good (any
other per-record error code) are counted and kept in the :class:`Ledger`, which holds every accepted
beat id (compactly, ``hbcore.stream.beatids``) so that lost and duplicated beats can be counted
downstream. One ambiguity cannot be removed on the client: a call whose connection breaks after
Kinesis stored it is resent and stored twice; the results reader deduplicates by beat id.

The thread never calls Streamlit: pages poll :meth:`Replay.progress`.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from hbcore.aws.backend import Backend
from hbcore.background import BackgroundTask, TaskFailed
from hbcore.contracts import kpl, stream_record
from hbcore.contracts.beat_id import beat_id
from hbcore.data.dataset import BeatSet
from hbcore.stream.beatids import ABSENT, BeatIds

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
RETRYABLE_RECORD_ERRORS = frozenset({"ProvisionedThroughputExceededException", "InternalFailure",
                                     "KMSThrottlingException"})
RETRYABLE_CALL_ERRORS = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException",
                                   "InternalFailure", "ServiceUnavailable", "ThrottlingException",
                                   "KMSThrottlingException", "RequestLimitExceeded"})
# Connection refused or reset, timeouts: the call may not have reached the stream, so resend.
RETRYABLE_BOTOCORE_ERRORS = (HTTPClientError, BotocoreConnectionError)
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 5.0
IDLE_WAIT_MAX_S = 0.05  # longest sleep between checks for due beats, pause and stop
PUT_BUFFER_S = 0.1  # longest a due beat waits for others to share its PutRecords call
RATE_WINDOW_S = 2.0
# KPL's defaults bound an aggregate at 51,200 bytes (AggregationMaxSize): far under Kinesis' 1 MiB a
# record and, at ~1.6 KB a beat, ~30 beats, each far under the handler's 64 KiB a user record.
MAX_AGGREGATE_BYTES = 51_200
MAX_BEATS_PER_AGGREGATE = 100
# The protobuf framing of one user record in an aggregate, at most (tags, lengths, key index).
AGGREGATE_RECORD_OVERHEAD_BYTES = 16

# One PutRecords entry: the beat ids it carries (one, or an aggregate's), its partition key, its data.
Entry = tuple[tuple[str, ...], str, bytes]


def new_run_id() -> str:
    """A run id that sorts by start time and does not collide between concurrent replays."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def kinesis_client(backend: Backend):
    """A Kinesis client for a replay: botocore's own retries off, so the replay counts every resend."""
    return backend.client("kinesis", config=Config(retries={"total_max_attempts": 1}, connect_timeout=5,
                                                   read_timeout=30, max_pool_connections=4))


# --- which beats ------------------------------------------------------------------------------------

def in_time_order(beats: BeatSet) -> BeatSet:
    """Beats ordered by time in their record, records interleaved (as live patients would send them).

    Rows without a time (Kaggle rows) keep their order, after the timed ones.
    """
    meta = beats.meta
    t_s = meta["t_s"].to_numpy(dtype=float)
    order = np.lexsort((meta["sample"].to_numpy(), np.where(np.isnan(t_s), np.inf, t_s)))
    return beats.subset(order)


def shuffled(beats: BeatSet, seed: int = 0) -> BeatSet:
    """Beats in a random order (same seed, same order)."""
    return beats.subset(np.random.default_rng(seed).permutation(len(beats)))


def select_beats(
    beats: BeatSet,
    *,
    split: str | None = None,
    records: Sequence[str] | None = None,
    order: str = "time",
    limit: int | None = None,
    seed: int = 0,
) -> BeatSet:
    """The beats to replay.

    Parameters
    ----------
    beats : BeatSet
        Everything available (built from WFDB records, or Kaggle rows).
    split : {"intra", "inter"}, default=None
        Keep only the test part of that split (``hbcore.data.splits``), so the replay shows beats the
        model did not train on.
    records : sequence of str, default=None
        Keep only these records.
    order : {"time", "shuffled", "as_is"}, default="time"
    limit : int, default=None
        Keep the first ``limit`` beats after ordering.
    seed : int, default=0
        Seed of the shuffled order.

    Raises
    ------
    ValueError
        An unknown split or order, records absent from ``beats``, or no beat left.
    """
    from hbcore.data import splits

    if split == "intra":
        beats = splits.intra_patient(beats)[1]
    elif split == "inter":
        beats = splits.inter_patient(beats)[1]
    elif split is not None:
        raise ValueError(f"unknown split {split!r}: expected 'intra', 'inter' or None")
    if records is not None:
        wanted = [str(record) for record in records]
        available = set(beats.meta["record"])
        missing = [record for record in wanted if record not in available]
        if missing:
            raise ValueError(f"records not in the beats to replay: {', '.join(missing)}")
        beats = beats.subset(beats.meta["record"].isin(wanted).to_numpy())
    if order == "time":
        beats = in_time_order(beats)
    elif order == "shuffled":
        beats = shuffled(beats, seed)
    elif order != "as_is":
        raise ValueError(f"unknown order {order!r}: expected 'time', 'shuffled' or 'as_is'")
    if limit is not None:
        beats = beats.subset(np.arange(min(limit, len(beats))))
    if len(beats) == 0:
        raise ValueError("no beats to replay")
    return beats


# --- stream records ---------------------------------------------------------------------------------

def sent_inputs(beats: BeatSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The windows, RR intervals, pre-R segments and contexts of ``beats`` as their stream records
    carry them, parsed as the endpoint does (float32, NaN = unknown).

    Records hold 4 decimals, so a beat near a decision boundary may be classified differently from
    its full-precision window: the model called directly on these inputs must agree with every
    prediction logged for the beats (the demo's ``agreement``).
    """
    X = stream_record.carried_beats(beats.X).astype(np.float32)
    rr = stream_record.carried_seconds(beats.meta[list(stream_record.RR_FIELDS)].to_numpy(dtype=float))
    pre = stream_record.carried_beats(beats.pre)
    pre[~np.isfinite(pre).all(axis=1)] = np.nan  # a segment is carried whole or not at all
    context = stream_record.carried_context(beats.context)
    return X, rr.astype(np.float32), pre.astype(np.float32), context.astype(np.float32)


class StreamSource:
    """A BeatSet's columns as plain arrays, read once, so that each call formats only its rows.

    The pre-R segments and contexts are the ones :mod:`hbcore.data.patient` computed for the
    beats (the dataset build runs it over each record in time order, as the patient's monitor
    would, beat after beat): the records carry the same numbers the model is evaluated on offline.
    """

    def __init__(self, beats: BeatSet):
        meta = beats.meta
        self.X = beats.X
        self.labels = beats.y.astype(np.int64)
        self.records = meta["record"].astype(str).to_numpy(dtype=object)
        self.samples = meta["sample"].to_numpy(dtype=np.int64)
        self.t_s = meta["t_s"].to_numpy(dtype=float)
        self.rr = meta[list(stream_record.RR_FIELDS)].to_numpy(dtype=float)
        self.pre = beats.pre
        self.context = beats.context

    def records_for(self, rows: np.ndarray, run: str, sent_at: float) -> list[tuple[str, str, bytes]]:
        """``(beat id, partition key, data)`` of the stream records of ``rows`` (``hbcore.contracts.stream_record``)."""
        return stream_record.encode_records(
            run, sent_at, self.records[rows].tolist(), self.samples[rows].tolist(), self.labels[rows].tolist(),
            self.X[rows], self.t_s[rows], self.rr[rows], self.pre[rows], self.context[rows])


# --- bookkeeping ------------------------------------------------------------------------------------

class Ledger:
    """What one replay run delivered: the beat ids Kinesis accepted, and refused ids → reason.

    Written by the replay thread, read by the demo and the benchmarks while it runs (thread-safe).
    ``duplicates`` counts ids Kinesis accepted twice (never expected: accepted entries are not resent).
    Accepted ids are kept compactly (``hbcore.stream.beatids``, 9 bytes a beat), without their shard and
    sequence number: as strings those cost ~350 bytes a beat, and resending and accounting need only
    the ids. Refusals are rare (malformed entries) and kept as they are.
    """

    def __init__(self, run: str):
        self.run = run
        self._lock = threading.Lock()
        self._accepted = BeatIds(run)
        self._refused: dict[str, str] = {}
        self.duplicates = 0

    def accept(self, identity: str) -> None:
        with self._lock:
            if not self._accepted.add(identity):
                self.duplicates += 1

    def refuse(self, identity: str, reason: str) -> None:
        with self._lock:
            self._refused[identity] = reason

    def forget(self, identities) -> None:
        """Treat these accepted beats as never sent, so that a replay continuing the run resends them.

        For a stream that lost what it held (a local cloud restarted: moto keeps nothing), the beats
        the results reader has not seen must go again; beats it has seen must not.
        """
        with self._lock:
            self._accepted.discard(identities)

    def accepted(self) -> BeatIds:
        """A copy of the accepted ids: a set (``in``, ``len``, iteration) with ``lookup`` and ``difference``."""
        with self._lock:
            return self._accepted.copy()

    def refused(self) -> dict[str, str]:
        """A copy: beat id → why the stream refused it for good."""
        with self._lock:
            return dict(self._refused)

    def __len__(self) -> int:
        with self._lock:
            return len(self._accepted)


@dataclass(frozen=True)
class ReplayProgress:
    """A consistent snapshot of a replay, safe to read from any thread."""

    run: str
    state: str  # "idle" | "running" | "paused" | "stopped" | "finished" | "failed"
    total: int
    sent: int  # accepted by Kinesis
    retried: int  # beats resent after a partial or whole-call failure (an aggregate's: all it carries)
    failed_calls: int  # PutRecords calls that failed as a whole
    refused: int  # entries the stream refused for good
    pending: int  # neither accepted nor refused yet
    rate_bps: float  # beats accepted per second over the last RATE_WINDOW_S
    elapsed_s: float  # time spent running (pauses excluded)
    errors: tuple[str, ...]  # the last background.KEPT_ERRORS error messages
    error_count: int
    error: str | None  # why the replay failed, when state == "failed"

    @property
    def done(self) -> bool:
        return self.state in ("stopped", "finished", "failed")


class ReplayFailed(TaskFailed):
    """A PutRecords error that retrying cannot fix (missing stream, no permission, bad request)."""


# --- the replay -------------------------------------------------------------------------------------

class Replay(BackgroundTask[ReplayProgress]):
    """Owner of the thread that streams ``beats`` into Kinesis stream ``stream``.

    Started, stopped and waited for as every :class:`~hbcore.background.BackgroundTask`: ``stop``
    ends the sending after the call in flight (beats not yet accepted stay pending); ``pause`` and
    ``resume`` hold it and let it go on.

    Parameters
    ----------
    kinesis : boto3 Kinesis client
        Preferably :func:`kinesis_client` (botocore retries off: the replay retries and counts).
    stream : str
    beats : BeatSet
        Sent in this order (see :func:`select_beats`), except in real-time mode, sent in ``t_s`` order.
    rate : float, default=None
        Beats per second; None sends as fast as the stream accepts.
    speed : float, default=None
        Real time from ``meta["t_s"]`` times this factor (2.0 = twice as fast); excludes ``rate``.
    run : str, default=None
        The run id in every beat id; a new one by default.
    ledger : Ledger, default=None
        Continue the run this ledger records (a replay stopped, or a stream lost): the beats it holds
        as accepted or refused are not sent again, the others are sent in order, paced from the start.
        The replay that wrote it must have ended.
    aggregate : bool, default=False
        Pack the beats of one record that go in the same call into KPL aggregates (see the module
        docstring); each beat is still accounted for once in the ledger and the progress.
    """

    def __init__(self, kinesis, stream: str, beats: BeatSet, *, rate: float | None = None,
                 speed: float | None = None, run: str | None = None, ledger: Ledger | None = None,
                 aggregate: bool = False):
        if rate is not None and speed is not None:
            raise ValueError("give a rate in beats/s or a real-time speed, not both")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 beats/s, got {rate}")
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.kinesis = kinesis
        self.stream = stream
        self.rate = rate
        self.speed = speed
        self.aggregate = aggregate
        if ledger is not None and run not in (None, ledger.run):
            raise ValueError(f"run {run!r} does not match the ledger's run {ledger.run!r}")
        self.run = ledger.run if ledger is not None else run or new_run_id()
        super().__init__(f"replay-{self.run}")
        self.beats = self._in_sending_order(beats)
        self.ledger = ledger if ledger is not None else Ledger(self.run)
        source = StreamSource(self.beats)
        rows, already_sent, already_refused = self._unsent_rows(source)
        # The sending state: None once the run ended (_on_end_locked frees it).
        self._source: StreamSource | None = source
        self._rows: np.ndarray | None = rows
        self._due_s: np.ndarray | None = self._schedule(rows)
        self._waiting = False  # the thread is in _wait_until_due (holding due beats in its buffer), not in a call
        self._flush_requested = False  # a pause or stop while waiting lets the buffered beats go first
        self._paused = False
        self._paused_total_s = 0.0
        self._paused_at = 0.0
        self._sent, self._refused = already_sent, already_refused
        self._retried = self._failed_calls = 0
        self._accepted_at: deque[tuple[float, int]] = deque()  # (time, beats accepted) per call

    def _in_sending_order(self, beats: BeatSet) -> BeatSet:
        """The beats as given, or in ``t_s`` order in real-time mode."""
        if self.speed is None:
            return beats
        t_s = beats.meta["t_s"].to_numpy(dtype=float)
        if len(beats) and not np.isfinite(t_s).all():
            raise ValueError(f"real-time replay needs a time for every beat; {int((~np.isfinite(t_s)).sum())} "
                             "beats have none (Kaggle rows carry no time: use a rate instead)")
        return beats.subset(np.argsort(t_s, kind="stable"))

    def _unsent_rows(self, source: StreamSource) -> tuple[np.ndarray, int, int]:
        """Rows the ledger holds neither as accepted nor refused, and how many it holds of each."""
        accepted, refused = self.ledger.accepted(), self.ledger.refused()
        if not len(accepted) and not refused:
            return np.arange(len(self.beats)), 0, 0
        records, samples = source.records, source.samples
        sent = accepted.lookup(records, samples) != ABSENT
        gone = np.zeros(len(records), dtype=bool)
        if refused:
            gone[:] = [beat_id(self.run, record, sample) in refused
                       for record, sample in zip(records.tolist(), samples.tolist())]
        return np.flatnonzero(~sent & ~gone), int(sent.sum()), int(gone.sum())

    def _schedule(self, rows: np.ndarray) -> np.ndarray:
        """When each of ``rows`` (the rows still to send) is due (s after start, pauses excluded)."""
        n = len(rows)
        if self.speed is None:
            return np.zeros(n) if self.rate is None else np.arange(n) / self.rate
        t_s = self.beats.meta["t_s"].to_numpy(dtype=float)[rows]
        return (t_s - (t_s[0] if n else 0.0)) / self.speed

    # -- owner API (start, stop, wait and the context manager: hbcore.background.BackgroundTask) --

    def pause(self) -> None:
        """Stop sending after the call in flight; the schedule resumes where it paused."""
        with self._lock:
            if self._state == "running":
                self._paused, self._paused_at, self._state = True, time.monotonic(), "paused"
                self._flush_requested = self._waiting
                self._wake.notify_all()

    def resume(self) -> None:
        with self._lock:
            if self._state == "paused":
                self._paused_total_s += time.monotonic() - self._paused_at
                self._paused, self._state = False, "running"
                self._wake.notify_all()

    def progress(self) -> ReplayProgress:
        with self._lock:
            now = time.monotonic()
            self._forget_rates_before_locked(now - RATE_WINDOW_S)
            elapsed_s = self._elapsed_s_locked(now)
            window_s = min(RATE_WINDOW_S, elapsed_s)
            window_sent = sum(count for _, count in self._accepted_at)
            return ReplayProgress(
                run=self.run, state=self._state, total=len(self.beats), sent=self._sent,
                retried=self._retried, failed_calls=self._failed_calls, refused=self._refused,
                pending=len(self.beats) - self._sent - self._refused,
                rate_bps=window_sent / window_s if self._state == "running" and window_s > 0 else 0.0,
                elapsed_s=elapsed_s,
                errors=tuple(self._errors), error_count=self._error_count, error=self._error,
            )

    # -- the thread --

    def _on_stop_locked(self) -> None:
        """Beats already due while the thread waits for more go in one last call (see _wait_until_due),
        unless the replay is paused: a paused replay sends nothing more, stopped or not."""
        self._flush_requested = self._waiting and not self._paused

    def _elapsed_s_locked(self, now: float) -> float:
        """Running time, pauses excluded, frozen once the run ended."""
        paused = self._paused_total_s + (now - self._paused_at if self._paused else 0.0)
        return super()._elapsed_s_locked(now) - paused

    def _wait_until_due(self, due_s: np.ndarray, next_index: int) -> int | None:
        """Sleep until a call's worth of beats is due; the index after the last one due, or None when stopping.

        A call's worth: MAX_RECORDS_PER_CALL beats, or whatever is due once the first of them has
        waited PUT_BUFFER_S; the run's first call goes as soon as a beat is due (its beats reach the
        stream, and the monitor, that much sooner; the calls after it carry the beats due meanwhile).
        A pause or a stop that comes while the thread waits here first lets one call go with what is
        due, so beats that fell due before it are sent, not held in the buffer;
        one that comes during a call ends the sending after that call. So the stop flag is read
        before a full buffer is let go: with slow calls (0.15 s against real AWS) a call's worth is
        due every time the thread gets here, and a stop tested after that was never seen.
        """
        with self._lock:
            self._waiting = True
            while True:
                now_s = self._elapsed_s_locked(time.monotonic())  # frozen while paused
                due_end = int(np.searchsorted(due_s, now_s, side="right"))
                first_due_s = due_s[next_index]
                buffered = due_end > next_index
                holding = self._paused or self._stop_requested
                if buffered and (self._flush_requested or (not holding and (
                        next_index == 0 or due_end - next_index >= MAX_RECORDS_PER_CALL
                        or now_s - first_due_s >= PUT_BUFFER_S))):
                    self._flush_requested = self._waiting = False
                    return due_end
                self._flush_requested = False
                if self._stop_requested:
                    self._waiting = False
                    return None
                wait_s = IDLE_WAIT_MAX_S if self._paused else min(IDLE_WAIT_MAX_S, first_due_s + PUT_BUFFER_S - now_s)
                self._wake.wait(max(wait_s, 0.001))

    def _work(self) -> str:
        """Send the rows as they fall due; "stopped" when stopped before every beat was accepted or refused."""
        source, unsent, due_s = self._source, self._rows, self._due_s
        # Freed only by _on_end_locked, which runs after this method returns.
        assert source is not None and unsent is not None and due_s is not None, "sending state freed while sending"
        next_index, n = 0, len(unsent)
        while next_index < n:
            due_end = self._wait_until_due(due_s, next_index)
            if due_end is None:
                break
            rows = unsent[next_index:min(due_end, next_index + MAX_RECORDS_PER_CALL)]
            records = source.records_for(rows, self.run, time.time())
            entries: list[Entry] = (_aggregates(records) if self.aggregate
                                    else [((identity,), key, data) for identity, key, data in records])
            for batch in _calls(entries):
                if not self._deliver(batch):
                    break
            next_index += len(rows)
        with self._lock:
            stopped = self._stop_requested and self._sent + self._refused < len(self.beats)
        return "stopped" if stopped else "finished"

    def _on_end_locked(self) -> None:
        """Free the sending state and close the pause the run ended in, if any.

        What is left to describe the run is its beats, ledger and counters; the sending state (~14 MB
        for the 110k MIT-BIH beats) goes: a soak keeps every finished run to account for it.
        """
        self._source = self._rows = self._due_s = None
        if self._paused:
            assert self._ended_at is not None  # BackgroundTask._main sets it before calling this
            self._paused_total_s += self._ended_at - self._paused_at
            self._paused = False

    def _forget_rates_before_locked(self, oldest: float) -> None:
        """Drop the accepted counts older than the rate window, watched or not."""
        while self._accepted_at and self._accepted_at[0][0] < oldest:
            self._accepted_at.popleft()

    def _deliver(self, entries: list[Entry]) -> bool:
        """Put ``entries`` until each is accepted or refused; False if the replay was stopped first."""
        attempt = 0
        while entries:
            if attempt and not self._backoff(attempt):
                return False
            attempt += 1
            try:
                response = self.kinesis.put_records(
                    StreamName=self.stream,
                    Records=[{"Data": data, "PartitionKey": key} for _, key, data in entries],
                )
            except (ClientError, BotoCoreError) as error:
                self._whole_call_failed(error, sum(len(entry[0]) for entry in entries))
                continue
            entries = self._account(entries, response["Records"])
        return True

    def _account(self, entries: list[Entry], results: list[dict]) -> list[Entry]:
        """Record what the stream accepted or refused, for every beat of each entry; return the entries to resend."""
        retry = []
        accepted = retried = 0
        with self._lock:
            for entry, result in zip(entries, results, strict=True):
                identities, code = entry[0], result.get("ErrorCode")
                if code is None:
                    for identity in identities:
                        self.ledger.accept(identity)
                    accepted += len(identities)
                elif code in RETRYABLE_RECORD_ERRORS:
                    retry.append(entry)
                    retried += len(identities)
                else:
                    reason = f"{code}: {result.get('ErrorMessage', '')}"
                    for identity in identities:
                        self.ledger.refuse(identity, reason)
                    self._refused += len(identities)
                    others = len(identities) - 1
                    carried = f" (and the {others} other beats of its aggregate)" if others else ""
                    self._note_error_locked(f"{identities[0]}{carried} refused by stream {self.stream!r}: {reason}")
            self._sent += accepted
            now = time.monotonic()
            self._accepted_at.append((now, accepted))
            self._forget_rates_before_locked(now - RATE_WINDOW_S)
            if retry:
                self._retried += retried
                codes = ", ".join(sorted({result.get("ErrorCode", "") for result in results} - {""}))
                self._note_error_locked(f"{len(retry)} of {len(entries)} records failed ({codes}); resending")
        return retry

    def _whole_call_failed(self, error: Exception, count: int) -> None:
        """Count a failed call; raise ``ReplayFailed`` when retrying cannot help."""
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = f"PutRecords failed: {code}: {error.response.get('Error', {}).get('Message', '')}"
            if code not in RETRYABLE_CALL_ERRORS and status < 500:
                raise ReplayFailed(f"{message} (not retryable; stream {self.stream!r})")
        else:
            message = f"PutRecords failed: {type(error).__name__}: {error}"
            if not isinstance(error, RETRYABLE_BOTOCORE_ERRORS):
                raise ReplayFailed(f"{message} (not retryable; stream {self.stream!r})")
        with self._lock:
            self._failed_calls += 1
            self._retried += count
            self._note_error_locked(message)

    def _backoff(self, attempt: int) -> bool:
        """Sleep before resend ``attempt`` (exponential, equal jitter); False if stopped meanwhile."""
        cap_s = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        return not self._wait_for_stop(cap_s / 2 + random.uniform(0, cap_s / 2))


def _aggregates(records: list[tuple[str, str, bytes]]) -> list[Entry]:
    """``(beat id, partition key, data)`` records packed by partition key into KPL aggregate entries.

    A record's beats keep their order; each aggregate holds ≤ MAX_BEATS_PER_AGGREGATE beats and
    ≤ MAX_AGGREGATE_BYTES (magic bytes, key table and MD5 included), one beat at least.
    """
    by_key: dict[str, list[tuple[str, bytes]]] = {}
    for identity, key, data in records:
        by_key.setdefault(key, []).append((identity, data))
    fixed_bytes = len(kpl.MAGIC) + kpl.DIGEST_BYTES
    entries: list[Entry] = []
    for key, beats in by_key.items():
        start, size = 0, fixed_bytes + len(key.encode()) + AGGREGATE_RECORD_OVERHEAD_BYTES
        for index, (_, data) in enumerate(beats):
            beat_size = len(data) + AGGREGATE_RECORD_OVERHEAD_BYTES
            if index > start and (index - start == MAX_BEATS_PER_AGGREGATE or size + beat_size > MAX_AGGREGATE_BYTES):
                entries.append(_aggregate_entry(key, beats[start:index]))
                start, size = index, fixed_bytes + len(key.encode()) + AGGREGATE_RECORD_OVERHEAD_BYTES
            size += beat_size
        entries.append(_aggregate_entry(key, beats[start:]))
    return entries


def _aggregate_entry(key: str, beats: list[tuple[str, bytes]]) -> Entry:
    return (tuple(identity for identity, _ in beats), key, kpl.encode_aggregate([(key, data) for _, data in beats]))


def _calls(entries: list[Entry]) -> list[list[Entry]]:
    """Split entries into PutRecords calls of ≤ MAX_RECORDS_PER_CALL records and ≤ MAX_BYTES_PER_CALL."""
    calls: list[list[Entry]] = [[]]
    size = 0
    for entry in entries:
        entry_size = len(entry[1].encode()) + len(entry[2])
        if calls[-1] and (len(calls[-1]) == MAX_RECORDS_PER_CALL or size + entry_size > MAX_BYTES_PER_CALL):
            calls.append([])
            size = 0
        calls[-1].append(entry)
        size += entry_size
    return calls if calls[0] else []
