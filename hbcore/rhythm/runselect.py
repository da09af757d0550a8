"""How the ventricular-run detector treats the classifier's doubt: leave-one-record-out on DS1 only.

A run of ventricular ectopic beats (V or F, EC57's rxr rule) that the classifier breaks with one
doubtful beat of another class is two couplets, not a run; :class:`~hbcore.rhythm.detector.RunParams`
lets a run go on through such a beat (a probability below ``bridge_below`` after ``bridge_after``
beats of the run). The candidates are a
grid of both, with "hold nothing" among them. For every DS1 record in turn the candidate scoring
best on the other 21 records is picked and the held-out record is scored with it; the held-out
counts summed over the folds are the cross-validated figures of that procedure. The candidate
scoring best on all of DS1 is the choice only when those held-out figures score better than holding
nothing (which has nothing to fit, so its DS1 figures are its held-out ones); otherwise the choice
is to hold nothing: a gain that does not survive leaving a record out is not taken. The score is
the smaller of ventricular-run (``v_run``, 3 or more V or F) Se and +P on DS1 beats labelled, with their
probabilities, by models that never saw their record (what a prediction log line carries: the class
and its ``prob``). DS2 is never looked at.
``python -m hbcore bench alarms --select-af`` prints it after the AF selection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hbcore.rhythm import evaluation, scoring
from hbcore.rhythm.detector import RunParams
from hbcore.rhythm.events import BeatObs

BRIDGE_BELOW: tuple[float, ...] = tuple(round(float(p), 2) for p in np.arange(0.5, 0.951, 0.05))
BRIDGE_AFTER: tuple[int, ...] = (1, 2, 3)
RUN_KINDS = ("v_couplet", "v_run", "vt")  # the ventricular (V or F) run tracker's kinds


def candidates() -> list[RunParams]:
    """Holding nothing first (it wins ties), then the grid."""
    return [RunParams(), *(RunParams(below, after) for after in BRIDGE_AFTER for below in BRIDGE_BELOW)]


def score(counts: scoring.EpisodeCounts) -> float:
    """The smaller of Se and +P (a missing one counts 0)."""
    return min(0.0 if value is None else value for value in (counts.se, counts.ppv))


def record_counts(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]],
                  params: RunParams) -> dict[str, scoring.EpisodeCounts]:
    """Each record's ventricular-run counts with these parameters (the V-or-F run tracker alone)."""
    return {result.record: result.episodes["v_run"]
            for result in evaluation.score_streams(mitdb_dir, streams, kinds=RUN_KINDS, runs=params)}


def _total(counts: Mapping[str, scoring.EpisodeCounts], records: Sequence[str]) -> scoring.EpisodeCounts:
    total = scoring.EpisodeCounts()
    for record in records:
        total = total + counts[record]
    return total


@dataclass(frozen=True)
class RunSelection:
    chosen: RunParams
    cross_validated: scoring.EpisodeCounts       # held-out counts summed over the folds
    fold_choices: tuple[RunParams, ...]
    plain: dict[RunParams, scoring.EpisodeCounts]  # every candidate on all of DS1


def select(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]]) -> RunSelection:
    """The chosen parameters, the cross-validated counts of the choice procedure, every candidate's counts."""
    grid = candidates()
    by_params = {params: record_counts(mitdb_dir, streams, params) for params in grid}
    records = list(streams)
    held_out, folds = scoring.EpisodeCounts(), []
    for record in records:
        others = [r for r in records if r != record]
        best = max(grid, key=lambda params: score(_total(by_params[params], others)))
        folds.append(best)
        held_out = held_out + by_params[best][record]
    plain = {params: _total(counts, records) for params, counts in by_params.items()}
    best = max(grid, key=lambda params: score(plain[params]))
    nothing = RunParams()
    chosen = best if score(held_out) > score(plain[nothing]) else nothing
    return RunSelection(chosen, held_out, tuple(folds), plain)
