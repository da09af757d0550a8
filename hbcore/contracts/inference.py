"""The endpoint's JSON request and response (``application/json``; docs/ARCHITECTURE.md, "Inference contract").

Request: ``{"instances": [{"beat": [187 numbers], "rr_prev_s": s, "rr_next_s": s, "rr_local_s": s,
"pre": [36 numbers], "context": [18 numbers or nulls]}, ...]}``, every key but ``beat`` absent or null
when unknown (a Kaggle row has none of them). ``pre`` is the pre-R segment (where the P wave is),
``context`` the beat against its patient's own past beats (``hbcore.data.patient.CONTEXT_NAMES``),
which only the sender, who knows the patient's earlier beats, can compute.
Response: ``{"model_version": str, "predictions":
[{"class_index": int, "class_name": str, "probabilities": [5 numbers]}, ...]}``, one prediction per
instance, in order. The handler writes requests and reads responses; ``hbcore/model/inference.py``
(``input_fn`` / ``output_fn``) reads requests and writes responses — both self-contained copies,
held to this module by tests/contracts/. ``input_fn`` also takes CSV bodies, bare lists of beats and
188-value beats (the original project's forms); nothing in this project writes those.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import numpy as np

from hbcore.contracts.fields import Field, FormatError, integer, kind_of, number, numbers, text

VERSION = 2  # 2: the optional pre-R segment and context of a beat
CONTENT_TYPE = "application/json"
BEAT_LENGTH = 187  # values of a beat window: 125 Hz from the R peak, scaled to [0, 1]
CLASS_NAMES: tuple[str, ...] = ("N", "S", "V", "F", "Q")  # AAMI classes, in class-index order
N_CLASSES = len(CLASS_NAMES)
# MIT-BIH holds "RR" gaps up to 100 s (record 207, across unannotated flutter) and the model trains on them.
RR_MAX_S = 200.0
PROBABILITY_DECIMALS = 6
PRE_R_LENGTH = 36  # values of a pre-R segment: 125 Hz up to the R peak, scaled as its window, in [0, 1]
CONTEXT_LENGTH = 18  # context features of a beat (hbcore.data.patient.CONTEXT_NAMES)

INSTANCE_FIELDS = (
    Field("beat", list, f"{BEAT_LENGTH} window values in [0, 1], 125 Hz from the R peak", required=True),
    Field("rr_prev_s", float, f"s from the previous R peak, in (0, {RR_MAX_S:g}]"),
    Field("rr_next_s", float, f"s to the next R peak, in (0, {RR_MAX_S:g}]"),
    Field("rr_local_s", float, f"s, median RR around the beat, in (0, {RR_MAX_S:g}]"),
    Field("pre", list, f"{PRE_R_LENGTH} values before the R peak, scaled as the window"),
    Field("context", list, f"{CONTEXT_LENGTH} context features, each a number or null (unknown)"),
)
RR_FIELDS = tuple(field.name for field in INSTANCE_FIELDS[1:4])
_CLASS_INDICES = range(N_CLASSES)
PREDICTION_FIELDS = (
    Field("class_index", int, "index into CLASS_NAMES", required=True, choices=_CLASS_INDICES),
    Field("class_name", str, "CLASS_NAMES[class_index]"),
    Field("probabilities", list, f"{N_CLASSES} probabilities in CLASS_NAMES order, {PROBABILITY_DECIMALS} decimals",
          required=True),
)
RESPONSE_FIELDS = (
    Field("model_version", str, "<UTC yyyymmddThhmmssZ>-<8 hex>", required=True),
    Field("predictions", list, "one per instance, in order", required=True),
)

_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class Request(NamedTuple):
    """A request's instances as arrays."""

    beats: np.ndarray  # (n, BEAT_LENGTH) float64
    rr: np.ndarray  # (n, 3) float64 seconds in RR_FIELDS order, NaN = unknown
    pre: np.ndarray  # (n, PRE_R_LENGTH) float64, NaN = unknown
    context: np.ndarray  # (n, CONTEXT_LENGTH) float64, NaN = unknown


class Response(NamedTuple):
    """A response's predictions as arrays."""

    model_version: str
    class_indices: np.ndarray  # (n,) int64
    class_names: tuple[str | None, ...]
    probabilities: np.ndarray  # (n, N_CLASSES) float64


# --- request ----------------------------------------------------------------------------------------

def rr_seconds(value: Any, where: str) -> float:
    """An RR interval as the endpoint takes it (the stream record's rule too); raises :class:`FormatError`."""
    seconds = number(value)
    if seconds is None or not 0 < seconds <= RR_MAX_S:
        raise FormatError(where, f"is {value!r:.40}, expected seconds in (0, {RR_MAX_S:g}]")
    return seconds


def context_values(values: Any, where: str) -> list[float | None]:
    """A context: :data:`CONTEXT_LENGTH` finite numbers or nulls (None); raises :class:`FormatError`."""
    if not isinstance(values, list):
        raise FormatError(where, f"is {kind_of(values)}, expected an array of {CONTEXT_LENGTH} numbers or nulls")
    if len(values) != CONTEXT_LENGTH:
        raise FormatError(where, f"has {len(values):,} values, expected {CONTEXT_LENGTH}")
    checked: list[float | None] = []
    for index, value in enumerate(values):
        checked.append(None if value is None else number(value))
        if value is not None and checked[-1] is None:
            raise FormatError(f"{where}[{index}]", f"is {value!r:.40}, expected a finite number or null")
    return checked


def _rows(values: np.ndarray | None, n: int, width: int) -> list[list[float]]:
    if values is None:
        return [[math.nan] * width] * n
    return np.asarray(values, dtype=np.float64).reshape(n, width).tolist()


