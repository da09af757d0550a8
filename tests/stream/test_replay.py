"""hbcore.stream.replay against a moto server on 127.0.0.1: put → iterator → get → compare.

Moto never fails a PutRecords entry nor throttles, so the failures are injected with botocore event
hooks on the replay's client: dropped entries never reach moto and come back as failed entries, and
whole calls are answered with an error before they are sent.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from kit.beatkit import make_beats
from kit.cloudkit import wait_for

from hbcore.aws.backend import Backend
from hbcore.bench.faultkit.putrecords import PutRecordsFaults
from hbcore.contracts import kpl
from hbcore.contracts.beat_id import beat_id
from hbcore.contracts.stream_record import beat_texts
from hbcore.data.dataset import BeatSet
from hbcore.stream import replay as replay_module
from hbcore.stream.replay import (
    MAX_AGGREGATE_BYTES,
    MAX_BEATS_PER_AGGREGATE,
    MAX_RECORDS_PER_CALL,
    PUT_BUFFER_S,
    Replay,
    StreamSource,
    in_time_order,
    kinesis_client,
    select_beats,
    sent_inputs,
)

WAIT_S = 30.0


@pytest.fixture(scope="module")
def backend(moto_url) -> Backend:
    return Backend(kind="local", endpoint_url=moto_url)


@pytest.fixture
def stream(backend) -> str:
    """A fresh two-shard stream."""
    name = f"beats-{uuid.uuid4().hex[:8]}"
    kinesis = backend.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def kinesis_records_in(backend: Backend, stream: str) -> list[dict]:
    """Every Kinesis record in the stream (get_records from TRIM_HORIZON on each shard), with its shard."""
    kinesis = backend.client("kinesis")
    found = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = True
        while records:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records = response["Records"]
            found += [record | {"ShardId": shard["ShardId"]} for record in records]
            iterator = response["NextShardIterator"]
    return found


def records_in(backend: Backend, stream: str) -> list[dict]:
    """Every stream record in the stream, with shard, sequence and key."""
    return [json.loads(record["Data"]) | {"_shard": record["ShardId"], "_seq": record["SequenceNumber"],
                                          "_key": record["PartitionKey"]}
            for record in kinesis_records_in(backend, stream)]


def beats_in_aggregates(backend: Backend, stream: str) -> list[tuple[dict, list[dict]]]:
    """Each Kinesis record of the stream, read as a KPL aggregate: (the record, its stream records)."""
    found = []
    for record in kinesis_records_in(backend, stream):
        users = kpl.decode_aggregate(record["Data"])
        assert {key for key, _ in users} == {record["PartitionKey"]}
        found.append((record, [json.loads(data) for _, data in users]))
    return found


def ids_in_aggregates(backend: Backend, stream: str) -> list[str]:
    return [beat["id"] for _, beats in beats_in_aggregates(backend, stream) for beat in beats]


def replay_of(backend: Backend, stream: str, beats: BeatSet, **options) -> Replay:
    return Replay(kinesis_client(backend), stream, beats, **options)


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def fail_calls(client, responses: list):
    """Answer the next PutRecords calls with ``responses`` (an error code to return, or an exception to raise)."""
    pending = list(responses)

    def answer(request, **kwargs):
        if not pending:
            return None
        response = pending.pop(0)
        if isinstance(response, Exception):
            raise response
        body = json.dumps({"__type": response, "message": "injected"}).encode()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))

    client.meta.events.register("before-send.kinesis.PutRecords", answer)
    return pending


def test_every_beat_arrives_once_with_its_id_in_the_ledger(backend, stream):
    beats = make_beats({"100": 400, "201": 300})

    replay = replay_of(backend, stream, beats).start()
    progress = replay.wait(WAIT_S)

    found = records_in(backend, stream)
    assert progress.state == "finished"
    assert progress.sent == len(found) == len(replay.ledger) == 700
    assert sorted(record["id"] for record in found) == sorted(replay.ledger.accepted())


def test_a_stream_record_follows_the_contract(backend, stream):
    beats = make_beats({"100": 3})
    replay = replay_of(backend, stream, beats, run="run7").start()
    replay.wait(WAIT_S)

    record = min(records_in(backend, stream), key=lambda found: found["sample"])

    assert record["_key"] == "100"
    assert {key: record[key] for key in ("id", "run", "record", "sample", "t", "label", "rr_prev_s", "rr_local_s")} == {
        "id": "run7:100:144", "run": "run7", "record": "100", "sample": 144, "t": 0.4, "label": 0,
        "rr_prev_s": 0.8, "rr_local_s": 0.8}
    assert np.abs(np.array(record["beat"]) - beats.X[0]).max() <= 0.00005
    assert abs(record["sent_at"] - time.time()) < 60


def test_calls_carry_at_most_500_records(backend, stream):
    client = kinesis_client(backend)
    sizes = call_sizes(client)

    Replay(client, stream, make_beats({"100": 1200})).start().wait(WAIT_S)

    assert sizes == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 200]


def call_sizes(client) -> list[int]:
    sizes: list[int] = []
    client.meta.events.register("before-parameter-build.kinesis.PutRecords",
                                lambda params, **kwargs: sizes.append(len(params["Records"])))
    return sizes


def test_a_paced_replay_buffers_due_beats_into_few_calls(backend, stream):
    client = kinesis_client(backend)
    sizes = call_sizes(client)

    progress = Replay(client, stream, make_beats({"100": 500}), rate=500.0).start().wait(WAIT_S)

    assert progress.sent == sum(sizes) == 500
    assert len(sizes) <= 1.0 / PUT_BUFFER_S + 2  # about one call per buffer time, not one per beat
    assert np.median(sizes) >= 500 * PUT_BUFFER_S * 0.8


def test_the_first_call_goes_as_soon_as_a_beat_is_due_and_the_next_ones_wait_to_share(monkeypatch, backend, stream):
    monkeypatch.setattr(replay_module, "PUT_BUFFER_S", 5.0)
    client = kinesis_client(backend)
    sizes = call_sizes(client)
    replay = Replay(client, stream, make_beats({"100": 1000}), rate=10.0).start()

    wait_for(lambda: sizes, timeout_s=4.0)  # well before the 5 s a buffered beat waits
    time.sleep(0.5)  # five more beats fall due: they wait for company

    assert sizes == [1]
    replay.stop()


def test_stopping_sends_the_beats_already_due_then_nothing_more(monkeypatch, backend, stream):
    monkeypatch.setattr(replay_module, "PUT_BUFFER_S", 5.0)
    client = kinesis_client(backend)
    sizes = call_sizes(client)
    replay = Replay(client, stream, make_beats({"100": 1000}), rate=2.0).start()
    wait_for(lambda: sizes == [1] and replay.progress().elapsed_s > 0.5 and replay._waiting, timeout_s=WAIT_S)
    # the second beat (due at 0.5 s) waits its PUT_BUFFER_S in the buffer

    progress = replay.stop()

    assert (progress.state, progress.sent, sizes) == ("stopped", 2, [1, 1])


def test_pausing_sends_the_beats_already_due_then_holds(backend, stream):
    client = kinesis_client(backend)
    sizes = call_sizes(client)
    replay = Replay(client, stream, make_beats({"100": 2000})).start()  # all due at once
    replay.pause()
    time.sleep(0.5)

    assert replay.progress().state == "paused"
    assert sum(sizes) == replay.progress().sent <= MAX_RECORDS_PER_CALL
    replay.stop()


def test_partially_failed_entries_are_resent_until_accepted_and_never_twice(backend, stream):
    client = kinesis_client(backend)
    failures = PutRecordsFaults("partial", calls=3, every=3)
    failures.attach(client)

    progress = Replay(client, stream, make_beats({"100": 600, "201": 400})).start().wait(WAIT_S)

    ids = [record["id"] for record in records_in(backend, stream)]
    assert failures.injected > 0
    assert progress.retried == failures.injected
    assert len(ids) == len(set(ids)) == 1000 == progress.sent


def test_throttled_calls_are_resent(backend, stream):
    client = kinesis_client(backend)
    fail_calls(client, ["ProvisionedThroughputExceededException", "LimitExceededException"])

    progress = Replay(client, stream, make_beats({"100": 300})).start().wait(WAIT_S)

    ids = [record["id"] for record in records_in(backend, stream)]
    assert (progress.state, progress.failed_calls, progress.retried) == ("finished", 2, 600)
    assert len(ids) == len(set(ids)) == 300
    assert "ProvisionedThroughputExceededException" in progress.errors[0]


def test_a_connection_error_is_resent(backend, stream):
    client = kinesis_client(backend)
    fail_calls(client, [EndpointConnectionError(endpoint_url="http://127.0.0.1:9")])

    progress = Replay(client, stream, make_beats({"100": 50})).start().wait(WAIT_S)

    assert (progress.state, progress.sent, progress.failed_calls) == ("finished", 50, 1)
    assert len(records_in(backend, stream)) == 50


def test_entries_the_stream_refuses_for_good_are_counted_and_not_resent(backend, stream):
    client = kinesis_client(backend)
    PutRecordsFaults("partial", calls=1, every=25, code="KMSAccessDeniedException").attach(client)

    replay = Replay(client, stream, make_beats({"100": 50}), run="run3")
    progress = replay.start().wait(WAIT_S)

    assert (progress.state, progress.sent, progress.refused, progress.retried,
            progress.pending) == ("finished", 48, 2, 0, 0)
    assert sorted(replay.ledger.refused()) == ["run3:100:144", "run3:100:7344"]
    assert len(records_in(backend, stream)) == 48


def test_a_missing_stream_fails_the_replay_with_the_reason(backend):
    progress = replay_of(backend, "no-such-stream", make_beats({"100": 5})).start().wait(WAIT_S)

    assert progress.state == "failed"
    assert "ResourceNotFoundException" in progress.error
    assert progress.pending == 5


def test_pause_holds_the_replay_and_resume_finishes_it(backend, stream):
    replay = replay_of(backend, stream, make_beats({"100": 300}), rate=300.0).start()
    time.sleep(0.3)
    replay.pause()
    time.sleep(0.1)  # the call in flight completes
    held = replay.progress()
    time.sleep(0.4)
    still = replay.progress()
    replay.resume()
    progress = replay.wait(WAIT_S)

    assert held.state == "paused"
    assert 0 < held.sent == still.sent < 300
    assert (progress.state, progress.sent) == ("finished", 300)
    assert len(records_in(backend, stream)) == 300


def test_stop_ends_the_thread_and_leaves_the_rest_pending(backend, stream):
    replay = replay_of(backend, stream, make_beats({"100": 1000}), rate=200.0).start()
    time.sleep(0.3)

    progress = replay.stop()

    assert progress.state == "stopped"
    assert 0 < progress.sent < 1000
    assert progress.pending == 1000 - progress.sent
    assert len(records_in(backend, stream)) == progress.sent
    assert not replay._thread.is_alive()


def test_the_rate_paces_the_replay(backend, stream):
    progress = replay_of(backend, stream, make_beats({"100": 200}), rate=250.0).start().wait(WAIT_S)

    assert progress.state == "finished"
    assert 0.6 < progress.elapsed_s < 3.0  # 0.8 s nominal; loose on a busy machine


def test_real_time_replays_the_records_side_by_side_at_the_speed_given(backend, stream):
    beats = make_beats({"100": 10, "201": 10}, rr_s=0.1)  # 1 s of two patients

    replay = replay_of(backend, stream, beats, speed=2.0).start()
    progress = replay.wait(WAIT_S)

    sent_order = [key for _, key, _ in StreamSource(replay.beats).records_for(np.arange(20), "x", 0.0)]
    assert progress.state == "finished"
    assert 0.3 < progress.elapsed_s < 2.0  # 0.475 s nominal
    assert sent_order[:4] == ["100", "201", "100", "201"]


def test_real_time_needs_a_time_for_every_beat(backend, stream):
    with pytest.raises(ValueError, match="Kaggle rows carry no time"):
        replay_of(backend, stream, make_beats({"kaggle:test": 5}, timed=False), speed=1.0)


def test_progress_reports_the_recent_rate(backend, stream):
    replay = replay_of(backend, stream, make_beats({"100": 400}), rate=200.0).start()
    time.sleep(1.0)
    progress = replay.progress()
    replay.stop()

    assert progress.state == "running"
    assert 80 < progress.rate_bps < 320


def test_kaggle_rows_replay_with_their_labels_and_no_time(backend, stream, kaggle_dir):
    from hbcore.data.kaggle import load_kaggle_csv

    beats = load_kaggle_csv(kaggle_dir / "mitbih_test_head10.csv")
    replay = replay_of(backend, stream, beats, run="k1").start()
    replay.wait(WAIT_S)

    found = sorted(records_in(backend, stream), key=lambda record: record["sample"])
    assert [record["id"] for record in found] == [f"k1:kaggle:mitbih_test_head10:{row}" for row in range(10)]
    assert {(record["label"], record["t"], record["rr_local_s"]) for record in found} == {(0, None, None)}
    assert np.abs(np.array(found[0]["beat"]) - beats.X[0]).max() <= 0.00005


def test_select_beats_keeps_the_chosen_records_in_time_order():
    beats = make_beats({"100": 3, "201": 2, "105": 2})

    chosen = select_beats(beats, records=["201", "100"])

    assert chosen.meta["record"].tolist() == ["100", "201", "100", "201", "100"]


def test_select_beats_keeps_the_test_part_of_a_split():
    beats = make_beats({"101": 4, "100": 3})  # 101 is in DS1 (train), 100 in DS2 (test)

    assert set(select_beats(beats, split="inter").meta["record"]) == {"100"}


def test_select_beats_names_records_it_does_not_have():
    with pytest.raises(ValueError, match="records not in the beats to replay: 999"):
        select_beats(make_beats({"100": 3}), records=["100", "999"])


def test_select_beats_shuffles_reproducibly_and_limits():
    beats = make_beats({"100": 50})

    first = select_beats(beats, order="shuffled", seed=3, limit=10)
    again = select_beats(beats, order="shuffled", seed=3, limit=10)

    assert len(first) == 10
    assert first.meta["sample"].tolist() == again.meta["sample"].tolist()
    assert first.meta["sample"].tolist() != sorted(first.meta["sample"].tolist())


def test_in_time_order_puts_untimed_rows_last_in_their_order():
    beats = make_beats({"kaggle:x": 3}, timed=False)

    assert in_time_order(beats).meta["sample"].tolist() == beats.meta["sample"].tolist()


def test_beat_texts_keep_four_decimals_and_pass_nan_on():
    X = np.array([[0.12344, 1.0, 0.0] + [0.5] * 184, [np.nan] + [0.25] * 186], dtype=np.float32)

    first, second = beat_texts(X)

    assert first.split(",")[:4] == ["0.1234", "1.0", "0.0", "0.5"]
    assert second.split(",")[:2] == ["NaN", "0.25"]


def test_sent_inputs_are_the_values_the_records_carry():
    beats = make_beats({"100": 4}, rr_s=0.812345)
    beats.meta.loc[0, "rr_prev_s"] = np.nan
    records = [json.loads(data) for _, _, data in StreamSource(beats).records_for(np.arange(4), "run", 0.0)]

    X, rr, pre, context = sent_inputs(beats)

    np.testing.assert_array_equal(X, np.array([record["beat"] for record in records], dtype=np.float32))
    carried = [[np.nan if record[key] is None else record[key] for key in ("rr_prev_s", "rr_next_s", "rr_local_s")]
               for record in records]
    np.testing.assert_array_equal(rr, np.array(carried, dtype=np.float32))
    assert all(record["pre"] is None and record["context"] is None for record in records)  # none known
    assert np.isnan(pre).all() and np.isnan(context).all()


def test_beat_id_joins_run_record_and_sample():
    assert beat_id("20261128T120000-abc123", "100", 370) == "20261128T120000-abc123:100:370"


SLOW_CALL_S = 0.15  # a PutRecords round trip plausible against real AWS


def slow_calls(client, delay_s: float = SLOW_CALL_S) -> list[int]:
    """Make every PutRecords call take ``delay_s`` longer; the sizes of the calls made."""
    sizes = call_sizes(client)
    client.meta.events.register("before-send.kinesis.PutRecords", lambda **kwargs: time.sleep(delay_s))
    return sizes


# Paced and unpaced, few or many beats: the thread spends nearly all its time in a call.
SLOW_REPLAYS = [({"100": 3000}, 500.0), ({"100": 20_000}, None), ({"100": 1500, "101": 1500}, 2000.0)]


@pytest.mark.parametrize(("per_record", "rate"), SLOW_REPLAYS)
def test_stop_is_obeyed_within_one_slow_call(backend, stream, per_record, rate):
    client = kinesis_client(backend)
    sizes = slow_calls(client)
    replay = Replay(client, stream, make_beats(per_record), rate=rate).start()
    time.sleep(4 * SLOW_CALL_S)

    asked = time.monotonic()
    progress = replay.stop(timeout_s=WAIT_S)

    assert time.monotonic() - asked < 2 * SLOW_CALL_S + 0.5  # the call in flight, then nothing more
    assert progress.state == "stopped"
    assert 0 < progress.sent == sum(sizes) < sum(per_record.values())
    assert len(sizes) <= 4 + 2  # the calls before stop, the one in flight
    assert len(records_in(backend, stream)) == progress.sent


@pytest.mark.parametrize(("per_record", "rate"), SLOW_REPLAYS)
def test_pause_is_obeyed_within_one_slow_call(backend, stream, per_record, rate):
    client = kinesis_client(backend)
    sizes = slow_calls(client)
    replay = Replay(client, stream, make_beats(per_record), rate=rate).start()
    time.sleep(4 * SLOW_CALL_S)

    replay.pause()
    calls_at_pause = len(sizes)
    time.sleep(4 * SLOW_CALL_S)  # the call in flight completes
    held = replay.progress()
    time.sleep(4 * SLOW_CALL_S)
    still = replay.progress()
    progress = replay.stop(timeout_s=WAIT_S)

    assert held.state == still.state == "paused"
    assert len(sizes) <= calls_at_pause + 1  # the call in flight (or, while waiting, the beats already due)
    assert 0 < held.sent == still.sent == sum(sizes) < sum(per_record.values())
    assert (progress.state, progress.sent) == ("stopped", held.sent)


# --- KPL aggregation ---------------------------------------------------------------------------------

def test_aggregated_records_carry_exactly_the_beats_sent_in_order(backend, stream):
    beats = make_beats({"100": 400, "201": 300})
    client = kinesis_client(backend)
    sizes = call_sizes(client)

    replay = Replay(client, stream, beats, run="agg1", aggregate=True).start()
    progress = replay.wait(WAIT_S)

    found = beats_in_aggregates(backend, stream)
    sent = [json.loads(data) for _, _, data in StreamSource(beats).records_for(np.arange(700), "agg1", 0.0)]
    assert (progress.state, progress.sent, progress.retried, len(replay.ledger)) == ("finished", 700, 0, 700)
    assert sum(sizes) == len(found) < 700 / 10  # few Kinesis records, each of many beats
    for record in ("100", "201"):
        carried = [beat for _, users in found for beat in users if beat["record"] == record]
        expected = [beat for beat in sent if beat["record"] == record]
        assert [beat["id"] for beat in carried] == [beat["id"] for beat in expected]
        assert [beat["beat"] for beat in carried] == [beat["beat"] for beat in expected]
    assert sorted(beat["id"] for _, users in found for beat in users) == sorted(replay.ledger.accepted())


def test_aggregates_stay_within_their_bounds(backend, stream):
    Replay(kinesis_client(backend), stream, make_beats({"100": 1200}), aggregate=True).start().wait(WAIT_S)

    found = beats_in_aggregates(backend, stream)

    assert sum(len(users) for _, users in found) == 1200
    assert max(len(users) for _, users in found) <= MAX_BEATS_PER_AGGREGATE
    assert max(len(record["Data"]) for record, _ in found) <= MAX_AGGREGATE_BYTES
    assert max(len(record["Data"]) for record, _ in found) > MAX_AGGREGATE_BYTES * 0.9  # packed, not one each


def test_partially_failed_aggregates_are_resent_whole_and_every_beat_counted_once(backend, stream):
    client = kinesis_client(backend)
    failures = PutRecordsFaults("partial", calls=3, every=3)
    held_beats: list[int] = []

    def count_held(params, **kwargs):
        """Beats in the entries the faults hold back: every 3rd of the first 3 calls (runs before they do)."""
        if failures.seen_calls < failures.calls:
            held_beats.extend(len(kpl.decode_aggregate(record["Data"])) for record in params["Records"][::3])

    client.meta.events.register("before-parameter-build.kinesis.PutRecords", count_held)
    failures.attach(client)
    replay = Replay(client, stream, make_beats({"100": 600, "201": 400}), aggregate=True)

    progress = replay.start().wait(WAIT_S)

    ids = ids_in_aggregates(backend, stream)
    assert failures.injected > 0
    assert progress.retried == sum(held_beats) > failures.injected  # whole aggregates, every beat they carry
    assert len(ids) == len(set(ids)) == 1000 == progress.sent == len(replay.ledger)
    assert set(ids) == set(replay.ledger.accepted())


def test_an_aggregate_refused_for_good_refuses_every_beat_it_carries(backend, stream):
    client = kinesis_client(backend)
    PutRecordsFaults("partial", calls=1, every=1000, code="KMSAccessDeniedException").attach(client)
    replay = Replay(client, stream, make_beats({"100": 30, "201": 20}), run="run4", aggregate=True)

    progress = replay.start().wait(WAIT_S)

    refused, ids = replay.ledger.refused(), ids_in_aggregates(backend, stream)
    assert sorted(refused) == sorted(f"run4:100:{sample}" for sample in make_beats({"100": 30}).meta["sample"])
    assert (progress.state, progress.sent, progress.refused, progress.retried,
            progress.pending) == ("finished", 20, 30, 0, 0)  # the first aggregate: all of 100's beats
    assert sorted(ids) == sorted(replay.ledger.accepted()) and len(ids) == 20
    assert set(refused.values()) == {"KMSAccessDeniedException: KMSAccessDeniedException (injected fault)"}


def test_a_throttled_call_of_aggregates_resends_every_beat(backend, stream):
    client = kinesis_client(backend)
    fail_calls(client, ["ProvisionedThroughputExceededException"])

    progress = Replay(client, stream, make_beats({"100": 300}), aggregate=True).start().wait(WAIT_S)

    ids = ids_in_aggregates(backend, stream)
    assert (progress.state, progress.failed_calls, progress.retried) == ("finished", 1, 300)
    assert len(ids) == len(set(ids)) == 300
