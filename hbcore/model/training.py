"""Training, evaluation and the ``model.tar.gz`` artifact of the heartbeat classifier.

The model is a scikit-learn pipeline (standardisation, then a multi-layer perceptron or a linear
discriminant) over columns of :func:`hbcore.model.inference.features`: the 187-sample window, rhythm
features read off the window itself, the RR intervals, the pre-R segment and the per-patient context
(:mod:`hbcore.data.patient`) when the caller has them. Both estimators are a few matrix products
per batch to serve, far above 20,000 beats/s.

- Intra-patient (unseen beats of known patients): the perceptron on every feature group. On
  MIT-BIH it trains on two views of every training beat: the window of the ``paper`` recipe (the
  benchmark's, 125 Hz) and the ``kaggle`` recipe's (what the published Kaggle rows hold); the
  second view lifts accuracy on real Kaggle rows from about 77 % to about 87 %.
- Inter-patient (unseen patients): what :mod:`hbcore.model.selection` chose by leave-records-out
  cross-validation inside DS1 (:data:`SPLIT_PARAMS`), class-balanced, with the decision rule chosen
  there (``decision_weights``).

Kaggle rows and CSV requests carry no RR intervals, pre-R segment nor context. Rather than a second
estimator, training hides them for a random ``rr_dropout`` share of the beats (their missing flags
set), so one model learns both cases; at inference a beat uses what it has.

``model.tar.gz`` is SageMaker's layout: ``model.npz`` (the fitted scaler's and estimator's arrays,
see :func:`export_arrays` and :func:`hbcore.model.inference.read_model`), ``metadata.json``,
``code/inference.py`` (a copy of :mod:`hbcore.model.inference`, numpy only) and ``code/requirements.txt``
(nothing to install). No pickle: the endpoint runs whatever scikit-learn its container ships, or none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shutil
import tarfile
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hbcore.data.dataset import BeatSet
from hbcore.model import inference, metrics

RR_COLUMNS: tuple[str, ...] = inference.RR_KEYS
METADATA_FILE = "metadata.json"
CODE_DIR = "code"
# code/requirements.txt: the SageMaker container pip-installs it at start-up; inference.py needs only
# numpy, which every scikit-learn container has.
REQUIREMENTS_TEXT = "# code/inference.py needs only numpy, which the SageMaker scikit-learn container has\n"
# Beat-window recipes of hbcore.data.dataset the MIT-BIH model trains on; the first is the benchmark's.
TRAINING_RECIPES: tuple[str, ...] = ("paper", "kaggle")


ESTIMATORS: tuple[str, ...] = ("mlp", "lda", "gbt")
MIN_BALANCED_BEATS = 100
# The trees' weighting spares only classes too small to fill one leaf (scikit-learn's min_samples_leaf,
# 20): the fold of DS1 that tests record 208 trains on 42 F beats, which must still weigh.
MIN_WEIGHTED_BEATS = 20


@dataclass(frozen=True)
class ModelParams:
    """Hyperparameters of the classifier (the defaults are the benchmarked intra-patient ones).

    Training runs ``max_iter`` epochs at ``learning_rate_init``, then ``final_iter`` epochs at
    ``final_learning_rate`` (a step decay: Adam at a constant rate keeps jittering around the
    optimum). Epoch counts are a fixed budget, not a convergence criterion, so training time is
    predictable and two runs on the same data give the same model. ``shifts`` adds copies of the
    training windows moved by that many samples, which teaches invariance to where the R peak
    annotation sits in the window (it differs from patient to patient). ``use_views`` trains on the
    extra views (other window recipes) of the beats when the caller gives them. ``feature_groups``
    are the groups of :data:`hbcore.model.inference.FEATURE_GROUPS` the model reads.
    ``class_balance`` oversamples the rarer classes: class ``k`` of ``n_k`` beats is repeated
    ``(n_max / n_k) ** class_balance`` times (0: as they come, 1: every class as often as N), except
    classes of fewer than :data:`MIN_BALANCED_BEATS` (too few to learn from: DS1 holds 8 Q beats).
    LDA is balanced through its class priors instead, ``n_k ** (1 - class_balance)``: repeating
    beats would distort its pooled covariance.
    ``rr_dropout`` hides, for that share of the beats, everything a Kaggle row lacks: the RR
    intervals, the pre-R segment and the context. ``prior_power`` is the decision rule: the
    probabilities are multiplied by ``(n_k / n_max) ** prior_power`` (training counts), so that 0
    keeps the balanced model's probabilities and 1 brings back the classes' frequencies.
    ``estimator`` is ``"mlp"`` (the perceptron of
    ``hidden_layers``) or ``"lda"`` (linear discriminant analysis, de Chazal 2004's classifier;
    exported as a perceptron without hidden layer, and ``hidden_layers``, ``alpha`` and the epochs
    do not apply) or ``"gbt"`` (gradient-boosted trees, scikit-learn's histogram gradient boosting:
    ``max_iter`` boosting iterations at the shrinkage ``learning_rate_init``, trees of at most
    ``max_leaf_nodes`` leaves and ``max_depth`` levels, no early stopping, so that the budget is
    fixed; balanced through sample weights ``(n_max / n_k) ** class_balance``, the classes of
    fewer than :data:`MIN_WEIGHTED_BEATS` beats weighing 1).
    """

    hidden_layers: tuple[int, ...] = (256, 128)
    max_iter: int = 16
    final_iter: int = 4
    batch_size: int = 256
    alpha: float = 1e-4
    learning_rate_init: float = 1e-3
    final_learning_rate: float = 1e-4
    rr_dropout: float = 0.3
    shifts: tuple[int, ...] = ()
    use_views: bool = True
    seed: int = 0
    feature_groups: tuple[str, ...] = tuple(inference.FEATURE_GROUPS)
    class_balance: float = 0.0
    prior_power: float = 0.0
    estimator: str = "mlp"
    max_depth: int = 4
    max_leaf_nodes: int = 15

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.final_iter < 0:
            raise ValueError(f"max_iter {self.max_iter}, final_iter {self.final_iter}: "
                             "expected at least 1 and 0 epochs")
        if not 0.0 <= self.rr_dropout < 1.0:
            raise ValueError(f"rr_dropout {self.rr_dropout}: expected a share in [0, 1)")
        if not self.hidden_layers or min(self.hidden_layers) < 1:
            raise ValueError(f"hidden_layers {self.hidden_layers}: expected one or more positive sizes")
        if any(abs(shift) >= inference.WINDOW_SAMPLES // 2 for shift in self.shifts) or 0 in self.shifts:
            raise ValueError(f"shifts {self.shifts}: expected non-zero shifts of a few samples")
        unknown = sorted(set(self.feature_groups) - set(inference.FEATURE_GROUPS))
        if unknown or not self.feature_groups:
            raise ValueError(f"feature_groups {self.feature_groups}: expected some of "
                             f"{', '.join(inference.FEATURE_GROUPS)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r}: expected one of {', '.join(ESTIMATORS)}")
        if not 0.0 <= self.prior_power <= 1.0:
            raise ValueError(f"prior_power {self.prior_power}: expected a power in [0, 1]")
        if not 0.0 <= self.class_balance <= 1.0:
            raise ValueError(f"class_balance {self.class_balance}: expected a power in [0, 1]")
        if self.max_depth < 1 or self.max_leaf_nodes < 2:
            raise ValueError(f"max_depth {self.max_depth}, max_leaf_nodes {self.max_leaf_nodes}: "
                             "expected at least 1 level and 2 leaves")

    def feature_columns(self) -> np.ndarray:
        """The columns of :func:`hbcore.model.inference.features` the model reads, in order."""
        groups = [group for group in inference.FEATURE_GROUPS if group in self.feature_groups]
        return np.concatenate([np.asarray(inference.FEATURE_GROUPS[group]) for group in groups]).astype(np.int64)


# The inter-patient model is what `python -m hbcore select-model` chose by leave-records-out
# cross-validation inside DS1 (hbcore.model.selection; the README's "Model selection protocol"), on the
# context version 6 (the long reference and the previous-beat comparisons of hbcore.data.patient):
# candidate "lda-context-pre" (pooled out-of-fold macro-F1 0.576 over N/S/V/F, against 0.565 without
# the pre-R segment, 0.546 and 0.507 for the perceptrons, 0.492 for LDA on the raw window too,
# 0.506-0.515 for the boosted trees) with the decision rule chosen with it (prior_power 0.75), on the
# context of the slow-reference percentile chosen there too (70: 0.576, against 0.573 for 50 and 0.575
# for 85). DS2 played no part.
SPLIT_PARAMS: dict[str, ModelParams] = {
    "intra": ModelParams(),
    "inter": ModelParams(estimator="lda", feature_groups=("window", "rr", "context", "pre"), class_balance=1.0,
                         use_views=False, max_iter=1, final_iter=0, prior_power=0.75),
}
PRESETS: tuple[str, ...] = ("default", "quick")
# The demo's cold start: a model in seconds (lower scores), through the same training code.
QUICK_PARAMS: dict[str, ModelParams] = {
    "intra": ModelParams(hidden_layers=(128,), max_iter=4, final_iter=0, use_views=False),
    "inter": SPLIT_PARAMS["inter"],  # linear discriminant analysis on DS1 takes seconds already
}


def default_params(split: str, preset: str = "default") -> ModelParams:
    """The hyperparameters of a split: ``"default"`` (the benchmarked ones) or ``"quick"`` (≤ 10 s on DS1)."""
    if split not in SPLIT_PARAMS:
        raise ValueError(f"split {split!r}: expected one of {', '.join(SPLIT_PARAMS)}")
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
    return (SPLIT_PARAMS if preset == "default" else QUICK_PARAMS)[split]


@dataclass(frozen=True)
class BeatModel:
    """A trained classifier (the arrays of ``model.npz``) and what is known about how it was made."""

    arrays: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.arrays["version"])

    @property
    def uses_rr(self) -> bool:
        return bool(self.arrays["uses_rr"])

    def payload(self) -> dict:
        """What :func:`hbcore.model.inference.model_fn` returns for this model."""
        return inference.read_model(self.arrays, f"model {self.version}")


def rr_of(beats: BeatSet) -> np.ndarray:
    """The ``(n, 3)`` RR intervals of a beat set in seconds (NaN where unknown)."""
    return beats.meta[list(RR_COLUMNS)].to_numpy(dtype=np.float32)


def _sklearn_version() -> str:
    """scikit-learn's version, for a trained model's metadata (it is imported by then: make_estimator)."""
    import sklearn

    return sklearn.__version__


def import_estimators() -> None:
    """Import what fitting a model needs (scikit-learn, ~1.3 s), ahead of a training that is coming: the
    home page does it in the background when the demo will train, so that its click waits for none of it."""
    make_estimator(ModelParams())
    import sklearn.exceptions  # noqa: F401 (the fit's warning filter)


def make_estimator(params: ModelParams):
    """The untrained pipeline: standardisation, then the perceptron or the discriminant analysis;
    the boosted trees alone (a split reads the feature's order only).

    scikit-learn is imported here and in the fit, not with the module (1.3 s): the app's cached demo,
    the model store and inference (hbcore.model.inference: numpy alone) need none of it.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if params.estimator == "lda":
        return make_pipeline(StandardScaler(), LinearDiscriminantAnalysis())
    if params.estimator == "gbt":
        return make_pipeline(HistGradientBoostingClassifier(
            max_iter=params.max_iter, learning_rate=params.learning_rate_init, max_depth=params.max_depth,
            max_leaf_nodes=params.max_leaf_nodes, early_stopping=False, random_state=params.seed))
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=params.hidden_layers,
            alpha=params.alpha,
            batch_size=params.batch_size,
            learning_rate_init=params.learning_rate_init,
            max_iter=params.max_iter,
            random_state=params.seed,
        ),
    )


