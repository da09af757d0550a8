"""The incremental rhythm detector: one :class:`PatientDetector` per patient, fed beats in stream order.

Every decision uses only the beats fed so far, so the events of a prefix of the stream never change
when more beats follow, feeding a stream in chunks gives the events of feeding it whole, and the same
code scores offline (``python -m hbcore bench alarms``) and runs live. Each kind has a small tracker;
the detector hands every beat to each of them and returns what they report. Definitions and the
reasons for each threshold are in docs/alarms.md.

An event is emitted during the ``feed`` of the beat that completes it: the beat that makes a run
three beats long, a pattern ``*_MIN_V`` cycles long, a rate window cross a limit, the AF window show
AF for the minimum episode, or the first beat that is not part of the event (which ends a couplet, a run, a
bigeminy). Its stream-time latency is therefore zero beats past that beat; a pause is known when the
beat that ends it arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hbcore.rhythm.events import KINDS, SEVERITY, BeatObs, RhythmEvent

RUN_MIN_BEATS = 3          # a run: at least 3 consecutive ectopic beats (2 are a couplet)
V_RUN_LABELS = ("V", "F")  # a ventricular ectopic run is of V and F beats (EC57's rxr, app/rxr.c lines 173-174)
SV_RUN_LABELS = ("S",)     # a supraventricular one of S beats
RUN_FAST_BPM = 100.0       # above this a ventricular run is VT, a supraventricular one SVTA
BIGEMINY_MIN_V = 3         # ventricular beats in a row of N-V cycles before bigeminy is called
TRIGEMINY_MIN_V = 3        # ventricular beats in a row of N-N-V cycles before trigeminy is called
RATE_WINDOW_BEATS = 10     # heart rate = beats per minute over the last 10 RR intervals
BRADY_BPM = 50.0           # bradycardia below this (2018 ACC/AHA/HRS: sinus bradycardia < 50 bpm)
TACHY_BPM = 100.0          # tachycardia above this
RATE_HYSTERESIS_BPM = 5.0  # a rate alarm ends 5 bpm back inside the limit, so it does not flicker
PAUSE_S = 2.0              # a pause: one RR interval longer than 2 s
END_GAP_S = 1.8            # a couplet, run or pattern ends when 1.8 s pass without a beat (slower than 33 bpm):
#                            with the clock advanced every <= 0.2 s, every event is out within 2 s of its last beat
UPDATE_INTERVAL_S = 10.0   # an ongoing episode is reported again at most every 10 s of stream time
RECENT_LIMIT_WINDOWS = 8   # the AF tracker keeps at most 8 windows of beats (memory bound in long VT)


AF_METRICS: tuple[str, ...] = ("median", "share", "cells", "dash")
AF_CELL_S = 0.025  # the RR / delta-RR grid of the "cells" metric (Lian et al. 2011)
# The "dash" metric: Dash, Chon, Lu & Raeder 2009 (Ann. Biomed. Eng. 37:1701), their published values.
DASH_WINDOW = 128               # RR intervals a segment
DASH_TRIM_SHARE = 8 / 128       # the 8 longest and 8 shortest of 128 intervals are outliers (ectopy)
DASH_NRMSSD = 0.1               # AF needs RMSSD / mean RR above 0.1 ...
DASH_ENTROPY = 0.7              # ... the Shannon entropy of the RR histogram (16 bins, normalised) above 0.7 ...
DASH_TPR = (0.54, 0.77)         # ... and the turning-point ratio inside the band of a random series
DASH_BINS = 16
AF_MIN_EPISODE_S = 30.0         # an AF episode lasts at least 30 s (2012 HRS/EHRA/ECAS consensus; 2020 ESC guidelines)


@dataclass(frozen=True)
class AfParams:
    """The atrial-fibrillation detector's choices (see docs/alarms.md and :mod:`hbcore.rhythm.afselect`).

    Irregularity is measured on the last ``window`` successive RR differences, leaving out the
    intervals that touch a beat whose label is in ``exclude`` (an ectopic beat makes any rhythm look
    irregular). ``metric`` is ``"median"`` (the median of the relative differences
    ``|RR_i - RR_{i-1}| / mean(RR_i, RR_{i-1})``), ``"share"`` (the share of them above
    ``share_above``) or ``"cells"`` (the share of distinct cells of a 25 ms grid the points
    ``(RR_i, RR_i - RR_{i-1})`` fall in: Lian, Wang & Muessig 2011, whose map tells patterned ectopy,
    a few clusters, from AF, scattered points) or ``"dash"`` (Dash et al. 2009's three tests, see
    :func:`dash_score`: 1 or more when all three call AF). AF starts when the metric reaches ``limit``
    and ends when it falls below ``limit * hysteresis``; both are dated to the middle of the window,
    the point at which half of it is irregular. With ``min_episode_s`` an episode is reported only once
    it has lasted that long (to the middle of the window), so none is shorter.
    """

    window: int = 64
    metric: str = "cells"
    limit: float = 0.97
    share_above: float = 0.08
    exclude: tuple[str, ...] = ()
    hysteresis: float = 0.8
    min_episode_s: float = 0.0

    def __post_init__(self) -> None:
        if self.window < 4:
            raise ValueError(f"AF window {self.window}: expected at least 4 RR differences")
        if self.metric not in AF_METRICS:
            raise ValueError(f"AF metric {self.metric!r}: expected one of {', '.join(AF_METRICS)}")
        if not 0 < self.hysteresis <= 1:
            raise ValueError(f"AF hysteresis {self.hysteresis}: expected a factor in (0, 1]")
        if self.min_episode_s < 0:
            raise ValueError(f"AF minimum episode {self.min_episode_s} s: expected 0 s or more")

    def irregularity(self, window: np.ndarray) -> float:
        """The metric over one window: rows of (relative difference, RR_i, RR_i - RR_{i-1}) in seconds."""
        if self.metric == "median":
            return float(np.median(window[:, 0]))
        if self.metric == "share":
            return float(np.mean(window[:, 0] > self.share_above))
        if self.metric == "dash":
            return dash_score(window[:, 1], window[:, 2])
        cells = np.floor(window[:, 1:] / AF_CELL_S).astype(np.int64)
        return len(np.unique(cells, axis=0)) / len(window)


def dash_score(rr_s: np.ndarray, delta_s: np.ndarray) -> float:
    """Dash et al. 2009's AF rule over one segment as one number: ``min(nRMSSD / 0.1, entropy / 0.7)``
    when the turning-point ratio lies in their band, else 0; so 1 or more is their AF call, and the
    tracker's hysteresis (ending below ``hysteresis``) loosens the two thresholds by the same factor.

    ``rr_s`` are the segment's intervals in time order, ``delta_s`` each one's difference from the
    interval before it. The turning-point ratio (the share of intervals longer or shorter than both
    neighbours; 2/3 for a random series) reads them all; RMSSD, mean RR and the entropy leave out the
    longest and shortest 8 of 128 (what is left of ectopic beats), RMSSD from the differences whose two
    intervals are both kept.
    """
    n = len(rr_s)
    middle = rr_s[1:-1]
    turning = np.count_nonzero((middle - rr_s[:-2]) * (middle - rr_s[2:]) > 0)
    if not DASH_TPR[0] <= turning / n <= DASH_TPR[1]:
        return 0.0
    trim = round(n * DASH_TRIM_SHARE)
    ordered = np.sort(rr_s)
    low, high = ordered[trim], ordered[n - 1 - trim]
    kept = (rr_s >= low) & (rr_s <= high)
    before = rr_s - delta_s
    both = kept & (before >= low) & (before <= high)
    kept_rr = rr_s[kept]
    mean_rr = float(np.mean(kept_rr))
    if not both.any() or mean_rr <= 0 or high <= low:
        return 0.0
    nrmssd = float(np.sqrt(np.mean(delta_s[both] ** 2))) / mean_rr
    bins = np.minimum(((kept_rr - low) / (high - low) * DASH_BINS).astype(np.int64), DASH_BINS - 1)
    share = np.bincount(bins, minlength=DASH_BINS) / len(kept_rr)
    share = share[share > 0]
    entropy = float(-(share * np.log(share)).sum() / np.log(DASH_BINS))
    return min(nrmssd / DASH_NRMSSD, entropy / DASH_ENTROPY)


# A published fixed choice, not the DS1 cross-validation's (docs/alarms.md says why): Dash et al. 2009 over 128
# intervals at their thresholds, leaving out the intervals next to V beats, episodes of 30 s or more.
AF_PARAMS = AfParams(window=DASH_WINDOW, metric="dash", limit=1.0, exclude=("V",), min_episode_s=AF_MIN_EPISODE_S)


@dataclass(frozen=True)
class RunParams:
    """How a couplet or run treats a doubtful beat (docs/alarms.md, "Runs and the classifier's doubt").

    A beat of another class whose probability (the classifier's, of the class it gave) is below
    ``bridge_below``, arriving when the run already has ``bridge_after`` beats or more, is held: if
    the next beat is of the run's classes, the held beat is part of the run (the classifier most
    likely missed an ectopic beat inside it); otherwise the run ends before it. One beat at most is
    held at a time. ``bridge_below = 0`` (the default) holds nothing, and beats without a
    probability (the reference labels) are never held.
    """

    bridge_below: float = 0.0
    bridge_after: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.bridge_below <= 1.0:
            raise ValueError(f"run bridge probability {self.bridge_below}: expected one in [0, 1]")
        if self.bridge_after < 1:
            raise ValueError(f"run bridge after {self.bridge_after} beats: expected 1 or more")

    def holds(self, beat: _Beat, run_beats: int) -> bool:
        return beat.prob is not None and beat.prob < self.bridge_below and run_beats >= self.bridge_after


# Hold nothing: the DS1 selection (hbcore.rhythm.runselect) found no bridge whose gain survives leaving a record out.
RUN_PARAMS = RunParams()


@dataclass(frozen=True)
class _Beat:
    index: int
    t_s: float
    label: str
    rr_s: float | None
    beat_id: str
    prob: float | None = None


@dataclass
class _Episode:
    """An event being built: its beats so far and when it was last reported."""

    event_id: str
    kind: str
    beats: list[_Beat]
    onset_s: float
    offset_s: float
    reported_at_s: float = field(default=-np.inf)

    def add(self, beat: _Beat) -> None:
        self.beats.append(beat)
        self.offset_s = beat.t_s


class _Reporter:
    """Names a patient's events and turns episodes into :class:`RhythmEvent` reports."""

    def __init__(self, patient: str) -> None:
        self.patient = patient
        self._counts: dict[str, int] = {}  # per kind, so that an id never depends on another kind's timing

    def open(self, kind: str, beats: list[_Beat], onset_s: float | None = None) -> _Episode:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return _Episode(f"{self.patient}:{kind}:{self._counts[kind]}", kind, list(beats),
                        beats[0].t_s if onset_s is None else onset_s, beats[-1].t_s)

    def report(self, episode: _Episode, ongoing: bool, now_s: float) -> RhythmEvent:
        episode.reported_at_s = now_s
        return RhythmEvent(episode.event_id, self.patient, episode.kind, episode.onset_s, episode.offset_s,
                           tuple(beat.beat_id for beat in episode.beats), SEVERITY[episode.kind], ongoing)

    def progress(self, episode: _Episode, now_s: float) -> list[RhythmEvent]:
        """A report of an ongoing episode when the last one is ``UPDATE_INTERVAL_S`` old."""
        if now_s - episode.reported_at_s >= UPDATE_INTERVAL_S:
            return [self.report(episode, True, now_s)]
        return []