def encode_request(beats: np.ndarray, rr: np.ndarray | None = None, pre: np.ndarray | None = None,
                   context: np.ndarray | None = None) -> bytes:
    """The request body for ``beats`` (n, 187), their RR intervals (n, 3), pre-R segments (n, 36)
    and contexts (n, 18); NaN = unknown: omitted (a pre-R segment holding one NaN, a context all
    NaN), or null (one value of a context).

    Values are written as given: to send what the handler sends for replayed beats, pass them
    through ``stream_record.carried_beats`` / ``carried_seconds`` / ``carried_context`` first.

    Raises
    ------
    FormatError
        A beat of the wrong length or holding NaN or infinity, an RR interval out of range.
    """
    beats = np.atleast_2d(np.asarray(beats, dtype=np.float64))
    if beats.shape[1] != BEAT_LENGTH:
        raise FormatError("beat", f"has {beats.shape[1]} values, expected {BEAT_LENGTH}")
    bad = np.flatnonzero(~np.isfinite(beats).all(axis=1))
    if len(bad):
        raise FormatError(f"instances[{bad[0]}].beat", "holds NaN or infinity, which JSON cannot carry")
    n = len(beats)
    rows = zip(beats.tolist(), _rows(rr, n, len(RR_FIELDS)), _rows(pre, n, PRE_R_LENGTH),
               _rows(context, n, CONTEXT_LENGTH))
    instances = []
    for index, (beat, seconds, segment, features) in enumerate(rows):
        instance: dict[str, Any] = {"beat": beat}
        for key, value in zip(RR_FIELDS, seconds):
            if not math.isnan(value):
                instance[key] = rr_seconds(value, f"instances[{index}].{key}")
        if not any(map(math.isnan, segment)):
            instance["pre"] = numbers(segment, PRE_R_LENGTH, f"instances[{index}].pre")
        if not all(map(math.isnan, features)):
            instance["context"] = [None if math.isnan(value) else value for value in features]
            context_values(instance["context"], f"instances[{index}].context")
        instances.append(instance)
    return _to_json({"instances": instances}).encode()


def _document(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise FormatError(None, f"body is not UTF-8 (byte {error.start})") from None
    except (ValueError, RecursionError) as error:
        raise FormatError(None, f"body is not JSON: {error}") from None


def _list_of(document: Any, key: str) -> list:
    values = document.get(key) if isinstance(document, dict) else None
    if not isinstance(values, list) or not values:
        raise FormatError(key, f"is {kind_of(values)}, expected a non-empty array")
    return values


def decode_request(body: bytes | str) -> Request:
    """The beats, RR intervals, pre-R segments and contexts of a request body; raises
    :class:`FormatError` naming the value and why."""
    instances = _list_of(_document(body), "instances")
    beats, rr, pre, context = [], [], [], []
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(instance, dict):
            raise FormatError(where, f"is {kind_of(instance)}, expected an object")
        beats.append(numbers(instance.get("beat"), BEAT_LENGTH, f"{where}.beat"))
        rr.append([math.nan if instance.get(key) is None else rr_seconds(instance[key], f"{where}.{key}")
                   for key in RR_FIELDS])
        segment = instance.get("pre")
        pre.append([math.nan] * PRE_R_LENGTH if segment is None else numbers(segment, PRE_R_LENGTH, f"{where}.pre"))
        features = instance.get("context")
        context.append([math.nan] * CONTEXT_LENGTH if features is None else
                       [math.nan if value is None else value for value in context_values(features, f"{where}.context")])
    return Request(np.array(beats, dtype=np.float64), np.array(rr, dtype=np.float64),
                   np.array(pre, dtype=np.float64), np.array(context, dtype=np.float64))


# --- response ---------------------------------------------------------------------------------------

def encode_response(probabilities: np.ndarray, model_version: str) -> str:
    """The response body for class probabilities (n, N_CLASSES): the class is each row's most probable."""
    rounded = np.round(np.asarray(probabilities, dtype=np.float64), PROBABILITY_DECIMALS)
    predictions = [{"class_index": index, "class_name": CLASS_NAMES[index], "probabilities": row}
                   for index, row in zip(rounded.argmax(axis=1).tolist(), rounded.tolist())]
    return _to_json({"model_version": model_version, "predictions": predictions})


def decode_response(body: bytes | str, expected: int | None = None) -> Response:
    """The predictions of a response body (``expected`` of them, when given); raises :class:`FormatError`."""
    document = _document(body)
    predictions = _list_of(document, "predictions")
    if expected is not None and len(predictions) != expected:
        raise FormatError("predictions", f"has {len(predictions):,} entries for {expected:,} instances")
    version = text(document.get("model_version"))
    if version is None:
        raise FormatError("model_version", f"is {kind_of(document.get('model_version'))}, expected a string")
    indices, names, probabilities = [], [], []
    for position, prediction in enumerate(predictions):
        where = f"predictions[{position}]"
        if not isinstance(prediction, dict):
            raise FormatError(where, f"is {kind_of(prediction)}, expected an object")
        index = integer(prediction.get("class_index"))
        if index is None or index not in _CLASS_INDICES:
            raise FormatError(f"{where}.class_index", f"is {prediction.get('class_index')!r:.40}, "
                                                      f"expected a class index 0..{N_CLASSES - 1}")
        name = prediction.get("class_name")
        if name is not None and text(name) is None:
            raise FormatError(f"{where}.class_name", f"is {kind_of(name)}, expected a string")
        indices.append(index)
        names.append(name)
        probabilities.append(numbers(prediction.get("probabilities"), N_CLASSES, f"{where}.probabilities"))
    return Response(version, np.array(indices, dtype=np.int64), tuple(names),
                    np.array(probabilities, dtype=np.float64))
