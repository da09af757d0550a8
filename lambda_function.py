"""Kinesis → SageMaker → CloudWatch: the Lambda function that classifies streamed heartbeats.

Stdlib + boto3 only, so the file can be pasted into the Lambda console as it is. Shaped like
aws-lambda-powertools' batch processing: set-up from environment variables at import, small typed
accessors over the raw Kinesis event, ``parse_record`` raising ``BadRecord`` for one bad record, and a
short handler.

Per invocation (one shard's batch):

- every record is parsed; a malformed one is logged as ``rejected`` with the reason and never retried
  (retrying cannot fix it), the rest of the batch goes through;
- the good beats go to the endpoint in ONE ``invoke_endpoint`` call (several only to stay under the
  request size limit), never one call per record;
- one JSON line per prediction and one ``summary`` line are printed (Lambda sends stdout to
  CloudWatch Logs; the keys are flat so Logs Insights discovers them);
- when the endpoint fails, the response lists every record not yet predicted in
  ``batchItemFailures``: Lambda retries from the lowest of them, so nothing already logged is logged
  again for that batch (records are sent in sequence order and calls stop at the first failure);
- when the model container refuses a request's input (a 4xx ``ModelError``: a beat this handler
  accepts but the deployed model does not, e.g. a model packaged with stricter checks), retrying
  cannot help and would hold the shard: the request is halved until the refused beats are found,
  each is logged as ``rejected`` with the endpoint's reason, and the others are predicted.

Environment: ``ENDPOINT_NAME`` (required), ``ENDPOINT_TIMEOUT_S`` (read timeout of one call, default
20), ``ENDPOINT_MAX_ATTEMPTS`` (botocore attempts per call, default 2: the real retry is Kinesis'),
``ENDPOINT_MAX_REQUEST_BYTES`` (default 6,000,000; 4,000,000 for serverless endpoints).
Contracts (stream record, inference JSON, log lines, beat id): ``hbcore/contracts/`` and
docs/ARCHITECTURE.md. This file keeps its own copy of their writers and readers (it imports nothing
of the project); tests/contracts/ holds the copy to them, field by field.
"""

# No ``from __future__ import annotations`` here: with it, the dataclass below breaks under a loader
# that does not register the module in ``sys.modules`` (importlib's spec_from_file_location).
import base64
import binascii
import json
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TypedDict

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# The versions of the formats this file reads and writes (hbcore/contracts/<format>.py VERSION).
STREAM_RECORD_VERSION = 1
INFERENCE_VERSION = 1
LOG_LINES_VERSION = 1
BEAT_ID_VERSION = 1

BEAT_LENGTH = 187
N_CLASSES = 5
# A beat record is ~1.2 KB as JSON and ~4.7 KB as a Kaggle CSV line; anything far larger is not a
# beat, and refusing it early keeps a 1 MiB record from costing a full parse.
MAX_RECORD_BYTES = 64 * 1024
MAX_REASON_CHARS = 500  # of an endpoint's message quoted in a rejected line
# The endpoint refuses a whole request when one RR interval is outside (0, RR_MAX_S] seconds (the
# inference contract, hbcore/model/inference.py): such a record is rejected here, alone, so that it can
# never fail its batch over and over until the batch is given up.
RR_MAX_S = 200.0

ENDPOINT_NAME = os.environ.get("ENDPOINT_NAME", "")
ENDPOINT_TIMEOUT_S = float(os.environ.get("ENDPOINT_TIMEOUT_S", "20"))
ENDPOINT_MAX_ATTEMPTS = int(os.environ.get("ENDPOINT_MAX_ATTEMPTS", "2"))
ENDPOINT_MAX_REQUEST_BYTES = int(os.environ.get("ENDPOINT_MAX_REQUEST_BYTES", "6000000"))

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
    """The model container answered 4xx: something in the request's input; a retry cannot fix it."""


class KinesisRecord:
    """Typed view of one raw record of a Lambda Kinesis event."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    @property
    def sequence_number(self) -> str:
        return self.raw["kinesis"]["sequenceNumber"]

    @property
    def partition_key(self) -> str:
        return self.raw["kinesis"].get("partitionKey", "")

    @property
    def shard_id(self) -> str:
        """``eventID`` is ``"<shardId>:<sequenceNumber>"``."""
        return self.raw.get("eventID", "").partition(":")[0]

    def data(self) -> bytes:
        try:
            return base64.b64decode(self.raw["kinesis"]["data"], validate=True)
        except (binascii.Error, ValueError, TypeError) as error:
            raise BadRecord(f"data is not base64: {error}") from None


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


def _instance(beat: bytes, fields: dict[str, Any]) -> bytes:
    """One entry of the request's ``instances`` (inference contract): the beat and its RR features."""
    extra = b"".join(
        f',"{key}":{fields[key]!r}'.encode() for key in _RR_KEYS if fields.get(key) is not None
    )
    return b'{"beat":' + beat + extra + b"}"


