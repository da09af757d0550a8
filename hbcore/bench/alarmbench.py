"""``bench alarms``: rhythm events on DS2 scored against MIT-BIH's own annotations, EC57 style.

Two detectors are scored on the DS2 records (never tuned on):

- ``reference``: the detector fed the reference beat labels, the detector alone;
- ``model``: the detector fed the predictions of the patient-independent model (trained on DS1 with
  :mod:`hbcore.model.training`'s inter-patient recipe), the whole system.

Both see the same beats (the beat set's, with their annotated RR intervals) in stream order, one
record at a time, exactly as :class:`~hbcore.rhythm.detector.PatientDetector` runs live. The
matching rules are :mod:`hbcore.rhythm.scoring`'s (docs/alarms.md). ``--select-af`` prints the DS1
cross-validation that chose the AF detector's parameters (:mod:`hbcore.rhythm.afselect`), then the
ventricular-run rule's (:mod:`hbcore.rhythm.runselect`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import BeatSet, load_beats, resolve_mitdb_dir
from hbcore.data.splits import DS1_RECORDS, DS2_RECORDS
from hbcore.rhythm import afselect, evaluation, runselect, scoring
from hbcore.rhythm.detector import AF_PARAMS, RUN_PARAMS, AfParams, RunParams
from hbcore.rhythm.events import BeatObs, RhythmEvent
from hbcore.rhythm.reference import SCORED_KINDS

# (scoring kind, figure, target, minimum to resolve the issue); on the model source, DS2
TARGETS: tuple[tuple[str, str, float, float | None], ...] = (
    ("v_run", "se", 0.90, 0.80),
    ("v_run", "ppv", 0.90, 0.80),
    ("af", "se", 0.90, None),
    ("af", "ppv", 0.90, None),
    ("af_duration", "se", 0.90, 0.80),
    ("af_duration", "ppv", 0.90, 0.80),
)
PER_RECORD_KINDS: tuple[str, ...] = ("v_run", "vt", "v_bigeminy", "sv_run", "af")


def model_labels(beats: BeatSet, model_path: str | None,
                 log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every beat's predicted class and its probability (a prediction line's ``pred`` and ``prob``) by a
    DS1-trained inter-patient model (trained here unless given)."""
    from hbcore.model import training

    if model_path is not None:
        model = training.load_model(model_path)
    else:
        train_index = np.flatnonzero(np.isin(beats.meta["record"].to_numpy(), DS1_RECORDS))
        log(f"training the inter-patient model on the {len(train_index):,} DS1 beats ...")
        model = training.train_model(beats.subset(train_index), training.default_params("inter"), split="inter")
    proba = training.beat_proba(model, beats)  # with all the beat set carries (RR, context...)
    info = {"model_version": model.version, "train_seconds": model.metadata.get("train_seconds")}
    return proba.argmax(axis=1), proba.max(axis=1), info


def score_source(mitdb_dir: Path, beats: BeatSet, labels: np.ndarray, records: Sequence[str], source: str,
                 probs: np.ndarray | None = None) -> dict:
    """One source's gross and per-record figures, the latency of its reports and the detector's speed.

    ``probs``: each label's probability (the model's; None for the reference labels, which are certain).
    """
    streams = evaluation.record_streams(beats, labels, records, probs)
    runs = [evaluation.run_stream(record, stream, AF_PARAMS) for record, stream in streams.items()]
    scores = [evaluation.score_run(mitdb_dir, run) for run in runs]
    total = scoring.gross(scores)
    return {
        "source": source,
        "events": {kind: counts.summary() for kind, counts in total.episodes.items()},
        "af_duration": total.durations["af"].summary(),
        "per_record": {score.record: {**{kind: score.episodes[kind].summary() for kind in PER_RECORD_KINDS},
                                      "af_duration": score.durations["af"].summary()} for score in scores},
        "latency_max_s": round(max(run.latency_s for run in runs), 3),
        "af_end_delay_max_s": round(max(run.af_end_delay_s for run in runs), 1),
        "detector_beats_per_s": round(sum(run.beats for run in runs) / sum(run.seconds for run in runs)),
    }


def trivial_baseline(mitdb_dir: Path, beats: BeatSet, records: Sequence[str]) -> dict:
    """What detectors that read nothing score, to read the targets' figures against: every beat called V
    (one run per stretch without a 1.8 s gap, covering every reference run, so rxr's upward matching finds
    them all: Se 1, +P the share of those runs holding one), and AF all the time (duration Se 1, +P the
    share of compared time that is AF)."""
    every_v = np.full(len(beats), CLASS_NAMES.index("V"))
    streams = evaluation.record_streams(beats, every_v, records)
    v_run = scoring.gross(evaluation.score_streams(mitdb_dir, streams, kinds=runselect.RUN_KINDS)).episodes["v_run"]
    af_time = scoring.gross(evaluation.score_run(mitdb_dir, _af_all_the_time(record, stream), ["af"])
                            for record, stream in streams.items())
    return {"every_beat_v": {"v_run": v_run.summary()},
            "af_all_the_time": {"af_duration": af_time.durations["af"].summary()}}


