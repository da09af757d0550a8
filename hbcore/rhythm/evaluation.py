"""Offline runs of the detector over MIT-BIH records, scored against their annotations.

The benchmark (``python -m hbcore bench alarms``) and the AF detector's selection
(:mod:`hbcore.rhythm.afselect`) both stream each record's beats through a fresh
:class:`~hbcore.rhythm.detector.PatientDetector` exactly as the live monitor would, then compare
the final events with :mod:`hbcore.rhythm.reference` by :mod:`hbcore.rhythm.scoring`'s rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import BeatSet
from hbcore.rhythm import reference, scoring
from hbcore.rhythm.detector import AF_PARAMS, RUN_PARAMS, AfParams, PatientDetector, RunParams, final_events
from hbcore.rhythm.events import KINDS, BeatObs, RhythmEvent

TICK_S = 0.1  # the simulated live clock: the detector's clock is advanced every 0.1 s of stream time
# Kinds that end with their last beat (the next beat, or END_GAP_S without one, tells): their latency is
# measured from that beat. The others are decided at a beat and reported by it (rate, AF, a pause's end).
ENDED_BY_LAST_BEAT = frozenset({"v_couplet", "v_run", "vt", "v_bigeminy", "v_trigeminy", "sv_couplet", "sv_run",
                                "svta"})


def record_streams(beats: BeatSet, labels: np.ndarray, records: Sequence[str],
                   probs: np.ndarray | None = None) -> dict[str, list[BeatObs]]:
    """Each record's beats as the detector sees them, labelled by ``labels`` (0..4, row for row).

    The beat id is ``<record>:<sample>``; the RR interval is the set's ``rr_prev_s`` (from the
    annotated beat positions), None for a record's first beat. ``probs`` (row for row) is each
    label's probability, as a prediction line carries it (``prob``); None: no probability.
    """
    if len(labels) != len(beats):
        raise ValueError(f"{len(labels)} labels for {len(beats)} beats")
    if probs is not None and len(probs) != len(beats):
        raise ValueError(f"{len(probs)} probabilities for {len(beats)} beats")
    meta = beats.meta
    streams: dict[str, list[BeatObs]] = {}
    for record in records:
        rows = np.flatnonzero(meta["record"].to_numpy() == record)
        if len(rows) == 0:
            raise ValueError(f"record {record}: no beats in the beat set")
        t_s, rr, samples = (meta[name].to_numpy()[rows] for name in ("t_s", "rr_prev_s", "sample"))
        prob = [None] * len(rows) if probs is None else [float(p) for p in probs[rows]]
        streams[record] = [
            BeatObs(float(t), CLASS_NAMES[int(label)], None if np.isnan(r) else float(r), f"{record}:{sample}", p)
            for t, label, r, sample, p in zip(t_s, labels[rows], rr, samples, prob)
        ]
    return streams


@lru_cache(maxsize=64)
def _annotations(mitdb_dir: str, record: str) -> reference.RecordAnnotations:
    return reference.read_annotations(mitdb_dir, record)


@dataclass(frozen=True)
class StreamRun:
    """One record streamed through a detector: its final events and how late each report came."""

    record: str
    events: list[RhythmEvent]
    latency_s: float      # the longest delay from an ectopy event's last beat to a report of it
    af_end_delay_s: float  # the longest delay from an AF end (dated back) to its report
    beats: int
    seconds: float        # wall time of the detection
    beat_t_s: Mapping[str, float]  # each beat id's stream time (run-by-run scoring counts a run's beats)


def run_stream(record: str, beats: Sequence[BeatObs], af: AfParams = AF_PARAMS,
               kinds: Iterable[str] = KINDS, tick_s: float | None = TICK_S,
               runs: RunParams = RUN_PARAMS) -> StreamRun:
    """Feed ``beats`` one by one as live, with the clock advanced every ``tick_s`` of stream time
    between beats (None: beats only), and time every report against the last beat it names."""
    # the ids the events name: the beat's own, or its position in the stream (as the detector names it)
    times = {str(i) if beat.beat_id is None else beat.beat_id: beat.t_s for i, beat in enumerate(beats)}
    patient = PatientDetector(record, af, kinds, runs)
    latency, af_delay, reports = 0.0, 0.0, []

    def note(events: list[RhythmEvent], now_s: float) -> None:
        nonlocal latency, af_delay
        for event in events:
            reports.append(event)
            if event.kind == "af" and not event.ongoing:
                af_delay = max(af_delay, now_s - event.offset_s)
            elif event.kind in ENDED_BY_LAST_BEAT:
                latency = max(latency, now_s - times[event.beat_ids[-1]])

    started = time.perf_counter()
    for beat, following in zip(beats, [*beats[1:], None]):
        note(patient.feed(beat), beat.t_s)
        if tick_s is not None and following is not None:
            for now_s in np.arange(beat.t_s + tick_s, following.t_s, tick_s):
                note(patient.advance(float(now_s)), float(now_s))
    note(patient.flush(), beats[-1].t_s if beats else 0.0)
    seconds = time.perf_counter() - started
    return StreamRun(record, final_events(reports), latency, af_delay, len(beats), seconds, times)


def score_run(mitdb_dir: Path | str, run: StreamRun, scored_kinds: Iterable[str] | None = None,
              start_s: float = scoring.COMPARISON_START_S) -> scoring.RecordScore:
    """Score one record's events against its annotations (every scoring kind, or ``scored_kinds``)."""
    annotations = _annotations(str(mitdb_dir), run.record)
    ref = reference.reference_episodes(annotations)
    kinds = list(ref) if scored_kinds is None else list(scored_kinds)
    return scoring.score_record(run.record, {kind: ref[kind] for kind in kinds},
                                reference.detected_episodes(run.events, run.beat_t_s), annotations.duration_s,
                                start_s, run_classes=reference.RUN_CLASSES)


def score_streams(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]], af: AfParams = AF_PARAMS,
                  kinds: Iterable[str] = KINDS, start_s: float = scoring.COMPARISON_START_S,
                  runs: RunParams = RUN_PARAMS) -> list[scoring.RecordScore]:
    """Detect on every record's stream and score it against the record's reference annotations.

    With ``kinds`` only those are detected; the scores then cover the scoring kinds they feed.
    """
    wanted = set(kinds)
    scored = [kind for kind, (_, detected) in reference.SCORED_KINDS.items() if wanted & set(detected)]
    return [score_run(mitdb_dir, run_stream(record, beats, af, wanted, runs=runs), scored, start_s)
            for record, beats in streams.items()]
