"""The SageMaker inference module: beat features, and the four hooks of the scikit-learn container.

This file is self-contained (standard library and numpy; threadpoolctl when present) because it
travels as ``code/inference.py`` inside ``model.tar.gz``: the SageMaker SKLearn container imports
it by file, and so does the local endpoint server. It must run there as it is: Python 3.10 and
numpy 1.26 or 2.x (the 1.4-2 container's), whatever scikit-learn the container ships. So the model
is not a scikit-learn pickle but its arrays (``model.npz``, see :func:`read_model`), and
:func:`predict_fn` runs the perceptron's forward pass in numpy, operation for operation as
scikit-learn's ``predict_proba`` does, or walks the boosted trees (:func:`tree_outputs`). Training
imports :func:`features` from here, so the features a model was trained on are, by construction,
the ones its endpoint computes.

Request bodies (docs/ARCHITECTURE.md, "Inference contract"):

- ``text/csv``: one beat per line, 187 values (the original project's format) or 188 (the last is
  a label and is ignored). No RR intervals.
- ``application/json``: ``{"instances": [{"beat": [187 floats], "rr_prev_s": f, "rr_next_s": f,
  "rr_local_s": f, "pre": [36 floats], "context": [18 floats or nulls]}, ...]}`` with every key but
  ``beat`` optional (null = unknown), or a bare list of 187-float lists. ``pre`` is the pre-R
  segment (the P wave), ``context`` the beat against its patient's past (``hbcore.data.patient``,
  computed where the patient's earlier beats are known: on the monitor's side of the stream).

Bad input raises ``ValueError`` naming the line or instance and the reason; servers map it to
HTTP 400.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from typing import Any

import numpy as np

try:  # a scikit-learn dependency: in every SageMaker scikit-learn container, and wherever hbcore trains
    from threadpoolctl import ThreadpoolController
except ImportError:  # serving then runs with numpy's default BLAS threads
    ThreadpoolController = None

# One BLAS thread per prediction: a request's matrices are small, and handing them to a second
# thread costs more than it saves whenever the machine has other work (measured on 2 cores with
# both busy: 1.4 ms instead of 5 ms per 500 beats). Made once: it scans the loaded libraries.
BLAS = ThreadpoolController() if ThreadpoolController else None

CLASS_NAMES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
WINDOW_SAMPLES = 187
WINDOW_FS_HZ = 125
WINDOW_RR_FACTOR = 1.2
RR_KEYS: tuple[str, ...] = ("rr_prev_s", "rr_next_s", "rr_local_s")
PRE_KEY = "pre"
CONTEXT_KEY = "context"
PRE_R_SAMPLES = 36  # hbcore.data.dataset.PRE_R_SAMPLES
N_CONTEXT = 18  # len(hbcore.data.patient.CONTEXT_NAMES)
# Context features that are ratios of RR intervals (the first ones, hbcore.data.patient.RR_RATIOS):
# the model reads their logarithm.
CONTEXT_RATIOS = 7
# Beat windows are min-max scaled to [0, 1]; rounding and float formatting may step a hair outside.
VALUE_TOLERANCE = 1e-3
# RR intervals the endpoint accepts, in seconds. MIT-BIH itself holds 'RR' gaps up to 100 s (record
# 207, across unannotated ventricular flutter) and the model trains on them; 200 s admits those and
# still refuses milliseconds sent as seconds (any RR of 0.2 s or more). lambda_function.py applies
# the same rule, so a record the endpoint would refuse is rejected alone instead of failing its batch.
RR_MAX_S = 200.0
# Refractory time after the R peak before a following R peak can appear in the window.
NEXT_PEAK_MIN_S = 0.3
MODEL_FILE = "model.npz"
# What earlier releases wrote instead: a scikit-learn pickle, named here only to say so clearly.
PICKLE_MODEL_FILE = "model.joblib"
# Bump when features() changes: a model trained on other features must not load.
FEATURE_VERSION = 3
# Bump when the arrays of model.npz change meaning.
MODEL_FORMAT = 2
JSON = "application/json"
CSV = "text/csv"


def window_lengths(beats: np.ndarray) -> np.ndarray:
    """Samples before the zero padding of each window (187 when the window was cut, not padded).

    The window of a beat is 1.2 × the median RR of its 10-second window long, so this length is a
    heart-rate estimate that Kaggle rows carry even though they hold no RR intervals.
    """
    nonzero = beats[:, ::-1] != 0
    return WINDOW_SAMPLES - nonzero.argmax(axis=1)


def rr_features(rr: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """RR intervals in seconds, their log ratios, and a missing flag per interval.

    Unknown intervals (NaN) become 0 with the flag set, except the local RR, which falls back on
    the estimate from the window length when the window was padded rather than cut.
    """
    rr = np.array(rr, dtype=np.float64, copy=True)
    missing = ~np.isfinite(rr)
    estimate = np.where(lengths < WINDOW_SAMPLES, lengths / (WINDOW_FS_HZ * WINDOW_RR_FACTOR), np.nan)
    local = np.where(missing[:, 2], estimate, rr[:, 2])
    previous, following = rr[:, 0], rr[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.log(np.column_stack([previous / local, following / local, previous / following]))
    values = np.column_stack([previous, following, local, ratios])
    values[~np.isfinite(values)] = 0.0
    return np.column_stack([values, missing]).astype(np.float32)


def window_features(beats: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Window length, whether it was cut, and the position and height of the next R peak.

    The next R peak is the highest sample after a refractory time: when the next beat comes
    within the window (a short next RR) it shows, which is what Kaggle rows have instead of RR.
    """
    start = int(NEXT_PEAK_MIN_S * WINDOW_FS_HZ)
    tail = beats[:, start:]
    peak = tail.argmax(axis=1)
    return np.column_stack([
        lengths / WINDOW_FS_HZ,
        lengths >= WINDOW_SAMPLES,
        (peak + start) / WINDOW_FS_HZ,
        tail.max(axis=1),
    ]).astype(np.float32)


