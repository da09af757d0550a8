"""The same beats give the same model input offline and streamed: the replay's records, read by the
handler, sent to the endpoint, hold exactly the context the dataset build computed, and the
endpoint's features are those computed offline from the values the records carry."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.contracts import stream_record
from hbcore.model import inference
from hbcore.stream.replay import StreamSource, sent_inputs


@pytest.fixture(scope="module")
def record_beats(mitdb_beats):
    """The first 400 beats of record 208 (V, F and S beats among them), in time order."""
    rows = np.flatnonzero(mitdb_beats.meta["record"].to_numpy() == "208")[:400]
    return mitdb_beats.subset(rows)


@pytest.fixture(scope="module")
def endpoint_input(record_beats, handler, kinesis_record) -> dict:
    """What the endpoint's input_fn reads from the handler's request for the replay's records of the beats."""
    entries = StreamSource(record_beats).records_for(np.arange(len(record_beats)), "run", 1764331355.0)
    beats = [handler.parse_record(kinesis_record(data, seq, key)) for seq, (_, key, data) in enumerate(entries, 1)]
    return inference.input_fn(handler.request_body(beats), "application/json")


def test_the_records_carry_the_context_of_the_dataset_build_bit_for_bit(record_beats, endpoint_input):
    np.testing.assert_array_equal(endpoint_input["context"], record_beats.context)
    assert np.isfinite(record_beats.context[50:]).all()  # the patient's template is formed by then


def test_the_endpoints_features_are_the_offline_features_of_the_carried_values(record_beats, endpoint_input):
    streamed = inference.features(endpoint_input["beats"], endpoint_input["rr"], endpoint_input["pre"],
                                  endpoint_input["context"])

    offline = inference.features(*sent_inputs(record_beats))

    np.testing.assert_array_equal(streamed, offline)


def test_the_carried_pre_r_segments_are_the_built_ones_to_four_decimals(record_beats, endpoint_input):
    np.testing.assert_array_equal(endpoint_input["pre"],
                                  stream_record.carried_beats(record_beats.pre).astype(np.float32))
