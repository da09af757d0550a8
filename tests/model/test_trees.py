"""Gradient-boosted trees exported to model.npz: numpy's walk down the complete trees gives
scikit-learn's probabilities, and a malformed tree is named."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from hbcore.model import inference, training

N_COLUMNS = 12


def structured_data(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features whose class depends on two columns (so the trees split) plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_COLUMNS)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] * (x[:, 2] > 0) + 0.3 * rng.normal(size=n)
    labels = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return x, labels.astype(np.int64)


def fitted(x: np.ndarray, labels: np.ndarray, **changes) -> tuple[object, dict]:
    """The fitted scikit-learn pipeline and its served model dict."""
    params = training.ModelParams(estimator="gbt", max_iter=25, learning_rate_init=0.2, class_balance=1.0,
                                  max_depth=4, max_leaf_nodes=9, **changes)
    estimator = training.fit_estimator(x, labels, params)
    arrays = training.export_arrays(estimator, True, datetime.now(UTC), np.arange(N_COLUMNS))
    return estimator, inference.read_model(arrays, "test trees") | {"arrays": arrays}


@pytest.mark.parametrize("classes", [5, 3, 2])
def test_served_trees_give_scikit_learns_probabilities(classes):
    x, labels = structured_data(3000, classes)
    estimator, model = fitted(x, labels)
    test, _ = structured_data(2500, classes, seed=1)  # more than one TREE_BATCH_BEATS block

    served = inference.forward(model, test.copy())

    np.testing.assert_allclose(served, estimator.predict_proba(test), rtol=0, atol=1e-9)


def test_a_leaf_shallower_than_the_deepest_is_padded_and_still_reached():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, N_COLUMNS)).astype(np.float32)
    # Pure on the left of x0 = 0 (a leaf at depth 1); the right side splits on x1, then on x2.
    labels = np.where(x[:, 0] < 0, 0, np.where(x[:, 1] < 0, 1, np.where(x[:, 2] < 0, 2, 1)))
    estimator, model = fitted(x, labels)

    assert np.isinf(model["arrays"]["tree_threshold"]).any()
    np.testing.assert_allclose(inference.forward(model, x.copy()), estimator.predict_proba(x), rtol=0, atol=1e-9)


def test_sample_weights_balance_the_classes_except_the_tiny_ones():
    labels = np.array([0] * 1000 + [1] * 25 + [2] * 5)

    weights = training.balanced_weights(labels, 1.0)

    assert weights[0] == 1.0 and weights[1000] == 40.0 and weights[-1] == 1.0
    np.testing.assert_array_equal(training.balanced_weights(labels, 0.0), np.ones(len(labels)))


def test_a_boosted_model_predicts_through_the_endpoints_hooks(tmp_path):
    x, labels = structured_data(2000, 4)
    estimator, model = fitted(x, labels)
    np.savez(tmp_path / inference.MODEL_FILE, **model["arrays"])

    loaded = inference.model_fn(str(tmp_path))

    assert "trees" in loaded and "layers" not in loaded
    np.testing.assert_allclose(inference.forward(loaded, x[:50].copy()), estimator.predict_proba(x[:50]),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize(("changes", "message"), [
    (lambda a: a | {"tree_value": a["tree_value"][:, :-1]}, "complete binary trees"),
    (lambda a: a | {"tree_feature": a["tree_feature"] + N_COLUMNS}, "tree_feature must index"),
    (lambda a: a | {"tree_output": a["tree_output"] + 10}, "tree_output must index"),
    (lambda a: {k: v for k, v in a.items() if k != "tree_baseline"}, "no 'tree_baseline'"),
])
def test_inconsistent_tree_arrays_are_named(changes, message):
    x, labels = structured_data(1000, 3)
    _, model = fitted(x, labels)

    with pytest.raises(ValueError, match=message):
        inference.read_model(changes(model["arrays"]), "bad trees")


@pytest.mark.parametrize("changes", [{"max_depth": 0}, {"max_leaf_nodes": 1}])
def test_trees_without_a_split_are_refused(changes):
    with pytest.raises(ValueError, match="max_depth"):
        training.ModelParams(estimator="gbt", **changes)