def shifted_windows(beats: np.ndarray, shift: int) -> np.ndarray:
    """Windows whose content is moved ``shift`` samples earlier (later when negative).

    The window keeps its length (the zero padding stays where it was); the samples that come in
    at an edge repeat the edge sample.
    """
    lengths = inference.window_lengths(beats)[:, None]
    positions = np.arange(beats.shape[1])[None, :]
    moved = np.take_along_axis(beats, np.clip(positions + shift, 0, np.maximum(lengths - 1, 0)), axis=1)
    moved[positions >= lengths] = 0.0
    return moved


def balanced_rows(labels: np.ndarray, power: float, seed: int) -> np.ndarray:
    """Row indices that repeat class ``k`` ``(n_max / n_k) ** power`` times (the remainder drawn at random)."""
    if power == 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels.astype(np.int64))
    rows = []
    for label in np.flatnonzero(counts):
        members = np.flatnonzero(labels == label)
        factor = (counts.max() / counts[label]) ** power if counts[label] >= MIN_BALANCED_BEATS else 1.0
        total = round(len(members) * factor)
        rows += [np.tile(members, total // len(members)), rng.choice(members, total % len(members), replace=False)]
    return np.sort(np.concatenate(rows))


def balanced_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """A weight per beat, ``(n_max / n_k) ** power`` of its class (1 for classes of fewer than
    :data:`MIN_WEIGHTED_BEATS` beats): :func:`balanced_rows` without repeating any row."""
    counts = np.bincount(labels.astype(np.int64)).astype(np.float64)
    factors = np.where(counts >= MIN_WEIGHTED_BEATS, (counts.max() / np.maximum(counts, 1)) ** power, 1.0)
    return factors[labels.astype(np.int64)]


def training_set(views: list[BeatSet], params: ModelParams) -> tuple[np.ndarray, np.ndarray, bool]:
    """Features and labels of every view and shifted copy, the rare classes repeated; for a random
    share of them what Kaggle rows lack hidden (RR, pre-R segment, context).

    Returns ``(features, labels, uses_rr)``; a training set without any RR interval (Kaggle rows)
    makes a wave-only model.
    """
    rr = rr_of(views[0])
    uses_rr = bool(np.isfinite(rr).any())
    windows = [view.X for view in views]
    pre = [view.pre for view in views]
    context = [view.context for view in views]
    for shift in params.shifts:
        windows += [shifted_windows(view.X, shift) for view in views]
        pre += [view.pre for view in views]
        context += [view.context for view in views]
    rr = np.vstack([rr] * len(windows))
    labels = np.concatenate([views[0].y] * len(windows))
    # LDA and the trees are balanced by priors and sample weights instead (fit_estimator).
    rows = balanced_rows(labels, params.class_balance if params.estimator == "mlp" else 0.0, params.seed)
    X, rr, labels = np.vstack(windows)[rows], rr[rows], labels[rows]
    pre_rows, context_rows = np.vstack(pre)[rows], np.vstack(context)[rows]
    if uses_rr:
        hidden = np.random.default_rng(params.seed).random(len(rr)) < params.rr_dropout
        rr[hidden], pre_rows[hidden], context_rows[hidden] = np.nan, np.nan, np.nan
    x = inference.features(X, rr, pre_rows, context_rows)[:, params.feature_columns()]
    return np.ascontiguousarray(x), labels, uses_rr


def fit_estimator(features: np.ndarray, labels: np.ndarray, params: ModelParams):
    """The fitted pipeline: ``max_iter`` epochs, then ``final_iter`` at the lower learning rate."""
    estimator = make_estimator(params)
    if params.estimator == "lda":
        counts = np.bincount(labels.astype(np.int64))
        priors = counts[counts > 0].astype(np.float64) ** (1.0 - params.class_balance)
        estimator[-1].set_params(priors=priors / priors.sum())
    fit_params = {}
    if params.estimator == "gbt":
        fit_params[f"{estimator.steps[-1][0]}__sample_weight"] = balanced_weights(labels, params.class_balance)
    # One BLAS thread: the perceptron's matrices (a batch of 256 beats) are too small for two
    # threads to pay; on this 2-core box one thread trains 3-4 times faster when anything else runs.
    # One OpenMP thread for the trees likewise: on the busy 2-core box one DS1 cross-validation of the
    # small trees took 17 s with one thread, 116 s with two.
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn where a model is fitted (see make_estimator)
    from threadpoolctl import threadpool_limits

    assert inference.BLAS is not None, "threadpoolctl comes with scikit-learn, so wherever hbcore trains"
    with (warnings.catch_warnings(), inference.BLAS.limit(limits=1, user_api="blas"),
          threadpool_limits(limits=1, user_api="openmp")):  # scans the libraries loaded by now
        # The epoch budget is fixed on purpose; the perceptron warns that it could go on.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        estimator.fit(features, labels, **fit_params)
        if params.final_iter and params.estimator == "mlp":
            scaler, network = estimator[0], estimator[-1]
            network.set_params(warm_start=True, max_iter=params.final_iter,
                               learning_rate_init=params.final_learning_rate)
            network.fit(scaler.transform(features), labels)
            network.set_params(warm_start=False, max_iter=params.max_iter, learning_rate_init=params.learning_rate_init)
    return estimator


def scaler_arrays(scaler) -> tuple[np.ndarray, np.ndarray]:
    """The scaler's mean and scale, in the dtype its ``transform`` subtracts and divides float32 in.

    scikit-learn 1.4 subtracts the float64 mean from float32 features, later releases first cast
    the mean to float32; the last bits of the scaled features differ. Which one the installed
    release does is read off a probe, so that :func:`hbcore.model.inference.forward` reproduces it.
    """
    mean, scale = np.asarray(scaler.mean_), np.asarray(scaler.scale_)
    probe = (mean + scale * np.random.default_rng(0).normal(size=(64, mean.size))).astype(np.float32)
    expected = scaler.transform(probe)

    def error(dtype: type) -> float:
        scaled = probe.copy()  # float32, scaled in place as inference.forward does
        scaled -= mean.astype(dtype)
        scaled /= scale.astype(dtype)
        return float(np.abs(scaled - expected).max())

    dtype = min((np.float32, np.float64), key=error)
    return mean.astype(dtype), scale.astype(dtype)


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 hex of the arrays' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{value.dtype.str}:{value.shape}:".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def decision_weights(labels: np.ndarray, classes: np.ndarray, prior_power: float) -> np.ndarray:
    """``(n_k / n_max) ** prior_power`` of each class in ``classes``, from the training ``labels``."""
    counts = np.array([(labels == label).sum() for label in classes], dtype=np.float64)
    return (counts / counts.max()) ** prior_power


def tree_arrays(boosting) -> dict[str, np.ndarray]:
    """A fitted ``HistGradientBoostingClassifier`` as the complete binary trees of ``model.npz``
    (:func:`hbcore.model.inference.read_model`): each tree laid out breadth-first to the depth of
    the deepest leaf, a shallower leaf padded with +inf thresholds (every beat goes left) and its
    value copied to the bottom leaves below it."""
    predictors = [tree for iteration in boosting._predictors for tree in iteration]
    depth = max(int(tree.nodes["depth"].max()) for tree in predictors)
    n_nodes = 2 ** depth - 1
    feature = np.zeros((len(predictors), n_nodes), dtype=np.int64)
    threshold = np.full((len(predictors), n_nodes), np.inf)
    value = np.zeros((len(predictors), n_nodes + 1))
    for t, tree in enumerate(predictors):
        nodes = tree.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits cannot be exported: the features are all numerical")
        stack = [(0, 0)]  # (node of the scikit-learn tree, position in the complete tree)
        while stack:
            index, position = stack.pop()
            node = nodes[index]
            if not node["is_leaf"]:
                feature[t, position], threshold[t, position] = node["feature_idx"], node["num_threshold"]
                stack += [(int(node["left"]), 2 * position + 1), (int(node["right"]), 2 * position + 2)]
                continue
            low = high = position  # the bottom leaves below this position: a run [low, high]
            while low < n_nodes:
                low, high = 2 * low + 1, 2 * high + 2
            value[t, low - n_nodes:high - n_nodes + 1] = node["value"]
    outputs = boosting.n_trees_per_iteration_
    return {"tree_feature": feature, "tree_threshold": threshold, "tree_value": value,
            "tree_output": np.tile(np.arange(outputs, dtype=np.int64), len(boosting._predictors)),
            "tree_baseline": np.asarray(boosting._baseline_prediction, dtype=np.float64).ravel()}


def export_arrays(estimator, uses_rr: bool, created_at: datetime, feature_columns: np.ndarray | None = None,
                  weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The fitted pipeline as the plain arrays of ``model.npz`` (:func:`hbcore.model.inference.read_model`).

    The version is ``<UTC time>-<8 hex of the arrays>``: sortable, and distinct for distinct models.
    ``feature_columns`` default to every column of :func:`hbcore.model.inference.features`,
    ``weights`` (the decision rule) to ones.
    """
    scaler, network = estimator[0], estimator[-1]
    if feature_columns is None:
        feature_columns = np.arange(inference.N_FEATURES)
    if weights is None:
        weights = np.ones(len(network.classes_))
    arrays = {
        "format": np.array(inference.MODEL_FORMAT),
        "feature_version": np.array(inference.FEATURE_VERSION),
        "uses_rr": np.array(uses_rr),
        "feature_columns": np.asarray(feature_columns, dtype=np.int64),
        "decision_weights": np.asarray(weights, dtype=np.float64),
        "classes": np.asarray(network.classes_, dtype=np.int64),
    }
    if hasattr(network, "_predictors"):  # the boosted trees: no scaler, no layers
        two_classes = len(network.classes_) == 2
        arrays |= tree_arrays(network) | {"out_activation": np.array("logistic" if two_classes else "softmax")}
        version = f"{created_at:%Y%m%dT%H%M%SZ}-{arrays_digest(arrays)[:8]}"
        return arrays | {"version": np.array(version)}
    mean, scale = scaler_arrays(scaler)
    arrays |= {"scaler_mean": mean, "scaler_scale": scale}
    if hasattr(network, "coefs_"):  # the perceptron
        arrays |= {"activation": np.array(network.activation), "out_activation": np.array(network.out_activation_)}
        layers = list(zip(network.coefs_, network.intercepts_))
    else:  # LDA: predict_proba is softmax(x @ coef.T + intercept) (the logistic for two classes), one layer
        two_classes = len(network.classes_) == 2  # then coef_ is one row and predict_proba the logistic
        arrays |= {"activation": np.array("identity"),
                   "out_activation": np.array("logistic" if two_classes else "softmax")}
        layers = [(np.ascontiguousarray(network.coef_.T), network.intercept_)]
    for i, (coef, intercept) in enumerate(layers):
        arrays[f"coef_{i}"], arrays[f"intercept_{i}"] = coef, intercept
    version = f"{created_at:%Y%m%dT%H%M%SZ}-{arrays_digest(arrays)[:8]}"
    return arrays | {"version": np.array(version)}


def train_model(train: BeatSet, params: ModelParams | None = None, views: Sequence[BeatSet] = (),
                **info: object) -> BeatModel:
    """Fit the classifier on ``train``; ``info`` is recorded in the metadata (split, source...).

    ``views`` are the same beats cut another way (e.g. the ``kaggle`` recipe's windows), row for
    row; they are trained on as extra examples. Beats without any RR interval (Kaggle rows) train a
    wave-only model whose predictions ignore RR intervals given at inference, since it never
    learnt what they mean.
    """
    params = params or ModelParams()
    if len(train) == 0:
        raise ValueError("no beats to train on")
    if (train.y < 0).any():
        raise ValueError(f"{int((train.y < 0).sum())} training beats have no label")
    for view in views:
        if len(view) != len(train) or not np.array_equal(view.y, train.y):
            raise ValueError(f"a training view must hold the same {len(train)} beats as the training set")
    started = time.perf_counter()
    features, labels, uses_rr = training_set([train, *views] if params.use_views else [train], params)
    estimator = fit_estimator(features, labels, params)
    train_seconds = time.perf_counter() - started
    created_at = datetime.now(timezone.utc)
    metadata = {
        "created_at": created_at.isoformat(timespec="seconds"),
        "train_seconds": round(train_seconds, 3),
        "n_train": len(train),
        "n_train_windows": len(labels),
        "train_class_counts": train.class_counts(),
        "params": dataclasses.asdict(params),
        "uses_rr": uses_rr,
        "feature_version": inference.FEATURE_VERSION,
        "model_format": inference.MODEL_FORMAT,
        "sklearn_version": _sklearn_version(),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        **info,
    }
    weights = decision_weights(train.y, estimator[-1].classes_, params.prior_power)
    arrays = export_arrays(estimator, uses_rr, created_at, params.feature_columns(), weights)
    return BeatModel(arrays, metadata | {"version": str(arrays["version"])})


def predict_proba(model: BeatModel, beats: np.ndarray, rr: np.ndarray | None = None,
                  pre: np.ndarray | None = None, context: np.ndarray | None = None) -> np.ndarray:
    """``(n, 5)`` class probabilities, computed exactly as the endpoint computes them."""
    data = {"beats": np.asarray(beats, dtype=np.float32), "rr": rr, "pre": pre, "context": context}
    return inference.predict_fn(data, model.payload())["probabilities"]


def predict(model: BeatModel, beats: np.ndarray, rr: np.ndarray | None = None,
            pre: np.ndarray | None = None, context: np.ndarray | None = None) -> np.ndarray:
    """The most probable class (0..4) of each beat."""
    return predict_proba(model, beats, rr, pre, context).argmax(axis=1)


def beat_proba(model: BeatModel, beats: BeatSet, use_rr: bool = True) -> np.ndarray:
    """The probabilities of a beat set's beats, with everything it carries (nothing but the
    windows when ``use_rr`` is False: as a CSV request is served)."""
    if not use_rr:
        return predict_proba(model, beats.X)
    return predict_proba(model, beats.X, rr_of(beats), beats.pre, beats.context)


def evaluate_model(model: BeatModel, test: BeatSet, use_rr: bool = True) -> dict:
    """Five-class figures on ``test``, plus ``aami4`` (N, S, V, F; de Chazal's convention)."""
    probabilities = beat_proba(model, test, use_rr)
    result = metrics.evaluate(test.y, probabilities.argmax(axis=1))
    result["aami4"] = metrics.evaluate_aami4(test.y, probabilities)
    return result


def split_index(beats: BeatSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) of ``beats`` by the named split."""
    from hbcore.data import splits

    if split == "intra":
        return splits.intra_patient_index(beats.y)
    if split == "inter":
        return splits.inter_patient_index(beats.meta["record"].to_numpy())
    raise ValueError(f"split {split!r}: expected one of {', '.join(SPLIT_PARAMS)}")


def evaluation_summary(figures: dict, split: str | None, test: BeatSet) -> dict:
    """What a user is shown of a model's offline test: the split, its test records, accuracy,
    macro-F1 and each class's sensitivity (over N, S, V, F for an inter-patient split)."""
    inter = split is not None and split != "intra" and "aami4" in figures
    shown = figures["aami4"] if inter else figures
    se = {name: stats["se"] for name, stats in shown["ec57"].items()} if "ec57" in shown else {
        name: stats.get("recall") for name, stats in shown.get("per_class", {}).items()}
    return {"split": split, "test_records": sorted(set(test.meta["record"].astype(str))),
            "classes": "N/S/V/F" if inter else "N/S/V/F/Q", "accuracy": shown["accuracy"],
            "macro_f1": shown["macro_f1"], "se": se}


def fit_and_evaluate(train: BeatSet, test: BeatSet, params: ModelParams | None = None,
                     views: Sequence[BeatSet] = (), **info: object) -> BeatModel:
    """Train on ``train`` (and its ``views``); the figures on ``test`` go into the model's metadata."""
    model = train_model(train, params, views, **info)
    figures = evaluate_model(model, test)
    split = info.get("split")
    metadata = model.metadata | {"metrics": figures, "n_test": len(test),
                                 "evaluation": evaluation_summary(figures, None if split is None else str(split), test)}
    return dataclasses.replace(model, metadata=metadata)


def train_and_evaluate(beats: BeatSet, split: str = "intra", params: ModelParams | None = None,
                       views: Sequence[BeatSet] = (), **info: object) -> BeatModel:
    """Train on the named split's training part, evaluate on its test part of ``beats``.

    ``views`` are the same beats cut another way; only their training rows are used.
    """
    train_index, test_index = split_index(beats, split)
    return fit_and_evaluate(beats.subset(train_index), beats.subset(test_index), params or default_params(split),
                            [view.subset(train_index) for view in views], split=split, **info)


def write_model_dir(model: BeatModel, folder: Path | str) -> Path:
    """Write the members of ``model.tar.gz`` as plain files (what ``SM_MODEL_DIR`` must hold)."""
    folder = Path(folder)
    (folder / CODE_DIR).mkdir(parents=True, exist_ok=True)
    # numpy's stub: mypy matches the **arrays against allow_pickle: bool too (numpy 1.26, which trains
    # in the container, has no such keyword, so it cannot be passed to tell mypy it is taken).
    np.savez_compressed(folder / inference.MODEL_FILE, **model.arrays)  # type: ignore[arg-type]
    (folder / METADATA_FILE).write_text(json.dumps(model.metadata, indent=2) + "\n")
    shutil.copyfile(inference.__file__, folder / CODE_DIR / "inference.py")
    (folder / CODE_DIR / "requirements.txt").write_text(REQUIREMENTS_TEXT)
    return folder


def write_model_tar(model: BeatModel, path: Path | str) -> Path:
    """Write ``model.tar.gz`` in SageMaker's layout (members at the top, no leading ``./``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        folder = write_model_dir(model, staging)
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for member in sorted(p for p in folder.rglob("*") if p.is_file()):
                tar.add(member, arcname=member.relative_to(folder).as_posix())
        partial.replace(path)
    return path


def load_model(path: Path | str) -> BeatModel:
    """Read a ``model.tar.gz`` (or an extracted model folder) as the endpoint's ``model_fn`` does.

    A model of an earlier release (a scikit-learn pickle) raises ``ValueError`` saying to retrain it.
    """
    path = Path(path)
    if path.is_dir():
        return _read_model_dir(path, str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    with tempfile.TemporaryDirectory() as folder:
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(folder, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(f"{path}: not a model.tar.gz ({error})") from error
        return _read_model_dir(Path(folder), str(path))


def _read_model_dir(folder: Path, name: str) -> BeatModel:
    arrays = inference.load_arrays(str(folder), name)
    inference.read_model(arrays, name)
    metadata_path = folder / METADATA_FILE
    try:
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    except ValueError as error:
        raise ValueError(f"{name}: {METADATA_FILE} is not JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{name}: {METADATA_FILE} holds a {type(metadata).__name__}, expected an object")
    return BeatModel(arrays, metadata)


def load_training_beats(csv_paths: Sequence[str] = (), mitdb: str | None = None) -> tuple[BeatSet, list[BeatSet]]:
    """The beats to train on and their extra views.

    Kaggle-format CSV rows when ``csv_paths`` are given (no extra view); else the MIT-BIH rebuild
    in the benchmark's ``paper`` recipe, with the ``kaggle`` recipe's windows of the same beats
    as an extra view, so that the model also reads rows cut the way the published Kaggle CSVs are.
    """
    from hbcore.data.dataset import concatenate, load_beats

    if csv_paths:
        from hbcore.data.kaggle import load_kaggle_csv

        return concatenate(load_kaggle_csv(path) for path in csv_paths), []
    beats, *views = [load_beats(mitdb, recipe=recipe) for recipe in TRAINING_RECIPES]
    return beats, views


def summary(model: BeatModel) -> dict:
    """The JSON the ``train`` and ``evaluate`` commands print: figures first, then provenance."""
    return {**model.metadata.get("metrics", {}), "train_seconds": model.metadata.get("train_seconds"),
            "version": model.version, "split": model.metadata.get("split"),
            "n_train": model.metadata.get("n_train"), "n_test": model.metadata.get("n_test"),
            "preset": model.metadata.get("preset"), "evaluation": model.metadata.get("evaluation")}


def run_train(split: str | None = None, csv: Sequence[str] = (), mitdb: str | None = None,
              out: Path | str = "model.tar.gz", max_iter: int | None = None, preset: str = "default",
              seed: int | None = None, train_records: Sequence[str] = (), test_records: Sequence[str] = ()) -> dict:
    """``python -m hbcore train``: train on a split, write ``model.tar.gz``, return its test figures.

    ``split`` is "intra" unless given. ``preset`` picks the split's parameters (:func:`default_params`);
    ``max_iter`` overrides their epochs, ``seed`` their seed. ``train_records`` with ``test_records``
    is the inter-patient recipe on any two disjoint lists of MIT-BIH records instead of ``split``.
    The figures name their source (CSV files or the MIT-BIH recipes, and the records) so that a
    reader can tell runs apart.
    """
    if train_records or test_records:
        _check_record_split(train_records, test_records, split, csv, mitdb)
    split = "inter" if train_records else split or "intra"
    params = default_params(split, preset)
    if max_iter is not None:
        params = dataclasses.replace(params, max_iter=max_iter)
    if seed is not None:
        params = dataclasses.replace(params, seed=seed)
    beats, views = load_training_beats(csv, mitdb)
    if train_records:
        from hbcore.data import splits

        records = {"train_records": list(train_records), "test_records": list(test_records)}
        train, test = splits.records_index(beats.meta["record"].to_numpy(), train_records, test_records)
        model = fit_and_evaluate(beats.subset(train), beats.subset(test), params,
                                 [view.subset(train) for view in views], split="records", source="mitdb",
                                 preset=preset, **records)
        return summary(model) | records | {"model": str(write_model_tar(model, out))}
    if csv:
        source = {"source": "kaggle-csv", "csv": [Path(path).name for path in csv]}
    else:
        source = {"source": "mitdb", "recipes": list(TRAINING_RECIPES if params.use_views else TRAINING_RECIPES[:1])}
    model = train_and_evaluate(beats, split, params, views, preset=preset, **source)
    path = write_model_tar(model, out)
    return summary(model) | {"model": str(path)}


def _check_record_split(train_records: Sequence[str], test_records: Sequence[str], split: str | None,
                        csv: Sequence[str], mitdb: str | None) -> None:
    """Both record lists, no other split, names the folder holds: a typo is said before minutes of loading."""
    from hbcore.data import dataset, splits

    if not (train_records and test_records):
        raise ValueError("--train-records and --test-records go together: name the records of both parts")
    if split or csv:
        raise ValueError("--train-records/--test-records choose the split themselves: drop --split and --csv")
    splits.check_records(train_records, test_records, dataset.list_records(dataset.resolve_mitdb_dir(mitdb)))


def run_evaluate(model_path: Path | str, csv_path: Path | str) -> dict:
    """``python -m hbcore evaluate``: a ``model.tar.gz``'s figures on a Kaggle-format CSV.

    Kaggle rows carry no RR intervals, so the model is scored as it serves CSV requests (``use_rr=False``).
    """
    from hbcore.data.kaggle import load_kaggle_csv

    model = load_model(model_path)
    beats = load_kaggle_csv(csv_path)
    figures = evaluate_model(model, beats, use_rr=False)
    return {**figures, "train_seconds": model.metadata.get("train_seconds"), "version": model.version,
            "n_test": len(beats), "model": str(model_path), "csv": str(csv_path)}
