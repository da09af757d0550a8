"""EC57-style comparison of detected rhythm events with reference ones: episode, run and duration statistics.

Both sides are reduced to :class:`Episode` intervals per scoring kind; the rules (docs/alarms.md):

- **Episodes** (rhythm kinds) match by overlap, as in epicmp (the WFDB reference implementation of
  the EC38/EC57 episode comparison): a reference episode is detected when any detected episode of the
  same kind overlaps it (episode sensitivity), and a detected episode is true when it overlaps any
  reference episode of the same kind (episode positive predictivity). Each side is counted by its own
  episodes, so one long detection covering two reference episodes makes both detected and counts once
  as true.
- **Runs** (couplets and runs of ectopic beats, which carry their beat times) match as in rxr, the
  EC38/EC57 run-by-run comparator: each run of one side is given the length of the other side's
  longest run inside a window from ``RUN_WINDOW_S`` before its first beat to ``RUN_WINDOW_S`` after
  its last (counting only the beats inside the window), and it is matched when that length reaches
  its class's :attr:`RunClass.found_by` (upwards: a couplet is found by a run of 2 or more, a short
  run by one of 3 or more, a long run only by one of 6 or more).
- Duration sensitivity is the share of reference time covered by detections, duration positive
  predictivity the share of detected time covered by the reference (overlaps of the merged intervals).
- Comparison starts ``start_s`` into the record (EC57's, epicmp's and rxr's default: 5 minutes, the
  analyzer's learning period): episodes are clipped to ``[start_s, end_s]`` (a run to its beats
  inside), and those wholly outside are dropped. Gross statistics sum the counts and durations over
  records.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

COMPARISON_START_S = 300.0
RUN_WINDOW_S = 0.15  # rxr's match window (app/rxr.c line 713): fiducial marks of one beat may differ by this


@dataclass(frozen=True)
class Episode:
    """A stretch of one kind: from the first to the last beat involved (or the annotated change)."""

    onset_s: float
    offset_s: float
    n_beats: int = 0
    beat_t_s: tuple[float, ...] = ()  # a run's beat times (run-by-run matching needs them); () for an episode

    def __post_init__(self) -> None:
        if self.offset_s < self.onset_s:
            raise ValueError(f"episode ends at {self.offset_s} s before it starts at {self.onset_s} s")
        if self.beat_t_s and self.n_beats != len(self.beat_t_s):
            raise ValueError(f"run at {self.onset_s} s: {self.n_beats} beats but {len(self.beat_t_s)} beat times")

    @classmethod
    def of_beats(cls, beat_t_s: Iterable[float]) -> Episode:
        """A run from its beat times, in order (from its first to its last beat)."""
        times = tuple(float(t) for t in beat_t_s)
        if not times:
            raise ValueError("a run needs at least one beat")
        return cls(times[0], times[-1], len(times), times)


def overlaps(a: Episode, b: Episode) -> bool:
    """Closed intervals that share at least one instant (a run and a detection sharing a beat do)."""
    return a.onset_s <= b.offset_s and b.onset_s <= a.offset_s


@dataclass(frozen=True)
class EpisodeCounts:
    """Episode tallies of one kind: reference episodes (found or not) and detections (true or not)."""

    n_ref: int = 0
    ref_detected: int = 0
    n_detected: int = 0
    detected_true: int = 0

    def __add__(self, other: EpisodeCounts) -> EpisodeCounts:
        return EpisodeCounts(self.n_ref + other.n_ref, self.ref_detected + other.ref_detected,
                             self.n_detected + other.n_detected, self.detected_true + other.detected_true)

    @property
    def se(self) -> float | None:
        return self.ref_detected / self.n_ref if self.n_ref else None

    @property
    def ppv(self) -> float | None:
        return self.detected_true / self.n_detected if self.n_detected else None

    def summary(self) -> dict[str, float | int | None]:
        return {"se": _round(self.se), "ppv": _round(self.ppv), "n_ref": self.n_ref, "n_detected": self.n_detected}


@dataclass(frozen=True)
class DurationCounts:
    """Seconds of reference, of detection, and of both, for duration Se and +P."""

    ref_s: float = 0.0
    detected_s: float = 0.0
    overlap_s: float = 0.0

    def __add__(self, other: DurationCounts) -> DurationCounts:
        return DurationCounts(self.ref_s + other.ref_s, self.detected_s + other.detected_s,
                              self.overlap_s + other.overlap_s)

    @property
    def se(self) -> float | None:
        return self.overlap_s / self.ref_s if self.ref_s > 0 else None

    @property
    def ppv(self) -> float | None:
        return self.overlap_s / self.detected_s if self.detected_s > 0 else None

    def summary(self) -> dict[str, float | None]:
        return {"se": _round(self.se), "ppv": _round(self.ppv), "ref_s": round(float(self.ref_s), 1),
                "detected_s": round(float(self.detected_s), 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def clip(episodes: Iterable[Episode], start_s: float, end_s: float) -> list[Episode]:
    """The episodes within ``[start_s, end_s]``, cut to it; a run keeps its beats inside (rxr starts a run
    at its first beat in the test period)."""
    clipped = []
    for e in episodes:
        inside = [t for t in e.beat_t_s if start_s <= t <= end_s]
        if inside:
            clipped.append(Episode.of_beats(inside))
        elif not e.beat_t_s and e.offset_s >= start_s and e.onset_s <= end_s:
            clipped.append(Episode(max(e.onset_s, start_s), min(e.offset_s, end_s), e.n_beats))
    return clipped


def match(reference: Sequence[Episode], detected: Sequence[Episode]) -> EpisodeCounts:
    """Episode counts of one kind in one record (any overlap matches)."""
    return EpisodeCounts(
        n_ref=len(reference),
        ref_detected=sum(any(overlaps(r, d) for d in detected) for r in reference),
        n_detected=len(detected),
        detected_true=sum(any(overlaps(d, r) for r in reference) for d in detected),
    )


@dataclass(frozen=True)
class RunClass:
    """One of EC57's run length classes and the rule that matches it (rxr, app/rxr.c lines 806-828).

    A run of ``min_beats`` to ``max_beats`` beats (None: no upper bound) on one side is matched when
    the other side's longest run in its window has ``found_by`` beats or more.
    """

    min_beats: int
    max_beats: int | None
    found_by: int

    def holds(self, run: Episode) -> bool:
        return self.min_beats <= run.n_beats and (self.max_beats is None or run.n_beats <= self.max_beats)


class _Runs:
    """One side's runs, sorted, for the longest run inside a window (the runs of one side never overlap:
    they come from one label sequence)."""

    def __init__(self, runs: Iterable[Episode]) -> None:
        self.runs = sorted(runs, key=lambda run: run.onset_s)
        untimed = next((run for run in self.runs if not run.beat_t_s), None)
        if untimed is not None:
            raise ValueError(f"run at {untimed.onset_s} s has no beat times: run-by-run matching counts beats")
        self.offsets = [run.offset_s for run in self.runs]

    def longest_inside(self, t0_s: float, t1_s: float) -> int:
        """The most beats of one run inside ``[t0_s, t1_s]`` (rxr's ``find_longest_run``, lines 428-559)."""
        longest = 0
        for i in range(bisect_left(self.offsets, t0_s), len(self.runs)):
            times = self.runs[i].beat_t_s
            if times[0] > t1_s:
                break
            longest = max(longest, bisect_right(times, t1_s) - bisect_left(times, t0_s))
        return longest


def _found(runs: Sequence[Episode], other: _Runs, run_class: RunClass, window_s: float) -> int:
    """How many of ``runs`` of the class are matched by the other side's longest run in their window."""
    return sum(other.longest_inside(run.onset_s - window_s, run.offset_s + window_s) >= run_class.found_by
               for run in runs)


def match_runs(reference: Sequence[Episode], detected: Sequence[Episode], run_class: RunClass,
               start_s: float, end_s: float, window_s: float = RUN_WINDOW_S) -> EpisodeCounts:
    """Run-by-run counts of one length class in one record (rxr's sensitivity and +P passes).

    Both sides are every run of the family (couplets and longer), with their beat times. A side's runs
    are clipped to ``[start_s, end_s]`` before their class is read; the other side's beats are counted
    inside the window unclipped, as rxr reads them.
    """
    ref = [run for run in clip(reference, start_s, end_s) if run_class.holds(run)]
    det = [run for run in clip(detected, start_s, end_s) if run_class.holds(run)]
    return EpisodeCounts(n_ref=len(ref), ref_detected=_found(ref, _Runs(detected), run_class, window_s),
                         n_detected=len(det), detected_true=_found(det, _Runs(reference), run_class, window_s))


def merged(episodes: Iterable[Episode]) -> list[tuple[float, float]]:
    """The union of the episodes as sorted, disjoint intervals."""
    spans: list[tuple[float, float]] = []
    for onset, offset in sorted((e.onset_s, e.offset_s) for e in episodes):
        if spans and onset <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], offset))
        else:
            spans.append((onset, offset))
    return spans


