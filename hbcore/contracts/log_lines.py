"""The handler's log lines: one flat JSON object per line on stdout, which Lambda sends to CloudWatch Logs.

Four types, keys in field order after ``"type"`` (docs/ARCHITECTURE.md, "Log lines"):

- ``beats``: one per endpoint call, the compact form of its classified beats (:data:`BEATS_FIELDS`,
  one row of :data:`BEAT_COLUMNS` per beat): ~50 bytes a beat against ~400 for a prediction line,
  which made Logs ingestion the largest running cost, and ~100 times fewer rows for Logs Insights'
  10,000-row cap. :func:`beats_predictions` expands it into the prediction lines it stands for;
- ``prediction``: one per classified beat whose id is not ``<run>:<record>:<sample>`` of its
  fields (the handler's fallback ids), and every beat of an older handler (:data:`PREDICTION_FIELDS`);
- ``rejected``: one per record that can never be classified, with its payload so it can be replayed
  (:data:`REJECTED_FIELDS`, ``hbcore.aws.failed``);
- ``summary``: one per invocation (:data:`SUMMARY_FIELDS`). ``inv`` numbers the invocations of one
  execution environment (one log stream) from 1, every other line of the invocation carries it, and
  ``lines`` counts them: the results reader reconciles each invocation against it (a line missing,
  an invocation missing) and reads again what came up short.

The handler's per-patient metrics are EMF lines (``hbcore.contracts.emf``), not one of these types.

The handler (``lambda_function.py``, self-contained: ``beats_line``, ``prediction_line``,
``rejected_line``, ``refused_line``, ``summary_line``) writes them; tests/contracts/ holds it to
:func:`encode_line`.
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

from hbcore.contracts import emf
from hbcore.contracts.beat_id import beat_id
from hbcore.contracts.fields import Field, integer, number, text
from hbcore.contracts.inference import N_CLASSES

VERSION = 2  # 2: the beats line, inv and lines, the rejected record's payload
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
    Field("inv", int, "the invocation's number in its execution environment (summary ``inv``)"),
)
REJECTED_FIELDS = (
    Field("id", str, "beat id, when it could be read"),
    Field("run", str, "replay run id, when it could be read"),
    Field("record", str, "record, or the record's partition key"),
    Field("seq", str, "Kinesis sequence number"),
    Field("shard", str, "Kinesis shard id"),
    Field("reason", str, "why the record can never be classified", required=True),
    Field("inv", int, "the invocation's number in its execution environment (summary ``inv``)"),
    Field("data", str, "the record's bytes in base64, to replay it (null: over MAX_PAYLOAD_BYTES)"),
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
    Field("inv", int, "the invocation's number in its execution environment (log stream), from 1"),
    Field("lines", int, "lines of ours (beats, prediction, rejected, EMF) the invocation printed before this one"),
)
# The beats line: per-call values, then "records" (the table the rows' first column indexes) and
# "beats" (one JSON array of BEAT_COLUMNS per beat). Its id is beat_id(run, record, sample).
BEATS_FIELDS = (
    Field("run", str, "replay run id", required=True),
    Field("model_version", str, "the endpoint's model version"),
    Field("endpoint_ms", float, f"ms of the endpoint call that classified them, {MS_DECIMALS} decimal"),
    Field("shard", str, "Kinesis shard id"),
    Field("inv", int, "the invocation's number in its execution environment (summary ``inv``)"),
)
BEAT_COLUMNS = (
    Field("record", int, "index into the line's records", required=True),
    Field("sample", int, "360 Hz sample index of the R peak", required=True),
    Field("t", float, "s in the record"),
    Field("label", int, "true class index (null: unknown)", choices=_CLASSES),
    Field("pred", int, "predicted class index", required=True, choices=_CLASSES),
    Field("prob", float, f"probability of pred, {PROB_DECIMALS} decimals"),
    Field("latency_ms", float, f"ms from the record's sent_at to the line, {MS_DECIMALS} decimal"),
    Field("rr_local_s", float, "s, for the heart rate"),
)
MAX_PAYLOAD_BYTES = 64 * 1024  # a rejected record's payload kept in its line (the handler's MAX_RECORD_BYTES)


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
    inv: int | None = None


class Rejected(NamedTuple):
    """A rejected line as read."""

    id: str | None
    run: str | None
    record: str | None
    seq: str | None
    shard: str | None
    reason: str
    inv: int | None = None
    data: str | None = None


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
    inv: int | None = None
    lines: int | None = None


class BeatRow(NamedTuple):
    """One beat of a beats line (:data:`BEAT_COLUMNS`)."""

    record: int
    sample: int
    t: float | None
    label: int | None
    pred: int
    prob: float | None
    latency_ms: float | None
    rr_local_s: float | None


class Beats(NamedTuple):
    """A beats line as read: the beats of one endpoint call, compact."""

    run: str
    model_version: str | None
    endpoint_ms: float | None
    shard: str | None
    inv: int | None
    records: tuple[str, ...]
    beats: tuple[BeatRow, ...]


Line = Prediction | Rejected | Summary | Beats
# The flat types: every key one Field (the beats line has two arrays besides, read by _decode_beats).
TYPES: dict[str, tuple[type[Prediction | Rejected | Summary], tuple[Field, ...]]] = {
    "prediction": (Prediction, PREDICTION_FIELDS),
    "rejected": (Rejected, REJECTED_FIELDS),
    "summary": (Summary, SUMMARY_FIELDS),
}
_TYPE_NAMES: dict[type, str] = {line_type: name for name, (line_type, _) in TYPES.items()}
_TYPE_NAMES[Beats] = "beats"

# A table of lines (the results reader's frames) keeps these fields, with these pandas dtypes;
# pred_name is CLASS_NAMES[pred] and is not kept (a beats line does not even carry it).
PREDICTION_COLUMNS = tuple(field.name for field in PREDICTION_FIELDS if field.name != "pred_name")
# A rejected record's payload stays in the logs (hbcore.aws.failed reads it there), out of the frames:
# up to 64 KB each, 50,000 of them kept.
REJECTED_COLUMNS = tuple(field.name for field in REJECTED_FIELDS if field.name != "data")
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
    if type(line) is Beats:
        return _to_json({"type": "beats", "run": line.run, "model_version": line.model_version,
                         "endpoint_ms": line.endpoint_ms, "shard": line.shard, "inv": line.inv,
                         "records": list(line.records), "beats": [list(row) for row in line.beats]})
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


_BEATS_READER = tuple((field.name, _check(field), field.required, field.default) for field in BEATS_FIELDS)
_ROW_READER = tuple((_check(field), field.required) for field in BEAT_COLUMNS)


def json_object(message: str) -> dict[str, Any] | None:
    """The JSON object ``message`` holds, or None (not JSON, not an object, nested too deeply)."""
    if message[:1] != "{" and not message.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return document if type(document) is dict else None


def decode_line(message: str) -> Line | None:
    """The line of ours that ``message`` (one log event's text) holds, or None if it is foreign."""
    line = json_object(message)
    return None if line is None else decode_object(line)


def decode_object(line: dict[str, Any]) -> Line | None:
    """The line of ours a decoded JSON object is, or None if it is foreign (:func:`decode_line` once parsed)."""
    kind = line.get("type")
    if kind == "beats":
        return _decode_beats(line)
    reader = _READERS.get(kind) if type(kind) is str else None
    if reader is None:
        return None
    return _decode_flat(line, *reader)


def _decode_flat(line: dict[str, Any], make: Callable[[list[Any]], Any], fields: tuple) -> Any:
    """``make`` of the values of ``fields`` read from ``line``; None if one of them is foreign."""
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


def _decode_beats(line: dict[str, Any]) -> Beats | None:
    """A beats line, or None if any of its values is foreign (a row of the wrong length, an index out of range)."""
    head = _decode_flat(line, tuple, _BEATS_READER)
    records, rows = line.get("records"), line.get("beats")
    if head is None or type(records) is not list or type(rows) is not list:
        return None
    if any(text(record) is None for record in records):
        return None
    beats = []
    for row in rows:
        if type(row) is not list or len(row) != len(_ROW_READER):
            return None
        values = []
        for value, (check, required) in zip(row, _ROW_READER):
            if value is None:
                if required:
                    return None
            else:
                value = check(value)
                if value is None:
                    return None
            values.append(value)
        if not 0 <= values[0] < len(records) or values[1] < 0:
            return None
        beats.append(BeatRow._make(values))
    run, model_version, endpoint_ms, shard, inv = head
    return Beats(run, model_version, endpoint_ms, shard, inv, tuple(records), tuple(beats))


def beats_predictions(line: Beats) -> list[Prediction]:
    """The prediction lines a beats line stands for (``pred_name`` and ``seq`` are not kept in it: None)."""
    run, records = line.run, line.records
    return [Prediction(beat_id(run, records[row.record], row.sample), run, records[row.record], row.sample, row.t,
                       row.label, row.pred, None, row.prob, line.model_version, row.latency_ms, line.endpoint_ms,
                       row.rr_local_s, None, line.shard, line.inv)
            for row in line.beats]


# Lambda's own lines per invocation (START, END, REPORT), as the local cloud's poller writes them.
PLATFORM_BYTES_PER_INVOCATION = 250
CLOUDWATCH_EVENT_OVERHEAD_BYTES = 26  # billed per log event on top of its message


def log_bytes_per_beat(batch_size: int = 100, *, beats_per_s: float = 500.0, patients: int = 48,
                       emf_interval_s: float = 60.0) -> float:
    """CloudWatch Logs bytes ingested per classified beat, from typical lines of the handler's format.

    What the cost estimate (deploy/costs.py) charges for Logs ingestion, so it follows the format
    as it changes. Per invocation of ``batch_size`` beats (one endpoint call): one beats line, the
    summary line and Lambda's START / END / REPORT lines; per ``emf_interval_s``, one EMF line per
    patient (``patients`` streaming at ``beats_per_s`` in all). Each event costs its text plus the
    26 bytes CloudWatch bills per event.
    """
    row = BeatRow(0, 123456, 342.9444, 0, 0, 0.9987, 1234.5, 0.8167)
    beats = Beats("20261128T120000-ab12cd", "m-20261202-abcdef12", 12.3, "shardId-000000000000", 1234,
                  ("100",), (row,) * batch_size)
    summary = Summary(batch_size, batch_size, 0, 0, 1, 12.3, 45.6, None, 1234, 1)
    metrics = emf.PatientMetrics(1764331355123, "100", 3000, 120, 40, 400, 1234)
    per_invocation = (len(encode_line(beats)) + len(encode_line(summary)) + PLATFORM_BYTES_PER_INVOCATION
                      + 5 * CLOUDWATCH_EVENT_OVERHEAD_BYTES)
    emf_per_s = patients * (len(emf.encode_metrics(metrics)) + CLOUDWATCH_EVENT_OVERHEAD_BYTES) / emf_interval_s
    return per_invocation / batch_size + emf_per_s / beats_per_s
