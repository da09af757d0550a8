"""Evaluation figures of a classifier, as the JSON the CLI prints and the benchmark records.

Accuracy alone flatters a heartbeat classifier (predicting N for every beat scores about 83 % on
MIT-BIH), so every evaluation also carries macro-F1, per-class precision/recall/F1 and the
confusion matrix. The inter-patient convention (de Chazal 2004) scores only the N, S, V, F beats
and lets the model choose among those four classes (:func:`evaluate_aami4`).
"""

from __future__ import annotations

import numpy as np

from hbcore.data.classes import CLASS_NAMES

AAMI4_LABELS: tuple[int, ...] = (0, 1, 2, 3)


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


def scores(matrix: np.ndarray, labels: tuple[int, ...]) -> dict:
    """Accuracy, macro-F1 and per-class figures from a confusion matrix.

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
    }


def evaluate(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The five-class figures: ``accuracy``, ``macro_f1``, ``per_class``, ``confusion`` (5×5, rows true)."""
    labels = tuple(range(len(CLASS_NAMES)))
    return scores(confusion(y_true, y_pred, labels), labels)


def evaluate_aami4(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """The inter-patient figures over N, S, V, F (de Chazal 2004): Q beats are left out and the
    prediction is the most probable of the four classes.

    ``probabilities`` is the model's ``(n, 5)`` output. ``confusion`` is 4×4, rows true.
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), len(CLASS_NAMES)):
        expected = (len(y_true), len(CLASS_NAMES))
        raise ValueError(f"probabilities must have shape {expected}, got {probabilities.shape}")
    keep = np.isin(y_true, AAMI4_LABELS)
    y_pred = probabilities[keep][:, list(AAMI4_LABELS)].argmax(axis=1)
    return scores(confusion(y_true[keep], y_pred, AAMI4_LABELS), AAMI4_LABELS)
