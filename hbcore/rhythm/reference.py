"""Reference rhythm events of a MIT-BIH record, and detected events put in the same terms.

Two sources in the ``atr`` file, as EC57 uses them:

- the **beat** labels (AAMI classes of the beat symbols): consecutive ventricular (V) or
  supraventricular ectopic (S) beats make couplets (2), short runs (3-5) and long runs (6 or more),
  EC57's run-by-run categories; ``*_run`` is every run of 3 or more;
- the **rhythm** annotations (``aux_note`` of the rhythm-change annotations, ``(AFIB``, ``(B``...):
  each lasts until the next rhythm annotation or the end of the record.

The rate kinds have no MIT-BIH annotation except ``(SBR``: tachycardia and pause references are the
detector's definitions applied to the annotated beat times, computed here independently of the
incremental code (a check of that code, not a clinical reference). :data:`SCORED_KINDS` lists what
each scoring kind is compared against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES
from hbcore.rhythm import detector
from hbcore.rhythm.events import RhythmEvent
from hbcore.rhythm.scoring import Episode

SHORT_RUN_MAX_BEATS = 5   # EC57: short runs are 3-5 beats, long runs 6 or more
RHYTHM_KINDS: dict[str, str] = {  # aux note → scoring kind
    "(AFIB": "af",
    "(VT": "vt",
    "(SVTA": "svta",
    "(B": "v_bigeminy",
    "(T": "v_trigeminy",
    "(SBR": "bradycardia",
}
# scoring kind → (what the reference is, which detected kinds it is compared with)
SCORED_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v_couplet": ("2 V beats (beat labels)", ("v_couplet",)),
    "v_run": (">= 3 V beats (beat labels)", ("v_run", "vt")),
    "v_short_run": ("3-5 V beats (beat labels)", ("v_run", "vt")),
    "v_long_run": (">= 6 V beats (beat labels)", ("v_run", "vt")),
    "vt": ("(VT", ("vt",)),
    "v_bigeminy": ("(B", ("v_bigeminy",)),
    "v_trigeminy": ("(T", ("v_trigeminy",)),
    "sv_couplet": ("2 S beats (beat labels)", ("sv_couplet",)),
    "sv_run": (">= 3 S beats (beat labels)", ("sv_run", "svta")),
    "sv_short_run": ("3-5 S beats (beat labels)", ("sv_run", "svta")),
    "sv_long_run": (">= 6 S beats (beat labels)", ("sv_run", "svta")),
    "svta": ("(SVTA", ("svta",)),
    "af": ("(AFIB", ("af",)),
    "bradycardia": ("(SBR", ("bradycardia",)),
    "tachycardia": (f"> {detector.TACHY_BPM:.0f} bpm over {detector.RATE_WINDOW_BEATS} annotated beats",
                    ("tachycardia",)),
    "pause": (f"annotated RR > {detector.PAUSE_S} s", ("pause",)),
}


@dataclass(frozen=True)
class RecordAnnotations:
    """The reference annotations of one record: its beats and its rhythm changes."""

    record: str
    duration_s: float
    beat_t_s: np.ndarray        # every beat annotation with an AAMI symbol, in seconds
    beat_labels: tuple[str, ...]  # their AAMI class names
    rhythms: tuple[tuple[float, str], ...]  # (time, aux note) of every rhythm change


def read_annotations(mitdb_dir: Path | str, record: str) -> RecordAnnotations:
    """The ``atr`` annotations of ``record``; raises FileNotFoundError naming it when absent."""
    import wfdb

    base = Path(mitdb_dir) / record
    if not base.with_suffix(".atr").is_file():
        raise FileNotFoundError(f"record {record}: no {base.with_suffix('.atr')}")
    header = wfdb.rdheader(str(base))
    annotation = wfdb.rdann(str(base), "atr")
    fs = float(header.fs)
    samples = np.asarray(annotation.sample, dtype=np.int64)
    symbols = list(annotation.symbol)
    notes = [(note or "").rstrip("\x00").strip() for note in (annotation.aux_note or [""] * len(symbols))]
    beats = [i for i, symbol in enumerate(symbols) if symbol in AAMI_SYMBOLS]
    return RecordAnnotations(
        record=record,
        duration_s=header.sig_len / fs,
        beat_t_s=samples[beats] / fs,
        beat_labels=tuple(CLASS_NAMES[AAMI_SYMBOLS[symbols[i]]] for i in beats),
        rhythms=tuple((samples[i] / fs, note) for i, note in enumerate(notes) if note.startswith("(")),
    )


def label_runs(t_s: np.ndarray, labels: Sequence[str], label: str) -> list[Episode]:
    """Every stretch of 2 or more consecutive beats labelled ``label``."""
    runs, start = [], None
    for i, value in enumerate([*labels, ""]):
        if value == label and start is None:
            start = i
        elif value != label and start is not None:
            if i - start >= 2:
                runs.append(Episode(float(t_s[start]), float(t_s[i - 1]), i - start))
            start = None
    return runs


def run_classes(runs: Iterable[Episode], prefix: str) -> dict[str, list[Episode]]:
    """Runs split into EC57's categories: couplets, all runs (>= 3), short runs (3-5), long runs (>= 6)."""
    runs = list(runs)
    return {
        f"{prefix}_couplet": [r for r in runs if r.n_beats == 2],
        f"{prefix}_run": [r for r in runs if r.n_beats >= detector.RUN_MIN_BEATS],
        f"{prefix}_short_run": [r for r in runs if detector.RUN_MIN_BEATS <= r.n_beats <= SHORT_RUN_MAX_BEATS],
        f"{prefix}_long_run": [r for r in runs if r.n_beats > SHORT_RUN_MAX_BEATS],
    }