def _rate_bpm(intervals_s: Iterable[float]) -> float:
    """Beats per minute over the intervals, to 1e-6 bpm (so that 10 intervals of 1.2 s are 50 bpm, not below)."""
    values = list(intervals_s)
    return round(60.0 * len(values) / sum(values), 6)


class _RunTracker:
    """Consecutive beats of the run's classes (``labels``): a couplet when two, a run (slow or fast) from three."""

    def __init__(self, reporter: _Reporter, labels: tuple[str, ...], couplet: str, slow: str, fast: str,
                 params: RunParams) -> None:
        self.reporter, self.labels, self.params = reporter, frozenset(labels), params
        self.couplet, self.slow, self.fast = couplet, slow, fast
        self.run: list[_Beat] = []
        self.held: _Beat | None = None  # a doubtful beat of another class: part of the run if it goes on
        self.episode: _Episode | None = None

    def advance(self, now_s: float) -> list[RhythmEvent]:
        """End the run when ``END_GAP_S`` passed without a beat: a later ectopic beat is not part of it."""
        return self.close(now_s) if self.run and now_s - self.run[-1].t_s >= END_GAP_S else []

    def feed(self, beat: _Beat) -> list[RhythmEvent]:
        events = self.advance(beat.t_s)
        if beat.label not in self.labels:
            if self.held is None and self.params.holds(beat, len(self.run)):
                self.held = beat
                return events
            return events + self.close(beat.t_s)
        held, self.held = self.held, None
        for member in (beat,) if held is None else (held, beat):
            self.run.append(member)
            if self.episode is not None:
                self.episode.add(member)
        if self.episode is not None:
            return events + self.reporter.progress(self.episode, beat.t_s)
        if len(self.run) >= RUN_MIN_BEATS:
            intervals = [b.rr_s for b in self.run[1:] if b.rr_s]
            kind = self.fast if intervals and _rate_bpm(intervals) > RUN_FAST_BPM else self.slow
            self.episode = self.reporter.open(kind, self.run)
            return [*events, self.reporter.report(self.episode, True, beat.t_s)]
        return events

    def close(self, now_s: float) -> list[RhythmEvent]:
        run, episode = self.run, self.episode
        self.run, self.episode, self.held = [], None, None
        if episode is not None:
            return [self.reporter.report(episode, False, now_s)]
        if len(run) == 2:
            return [self.reporter.report(self.reporter.open(self.couplet, run), False, now_s)]
        return []


