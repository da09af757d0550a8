"""``python -m hbcore bench model``: the README's model figures, the issue's targets beside them
(met or missed), a per-record table, then one JSON line.

Every figure is the **mean and spread over seeds** (``--seeds``, default 3: the model's seeds 0, 1,
2 on the same split), never the best seed, and the targets are judged on the means (training
time on the slowest seed). What is measured:

- Inter-patient, de Chazal 2004: train on DS1, score DS2 over N, S, V, F (Q left out): accuracy,
  macro-F1, Cohen's kappa, the all-N baseline of the same beats, and the EC57 statistics of each
  class (Se, +P, FPR), gross (pooled over the DS2 beats) and averaged over the DS2 records, with
  the record-by-record table EC57 asks for (:func:`hbcore.model.metrics.record_table`).
- Intra-patient (the Kaggle convention, 80/20 stratified over beats): accuracy, macro-F1, kappa,
  per-class recall; the training time of this, the default, model.
- The real Kaggle rows in ``$HB_DATA_DIR/kaggle_mitbih/``, scored only on the rows whose beat the
  intra-patient model did not train on: each row is matched to the MIT-BIH beat it was cut from
  (:func:`hbcore.data.kaggle.match_rebuilt`); a row that matches no beat is left out too, since
  nothing shows it unseen. About four in five rows are training beats of that model, so a figure
  on all rows measures memory, not generalisation.
- Batch inference (median of several runs) and the cost of one 500-beat endpoint request per
  content type.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hbcore import paths
from hbcore.bench.table import cell, median_seconds
from hbcore.contracts import inference as contract
from hbcore.contracts import stream_record
from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import BeatSet
from hbcore.model import inference, metrics
from hbcore.model.training import (
    BeatModel,
    ModelParams,
    beat_proba,
    default_params,
    evaluate_model,
    fit_and_evaluate,
    load_training_beats,
    rr_of,
    split_index,
)

SEEDS = 3
INFERENCE_RUNS = 7
REQUEST_BEATS = 500
REQUEST_RUNS = 15
KAGGLE_SAMPLE = "mitbih_train_sample500.csv"
AAMI4 = tuple(CLASS_NAMES[label] for label in metrics.AAMI4_LABELS)
TRAIN_MINUTES_MAX = 3.0
INFERENCE_BEATS_PER_S_MIN = 20_000


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, standard deviation, minimum and maximum of one figure over seeds (undefined ones left out).

    ``n`` says how many seeds defined it; the deviation is the sample one (0 for a single seed).
    """
    defined = [float(value) for value in values if value is not None]
    if not defined:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(defined), "sd": statistics.stdev(defined) if len(defined) > 1 else 0.0,
            "min": min(defined), "max": max(defined), "n": len(defined)}


def _mean(figure: dict) -> float | None:
    return figure["mean"]


def _model_seeds(split: str, seeds: int) -> list[ModelParams]:
    """The split's training hyperparameters with the model's seed set to 0, 1, ... ``seeds - 1``."""
    return [dataclasses.replace(default_params(split), seed=seed) for seed in range(seeds)]


def _fit(beats: BeatSet, views: Sequence[BeatSet], split: str, params: ModelParams) -> tuple[BeatModel, BeatSet]:
    """Train on the split's training rows (and the views' same rows); the model and its test beats."""
    train_index, test_index = split_index(beats, split)
    test = beats.subset(test_index)
    model = fit_and_evaluate(beats.subset(train_index), test, params, [view.subset(train_index) for view in views],
                             split=split)
    return model, test


def record_confusions(model: BeatModel, test: BeatSet) -> dict[str, np.ndarray]:
    """Each test record's N/S/V/F confusion matrix (the record's beats scored on their own)."""
    records = test.meta["record"].to_numpy().astype(str)
    return {record: np.asarray(evaluate_model(model, test.subset(records == record))["aami4"]["confusion"])
            for record in test.records()}


def _quiet(message: str) -> None:
    """The default progress callback: nothing."""


