"""The handler's log lines: one flat JSON object per line on stdout, which Lambda sends to CloudWatch Logs.

Three types, keys in field order after ``"type"`` (docs/ARCHITECTURE.md, "Log lines"):

- ``prediction``: one per classified beat (:data:`PREDICTION_FIELDS`);
- ``rejected``: one per record that can never be classified (:data:`REJECTED_FIELDS`);
- ``summary``: one per invocation (:data:`SUMMARY_FIELDS`).

The handler (``lambda_function.py``, self-contained: ``prediction_line``, ``rejected_line``,
``refused_line``, ``summary_line``) writes them; tests/contracts/ holds it to :func:`encode_line`.
:func:`decode_line` reads any text: it never raises, and anything that is not one of these lines
with values of these types — other programs' text or JSON, Lambda's START / END / REPORT lines, a
line of ours in name only, a value of the wrong type, nested, huge or not UTF-8 — is None
("foreign"). An absent key reads as null (its ``default``), so lines from an older handler with
fewer keys are still ours; keys we do not know are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from hbcore.contracts.fields import Field, integer, number, text
from hbcore.contracts.inference import N_CLASSES

VERSION = 1
PROB_DECIMALS = 4
MS_DECIMALS = 1

_CLASSES = range(N_CLASSES)
PREDICTION_FIELDS = (
    Field("id", str, "beat id (hbcore.contracts.beat_id), or the handler's <shardId>:<sequenceNumber>",
          required=True),
    Field("run", str, "replay run id"),
    Field("record", str, "record, or the record's partition key"),
    Field("sample", int, "360 Hz sample index of the R peak"),
    Field("t", float, "s in the record"),
    Field("label", int, "true class index (null: unknown)", choices=_CLASSES),
    Field("pred", int, "predicted class index", required=True, choices=_CLASSES),
    Field("pred_name", str, "CLASS_NAMES[pred]"),
    Field("prob", float, f"probability of pred, {PROB_DECIMALS} decimals"),
    Field("model_version", str, "the endpoint's model version"),
    Field("latency_ms", float, f"ms from the record's sent_at to the line, {MS_DECIMALS} decimal (null: no sent_at)"),
    Field("endpoint_ms", float, f"ms of the endpoint call that classified it, {MS_DECIMALS} decimal"),
    Field("rr_local_s", float, "s, for the heart rate"),
    Field("seq", str, "Kinesis sequence number"),
    Field("shard", str, "Kinesis shard id"),
)
REJECTED_FIELDS = (
    Field("id", str, "beat id, when it could be read"),
    Field("run", str, "replay run id, when it could be read"),
    Field("record", str, "record, or the record's partition key"),
    Field("seq", str, "Kinesis sequence number"),
    Field("shard", str, "Kinesis shard id"),
    Field("reason", str, "why the record can never be classified", required=True),
)
SUMMARY_FIELDS = (
    Field("records", int, "records in the batch", required=True),
    Field("predicted", int, "beats logged as predictions", default=0),
    Field("rejected", int, "records logged as rejected", default=0),
    Field("failed", int, "records returned in batchItemFailures (retried)", default=0),
    Field("endpoint_calls", int, "invoke_endpoint calls", default=0),
    Field("endpoint_ms", float, f"ms in successful endpoint calls, {MS_DECIMALS} decimal"),
    Field("handler_ms", float, f"ms of the whole invocation, {MS_DECIMALS} decimal"),
    Field("error", str, "the endpoint failure, or null"),
)


class Prediction(NamedTuple):
    """A prediction line as read."""

    id: str
    run: str | None
    record: str | None
    sample: int | None
    t: float | None
    label: int | None
    pred: int
    pred_name: str | None
    prob: float | None
    model_version: str | None
    latency_ms: float | None
    endpoint_ms: float | None
    rr_local_s: float | None
    seq: str | None
    shard: str | None


class Rejected(NamedTuple):
    """A rejected line as read."""

    id: str | None
    run: str | None
    record: str | None
    seq: str | None
    shard: str | None
    reason: str


class Summary(NamedTuple):
    """A summary line as read."""

    records: int
    predicted: int
    rejected: int
    failed: int
    endpoint_calls: int
    endpoint_ms: float | None
    handler_ms: float | None
    error: str | None


Line = Prediction | Rejected | Summary
TYPES: dict[str, tuple[type[Line], tuple[Field, ...]]] = {
    "prediction": (Prediction, PREDICTION_FIELDS),
    "rejected": (Rejected, REJECTED_FIELDS),
    "summary": (Summary, SUMMARY_FIELDS),
}
_TYPE_NAMES = {line_type: name for name, (line_type, _) in TYPES.items()}

# A table of lines (the results reader's frames) keeps these fields, with these pandas dtypes;
# pred_name is CLASS_NAMES[pred] and is not kept.
PREDICTION_COLUMNS = tuple(field.name for field in PREDICTION_FIELDS if field.name != "pred_name")
REJECTED_COLUMNS = tuple(field.name for field in REJECTED_FIELDS)
SUMMARY_COLUMNS = tuple(field.name for field in SUMMARY_FIELDS)


def _dtype(field: Field) -> str:
    """Strings and floats as such (null: NaN); class indices in int8; ints nullable unless never null."""
    if field.kind is not int:
        return "str" if field.kind is str else "float64"
    if field.required and field.choices is not None:
        return "int8"
    return "int64" if field.required or field.default is not None else "Int64"


DTYPES = {field.name: _dtype(field) for field in (*PREDICTION_FIELDS, *REJECTED_FIELDS, *SUMMARY_FIELDS)}

_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_line(line: Line) -> str:
    """The text of one log line (no newline), as the handler prints it."""
    return _to_json({"type": _TYPE_NAMES[type(line)], **line._asdict()})


def _check(field: Field) -> Callable[[Any], Any]:
    """The reading of a present, non-null value of ``field``: the value, or None if it is foreign."""
    if field.kind is str:
        return text
    if field.kind is float:
        return number
    if field.choices is not None:
        choices = field.choices
        return lambda value: value if type(value) is int and value in choices else None
    return integer


# Per type: the tuple class, and per field (name, check, required, default), so reading a line is one loop.
_READERS = {
    name: (line_type._make, tuple((field.name, _check(field), field.required, field.default) for field in fields))
    for name, (line_type, fields) in TYPES.items()
}


def decode_line(message: str) -> Line | None:
    """The line of ours that ``message`` (one log event's text) holds, or None if it is foreign."""
    if message[:1] != "{" and not message.lstrip().startswith("{"):
        return None
    try:
        line = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if type(line) is not dict:
        return None
    kind = line.get("type")
    reader = _READERS.get(kind) if type(kind) is str else None
    if reader is None:
        return None
    make, fields = reader
    values = []
    for name, check, required, default in fields:
        value = line.get(name)
        if value is None:
            if required:
                return None
            value = default
        else:
            value = check(value)
            if value is None:
                return None
        values.append(value)
    return make(values)
