"""Kinesis → SageMaker → CloudWatch: the Lambda function that classifies streamed heartbeats.

Stdlib + boto3 only, so the file can be pasted into the Lambda console as it is. Shaped like
aws-lambda-powertools' batch processing: set-up from environment variables at import, small typed
accessors over the raw Kinesis event, ``parse_record`` raising ``BadRecord`` for one bad record, and a
short handler.

Per invocation (one shard's batch):

- a record that is not what Lambda documents (not an object, no ``kinesis.data``, data not base64) is
  one bad record: logged as ``rejected`` with the reason, never retried, never failing the batch; one
  without a ``sequenceNumber`` cannot be listed for retry at all, so it is always rejected (``seq``
  null). ``Records`` absent, null or not a list is an empty batch (a summary line only);
- a KPL-aggregated record (magic bytes, protobuf, MD5) is de-aggregated here (a small protobuf reader:
  stdlib only) and each user record is one beat, accounted for once: predicted, rejected or failed.
  A user record without an id gets ``<shard>:<seq>:<subsequence>``. A corrupt aggregate (MD5, protobuf)
  is one rejected record, its reason starting "KPL aggregate". Its user records share its sequence
  number: if one of them fails at the endpoint, that number goes to ``batchItemFailures`` and Lambda
  retries the whole aggregate, so the user records of it already predicted are logged again (the
  results reader keeps one prediction per beat id);
- every record is parsed; a malformed one is logged as ``rejected`` with the reason and never retried
  (retrying cannot fix it), the rest of the batch goes through; a gzip-compressed one (a CloudWatch
  Logs subscription payload) is named as such;
- the good beats go to the endpoint in ONE ``invoke_endpoint`` call (several only to stay under the
  request size limit), never one call per record;
- per endpoint call one compact ``beats`` line holds its beats (a ``prediction`` line each only for
  beats whose id is not ``<run>:<record>:<sample>``), then one ``summary`` line closes the
  invocation (Lambda sends stdout to CloudWatch Logs; the top-level keys are flat so Logs Insights
  discovers them). Every line carries ``inv``, the invocation's number in this execution
  environment, and the summary counts the lines before it (``lines``): the results reader
  reconciles each invocation against it. Rejected records keep their bytes (``data``) for
  ``python -m deploy replay-failed``. Per patient, counts go out as CloudWatch EMF lines at most
  every ``EMF_INTERVAL_S`` (hbcore/contracts/emf.py);
- when the endpoint fails, the response lists every record not yet predicted in
  ``batchItemFailures``: Lambda retries from the lowest of them, so nothing already logged is logged
  again for that batch (records are sent in sequence order and calls stop at the first failure);
- when the model refuses a request with its own message (a ``ModelError`` with the container's 4xx,
  or its 5xx and ``OriginalMessage``: the SageMaker scikit-learn container turns every exception of the
  model into a 500), the request is halved until the refused beats stand alone. They are ``rejected``
  with the model's reason only if the same model predicted another beat of the batch (or, for a batch
  of one beat, said 4xx): a model refusing everything it is sent is a deployment fault, and rejecting
  would make it permanent data loss, so the batch is then retried as for any endpoint failure (summary
  ``error`` says so, ``failed`` counts the beats). A beat refused alone with a 500 is asked about once
  more at the end and rejected only if refused again: a passing 500 must not lose it. Halving stops after
  ``REFUSALS_MAX_BEFORE_A_PREDICTION`` lone refusals with nothing predicted, so a broken model costs a
  few calls per retry, not one per beat.

Environment: ``ENDPOINT_NAME`` (required), ``ENDPOINT_TIMEOUT_S`` (read timeout of one call, default
20), ``ENDPOINT_MAX_ATTEMPTS`` (botocore attempts per call, default 2: the real retry is Kinesis'),
``ENDPOINT_MAX_REQUEST_BYTES`` (default 6,000,000; 4,000,000 for serverless endpoints),
``EMF_INTERVAL_S`` (seconds between per-patient EMF lines, default 60; 0: every invocation),
``EMF_PATIENT_METRICS`` (metrics also published per patient, comma-separated; default none).
Contracts (stream record, inference JSON, log lines, beat id): ``hbcore/contracts/`` and
docs/ARCHITECTURE.md. This file keeps its own copy of their writers and readers (it imports nothing
of the project); tests/contracts/ holds the copy to them, field by field.
"""

# No ``from __future__ import annotations`` here: with it, the dataclass below breaks under a loader
# that does not register the module in ``sys.modules`` (importlib's spec_from_file_location).
import base64
import binascii
import hashlib
import json
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# The versions of the formats this file reads and writes (hbcore/contracts/<format>.py VERSION).
STREAM_RECORD_VERSION = 2
INFERENCE_VERSION = 2
LOG_LINES_VERSION = 2
EMF_VERSION = 1
BEAT_ID_VERSION = 1