def _length(spans: Sequence[tuple[float, float]]) -> float:
    return sum(offset - onset for onset, offset in spans)


def duration(reference: Sequence[Episode], detected: Sequence[Episode]) -> DurationCounts:
    """Reference, detected and shared seconds of one kind in one record."""
    ref, det = merged(reference), merged(detected)
    shared, i, j = 0.0, 0, 0
    while i < len(ref) and j < len(det):
        shared += max(0.0, min(ref[i][1], det[j][1]) - max(ref[i][0], det[j][0]))
        if ref[i][1] < det[j][1]:
            i += 1
        else:
            j += 1
    return DurationCounts(_length(ref), _length(det), shared)


@dataclass(frozen=True)
class RecordScore:
    """One record's episode counts per kind and duration counts per duration-scored kind."""

    record: str
    episodes: dict[str, EpisodeCounts]
    durations: dict[str, DurationCounts]


def score_record(record: str, reference: Mapping[str, Sequence[Episode]], detected: Mapping[str, Sequence[Episode]],
                 end_s: float, start_s: float = COMPARISON_START_S,
                 duration_kinds: Iterable[str] = ("af",),
                 run_classes: Mapping[str, RunClass] | None = None) -> RecordScore:
    """Compare one record's detections with its reference, kind by kind (the reference's kinds).

    The kinds in ``run_classes`` are run kinds: both sides hold every run of the family, and the kind's
    :class:`RunClass` picks and matches them run by run; the other kinds are episodes matched by overlap.
    """
    runs, timed = run_classes or {}, set(duration_kinds)
    episodes: dict[str, EpisodeCounts] = {}
    durations: dict[str, DurationCounts] = {}
    for kind in reference:
        if kind in runs:
            episodes[kind] = match_runs(reference[kind], detected.get(kind, ()), runs[kind], start_s, end_s)
            continue
        ref, det = clip(reference[kind], start_s, end_s), clip(detected.get(kind, ()), start_s, end_s)
        episodes[kind] = match(ref, det)
        if kind in timed:
            durations[kind] = duration(ref, det)
    return RecordScore(record, episodes, durations)


def gross(scores: Iterable[RecordScore]) -> RecordScore:
    """The sums over records (EC57's gross statistics)."""
    episodes: dict[str, EpisodeCounts] = {}
    durations: dict[str, DurationCounts] = {}
    for score in scores:
        for kind, counts in score.episodes.items():
            episodes[kind] = episodes.get(kind, EpisodeCounts()) + counts
        for kind, seconds in score.durations.items():
            durations[kind] = durations.get(kind, DurationCounts()) + seconds
    return RecordScore("gross", episodes, durations)