class _PatternTracker:
    """Ventricular beats each after exactly ``between`` other beats: bigeminy (1) or trigeminy (2)."""

    def __init__(self, reporter: _Reporter, kind: str, between: int, min_v: int) -> None:
        self.reporter, self.kind, self.between, self.min_v = reporter, kind, between, min_v
        self.others: list[_Beat] = []   # the non-V beats since the last V
        self.chain: list[_Beat] = []    # the beats of the pattern so far (from its first cycle)
        self.chain_v = 0
        self.episode: _Episode | None = None

    def advance(self, now_s: float) -> list[RhythmEvent]:
        """End the pattern when ``END_GAP_S`` passed without a beat."""
        if self.chain and now_s - self.chain[-1].t_s >= END_GAP_S:
            self.others = []
            return self.close(now_s)
        return []

    def feed(self, beat: _Beat) -> list[RhythmEvent]:
        events = self.advance(beat.t_s)
        if beat.label != "V":
            self.others.append(beat)
            if not self.chain_v:
                return events
            if len(self.others) > self.between:
                return events + self.close(beat.t_s)
            return events + self._extend(beat)
        if self.chain_v and len(self.others) == self.between:
            self.chain_v += 1
            events += self._extend(beat)
        else:
            events += self.close(beat.t_s)
            self.chain, self.chain_v = [*self.others[-self.between:], beat], 1
        self.others = []
        if self.episode is None and self.chain_v >= self.min_v:
            self.episode = self.reporter.open(self.kind, self.chain)
            events.append(self.reporter.report(self.episode, True, beat.t_s))
        return events

    def _extend(self, beat: _Beat) -> list[RhythmEvent]:
        self.chain.append(beat)
        if self.episode is None:
            return []
        self.episode.add(beat)
        return self.reporter.progress(self.episode, beat.t_s)

    def close(self, now_s: float) -> list[RhythmEvent]:
        episode = self.episode
        self.chain, self.chain_v, self.episode = [], 0, None
        return [] if episode is None else [self.reporter.report(episode, False, now_s)]