def context_features(context: np.ndarray) -> np.ndarray:
    """The context features (log of the RR ratios) with unknown values 0, then a missing flag per value."""
    values = np.array(context, dtype=np.float64, copy=True)
    missing = ~np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        values[:, :CONTEXT_RATIOS] = np.log(np.clip(values[:, :CONTEXT_RATIOS], 1e-2, 1e2))
    values[missing] = 0.0
    return np.column_stack([values, missing]).astype(np.float32)


def pre_features(pre: np.ndarray) -> np.ndarray:
    """The pre-R segment with unknown values 0, and a flag: no segment."""
    values = np.array(pre, dtype=np.float32, copy=True)
    missing = ~np.isfinite(values).all(axis=1)
    values[~np.isfinite(values)] = 0.0
    return np.column_stack([values, missing]).astype(np.float32)


def _unknown(n: int, width: int) -> np.ndarray:
    return np.full((n, width), np.nan, dtype=np.float32)


def features(beats: np.ndarray, rr: np.ndarray | None = None, pre: np.ndarray | None = None,
             context: np.ndarray | None = None) -> np.ndarray:
    """Every feature a model may read (:data:`FEATURE_GROUPS` names their columns).

    ``beats`` is ``(n, 187)`` in [0, 1]; ``rr`` is ``(n, 3)`` seconds (previous, next, local mean
    RR), ``pre`` ``(n, 36)`` the pre-R segments, ``context`` ``(n, 18)`` the per-patient context;
    NaN where unknown, or None when no beat has them (Kaggle rows, CSV requests).
    """
    beats = np.asarray(beats, dtype=np.float32)
    if beats.ndim != 2 or beats.shape[1] != WINDOW_SAMPLES:
        raise ValueError(f"beats must have shape (n, {WINDOW_SAMPLES}), got {beats.shape}")
    n = len(beats)
    parts = {}
    for name, value, width in (("rr", rr, len(RR_KEYS)), ("pre", pre, PRE_R_SAMPLES), ("context", context, N_CONTEXT)):
        value = _unknown(n, width) if value is None else np.asarray(value, dtype=np.float32)
        if value.shape != (n, width):
            raise ValueError(f"{name} must have shape ({n}, {width}), got {value.shape}")
        parts[name] = value
    lengths = window_lengths(beats)
    return np.hstack([beats, window_features(beats, lengths), rr_features(parts["rr"], lengths),
                      context_features(parts["context"]), pre_features(parts["pre"])])


