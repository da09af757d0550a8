"""One test per moto patch in hbcore.motopatches, each asserting the property the patch restores."""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict

import pytest
from botocore.exceptions import ClientError
from cloudkit import unique

from hbcore import motopatches

motopatches.apply()

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.kinesis.models import kinesis_backends  # noqa: E402
from moto.logs.models import logs_backends  # noqa: E402

DATA = base64.b64encode(b'{"beat": [0.5]}').decode()


class ScanCountingDict(OrderedDict):
    """An OrderedDict that counts whole-shard scans (keys/values/items) and single lookups."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scans = 0
        self.lookups = 0

    def keys(self):
        self.scans += 1
        return super().keys()

    def values(self):
        self.scans += 1
        return super().values()

    def items(self):
        self.scans += 1
        return super().items()

    def __getitem__(self, key):
        self.lookups += 1
        return super().__getitem__(key)


@pytest.fixture
def shard():
    """A one-shard stream's shard holding 5,000 records, with scan-counting storage."""
    backend = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    name = unique("patched")
    backend.create_stream(name, 1)
    stream = backend.streams[name]
    backend.put_records(None, name, [{"PartitionKey": "k", "Data": DATA}] * 500)
    for _ in range(9):
        backend.put_records(None, name, [{"PartitionKey": "k", "Data": DATA}] * 500)
    only = next(iter(stream.shards.values()))
    only.records = ScanCountingDict(only.records)
    yield backend, name, only
    backend.delete_stream(None, name)


def test_put_does_not_scan_the_shard(shard):
    backend, name, only = shard
    response = backend.put_records(None, name, [{"PartitionKey": "k", "Data": DATA}] * 100)
    assert only.records.scans == 0
    assert [r["SequenceNumber"] for r in response["Records"]] == [str(n) for n in range(5001, 5101)]


def test_get_records_reads_from_the_iterator_position_only(shard):
    backend, name, only = shard
    iterator = backend.get_shard_iterator(None, name, only.shard_id, "AFTER_SEQUENCE_NUMBER", "4990", None)
    _, records, _ = backend.get_records(None, iterator, 5)
    assert [r.sequence_number for r in records] == [4991, 4992, 4993, 4994, 4995]
    assert only.records.scans == 0
    assert only.records.lookups <= 10


def test_sequence_numbers_keep_increasing_after_the_shard_is_trimmed_empty(shard):
    backend, name, only = shard
    only.records.clear()
    response = backend.put_records(None, name, [{"PartitionKey": "k", "Data": DATA}])
    assert response["Records"][0]["SequenceNumber"] == "5001"


def test_concurrent_puts_and_reads_on_one_shard_lose_nothing(clients):
    kinesis = clients("kinesis")
    stream = clients.stream()
    shard_id = kinesis.list_shards(StreamARN=stream)["Shards"][0]["ShardId"]
    errors, read = [], []

    def writer():
        try:
            for batch in range(20):
                kinesis.put_records(StreamARN=stream, Records=[
                    {"Data": f"{batch}-{i}".encode(), "PartitionKey": "k"} for i in range(50)])
        except Exception as error:  # collected: the assertion below names it
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    iterator = kinesis.get_shard_iterator(StreamARN=stream, ShardId=shard_id,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    deadline = time.monotonic() + 30
    while len(read) < 1000 and time.monotonic() < deadline:
        response = kinesis.get_records(ShardIterator=iterator, Limit=100, StreamARN=stream)
        read.extend(int(r["SequenceNumber"]) for r in response["Records"])
        iterator = response["NextShardIterator"]
    thread.join()
    assert errors == []
    assert read == list(range(1, 1001))


def test_bad_shard_iterator_is_an_invalid_argument(clients):
    kinesis = clients("kinesis", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as raised:
        kinesis.get_records(ShardIterator="not-base64!!")
    assert raised.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_log_streams_can_be_created_while_a_query_runs():
    backend = logs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    group = unique("/test/snapshot")
    backend.create_log_group(group, {})
    for index in range(50):
        backend.create_log_stream(group, f"s{index}")
        backend.put_log_events(group, f"s{index}", [{"timestamp": int(time.time() * 1000), "message": "x"}] * 20)
    errors, stop = [], threading.Event()

    def churn():  # the dict changes size all the time but stays small, so queries stay cheap
        while not stop.is_set():
            backend.create_log_stream(group, "churn")
            backend.delete_log_stream(group, "churn")

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(300):  # unpatched, ~2% of these queries failed
            try:
                backend.start_query([group], 0, int(time.time()) + 10, "fields @message | limit 5")
            except RuntimeError as error:
                errors.append(error)
    finally:
        stop.set()
        thread.join()
    assert errors == []


def test_update_endpoint_moves_the_endpoint_to_the_new_config(clients):
    endpoint = unique("ep")
    clients.deploy(endpoint, b"archive v1")  # the control plane never opens the archive
    clients.deploy(endpoint, b"archive v2")
    sagemaker = clients("sagemaker")
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert described["EndpointStatus"] == "InService"
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/model.tar.gz")
    assert len(sagemaker.list_endpoint_configs(NameContains=endpoint)["EndpointConfigs"]) == 2
    assert described["LastModifiedTime"] > described["CreationTime"]


def test_update_of_unknown_endpoint_is_a_validation_error(clients):
    sagemaker = clients("sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="whatever")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-endpoint" in raised.value.response["Error"]["Message"]
