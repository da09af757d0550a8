"""Reference rhythm events of a MIT-BIH record, and detected events put in the same terms.

Two sources in the ``atr`` file, as EC57 uses them:

- the **beat** labels (AAMI classes of the beat symbols): consecutive ventricular ectopic beats (V
  or F, as rxr counts them) or supraventricular ectopic beats (S) make runs, each with its beat times;
  EC57's run-by-run categories are couplets (2), short runs (3-5) and long runs (6 or more), and
  ``*_run`` is every run of 3 or more. Each run kind holds every run of its family on both sides:
  :data:`RUN_CLASSES` tells :func:`~hbcore.rhythm.scoring.score_record` which runs a kind counts and
  which runs of the other side match them (rxr's window and upward matching);
- the **rhythm** annotations (``aux_note`` of the rhythm-change annotations, ``(AFIB``, ``(B``...):
  each lasts until the next rhythm annotation or the end of the record.

The rate kinds have no MIT-BIH annotation except ``(SBR``: tachycardia and pause references are the
detector's definitions applied to the annotated beat times, computed here independently of the
incremental code (a check of that code, not a clinical reference). :data:`SCORED_KINDS` lists what
each scoring kind is compared against.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES
from hbcore.rhythm import detector
from hbcore.rhythm.events import RhythmEvent
from hbcore.rhythm.scoring import Episode, RunClass

SHORT_RUN_MAX_BEATS = 5   # EC57: short runs are 3-5 beats, long runs 6 or more
# EC57's classes as rxr matches them upwards (app/rxr.c lines 806-828): a couplet is found by (and a detected
# couplet is true against) a run of 2 or more in its window, a short run by one of 3 or more, a long run only
# by one of 6 or more. "All runs" (3 or more, the project's target) is matched by a run of 3 or more.
COUPLET = RunClass(2, 2, found_by=2)
SHORT_RUN = RunClass(detector.RUN_MIN_BEATS, SHORT_RUN_MAX_BEATS, found_by=detector.RUN_MIN_BEATS)
LONG_RUN = RunClass(SHORT_RUN_MAX_BEATS + 1, None, found_by=SHORT_RUN_MAX_BEATS + 1)
ANY_RUN = RunClass(detector.RUN_MIN_BEATS, None, found_by=detector.RUN_MIN_BEATS)
RUN_FAMILIES: dict[str, tuple[str, ...]] = {"v": detector.V_RUN_LABELS, "sv": detector.SV_RUN_LABELS}
_CLASS_NAMES: dict[str, RunClass] = {"couplet": COUPLET, "run": ANY_RUN, "short_run": SHORT_RUN, "long_run": LONG_RUN}
RUN_FAMILY: dict[str, str] = {f"{prefix}_{name}": prefix for prefix in RUN_FAMILIES for name in _CLASS_NAMES}
RUN_CLASSES: dict[str, RunClass] = {kind: _CLASS_NAMES[kind.removeprefix(f"{prefix}_")]
                                    for kind, prefix in RUN_FAMILY.items()}
_V_EVENTS, _SV_EVENTS = ("v_couplet", "v_run", "vt"), ("sv_couplet", "sv_run", "svta")
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
    "v_couplet": ("2 V/F beats (beat labels)", _V_EVENTS),
    "v_run": (">= 3 V/F beats (beat labels)", _V_EVENTS),
    "v_short_run": ("3-5 V/F beats (beat labels)", _V_EVENTS),
    "v_long_run": (">= 6 V/F beats (beat labels)", _V_EVENTS),
    "vt": ("(VT", ("vt",)),
    "v_bigeminy": ("(B", ("v_bigeminy",)),
    "v_trigeminy": ("(T", ("v_trigeminy",)),
    "sv_couplet": ("2 S beats (beat labels)", _SV_EVENTS),
    "sv_run": (">= 3 S beats (beat labels)", _SV_EVENTS),
    "sv_short_run": ("3-5 S beats (beat labels)", _SV_EVENTS),
    "sv_long_run": (">= 6 S beats (beat labels)", _SV_EVENTS),
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


def label_runs(t_s: np.ndarray, labels: Sequence[str], members: Collection[str]) -> list[Episode]:
    """Every stretch of 2 or more consecutive beats with a label in ``members``, with its beat times."""
    runs, start = [], None
    for i, value in enumerate([*labels, ""]):
        if value in members and start is None:
            start = i
        elif value not in members and start is not None:
            if i - start >= 2:
                runs.append(Episode.of_beats(t_s[start:i]))
            start = None
    return runs


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
    runs = {prefix: label_runs(t_s, labels, members) for prefix, members in RUN_FAMILIES.items()}
    found = {**{kind: runs[prefix] for kind, prefix in RUN_FAMILY.items()}, **rhythm_episodes(annotations),
             **rate_episodes(t_s)}
    return {kind: found[kind] for kind in SCORED_KINDS}


def detected_episodes(events: Iterable[RhythmEvent], beat_t_s: Mapping[str, float]) -> dict[str, list[Episode]]:
    """Final detected events per scoring kind; a run kind gets every couplet and run of its family, with the
    times of their beats (``beat_t_s``: the stream's beat id to its time), for run-by-run matching."""
    found: dict[str, list[Episode]] = {kind: [] for kind in SCORED_KINDS}
    for event in events:
        episode = Episode(event.onset_s, event.offset_s, len(event.beat_ids))
        run: Episode | None = None
        for kind, (_, detected_kinds) in SCORED_KINDS.items():
            if event.kind not in detected_kinds:
                continue
            if kind not in RUN_CLASSES:
                found[kind].append(episode)
                continue
            run = run or Episode.of_beats(beat_t_s[beat] for beat in event.beat_ids)  # once for every run kind
            found[kind].append(run)
    return found