def _group_columns() -> dict[str, range]:
    widths = {"wave": WINDOW_SAMPLES, "window": 4, "rr": 3 * len(RR_KEYS), "context": 2 * N_CONTEXT,
              "pre": PRE_R_SAMPLES + 1}
    groups, start = {}, 0
    for name, width in widths.items():
        groups[name] = range(start, start + width)
        start += width
    return groups


# The columns of :func:`features`, by group: the window itself, what the window says of the rhythm,
# the RR intervals, the per-patient context, the pre-R segment. A model reads the columns it was
# trained on (``feature_columns`` of model.npz).
FEATURE_GROUPS: dict[str, range] = _group_columns()
N_FEATURES = sum(len(columns) for columns in FEATURE_GROUPS.values())


def _logistic(x: np.ndarray) -> None:
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1
    np.reciprocal(x, out=x)


def _relu(x: np.ndarray) -> None:
    np.maximum(x, 0, out=x)


def _tanh(x: np.ndarray) -> None:
    np.tanh(x, out=x)


def _identity(x: np.ndarray) -> None:
    """A linear hidden layer: nothing to do."""


def _softmax(x: np.ndarray) -> None:
    shifted = x - x.max(axis=1)[:, np.newaxis]
    np.exp(shifted, out=x)
    x /= x.sum(axis=1)[:, np.newaxis]


# In-place activations, as scikit-learn's neural_network._base.ACTIVATIONS.
HIDDEN_ACTIVATIONS = {"identity": _identity, "relu": _relu, "tanh": _tanh, "logistic": _logistic}


def _scalar(arrays: Any, key: str, source: str) -> Any:
    if key not in arrays:
        raise ValueError(f"{source}: no {key!r} array")
    value = arrays[key]
    if value.ndim != 0:
        raise ValueError(f"{source}: {key!r} has shape {value.shape}, expected a single value")
    return value.item()


