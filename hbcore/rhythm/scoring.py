"""EC57-style comparison of detected rhythm events with reference ones: episode and duration statistics.

Both sides are reduced to :class:`Episode` intervals per scoring kind; the rules (docs/alarms.md):

- Matching is by overlap, as in epicmp (the WFDB reference implementation of the EC38/EC57 episode
  comparison) and bxb's run-by-run comparison: a reference episode is detected when any detected
  episode of the same kind overlaps it (episode sensitivity), and a detected episode is true when it
  overlaps any reference episode of the same kind (episode positive predictivity). Each side is
  counted by its own episodes, so one long detection covering two reference episodes makes both
  detected and counts once as true; a run's length class (couplet, short, long) is each side's own.
- Duration sensitivity is the share of reference time covered by detections, duration positive
  predictivity the share of detected time covered by the reference (overlaps of the merged intervals).
- Comparison starts ``start_s`` into the record (EC57's and epicmp's default: 5 minutes, the
  analyzer's learning period): episodes are clipped to ``[start_s, end_s]``, and those wholly
  outside are dropped. Gross statistics sum the counts and durations over records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

COMPARISON_START_S = 300.0


@dataclass(frozen=True)
class Episode:
    """A stretch of one kind: from the first to the last beat involved (or the annotated change)."""

    onset_s: float
    offset_s: float
    n_beats: int = 0

    def __post_init__(self) -> None:
        if self.offset_s < self.onset_s:
            raise ValueError(f"episode ends at {self.offset_s} s before it starts at {self.onset_s} s")


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
    """The episodes within ``[start_s, end_s]``, cut to it."""
    return [Episode(max(e.onset_s, start_s), min(e.offset_s, end_s), e.n_beats) for e in episodes
            if e.offset_s >= start_s and e.onset_s <= end_s]


def match(reference: Sequence[Episode], detected: Sequence[Episode]) -> EpisodeCounts:
    """Episode counts of one kind in one record (any overlap matches)."""
    return EpisodeCounts(
        n_ref=len(reference),
        ref_detected=sum(any(overlaps(r, d) for d in detected) for r in reference),
        n_detected=len(detected),
        detected_true=sum(any(overlaps(d, r) for r in reference) for d in detected),
    )


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
                 duration_kinds: Iterable[str] = ("af",)) -> RecordScore:
    """Compare one record's detections with its reference, kind by kind (the reference's kinds)."""
    kinds = list(reference)
    ref = {kind: clip(reference[kind], start_s, end_s) for kind in kinds}
    det = {kind: clip(detected.get(kind, ()), start_s, end_s) for kind in kinds}
    return RecordScore(record, {kind: match(ref[kind], det[kind]) for kind in kinds},
                       {kind: duration(ref[kind], det[kind]) for kind in duration_kinds if kind in ref})


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