def _seed_line(split: str, params: ModelParams, model: BeatModel, figures: dict) -> str:
    """One seed's headline figures, reported as soon as it is trained (a long run shows progress)."""
    recall = " ".join(f"{name} {values['recall']:.3f}" for name, values in figures["per_class"].items())
    return (f"{split} seed {params.seed}: accuracy {figures['accuracy']:.4f}, macro-F1 {figures['macro_f1']:.4f}, "
            f"recall {recall}, trained in {model.metadata['train_seconds']:.1f} s")


def bench_inter(beats: BeatSet, views: Sequence[BeatSet], seeds: int, log: Callable[[str], None] = _quiet) -> dict:
    """DS1 → DS2 over N, S, V, F for each seed: gross figures, EC57 per class, the per-record table."""
    runs = []
    for params in _model_seeds("inter", seeds):
        model, test = _fit(beats, views, "inter", params)
        runs.append((model, metrics.record_table(record_confusions(model, test))))
        log(_seed_line("inter", params, model, model.metadata["metrics"]["aami4"]))
    figures = [model.metadata["metrics"]["aami4"] for model, _ in runs]
    tables = [table for _, table in runs]
    return {
        "records": test.records(),
        "n_test": int(np.isin(test.y, metrics.AAMI4_LABELS).sum()),
        "all_n_baseline": figures[0]["all_n_baseline"],
        "accuracy": spread([f["accuracy"] for f in figures]),
        "macro_f1": spread([f["macro_f1"] for f in figures]),
        "kappa": spread([f["kappa"] for f in figures]),
        "gross": {name: {key: spread([f["ec57"][name][key] for f in figures]) for key in metrics.EC57_KEYS}
                  for name in AAMI4},
        "average": {name: {key: spread([t["average"][name][key] for t in tables]) for key in metrics.EC57_KEYS}
                    for name in AAMI4},
        "per_record": _per_record_means(tables),
        "train_seconds": spread([model.metadata["train_seconds"] for model, _ in runs]),
    }


def _per_record_means(tables: Sequence[dict]) -> list[dict]:
    """Each record's beats per class and its Se / +P per class, averaged over the seeds where defined."""
    rows = []
    for i, first in enumerate(tables[0]["records"]):
        seeded = [table["records"][i] for table in tables]
        rows.append({
            "record": first["record"], "beats": first["beats"], "counts": first["counts"],
            "accuracy": _mean(spread([row["accuracy"] for row in seeded])),
            **{key: {name: _mean(spread([row["ec57"][name][key] for row in seeded])) for name in AAMI4}
               for key in ("se", "ppv")},
        })
    return rows


def bench_intra(beats: BeatSet, views: Sequence[BeatSet], seeds: int,
                log: Callable[[str], None] = _quiet) -> tuple[BeatModel, BeatSet, dict]:
    """The intra-patient split for each seed; the first seed's model and test beats for the timings."""
    models = []
    for params in _model_seeds("intra", seeds):
        model, test = _fit(beats, views, "intra", params)
        models.append(model)
        log(_seed_line("intra", params, model, model.metadata["metrics"]))
    figures = [model.metadata["metrics"] for model in models]
    return models[0], test, {
        "n_train": models[0].metadata["n_train"],
        "n_test": len(test),
        "accuracy": spread([f["accuracy"] for f in figures]),
        "macro_f1": spread([f["macro_f1"] for f in figures]),
        "kappa": spread([f["kappa"] for f in figures]),
        "recall": {name: spread([f["per_class"][name]["recall"] for f in figures]) for name in CLASS_NAMES},
        "train_seconds": spread([model.metadata["train_seconds"] for model in models]),
        "models": models,
    }


def kaggle_rows() -> BeatSet | None:
    """The real Kaggle sample rows of ``$HB_DATA_DIR/kaggle_mitbih/``, if they are there."""
    data_dir = paths.data_dir()
    path = data_dir / "kaggle_mitbih" / KAGGLE_SAMPLE if data_dir else None
    if path is None or not path.is_file():
        return None
    from hbcore.data.kaggle import load_kaggle_csv

    return load_kaggle_csv(path)


