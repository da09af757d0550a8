"""Compact sets of beat ids: what the replay's ledger and the results reader remember of every beat.

Accounting for every beat once (docs/ARCHITECTURE.md, "Reliability") needs every id a run sent and
every id the logs returned, for as long as the run is accounted for; a run at 500 beats/s sends
1.8 M beats an hour. A Python set of id strings costs ~115 bytes a beat and a dict of id →
(shard, sequence number) ~350: the app grew by ~34 MB a minute. The ids of a run are
``<run>:<record>:<sample>`` (:mod:`hbcore.contracts.beat_id`), so :class:`BeatIds` keeps them as sorted int64 keys
``record code << 32 | sample`` with an int8 value each (the results reader keeps the predicted
class): 9 bytes a beat. Ids of another form (the handler's ``<shardId>:<sequenceNumber>`` for a
stream record without one) are kept as strings; they are rare.

New ids wait in a small dict and are merged into the sorted arrays in batches. A merge replaces the
arrays, never edits them in place, so :meth:`BeatIds.copy` shares them and copies only the ids not
merged yet, and a view taken under the lock stays valid after it is released.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from hbcore.contracts.beat_id import beat_id, parse_beat_id

SAMPLE_BITS = 32
MAX_SAMPLE = 2**SAMPLE_BITS - 1
PENDING_MAX = 16_384  # ids added between merges: a merge copies the arrays, a pending id costs ~100 bytes
ABSENT = -1


@dataclass(frozen=True)
class _View:
    """The merged state at one moment (the arrays are never edited in place)."""

    keys: np.ndarray
    values: np.ndarray
    codes: dict[str, int]
    records: list[str]
    others: dict[str, int]

    def found(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each key: whether it is here, and its position in ``self.keys`` (meaningless where not)."""
        positions = np.minimum(self.keys.searchsorted(keys), max(len(self.keys) - 1, 0))
        if not len(self.keys):
            return np.zeros(len(keys), bool), positions
        return self.keys[positions] == keys, positions