def _af_all_the_time(record: str, stream: Sequence[BeatObs]) -> evaluation.StreamRun:
    """One AF event from the record's first beat to its last, as a stream run to score."""
    af = RhythmEvent(f"{record}:af:1", record, "af", stream[0].t_s, stream[-1].t_s, (), "medium", False)
    return evaluation.StreamRun(record, [af], 0.0, 0.0, len(stream), 0.0, {})


def targets(result: dict) -> list[dict]:
    """Each target with its value, whether it is met, and whether the minimum to resolve is."""
    rows = []
    for kind, figure, target, minimum in TARGETS:
        value = result["af_duration"][figure] if kind == "af_duration" else result["events"][kind][figure]
        rows.append({"kind": kind, "figure": figure, "value": value, "target": target, "met": _at_least(value, target),
                     "minimum": minimum, "minimum_met": None if minimum is None else _at_least(value, minimum)})
    return rows


def _at_least(value: float | None, bound: float) -> bool:
    return value is not None and value >= bound


def run_bench_alarms(mitdb: str | None = None, model: str | None = None, records: Sequence[str] | None = None,
                     log: Callable[[str], None] = print) -> list[dict]:
    """The reference source's and the model source's results on ``records`` (default: DS2)."""
    records = DS2_RECORDS if records is None else records
    mitdb_dir = resolve_mitdb_dir(mitdb)
    beats = load_beats(mitdb_dir)
    started = time.perf_counter()
    results = [score_source(mitdb_dir, beats, beats.y, records, "reference")]
    labels, probs, info = model_labels(beats, model, log)
    results.append(score_source(mitdb_dir, beats, labels, records, "model", probs) | info
                   | {"trivial_baseline": trivial_baseline(mitdb_dir, beats, records)})
    for result in results:
        result["targets"] = targets(result)
    log(f"scored {len(records)} records from each source in {time.perf_counter() - started:.0f} s")
    return results


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(results: Sequence[dict]) -> None:
    """Per source: the gross table, the per-record table, the targets; then one JSON line per source."""
    for result in results:
        print(f"\n== source: {result['source']} (DS2, {len(result['per_record'])} records, from 5 min) ==")
        print(f"{'kind':<13}{'reference':<34}{'n_ref':>7}{'n_det':>7}{'Se':>8}{'+P':>8}")
        for kind, figures in result["events"].items():
            print(f"{kind:<13}{SCORED_KINDS[kind][0][:33]:<34}{figures['n_ref']:>7}{figures['n_detected']:>7}"
                  f"{_cell(figures['se']):>8}{_cell(figures['ppv']):>8}")
        duration = result["af_duration"]
        print(f"{'af duration':<13}{'(AFIB, seconds':<34}{duration['ref_s']:>7.0f}{duration['detected_s']:>7.0f}"
              f"{_cell(duration['se']):>8}{_cell(duration['ppv']):>8}")
        print(f"latency: reports <= {result['latency_max_s']} s after the beat completing them; AF ends dated "
              f"back <= {result['af_end_delay_max_s']} s; detector {result['detector_beats_per_s']:,} beats/s")
        print("per record (Se/+P n_ref/n_det):")
        print(f"{'record':<8}" + "".join(f"{kind:<22}" for kind in (*PER_RECORD_KINDS, "af_duration")))
        for record, figures in result["per_record"].items():
            cells = [f"{_cell(f['se'])}/{_cell(f['ppv'])} {f['n_ref']}/{f['n_detected']}"
                     for f in (figures[kind] for kind in PER_RECORD_KINDS)]
            cells.append(f"{_cell(figures['af_duration']['se'])}/{_cell(figures['af_duration']['ppv'])}")
            print(f"{record:<8}" + "".join(f"{cell:<22}" for cell in cells))
        if "trivial_baseline" in result:
            v_run = result["trivial_baseline"]["every_beat_v"]["v_run"]
            af_time = result["trivial_baseline"]["af_all_the_time"]["af_duration"]
            print(f"trivial baselines: every beat V: v_run Se {_cell(v_run['se'])} +P {_cell(v_run['ppv'])} "
                  f"({v_run['n_ref']}/{v_run['n_detected']}); AF all the time: AF duration Se {_cell(af_time['se'])} "
                  f"+P {_cell(af_time['ppv'])}")
        print("targets (the system: model source, DS2):" if result["source"] == "model" else "targets (for reference):")
        for row in result["targets"]:
            minimum = "" if row["minimum"] is None else \
                f"; minimum {row['minimum']:.2f} {'met' if row['minimum_met'] else 'MISSED'}"
            print(f"  {row['kind']} {row['figure']} {_cell(row['value'])}: target {row['target']:.2f} "
                  f"{'met' if row['met'] else 'MISSED'}{minimum}")
    for result in results:
        print(json.dumps({"bench": "alarms", **result}))


def minimum_met(results: Sequence[dict]) -> bool:
    """Whether the system (the model source) meets the minimum to resolve the issue."""
    return all(row["minimum_met"] is not False for result in results if result["source"] == "model"
               for row in result["targets"])


