"""hbcore.contracts.inference against its two self-contained copies: the handler writes requests and
reads responses, ``hbcore/model/inference.py`` reads requests and writes responses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hbcore.contracts import inference as contract
from hbcore.contracts import stream_record
from hbcore.contracts.fields import FormatError
from hbcore.data.classes import CLASS_NAMES
from hbcore.model import inference

RUN = "20261128T120000-abc123"


@pytest.fixture
def parsed_beats(handler, kinesis_record, varied_beats) -> list:
    """The handler's beats for the stream records the replay writes for ``varied_beats``."""
    entries = stream_record.encode_records(RUN, 1764331355.0, varied_beats["records"], varied_beats["samples"],
                                           varied_beats["labels"], varied_beats["beats"], varied_beats["t_s"],
                                           varied_beats["rr"], varied_beats["pre"], varied_beats["context"])
    return [handler.parse_record(kinesis_record(data, seq, key)) for seq, (_, key, data) in enumerate(entries, 1)]


def probabilities(n: int) -> np.ndarray:
    rows = np.random.default_rng(5).random((n, len(CLASS_NAMES)))
    return rows / rows.sum(axis=1, keepdims=True)


def carried(varied_beats: dict) -> tuple[np.ndarray, ...]:
    """The beats, RR, pre-R segments and contexts as the stream records carry them."""
    return (stream_record.carried_beats(varied_beats["beats"]), stream_record.carried_seconds(varied_beats["rr"]),
            stream_record.carried_beats(varied_beats["pre"]), stream_record.carried_context(varied_beats["context"]))


def test_the_handlers_request_is_the_contracts_for_the_same_beats(handler, parsed_beats, varied_beats):
    body = handler.request_body(parsed_beats)

    assert body == contract.encode_request(*carried(varied_beats))


def test_the_handlers_request_reads_back_field_by_field(handler, parsed_beats, varied_beats):
    request = contract.decode_request(handler.request_body(parsed_beats))

    beats, rr, pre, context = carried(varied_beats)
    np.testing.assert_array_equal(request.beats, beats)
    np.testing.assert_array_equal(request.rr, rr)
    np.testing.assert_array_equal(request.pre, pre)
    np.testing.assert_array_equal(request.context, context)


def test_the_endpoint_reads_the_contracts_request_field_by_field(varied_beats):
    rows = slice(0, 4)  # the last two hold values outside [0, 1]
    beats, rr, pre, context = (varied_beats[name][rows] for name in ("beats", "rr", "pre", "context"))

    data = inference.input_fn(contract.encode_request(beats, rr, pre, context), contract.CONTENT_TYPE)

    np.testing.assert_array_equal(data["beats"], beats.astype(np.float32))
    np.testing.assert_array_equal(data["rr"], rr.astype(np.float32))
    np.testing.assert_array_equal(data["pre"], pre.astype(np.float32))
    np.testing.assert_array_equal(data["context"], context.astype(np.float32))


def test_a_request_without_pre_r_segments_nor_contexts_reads_as_unknown(varied_beats):
    data = inference.input_fn(contract.encode_request(varied_beats["beats"][:2]), contract.CONTENT_TYPE)

    assert data["pre"] is None and data["context"] is None
    request = contract.decode_request(contract.encode_request(varied_beats["beats"][:2]))
    assert np.isnan(request.pre).all() and np.isnan(request.context).all()


def test_the_contract_reads_the_endpoints_response_field_by_field():
    rows = probabilities(7)
    body, content_type = inference.output_fn({"probabilities": rows, "model_version": "20261128T120000Z-0123abcd"},
                                             contract.CONTENT_TYPE)

    response = contract.decode_response(body, expected=7)

    assert content_type == contract.CONTENT_TYPE
    assert response.model_version == "20261128T120000Z-0123abcd"
    np.testing.assert_array_equal(response.probabilities, np.round(rows, contract.PROBABILITY_DECIMALS))
    assert response.class_indices.tolist() == response.probabilities.argmax(axis=1).tolist()
    assert response.class_names == tuple(CLASS_NAMES[index] for index in response.class_indices)


def test_the_handler_reads_the_contracts_response_field_by_field(handler):
    rows = probabilities(5)
    expected = contract.decode_response(contract.encode_response(rows, "v7"))

    predictions, version = handler.parse_response(contract.encode_response(rows, "v7").encode(), 5)

    assert version == "v7"
    assert [prediction["class_index"] for prediction in predictions] == expected.class_indices.tolist()
    assert [prediction["class_name"] for prediction in predictions] == list(expected.class_names)
    assert [prediction["probabilities"] for prediction in predictions] == expected.probabilities.tolist()