class BeatIds:
    """The ids of one run's beats, each with a small value (0..127); thread-safe."""

    def __init__(self, run: str):
        self.run = run
        self._lock = threading.RLock()
        self._codes: dict[str, int] = {}  # record → code
        self._records: list[str] = []  # code → record
        self._keys = np.empty(0, np.int64)  # sorted
        self._values = np.empty(0, np.int8)
        self._pending: dict[int, int] = {}  # key → value, not merged yet
        self._others: dict[str, int] = {}  # ids not of the form <run>:<record>:<sample>

    @classmethod
    def of(cls, run: str, records: Iterable[str], samples: Iterable[int]) -> BeatIds:
        """The ids of these beats of ``run`` (vectorised: a replay's rows), each with value 0."""
        ids = cls(run)
        records, samples = _arrays(records, samples)
        in_range = (samples >= 0) & (samples <= MAX_SAMPLE)
        names, codes = np.unique(records[in_range], return_inverse=True)
        ids._records = names.tolist()
        ids._codes = {record: code for code, record in enumerate(ids._records)}
        ids._keys = np.unique(codes.ravel().astype(np.int64) << SAMPLE_BITS | samples[in_range])
        ids._values = np.zeros(len(ids._keys), np.int8)
        ids._others = {beat_id(run, record, sample): 0
                       for record, sample in zip(records[~in_range].tolist(), samples[~in_range].tolist())}
        return ids

    def _parts(self, identity: str) -> tuple[str, int] | None:
        """(record, sample) of a beat id of this run whose sample fits the key; None for another id."""
        key = parse_beat_id(identity)
        if key is None or key.run != self.run or key.sample > MAX_SAMPLE:
            return None
        return key.record, key.sample

    def _code(self, record: str) -> int:
        code = self._codes.get(record)
        if code is None:
            code = self._codes[record] = len(self._records)
            self._records.append(record)
        return code

    def _merged_index(self, key: int) -> int:
        """The position of ``key`` in the merged keys, or -1 (caller holds the lock)."""
        index = int(self._keys.searchsorted(key))
        return index if index < len(self._keys) and self._keys[index] == key else -1

    def _merge(self) -> None:
        """Move the pending ids into the sorted arrays (caller holds the lock)."""
        if not self._pending:
            return
        keys = np.fromiter(self._pending.keys(), np.int64, len(self._pending))
        values = np.fromiter(self._pending.values(), np.int8, len(self._pending))
        order = np.argsort(keys)
        positions = self._keys.searchsorted(keys[order])
        self._keys = np.insert(self._keys, positions, keys[order])
        self._values = np.insert(self._values, positions, values[order])
        self._pending = {}

    def _view(self) -> _View:
        with self._lock:
            self._merge()
            return _View(self._keys, self._values, dict(self._codes), list(self._records), dict(self._others))

    def add(self, identity: str, value: int = 0) -> bool:
        """Add ``identity`` with ``value``; False, and nothing changes, if it is already here."""
        parts = self._parts(identity)
        with self._lock:
            if parts is None:
                if identity in self._others:
                    return False
                self._others[identity] = value
                return True
            key = self._code(parts[0]) << SAMPLE_BITS | parts[1]
            if key in self._pending or self._merged_index(key) >= 0:
                return False
            self._pending[key] = value
            if len(self._pending) >= PENDING_MAX:
                self._merge()
            return True

    def get(self, identity: str) -> int | None:
        """The value of ``identity``, None if it is not here."""
        parts = self._parts(identity)
        with self._lock:
            if parts is None:
                return self._others.get(identity)
            code = self._codes.get(parts[0])
            if code is None:
                return None
            key = code << SAMPLE_BITS | parts[1]
            if key in self._pending:
                return self._pending[key]
            index = self._merged_index(key)
            return int(self._values[index]) if index >= 0 else None

    def __contains__(self, identity: object) -> bool:
        return isinstance(identity, str) and self.get(identity) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys) + len(self._pending) + len(self._others)

    def __iter__(self) -> Iterator[str]:
        """The ids as strings (merged ones in key order, then the others), as they were when iteration began."""
        view = self._view()
        for key in view.keys.tolist():
            yield beat_id(self.run, view.records[key >> SAMPLE_BITS], key & MAX_SAMPLE)
        yield from view.others

    def lookup(self, records: Iterable[str], samples: Iterable[int]) -> np.ndarray:
        """The value of each beat ``(record, sample)`` of this run, ABSENT (-1) where it is not here (int16)."""
        view = self._view()
        records, samples = _arrays(records, samples)
        values = np.full(len(samples), ABSENT, np.int16)
        if not len(samples):
            return values
        names, inverse = np.unique(records, return_inverse=True)
        codes = np.array([view.codes.get(name, -1) for name in names.tolist()], np.int64)[inverse.ravel()]
        in_range = (samples >= 0) & (samples <= MAX_SAMPLE)
        compact = np.flatnonzero(in_range & (codes >= 0))
        found, positions = view.found(codes[compact] << SAMPLE_BITS | samples[compact])
        values[compact[found]] = view.values[positions[found]]
        for row in np.flatnonzero(~in_range).tolist():
            values[row] = view.others.get(beat_id(self.run, records[row], int(samples[row])), ABSENT)
        return values

    def difference(self, other: BeatIds) -> list[str]:
        """The ids here that ``other`` lacks."""
        if other.run != self.run:
            return list(self)
        mine, theirs = self._view(), other._view()
        codes, samples = mine.keys >> SAMPLE_BITS, mine.keys & MAX_SAMPLE
        their_codes = np.array([theirs.codes.get(record, -1) for record in mine.records], np.int64)[codes]
        lacking = their_codes < 0
        known = np.flatnonzero(~lacking)
        lacking[known] = ~theirs.found(their_codes[known] << SAMPLE_BITS | samples[known])[0]
        missing = [beat_id(self.run, mine.records[code], sample)
                   for code, sample in zip(codes[lacking].tolist(), samples[lacking].tolist())]
        return missing + [identity for identity in mine.others if identity not in theirs.others]

    def discard(self, identities: Iterable[str]) -> None:
        """Remove these ids (absent ones are ignored)."""
        with self._lock:
            self._merge()
            dropped = []
            for identity in identities:
                parts = self._parts(identity)
                if parts is None:
                    self._others.pop(identity, None)
                elif parts[0] in self._codes:
                    dropped.append(self._codes[parts[0]] << SAMPLE_BITS | parts[1])
            if dropped:
                kept = ~np.isin(self._keys, np.array(dropped, np.int64))
                self._keys, self._values = self._keys[kept], self._values[kept]

    def copy(self) -> BeatIds:
        """An independent copy; the merged arrays are shared (neither side edits them in place)."""
        twin = BeatIds(self.run)
        with self._lock:
            twin._codes, twin._records = dict(self._codes), list(self._records)
            twin._keys, twin._values = self._keys, self._values
            twin._pending, twin._others = dict(self._pending), dict(self._others)
        return twin


def _arrays(records: Iterable[str], samples: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """Records as a numpy str array and samples as int64, from any sequences of the same length."""
    records = np.asarray(records if isinstance(records, np.ndarray) else list(records), dtype=object).astype(str)
    return records, np.asarray(samples, dtype=np.int64)
