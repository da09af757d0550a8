"""Honest model selection for unseen patients: leave-records-out cross-validation inside DS1 only.

Everything that is chosen for the inter-patient model — feature groups, estimator, its
hyperparameters, class balancing — is chosen here, by cross-validation over the DS1 records
(de Chazal 2004's training half), with every fold's test records unseen in its training part
(``hbcore.data.splits.record_folds``). DS2 is never read: :func:`ds1_only` drops its beats before
anything else happens, and a test holds that no DS2 record reaches a fold. DS2 is then used once
per reported figure, for the setting chosen here (``python -m hbcore train --split inter``).

The score is the macro-F1 over N, S, V, F of the out-of-fold predictions pooled over all folds
(every DS1 beat predicted once, by a model that never saw its patient); ties go to the earlier
candidate. The decision rule (``ModelParams.prior_power``: how much of the class frequencies the
class-balanced model's probabilities get back) is chosen with it, on the same out-of-fold
probabilities, each fold's weights from its own training beats. Three settings of the context
features are chosen the same way, for the chosen estimator, after the candidates (``select-model``
runs them all, :data:`FEATURE_SWEEPS`, each with the other two at their defaults): the slow
reference's percentile (:data:`hbcore.data.patient.SLOW_REFERENCE_PERCENTILE`,
:func:`select_slow_percentile`) and the long reference's horizon
(:data:`hbcore.data.patient.LONG_REFERENCE_BEATS`, :func:`select_long_horizon`), the context
recomputed from each DS1 record's beats for each, and whether the context keeps its comparison with
the previous beat (:func:`select_previous_beat`, an ablation).
:data:`CANDIDATES` is short on purpose: CPU is scarce, and a long list would select on
the folds' noise (DS1 has 22 records; F beats are almost all in record 208).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

from hbcore.contracts import stream_record
from hbcore.data import patient, splits
from hbcore.data.dataset import BeatSet
from hbcore.model import inference, metrics, training
from hbcore.model.training import ModelParams

N_FOLDS = 4
PRIOR_POWERS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
FOLD_SEED = splits.SPLIT_SEED
# Groups without the raw window nor the raw pre-R segment: the beat relative to its own patient's
# rhythm and template is what transfers between patients; the raw samples mostly identify the patient.
CONTEXT_GROUPS: tuple[str, ...] = ("window", "rr", "context")
_LDA = ModelParams(estimator="lda", feature_groups=CONTEXT_GROUPS, class_balance=1.0, use_views=False,
                   max_iter=1, final_iter=0)
_MLP = ModelParams(hidden_layers=(64,), alpha=1.0, max_iter=8, final_iter=0, use_views=False, class_balance=1.0,
                   feature_groups=CONTEXT_GROUPS)
# Class-balanced gradient-boosted trees on the same non-raw groups: 100 iterations of one tree per
# class (500 trees), small ones. Larger trees (15 leaves, depth 4, shrinkage 0.1) scored 0.41-0.46 in
# this cross-validation: they learn the training patients. Weighted half-way to balance: the decision
# rule does the rest.
_GBT = ModelParams(estimator="gbt", feature_groups=CONTEXT_GROUPS, class_balance=0.5, use_views=False,
                   max_iter=100, final_iter=0, learning_rate_init=0.05, max_depth=2, max_leaf_nodes=4)
# Pooled out-of-fold macro-F1 of each (select-model, context version 6): lda-context 0.565,
# lda-context-pre 0.576 (chosen, prior_power 0.75), lda-all 0.492, mlp64-context 0.546, mlp64-all
# 0.507, gbt-context 0.513, gbt-context-d3 0.506, gbt-context-stumps 0.515.
CANDIDATES: dict[str, ModelParams] = {
    "lda-context": _LDA,
    "lda-context-pre": dataclasses.replace(_LDA, feature_groups=(*CONTEXT_GROUPS, "pre")),
    "lda-all": dataclasses.replace(_LDA, feature_groups=tuple(inference.FEATURE_GROUPS)),
    "mlp64-context": _MLP,
    "mlp64-all": dataclasses.replace(_MLP, feature_groups=tuple(inference.FEATURE_GROUPS)),
    "gbt-context": _GBT,
    "gbt-context-d3": dataclasses.replace(_GBT, max_depth=3, max_leaf_nodes=7),
    "gbt-context-stumps": dataclasses.replace(_GBT, max_depth=1, max_leaf_nodes=2, max_iter=200,
                                              learning_rate_init=0.1),
}


# Candidates for hbcore.data.patient.SLOW_REFERENCE_PERCENTILE: the median, and two upper percentiles
# that stay on the sinus rhythm when up to 70 % or 85 % of the recent intervals are premature.
SLOW_PERCENTILES: tuple[float, ...] = (50.0, 70.0, 85.0)
# Candidates for hbcore.data.patient.LONG_REFERENCE_BEATS: about one to seven minutes of beats at 70 bpm
# (de Chazal 2004's "average RR" horizon is a few minutes).
LONG_HORIZONS_BEATS: tuple[int, ...] = (64, 128, 256, 512)
# The context's comparison with the previous beat, left out by the ablation of select_previous_beat.
PREVIOUS_BEAT_NAMES: tuple[str, ...] = ("prev_correlation", "prev_rms")

Setting = TypeVar("Setting")


def with_context(beats: BeatSet, slow_percentile: float = patient.SLOW_REFERENCE_PERCENTILE,
                 long_beats: int = patient.LONG_REFERENCE_BEATS) -> BeatSet:
    """``beats`` with their context recomputed for these settings of the references.

    Each record's rows are taken in time order, as the dataset build runs
    :func:`hbcore.data.patient.record_context`, and rounded as a stream record carries them.
    """
    context = np.empty_like(beats.context)
    records = beats.meta["record"].astype(str).to_numpy()
    samples = beats.meta["sample"].to_numpy()
    rr = beats.meta[list(patient.RR_COLUMNS)].to_numpy(dtype=np.float64)
    for record in dict.fromkeys(records):
        rows = np.flatnonzero(records == record)
        rows = rows[np.argsort(samples[rows], kind="stable")]
        context[rows] = stream_record.carried_context(
            patient.record_context(beats.X[rows], beats.pre[rows], rr[rows], slow_percentile, long_beats))
    return BeatSet(beats.X, beats.y, beats.meta, beats.skipped, beats.pre, context)


def without_previous_beat(beats: BeatSet) -> BeatSet:
    """``beats`` with their context as computed without the comparison with the previous beat.

    That comparison reads and feeds no other feature's state, so leaving it out is its two values
    unknown (NaN) on every beat. Their feature columns are then constant, which the standardisation
    maps to 0: LDA fits the model without those columns (up to rounding: on a third of DS1, class
    probabilities within 0.005 of a fit on the columns removed), the trees never split on them.
    """
    context = beats.context.copy()
    context[:, [patient.CONTEXT_NAMES.index(name) for name in PREVIOUS_BEAT_NAMES]] = np.nan
    return BeatSet(beats.X, beats.y, beats.meta, beats.skipped, beats.pre, context)


def sweep_context(beats: BeatSet, params: ModelParams, settings: Mapping[str, Setting],
                  variant: Callable[[BeatSet, Setting], BeatSet], what: str, n_folds: int = N_FOLDS,
                  seed: int = FOLD_SEED, progress: Callable[[str], None] | None = None) -> dict:
    """The DS1 cross-validation of ``params`` on ``variant(beats, setting)`` for each of ``settings``
    (named by its keys): ``{"chosen": setting, "macro_f1": {name: score}}``, ties to the earlier one.

    One function for every feature setting, so each is scored and chosen as the candidates are.
    """
    beats = ds1_only(beats)
    scores = {}
    for name, setting in settings.items():
        scores[name] = cross_validate(variant(beats, setting), params, n_folds, seed)["macro_f1"]
        if progress:
            progress(f"{what} {name}: macro-F1 {scores[name]:.4f}")
    chosen = max(scores, key=lambda name: scores[name])  # first of equals: max keeps it
    if progress:
        progress(f"{what}: chosen {chosen}")
    return {"chosen": settings[chosen], "macro_f1": scores}


def select_slow_percentile(beats: BeatSet, params: ModelParams, percentiles: tuple[float, ...] = SLOW_PERCENTILES,
                           n_folds: int = N_FOLDS, seed: int = FOLD_SEED,
                           progress: Callable[[str], None] | None = None) -> dict:
    """The DS1 cross-validation of ``params`` with the context of each slow-reference percentile."""
    return sweep_context(beats, params, {f"{percentile:g}": percentile for percentile in percentiles},
                         lambda rows, percentile: with_context(rows, slow_percentile=percentile),
                         "slow reference percentile", n_folds, seed, progress)


def select_long_horizon(beats: BeatSet, params: ModelParams, horizons: tuple[int, ...] = LONG_HORIZONS_BEATS,
                        n_folds: int = N_FOLDS, seed: int = FOLD_SEED,
                        progress: Callable[[str], None] | None = None) -> dict:
    """The DS1 cross-validation of ``params`` with the context of each long-reference horizon (beats)."""
    return sweep_context(beats, params, {str(horizon): horizon for horizon in horizons},
                         lambda rows, horizon: with_context(rows, long_beats=horizon),
                         "long reference horizon (beats)", n_folds, seed, progress)


def select_previous_beat(beats: BeatSet, params: ModelParams, n_folds: int = N_FOLDS, seed: int = FOLD_SEED,
                         progress: Callable[[str], None] | None = None) -> dict:
    """The DS1 cross-validation of ``params`` with the context without, then with, its comparison
    with the previous beat (``"chosen"``: whether to keep it; a tie keeps the smaller context)."""
    return sweep_context(beats, params, {"without": False, "with": True},
                         lambda rows, keep: rows if keep else without_previous_beat(rows),
                         "previous-beat features", n_folds, seed, progress)


def ds1_only(beats: BeatSet) -> BeatSet:
    """The DS1 beats of ``beats``: the only ones selection may read."""
    records = beats.meta["record"].astype(str).to_numpy()
    kept = np.isin(records, splits.DS1_RECORDS)
    if not kept.any():
        raise ValueError("model selection needs beats of the DS1 records (MIT-BIH); none found")
    return beats.subset(kept)


def out_of_fold_probabilities(beats: BeatSet, params: ModelParams, folds: list[tuple[np.ndarray, np.ndarray]],
                              views: tuple[BeatSet, ...] = ()) -> dict[float, np.ndarray]:
    """``(n, 5)`` probabilities of every beat from the model of the fold that tested it, for each
    decision rule of :data:`PRIOR_POWERS` (one model per fold: the rule only re-weighs)."""
    probabilities = {power: np.zeros((len(beats), 5)) for power in PRIOR_POWERS}
    for train_rows, test_rows in folds:
        model = training.train_model(beats.subset(train_rows), dataclasses.replace(params, prior_power=0.0),
                                     [view.subset(train_rows) for view in views])
        balanced = training.beat_proba(model, beats.subset(test_rows))
        for power in PRIOR_POWERS:
            weights = np.ones(5)
            present = np.unique(beats.y[train_rows]).astype(np.int64)
            weights[present] = training.decision_weights(beats.y[train_rows], present, power)
            weighted = balanced * weights
            probabilities[power][test_rows] = weighted / weighted.sum(axis=1, keepdims=True)
    return probabilities


def score(y: np.ndarray, probabilities: np.ndarray) -> dict:
    """The selection score (macro-F1 over N, S, V, F) and the per-class Se and +P it comes from."""
    figures = metrics.evaluate_aami4(y, probabilities)
    per_class = {name: {"se": stats["se"], "ppv": stats["ppv"]} for name, stats in figures["ec57"].items()}
    return {"macro_f1": figures["macro_f1"], "accuracy": figures["accuracy"], "per_class": per_class}


def cross_validate(beats: BeatSet, params: ModelParams, n_folds: int = N_FOLDS, seed: int = FOLD_SEED,
                   views: tuple[BeatSet, ...] = ()) -> dict:
    """The leave-records-out figures of ``params`` on the DS1 beats of ``beats`` (pooled
    out-of-fold), with the best decision rule: ``{"prior_power", "macro_f1", ..., "by_prior_power"}``."""
    beats = ds1_only(beats)
    folds = splits.record_folds(beats.meta["record"].to_numpy(), n_folds, seed)
    started = time.perf_counter()
    probabilities = out_of_fold_probabilities(beats, params, folds, views)
    by_power = {power: score(beats.y, rows) for power, rows in probabilities.items()}
    best = max(PRIOR_POWERS, key=lambda power: by_power[power]["macro_f1"])
    records = beats.meta["record"].astype(str).to_numpy()
    return {"prior_power": best, **by_power[best],
            "by_prior_power": {str(power): figures["macro_f1"] for power, figures in by_power.items()},
            "seconds": round(time.perf_counter() - started, 1),
            "folds": [sorted(set(records[test].tolist())) for _, test in folds]}


def select_model(beats: BeatSet, candidates: Mapping[str, ModelParams] | None = None, n_folds: int = N_FOLDS,
                 seed: int = FOLD_SEED, progress: Callable[[str], None] | None = None) -> dict:
    """Cross-validate every candidate on DS1 and name the best: ``{"chosen", "params", "candidates"}``."""
    candidates = dict(candidates or CANDIDATES)
    beats = ds1_only(beats)
    results = {}
    for name, params in candidates.items():
        results[name] = cross_validate(beats, params, n_folds, seed)
        if progress:
            progress(f"{name}: macro-F1 {results[name]['macro_f1']:.4f} ({results[name]['seconds']} s)")
    chosen = max(results, key=lambda name: results[name]["macro_f1"])  # first of equals: max keeps it
    params = dataclasses.replace(candidates[chosen], prior_power=results[chosen]["prior_power"])
    return {"chosen": chosen, "params": dataclasses.asdict(params), "n_folds": n_folds,
            "fold_seed": seed, "records": sorted(set(beats.meta["record"].astype(str))), "candidates": results}


# The feature settings select-model chooses after the candidates, under their keys of its result.
FEATURE_SWEEPS: dict[str, Callable[..., dict]] = {"slow_percentile": select_slow_percentile,
                                                  "long_horizon_beats": select_long_horizon,
                                                  "previous_beat": select_previous_beat}


def run_select(mitdb: str | None = None, candidates: list[str] | None = None, n_folds: int = N_FOLDS) -> dict:
    """``python -m hbcore select-model``: the DS1 cross-validation of the candidates, the chosen one,
    then of each setting of :data:`FEATURE_SWEEPS` for it."""
    from hbcore.data.dataset import load_beats

    unknown = sorted(set(candidates or ()) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"unknown candidates {', '.join(unknown)}: expected some of {', '.join(CANDIDATES)}")
    chosen = {name: CANDIDATES[name] for name in candidates} if candidates else CANDIDATES
    beats = load_beats(mitdb, recipe=training.TRAINING_RECIPES[0])
    progress = functools.partial(print, flush=True)
    result = select_model(beats, chosen, n_folds, progress=progress)
    params = dataclasses.replace(chosen[result["chosen"]], prior_power=0.0)
    return result | {name: sweep(beats, params, n_folds=n_folds, progress=progress)
                     for name, sweep in FEATURE_SWEEPS.items()}