BEAT_LENGTH = 187
N_CLASSES = 5
# The optional pre-R segment and per-patient context a monitor adds to a beat (stream record version 2):
# passed on to the endpoint as they are, once checked.
PRE_R_LENGTH = 36
CONTEXT_LENGTH = 18
# A beat record is ~1.6 KB as JSON and ~4.7 KB as a Kaggle CSV line; anything far larger is not a
# beat, and refusing it early keeps a 1 MiB record from costing a full parse.
MAX_RECORD_BYTES = 64 * 1024
MAX_REASON_CHARS = 500  # of an endpoint's message quoted in a rejected line
# The endpoint refuses a whole request when one RR interval is outside (0, RR_MAX_S] seconds (the
# inference contract, hbcore/model/inference.py): such a record is rejected here, alone, so that it can
# never fail its batch over and over until the batch is given up.
RR_MAX_S = 200.0
# KPL aggregation (awslabs/amazon-kinesis-producer, aggregation-format.md): these magic bytes, a
# protobuf AggregatedRecord, then the MD5 of the protobuf. hbcore/contracts/kpl.py writes and reads it.
KPL_MAGIC = b"\xf3\x89\x9a\xc2"
KPL_DIGEST_BYTES = 16
GZIP_MAGIC = b"\x1f\x8b"  # a gzip-compressed record, e.g. a CloudWatch Logs subscription payload
# A model that refuses this many beats one by one and has predicted none of the batch is taken for a
# broken deployment: halving stops there (each refused beat cost a call) and the batch is retried.
REFUSALS_MAX_BEFORE_A_PREDICTION = 8

ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "")
ENDPOINT_TIMEOUT_S = float(os.environ.get("ENDPOINT_TIMEOUT_S", "20"))
ENDPOINT_MAX_ATTEMPTS = int(os.environ.get("ENDPOINT_MAX_ATTEMPTS", "2"))
ENDPOINT_MAX_REQUEST_BYTES = int(os.environ.get("ENDPOINT_MAX_REQUEST_BYTES", "6000000"))
# Per-patient EMF lines are printed at most this often per execution environment (0: every invocation).
EMF_INTERVAL_S = float(os.environ.get("EMF_INTERVAL_S", "60"))

# CloudWatch EMF (hbcore/contracts/emf.py): the per-patient counts, in class-index order N S V F Q.
EMF_NAMESPACE = "HeartbeatMonitor"
EMF_DIMENSION = "Patient"
EMF_METRICS = ("Beats", "VBeats", "SBeats", "AbnormalBeats")
# The metrics also published per patient (a custom metric per patient each; default none: fleet totals only).
EMF_PATIENT_METRICS = tuple(name.strip() for name in os.environ.get("EMF_PATIENT_METRICS", "").split(",")
                            if name.strip() in EMF_METRICS)
V_CLASS, S_CLASS, NORMAL_CLASS = 2, 1, 0

runtime = boto3.client(
    "sagemaker-runtime",
    config=Config(
        connect_timeout=min(5.0, ENDPOINT_TIMEOUT_S),
        read_timeout=ENDPOINT_TIMEOUT_S,
        retries={"total_max_attempts": ENDPOINT_MAX_ATTEMPTS, "mode": "standard"},
    ),
)

_MAX_EXACT_INT = 2**53  # larger JSON integers are not beat values, sample indices or times
_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_REQUEST_HEAD = b'{"instances":['
_REQUEST_TAIL = b"]}"
_RR_KEYS = ("rr_prev_s", "rr_next_s", "rr_local_s")

# Byte classes for the fast check of a beat's text: digits → "d", "," and "." kept, anything else "x".
_DIGIT_CLASSES = bytes(
    ord("d") if byte in b"0123456789" else byte if byte in b",." else ord("x") for byte in range(256)
)


