"""hbcore.contracts.log_lines against the handler's writers (field by field, byte for byte both ways), and
the reader's totality: any text or JSON is a line of ours or foreign, never an exception."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbcore.contracts import log_lines, stream_record
from hbcore.contracts.log_lines import (
    BeatRow,
    Beats,
    Prediction,
    Rejected,
    Summary,
    beats_predictions,
    decode_line,
    encode_line,
)
from hbcore.stream.tally import ResultsStore

NOW_S = 1764331356.5


@pytest.fixture
def beat(handler, kinesis_record, varied_beats):
    """The handler's beat for the third varied record (labelled, every time known)."""
    entries = stream_record.encode_records("run7", NOW_S - 0.25, varied_beats["records"], varied_beats["samples"],
                                           varied_beats["labels"], varied_beats["beats"], varied_beats["t_s"],
                                           varied_beats["rr"])
    _, key, data = entries[2]
    return handler.parse_record(kinesis_record(data, 42, key))


def test_a_prediction_line_reads_back_field_by_field_and_writes_back_byte_for_byte(handler, beat):
    prediction = {"class_index": 2, "class_name": "V", "probabilities": [0.01, 0.02, 0.912345, 0.03, 0.027655]}
    text = handler.prediction_line(beat, prediction, "v9", 7.3, NOW_S, 12)

    line = decode_line(text)

    assert line == Prediction(
        id=beat.id, run=beat.run, record=beat.record, sample=beat.sample, t=beat.t, label=beat.label, pred=2,
        pred_name="V", prob=round(0.912345, log_lines.PROB_DECIMALS), model_version="v9",
        latency_ms=round((NOW_S - beat.sent_at) * 1000, log_lines.MS_DECIMALS), endpoint_ms=7.3,
        rr_local_s=beat.rr_local_s, seq="42", shard=beat.shard, inv=12)
    assert encode_line(line) == text


def test_a_beats_line_reads_back_beat_by_beat_and_writes_back_byte_for_byte(handler, kinesis_record, varied_beats):
    entries = stream_record.encode_records("run7", NOW_S - 0.25, varied_beats["records"], varied_beats["samples"],
                                           varied_beats["labels"], varied_beats["beats"], varied_beats["t_s"],
                                           varied_beats["rr"])
    beats = [handler.parse_record(kinesis_record(data, 40 + index, key))
             for index, (_, key, data) in enumerate(entries)]
    predictions = [{"class_index": index % 5, "probabilities": [0.123456] * 5} for index in range(len(beats))]
    text = handler.beats_line(beats, predictions, "v9", 7.3, NOW_S, 12)

    line = decode_line(text)

    assert type(line) is Beats and encode_line(line) == text
    assert beats_predictions(line) == [
        Prediction(id=beat.id, run=beat.run, record=beat.record, sample=beat.sample, t=beat.t, label=beat.label,
                   pred=index % 5, pred_name=None, prob=round(0.123456, log_lines.PROB_DECIMALS), model_version="v9",
                   latency_ms=round((NOW_S - beat.sent_at) * 1000, log_lines.MS_DECIMALS), endpoint_ms=7.3,
                   rr_local_s=beat.rr_local_s, seq=None, shard=beat.shard, inv=12)
        for index, beat in enumerate(beats)]


def test_only_beats_whose_id_is_their_run_record_and_sample_go_into_a_beats_line(handler, kinesis_record):
    own = handler.parse_record(kinesis_record(b'{"id": "r:100:5", "run": "r", "record": "100", "sample": 5, '
                                              b'"beat": [' + b",".join([b"0.5"] * 187) + b"]}", 1))
    fallback = handler.parse_record(kinesis_record(b",".join([b"0.5"] * 187), 2))
    predictions = [{"class_index": 0, "probabilities": [1.0, 0, 0, 0, 0]}] * 2

    lines = [decode_line(text) for text in handler.classified_lines([own, fallback], predictions, "v9", 1.0, NOW_S)]

    assert [type(line) for line in lines] == [Beats, Prediction]
    assert [prediction.id for prediction in beats_predictions(lines[0])] == ["r:100:5"]
    assert lines[1].id == fallback.id == "shardId-000000000003:2"