def unseen_rows(rows: BeatSet, rebuilt: BeatSet, trained_on: BeatSet) -> tuple[np.ndarray, dict[str, int]]:
    """A mask of the Kaggle ``rows`` whose beat is not in ``trained_on``, and how the rows were sorted.

    ``rebuilt`` is the ``kaggle`` recipe's rebuild the rows are matched against; beats are the
    same beat in both sets when they share (record, sample).
    """
    from hbcore.data.kaggle import match_rebuilt

    matches = match_rebuilt(rows, rebuilt)
    matched = matches >= 0
    keys = rebuilt.meta["record"].astype(str) + ":" + rebuilt.meta["sample"].astype(str)
    trained = set((trained_on.meta["record"].astype(str) + ":" + trained_on.meta["sample"].astype(str)).tolist())
    in_training = np.zeros(len(rows), dtype=bool)
    in_training[matched] = np.isin(keys.to_numpy()[matches[matched]], list(trained))
    unseen = matched & ~in_training
    return unseen, {"rows": len(rows), "matched": int(matched.sum()), "in_training": int(in_training.sum()),
                    "unseen": int(unseen.sum())}


def bench_kaggle(models: Sequence[BeatModel], beats: BeatSet, rows: BeatSet | None, rebuilt: BeatSet | None) -> dict:
    """The intra-patient models on the Kaggle rows they did not train on (scored without RR, as CSV rows)."""
    if rows is None or rebuilt is None:
        return {"rows": 0}
    train_index, _ = split_index(beats, "intra")
    unseen, counts = unseen_rows(rows, rebuilt, beats.subset(train_index))
    if not unseen.any():
        return counts
    held_out = rows.subset(unseen)
    figures = [evaluate_model(model, held_out, use_rr=False) for model in models]
    return counts | {
        "unseen_class_counts": held_out.class_counts(),
        "accuracy": spread([f["accuracy"] for f in figures]),
        "macro_f1": spread([f["macro_f1"] for f in figures]),
        "recall": {name: spread([f["per_class"][name]["recall"] for f in figures]) for name in CLASS_NAMES},
    }