def cross_predicted_proba(beats: BeatSet, records: Sequence[str], log: Callable[[str], None]) -> np.ndarray:
    """Each record's beats' class probabilities by an inter-patient model trained on the other ``records`` alone.

    What the system feeds the detector on a patient it never saw, without looking outside ``records``
    (the selections run it on DS1). Rows of other records are NaN.
    """
    from hbcore.model import training

    record_of = beats.meta["record"].to_numpy()
    proba = np.full((len(beats), len(CLASS_NAMES)), np.nan)
    for record in records:
        log(f"  model without record {record} ...")
        train = beats.subset(np.flatnonzero(np.isin(record_of, [r for r in records if r != record])))
        model = training.train_model(train, training.default_params("inter"), split="inter")
        rows = np.flatnonzero(record_of == record)
        proba[rows] = training.beat_proba(model, beats.subset(rows))
    return proba


def run_select_af(mitdb: str | None = None, log: Callable[[str], None] = print) -> dict:
    """The detector's DS1 selections: the AF detector's cross-validation (every candidate, the winner,
    whether it is the one in use) and the ventricular-run rule's (:mod:`hbcore.rhythm.runselect`).

    The beats carry what the system gives the detector on an unseen patient: each DS1 record's
    labels and their probabilities come from a model trained on the other 21 DS1 records.
    """
    mitdb_dir = resolve_mitdb_dir(mitdb)
    beats = load_beats(mitdb_dir)
    log("labelling each DS1 record by a model trained on the other 21 ...")
    proba = cross_predicted_proba(beats, DS1_RECORDS, log)
    known = np.nan_to_num(proba)  # rows of other records (NaN): class 0, never streamed
    streams = evaluation.record_streams(beats, known.argmax(axis=1), DS1_RECORDS, known.max(axis=1))
    log("cross-validating the AF candidates ...")
    chosen, results = afselect.select(mitdb_dir, streams)
    log("cross-validating the ventricular-run candidates ...")
    runs = runselect.select(mitdb_dir, streams)
    return {
        "candidates": [{**_describe(r.params), "fold_limits": list(r.fold_limits), **r.cross_validated.summary()}
                       for r in results],
        "chosen": _describe(chosen),
        "in_use": _describe(AF_PARAMS),
        "runs": {
            "candidates": [{**_describe_runs(params), **counts.summary(), "score": round(runselect.score(counts), 4)}
                           for params, counts in runs.plain.items()],
            "cross_validated": {**runs.cross_validated.summary(),
                                "score": round(runselect.score(runs.cross_validated), 4)},
            "fold_choices": [_describe_runs(params) for params in runs.fold_choices],
            "chosen": _describe_runs(runs.chosen),
            "in_use": _describe_runs(RUN_PARAMS),
        },
    }


def _describe_runs(params: RunParams) -> dict:
    return {"bridge_below": params.bridge_below, "bridge_after": params.bridge_after}


def _describe(params: AfParams) -> dict:
    return {"window": params.window, "metric": params.metric, "exclude": "".join(params.exclude) or "-",
            "min_episode_s": params.min_episode_s, "limit": params.limit}


def print_select_af(result: dict) -> None:
    print(f"{'window':>6} {'metric':<7}{'excl':<5}{'min s':>6}{'limit':>6}  {'CV ep Se':>8}{'ep +P':>7}{'dur Se':>7}"
          f"{'dur +P':>7}{'min':>7}  fold limits")
    for row in result["candidates"]:
        print(f"{row['window']:>6} {row['metric']:<7}{row['exclude']:<5}{row['min_episode_s']:>6.0f}"
              f"{row['limit']:>6.2f}  "
              f"{_cell(row['episode_se']):>8}{_cell(row['episode_ppv']):>7}{_cell(row['duration_se']):>7}"
              f"{_cell(row['duration_ppv']):>7}{row['score']:>7.3f}  {sorted(set(row['fold_limits']))}")
    same = result["in_use"] == result["chosen"]
    print(f"CV winner: {result['chosen']}; detector.AF_PARAMS is {'this' if same else 'NOT this'} choice"
          + ("" if same else f" but {result['in_use']} (a published fixed choice: docs/alarms.md)"))
    runs = result["runs"]
    print(f"\nventricular runs (v_run, DS1, all records): "
          f"{'below':>6}{'after':>6}{'Se':>8}{'+P':>8}{'n_det':>7}{'min':>7}")
    for row in runs["candidates"]:
        print(f"{'':<44}{row['bridge_below']:>6.2f}{row['bridge_after']:>6}{_cell(row['se']):>8}"
              f"{_cell(row['ppv']):>8}{row['n_detected']:>7}{row['score']:>7.3f}")
    cv, same_runs = runs["cross_validated"], runs["chosen"] == runs["in_use"]
    print(f"leave-one-record-out (the choice procedure): Se {_cell(cv['se'])} +P {_cell(cv['ppv'])} "
          f"(n_ref {cv['n_ref']}, n_det {cv['n_detected']}); chosen {runs['chosen']}; "
          f"detector.RUN_PARAMS is {'this' if same_runs else 'NOT this: ' + str(runs['in_use'])}")
    print(json.dumps({"bench": "alarms-select-af", **result}))
