"""Faults during a replay through the real local pipeline: every beat sent is accounted for exactly once.

Each scenario of ``hbcore.bench.faultbench`` (the same ones ``python -m hbcore bench faults`` runs) replays
beats of the MIT-BIH test split while one thing fails, then checks the reader's results: one result
per beat (a prediction, or a rejected record), none lost, predictions equal to the model's own.
The PutRecords fault hooks and the replay's resume from its ledger are checked on their own first.
"""

from __future__ import annotations

import json

import pytest

from hbcore.aws.names import Names
from hbcore.bench import faultbench
from hbcore.bench.faultkit.putrecords import PutRecordsFaults
from hbcore.stream.replay import Replay, select_beats

SCENARIO_BEATS = 1500


@pytest.fixture(scope="module")
def beats(mitdb_beats):
    return select_beats(mitdb_beats, split="intra", order="time", limit=SCENARIO_BEATS)


# --- the injection tools ---------------------------------------------------------------------------

def _put(client, count: int, stream: str = Names().stream) -> dict:
    """Probe records (the handler rejects them: they belong to no run)."""
    return client.put_records(StreamName=stream, Records=[
        {"Data": f"probe {index}".encode(), "PartitionKey": "probe"} for index in range(count)])


def test_partial_failure_hook_fails_every_fifth_entry_without_storing_it(fault_rig):
    from hbcore.stream.replay import kinesis_client

    client = kinesis_client(fault_rig.backend)
    faults = PutRecordsFaults("partial", calls=1)
    faults.attach(client)
    answer = _put(client, 10)
    codes = [entry.get("ErrorCode") for entry in answer["Records"]]
    assert codes == ["ProvisionedThroughputExceededException", None, None, None, None] * 2
    assert answer["FailedRecordCount"] == 2 and faults.injected == 2
    stored = [entry["SequenceNumber"] for entry in answer["Records"] if "SequenceNumber" in entry]
    assert len(set(stored)) == 8  # the held-back entries never reached the stream


def test_partial_failure_hook_fails_a_one_record_call_without_storing_it(fault_rig):
    from hbcore.stream.replay import kinesis_client

    client = kinesis_client(fault_rig.backend)
    faults = PutRecordsFaults("partial", calls=1)
    faults.attach(client)
    answer = _put(client, 1)
    assert answer["FailedRecordCount"] == 1 and faults.injected == 1
    assert answer["Records"][0]["ErrorCode"] == "ProvisionedThroughputExceededException"
    before = int(_put(client, 1)["Records"][0]["SequenceNumber"])
    assert int(_put(client, 1)["Records"][0]["SequenceNumber"]) == before + 1  # nothing stored in between


def test_throttle_hook_refuses_the_whole_call_then_lets_calls_through(fault_rig):
    from botocore.exceptions import ClientError

    from hbcore.stream.replay import kinesis_client

    client = kinesis_client(fault_rig.backend)
    PutRecordsFaults("throttle", calls=1).attach(client)
    with pytest.raises(ClientError) as refused:
        _put(client, 3)
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert _put(client, 3)["FailedRecordCount"] == 0


def test_lost_answer_hook_stores_the_call_but_raises(fault_rig):
    from botocore.exceptions import ConnectionClosedError

    from hbcore.stream.replay import kinesis_client

    client = kinesis_client(fault_rig.backend)
    PutRecordsFaults("lost_response", calls=1, skip_calls=1).attach(client)
    before = int(_put(client, 1)["Records"][0]["SequenceNumber"])
    with pytest.raises(ConnectionClosedError):
        _put(client, 2)
    after = int(_put(client, 1)["Records"][0]["SequenceNumber"])
    assert after == before + 3  # the two records of the "failed" call are in the stream


def test_a_resumed_replay_sends_only_what_its_ledger_lacks(fault_rig, beats):
    subset = beats.subset(list(range(40)))
    first = fault_rig.replay(subset, rate_bps=None)
    first.wait(30)
    forgotten = sorted(first.ledger.accepted())[:5]
    first.ledger.forget(forgotten)
    client = fault_rig.backend.client("kinesis")
    resent = []
    client.meta.events.register("before-parameter-build.kinesis.PutRecords", lambda params, **_: resent.extend(
        json.loads(record["Data"])["id"] for record in params["Records"]))
    resumed = Replay(client, fault_rig.pipeline.names.stream, subset, ledger=first.ledger).start()
    progress = resumed.wait(30)
    assert resumed.run == first.run
    assert (progress.total, progress.sent, progress.pending) == (40, 40, 0)
    assert sorted(resent) == forgotten and len(resumed.ledger) == 40


# --- the scenarios ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", faultbench.SCENARIOS, ids=[s.name for s in faultbench.SCENARIOS])
def test_every_beat_is_accounted_for_exactly_once(fault_rig, beats, scenario):
    row = faultbench.run_scenario(fault_rig, scenario, beats, faultbench.FAULT_RATE_BPS)
    assert (row["replay_error"], row["reader_error"], row["problem"]) == (None, None, None), row
    assert (row["lost"], row["sent"]) == (0, len(beats)), row
    assert row["exactly_once"], row
    assert row["predicted"] + row["rejected"] == len(beats)
    assert row["agreement"] == 1.0
    if scenario.name != "none":
        assert row["injected"] > 0, row
    if scenario.run is not faultbench.hostile_log_lines:  # every beat replayed is a valid one
        assert row["rejected"] == 0, row