def _layers(arrays: Any, source: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (coef, intercept) pairs in order, checked to chain into one another."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"coef_{len(layers)}" in arrays:
        i = len(layers)
        if f"intercept_{i}" not in arrays:
            raise ValueError(f"{source}: coef_{i} has no intercept_{i}")
        coef, intercept = arrays[f"coef_{i}"], arrays[f"intercept_{i}"]
        fan_in = layers[-1][0].shape[1] if layers else arrays["scaler_mean"].shape[0]
        if coef.ndim != 2 or coef.shape[0] != fan_in or intercept.shape != coef.shape[1:]:
            raise ValueError(f"{source}: layer {i} has shapes {coef.shape} and {intercept.shape}, "
                             f"expected ({fan_in}, k) and (k,)")
        layers.append((coef, intercept))
    if not layers:
        raise ValueError(f"{source}: no coef_0 array")
    return layers


def _trees(arrays: Any, n_columns: int, source: str) -> dict:
    """The boosted trees of ``model.npz`` (:func:`read_model`), checked to be complete binary trees."""
    for key in ("tree_feature", "tree_threshold", "tree_value", "tree_output", "tree_baseline"):
        if key not in arrays:
            raise ValueError(f"{source}: no {key!r} array")
    feature, threshold, value = arrays["tree_feature"], arrays["tree_threshold"], arrays["tree_value"]
    output, baseline = arrays["tree_output"], arrays["tree_baseline"]
    if (feature.ndim != 2 or threshold.shape != feature.shape or value.ndim != 2
            or value.shape != (len(feature), feature.shape[1] + 1) or output.shape != (len(feature),)
            or baseline.ndim != 1 or feature.shape[1] & (feature.shape[1] + 1)):
        raise ValueError(f"{source}: tree arrays of shapes {feature.shape}, {threshold.shape}, {value.shape}, "
                         f"{output.shape}, {baseline.shape} are not complete binary trees")
    if feature.dtype.kind not in "iu" or not ((feature >= 0) & (feature < n_columns)).all():
        raise ValueError(f"{source}: tree_feature must index the {n_columns} feature columns")
    if output.dtype.kind not in "iu" or not ((output >= 0) & (output < len(baseline))).all():
        raise ValueError(f"{source}: tree_output must index the {len(baseline)} raw outputs")
    return {"feature": feature.astype(np.intp), "threshold": threshold.astype(np.float64),
            "value": value.astype(np.float64), "output": output.astype(np.intp),
            "baseline": baseline.astype(np.float64), "depth": int(feature.shape[1] + 1).bit_length() - 1}


def read_model(arrays: Any, source: str) -> dict:
    """The model dict of :func:`predict_fn` from the arrays of ``model.npz``, checked.

    ``model.npz`` (plain arrays, no pickled objects) holds ``format`` (:data:`MODEL_FORMAT`),
    ``feature_version``, ``version`` (str) and ``uses_rr`` (bool); ``feature_columns``, the
    columns of :func:`features` the model reads, in order; ``decision_weights``, one per class,
    by which the estimator's probabilities are multiplied (then renormalised: the decision rule
    chosen in cross-validation, undoing part of the class balancing); ``classes``, the index into
    :data:`CLASS_NAMES` of each output; ``out_activation`` (``softmax``, or ``logistic`` for a
    two-class model). Then either a network or boosted trees:

    - a network: ``scaler_mean`` and ``scaler_scale`` (one per feature, in the dtype the scaler
      computed in); ``coef_<i>`` ``(fan_in, fan_out)`` and ``intercept_<i>`` per layer;
      ``activation`` of the hidden layers;
    - boosted trees (gradient boosting, when ``tree_threshold`` is present), each stored as a
      complete binary tree of depth ``D`` in breadth-first order: ``tree_feature`` and
      ``tree_threshold`` ``(trees, 2**D - 1)``, the feature (index into ``feature_columns``) and
      threshold of each node (a beat goes right when its value is above it; a leaf shallower than
      ``D`` is padded with nodes of threshold +inf, which send every beat left), ``tree_value``
      ``(trees, 2**D)`` the leaves' values, ``tree_output`` ``(trees,)`` the raw output each tree
      adds to and ``tree_baseline`` the raw outputs' starting values.
    """
    if _scalar(arrays, "format", source) != MODEL_FORMAT:
        raise ValueError(f"{source}: model format {_scalar(arrays, 'format', source)}, this inference module "
                         f"reads format {MODEL_FORMAT}")
    if _scalar(arrays, "feature_version", source) != FEATURE_VERSION:
        raise ValueError(f"{source}: trained for feature version {_scalar(arrays, 'feature_version', source)}, "
                         f"this inference module computes version {FEATURE_VERSION}")
    for key in ("classes", "feature_columns", "decision_weights"):
        if key not in arrays or arrays[key].ndim != 1:
            raise ValueError(f"{source}: {key!r} must be a one-dimensional array")
    weights = arrays["decision_weights"]
    if weights.shape != arrays["classes"].shape or not (np.isfinite(weights) & (weights > 0)).all():
        raise ValueError(f"{source}: decision_weights must be one positive number per class")
    classes = arrays["classes"]
    if classes.dtype.kind not in "iu" or not ((classes >= 0) & (classes < len(CLASS_NAMES))).all():
        raise ValueError(f"{source}: classes {classes.tolist()} are not indices into {CLASS_NAMES}")
    columns = arrays["feature_columns"]
    if columns.dtype.kind not in "iu" or not ((columns >= 0) & (columns < N_FEATURES)).all():
        raise ValueError(f"{source}: feature_columns must be column indices below {N_FEATURES}")
    out_activation = _scalar(arrays, "out_activation", source)
    outputs = 1 if out_activation == "logistic" and len(classes) == 2 else len(classes)
    model = {
        "version": str(_scalar(arrays, "version", source)),
        "uses_rr": bool(_scalar(arrays, "uses_rr", source)),
        "classes": classes.astype(np.int64),
        "feature_columns": columns.astype(np.intp),
        "decision_weights": weights.astype(np.float64),
        "out_activation": out_activation,
    }
    if "tree_threshold" in arrays:
        trees = _trees(arrays, len(columns), source)
        if out_activation not in ("softmax", "logistic") or len(trees["baseline"]) != outputs:
            raise ValueError(f"{source}: output {out_activation!r} of {len(trees['baseline'])} raw outputs does "
                             f"not fit {len(classes)} classes")
        return model | {"trees": trees}
    for key in ("scaler_mean", "scaler_scale"):
        if key not in arrays or arrays[key].ndim != 1:
            raise ValueError(f"{source}: {key!r} must be a one-dimensional array")
    if arrays["scaler_scale"].shape != arrays["scaler_mean"].shape:
        raise ValueError(f"{source}: scaler_mean and scaler_scale differ in shape")
    if columns.shape != arrays["scaler_mean"].shape:
        raise ValueError(f"{source}: feature_columns must be {arrays['scaler_mean'].shape[0]} column indices "
                         f"below {N_FEATURES}")
    activation = _scalar(arrays, "activation", source)
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"{source}: hidden activation {activation!r}, expected one of {sorted(HIDDEN_ACTIVATIONS)}")
    layers = _layers(arrays, source)
    if out_activation not in ("softmax", "logistic") or layers[-1][0].shape[1] != outputs:
        raise ValueError(f"{source}: output {out_activation!r} of width {layers[-1][0].shape[1]} does not fit "
                         f"{len(classes)} classes")
    return model | {"scaler_mean": arrays["scaler_mean"], "scaler_scale": arrays["scaler_scale"],
                    "layers": layers, "activation": activation}


