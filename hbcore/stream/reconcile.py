"""Reconciliation: whether the results reader holds every line of every invocation, and where to look again.

Logs Insights returns an event only after an ingestion delay (seconds, sometimes longer than the
reader's lag) and at most 10,000 rows a query, so a window read once may come up short without
telling. The handler makes shortfalls visible (hbcore.contracts.log_lines): every line of an
invocation carries ``inv``, the invocation's number in its execution environment, one log stream
per environment, from 1; and its summary line says how many lines came before it (``lines``). So,
per log stream:

- an invocation whose summary is read and whose lines are all read is *complete*;
- one with fewer lines than its summary says, or lines and no summary, is *short*;
- a number missing between two read invocations (or below the first one, for a stream that began
  after the reader did: its first line read is ``NEW_STREAM_MARGIN_S`` past the reader's start and
  numbered at most ``NEW_STREAM_MAX_INV``) is an invocation not read at all.

Ingestion delays differ by event, so a stream's first line read need not be its first invocation's:
a line read later with a number below the stream's floor lowers the floor to it (by the same rule),
and the invocations from there up are expected after all. Before the lowest line read nothing is
expected; the reader's count probe (``hbcore.stream.reader``) is what finds such lines if they
arrive late.

:class:`Reconciler` keeps that state (bounded: complete invocations are forgotten, and so is
anything older than ``give_up_s``, counted as abandoned: a handler that died mid-invocation never
prints its summary) and names, per stream, the window to read again (:meth:`windows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

GIVE_UP_S = 300.0  # an invocation still short this long after its last line read is abandoned
# A stream whose first line read is this far past the reader's start began after it: its invocations
# are expected from number 1 (otherwise from the lowest one read).
NEW_STREAM_MARGIN_S = 5.0
NEW_STREAM_MAX_INV = 3
MISSING_LOOKBACK_S = 60.0  # how far before a stream's first line read its first invocations are looked for


class Window(NamedTuple):
    """A time window of one log stream to read again (epoch seconds)."""

    stream: str
    start_s: float
    end_s: float


@dataclass
class _Invocation:
    first_ts: float
    last_ts: float
    seen: int = 0  # lines of ours read, the summary excepted
    expected: int | None = None  # the summary's count; None until the summary is read
    events: set[tuple[float, int]] = field(default_factory=set)  # (ts, hash of the text) of the lines read

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.seen >= self.expected


@dataclass
class _Stream:
    floor: int  # the lowest invocation number expected (1, or the lowest read for a stream older than the reader)
    first_ts: float
    invocations: dict[int, _Invocation] = field(default_factory=dict)
    complete_through: int = 0  # every invocation from floor to this one is complete (and forgotten)
    last_complete_ts: float | None = None  # the last line of the latest complete invocation forgotten
    gave_up: bool = False  # invocations of it were abandoned: its floor stays where it is


class Reconciler:
    """Per log stream, the invocations read so far and which of them are short (not thread-safe: the
    results store calls it under its own lock).

    Parameters
    ----------
    start_s : float
        The epoch second the reader reads from: lines before it are not expected.
    give_up_s : float, default=GIVE_UP_S
    """

    def __init__(self, start_s: float, give_up_s: float = GIVE_UP_S):
        self.start_s = start_s
        self.give_up_s = give_up_s
        self._streams: dict[str, _Stream] = {}
        self.abandoned = 0  # invocations given up on (still short after give_up_s)
        self.reconciled = 0  # invocations found complete

    def _floor(self, inv: int, ts: float) -> int:
        """The lowest invocation expected of a stream whose lowest line read is ``inv``'s, at ``ts``."""
        return 1 if ts >= self.start_s + NEW_STREAM_MARGIN_S and inv <= NEW_STREAM_MAX_INV else inv

    def _stream(self, stream: str, inv: int, ts: float) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            floor = self._floor(inv, ts)
            state = self._streams[stream] = _Stream(floor, ts, complete_through=floor - 1)
        state.first_ts = min(state.first_ts, ts)
        if inv < state.floor and not state.gave_up:
            self._lower_floor(state, self._floor(inv, ts))
        return state

    def _lower_floor(self, state: _Stream, floor: int) -> None:
        """Expect the stream's invocations from ``floor`` up: a line below the old floor was read late.

        The complete run already forgotten is put back as placeholders (complete, no lines), which
        ``_settle`` absorbs again, counting them once, when the invocations below them are complete.
        """
        mark = state.last_complete_ts if state.last_complete_ts is not None else state.first_ts
        for done in range(state.floor, state.complete_through + 1):
            state.invocations[done] = _Invocation(mark, mark, expected=0)
        self.reconciled -= state.complete_through - state.floor + 1
        state.floor, state.complete_through, state.last_complete_ts = floor, floor - 1, None

    def _invocation(self, stream: str, inv: int, ts: float) -> _Invocation | None:
        state = self._stream(stream, inv, ts)
        if inv <= state.complete_through:
            return None  # complete already: a copy read again
        found = state.invocations.get(inv)
        if found is None:
            found = state.invocations[inv] = _Invocation(ts, ts)
        found.first_ts, found.last_ts = min(found.first_ts, ts), max(found.last_ts, ts)
        return found

    def line(self, stream: str, inv: int, ts: float, text_hash: int) -> None:
        """A line of ours of invocation ``inv`` (not its summary), read at ``ts``."""
        found = self._invocation(stream, inv, ts)
        if found is not None and (ts, text_hash) not in found.events:
            found.events.add((ts, text_hash))
            found.seen += 1
            self._settle(stream)

    def summary(self, stream: str, inv: int, lines: int, ts: float) -> None:
        """The summary of invocation ``inv``, saying ``lines`` lines came before it."""
        found = self._invocation(stream, inv, ts)
        if found is not None:
            found.expected = lines
            self._settle(stream)

    def _settle(self, stream: str) -> None:
        """Forget the complete invocations that follow the stream's complete run without a gap."""
        state = self._streams[stream]
        while (following := state.invocations.get(state.complete_through + 1)) is not None and following.complete:
            del state.invocations[state.complete_through + 1]
            state.complete_through += 1
            state.last_complete_ts = following.last_ts
            self.reconciled += 1
        # complete invocations after a gap wait for it (they bound its window); they are cheap

    def forget_before(self, now_s: float) -> None:
        """Abandon what is still short ``give_up_s`` after its last line (and the gaps before it)."""
        horizon = now_s - self.give_up_s
        for name, state in list(self._streams.items()):
            stale = [inv for inv, found in state.invocations.items() if found.last_ts < horizon]
            if not stale:
                if not state.invocations and state.last_complete_ts is not None and state.last_complete_ts < horizon:
                    del self._streams[name]  # an idle stream: nothing short, nothing read for give_up_s
                continue
            last = max(stale)
            self.abandoned += sum(1 for inv in range(state.complete_through + 1, last + 1)
                                  if not (inv in state.invocations and state.invocations[inv].complete))
            for inv in range(state.complete_through + 1, last + 1):
                state.invocations.pop(inv, None)
            state.complete_through, state.gave_up = last, True
            state.last_complete_ts = max(state.last_complete_ts or 0.0, horizon)
            self._settle(name)

    def _short(self, state: _Stream) -> list[int]:
        """The numbers of the stream's invocations that are short or missing, above its complete run."""
        if not state.invocations:
            return []
        top = max(state.invocations)
        return [inv for inv in range(state.complete_through + 1, top + 1)
                if inv not in state.invocations or not state.invocations[inv].complete]

    def unreconciled(self) -> int:
        """Invocations short or missing (the newest of a stream counts once its first line is read)."""
        return sum(len(self._short(state)) for state in self._streams.values())

    def oldest_short_s(self) -> float | None:
        """Epoch seconds of the earliest line near a short or missing invocation (None: everything reconciled)."""
        starts = [window.start_s for window in self.windows(float("inf"))]
        return min(starts, default=None)

    def windows(self, now_s: float) -> list[Window]:
        """Per stream with a short or missing invocation, the window that holds it, to ``now_s``.

        The first short one always follows the stream's complete run (``_settle`` absorbs the others),
        so its lines come after the last line of the complete invocation before it; with none read
        (the stream's first invocations), from ``MISSING_LOOKBACK_S`` before the stream's first line read.
        """
        found = []
        for name, state in self._streams.items():
            if not self._short(state):
                continue
            start = (state.last_complete_ts if state.last_complete_ts is not None
                     else state.first_ts - MISSING_LOOKBACK_S)
            found.append(Window(name, max(self.start_s, start - 1.0), now_s))
        return found