class _RateTracker:
    """Heart rate over the last ``RATE_WINDOW_BEATS`` intervals beyond a limit: brady- or tachycardia."""

    def __init__(self, reporter: _Reporter, kind: str, limit_bpm: float, below: bool) -> None:
        self.reporter, self.kind, self.limit_bpm, self.below = reporter, kind, limit_bpm, below
        self.window: deque[_Beat] = deque(maxlen=RATE_WINDOW_BEATS + 1)
        self.episode: _Episode | None = None

    def _beyond(self, rate_bpm: float, margin_bpm: float) -> bool:
        if self.below:
            return rate_bpm < self.limit_bpm + margin_bpm
        return rate_bpm > self.limit_bpm - margin_bpm

    def feed(self, beat: _Beat) -> list[RhythmEvent]:
        self.window.append(beat)
        intervals = [b.rr_s for b in list(self.window)[1:] if b.rr_s]
        if len(intervals) < RATE_WINDOW_BEATS:
            return []
        rate = _rate_bpm(intervals)
        if self.episode is None:
            if not self._beyond(rate, 0.0):
                return []
            self.episode = self.reporter.open(self.kind, list(self.window)[1:])
            return [self.reporter.report(self.episode, True, beat.t_s)]
        if self._beyond(rate, RATE_HYSTERESIS_BPM):
            self.episode.add(beat)
            return self.reporter.progress(self.episode, beat.t_s)
        return self.close(beat.t_s)

    def advance(self, now_s: float) -> list[RhythmEvent]:
        return []  # a rate needs beats: stream time alone changes nothing

    def close(self, now_s: float) -> list[RhythmEvent]:
        episode, self.episode = self.episode, None
        return [] if episode is None else [self.reporter.report(episode, False, now_s)]