def parse_record(record: KinesisRecord) -> Beat:
    """The beat carried by one Kinesis record; raises ``BadRecord`` naming why it cannot be classified."""
    data = record.data()
    if len(data) > MAX_RECORD_BYTES:
        raise BadRecord(f"record is {len(data):,} bytes, over the {MAX_RECORD_BYTES:,}-byte limit for one beat")
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
        return Beat(
            id=_optional_str(fields, "id") or f"{record.shard_id}:{record.sequence_number}",
            run=_optional_str(fields, "run"),
            record=_optional_str(fields, "record") or record.partition_key or None,
            sample=_optional_int(fields, "sample"),
            t=_optional_number(fields, "t"),
            label=_label(fields.get("label")),
            rr_local_s=fields["rr_local_s"],
            sent_at=_optional_number(fields, "sent_at"),
            seq=record.sequence_number,
            shard=record.shard_id,
            instance=_instance(beat, fields),
        )
    except BadRecord as error:
        error.fields = fields
        raise


def rejected_line(record: KinesisRecord, error: BadRecord) -> str:
    """The log line of a record that is never retried."""
    fields = error.fields
    return _to_json({
        "type": "rejected",
        "id": _text(fields.get("id")),
        "run": _text(fields.get("run")),
        "record": _text(fields.get("record")) or record.partition_key or None,
        "seq": record.sequence_number,
        "shard": record.shard_id,
        "reason": error.reason,
    })


def prediction_line(beat: Beat, prediction: dict[str, Any], model_version: str, endpoint_ms: float,
                    now_s: float) -> str:
    """The log line of one classified beat (``prediction`` already checked by ``parse_response``)."""
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


def refused_line(beat: Beat, refusal: InputRefused) -> str:
    """The log line of a beat the model container refused (never retried, like a malformed record)."""
    return _to_json({
        "type": "rejected",
        "id": beat.id,
        "run": beat.run,
        "record": beat.record,
        "seq": beat.seq,
        "shard": beat.shard,
        "reason": f"the endpoint refused this beat: {refusal}",
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
        if details.get("Code") == "ModelError" and 400 <= _status(error.response.get("OriginalStatusCode")) < 500:
            reason = str(error.response.get("OriginalMessage") or details.get("Message"))
            raise InputRefused(reason[:MAX_REASON_CHARS]) from None
        raise EndpointError(f"{details.get('Code', 'ClientError')}: {details.get('Message', error)}") from None
    except BotoCoreError as error:
        raise EndpointError(f"{type(error).__name__}: {error}") from None
    endpoint_ms = round((time.perf_counter() - started) * 1000.0, 1)
    predictions, version = parse_response(payload, len(beats))
    return predictions, version, endpoint_ms


def summary_line(records: int, predicted: int, rejected: int, failed: int, endpoint_calls: int,
                 endpoint_ms: float, handler_ms: float, error: str | None) -> str:
    """The log line closing one invocation: what became of its records, and where the time went."""
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
    })


def _emit(lines: list[str]) -> None:
    """Print log lines in one write (Lambda turns each stdout line into one log event)."""
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def lambda_handler(event: dict[str, Any], context: Any) -> PartialBatchResponse:
    """Classify a batch of Kinesis records; report the ones to retry (ReportBatchItemFailures)."""
    if not ENDPOINT_NAME:
        raise RuntimeError("ENDPOINT_NAME is not set: the function does not know which endpoint to call")
    started = time.perf_counter()
    records = [KinesisRecord(raw) for raw in event.get("Records", [])]
    beats: list[Beat] = []
    rejected: list[str] = []
    first_seen: dict[str, str] = {}
    for record in records:
        try:
            beat = parse_record(record)
            if beat.id in first_seen:
                raise BadRecord(f"duplicate id in this batch (first at sequence number {first_seen[beat.id]})",
                                {"id": beat.id, "run": beat.run, "record": beat.record})
        except BadRecord as error:
            rejected.append(rejected_line(record, error))
            continue
        first_seen[beat.id] = beat.seq
        beats.append(beat)
    _emit(rejected)

    predicted, refused, calls, endpoint_ms = 0, 0, 0, 0.0
    failure_reason: str | None = None  # why the endpoint failed the rest of the batch
    pending = deque(request_chunks(beats))  # in sequence order: beats[:predicted + refused] are done
    while pending:
        chunk = pending.popleft()
        calls += 1
        try:
            predictions, version, chunk_ms = invoke(chunk)
        except InputRefused as refusal:
            if len(chunk) > 1:  # halves, in order, until the refused beats stand alone
                pending.extendleft((chunk[len(chunk) // 2:], chunk[:len(chunk) // 2]))
            else:
                _emit([refused_line(chunk[0], refusal)])
                refused += 1
            continue
        except EndpointError as failure:
            failure_reason = str(failure)
            break
        endpoint_ms += chunk_ms
        now_s = time.time()
        _emit([prediction_line(beat, prediction, version, chunk_ms, now_s)
               for beat, prediction in zip(chunk, predictions)])
        predicted += len(chunk)

    failed = beats[predicted + refused:]
    _emit([summary_line(len(records), predicted, len(rejected) + refused, len(failed), calls, endpoint_ms,
                        (time.perf_counter() - started) * 1000.0, failure_reason)])
    return {"batchItemFailures": [{"itemIdentifier": beat.seq} for beat in failed]}