def test_a_rejected_line_reads_back_field_by_field_and_writes_back_byte_for_byte(handler, kinesis_record):
    record = kinesis_record(b'{"id": "run7:100:5", "run": "run7", "beat": [0.5]}', 43, "100")
    with pytest.raises(handler.BadRecord) as raised:
        handler.parse_record(record)
    text = handler.rejected_line(record, raised.value, inv=3)

    line = decode_line(text)

    assert line == Rejected(id="run7:100:5", run="run7", record="100", seq="43", shard=record.shard_id,
                            reason="'beat' has 1 values, expected 187", inv=3,
                            data=base64.b64encode(b'{"id": "run7:100:5", "run": "run7", "beat": [0.5]}').decode())
    assert encode_line(line) == text


def test_a_refused_line_reads_back_field_by_field_and_writes_back_byte_for_byte(handler, beat):
    text = handler.refused_line(beat, handler.InputRefused("instance 1: value 3 (1.25) is outside [0, 1]", 400), 4,
                                b"the record")

    line = decode_line(text)

    assert line == Rejected(id=beat.id, run=beat.run, record=beat.record, seq=beat.seq, shard=beat.shard,
                            reason="the endpoint refused this beat: instance 1: value 3 (1.25) is outside [0, 1]",
                            inv=4, data=base64.b64encode(b"the record").decode())
    assert encode_line(line) == text


@pytest.mark.parametrize("error", [None, "ThrottlingException: slow down"])
def test_a_summary_line_reads_back_field_by_field_and_writes_back_byte_for_byte(handler, error):
    text = handler.summary_line(500, 490, 6, 4, 3, 123.456, 140.04, error, 7, 11)

    line = decode_line(text)

    assert line == Summary(records=500, predicted=490, rejected=6, failed=4, endpoint_calls=3, endpoint_ms=123.5,
                           handler_ms=140.0, error=error, inv=7, lines=11)
    assert encode_line(line) == text


def test_the_handlers_version_is_the_contracts(handler):
    assert handler.LOG_LINES_VERSION == log_lines.VERSION


def test_the_line_types_fields_are_their_tuples_fields():
    for line_type, fields in log_lines.TYPES.values():
        assert line_type._fields == tuple(field.name for field in fields)


