"""hbcore.contracts.kpl against the handler: what the writer aggregates, ``lambda_function.deaggregate``
reads back user record by user record, and the two readers accept and refuse the same bytes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbcore.contracts import kpl
from hbcore.contracts.beat_id import stream_position_id
from hbcore.contracts.fields import FormatError
from hbcore.contracts.stream_record import decode_record, encode_records

user_records = st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=300)), min_size=1, max_size=12)


def _outcome(read, data: bytes, refused: type[Exception]):
    """What a reader makes of ``data``: its user records, or "refused"."""
    try:
        return read(data)
    except refused:
        return "refused"


@given(user_records)
def test_the_handler_reads_back_every_user_record_the_writer_wrote(handler, records):
    assert handler.deaggregate(kpl.encode_aggregate(records)) == records


@given(user_records)
def test_the_reader_reads_back_every_user_record_the_writer_wrote(records):
    assert kpl.decode_aggregate(kpl.encode_aggregate(records)) == records


@given(st.binary(max_size=400))
def test_random_bytes_after_the_magic_never_crash_either_reader_and_both_agree(handler, body):
    data = kpl.MAGIC + body

    assert _outcome(handler.deaggregate, data, handler.BadRecord) == _outcome(kpl.decode_aggregate, data, FormatError)


@given(st.binary(max_size=400))
def test_random_protobuf_with_a_valid_md5_never_crashes_either_reader_and_both_agree(handler, message):
    data = kpl.MAGIC + message + hashlib.md5(message).digest()

    assert _outcome(handler.deaggregate, data, handler.BadRecord) == _outcome(kpl.decode_aggregate, data, FormatError)


@given(user_records, st.data())
def test_a_corrupted_aggregate_is_refused_by_both_readers(handler, records, data):
    written = bytearray(kpl.encode_aggregate(records))
    index = data.draw(st.integers(len(kpl.MAGIC), len(written) - 1))
    written[index] ^= data.draw(st.integers(1, 255))

    assert _outcome(handler.deaggregate, bytes(written), handler.BadRecord) == "refused"
    assert _outcome(kpl.decode_aggregate, bytes(written), FormatError) == "refused"


def test_the_handlers_magic_is_the_contracts(handler):
    assert (handler.KPL_MAGIC, handler.KPL_DIGEST_BYTES) == (kpl.MAGIC, kpl.DIGEST_BYTES)


def test_the_handler_reads_each_stream_record_of_an_aggregate_as_the_record_reader_does(
        handler, kinesis_record, varied_beats):
    entries = encode_records("run5", 1764331355.0, varied_beats["records"], varied_beats["samples"],
                             varied_beats["labels"], varied_beats["beats"], varied_beats["t_s"], varied_beats["rr"])
    record = kinesis_record(kpl.encode_aggregate([(key, data) for _, key, data in entries]), seq=77)

    users = handler.user_records(record)
    beats = [handler.parse_user_record(user, record) for user in users]

    assert [(beat.id, beat.record, beat.seq) for beat in beats] == [
        (decode_record(data).id, key, "77") for _, key, data in entries]


def test_a_user_record_without_id_gets_the_contracts_position_id(handler, kinesis_record):
    csv_line = ",".join(["0.5"] * 187).encode()
    record = kinesis_record(kpl.encode_aggregate([("100", csv_line)] * 3), seq=9)

    ids = [handler.parse_user_record(user, record).id for user in handler.user_records(record)]

    assert ids == [stream_position_id(record.shard_id, "9", index) for index in range(3)]


def test_the_writer_refuses_an_empty_aggregate():
    with pytest.raises(ValueError, match="at least one user record"):
        kpl.encode_aggregate([])
