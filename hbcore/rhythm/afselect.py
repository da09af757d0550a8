"""How the AF detector's parameters were chosen: leave-one-record-out cross-validation on DS1 only.

Candidates are :class:`~hbcore.rhythm.detector.AfParams` variants (window length, irregularity
metric, which ectopic beats' intervals are left out) each with a grid of limits, and Dash et al.
2009's published detector (its own window and thresholds: a grid of one) with the same exclusions.
For every DS1 record in turn, the limit that scores best on the other 21 records is picked and the
held-out record is scored with it; the held-out counts summed over the 22 folds are the candidate's
cross-validated figures. The candidate with the best cross-validated score wins, and its limit is
then refit on all of DS1. The score is the smallest of AF episode Se, episode +P, duration Se and
duration +P (the targets ask for all four). Beats carry the labels the caller gives (``--select-af``:
each DS1 record labelled by a model trained on the other 21); DS2 is never looked at.
``python -m hbcore bench alarms --select-af`` prints it all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hbcore.rhythm import evaluation, scoring
from hbcore.rhythm.detector import AF_MIN_EPISODE_S, DASH_WINDOW, AfParams
from hbcore.rhythm.events import BeatObs

WINDOWS: tuple[int, ...] = (16, 32, 64)
EXCLUSIONS: tuple[tuple[str, ...], ...] = ((), ("V",), ("V", "S"))  # () reads the RR intervals alone
LIMITS: dict[str, tuple[float, ...]] = {
    "median": tuple(round(float(limit), 3) for limit in np.arange(0.06, 0.301, 0.02)),
    "share": tuple(round(float(limit), 3) for limit in np.arange(0.50, 0.951, 0.05)),
    "cells": (0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99),
    "dash": (1.0,),  # Dash et al. 2009's own thresholds: nothing is tuned on MIT-BIH
}
SEARCHED_METRICS: tuple[str, ...] = ("median", "share", "cells")  # over WINDOWS; "dash" at its published window
# (Dash et al. report every AF segment; each of their candidates is tried with and without AF_MIN_EPISODE_S)


def candidates() -> list[AfParams]:
    """Every candidate (limit left at its default: the grid is searched per fold)."""
    searched = [AfParams(window=window, metric=metric, exclude=exclude)
                for window in WINDOWS for metric in SEARCHED_METRICS for exclude in EXCLUSIONS]
    published = [AfParams(window=DASH_WINDOW, metric="dash", limit=1.0, exclude=exclude, min_episode_s=minimum_s)
                 for minimum_s in (0.0, AF_MIN_EPISODE_S) for exclude in EXCLUSIONS]
    return searched + published


@dataclass(frozen=True)
class Tally:
    """AF episode and duration counts of one record (or a sum of records)."""

    episodes: scoring.EpisodeCounts = field(default_factory=scoring.EpisodeCounts)
    durations: scoring.DurationCounts = field(default_factory=scoring.DurationCounts)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.episodes + other.episodes, self.durations + other.durations)

    def score(self) -> float:
        """The smallest of the four figures (a missing one, e.g. +P with no detection, counts 0)."""
        values = (self.episodes.se, self.episodes.ppv, self.durations.se, self.durations.ppv)
        return min(0.0 if value is None else value for value in values)

    def summary(self) -> dict[str, float | None]:
        return {"episode_se": _r(self.episodes.se), "episode_ppv": _r(self.episodes.ppv),
                "duration_se": _r(self.durations.se), "duration_ppv": _r(self.durations.ppv),
                "score": round(self.score(), 4)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _total(tallies: Mapping[str, Tally], records: Sequence[str]) -> Tally:
    total = Tally()
    for record in records:
        total = total + tallies[record]
    return total


def record_tallies(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]],
                   params: AfParams) -> dict[str, Tally]:
    """Each record's AF counts with these parameters (the AF tracker alone)."""
    return {score.record: Tally(score.episodes["af"], score.durations["af"])
            for score in evaluation.score_streams(mitdb_dir, streams, params, kinds=("af",))}


@dataclass(frozen=True)
class CandidateResult:
    params: AfParams            # with the limit refit on all records
    cross_validated: Tally      # held-out counts summed over the folds
    fold_limits: tuple[float, ...]


def cross_validate(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]],
                   candidate: AfParams) -> CandidateResult:
    """Leave-one-record-out over ``streams``: a limit per fold from the others, scored on the one left out."""
    limits = LIMITS[candidate.metric]
    by_limit = {limit: record_tallies(mitdb_dir, streams, replace(candidate, limit=limit)) for limit in limits}
    records = list(streams)
    held_out, fold_limits = Tally(), []
    for record in records:
        others = [r for r in records if r != record]
        best = max(limits, key=lambda limit: _total(by_limit[limit], others).score())
        fold_limits.append(best)
        held_out = held_out + by_limit[best][record]
    refit = max(limits, key=lambda limit: _total(by_limit[limit], records).score())
    return CandidateResult(replace(candidate, limit=refit), held_out, tuple(fold_limits))


def select(mitdb_dir: Path | str, streams: Mapping[str, Sequence[BeatObs]]) -> tuple[AfParams, list[CandidateResult]]:
    """The winning parameters and every candidate's cross-validated result."""
    results = [cross_validate(mitdb_dir, streams, candidate) for candidate in candidates()]
    best = max(results, key=lambda result: result.cross_validated.score())
    return best.params, results
