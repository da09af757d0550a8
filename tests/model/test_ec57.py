"""EC57 statistics, Cohen's kappa, the all-N baseline and the per-record table, against hand-computed
confusion matrices and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from hbcore.model import metrics

# Rows true N, S, V, F; columns predicted. 100 beats.
HAND = np.array([
    [60, 5, 3, 2],   # N: 70
    [4, 6, 0, 0],    # S: 10
    [1, 0, 12, 2],   # V: 15
    [2, 0, 1, 2],    # F: 5
])


def test_ec57_statistics_match_the_hand_computed_counts():
    stats = metrics.ec57_statistics(HAND, metrics.AAMI4_LABELS)
    # N: TP 60, FN 10, FP 4+1+2 = 7, TN 100-60-10-7 = 23
    assert stats["N"] == pytest.approx({"se": 60 / 70, "ppv": 60 / 67, "fpr": 7 / 30,
                                        "tp": 60, "fn": 10, "fp": 7, "tn": 23})
    # S: TP 6, FN 4, FP 5, TN 85
    assert stats["S"] == pytest.approx({"se": 0.6, "ppv": 6 / 11, "fpr": 5 / 90, "tp": 6, "fn": 4, "fp": 5, "tn": 85})
    # V: TP 12, FN 3, FP 3+0+1 = 4 (the F beat called V counts: EC57's VEB exemption is not applied)
    assert stats["V"] == pytest.approx({"se": 0.8, "ppv": 0.75, "fpr": 4 / 85, "tp": 12, "fn": 3, "fp": 4, "tn": 81})
    # F: TP 2, FN 3, FP 2+0+2 = 4
    assert stats["F"] == pytest.approx({"se": 0.4, "ppv": 2 / 6, "fpr": 4 / 95, "tp": 2, "fn": 3, "fp": 4, "tn": 91})


def test_an_undefined_ratio_is_none_not_zero():
    matrix = np.array([[5, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    stats = metrics.ec57_statistics(matrix, metrics.AAMI4_LABELS)
    assert stats["S"]["se"] is None and stats["S"]["ppv"] is None  # no S beats, none predicted
    assert stats["V"] == pytest.approx({"se": 0.0, "ppv": None, "fpr": 0.0, "tp": 0, "fn": 1, "fp": 0, "tn": 5})


def test_ec57_statistics_agree_with_one_vs_rest_recall_and_precision():
    figures = metrics.scores(HAND, metrics.AAMI4_LABELS)
    for name in "NSVF":
        assert figures["ec57"][name]["se"] == pytest.approx(figures["per_class"][name]["recall"])
        assert figures["ec57"][name]["ppv"] == pytest.approx(figures["per_class"][name]["precision"])


def test_kappa_of_the_hand_matrix():
    observed = (60 + 6 + 12 + 2) / 100
    chance = (70 * 67 + 10 * 11 + 15 * 16 + 5 * 6) / 100**2
    assert metrics.cohen_kappa(HAND) == pytest.approx((observed - chance) / (1 - chance))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_agrees_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.choice(5, 3000, p=[0.8, 0.05, 0.08, 0.02, 0.05])
    y_pred = np.where(rng.random(3000) < 0.75, y_true, rng.integers(0, 5, 3000))
    assert metrics.evaluate(y_true, y_pred)["kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred))


def test_kappa_is_none_when_chance_agreement_is_perfect():
    assert metrics.cohen_kappa(np.array([[7, 0], [0, 0]])) is None
    assert metrics.cohen_kappa(np.zeros((4, 4))) is None


def test_all_n_baseline_scores_predicting_n_for_every_beat():
    y_true = np.array([0] * 89 + [1] * 5 + [2] * 4 + [3] * 2 + [4] * 7)  # the Q beats are left out
    baseline = metrics.all_n_baseline(y_true)
    assert baseline["accuracy"] == pytest.approx(0.89)
    n_f1 = 2 * 0.89 * 1.0 / (0.89 + 1.0)
    assert baseline["macro_f1"] == pytest.approx(n_f1 / 4)


def test_inter_patient_evaluation_carries_the_baseline_kappa_and_ec57():
    y_true = np.array([0, 0, 1, 2, 3, 4])
    probabilities = np.eye(5)[[0, 1, 1, 2, 0, 4]]
    figures = metrics.evaluate_aami4(y_true, probabilities)
    assert figures["all_n_baseline"] == pytest.approx({"accuracy": 0.4, "macro_f1": (2 * 0.4 / 1.4) / 4})
    assert figures["ec57"]["S"] == pytest.approx(
        {"se": 1.0, "ppv": 0.5, "fpr": 0.25, "tp": 1, "fn": 0, "fp": 1, "tn": 3})
    assert set(figures["ec57"]) == {"N", "S", "V", "F"} and figures["kappa"] is not None


def test_record_table_pools_gross_and_averages_over_defined_records():
    first = np.array([[8, 2, 0, 0], [1, 1, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0]])
    second = np.array([[10, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
    table = metrics.record_table({"100": first, "200": second})
    assert [row["record"] for row in table["records"]] == ["100", "200"]
    assert table["records"][0]["counts"] == {"N": 10, "S": 2, "V": 4, "F": 0}
    assert table["records"][0]["accuracy"] == pytest.approx(13 / 16)
    assert table["records"][1]["ec57"]["S"] == {"se": None, "ppv": None, "fpr": 0.0}
    assert table["gross"] == metrics.ec57_statistics(first + second, metrics.AAMI4_LABELS)
    # S: Se defined in record 100 only (0.5); +P only there too (1 of 3).
    assert table["average"]["S"] == pytest.approx({"se": 0.5, "ppv": 1 / 3, "fpr": (2 / 14 + 0.0) / 2,
                                                   "records_se": 1, "records_ppv": 1})
    # V: Se 1.0 and 0.5 → 0.75; +P 1.0 and 1.0.
    assert table["average"]["V"]["se"] == pytest.approx(0.75) and table["average"]["V"]["records_se"] == 2
    # F: no F beats anywhere (Se undefined); record 200 called one V beat F (+P 0 there).
    assert table["average"]["F"] == {"se": None, "ppv": 0.0, "fpr": pytest.approx(1 / 12 / 2),
                                     "records_se": 0, "records_ppv": 1}


def test_record_table_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="record 101: confusion matrix of shape"):
        metrics.record_table({"101": np.zeros((5, 5))})


def test_inter_patient_figures_lift_the_four_class_figures_to_the_top():
    five = metrics.evaluate(np.array([0, 1, 4]), np.array([0, 1, 4]))
    result = five | {"aami4": metrics.evaluate_aami4(np.array([0, 1, 4]), np.eye(5)[[0, 0, 4]]),
                     "train_seconds": 1.5}
    lifted = metrics.inter_patient_figures(result)
    assert lifted["classes"] == ["N", "S", "V", "F"] and set(lifted["per_class"]) == {"N", "S", "V", "F"}
    assert lifted["accuracy"] == pytest.approx(0.5) and len(lifted["confusion"]) == 4
    assert lifted["five_class"]["accuracy"] == 1.0 and lifted["train_seconds"] == 1.5
    assert "aami4" not in lifted
    assert metrics.inter_patient_figures(five) is five
