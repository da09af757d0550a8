"""Evaluation figures: known values, agreement with scikit-learn, the four-class inter-patient variant."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from hbcore.model.metrics import evaluate, evaluate_aami4


def test_evaluate_known_values():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 4])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2, 0, 4])
    result = evaluate(y_true, y_pred)
    assert result["accuracy"] == pytest.approx(0.7)
    assert result["per_class"]["N"] == pytest.approx({"precision": 0.6, "recall": 0.75, "f1": 2 / 3, "support": 4})
    assert result["per_class"]["S"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert result["per_class"]["F"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 1 + 0 + 1) / 5)


def test_confusion_rows_are_true_classes():
    result = evaluate(np.array([3, 3, 1]), np.array([0, 3, 1]))
    assert result["confusion"] == [
        [0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ]


def test_evaluate_agrees_with_sklearn():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 5, 2000)
    y_pred = np.where(rng.random(2000) < 0.7, y_true, rng.integers(0, 5, 2000))
    result = evaluate(y_true, y_pred)
    precision, recall, _f1, support = precision_recall_fscore_support(y_true, y_pred, labels=range(5), zero_division=0)
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert [result["per_class"][name]["recall"] for name in "NSVFQ"] == pytest.approx(recall.tolist())
    assert [result["per_class"][name]["precision"] for name in "NSVFQ"] == pytest.approx(precision.tolist())
    assert [result["per_class"][name]["support"] for name in "NSVFQ"] == support.tolist()


def test_macro_f1_leaves_out_classes_never_seen():
    result = evaluate(np.array([0, 0, 2]), np.array([0, 0, 2]))
    assert result["macro_f1"] == 1.0
    assert result["per_class"]["Q"]["support"] == 0


def test_evaluate_rejects_unknown_labels():
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        evaluate(np.array([0, 7]), np.array([0, 0]))


def test_evaluate_rejects_length_mismatch():
    with pytest.raises(ValueError, match="3 labels, y_pred 2"):
        evaluate(np.array([0, 1, 2]), np.array([0, 1]))


def test_aami4_drops_q_beats_and_chooses_among_four_classes():
    y_true = np.array([0, 1, 4, 3])
    probabilities = np.array([
        [0.1, 0.0, 0.0, 0.0, 0.9],   # N, Q most probable: scored as N
        [0.2, 0.3, 0.0, 0.0, 0.5],   # S, Q most probable: scored as S
        [0.0, 0.0, 0.0, 0.0, 1.0],   # Q: left out
        [0.6, 0.0, 0.0, 0.4, 0.0],   # F predicted N
    ])
    result = evaluate_aami4(y_true, probabilities)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert set(result["per_class"]) == {"N", "S", "V", "F"}


def test_aami4_checks_the_probability_shape():
    with pytest.raises(ValueError, match=r"shape \(2, 5\)"):
        evaluate_aami4(np.array([0, 1]), np.zeros((2, 4)))