# --- the reader is total ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**53 - 2, max_value=2**80)
    | st.floats() | st.text(max_size=12) | st.sampled_from(["\ud800", "x\udfff"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)
OUR_KEYS = sorted({field.name for _, fields in log_lines.TYPES.values() for field in fields})


@st.composite
def lines_of_ours_in_name(draw) -> dict:
    """A line with one of our types and any of our keys, each with any JSON value (or a typed one)."""
    kind = draw(st.sampled_from([*log_lines.TYPES, "beats", "metric"]))
    keys = draw(st.lists(st.sampled_from(OUR_KEYS), unique=True))
    values = st.one_of(JSON_VALUES, st.text(max_size=8), st.integers(0, 4), st.floats(0, 10))
    line = {"type": kind, **{key: draw(values) for key in keys}}
    if kind == "beats":
        cell = st.one_of(st.none(), st.integers(-1, 5), st.floats(0, 10), st.text(max_size=3))
        line["records"] = draw(st.lists(st.text(max_size=4), max_size=3) | JSON_VALUES)
        line["beats"] = draw(st.lists(st.lists(cell, min_size=7, max_size=9), max_size=3) | JSON_VALUES)
    return line


def assert_well_typed(line) -> None:
    """A line the reader returns holds only values its fields allow."""
    if type(line) is Beats:
        assert all(type(record) is str for record in line.records)
        for row in line.beats:
            assert_values_allowed(row._asdict(), {field.name: field for field in log_lines.BEAT_COLUMNS})
            assert row.record < len(line.records)
        line = line._replace(records=(), beats=())
        fields = {field.name: field for field in log_lines.BEATS_FIELDS}
        assert_values_allowed({name: getattr(line, name) for name in fields}, fields)
        return
    fields = {field.name: field for field in log_lines.TYPES[type(line).__name__.lower()][1]}
    assert_values_allowed(line._asdict(), fields)


def assert_values_allowed(values: dict, fields: dict) -> None:
    for name, value in values.items():
        field = fields[name]
        if value is None:
            assert not field.required, name
            continue
        assert type(value) is field.kind, (name, value)
        if field.kind is float:
            assert math.isfinite(value), (name, value)
        if field.kind is str:
            value.encode("utf-8")
        if field.choices is not None:
            assert value in field.choices, (name, value)


def test_a_line_with_a_foreign_value_for_one_of_our_keys_is_foreign():
    assert decode_line('{"type":"rejected","reason":"r","seq":["a"],"shard":{"x":1}}') is None


@pytest.mark.parametrize("value", [["a"], {"x": 1}, True, 2**60, "\ud800", float("nan"), float("inf")])
@pytest.mark.parametrize("key", ["id", "sample", "t", "label", "pred", "seq"])
def test_any_foreign_value_of_a_prediction_field_makes_it_foreign(key, value):
    assert decode_line(json.dumps({"type": "prediction", "id": "a:1:2", "pred": 1, key: value})) is None


@pytest.mark.parametrize(("key", "value"), [("label", 5), ("pred", -1), ("pred", 2.0), ("id", 7), ("seq", 42)])
def test_a_value_of_the_wrong_kind_or_range_makes_a_line_foreign(key, value):
    assert decode_line(json.dumps({"type": "prediction", "id": "a:1:2", "pred": 1, key: value})) is None


@given(st.text())
def test_any_text_is_read_without_raising(message):
    line = decode_line(message)

    if line is not None:
        assert_well_typed(line)


@given(JSON_VALUES | lines_of_ours_in_name())
def test_any_json_is_ours_and_well_typed_or_foreign(document):
    line = decode_line(json.dumps(document))

    if line is not None:
        assert_well_typed(line)
        assert isinstance(document, dict) and document["type"] in (*log_lines.TYPES, "beats")


@given(st.lists(JSON_VALUES | lines_of_ours_in_name(), max_size=12))
def test_the_results_store_files_any_log_events_without_raising(documents):
    messages = [json.dumps(document) for document in documents]
    store = ResultsStore()

    store.ingest([(NOW_S + index, "stream", message) for index, message in enumerate(messages)])

    snapshot = store.snapshot(state="idle", queries=0, failed_queries=0, truncated_windows=0, read_until_s=None,
                              last_poll_s=None, errors=(), error_count=0)
    kinds = [type(decode_line(message)) for message in messages]
    assert snapshot.stats.events == len(messages)
    assert snapshot.stats.foreign_lines == kinds.count(type(None))
    assert len(snapshot.summaries) == kinds.count(Summary)


# --- the writer and the reader, both ways -----------------------------------------------------------

TEXTS = st.text(max_size=16) | st.none()
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.none()
COUNTS = st.integers(0, 2**53) | st.none()
PREDICTIONS = st.builds(
    Prediction, id=st.text(max_size=24), run=TEXTS, record=TEXTS, sample=st.integers(0, 2**40) | st.none(), t=FLOATS,
    label=st.integers(0, 4) | st.none(), pred=st.integers(0, 4), pred_name=TEXTS, prob=FLOATS, model_version=TEXTS,
    latency_ms=FLOATS, endpoint_ms=FLOATS, rr_local_s=FLOATS, seq=TEXTS, shard=TEXTS, inv=COUNTS)
REJECTIONS = st.builds(Rejected, id=TEXTS, run=TEXTS, record=TEXTS, seq=TEXTS, shard=TEXTS, reason=st.text(),
                       inv=COUNTS, data=TEXTS)
SUMMARIES = st.builds(Summary, records=st.integers(0, 10_000), predicted=st.integers(0, 10_000),
                      rejected=st.integers(0, 10_000), failed=st.integers(0, 10_000),
                      endpoint_calls=st.integers(0, 100), endpoint_ms=FLOATS, handler_ms=FLOATS, error=TEXTS,
                      inv=COUNTS, lines=COUNTS)
ROWS = st.builds(BeatRow, record=st.just(0), sample=st.integers(0, 2**40), t=FLOATS,
                 label=st.integers(0, 4) | st.none(), pred=st.integers(0, 4), prob=FLOATS, latency_ms=FLOATS,
                 rr_local_s=FLOATS)
BEATS = st.builds(Beats, run=st.text(max_size=12), model_version=TEXTS, endpoint_ms=FLOATS, shard=TEXTS, inv=COUNTS,
                  records=st.tuples(st.text(max_size=6)), beats=st.lists(ROWS, max_size=5).map(tuple))


@given(PREDICTIONS | REJECTIONS | SUMMARIES | BEATS)
def test_the_reader_gives_back_what_the_writer_wrote(line):
    assert decode_line(encode_line(line)) == line


def test_log_bytes_per_beat_measures_real_lines_of_the_compact_format():
    per_beat = log_lines.log_bytes_per_beat(100)

    # A beats line of 100 rows, its summary and Lambda's lines: well under the ~400 bytes of a prediction line.
    assert 40 < per_beat < 80
    assert log_lines.log_bytes_per_beat(100, patients=480) > per_beat  # EMF lines grow with the patients
