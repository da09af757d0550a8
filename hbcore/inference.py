"""The SageMaker inference module: beat features, and the four hooks of the scikit-learn container.

This file is self-contained (standard library, numpy, and scikit-learn with its dependencies joblib
and threadpoolctl) because it travels as ``code/inference.py`` inside ``model.tar.gz``: the
SageMaker SKLearn container imports it by file, and so does the local endpoint server. Training
imports :func:`features` from here, so the features a model was trained on are, by construction,
the ones its endpoint computes.

Request bodies (docs/ARCHITECTURE.md, "Inference contract"):

- ``text/csv``: one beat per line, 187 values (the original project's format) or 188 (the last is
  a label and is ignored). No RR intervals.
- ``application/json``: ``{"instances": [{"beat": [187 floats], "rr_prev_s": f, "rr_next_s": f,
  "rr_local_s": f}, ...]}`` with the RR keys optional (null = unknown), or a bare list of
  187-float lists.

Bad input raises ``ValueError`` naming the line or instance and the reason; servers map it to
HTTP 400.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from threadpoolctl import ThreadpoolController  # a scikit-learn dependency, present wherever it is

# One BLAS thread per prediction: a request's matrices are small, and handing them to a second
# thread costs more than it saves whenever the machine has other work (measured on 2 cores next to
# the local cloud: 3 ms instead of 15 ms per 500 beats). Made once: it scans the loaded libraries.
BLAS = ThreadpoolController()

CLASS_NAMES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
WINDOW_SAMPLES = 187
WINDOW_FS_HZ = 125
WINDOW_RR_FACTOR = 1.2
RR_KEYS: tuple[str, ...] = ("rr_prev_s", "rr_next_s", "rr_local_s")
# Beat windows are min-max scaled to [0, 1]; rounding and float formatting may step a hair outside.
VALUE_TOLERANCE = 1e-3
# RR intervals the endpoint accepts, in seconds. MIT-BIH itself holds 'RR' gaps up to 100 s (record
# 207, across unannotated ventricular flutter) and the model trains on them; 200 s admits those and
# still refuses milliseconds sent as seconds (any RR of 0.2 s or more). lambda_function.py applies
# the same rule, so a record the endpoint would refuse is rejected alone instead of failing its batch.
RR_MAX_S = 200.0
# Refractory time after the R peak before a following R peak can appear in the window.
NEXT_PEAK_MIN_S = 0.3
MODEL_FILE = "model.joblib"
# Bump when features() changes: a model pickled for other features must not load.
FEATURE_VERSION = 1
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


def features(beats: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
    """The model's input: the window, its window-derived rhythm features and the RR features.

    ``beats`` is ``(n, 187)`` in [0, 1]; ``rr`` is ``(n, 3)`` seconds (previous, next, local mean
    RR) with NaN where unknown, or None when no beat has RR intervals (Kaggle rows, CSV requests).
    """
    beats = np.asarray(beats, dtype=np.float32)
    if beats.ndim != 2 or beats.shape[1] != WINDOW_SAMPLES:
        raise ValueError(f"beats must have shape (n, {WINDOW_SAMPLES}), got {beats.shape}")
    if rr is None:
        rr = np.full((len(beats), len(RR_KEYS)), np.nan, dtype=np.float32)
    rr = np.asarray(rr, dtype=np.float32)
    if rr.shape != (len(beats), len(RR_KEYS)):
        raise ValueError(f"rr must have shape ({len(beats)}, {len(RR_KEYS)}), got {rr.shape}")
    lengths = window_lengths(beats)
    return np.hstack([beats, window_features(beats, lengths), rr_features(rr, lengths)])


def model_fn(model_dir: str) -> dict:
    """Load the model dict that training pickled into ``model_dir/model.joblib``."""
    path = os.path.join(model_dir, MODEL_FILE)
    model = joblib.load(path)
    if not isinstance(model, dict) or "estimator" not in model:
        raise ValueError(f"{path}: not a heartbeat model (expected a dict with an 'estimator')")
    if model.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{path}: trained for feature version {model.get('feature_version')}, "
                         f"this inference module computes version {FEATURE_VERSION}")
    return model


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


def _beat_array(beat: Any, number: int) -> np.ndarray:
    if not isinstance(beat, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in beat):
        raise ValueError(f"instance {number}: 'beat' must be a list of numbers")
    if len(beat) not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):
        raise ValueError(f"instance {number}: {len(beat)} values, expected {WINDOW_SAMPLES}")
    return np.array(beat[:WINDOW_SAMPLES], dtype=np.float32)


def parse_json(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Beats and RR intervals from ``{"instances": [...]}`` or a bare list of beat lists."""
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
    return beats, rr


def input_fn(body: bytes | str, content_type: str) -> dict:
    """Decode a request body into ``{"beats": (n, 187) float32, "rr": (n, 3) float32 or None}``."""
    media_type = _media_type(content_type)
    text = _text(body)
    if media_type == CSV:
        return {"beats": parse_csv(text), "rr": None}
    if media_type == JSON:
        beats, rr = parse_json(text)
        return {"beats": beats, "rr": rr}
    raise ValueError(f"content type {content_type!r} is not supported (use {CSV} or {JSON})")


def predict_fn(data: dict, model: dict) -> dict:
    """Class probabilities ``(n, 5)`` over ``CLASS_NAMES`` and the model version.

    A model trained without RR intervals (on Kaggle rows) ignores any it is given.
    """
    estimator = model["estimator"]
    rr = data.get("rr") if model.get("uses_rr", True) else None
    probabilities = np.zeros((len(data["beats"]), len(CLASS_NAMES)), dtype=np.float64)
    with BLAS.limit(limits=1, user_api="blas"):
        probabilities[:, estimator.classes_.astype(np.int64)] = estimator.predict_proba(features(data["beats"], rr))
    return {"probabilities": probabilities, "model_version": model.get("version", "unknown")}


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
