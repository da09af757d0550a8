"""The monitor's alarm feed: rhythm events detected in the streamed predictions, and who acknowledged them.

The detector (:mod:`hbcore.rhythm.detector`) reads one patient's beats in stream order; the app has
only the reader's snapshots. :class:`AlarmFeed` bridges the two: each :meth:`AlarmFeed.update` feeds
the prediction rows that arrived since the previous one, patient by patient in record time, to one
detector per replay run, and keeps every event (an ongoing episode's updates replace it under its
id) with its acknowledgement. Everything comes from the prediction rows the handler logged, so the
feed is the same on the local cloud and on AWS.

- New rows: the reader's frame only grows at its end (and drops its oldest rows beyond
  ``keep_rows``), and ``stats.predictions`` counts every row it ever appended, so the rows since the
  last update are the frame's last ``stats.predictions - fed`` rows. Rows dropped before an update
  saw them (a refresh more than ``keep_rows`` beats late) are counted in ``missed``.
- Stream order: a patient's beats are one Kinesis partition key, so they are logged in order; a row
  older (in record time) than the last one fed for its patient is counted in ``out_of_order`` and
  left out rather than fed backwards. Rows without a time (Kaggle rows) cannot make a rhythm and
  are counted in ``untimed``.
- Bounded work: one update feeds at most ``max_beats`` beats (the detector costs ~0.1 ms a beat on
  a loaded 2-core machine), so a page refresh stays cheap; a backlog (a page opened after a long
  run) is fed over the next refreshes, oldest first, and ``pending`` says how much is left.
- Bounded memory: the latest MAX_ALARMS_KEPT alarms are kept (an ongoing one always).
- One feed per results reader (:func:`feed_for`), shared by every page and session, so an alarm
  acknowledged on one screen is acknowledged on all of them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hbcore.data.classes import CLASS_NAMES
from hbcore.rhythm.detector import EventDetector
from hbcore.rhythm.events import SEVERITY, BeatObs, RhythmEvent
from hbcore.stream import tally

MAX_BEATS_PER_UPDATE = 1_000  # ~0.1 s of detector work; twice the 500 beats the demo streams per 2-s refresh
MAX_ALARMS_KEPT = 5_000  # beyond this, the oldest ended alarms are forgotten (a soak runs for hours)
FEED_COLUMNS = ("key", "raised", "patient", "kind", "onset_s", "duration_s", "severity", "ongoing",
                "acknowledged", "run")


@dataclass(frozen=True)
class Alarm:
    """One rhythm event as the feed shows it."""

    key: str  # "<run>/<event_id>": event ids are per run (one detector each)
    run: str | None
    event: RhythmEvent
    raised_s: float  # epoch s the beat that raised it was logged
    acknowledged: bool

    @property
    def duration_s(self) -> float:
        return max(0.0, self.event.offset_s - self.event.onset_s)


@dataclass
class _Entry:
    run: str | None
    event: RhythmEvent
    raised_s: float


class AlarmFeed:
    """Rhythm events of a reader's predictions, fed incrementally; acknowledgements kept by event.

    Thread-safe: several sessions may update and read one feed at once.
    """

    def __init__(self, max_beats: int = MAX_BEATS_PER_UPDATE) -> None:
        self.max_beats = max_beats
        self._lock = threading.Lock()
        self._detectors: dict[str | None, EventDetector] = {}
        self._last_t: dict[tuple[str | None, str], float] = {}
        self._entries: dict[str, _Entry] = {}
        self._acknowledged: set[str] = set()
        self.fed = 0  # rows of the reader's frame seen so far (fed or counted below)
        self.pending = 0  # rows appended to the frame that no update has reached yet
        self.missed = 0
        self.out_of_order = 0
        self.untimed = 0

    def update(self, snapshot: tally.ResultsSnapshot) -> int:
        """Feed the prediction rows added since the last update, at most ``max_beats``; the number fed."""
        with self._lock:
            appended = snapshot.stats.predictions
            new = appended - self.fed
            if new <= 0:
                return 0
            frame = snapshot.predictions
            first = len(frame) - new
            if first < 0:  # dropped from the frame before any update saw them
                self.missed -= first
                first = 0
            rows = frame.iloc[first:first + self.max_beats]
            self.fed = appended - (len(frame) - first - len(rows))
            self.pending = appended - self.fed
            return self._feed(rows)

    def _feed(self, rows: pd.DataFrame) -> int:
        """Feed ``rows`` per run and patient in record time (caller holds the lock)."""
        t = rows["t"].to_numpy(dtype=float, na_value=np.nan)
        timed = ~np.isnan(t)
        self.untimed += int((~timed).sum())
        rows, t = rows[timed], t[timed]
        runs = rows["run"].to_numpy(dtype=object, na_value=None)
        records = rows["record"].to_numpy(dtype=object, na_value=None)
        order = np.lexsort((t, records.astype(str), runs.astype(str)))
        ids = rows["id"].to_numpy(dtype=object)
        preds = rows["pred"].to_numpy(dtype=np.int64)
        probs = rows["prob"].to_numpy(dtype=float, na_value=np.nan)
        logged = rows["ts"].to_numpy(dtype=float)
        fed = 0
        for i in order:
            run, patient = runs[i], str(records[i])
            last = self._last_t.get((run, patient))
            if last is not None and t[i] <= last:
                self.out_of_order += 1
                continue
            self._last_t[(run, patient)] = float(t[i])
            detector = self._detectors.get(run)
            if detector is None:
                detector = self._detectors[run] = EventDetector()
            beat = BeatObs(t_s=float(t[i]), label=CLASS_NAMES[preds[i]], beat_id=str(ids[i]),
                           prob=None if np.isnan(probs[i]) else float(probs[i]))
            for event in detector.feed(patient, beat):
                self._file(run, event, float(logged[i]))
            fed += 1
        return fed

    def _file(self, run: str | None, event: RhythmEvent, raised_s: float) -> None:
        key = f"{run or ''}/{event.event_id}"
        entry = self._entries.get(key)
        if entry is not None:
            entry.event = event  # an ongoing episode grew or ended: same alarm, later offset
            return
        self._entries[key] = _Entry(run, event, raised_s)
        if len(self._entries) > MAX_ALARMS_KEPT:  # insertion order: the oldest first
            oldest = next((key for key, entry in self._entries.items() if not entry.event.ongoing), None)
            if oldest is not None:
                del self._entries[oldest]
                self._acknowledged.discard(oldest)

    def alarms(self, run: str | None = None, patient: str | None = None) -> list[Alarm]:
        """The alarms of ``run`` (None: every run), of one patient or all, newest first."""
        with self._lock:
            chosen = [Alarm(key, entry.run, entry.event, entry.raised_s, key in self._acknowledged)
                      for key, entry in self._entries.items()
                      if (run is None or entry.run == run) and (patient is None or entry.event.patient == patient)]
        return sorted(chosen, key=lambda alarm: (-alarm.raised_s, -alarm.event.onset_s, alarm.key))

    def acknowledge(self, keys: list[str] | tuple[str, ...] | set[str]) -> None:
        """Mark these alarms (their ``key``) as seen; later updates of the same episode stay acknowledged."""
        with self._lock:
            self._acknowledged.update(key for key in keys if key in self._entries)

    def unacknowledged_patients(self, run: str | None = None) -> set[str]:
        """The patients with at least one unacknowledged alarm (their tiles turn red)."""
        return {alarm.event.patient for alarm in self.alarms(run) if not alarm.acknowledged}


def feed_frame(alarms: list[Alarm]) -> pd.DataFrame:
    """The feed as a table (FEED_COLUMNS), in the order given (newest first from :meth:`AlarmFeed.alarms`)."""
    return pd.DataFrame({
        "key": [alarm.key for alarm in alarms],
        "raised": pd.to_datetime([alarm.raised_s for alarm in alarms], unit="s", utc=True),
        "patient": [alarm.event.patient for alarm in alarms],
        "kind": [alarm.event.kind for alarm in alarms],
        "onset_s": [alarm.event.onset_s for alarm in alarms],
        "duration_s": [alarm.duration_s for alarm in alarms],
        "severity": [alarm.event.severity or SEVERITY.get(alarm.event.kind, "low") for alarm in alarms],
        "ongoing": [alarm.event.ongoing for alarm in alarms],
        "acknowledged": [alarm.acknowledged for alarm in alarms],
        "run": [alarm.run or "" for alarm in alarms],
    }, columns=list(FEED_COLUMNS))


_feeds: weakref.WeakKeyDictionary[object, AlarmFeed] = weakref.WeakKeyDictionary()
_feeds_lock = threading.Lock()


def feed_for(reader: object) -> AlarmFeed:
    """The one alarm feed of a results reader (made on first use, gone with the reader)."""
    with _feeds_lock:
        feed = _feeds.get(reader)
        if feed is None:
            feed = _feeds[reader] = AlarmFeed()
        return feed


KIND_TITLES: dict[str, str] = {
    "v_couplet": "V couplet", "v_run": "V run (slow)", "vt": "ventricular tachycardia", "v_bigeminy": "V bigeminy",
    "v_trigeminy": "V trigeminy", "sv_couplet": "SV couplet", "sv_run": "SV run (slow)", "svta": "SV tachyarrhythmia",
    "af": "atrial fibrillation", "bradycardia": "bradycardia", "tachycardia": "tachycardia", "pause": "pause",
}
SEVERITY_COLORS = {"high": "red", "medium": "orange", "low": "gray"}  # Streamlit's named markdown colours


def kind_title(kind: str) -> str:
    """How the feed names a kind of event (the detector's own name for a kind it has added since)."""
    return KIND_TITLES.get(kind, kind)
