"""One test per moto patch in hbcore.localcloud.motopatches, each asserting the property the patch restores."""

from __future__ import annotations

import base64
import gc
import threading
import time
import weakref
from collections import OrderedDict

import pytest
from botocore.exceptions import ClientError
from kit.cloudkit import unique

from hbcore.localcloud import insights, motopatches

motopatches.apply()

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.kinesis.models import kinesis_backends  # noqa: E402
from moto.logs import logs_query  # noqa: E402
from moto.logs.exceptions import ResourceNotFoundException  # noqa: E402
from moto.logs.models import logs_backends  # noqa: E402

from hbcore.localcloud.motostate import MotoLogs  # noqa: E402

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


def test_log_streams_can_be_created_while_a_query_runs(monkeypatch):
    monkeypatch.setattr(motopatches, "LOGS_RULES", insights.Rules())  # queries complete at once: no quota to hit
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


QUERY = "fields @timestamp, @message | sort @timestamp asc | limit 10000"
BASE_S = int(time.time()) - 3600


@pytest.fixture
def log_stream(monkeypatch):
    """A log group and stream in moto's backend; a factory of events at given epoch seconds. Queries
    complete at once and see events at once (the local cloud's AWS rules are tested in test_insights.py)."""
    monkeypatch.setattr(motopatches, "LOGS_RULES", insights.Rules())
    backend = logs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    group = unique("/test/window")
    backend.create_log_group(group, {})
    backend.create_log_stream(group, "s")

    def put(*seconds: int) -> None:
        """Events at BASE_S + each of ``seconds`` (moto refuses events older than 14 days)."""
        backend.put_log_events(group, "s", [{"timestamp": (BASE_S + t) * 1000, "message": f"at {t}"} for t in seconds])

    yield backend, group, put
    backend.delete_log_group(group)


def query_messages(backend, group: str, start_s: int, end_s: int) -> list[str]:
    query_id = backend.start_query([group], BASE_S + start_s, BASE_S + end_s, QUERY)
    return [row["@message"] for row in backend.get_query_results(query_id).results]


def test_a_query_reads_only_its_window_of_an_ordered_stream(log_stream, monkeypatch):
    backend, group, put = log_stream
    put(*range(1000, 1100))
    stream = backend.groups[group].streams["s"]
    tested = []
    monkeypatch.setattr(type(stream.events[0]), "timestamp", property(
        lambda event: tested.append(1) or event.__dict__["timestamp"]), raising=False)

    messages = query_messages(backend, group, 1040, 1042)

    assert messages == ["at 1040", "at 1041", "at 1042"]
    assert len(tested) < 40  # bisection, then the three events: not a test per event


def test_a_query_over_an_unordered_stream_still_finds_its_window(log_stream):
    backend, group, put = log_stream
    put(1050, 1060)
    put(1010, 1055)  # an older batch after a newer one: no bisection for this stream

    assert sorted(query_messages(backend, group, 1040, 1056)) == ["at 1050", "at 1055"]


@pytest.mark.parametrize("query", [QUERY, "fields @timestamp, @message, @logStream | sort @timestamp asc | limit 3"])
def test_query_rows_hold_the_events_moto_returns_with_awss_timestamps(log_stream, query):
    backend, group, put = log_stream
    put(1010, 1020, 1020, 1030)
    backend.create_log_stream(group, "unordered")
    for seconds in ((1050,), (1015, 1025)):
        backend.put_log_events(group, "unordered",
                               [{"timestamp": (BASE_S + t) * 1000, "message": f"u {t}"} for t in seconds])
    groups = [backend.groups[group]]

    rows = backend.get_query_results(backend.start_query([group], BASE_S + 1012, BASE_S + 1050, query)).results

    moto_rows = logs_query.execute_query(groups, query, BASE_S + 1012, BASE_S + 1050)  # moto's own evaluation
    assert [row["@message"] for row in rows] == [row["@message"] for row in moto_rows]
    assert [row["@timestamp"] for row in rows] == [insights.aws_timestamp(row["@timestamp"]) for row in moto_rows]
    assert len(rows) >= 3


