"""The stream record: one beat as the replay puts it into Kinesis (``Data``) and the handler reads it.

JSON, UTF-8, one object (docs/ARCHITECTURE.md, "Stream record"), in :data:`FIELDS` order::

    {"id":"<run>:<record>:<sample>","run":"…","record":"100","sample":370,"t":1.0278,
     "beat":[0.1234,…187 values],"label":0,"rr_prev_s":0.8,"rr_next_s":0.8,"rr_local_s":0.8,
     "pre":[0.1234,…36 values],"context":[0.9871,null,…18 values],"sent_at":1764331355.123}

Partition key = record. Beat values carry :data:`BEAT_DECIMALS` decimals, times and RR intervals
:data:`SECONDS_DECIMALS`, context features :data:`CONTEXT_DECIMALS`; unknown values are null (a
Kaggle row has no time, RR, pre-R segment nor context, an unlabelled beat no label; one context
value may be null alone). ``pre`` and ``context`` (version 2) are what the patient's monitor adds
(``hbcore.data.patient``): the endpoint cannot, it never sees the patient's earlier beats.
The handler's fast path relies on the beat's text being plain decimals (``d`` or
``d.dddd``); :func:`beat_texts` writes nothing else for values in [0, 1].

The handler (``lambda_function.parse_record``, self-contained) is the production reader; it also
takes a bare CSV line of 187 values (188 with a label), the original project's format, and gives a
record without an id the fallback of :func:`hbcore.contracts.beat_id.stream_position_id`.
:func:`decode_record` accepts and refuses the JSON records the handler does (tests/contracts/ checks
both on the same inputs).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from hbcore.contracts.beat_id import beat_id
from hbcore.contracts.fields import Field, FormatError, kind_of, number, numbers, text, whole_number
from hbcore.contracts.inference import (
    BEAT_LENGTH,
    CONTEXT_LENGTH,
    N_CLASSES,
    PRE_R_LENGTH,
    RR_FIELDS,
    RR_MAX_S,
    context_values,
    rr_seconds,
)

VERSION = 2  # 2: "pre" and "context"
BEAT_DECIMALS = 4  # beat and pre-R segment values
SECONDS_DECIMALS = 4  # times and RR intervals
CONTEXT_DECIMALS = 4
SENT_AT_DECIMALS = 3
# A record is ~1.7 KB (1.2 KB before "pre" and "context"); the handler refuses anything over this before parsing it.
MAX_RECORD_BYTES = 64 * 1024

FIELDS = (
    Field("id", str, "beat id <run>:<record>:<sample> (hbcore.contracts.beat_id)"),
    Field("run", str, "replay run id"),
    Field("record", str, "MIT-BIH record ('100') or 'kaggle:<file stem>'; also the partition key"),
    Field("sample", int, "360 Hz sample index of the R peak (a Kaggle row's index)"),
    Field("t", float, f"s in the record, {SECONDS_DECIMALS} decimals"),
    Field("beat", list, f"{BEAT_LENGTH} window values, {BEAT_DECIMALS} decimals", required=True),
    Field("label", int, "class index (null: unlabelled)", choices=range(N_CLASSES)),
    *(Field(name, float, f"s, {SECONDS_DECIMALS} decimals, in (0, {RR_MAX_S:g}]") for name in RR_FIELDS),
    Field("pre", list, f"{PRE_R_LENGTH} values before the R peak, {BEAT_DECIMALS} decimals"),
    Field("context", list, f"{CONTEXT_LENGTH} context features, {CONTEXT_DECIMALS} decimals, each may be null"),
    Field("sent_at", float, f"epoch s when the replay sent it, {SENT_AT_DECIMALS} decimals"),
)


class StreamRecord(NamedTuple):
    """One record as read: None where the record holds null or nothing."""

    id: str | None
    run: str | None
    record: str | None
    sample: int | None
    t: float | None
    beat: np.ndarray  # (BEAT_LENGTH,) float64
    label: int | None
    rr_prev_s: float | None
    rr_next_s: float | None
    rr_local_s: float | None
    pre: np.ndarray | None  # (PRE_R_LENGTH,) float64
    context: np.ndarray | None  # (CONTEXT_LENGTH,) float64, NaN = unknown
    sent_at: float | None


# --- writer -----------------------------------------------------------------------------------------

# The text of every value 0.0000..1.0000 (beats are scaled to [0, 1]): formatting a beat is then a
# table lookup per value. ``repr(i / 10**4)`` is the shortest text that reads back as that value.
_SCALE = 10**BEAT_DECIMALS
_VALUE_TEXT = np.array([repr(index / _SCALE) for index in range(_SCALE + 1)], dtype=object)


def carried_beats(X: np.ndarray) -> np.ndarray:
    """Beat values as a record carries them (float64): what the handler and the endpoint read back."""
    return np.round(np.asarray(X, dtype=np.float64), BEAT_DECIMALS)


def carried_seconds(values: np.ndarray) -> np.ndarray:
    """Times and RR intervals as a record carries them (float64; NaN stays NaN, written as null)."""
    return np.round(np.asarray(values, dtype=np.float64), SECONDS_DECIMALS)


def carried_context(context: np.ndarray) -> np.ndarray:
    """Context features as a record carries them (float64; NaN stays NaN, written as null)."""
    return np.round(np.asarray(context, dtype=np.float64), CONTEXT_DECIMALS)


def pre_texts(pre: np.ndarray) -> list[str]:
    """Each pre-R segment as JSON (``[…]`` of :func:`beat_texts`), ``null`` when it holds a NaN (unknown)."""
    pre = np.asarray(pre, dtype=np.float64)
    known = np.isfinite(pre).all(axis=1)
    texts = ["null"] * len(pre)
    for row, values in zip(np.flatnonzero(known), beat_texts(pre[known])):
        texts[row] = f"[{values}]"
    return texts


def context_texts(context: np.ndarray) -> list[str]:
    """Each context as JSON, a NaN value as null, ``null`` for a context all NaN (unknown)."""
    rows = carried_context(context).tolist()
    texts = []
    for row in rows:
        values = ["null" if math.isnan(value) else repr(value) for value in row]
        texts.append("null" if all(value == "null" for value in values) else f"[{','.join(values)}]")
    return texts


def beat_texts(X: np.ndarray) -> list[str]:
    """Each row of ``X`` as comma-separated values with at most 4 decimals (JSON array content).

    Rows within [0, 1] are table lookups (~10 µs a beat, against ~35 µs for ``repr`` of each
    value); other rows go through ``repr`` of the rounded values, NaN included, so that a bad beat
    still reaches the handler and is rejected there, where it is accounted for.
    """
    scaled = np.rint(np.asarray(X, dtype=np.float64) * _SCALE)
    in_table = np.all((scaled >= 0) & (scaled <= _SCALE), axis=1)
    indices = np.where(in_table[:, None], scaled, 0).astype(np.intp)
    texts = [",".join(row) for row in _VALUE_TEXT[indices].tolist()]
    for row in np.flatnonzero(~in_table):
        texts[row] = ",".join(json.dumps(round(float(value), BEAT_DECIMALS)) for value in X[row])
    return texts


def seconds_texts(values: np.ndarray) -> list[str]:
    """Seconds as JSON numbers with 4 decimals, ``null`` where NaN (unknown)."""
    texts = list(map(repr, carried_seconds(values).tolist()))
    for index in np.flatnonzero(np.isnan(values)):
        texts[index] = "null"
    return texts


@functools.lru_cache(maxsize=4096)
def _json_text(value: str) -> str:
    """``value`` escaped for use between JSON quotes (cached: a replay has few runs and records)."""
    return json.dumps(value)[1:-1]


def encode_records(run: str, sent_at: float, records: Sequence[str], samples: Sequence[int],
                   labels: Sequence[int], beats: np.ndarray, t_s: np.ndarray,
                   rr: np.ndarray, pre: np.ndarray | None = None,
                   context: np.ndarray | None = None) -> list[tuple[str, str, bytes]]:
    """``(beat id, partition key, data)`` of the records of these beats of run ``run``.

    ``labels`` are class indices, -1 for unlabelled; ``t_s`` (n,) and ``rr`` (n, 3, in RR_FIELDS
    order) are seconds, ``pre`` (n, 36) the pre-R segments, ``context`` (n, 18) the context
    features, NaN where unknown (None: all unknown); ``sent_at`` is epoch seconds. One f-string per
    record: the replay formats every record it sends, at thousands a second.
    """
    run_text = _json_text(run)
    sent = repr(round(sent_at, SENT_AT_DECIMALS))
    t_texts = seconds_texts(t_s)
    rr_prev, rr_next, rr_local = (seconds_texts(column) for column in np.asarray(rr, dtype=np.float64).T)
    n = len(beats)
    pre_text = pre_texts(np.full((n, PRE_R_LENGTH), np.nan) if pre is None else pre)
    context_text = context_texts(np.full((n, CONTEXT_LENGTH), np.nan) if context is None else context)
    out = []
    for i, (beat_text, record, sample, label) in enumerate(zip(beat_texts(beats), records, samples, labels)):
        record_text = _json_text(record)
        data = (
            f'{{"id":"{beat_id(run_text, record_text, sample)}","run":"{run_text}","record":"{record_text}",'
            f'"sample":{sample},"t":{t_texts[i]},"beat":[{beat_text}],"label":{label if label >= 0 else "null"},'
            f'"rr_prev_s":{rr_prev[i]},"rr_next_s":{rr_next[i]},"rr_local_s":{rr_local[i]},'
            f'"pre":{pre_text[i]},"context":{context_text[i]},"sent_at":{sent}}}'
        )
        out.append((beat_id(run, record, sample), record, data.encode()))
    return out


# --- reader -----------------------------------------------------------------------------------------

def _document(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_RECORD_BYTES:
        raise FormatError(None, f"record is {len(data):,} bytes, over the {MAX_RECORD_BYTES:,}-byte limit for one beat")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormatError(None, f"not UTF-8: {error}") from None
    if not source.strip():
        raise FormatError(None, "empty record")
    try:
        document = json.loads(source)
    except RecursionError:
        raise FormatError(None, "JSON nested too deeply") from None
    except ValueError as error:
        raise FormatError(None, f"not a JSON object: {error}") from None
    if not isinstance(document, dict):
        raise FormatError(None, f"JSON {kind_of(document)}, expected an object with a 'beat' array")
    return document


def _value(field: Field, value: Any) -> Any:
    """A present, non-null value of ``field`` as read; raises :class:`FormatError`."""
    if field.name == "pre":
        return np.array(numbers(value, PRE_R_LENGTH, field.name), dtype=np.float64)
    if field.name == "context":
        return np.array([np.nan if v is None else v for v in context_values(value, field.name)], dtype=np.float64)
    if field.kind is list:
        return np.array(numbers(value, BEAT_LENGTH, field.name), dtype=np.float64)
    if field.name in RR_FIELDS:
        return rr_seconds(value, field.name)
    result: str | int | float | None
    if field.kind is str:
        result, expected = text(value), "a string"
    elif field.kind is int:
        result, expected = whole_number(value), "an integer"
    else:
        result, expected = number(value), "a finite number"
    if result is None or (field.choices is not None and result not in field.choices):
        raise FormatError(field.name, f"is {value!r:.40}, expected {expected}"
                          + ("" if field.choices is None else f" in {field.choices.start}..{field.choices.stop - 1}"))
    return result


def decode_record(data: bytes) -> StreamRecord:
    """One record's ``Data`` as a typed record; raises :class:`FormatError` naming the field and the reason."""
    document = _document(data)
    values = []
    for field in FIELDS:
        value = document.get(field.name)
        if value is None and field.required:
            raise FormatError(field.name, "is missing" if field.name not in document else "is null")
        values.append(None if value is None else _value(field, value))
    return StreamRecord._make(values)