class _PauseTracker:
    """One RR interval longer than ``PAUSE_S``: reported ongoing as soon as stream time shows it (when the
    caller advances the clock), and complete when the beat ending it arrives."""

    def __init__(self, reporter: _Reporter) -> None:
        self.reporter = reporter
        self.previous: _Beat | None = None
        self.episode: _Episode | None = None

    def advance(self, now_s: float) -> list[RhythmEvent]:
        previous = self.previous
        if self.episode is not None or previous is None or now_s - previous.t_s <= PAUSE_S:
            return []
        self.episode = self.reporter.open("pause", [previous])
        self.episode.offset_s = now_s
        return [self.reporter.report(self.episode, True, now_s)]

    def feed(self, beat: _Beat) -> list[RhythmEvent]:
        previous, self.previous = self.previous, beat
        episode, self.episode = self.episode, None
        if episode is not None:  # reported under way by advance(): this beat ends it
            episode.add(beat)
        elif beat.rr_s is None or beat.rr_s <= PAUSE_S:
            return []
        elif previous is None:  # the stream's first beat, after a pause its RR interval tells of
            episode = self.reporter.open("pause", [beat], onset_s=beat.t_s - beat.rr_s)
        else:
            episode = self.reporter.open("pause", [previous, beat])
        return [self.reporter.report(episode, False, beat.t_s)]

    def close(self, now_s: float) -> list[RhythmEvent]:
        episode, self.episode = self.episode, None  # the stream ended inside a pause
        return [] if episode is None else [self.reporter.report(episode, False, now_s)]