def bench_inference(model: BeatModel, test: BeatSet) -> dict:
    """Batch rate over the test beats (with all they carry), and one 500-beat request's
    parse/predict/serialise times: CSV (windows only) and JSON (windows, RR, pre-R segment, context)."""
    batch_s = median_seconds(lambda: beat_proba(model, test), INFERENCE_RUNS)
    rows, part = test.X[:REQUEST_BEATS], slice(0, REQUEST_BEATS)
    request = contract.encode_request(stream_record.carried_beats(rows),
                                      stream_record.carried_seconds(rr_of(test)[part]),
                                      stream_record.carried_beats(test.pre[part]),
                                      stream_record.carried_context(test.context[part])).decode()
    bodies = {
        "csv": ("\n".join(",".join(f"{v:.4f}" for v in row) for row in rows), inference.CSV),
        "json": (request, inference.JSON),
    }
    payload = model.payload()
    figures = {"inference_beats_per_s": len(test) / batch_s, "inference_batch_beats": len(test),
               "request_beats": len(rows)}
    for name, (body, content_type) in bodies.items():
        figures[f"request_{name}_kb"] = len(body) / 1024
        data = inference.input_fn(body.encode(), content_type)
        prediction = inference.predict_fn(data, payload)
        figures[f"request_{name}_parse_ms"] = 1e3 * median_seconds(
            lambda: inference.input_fn(body.encode(), content_type), REQUEST_RUNS)  # noqa: B023 (timed here)
        figures[f"request_{name}_predict_ms"] = 1e3 * median_seconds(
            lambda: inference.predict_fn(data, payload), REQUEST_RUNS)  # noqa: B023 (timed here)
        figures[f"request_{name}_output_ms"] = 1e3 * median_seconds(
            lambda: inference.output_fn(prediction, inference.JSON), REQUEST_RUNS)  # noqa: B023 (timed here)
    return figures


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: what it says, its tier, and how to read the figure it judges."""

    text: str
    tier: str  # "minimum", "stretch" or "required"
    value: Callable[[dict], float | None]
    at_least: float | None = None
    at_most: float | None = None

    def judge(self, result: dict) -> dict:
        value = self.value(result)
        ok = value is not None and (self.at_least is None or value >= self.at_least) and (
            self.at_most is None or value <= self.at_most)
        return {"target": self.text, "tier": self.tier, "value": value, "met": ok}


def _gross(name: str, key: str) -> Callable[[dict], float | None]:
    return lambda result: _mean(result["inter"]["gross"][name][key])


TARGETS: tuple[Target, ...] = (
    Target("DS2 macro-F1 >= 0.68", "minimum", lambda r: _mean(r["inter"]["macro_f1"]), at_least=0.68),
    Target("DS2 S Se >= 0.60", "minimum", _gross("S", "se"), at_least=0.60),
    Target("DS2 macro-F1 >= 0.75", "stretch", lambda r: _mean(r["inter"]["macro_f1"]), at_least=0.75),
    Target("DS2 S Se >= 0.80", "stretch", _gross("S", "se"), at_least=0.80),
    Target("DS2 S +P >= 0.50", "stretch", _gross("S", "ppv"), at_least=0.50),
    Target("DS2 V Se >= 0.95", "stretch", _gross("V", "se"), at_least=0.95),
    Target("DS2 V +P >= 0.95", "stretch", _gross("V", "ppv"), at_least=0.95),
    Target("DS2 F Se >= 0.50", "stretch", _gross("F", "se"), at_least=0.50),
    Target("intra accuracy >= 99.0 %", "required", lambda r: _mean(r["intra"]["accuracy"]), at_least=0.990),
    Target("intra macro-F1 >= 0.94", "required", lambda r: _mean(r["intra"]["macro_f1"]), at_least=0.94),
    Target("intra S recall >= 0.90", "required", lambda r: _mean(r["intra"]["recall"]["S"]), at_least=0.90),
    Target("training the default model <= 3 min (slowest seed)", "required",
           lambda r: r["intra"]["train_seconds"]["max"], at_most=60 * TRAIN_MINUTES_MAX),
    Target("batch inference >= 20,000 beats/s", "required", lambda r: r["inference"]["inference_beats_per_s"],
           at_least=INFERENCE_BEATS_PER_S_MIN),
)


def run_bench_model(mitdb: str | None = None, seeds: int = SEEDS, log: Callable[[str], None] = _quiet) -> dict:
    """Every figure of the README's model table over ``seeds`` seeds, the targets judged, and how busy
    the machine was while they were measured; ``log`` gets a line as each model is trained."""
    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: expected at least 1")
    from hbcore.data.dataset import load_beats

    load_before = os.getloadavg()[0]
    beats, views = load_training_beats(mitdb=mitdb)
    result: dict = {"seeds": list(range(seeds))}
    result["inter"] = bench_inter(beats, views, seeds, log)
    model, test, intra = bench_intra(beats, views, seeds, log)
    models = intra.pop("models")
    result["intra"] = intra
    result["inference"] = bench_inference(model, test)
    rows = kaggle_rows()
    result["kaggle"] = bench_kaggle(models, beats, rows, load_beats(mitdb, recipe="kaggle") if rows else None)
    result["model_version"] = model.version
    result["targets"] = [target.judge(result) for target in TARGETS]
    # Other work on the machine slows every timing above: say how busy it was.
    result["load_avg_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    return result


# --- the report -------------------------------------------------------------------------------------

def _pm(figure: dict, scale: float = 1.0, digits: int = 3) -> str:
    """``mean ± sd (min–max)`` of a :func:`spread`, or ``-`` when no seed defined it."""
    if figure["mean"] is None:
        return "-"
    mean, sd, low, high = (scale * figure[key] for key in ("mean", "sd", "min", "max"))
    return f"{mean:.{digits}f} ± {sd:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_lines(result: dict) -> list[str]:
    """The table a person reads: figures as mean ± sd (min–max) over the seeds, then the targets."""
    inter, intra, kaggle = result["inter"], result["intra"], result["kaggle"]
    seeds = len(result["seeds"])
    lines = [f"bench model: mean ± sd (min–max) over {seeds} seed(s) {result['seeds']}, never the best seed", "",
             (f"inter-patient DS1 -> DS2, N/S/V/F ({inter['n_test']:,} beats, {len(inter['records'])} records; "
             "Q left out)"),
             f"  accuracy     {_pm(inter['accuracy'])}   all-N baseline {inter['all_n_baseline']['accuracy']:.3f}",
             f"  macro-F1     {_pm(inter['macro_f1'])}   all-N baseline {inter['all_n_baseline']['macro_f1']:.3f}",
             f"  kappa        {_pm(inter['kappa'])}",
             "  EC57 per class (F called V counts against V +P; see hbcore.model.metrics)"]
    for name in AAMI4:
        gross, average = inter["gross"][name], inter["average"][name]
        lines.append(f"    {name} gross   Se {_pm(gross['se'])}  +P {_pm(gross['ppv'])}  FPR {_pm(gross['fpr'])}")
        lines.append(f"    {name} average Se {_pm(average['se'])}  +P {_pm(average['ppv'])}")
    lines += ["", "  per record (mean over seeds; - where undefined: no beats of the class / none predicted)",
              "    record  beats   " + "  ".join(f"{name:>5} {'Se':>5} {'+P':>5}" for name in AAMI4) + "   acc"]
    for row in inter["per_record"]:
        cells = "  ".join(f"{row['counts'][name]:>5} {_ratio_cell(row['se'][name]):>5} "
                          f"{_ratio_cell(row['ppv'][name]):>5}" for name in AAMI4)
        lines.append(f"    {row['record']:>6} {row['beats']:>6}   {cells}   {_ratio_cell(row['accuracy'])}")
    lines += ["",
              f"intra-patient 80/20 stratified ({intra['n_test']:,} test beats, {intra['n_train']:,} train beats)",
              f"  accuracy     {_pm(intra['accuracy'])}",
              f"  macro-F1     {_pm(intra['macro_f1'])}",
              f"  kappa        {_pm(intra['kappa'])}",
              "  recall       " + "  ".join(f"{name} {_pm(intra['recall'][name])}" for name in CLASS_NAMES),
              (f"  train s      {_pm(intra['train_seconds'], digits=1)}   "
              f"(inter: {_pm(inter['train_seconds'], digits=1)})")]
    if kaggle.get("accuracy"):
        lines += ["",
                  (f"real Kaggle rows ({KAGGLE_SAMPLE}): {kaggle['rows']} rows, {kaggle['matched']} matched to their "
                   f"MIT-BIH beat, {kaggle['in_training']} of them training beats of the intra model; "
                   f"scored on the {kaggle['unseen']} unseen rows {kaggle['unseen_class_counts']}"),
                  f"  accuracy     {_pm(kaggle['accuracy'])}   macro-F1 {_pm(kaggle['macro_f1'])}"]
    lines += ["", "inference"] + [f"  {name:<26} {cell(value)}" for name, value in result["inference"].items()]
    lines += ["", "targets (judged on the means over seeds)"]
    for target in result["targets"]:
        value = "-" if target["value"] is None else cell(target["value"])
        lines.append(f"  {'met' if target['met'] else 'MISSED':<7}{target['tier']:<9}{target['target']:<52}{value}")
    lines.append(f"\nload average (1 min): before {result['load_avg_1m']['before']:.2f}, "
                 f"after {result['load_avg_1m']['after']:.2f}")
    return lines


def print_report(result: dict) -> None:
    """The report, then one JSON line ``{"bench": "model", ...}``."""
    print("\n".join(report_lines(result)))
    print(json.dumps({"bench": "model", **result}))
