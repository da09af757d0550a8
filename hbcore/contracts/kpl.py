"""KPL aggregation: several user records packed into one Kinesis record, as the Kinesis Producer Library does.

Format (awslabs/amazon-kinesis-producer, ``aggregation-format.md``): :data:`MAGIC`, then a protobuf
``AggregatedRecord``, then the 16-byte MD5 of that protobuf::

    message AggregatedRecord { repeated string partition_key_table = 1;
                               repeated string explicit_hash_key_table = 2;
                               repeated Record records = 3; }
    message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
                     required bytes data = 3; repeated Tag tags = 4; }

:func:`encode_aggregate` writes it (what a KPL producer sends; the tests' aggregates);
:func:`decode_aggregate` reads it. The handler (``lambda_function.deaggregate``, self-contained) is the
production reader; tests/contracts/test_contract_kpl.py holds the two readers to the same answers.
Stdlib only, like the handler: a few lines of protobuf wire format need no protobuf package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hbcore.contracts.fields import FormatError

VERSION = 1
MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16

_VARINT, _LENGTH_DELIMITED = 0, 2


def _varint(value: int) -> bytes:
    """``value`` (≥ 0) as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: a varint for an int, length-delimited bytes otherwise."""
    if isinstance(payload, int):
        return _varint(number << 3 | _VARINT) + _varint(payload)
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def encode_aggregate(records: Sequence[tuple[str, bytes]]) -> bytes:
    """One Kinesis record's data holding ``(partition key, data)`` user records, in order.

    Partition keys go once into the table; the aggregate's own partition key (the ``PartitionKey`` of the
    PutRecords entry) routes it, conventionally the first user record's key.
    """
    if not records:
        raise ValueError("an aggregate needs at least one user record")
    table: dict[str, int] = {}
    for key, _ in records:
        table.setdefault(key, len(table))
    message = b"".join(_field(1, key.encode()) for key in table) + b"".join(
        _field(3, _field(1, table[key]) + _field(3, data)) for key, data in records)
    return MAGIC + message + hashlib.md5(message, usedforsecurity=False).digest()


def is_aggregate(data: bytes) -> bool:
    """True if ``data`` claims to be an aggregate (its first bytes are :data:`MAGIC`)."""
    return data.startswith(MAGIC)


def _read_varint(buffer: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while offset < len(buffer):
        byte = buffer[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
        if shift >= 70:
            raise FormatError(None, "KPL aggregate: a varint longer than 10 bytes")
    raise FormatError(None, "KPL aggregate: a varint runs past the end")


def _read_fields(buffer: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of one message; fixed-width fields are skipped, groups refused."""
    fields: list[tuple[int, int | bytes]] = []
    offset = 0
    while offset < len(buffer):
        key, offset = _read_varint(buffer, offset)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise FormatError(None, "KPL aggregate: field number 0")
        if wire_type == _VARINT:
            value, offset = _read_varint(buffer, offset)
            fields.append((number, value))
        elif wire_type == _LENGTH_DELIMITED:
            length, offset = _read_varint(buffer, offset)
            if length > len(buffer) - offset:
                raise FormatError(None, f"KPL aggregate: field {number} runs past the end")
            fields.append((number, buffer[offset:offset + length]))
            offset += length
        elif wire_type in (1, 5):
            offset += 8 if wire_type == 1 else 4
            if offset > len(buffer):
                raise FormatError(None, f"KPL aggregate: fixed-width field {number} runs past the end")
        else:
            raise FormatError(None, f"KPL aggregate: field {number} has wire type {wire_type}")
    return fields


def _as_bytes(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise FormatError(None, f"KPL aggregate: {what} is a varint, expected bytes")
    return value


def decode_aggregate(data: bytes) -> list[tuple[str, bytes]]:
    """The ``(partition key, data)`` user records of an aggregate; raises ``FormatError`` for a corrupt one
    (too short, MD5 mismatch, bad protobuf, no records, a partition key index outside the table)."""
    if not is_aggregate(data) or len(data) < len(MAGIC) + DIGEST_BYTES:
        raise FormatError(None, "KPL aggregate: no magic bytes, or too short for them and the MD5")
    message, digest = data[len(MAGIC):-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if hashlib.md5(message, usedforsecurity=False).digest() != digest:
        raise FormatError(None, "KPL aggregate: the MD5 does not match the protobuf")
    keys: list[str] = []
    records: list[bytes] = []
    for number, value in _read_fields(message):
        if number == 1:
            try:
                keys.append(_as_bytes(value, "a partition key").decode("utf-8"))
            except UnicodeDecodeError:
                raise FormatError(None, "KPL aggregate: a partition key is not UTF-8") from None
        elif number == 3:
            records.append(_as_bytes(value, "a record"))
    if not records:
        raise FormatError(None, "KPL aggregate: no records")
    users = []
    for index, record in enumerate(records):
        key_index: int | None = None
        payload: bytes | None = None
        for number, value in _read_fields(record):
            if number == 1:
                if not isinstance(value, int):
                    raise FormatError(None, f"KPL aggregate: record {index}: partition_key_index is not a varint")
                key_index = value
            elif number == 3:
                payload = _as_bytes(value, f"record {index}'s data")
        if key_index is None or payload is None or key_index >= len(keys):
            raise FormatError(None, f"KPL aggregate: record {index} has no data or no partition key in the table")
        users.append((keys[key_index], payload))
    return users