def test_only_the_most_recent_query_results_are_kept(log_stream):
    backend, group, put = log_stream
    put(1000)
    first = backend.start_query([group], BASE_S + 990, BASE_S + 1010, QUERY)
    for _ in range(motopatches.QUERIES_KEPT):
        last = backend.start_query([group], BASE_S + 990, BASE_S + 1010, QUERY)

    assert len(backend.queries) <= motopatches.QUERIES_KEPT
    assert [row["@message"] for row in backend.get_query_results(last).results] == ["at 1000"]
    with pytest.raises(ResourceNotFoundException, match="expired"):
        backend.get_query_results(first)


def test_a_json_response_is_returned_as_it_is_with_a_request_id_header():
    from moto.core.responses import BaseResponse

    body = '{"results": [[{"field": "@message", "value": "x"}]]}'
    headers, enriched = BaseResponse._enrich_response({"status": 200}, body)

    assert enriched is body
    assert headers["status"] == "200" and len(headers["x-amzn-requestid"]) == 52


def test_an_xml_response_still_gets_its_request_id():
    from moto.core.responses import BaseResponse

    headers, enriched = BaseResponse._enrich_response({}, "<R><RequestId>old</RequestId></R>")

    assert enriched == f"<R><RequestId>{headers['x-amzn-requestid']}</RequestId></R>"


def test_a_trimmed_log_event_is_freed(log_stream):
    backend, group, put = log_stream
    put(0)
    event = weakref.ref(backend.groups[group].streams["s"].events[0])

    assert MotoLogs().trim(older_than_s=60.0) >= 1  # the event is an hour old
    gc.collect()
    assert event() is None


def test_a_trimmed_metric_data_point_is_freed():
    from moto.cloudwatch.models import cloudwatch_backends

    from hbcore.localcloud.motostate import MotoMetrics

    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.put_metric_data(unique("hb/freed"), [{"MetricName": "m", "Value": 1.0}])
    point = weakref.ref(backend.metric_data[-1])

    assert MotoMetrics().trim(older_than_s=-60.0) >= 1  # a retention in the future: every point is old
    gc.collect()
    assert point() is None


def test_kinesis_records_are_not_kept_by_moto_after_they_leave_the_shard(shard):
    _, _, only = shard
    oldest = weakref.ref(only.records[1])

    del only.records[1]
    gc.collect()

    assert oldest() is None


def test_the_server_finds_a_service_without_listing_moto_again(monkeypatch):
    from moto import backends
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)
    app.get_backend_for_host("kinesis")  # the first call may list the folder once
    listed = []
    monkeypatch.setattr(backends.os, "listdir", lambda path: listed.append(path) or [])

    assert [app.get_backend_for_host(host) for host in ("kinesis", "logs")] == ["kinesis", "logs"]
    assert listed == []


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


def test_region_lookups_share_one_session_and_answer_as_a_fresh_one_does():
    import boto3.session
    import botocore.loaders
    import botocore.session

    fresh = botocore.session.Session()  # a session of its own, as each boto3.Session() made before the patch
    for service, partition in (("ec2", "aws"), ("ec2", "aws-us-gov"), ("ec2", "aws-cn"), ("kinesis", "aws")):
        regions = boto3.session.Session().get_available_regions(service, partition_name=partition)
        assert regions and regions == fresh.get_available_regions(service, partition_name=partition)
    assert boto3.session.Session.get_available_regions is motopatches._available_regions_shared
    files = []
    original = botocore.loaders.JSONFileLoader.load_file
    try:
        botocore.loaders.JSONFileLoader.load_file = lambda self, path: files.append(path) or original(self, path)
        for partition in ("aws", "aws-us-gov", "aws-cn"):  # as moto's RegionsAndZonesBackend asks, each a new Session
            boto3.session.Session().get_available_regions("ec2", partition_name=partition)
    finally:
        botocore.loaders.JSONFileLoader.load_file = original
    assert files == []  # EC2's model and the endpoints were parsed once, by the first lookup above