def load_arrays(model_dir: str, name: str | None = None) -> dict:
    """The arrays of ``model_dir/model.npz``; ``name`` is what error messages call the model."""
    name = name or model_dir
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        if os.path.isfile(os.path.join(model_dir, PICKLE_MODEL_FILE)):
            raise ValueError(f"{name}: a model of an earlier release ({PICKLE_MODEL_FILE}, a scikit-learn pickle "
                             "that loads only in the scikit-learn which wrote it); retrain it")
        raise ValueError(f"{name}: no {MODEL_FILE} (model.tar.gz holds it at its top)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{name}: {MODEL_FILE} is not a numpy archive of plain arrays ({error})") from None


def model_fn(model_dir: str) -> dict:
    """Load the model that training exported into ``model_dir/model.npz``."""
    return read_model(load_arrays(model_dir), os.path.join(model_dir, MODEL_FILE))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _text(body: bytes | bytearray | str) -> str:
    if isinstance(body, (bytes, bytearray)):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"body is not UTF-8 text (byte {error.start})") from error
    return body


def _check_values(beats: np.ndarray, unit: str, numbers: list[int]) -> None:
    """Raise for the first beat holding a non-finite value or a value outside [0, 1]."""
    finite = np.isfinite(beats).all(axis=1)
    in_range = (beats >= -VALUE_TOLERANCE).all(axis=1) & (beats <= 1 + VALUE_TOLERANCE).all(axis=1)
    bad = np.flatnonzero(~(finite & in_range))
    if len(bad):
        row = beats[bad[0]]
        column = int(np.flatnonzero(~np.isfinite(row) | (row < -VALUE_TOLERANCE) | (row > 1 + VALUE_TOLERANCE))[0])
        reason = "is not finite" if not np.isfinite(row[column]) else "is outside [0, 1]"
        raise ValueError(f"{unit} {numbers[bad[0]]}: value {column + 1} ({row[column]:g}) {reason}")