class Environment:
    """What this execution environment remembers between invocations: their count, and the EMF counts
    not printed yet. Every line of an invocation carries its number (``inv``) and the summary counts the
    lines: the results reader reconciles each invocation against it (hbcore/contracts/log_lines.py)."""

    def __init__(self) -> None:
        self.invocations = 0
        self.patients: dict[str, list[int]] = {}  # patient → [beats, V, S, abnormal] since the last EMF lines
        self.emf_printed_s = 0.0  # never: the first invocation prints its patients' lines

    def count(self, patient: str | None, pred: int) -> None:
        if patient is None:
            return
        counts = self.patients.setdefault(patient, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += pred == V_CLASS
        counts[2] += pred == S_CLASS
        counts[3] += pred != NORMAL_CLASS

    def emf_lines(self, now_s: float, inv: int, interval_s: float = EMF_INTERVAL_S) -> list[str]:
        """One EMF line per patient counted since the last ones, once ``interval_s`` has passed."""
        if not self.patients or now_s - self.emf_printed_s < interval_s:
            return []
        lines = [emf_line(int(now_s * 1000), patient, counts, inv) for patient, counts in self.patients.items()]
        self.patients = {}
        self.emf_printed_s = now_s
        return lines


environment = Environment()


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


class BadRecord(ValueError):
    """A record that can never be classified; ``reason`` goes into its ``rejected`` log line."""

    def __init__(self, reason: str, fields: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}


class EndpointError(RuntimeError):
    """The endpoint call failed in a way a retry may fix (throttling, 5xx, timeout, bad response)."""


class InputRefused(RuntimeError):
    """The model container refused the request with its own message: maybe a beat, maybe the deployment.

    A 4xx, or a 5xx that carries the model's message: the SageMaker scikit-learn container turns any
    exception of ``input_fn``/``predict_fn``/``output_fn`` into a 500, so a 500 cannot tell a bad beat
    from a broken model. The handler decides by halving (``lambda_handler``). ``status`` is the
    container's HTTP status.
    """

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class KinesisRecord:
    """Typed view of one raw record of a Lambda Kinesis event.

    Never raises on a missing or mistyped field: a record Lambda (or a test, or a hand-made event)
    delivers without ``kinesis``, ``data`` or ``sequenceNumber``, or that is not even an object, is one
    bad record, rejected alone (``data`` raises ``BadRecord``); it must not fail its batch.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Any):
        self.raw = raw

    @property
    def _kinesis(self) -> dict[str, Any]:
        kinesis = self.raw.get("kinesis") if isinstance(self.raw, dict) else None
        return kinesis if isinstance(kinesis, dict) else {}

    @property
    def sequence_number(self) -> str | None:
        """None when absent or not a non-empty string: such a record cannot be listed for retry."""
        seq = self._kinesis.get("sequenceNumber")
        return seq if isinstance(seq, str) and seq else None

    @property
    def partition_key(self) -> str:
        key = self._kinesis.get("partitionKey")
        return key if isinstance(key, str) else ""

    @property
    def shard_id(self) -> str:
        """``eventID`` is ``"<shardId>:<sequenceNumber>"``."""
        event_id = self.raw.get("eventID") if isinstance(self.raw, dict) else None
        return event_id.partition(":")[0] if isinstance(event_id, str) else ""

    def data(self) -> bytes:
        if not isinstance(self.raw, dict):
            raise BadRecord(f"record is {_kind(self.raw)}, expected an object")
        if self.sequence_number is None:
            # Without one, the record can be neither retried (batchItemFailures) nor found again.
            raise BadRecord("no 'kinesis.sequenceNumber': the record cannot be retried nor traced")
        data = self._kinesis.get("data")
        if not isinstance(data, str):
            raise BadRecord(f"'kinesis.data' is {'missing' if data is None else _kind(data)}, expected base64 text")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise BadRecord(f"data is not base64: {error}") from None


class UserRecord(NamedTuple):
    """One user record of a Kinesis record: the record itself, or one of a KPL aggregate's.

    ``position_id`` is the id of a beat whose payload carries none: ``<shard>:<seq>`` for a plain
    record, ``<shard>:<seq>:<subsequence>`` inside an aggregate (stable across retries).
    """

    data: bytes
    partition_key: str
    position_id: str
    subsequence: int | None = None  # its index in a KPL aggregate; None for a plain record


@dataclass(slots=True)
class Beat:
    """One parsed beat: what the log line needs, and its instance in the request body."""

    id: str
    run: str | None
    record: str | None
    sample: int | None
    t: float | None
    label: int | None
    rr_local_s: float | None
    sent_at: float | None
    seq: str
    shard: str
    instance: bytes


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a bool), else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return float(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_str(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"'{key}' is {_kind(value)}, expected a string")


def _optional_number(fields: dict[str, Any], key: str) -> float | None:
    value = fields.get(key)
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise BadRecord(f"'{key}' is {value!r:.40}, expected a finite number")
    return number


def _optional_int(fields: dict[str, Any], key: str) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    number = _finite(value)
    if number is None or number != int(number):
        raise BadRecord(f"'{key}' is {value!r:.40}, expected an integer")
    return int(number)


def _rr_seconds(fields: dict[str, Any], key: str) -> float | None:
    value = _optional_number(fields, key)
    if value is not None and not 0 < value <= RR_MAX_S:
        raise BadRecord(f"'{key}' is {value!r:.40}, expected seconds in (0, {RR_MAX_S:g}]")
    return value


def _label(value: Any) -> int | None:
    if value is None:
        return None
    number = _finite(value)
    if number is None or number not in (0, 1, 2, 3, 4):
        raise BadRecord(f"label {value!r:.40} is not one of 0..4")
    return int(number)


def _plain_decimals(text: bytes, count: int) -> bool:
    """True if ``text`` is exactly ``count`` comma-separated values of the form ``d`` or ``d.ddd…``.

    That is what the replay writes (4 decimals in [0, 1]), and such text is valid JSON for ``count``
    finite numbers, so it can go to the endpoint as it is. The check is a few C-level byte scans
    (~10 µs for 187 values, against ~35 µs to parse 187 floats); anything else (signs, exponents,
    spaces, values ≥ 10) returns False and takes the exact path.
    """
    classes = (b"," + text + b",").translate(_DIGIT_CLASSES)
    if b"x" in classes or classes.count(b",") != count + 1:
        return False
    if b".." in classes.translate(None, b"d"):  # two dots in one value
        return False
    return (
        classes.count(b",d") == count  # every value starts with a digit
        and classes.count(b"d.d") == classes.count(b".")  # every dot sits between digits
        and b",dd" not in classes  # one integer digit: no leading zeros, no overflow
    )


def _beat_json(values: Any, what: str) -> bytes:
    """The JSON text of a beat given as a decoded list, after checking every value (exact path)."""
    if not isinstance(values, list):
        raise BadRecord(f"{what} is {_kind(values)}, expected an array of {BEAT_LENGTH} numbers")
    if len(values) != BEAT_LENGTH:
        raise BadRecord(f"{what} has {len(values):,} values, expected {BEAT_LENGTH}")
    if set(map(type, values)) == {float} and all(map(math.isfinite, values)):
        return _to_json(values).encode()
    numbers = [_finite(value) for value in values]
    for index, number in enumerate(numbers):
        if number is None:
            value = values[index]
            kind = "NaN or infinite" if type(value) is float else _kind(value)
            raise BadRecord(f"{what}[{index}] is {kind}, expected a finite number")
    return _to_json(numbers).encode()


def _json_payload(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A JSON record's fields and its beat's JSON text."""
    fast = _json_payload_fast(data)
    if fast is not None:
        return fast
    try:
        fields = json.loads(data)
    except RecursionError:
        raise BadRecord("JSON nested too deeply") from None
    except ValueError as error:
        raise BadRecord(f"not valid JSON: {error}") from None
    if not isinstance(fields, dict):
        raise BadRecord(f"JSON {_kind(fields)}, expected an object with a 'beat' array")
    if "beat" not in fields:
        raise BadRecord("missing 'beat'", fields)
    try:
        return fields, _beat_json(fields["beat"], "'beat'")
    except BadRecord as error:
        raise BadRecord(error.reason, fields) from None


def _json_payload_fast(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """Parse everything but the beat, whose text is checked and kept as it is; None if unsure.

    Sound only when the ``"beat":[`` found is the top-level key: no other ``"beat"`` and no
    backslash (no key spelled with escapes) outside the array, and the record with the array
    replaced by a placeholder parsing to an object whose ``beat`` is that placeholder.
    """
    start = data.find(b'"beat":[')
    end = data.find(b"]", start)
    if start < 0 or end < 0:
        return None
    head, beat, tail = data[: start + 1], data[start + 8 : end], data[end + 1 :]
    # The checked array holds only digits, commas and dots, so looking around it is enough.
    if b'"beat"' in head or b'"beat"' in tail or b"\\" in head or b"\\" in tail:
        return None
    if not _plain_decimals(beat, BEAT_LENGTH):
        return None
    try:
        fields = json.loads(data[:start] + b'"beat":0' + tail)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict) or fields.get("beat") != 0:
        return None
    return fields, b"[" + beat + b"]"


def _csv_payload(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A bare CSV line (the original project's format): 187 values, or 188 with the label last."""
    line = data.strip()
    if line.count(b",") == BEAT_LENGTH:
        head, _, last = line.rpartition(b",")
        if _plain_decimals(head, BEAT_LENGTH):
            return {"label": _label(_finite_token(last.decode(), BEAT_LENGTH))}, b"[" + head + b"]"
    elif _plain_decimals(line, BEAT_LENGTH):
        return {}, b"[" + line + b"]"
    tokens = data.decode("utf-8").strip().split(",")
    try:
        values = list(map(float, tokens))
    except ValueError:
        values = []
    if len(values) != len(tokens) or not all(map(math.isfinite, values)):
        values = [_finite_token(token, index) for index, token in enumerate(tokens)]  # raises, naming the value
    if len(values) not in (BEAT_LENGTH, BEAT_LENGTH + 1):
        raise BadRecord(f"{len(values):,} values, expected {BEAT_LENGTH} (or {BEAT_LENGTH + 1} with a label)")
    label = _label(values.pop()) if len(values) > BEAT_LENGTH else None
    return {"label": label}, _to_json(values).encode()


def _finite_token(token: str, index: int) -> float:
    """One CSV value as a finite float; the reason names the value's position and text."""
    try:
        number = float(token)
    except ValueError:
        raise BadRecord(
            f"neither a JSON object nor a CSV line of numbers: value {index + 1} is {token.strip()!r:.40}"
        ) from None
    if not math.isfinite(number):
        raise BadRecord(f"value {index + 1} is {token.strip()!r:.20}, expected a finite number")
    return number


def _numbers(fields: dict[str, Any], key: str, count: int, nulls: bool) -> list[float | None] | None:
    """``fields[key]``: None, or ``count`` finite numbers (also nulls when ``nulls``), checked."""
    values = fields.get(key)
    if values is None:
        return None
    if not isinstance(values, list):
        raise BadRecord(f"'{key}' is {_kind(values)}, expected an array of {count} numbers")
    if len(values) != count:
        raise BadRecord(f"'{key}' has {len(values):,} values, expected {count}")
    checked = [None if value is None and nulls else _finite(value) for value in values]
    for index, (value, number) in enumerate(zip(values, checked)):
        if number is None and not (value is None and nulls):
            raise BadRecord(f"'{key}'[{index}] is {value!r:.40}, expected a finite number")
    return checked


def _instance(beat: bytes, fields: dict[str, Any]) -> bytes:
    """One entry of the request's ``instances`` (inference contract): the beat, its RR features,
    pre-R segment and context."""
    extra = b"".join(
        f',"{key}":{fields[key]!r}'.encode() for key in _RR_KEYS if fields.get(key) is not None
    )
    for key in ("pre", "context"):
        if fields.get(key) is not None:
            extra += f',"{key}":'.encode() + _to_json(fields[key]).encode()
    return b'{"beat":' + beat + extra + b"}"


def _varint(buffer: bytes, offset: int) -> tuple[int, int]:
    """The protobuf base-128 varint at ``offset`` and the offset after it."""
    value = shift = 0
    while offset < len(buffer):
        byte = buffer[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
        if shift >= 70:
            raise BadRecord("KPL aggregate: a varint longer than 10 bytes")
    raise BadRecord("KPL aggregate: a varint runs past the end")


def protobuf_fields(buffer: bytes) -> list[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of one protobuf message, in order; raises ``BadRecord``.

    A varint gives an int, a length-delimited field its bytes; fixed 32/64-bit fields (none in the KPL
    format) are skipped, so that a producer's extension cannot make a valid aggregate unreadable.
    Groups (wire types 3, 4, deprecated) and truncation are corrupt input.
    """
    fields: list[tuple[int, int | bytes]] = []
    offset = 0
    while offset < len(buffer):
        key, offset = _varint(buffer, offset)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise BadRecord("KPL aggregate: field number 0")
        if wire_type == 0:
            value, offset = _varint(buffer, offset)
            fields.append((number, value))
        elif wire_type == 2:
            length, offset = _varint(buffer, offset)
            if length > len(buffer) - offset:
                raise BadRecord(f"KPL aggregate: field {number} of {length:,} bytes runs past the end")
            fields.append((number, buffer[offset:offset + length]))
            offset += length
        elif wire_type in (1, 5):
            offset += 8 if wire_type == 1 else 4
            if offset > len(buffer):
                raise BadRecord(f"KPL aggregate: fixed-width field {number} runs past the end")
        else:
            raise BadRecord(f"KPL aggregate: field {number} has wire type {wire_type}, not one protobuf 3 writes")
    return fields


def _protobuf_bytes(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise BadRecord(f"KPL aggregate: {what} is a varint, expected bytes")
    return value


def deaggregate(data: bytes) -> list[tuple[str, bytes]]:
    """``(partition key, data)`` of each user record of a KPL aggregate, in order; raises ``BadRecord``.

    The KPL (and many producers) pack several user records into one Kinesis record. Explicit hash keys
    and tags are read past: they only route the record to its shard.
    """
    if len(data) < len(KPL_MAGIC) + KPL_DIGEST_BYTES:
        raise BadRecord(f"KPL aggregate: {len(data)} bytes, too short for the magic bytes and the MD5")
    message, digest = data[len(KPL_MAGIC):-KPL_DIGEST_BYTES], data[-KPL_DIGEST_BYTES:]
    if hashlib.md5(message, usedforsecurity=False).digest() != digest:
        raise BadRecord("KPL aggregate: the MD5 does not match the protobuf (corrupt or truncated)")
    keys: list[str] = []
    records: list[bytes] = []
    for number, value in protobuf_fields(message):
        if number == 1:
            try:
                keys.append(_protobuf_bytes(value, "a partition key").decode("utf-8"))
            except UnicodeDecodeError:
                raise BadRecord("KPL aggregate: a partition key is not UTF-8") from None
        elif number == 3:
            records.append(_protobuf_bytes(value, "a record"))
    if not records:
        raise BadRecord("KPL aggregate: no records")
    users = []
    for index, record in enumerate(records):
        key_index: int | None = None
        payload: bytes | None = None
        for number, value in protobuf_fields(record):
            if number == 1:
                if not isinstance(value, int):
                    raise BadRecord(f"KPL aggregate: record {index}: partition_key_index is not a varint")
                key_index = value
            elif number == 3:
                payload = _protobuf_bytes(value, f"record {index}'s data")
        if key_index is None or payload is None:
            missing = "data" if key_index is not None else "partition_key_index"
            raise BadRecord(f"KPL aggregate: record {index} has no {missing}")
        if key_index >= len(keys):
            raise BadRecord(f"KPL aggregate: record {index}: partition key {key_index} of a table of {len(keys)}")
        users.append((keys[key_index], payload))
    return users


def user_records(record: KinesisRecord) -> list[UserRecord]:
    """The user records of one Kinesis record: itself, or each one of a KPL aggregate; raises ``BadRecord``."""
    data = record.data()
    position = f"{record.shard_id}:{record.sequence_number}"
    if not data.startswith(KPL_MAGIC):
        return [UserRecord(data, record.partition_key, position)]
    return [UserRecord(inner, key, f"{position}:{index}", index)
            for index, (key, inner) in enumerate(deaggregate(data))]


def parse_record(record: KinesisRecord) -> Beat:
    """The beat carried by a Kinesis record of one user record; raises ``BadRecord`` naming why it cannot be
    classified (an aggregate of several is one of the reasons: the handler reads those through
    ``user_records``)."""
    users = user_records(record)
    if len(users) != 1:
        raise BadRecord(f"a KPL aggregate of {len(users)} user records, expected one beat")
    return parse_user_record(users[0], record)


def parse_user_record(user: UserRecord, record: KinesisRecord) -> Beat:
    """The beat carried by one user record of ``record``; raises ``BadRecord`` naming why it cannot be classified."""
    data = user.data
    if len(data) > MAX_RECORD_BYTES:
        raise BadRecord(f"record is {len(data):,} bytes, over the {MAX_RECORD_BYTES:,}-byte limit for one beat")
    if data.startswith(GZIP_MAGIC):
        raise BadRecord("gzip-compressed: not supported (send plain JSON or CSV; a CloudWatch Logs subscription "
                        "is not a beat stream)")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRecord(f"not UTF-8: {error}") from None
    head = data.lstrip()[:1]
    if not head:
        raise BadRecord("empty record")
    if head in (b"{", b"["):
        fields, beat = _json_payload(data)
    else:
        fields, beat = _csv_payload(data)
    try:
        for key in _RR_KEYS:
            fields[key] = _rr_seconds(fields, key)
        fields["pre"] = _numbers(fields, "pre", PRE_R_LENGTH, nulls=False)
        fields["context"] = _numbers(fields, "context", CONTEXT_LENGTH, nulls=True)
        return Beat(
            id=_optional_str(fields, "id") or user.position_id,
            run=_optional_str(fields, "run"),
            record=_optional_str(fields, "record") or user.partition_key or None,
            sample=_optional_int(fields, "sample"),
            t=_optional_number(fields, "t"),
            label=_label(fields.get("label")),
            rr_local_s=fields["rr_local_s"],
            sent_at=_optional_number(fields, "sent_at"),
            seq=str(record.sequence_number),  # present: ``record.data`` refuses a record without one
            shard=record.shard_id,
            instance=_instance(beat, fields),
        )
    except BadRecord as error:
        error.fields = fields
        raise


def _payload(data: bytes) -> str | None:
    """A rejected record's bytes in base64 for its log line (``hbcore.aws.failed`` replays them); None if too large."""
    return base64.b64encode(data).decode() if len(data) <= MAX_RECORD_BYTES else None


def _delivered_payload(record: KinesisRecord) -> str | None:
    """The record's ``data`` as Lambda delivered it (base64 text, maybe not valid), if it is text and not too large."""
    data = record._kinesis.get("data")
    return data if isinstance(data, str) and len(data) <= MAX_RECORD_BYTES * 4 // 3 + 4 else None


def rejected_line(record: KinesisRecord, error: BadRecord, user: UserRecord | None = None,
                  inv: int | None = None) -> str:
    """The log line of a record, or of one user record of ``record``'s KPL aggregate, that is never retried.

    A user record inside an aggregate shares the aggregate's sequence number: it keeps its position id
    (``<shard>:<seq>:<index>``) when its payload names none, so that its line names which one it was.
    The line keeps the record's bytes (``data``, base64), so that it can be replayed once fixed.
    """
    fields = error.fields
    inner_id = user.position_id if user is not None and user.subsequence is not None else None
    return _to_json({
        "type": "rejected",
        "id": _text(fields.get("id")) or inner_id,
        "run": _text(fields.get("run")),
        "record": _text(fields.get("record")) or (user.partition_key if user else record.partition_key) or None,
        "seq": record.sequence_number,
        "shard": record.shard_id,
        "reason": error.reason,
        "inv": inv,
        "data": _payload(user.data) if user is not None else _delivered_payload(record),
    })


def prediction_line(beat: Beat, prediction: dict[str, Any], model_version: str, endpoint_ms: float,
                    now_s: float, inv: int | None = None) -> str:
    """The log line of one classified beat whose id is not its run, record and sample (``beats_line``
    holds the others); ``prediction`` already checked by ``parse_response``."""
    index = prediction["class_index"]
    return _to_json({
        "type": "prediction",
        "id": beat.id,
        "run": beat.run,
        "record": beat.record,
        "sample": beat.sample,
        "t": beat.t,
        "label": beat.label,
        "pred": index,
        "pred_name": _text(prediction.get("class_name")),
        "prob": round(prediction["probabilities"][index], 4),
        "model_version": model_version,
        "latency_ms": None if beat.sent_at is None else round((now_s - beat.sent_at) * 1000.0, 1),
        "endpoint_ms": endpoint_ms,
        "rr_local_s": beat.rr_local_s,
        "seq": beat.seq,
        "shard": beat.shard,
        "inv": inv,
    })


def compact(beat: Beat) -> bool:
    """Whether a beats line can hold ``beat``: its id is ``<run>:<record>:<sample>`` of its own fields."""
    return (beat.run is not None and beat.record is not None and beat.sample is not None and beat.sample >= 0
            and beat.id == f"{beat.run}:{beat.record}:{beat.sample}")


def beats_line(beats: list[Beat], predictions: list[dict[str, Any]], model_version: str, endpoint_ms: float,
               now_s: float, inv: int | None = None) -> str:
    """The compact log line of the beats of one endpoint call (all ``compact``, of one run): ~50 bytes a
    beat, against ~400 for prediction lines. Rows: record index, sample, t, label, pred, prob, latency, RR."""
    records: dict[str, int] = {}
    rows = []
    for beat, prediction in zip(beats, predictions):
        index = prediction["class_index"]
        rows.append([records.setdefault(str(beat.record), len(records)), beat.sample, beat.t, beat.label, index,
                     round(prediction["probabilities"][index], 4),
                     None if beat.sent_at is None else round((now_s - beat.sent_at) * 1000.0, 1), beat.rr_local_s])
    return _to_json({
        "type": "beats",
        "run": beats[0].run,
        "model_version": model_version,
        "endpoint_ms": endpoint_ms,
        "shard": beats[0].shard,
        "inv": inv,
        "records": list(records),
        "beats": rows,
    })


def classified_lines(beats: list[Beat], predictions: list[dict[str, Any]], model_version: str, endpoint_ms: float,
                     now_s: float, inv: int | None = None) -> list[str]:
    """The log lines of one endpoint call's beats: a beats line per run, a prediction line per other beat."""
    runs: dict[str, tuple[list[Beat], list[dict[str, Any]]]] = {}
    lines = []
    for beat, prediction in zip(beats, predictions):
        if compact(beat):
            group = runs.setdefault(str(beat.run), ([], []))
            group[0].append(beat)
            group[1].append(prediction)
        else:
            lines.append(prediction_line(beat, prediction, model_version, endpoint_ms, now_s, inv))
    return [beats_line(*group, model_version, endpoint_ms, now_s, inv) for group in runs.values()] + lines


def emf_line(timestamp_ms: int, patient: str, counts: list[int], inv: int | None = None,
             patient_metrics: tuple[str, ...] = EMF_PATIENT_METRICS) -> str:
    """One patient's counts in CloudWatch's Embedded Metric Format (hbcore/contracts/emf.py): the fleet
    totals of every metric, and ``patient_metrics`` with the Patient dimension."""
    directives = [{"Namespace": EMF_NAMESPACE, "Dimensions": [[]],
                   "Metrics": [{"Name": name, "Unit": "Count"} for name in EMF_METRICS]}]
    if patient_metrics:
        directives.append({"Namespace": EMF_NAMESPACE, "Dimensions": [[EMF_DIMENSION]],
                           "Metrics": [{"Name": name, "Unit": "Count"} for name in patient_metrics]})
    return _to_json({
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives},
        EMF_DIMENSION: patient,
        **dict(zip(EMF_METRICS, counts)),
        "inv": inv,
    })


def request_chunks(beats: list[Beat], max_bytes: int = ENDPOINT_MAX_REQUEST_BYTES) -> list[list[Beat]]:
    """Consecutive runs of beats whose request bodies each stay within ``max_bytes``."""
    chunks: list[list[Beat]] = []
    size = max_bytes  # forces a first chunk
    for beat in beats:
        grown = size + len(beat.instance) + 1
        if grown > max_bytes:
            chunks.append([])
            grown = len(_REQUEST_HEAD) + len(_REQUEST_TAIL) + len(beat.instance)
        chunks[-1].append(beat)
        size = grown
    return chunks


def parse_response(payload: bytes, expected: int) -> tuple[list[dict[str, Any]], str]:
    """The endpoint's predictions, checked against the inference contract."""
    try:
        body = json.loads(payload)
        predictions, version = body["predictions"], str(body.get("model_version", ""))
        if len(predictions) != expected:
            raise ValueError(f"{len(predictions)} predictions for {expected} beats")
        for prediction in predictions:
            index, probabilities = prediction["class_index"], prediction["probabilities"]
            if (type(index) is not int or not 0 <= index < N_CLASSES or len(probabilities) != N_CLASSES
                    or _finite(probabilities[index]) is None):
                raise ValueError(f"malformed prediction {json.dumps(prediction)[:200]}")
    except (ValueError, KeyError, TypeError) as error:
        raise EndpointError(f"unexpected endpoint response: {error}") from None
    return predictions, version


def _status(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def refused_line(beat: Beat, refusal: InputRefused, inv: int | None = None, data: bytes | None = None) -> str:
    """The log line of a beat the model container refused (never retried, like a malformed record), with
    the user record's bytes ``data`` to replay it."""
    return _to_json({
        "type": "rejected",
        "id": beat.id,
        "run": beat.run,
        "record": beat.record,
        "seq": beat.seq,
        "shard": beat.shard,
        "reason": f"the endpoint refused this beat: {refusal}",
        "inv": inv,
        "data": None if data is None else _payload(data),
    })


def request_body(beats: list[Beat]) -> bytes:
    """The inference request for ``beats``: their instances, as parsed, in one ``instances`` array."""
    return _REQUEST_HEAD + b",".join(beat.instance for beat in beats) + _REQUEST_TAIL


def invoke(beats: list[Beat]) -> tuple[list[dict[str, Any]], str, float]:
    """Classify ``beats`` in one endpoint call: (predictions, model version, call time in ms)."""
    body = request_body(beats)
    started = time.perf_counter()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=ENDPOINT_NAME, ContentType="application/json", Accept="application/json", Body=body
        )
        payload = response["Body"].read()
    except ClientError as error:
        details = error.response.get("Error", {})
        status = _status(error.response.get("OriginalStatusCode"))
        message = error.response.get("OriginalMessage")
        if details.get("Code") == "ModelError" and (400 <= status < 500 or (status >= 500 and message)):
            reason = str(message or details.get("Message"))
            raise InputRefused(reason[:MAX_REASON_CHARS], status) from None
        raise EndpointError(f"{details.get('Code', 'ClientError')}: {details.get('Message', error)}") from None
    except BotoCoreError as error:
        raise EndpointError(f"{type(error).__name__}: {error}") from None
    endpoint_ms = round((time.perf_counter() - started) * 1000.0, 1)
    predictions, version = parse_response(payload, len(beats))
    return predictions, version, endpoint_ms


def summary_line(records: int, predicted: int, rejected: int, failed: int, endpoint_calls: int,
                 endpoint_ms: float, handler_ms: float, error: str | None, inv: int | None = None,
                 lines: int | None = None) -> str:
    """The log line closing one invocation: what became of its records, where the time went, and how many
    lines it printed before (``lines``), so a reader can tell when it has them all."""
    return _to_json({
        "type": "summary",
        "records": records,
        "predicted": predicted,
        "rejected": rejected,
        "failed": failed,
        "endpoint_calls": endpoint_calls,
        "endpoint_ms": round(endpoint_ms, 1),
        "handler_ms": round(handler_ms, 1),
        "error": error,
        "inv": inv,
        "lines": lines,
    })


def _emit(lines: list[str]) -> int:
    """Print log lines in one write (Lambda turns each stdout line into one log event); their number."""
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    return len(lines)


def _records_of(event: Any) -> list[KinesisRecord]:
    """The event's records; none when ``Records`` is absent, null or not a list (a test event, a
    misrouted trigger): an empty batch, not a failed invocation that Lambda would retry."""
    raw = event.get("Records") if isinstance(event, dict) else None
    return [KinesisRecord(item) for item in raw] if isinstance(raw, list) else []


def lambda_handler(event: dict[str, Any], context: Any) -> PartialBatchResponse:
    """Classify a batch of Kinesis records; report the ones to retry (ReportBatchItemFailures)."""
    if not ENDPOINT_NAME:
        raise RuntimeError("ENDPOINT_NAME is not set: the function does not know which endpoint to call")
    started = time.perf_counter()
    environment.invocations += 1
    inv = environment.invocations
    records = _records_of(event)
    beats: list[Beat] = []
    rejected: list[str] = []
    first_seen: dict[str, str] = {}
    payloads: dict[str, bytes] = {}  # beat id → its user record's bytes, for a refused beat's line
    user_count = 0  # user records: a KPL aggregate counts each of its own
    for record in records:
        try:
            users = user_records(record)
        except BadRecord as error:
            rejected.append(rejected_line(record, error, inv=inv))
            user_count += 1
            continue
        user_count += len(users)
        for user in users:
            try:
                beat = parse_user_record(user, record)
                if beat.id in first_seen:
                    raise BadRecord(f"duplicate id in this batch (first at sequence number {first_seen[beat.id]})",
                                    {"id": beat.id, "run": beat.run, "record": beat.record})
            except BadRecord as error:
                rejected.append(rejected_line(record, error, user, inv))
                continue
            first_seen[beat.id] = beat.seq
            payloads[beat.id] = user.data
            beats.append(beat)
    printed = _emit(rejected)

    predicted, calls, endpoint_ms = 0, 0, 0.0
    refusals: list[tuple[Beat, InputRefused]] = []  # single beats the model refused, in order
    refusal: InputRefused | None = None  # the last refusal
    failure_reason: str | None = None  # why the endpoint failed the rest of the batch
    pending = deque(request_chunks(beats))  # in sequence order: beats[:predicted + len(refusals)] are done
    while pending:
        chunk = pending.popleft()
        calls += 1
        try:
            predictions, version, chunk_ms = invoke(chunk)
        except InputRefused as refused:
            refusal = refused
            if len(chunk) == 1:
                refusals.append((chunk[0], refused))
            elif predicted or len(refusals) < REFUSALS_MAX_BEFORE_A_PREDICTION:
                pending.extendleft((chunk[len(chunk) // 2:], chunk[:len(chunk) // 2]))  # in order
            else:
                break
            continue
        except EndpointError as failure:
            failure_reason = str(failure)
            break
        endpoint_ms += chunk_ms
        printed += _emit(classified_lines(chunk, predictions, version, chunk_ms, time.time(), inv))
        for beat, prediction in zip(chunk, predictions):
            environment.count(beat.record, prediction["class_index"])
        predicted += len(chunk)

    # A refusal is the beat's fault only if the same model predicted another beat of the batch (or, for a
    # batch of one beat, said so with a 4xx). A model refusing all it is sent is a deployment fault:
    # rejecting would turn it into permanent data loss, so the batch is retried as for any endpoint failure.
    if refusal is not None and not predicted and not (len(beats) == 1 and refusal.status < 500):
        failure_reason = failure_reason or (
            f"the endpoint refused every beat it was sent ({len(refusals)} one by one, {refusal.status}); "
            f"taken for a deployment fault, not the data: {refusal}")
        refusals = []
    failed = beats[predicted + len(refusals):]
    # A lone 500 may be a passing fault of the container as well as a beat it refuses: a beat refused so
    # is asked about once more, after the model predicted others, and rejected only if refused again
    # (while the endpoint is failing, it is retried instead).
    standing: list[tuple[Beat, InputRefused]] = []
    for beat, lone in refusals:
        if lone.status < 500:
            standing.append((beat, lone))
            continue
        if failure_reason is not None:
            failed.append(beat)
            continue
        calls += 1
        try:
            predictions, version, chunk_ms = invoke([beat])
        except InputRefused as again:
            standing.append((beat, again))
            continue
        except EndpointError as failure:
            failure_reason = str(failure)
            failed.append(beat)
            continue
        endpoint_ms += chunk_ms
        printed += _emit(classified_lines([beat], predictions, version, chunk_ms, time.time(), inv))
        environment.count(beat.record, predictions[0]["class_index"])
        predicted += 1
    printed += _emit([refused_line(beat, lone, inv, payloads.get(beat.id)) for beat, lone in standing])
    printed += _emit(environment.emf_lines(time.time(), inv))
    _emit([summary_line(user_count, predicted, len(rejected) + len(standing), len(failed), calls, endpoint_ms,
                        (time.perf_counter() - started) * 1000.0, failure_reason, inv, printed)])
    # The user records of one KPL aggregate share its sequence number: it is listed once.
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in dict.fromkeys(beat.seq for beat in failed)]}
