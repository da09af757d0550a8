"""hbcore.contracts.beat_id: written and parsed back, and as the handler carries it (or makes its fallback)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hbcore.contracts import beat_id as contract
from hbcore.contracts.beat_id import BeatKey, beat_id, parse_beat_id, stream_position_id

RUNS = st.text(st.characters(blacklist_characters=":"), max_size=24)


@given(RUNS, st.text(max_size=24), st.integers(min_value=0))
def test_an_id_parses_back_to_its_parts(run, record, sample):
    assert parse_beat_id(beat_id(run, record, sample)) == BeatKey(run, record, sample)


@given(st.text(max_size=40))
def test_parsed_parts_write_the_same_id_back(identity):
    key = parse_beat_id(identity)

    assert key is None or beat_id(*key) == identity


def test_a_kaggle_record_keeps_its_colon():
    assert parse_beat_id("20261128T120000-abc123:kaggle:mitbih_test:17") == BeatKey(
        "20261128T120000-abc123", "kaggle:mitbih_test", 17)


def test_other_forms_are_not_beat_ids():
    assert [parse_beat_id(text) for text in ("run:100:017", "run:100:-5", "run:100:", "run:100", "run:100:1e3",
                                            "run:100:٣")] == [None] * 6


def test_the_handler_carries_the_records_id(handler, kinesis_record):
    data = json.dumps({"id": beat_id("run3", "100", 370), "beat": [0.5] * 187}).encode()

    assert parse_beat_id(handler.parse_record(kinesis_record(data)).id) == BeatKey("run3", "100", 370)


def test_the_handlers_fallback_is_the_stream_position_and_never_a_beat_id(handler, kinesis_record):
    record = kinesis_record(b",".join([b"0.5"] * 187), seq=49590338271490256608559692538361571095921575989136588898)

    identity = handler.parse_record(record).id

    assert identity == stream_position_id(record.shard_id, record.sequence_number)
    assert parse_beat_id(identity) is None


def test_the_handlers_version_is_the_contracts(handler):
    assert handler.BEAT_ID_VERSION == contract.VERSION