def _parse_csv_line(line: str, number: int) -> np.ndarray:
    try:
        values = np.array(line.split(","), dtype=np.float64)
    except ValueError:
        token = next(t for t in line.split(",") if not _is_number(t))
        raise ValueError(f"line {number}: {token.strip()[:40]!r} is not a number") from None
    if len(values) not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):
        raise ValueError(f"line {number}: {len(values)} values, expected {WINDOW_SAMPLES} or {WINDOW_SAMPLES + 1}")
    return values[:WINDOW_SAMPLES]


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_csv(text: str) -> np.ndarray:
    """Beats from CSV lines of 187 values (or 188, label last); blank lines are skipped.

    The whole body is parsed in one numpy call when every line has the same width; any
    irregularity falls back to a line-by-line parse that names the offending line.
    """
    lines = text.split("\n")
    numbers = [i + 1 for i, line in enumerate(lines) if line.strip()]
    rows = [lines[i - 1] for i in numbers]
    if not rows:
        raise ValueError("no beats in the CSV body")
    widths = {row.count(",") + 1 for row in rows}
    beats = None
    if len(widths) == 1 and widths <= {WINDOW_SAMPLES, WINDOW_SAMPLES + 1}:
        try:
            flat = np.fromstring(",".join(rows), sep=",")
        except ValueError:  # a token that is not a number: the line-by-line parse names it
            flat = None
        width = widths.pop()
        if flat is not None and flat.size == width * len(rows):
            beats = flat.reshape(len(rows), width)[:, :WINDOW_SAMPLES]
    if beats is None:
        beats = np.stack([_parse_csv_line(row, number) for row, number in zip(rows, numbers)])
    beats = beats.astype(np.float32)
    _check_values(beats, "line", numbers)
    return beats


def _instance_beat(instance: Any, number: int) -> Any:
    if isinstance(instance, dict):
        if "beat" not in instance:
            raise ValueError(f"instance {number}: no 'beat' key")
        return instance["beat"]
    return instance


def _instance_rr(instance: Any, number: int) -> list[float]:
    if not isinstance(instance, dict):
        return [np.nan] * len(RR_KEYS)
    values = []
    for key in RR_KEYS:
        value = instance.get(key)
        if value is None:
            values.append(np.nan)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= RR_MAX_S:
            raise ValueError(f"instance {number}: {key} = {value!r} is not a number of seconds in (0, {RR_MAX_S:g}]")
        values.append(float(value))
    return values


def _is_value(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _instance_list(instance: Any, key: str, width: int, nulls: bool, number: int) -> list[float]:
    """``instance[key]``: ``width`` finite numbers (null elements = unknown when ``nulls``); all NaN when absent."""
    values = instance.get(key) if isinstance(instance, dict) else None
    if values is None:
        return [np.nan] * width
    if not isinstance(values, list) or len(values) != width:
        raise ValueError(f"instance {number}: {key!r} must be a list of {width} numbers")
    out = []
    for value in values:
        if value is None and nulls:
            out.append(np.nan)
        elif _is_value(value):
            out.append(float(value))
        else:
            raise ValueError(f"instance {number}: {key!r} holds {value!r:.40}, expected finite numbers"
                             + (" or null" if nulls else ""))
    return out


def _beat_array(beat: Any, number: int) -> np.ndarray:
    if not isinstance(beat, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in beat):
        raise ValueError(f"instance {number}: 'beat' must be a list of numbers")
    if len(beat) not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):
        raise ValueError(f"instance {number}: {len(beat)} values, expected {WINDOW_SAMPLES}")
    return np.array(beat[:WINDOW_SAMPLES], dtype=np.float32)