class _AfTracker:
    """Atrial fibrillation from RR irregularity over a sliding window (:class:`AfParams`)."""

    def __init__(self, reporter: _Reporter, params: AfParams) -> None:
        self.reporter, self.params = reporter, params
        self.recent: deque[_Beat] = deque()  # the beats the window spans (back to its first interval's start)
        # (relative difference, RR, RR difference, beat index) of the last `window` usable differences
        self.differences: deque[tuple[float, float, float, int]] = deque(maxlen=params.window)
        self.previous: _Beat | None = None
        self.previous_rr: float | None = None  # the last usable interval, if it ended at the previous beat
        self.episode: _Episode | None = None
        self.pending: list[_Beat] | None = None  # AF shown, not yet for min_episode_s: its beats from the onset
        self.last_offset_s = -np.inf  # an episode never starts before the previous one ended

    def _difference(self, beat: _Beat) -> tuple[float, float, float] | None:
        """(relative difference, RR, RR difference) of this beat's interval, None when it is not usable."""
        previous, self.previous = self.previous, beat
        excluded = self.params.exclude
        usable = (beat.rr_s is not None and beat.rr_s > 0 and previous is not None
                  and beat.label not in excluded and previous.label not in excluded)
        rr = beat.rr_s if usable else None
        last_rr, self.previous_rr = self.previous_rr, rr
        if rr is None or last_rr is None:
            return None
        return abs(rr - last_rr) / (0.5 * (rr + last_rr)), rr, rr - last_rr

    def feed(self, beat: _Beat) -> list[RhythmEvent]:
        self.recent.append(beat)
        if len(self.recent) > RECENT_LIMIT_WINDOWS * self.params.window:  # a long stretch without usable RR
            self.recent.popleft()
        if self.episode is not None:
            self.episode.add(beat)
        elif self.pending is not None:
            self.pending.append(beat)
        difference = self._difference(beat)
        if difference is None:
            return self.reporter.progress(self.episode, beat.t_s) if self.episode else []
        self.differences.append((*difference, beat.index))
        while self.recent[0].index < self.differences[0][3] - 2:
            self.recent.popleft()
        if len(self.differences) < self.params.window:
            return []
        irregularity = self.params.irregularity(np.array([d[:3] for d in self.differences]))
        middle_index = self.differences[len(self.differences) // 2][3]
        middle = next((b for b in self.recent if b.index >= middle_index), beat)
        if self.episode is None:
            if self.pending is None:
                if irregularity < self.params.limit:
                    return []
                self.pending = [b for b in self.recent if b.index >= middle.index and b.t_s > self.last_offset_s]
                self.pending = self.pending or [beat]
            elif irregularity < self.params.limit * self.params.hysteresis:
                self.pending = None  # ended before it lasted min_episode_s: not an episode
                return []
            # The episode would end no earlier than the window's middle: report it once that is far enough.
            if middle.t_s - self.pending[0].t_s < self.params.min_episode_s:
                return []
            self.episode, self.pending = self.reporter.open("af", self.pending), None
            return [self.reporter.report(self.episode, True, beat.t_s)]
        if irregularity >= self.params.limit * self.params.hysteresis:
            return self.reporter.progress(self.episode, beat.t_s)
        episode, self.episode = self.episode, None
        kept = [b for b in episode.beats if b.t_s <= middle.t_s] or episode.beats[:1]
        episode.beats, episode.offset_s = kept, max(kept[-1].t_s, episode.onset_s)
        self.last_offset_s = episode.offset_s
        return [self.reporter.report(episode, False, beat.t_s)]

    def advance(self, now_s: float) -> list[RhythmEvent]:
        return []  # irregularity needs beats: stream time alone changes nothing

    def close(self, now_s: float) -> list[RhythmEvent]:
        episode, self.episode, self.pending = self.episode, None, None  # a pending one never lasted long enough
        return [] if episode is None else [self.reporter.report(episode, False, now_s)]


class _Tracker(Protocol):
    def feed(self, beat: _Beat) -> list[RhythmEvent]: ...

    def advance(self, now_s: float) -> list[RhythmEvent]: ...

    def close(self, now_s: float) -> list[RhythmEvent]: ...


class PatientDetector:
    """Rhythm events of one patient from their beats, fed in stream order.

    ``feed`` returns the new events and the updates of ongoing ones (same ``event_id``, later offset;
    ``ongoing=False`` at the end); ``flush`` ends what is ongoing at the end of the stream. A beat
    not later than the last one fed (a duplicate, or out of order) is ignored and counted in
    ``ignored_beats``: the detector reads the stream forwards only. ``kinds`` limits the detection to
    some kinds (the AF selection runs the AF tracker alone). ``runs`` is how ventricular runs treat a
    doubtful beat (:class:`RunParams`, chosen on V runs; supraventricular runs never hold one).
    """

    def __init__(self, patient: str, af: AfParams = AF_PARAMS, kinds: Iterable[str] = KINDS,
                 runs: RunParams = RUN_PARAMS) -> None:
        self.patient = patient
        self.af_params, self.run_params = af, runs
        self.beats_fed = 0
        self.ignored_beats = 0
        self._last_t_s: float | None = None
        reporter = _Reporter(patient)
        wanted = set(kinds)
        if wanted - set(KINDS):
            raise ValueError(f"unknown event kinds {sorted(wanted - set(KINDS))}, expected some of {', '.join(KINDS)}")
        trackers: list[tuple[tuple[str, ...], _Tracker]] = [
            (("v_couplet", "v_run", "vt"), _RunTracker(reporter, V_RUN_LABELS, "v_couplet", "v_run", "vt", runs)),
            (("sv_couplet", "sv_run", "svta"),
             _RunTracker(reporter, SV_RUN_LABELS, "sv_couplet", "sv_run", "svta", RunParams())),
            (("v_bigeminy",), _PatternTracker(reporter, "v_bigeminy", 1, BIGEMINY_MIN_V)),
            (("v_trigeminy",), _PatternTracker(reporter, "v_trigeminy", 2, TRIGEMINY_MIN_V)),
            (("af",), _AfTracker(reporter, af)),
            (("bradycardia",), _RateTracker(reporter, "bradycardia", BRADY_BPM, below=True)),
            (("tachycardia",), _RateTracker(reporter, "tachycardia", TACHY_BPM, below=False)),
            (("pause",), _PauseTracker(reporter)),
        ]
        # A tracker runs when any kind it reports is wanted (a run tracker reports all three of its kinds).
        self._trackers = tuple(tracker for reported, tracker in trackers if wanted & set(reported))

    def feed(self, beat: BeatObs) -> list[RhythmEvent]:
        """The events this beat completes, starts, updates or ends."""
        if self._last_t_s is not None and beat.t_s <= self._last_t_s:
            self.ignored_beats += 1
            return []
        rr = beat.rr_prev_s
        if rr is None and self._last_t_s is not None:
            rr = beat.t_s - self._last_t_s
        index = self.beats_fed
        seen = _Beat(index, beat.t_s, beat.label, rr, beat.beat_id if beat.beat_id is not None else str(index),
                     beat.prob)
        self.beats_fed += 1
        self._last_t_s = beat.t_s
        return [event for tracker in self._trackers for event in tracker.feed(seen)]

    def advance(self, now_s: float) -> list[RhythmEvent]:
        """Stream time has reached ``now_s`` with no new beat: end what a gap ends, report a pause under way.

        A live caller calls this on a clock (the bound on event latency holds only then); ``now_s`` must
        not pass a beat not yet fed. Offline, ``feed`` alone gives the same final events.
        """
        if self._last_t_s is None or now_s <= self._last_t_s:
            return []
        return [event for tracker in self._trackers for event in tracker.advance(now_s)]

    def feed_all(self, beats: Iterable[BeatObs]) -> list[RhythmEvent]:
        """``feed`` of each beat in turn, the events in the order they were emitted."""
        return [event for beat in beats for event in self.feed(beat)]

    def flush(self) -> list[RhythmEvent]:
        """End every ongoing episode (and a pending couplet) at the end of the stream."""
        now_s = self._last_t_s if self._last_t_s is not None else 0.0
        return [event for tracker in self._trackers for event in tracker.close(now_s)]


class EventDetector:
    """One :class:`PatientDetector` per patient, created on the patient's first beat."""

    def __init__(self, af: AfParams = AF_PARAMS, runs: RunParams = RUN_PARAMS) -> None:
        self.af_params, self.run_params = af, runs
        self.patients: dict[str, PatientDetector] = {}

    def detector(self, patient: str) -> PatientDetector:
        if patient not in self.patients:
            self.patients[patient] = PatientDetector(patient, self.af_params, runs=self.run_params)
        return self.patients[patient]

    def feed(self, patient: str, beat: BeatObs) -> list[RhythmEvent]:
        return self.detector(patient).feed(beat)

    def advance(self, now_s: float) -> list[RhythmEvent]:
        """:meth:`PatientDetector.advance` of every patient (one stream clock for all)."""
        return [event for detector in self.patients.values() for event in detector.advance(now_s)]

    def flush(self) -> list[RhythmEvent]:
        return [event for detector in self.patients.values() for event in detector.flush()]


def final_events(reports: Iterable[RhythmEvent]) -> list[RhythmEvent]:
    """The last report of every event, in the order the events were first reported."""
    latest: dict[str, RhythmEvent] = {}
    for event in reports:
        latest[event.event_id] = event
    return list(latest.values())


def detect(patient: str, beats: Iterable[BeatObs], af: AfParams = AF_PARAMS,
           kinds: Iterable[str] = KINDS, runs: RunParams = RUN_PARAMS) -> list[RhythmEvent]:
    """The final events of a whole stream (offline: benchmarks, tests)."""
    detector = PatientDetector(patient, af, kinds, runs)
    return final_events([*detector.feed_all(beats), *detector.flush()])