def test_the_endpoints_response_and_the_contracts_say_the_same():
    rows = probabilities(3)
    body, _ = inference.output_fn({"probabilities": rows, "model_version": "v"}, contract.CONTENT_TYPE)

    assert json.loads(body) == json.loads(contract.encode_response(rows, "v"))


def test_the_copies_constants_are_the_contracts(handler):
    assert (inference.WINDOW_SAMPLES, inference.RR_KEYS, inference.RR_MAX_S, inference.CLASS_NAMES, inference.JSON) == (
        contract.BEAT_LENGTH, contract.RR_FIELDS, contract.RR_MAX_S, contract.CLASS_NAMES, contract.CONTENT_TYPE)
    assert (handler.INFERENCE_VERSION, handler.BEAT_LENGTH, handler.N_CLASSES, handler.RR_MAX_S, handler._RR_KEYS) == (
        contract.VERSION, contract.BEAT_LENGTH, contract.N_CLASSES, contract.RR_MAX_S, contract.RR_FIELDS)
    fields = [field.name for field in contract.INSTANCE_FIELDS]
    assert (contract.PRE_R_LENGTH, contract.CONTEXT_LENGTH, "pre", "context") == (
        inference.PRE_R_SAMPLES, inference.N_CONTEXT, inference.PRE_KEY, inference.CONTEXT_KEY)
    assert fields[4:] == [inference.PRE_KEY, inference.CONTEXT_KEY]
    assert CLASS_NAMES == contract.CLASS_NAMES


@pytest.mark.parametrize(("beats", "rr", "field"), [
    (np.full((2, 186), 0.5), None, "beat"),
    (np.vstack([np.full(187, 0.5), np.r_[np.nan, np.full(186, 0.5)]]), None, "instances[1].beat"),
    (np.full((1, 187), 0.5), np.array([[0.8, 250.0, 0.8]]), "instances[0].rr_next_s"),
])
def test_the_writer_refuses_what_the_format_cannot_carry(beats, rr, field):
    with pytest.raises(FormatError) as raised:
        contract.encode_request(beats, rr)

    assert raised.value.field == field


@pytest.mark.parametrize(("document", "field"), [
    ({"predictions": []}, "predictions"),
    ({"model_version": 3, "predictions": [{"class_index": 0, "probabilities": [0.2] * 5}]}, "model_version"),
    ({"model_version": "v", "predictions": [{"class_index": 5, "probabilities": [0.2] * 5}]},
     "predictions[0].class_index"),
    ({"model_version": "v", "predictions": [{"class_index": True, "probabilities": [0.2] * 5}]},
     "predictions[0].class_index"),
    ({"model_version": "v", "predictions": [{"class_index": 1, "probabilities": [0.25] * 4}]},
     "predictions[0].probabilities"),
    ({"model_version": "v", "predictions": [{"class_index": 1, "class_name": 1, "probabilities": [0.2] * 5}]},
     "predictions[0].class_name"),
])
def test_a_broken_response_is_refused_naming_the_field(document, field):
    with pytest.raises(FormatError) as raised:
        contract.decode_response(json.dumps(document))

    assert raised.value.field == field


def test_a_response_for_another_number_of_beats_is_refused():
    with pytest.raises(FormatError, match="has 2 entries for 3 instances"):
        contract.decode_response(contract.encode_response(probabilities(2), "v"), expected=3)


@pytest.mark.parametrize(("body", "field"), [
    (b"\xff", None),
    (b'{"instances": [[0.5]]}', "instances[0]"),
    (b'{"instances": [{"beat": [0.5], "rr_prev_s": 0.8}]}', "instances[0].beat"),
    (json.dumps({"instances": [{"beat": [0.5] * 187, "rr_local_s": -1}]}).encode(), "instances[0].rr_local_s"),
    (json.dumps({"instances": [{"beat": [0.5] * 187, "pre": [0.5] * 3}]}).encode(), "instances[0].pre"),
    (json.dumps({"instances": [{"beat": [0.5] * 187,
                                "context": [0.5] * (contract.CONTEXT_LENGTH - 1) + ["x"]}]}).encode(),
     f"instances[0].context[{contract.CONTEXT_LENGTH - 1}]"),
])
def test_a_broken_request_is_refused_naming_the_field(body, field):
    with pytest.raises(FormatError) as raised:
        contract.decode_request(body)

    assert raised.value.field == field