def parse_json(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Beats, RR intervals, pre-R segments and context from ``{"instances": [...]}`` or a bare list of beat lists.

    The pre-R segments and contexts are None when no instance carries one.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"body is not JSON: {error}") from None
    instances = document.get("instances") if isinstance(document, dict) else document
    if not isinstance(instances, list):
        raise ValueError("expected {\"instances\": [...]} or a list of beats")
    if not instances:
        raise ValueError("no beats in the JSON body")
    beats_in = [_instance_beat(instance, number) for number, instance in enumerate(instances, 1)]
    try:
        beats = np.array(beats_in)
    except ValueError:  # rows of different lengths
        beats = None
    # numpy turns null, strings and booleans into other dtypes: only int/float arrays take the fast path.
    if beats is None or beats.ndim != 2 or beats.dtype.kind not in "fi" or beats.shape[1] not in (
        WINDOW_SAMPLES, WINDOW_SAMPLES + 1
    ):
        beats = np.stack([_beat_array(beat, number) for number, beat in enumerate(beats_in, 1)])
    beats = beats[:, :WINDOW_SAMPLES].astype(np.float32)
    numbers = list(range(1, len(instances) + 1))
    _check_values(beats, "instance", numbers)
    rr = np.array([_instance_rr(instance, number) for number, instance in enumerate(instances, 1)], dtype=np.float32)
    extra: list[np.ndarray | None] = []
    for key, width, nulls in ((PRE_KEY, PRE_R_SAMPLES, False), (CONTEXT_KEY, N_CONTEXT, True)):
        if any(isinstance(instance, dict) and instance.get(key) is not None for instance in instances):
            extra.append(np.array([_instance_list(instance, key, width, nulls, number)
                                   for number, instance in enumerate(instances, 1)], dtype=np.float32))
        else:
            extra.append(None)
    return beats, rr, extra[0], extra[1]


def input_fn(body: bytes | str, content_type: str) -> dict:
    """Decode a request body into ``{"beats": (n, 187), "rr": (n, 3), "pre": (n, 36), "context": (n, 18)}``.

    float32 arrays with NaN where unknown; ``rr``, ``pre`` and ``context`` are None when no beat has them.
    """
    media_type = _media_type(content_type)
    text = _text(body)
    if media_type == CSV:
        return {"beats": parse_csv(text), "rr": None, "pre": None, "context": None}
    if media_type == JSON:
        beats, rr, pre, context = parse_json(text)
        return {"beats": beats, "rr": rr, "pre": pre, "context": context}
    raise ValueError(f"content type {content_type!r} is not supported (use {CSV} or {JSON})")


def forward(model: dict, x: np.ndarray) -> np.ndarray:
    """Probabilities over ``model["classes"]``: scikit-learn's ``StandardScaler.transform`` then
    ``MLPClassifier.predict_proba``, the same operations in the same order and dtypes, so that the
    result is the estimator's to the last bit (the logistic function, of two-class models only, is
    scipy's ``expit`` there, whose float32 ``exp`` may differ from numpy's in the last bit). ``x``
    (the features) is overwritten. Boosted trees: :func:`tree_outputs`, then the same output function."""
    if "trees" in model:
        return _output(tree_outputs(model["trees"], x), model["out_activation"])
    x -= model["scaler_mean"]
    x /= model["scaler_scale"]
    layers = model["layers"]
    for i, (coef, intercept) in enumerate(layers):
        x = x @ coef
        x += intercept
        if i < len(layers) - 1:
            HIDDEN_ACTIVATIONS[model["activation"]](x)
    return _output(x, model["out_activation"])


def _output(x: np.ndarray, out_activation: str) -> np.ndarray:
    """Class probabilities from the raw outputs (overwritten): softmax, or the logistic of one output."""
    if out_activation == "softmax":
        _softmax(x)
        return x
    _logistic(x)
    positive = x.ravel()
    return np.vstack([1 - positive, positive]).T