def rhythm_episodes(annotations: RecordAnnotations) -> dict[str, list[Episode]]:
    """The annotated rhythm episodes per scoring kind (each until the next rhythm change)."""
    found: dict[str, list[Episode]] = {kind: [] for kind in RHYTHM_KINDS.values()}
    changes = list(annotations.rhythms)
    for (onset, note), (offset, _) in zip(changes, [*changes[1:], (annotations.duration_s, "")]):
        kind = RHYTHM_KINDS.get(note)
        if kind is not None:
            found[kind].append(Episode(onset, offset))
    return found


def rate_episodes(t_s: np.ndarray) -> dict[str, list[Episode]]:
    """Tachycardia and pauses by the detector's definitions, from the annotated beat times."""
    rr = np.diff(t_s)
    pauses = [Episode(float(t_s[i]), float(t_s[i + 1]), 2) for i in np.flatnonzero(rr > detector.PAUSE_S)]
    n = detector.RATE_WINDOW_BEATS
    tachycardia: list[Episode] = []
    onset: int | None = None
    last = 0
    for end in range(n, len(t_s)):  # the window: intervals end-n+1 .. end, beats end-n .. end
        rate = round(60.0 * n / (t_s[end] - t_s[end - n]), 6)
        if onset is None and rate > detector.TACHY_BPM:
            onset, last = end - n + 1, end
        elif onset is not None and rate > detector.TACHY_BPM - detector.RATE_HYSTERESIS_BPM:
            last = end
        elif onset is not None:
            tachycardia.append(Episode(float(t_s[onset]), float(t_s[last]), last - onset + 1))
            onset = None
    if onset is not None:
        tachycardia.append(Episode(float(t_s[onset]), float(t_s[last]), last - onset + 1))
    return {"tachycardia": tachycardia, "pause": pauses}


def reference_episodes(annotations: RecordAnnotations) -> dict[str, list[Episode]]:
    """Every scoring kind's reference episodes of one record."""
    t_s, labels = annotations.beat_t_s, annotations.beat_labels
    found = {**run_classes(label_runs(t_s, labels, "V"), "v"), **run_classes(label_runs(t_s, labels, "S"), "sv"),
             **rhythm_episodes(annotations), **rate_episodes(t_s)}
    return {kind: found[kind] for kind in SCORED_KINDS}


def detected_episodes(events: Iterable[RhythmEvent]) -> dict[str, list[Episode]]:
    """Final detected events per scoring kind (runs also by their length class)."""
    found: dict[str, list[Episode]] = {kind: [] for kind in SCORED_KINDS}
    for event in events:
        episode = Episode(event.onset_s, event.offset_s, len(event.beat_ids))
        for kind, (_, detected_kinds) in SCORED_KINDS.items():
            if event.kind in detected_kinds and _fits_length_class(kind, episode.n_beats):
                found[kind].append(episode)
    return found


def _fits_length_class(kind: str, n_beats: int) -> bool:
    if kind.endswith("_short_run"):
        return n_beats <= SHORT_RUN_MAX_BEATS
    if kind.endswith("_long_run"):
        return n_beats > SHORT_RUN_MAX_BEATS
    return True
