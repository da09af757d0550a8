"""Evaluation figures of a classifier, as the JSON the CLI prints and the benchmark records.

Accuracy alone flatters a heartbeat classifier (predicting N for every beat scores 89.0 % on the
DS2 records), so every evaluation also carries macro-F1, per-class precision/recall/F1, the
confusion matrix, Cohen's kappa and the ANSI/AAMI EC57 statistics of each class; an inter-patient
evaluation (:func:`evaluate_aami4`) also carries the all-N baseline it must be read against.

What is implemented of EC57 (the beat-by-beat comparison of its 1998/2012 editions), and how:

- Classes: the AAMI classes N, S, V, F. Inter-patient figures leave out the Q beats and let the
  model choose among the four classes (de Chazal, O'Dwyer & Reilly 2004, who left Q out because
  MIT-BIH holds too few unpaced ones to train or test on).
- Every class is scored one against the rest of the confusion matrix ``M`` (rows true): TP =
  ``M[k, k]``, FN = the rest of row k, FP = the rest of column k, TN = everything else;
  sensitivity Se = TP / (TP + FN), positive predictivity +P = TP / (TP + FP), false-positive rate
  FPR = FP / (TN + FP). EC57's VEB rule that a reference F beat called V is no V false positive is
  **not** applied: that F beat counts as a V false positive and an F false negative like any other
  error, so the four classes are scored alike (as macro-F1 scores them) and V +P is, if anything,
  below what EC57's rule gives.
- Gross statistics come from the confusion matrix pooled over all beats of all records (a beat
  weighs the same wherever it is); average statistics (:func:`record_table`) are the mean over
  records of each record's statistic, over the records where it is defined (Se: records holding
  beats of the class; +P: records where the model predicted it), so that each patient weighs the
  same. A ratio whose denominator is zero is ``None`` (JSON null), never a made-up 0 or 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hbcore.data.classes import CLASS_NAMES

AAMI4_LABELS: tuple[int, ...] = (0, 1, 2, 3)
NORMAL_LABEL = 0
EC57_KEYS: tuple[str, ...] = ("se", "ppv", "fpr")
# What :func:`scores` computes from one confusion matrix: the keys one set of figures is made of.
SCORE_KEYS: tuple[str, ...] = ("accuracy", "macro_f1", "per_class", "confusion", "kappa", "ec57")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """Counts of (true, predicted) pairs over ``labels``; rows are the true class."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.shape[0]} labels, y_pred {pred.shape[0]}")
    unknown = sorted((set(np.unique(true).tolist()) | set(np.unique(pred).tolist())) - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {list(labels)}")
    lookup = np.zeros(max(labels) + 1, dtype=np.int64)
    lookup[list(labels)] = np.arange(len(labels))
    cells = lookup[true] * len(labels) + lookup[pred]
    return np.bincount(cells, minlength=len(labels) ** 2).reshape(len(labels), len(labels))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def ec57_statistics(matrix: np.ndarray, labels: tuple[int, ...]) -> dict[str, dict[str, float | int | None]]:
    """Se, +P and FPR of every class, one against the rest (see the module docstring), with the
    counts they come from: ``{"N": {"se", "ppv", "fpr", "tp", "fn", "fp", "tn"}, ...}``."""
    matrix = np.asarray(matrix, dtype=np.int64)
    total = int(matrix.sum())
    result: dict[str, dict[str, float | int | None]] = {}
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        fn = int(matrix[i].sum()) - tp
        fp = int(matrix[:, i].sum()) - tp
        tn = total - tp - fn - fp
        result[CLASS_NAMES[label]] = {"se": _ratio(tp, tp + fn), "ppv": _ratio(tp, tp + fp),
                                      "fpr": _ratio(fp, tn + fp), "tp": tp, "fn": fn, "fp": fp, "tn": tn}
    return result


def cohen_kappa(matrix: np.ndarray) -> float | None:
    """Cohen's kappa: agreement beyond what the two label distributions give by chance.

    ``None`` when chance agreement is already perfect (one class only, on both sides): kappa is
    then 0 / 0.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    if total == 0:
        return None
    observed = np.trace(matrix) / total
    chance = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / total**2
    return None if chance == 1.0 else float((observed - chance) / (1.0 - chance))


def scores(matrix: np.ndarray, labels: tuple[int, ...]) -> dict:
    """Accuracy, macro-F1, per-class figures, kappa and the gross EC57 statistics of a confusion matrix.

    A class with no true and no predicted beats is reported with zeros and support 0 but left out
    of the macro average (as scikit-learn does): a class never asked about says nothing of the model.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    total = int(matrix.sum())
    seen = (support + predicted) > 0
    return {
        "accuracy": float(hits.sum() / total) if total else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "per_class": {
            CLASS_NAMES[label]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": matrix.tolist(),
        "kappa": cohen_kappa(matrix),
        "ec57": ec57_statistics(matrix, labels),
    }


def evaluate(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The five-class figures: ``accuracy``, ``macro_f1``, ``per_class``, ``confusion`` (5×5, rows
    true), ``kappa``, ``ec57``."""
    labels = tuple(range(len(CLASS_NAMES)))
    return scores(confusion(y_true, y_pred, labels), labels)


def all_n_baseline(y_true: np.ndarray, labels: tuple[int, ...] = AAMI4_LABELS) -> dict[str, float]:
    """Accuracy and macro-F1 of predicting N for every beat of ``y_true`` (beats outside ``labels``
    left out): the floor an accuracy has to be read against."""
    y_true = np.asarray(y_true)
    y_true = y_true[np.isin(y_true, labels)]
    figures = scores(confusion(y_true, np.full(len(y_true), NORMAL_LABEL), labels), labels)
    return {"accuracy": figures["accuracy"], "macro_f1": figures["macro_f1"]}


def evaluate_aami4(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """The inter-patient figures over N, S, V, F (de Chazal 2004): Q beats are left out and the
    prediction is the most probable of the four classes.

    ``probabilities`` is the model's ``(n, 5)`` output. ``confusion`` is 4×4, rows true;
    ``all_n_baseline`` holds the accuracy and macro-F1 of predicting N for the same beats.
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), len(CLASS_NAMES)):
        expected = (len(y_true), len(CLASS_NAMES))
        raise ValueError(f"probabilities must have shape {expected}, got {probabilities.shape}")
    keep = np.isin(y_true, AAMI4_LABELS)
    y_pred = probabilities[keep][:, list(AAMI4_LABELS)].argmax(axis=1)
    figures = scores(confusion(y_true[keep], y_pred, AAMI4_LABELS), AAMI4_LABELS)
    return figures | {"all_n_baseline": all_n_baseline(y_true[keep])}


def inter_patient_figures(result: dict) -> dict:
    """A train/evaluate result whose figures are the N/S/V/F ones: ``result["aami4"]`` lifted to the
    top (the same keys: ``accuracy``, ``macro_f1``, ``per_class``, ``confusion``, ...), the five-class
    figures kept under ``five_class``. A result without ``aami4`` is returned as it is."""
    if "aami4" not in result:
        return result
    rest = {key: value for key, value in result.items() if key != "aami4"}
    five_class = {key: rest.pop(key) for key in SCORE_KEYS if key in rest}
    return rest | result["aami4"] | {"classes": [CLASS_NAMES[label] for label in AAMI4_LABELS],
                                     "five_class": five_class}


def record_table(confusions: Mapping[str, np.ndarray], labels: tuple[int, ...] = AAMI4_LABELS) -> dict:
    """EC57's record-by-record report from each record's confusion matrix (rows true, over ``labels``).

    Returns ``{"records": [{"record", "beats", "accuracy", "counts": {class: beats},
    "ec57": {class: {"se", "ppv", "fpr"}}}, ...], "gross": {class: {...}}, "average": {class:
    {"se", "ppv", "fpr", "records_se", "records_ppv"}}}``: the gross statistics of the pooled matrix
    and the per-record averages, each over the records where the statistic is defined (how many is
    in ``records_se`` / ``records_ppv``).
    """
    if not confusions:
        raise ValueError("no records to tabulate")
    names = [CLASS_NAMES[label] for label in labels]
    rows: list[dict] = []
    for record, matrix in confusions.items():
        matrix = np.asarray(matrix, dtype=np.int64)
        if matrix.shape != (len(labels), len(labels)):
            raise ValueError(f"record {record}: confusion matrix of shape {matrix.shape}, expected "
                             f"{(len(labels), len(labels))}")
        statistics = ec57_statistics(matrix, labels)
        total = int(matrix.sum())
        rows.append({
            "record": record,
            "beats": total,
            "accuracy": _ratio(int(np.trace(matrix)), total),
            "counts": dict(zip(names, matrix.sum(axis=1).tolist())),
            "ec57": {name: {key: statistics[name][key] for key in EC57_KEYS} for name in names},
        })
    pooled = sum((np.asarray(matrix, dtype=np.int64) for matrix in confusions.values()),
                 np.zeros((len(labels), len(labels)), dtype=np.int64))
    average: dict[str, dict[str, float | int | None]] = {}
    for name in names:
        means: dict[str, float | int | None] = {}
        for key in EC57_KEYS:
            defined = [row["ec57"][name][key] for row in rows if row["ec57"][name][key] is not None]
            means[key] = float(np.mean(defined)) if defined else None
            if key != "fpr":
                means[f"records_{key}"] = len(defined)
        average[name] = means
    return {"records": rows, "gross": ec57_statistics(pooled, labels), "average": average}