# Beats walked down the trees at once: the (beats x trees) index arrays then stay in the CPU's cache
# (measured on 500 trees: 128 beats at a time about twice as fast as 1,024).
TREE_BATCH_BEATS = 128


def tree_outputs(trees: dict, x: np.ndarray) -> np.ndarray:
    """The raw outputs ``(n, outputs)`` of boosted trees: baseline plus the reached leaf of every tree.

    Every beat descends every tree at once, one level per step (the trees are complete, see
    :func:`read_model`): at node ``i`` a beat goes to ``2i + 1``, or ``2i + 2`` when its feature
    value is above the node's threshold, compared in float64 as scikit-learn compares. The
    features never hold NaN (:func:`features` writes unknown values as 0 with a flag), so there
    is no missing-value branch to take.
    """
    feature, threshold, value = trees["feature"], trees["threshold"], trees["value"]
    n_trees, n_nodes = feature.shape
    node_offsets = (np.arange(n_trees) * n_nodes).astype(np.int32)  # int32: half the memory traffic of intp
    leaf_offsets = (np.arange(n_trees) * (n_nodes + 1) - n_nodes).astype(np.int32)
    feature_flat, threshold_flat, value_flat = feature.ravel().astype(np.int32), threshold.ravel(), value.ravel()
    # One column per output, summing its trees' leaves: a matrix product with a 0/1 matrix.
    membership = np.zeros((n_trees, len(trees["baseline"])))
    membership[np.arange(n_trees), trees["output"]] = 1.0
    raw = np.empty((len(x), len(trees["baseline"])))
    for start in range(0, len(x), TREE_BATCH_BEATS):
        block = np.ascontiguousarray(x[start:start + TREE_BATCH_BEATS], dtype=np.float64)
        row_offsets = (np.arange(len(block), dtype=np.int32) * block.shape[1])[:, np.newaxis]
        flat = block.ravel()
        node = np.zeros((len(block), n_trees), dtype=np.int32)
        for _ in range(trees["depth"]):
            at = node + node_offsets
            above = flat[feature_flat[at] + row_offsets] > threshold_flat[at]
            node *= 2
            node += 1
            node += above
        raw[start:start + len(block)] = value_flat[node + leaf_offsets] @ membership
    raw += trees["baseline"]
    return raw


def predict_fn(data: dict, model: dict) -> dict:
    """Class probabilities ``(n, 5)`` over ``CLASS_NAMES`` and the model version.

    A model trained without RR intervals (on Kaggle rows) ignores any it is given, and the
    pre-R segments and contexts too (it never saw them).
    """
    extra = {key: data.get(key) for key in ("rr", "pre", "context")} if model["uses_rr"] else {}
    probabilities = np.zeros((len(data["beats"]), len(CLASS_NAMES)), dtype=np.float64)
    with BLAS.limit(limits=1, user_api="blas") if BLAS else contextlib.nullcontext():
        x = np.ascontiguousarray(features(data["beats"], **extra)[:, model["feature_columns"]])
        probabilities[:, model["classes"]] = forward(model, x)
    weights = model["decision_weights"]
    if (weights != 1).any():
        probabilities[:, model["classes"]] *= weights
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    return {"probabilities": probabilities, "model_version": model["version"]}


def output_fn(prediction: dict, accept: str | None) -> tuple[str, str]:
    """The JSON response: one ``{class_index, class_name, probabilities}`` per beat, in order."""
    media_type = _media_type(accept)
    if media_type not in ("", "*/*", JSON):
        raise ValueError(f"accept type {accept!r} is not supported (use {JSON})")
    probabilities = np.round(prediction["probabilities"], 6)
    indices = probabilities.argmax(axis=1).tolist()
    predictions = [
        {"class_index": index, "class_name": CLASS_NAMES[index], "probabilities": row}
        for index, row in zip(indices, probabilities.tolist())
    ]
    return json.dumps({"model_version": prediction["model_version"], "predictions": predictions}), JSON
