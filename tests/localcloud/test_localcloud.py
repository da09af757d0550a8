"""The local cloud: the mapping API through boto3, retention trimming, and the child process's life."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from kit.cloudkit import unique, wait_for

from hbcore.localcloud.owner import REPOSITORY_ROOT, LocalCloud

HANDLER = "poller_handlers.batches"


def put(clients, stream: str, n: int) -> None:
    clients("kinesis").put_records(StreamARN=stream, Records=[{"Data": b"x", "PartitionKey": "k"}] * n)


def processed(cloud, uuid: str) -> int:
    return next(m["records"] for m in cloud.poller.describe() if m["uuid"] == uuid)


# --- the event-source-mapping API, served by the poller --------------------------------------------

def test_create_returns_lambdas_mapping_shape(clients):
    stream, function = clients.stream(), clients.function(HANDLER)
    created = clients("lambda").create_event_source_mapping(
        EventSourceArn=stream, FunctionName=function, StartingPosition="LATEST", BatchSize=50,
        MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["EventSourceArn"] == stream
    assert created["FunctionArn"].endswith(f":function:{function}")
    assert (created["BatchSize"], created["MaximumBatchingWindowInSeconds"]) == (50, 1)
    assert created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert created["MaximumRetryAttempts"] == -1
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
    assert clients("lambda").get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled"


def test_list_filters_by_function_and_stream(clients):
    lam = clients("lambda")
    stream, function, other = clients.stream(), clients.function(HANDLER), clients.function(HANDLER)
    mine = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=function, StartingPosition="LATEST")
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=other, StartingPosition="LATEST")
    listed = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mine["UUID"]]
    assert len(lam.list_event_source_mappings(EventSourceArn=stream)["EventSourceMappings"]) == 2


def test_second_mapping_of_the_same_pair_is_a_conflict(clients):
    lam = clients("lambda")
    stream, function = clients.stream(), clients.function(HANDLER)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=function, StartingPosition="LATEST")
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=function, StartingPosition="LATEST")


def test_disabled_mapping_holds_records_until_enabled(clients, cloud):
    lam = clients("lambda")
    stream, function = clients.stream(), clients.function(HANDLER)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=function,
                                           StartingPosition="TRIM_HORIZON", Enabled=False)["UUID"]
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    put(clients, stream, 3)
    time.sleep(0.5)
    assert processed(cloud, uuid) == 0
    updated = lam.update_event_source_mapping(UUID=uuid, Enabled=True, BatchSize=7)
    assert (updated["State"], updated["BatchSize"]) == ("Updating", 7)
    wait_for(lambda: processed(cloud, uuid) == 3)


def test_deleted_mapping_stops_and_is_gone(clients, cloud):
    lam = clients("lambda")
    stream, function = clients.stream(), clients.function(HANDLER)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=function,
                                           StartingPosition="TRIM_HORIZON")["UUID"]
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=uuid)
    assert cloud.poller.describe() == []


def test_moto_never_sees_the_mapping(clients):
    from moto.awslambda.models import lambda_backends

    stream, function = clients.stream(), clients.function(HANDLER)
    clients("lambda").create_event_source_mapping(EventSourceArn=stream, FunctionName=function,
                                                  StartingPosition="LATEST")
    assert lambda_backends["123456789012"]["us-east-1"]._event_source_mappings == {}


# --- retention ------------------------------------------------------------------------------------

def test_trim_drops_consumed_records_only(clients, cloud, monkeypatch):
    stream, function = clients.stream(), clients.function(HANDLER)
    put(clients, stream, 10)
    uuid = clients("lambda").create_event_source_mapping(
        EventSourceArn=stream, FunctionName=function, StartingPosition="TRIM_HORIZON")["UUID"]
    wait_for(lambda: processed(cloud, uuid) == 10)
    clients("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
    time.sleep(0.3)
    put(clients, stream, 5)
    monkeypatch.setattr(cloud, "retention_s", 0.0)
    cloud.trim()
    shard = clients("kinesis").list_shards(StreamARN=stream)["Shards"][0]["ShardId"]
    iterator = clients("kinesis").get_shard_iterator(StreamARN=stream, ShardId=shard,
                                                     ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = clients("kinesis").get_records(ShardIterator=iterator, StreamARN=stream)["Records"]
    assert [r["SequenceNumber"] for r in records] == [str(n) for n in range(11, 16)]


def test_trim_keeps_records_younger_than_the_retention(clients, cloud):
    stream = clients.stream()
    put(clients, stream, 4)
    cloud.trim()  # no mapping reads this stream: only age counts, and these are fresh
    assert cloud.kinesis.read(stream, "shardId-000000000000", 0, 10)[1] == 4
    assert len(cloud.kinesis.read(stream, "shardId-000000000000", 0, 10)[0]) == 4


def test_trim_logs_drops_events_older_than_the_log_retention(clients, cloud):
    logs, group = clients("logs"), unique("/aws/lambda/trim")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now_ms = int(time.time() * 1000)
    old_ms = now_ms - int(cloud.log_retention_s * 1000) - 60_000
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": old_ms, "message": "old"}, {"timestamp": now_ms, "message": "new"}])

    assert cloud.trim_logs() >= 1
    events = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
    assert [event["message"] for event in events] == ["new"]


def test_trim_metrics_drops_data_points_older_than_the_log_retention(clients, cloud):
    cloudwatch, namespace = clients("cloudwatch"), unique("hb/trim")
    old = time.time() - cloud.log_retention_s - 60
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "m", "Value": 1.0, "Timestamp": old}])
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "m", "Value": 2.0}])

    cloud.trim_metrics()  # the cloud's own trimmer may have run first: count what either dropped

    points = [point for data in cloud.metrics._lists() for point in data if point.namespace == namespace]
    assert [point.value for point in points] == [2.0] and cloud.trimmed_points >= 1


def test_status_reports_memory_kinesis_and_mappings(clients, cloud):
    with urllib.request.urlopen(cloud.url + "/_hb/status", timeout=5) as response:
        status = json.loads(response.read())
    assert status["pid"] == os.getpid()
    assert status["peak_rss_mb"] >= status["rss_mb"] > 0
    assert {"retained_records", "trimmed_records", "retention_s"} <= set(status["kinesis"])
    assert {"retained_events", "trimmed_events", "retention_s"} <= set(status["logs"])
    assert {"retained_points", "trimmed_points", "retention_s"} <= set(status["metrics"])
    assert isinstance(status["mappings"], list)


# --- the child process ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def child():
    with LocalCloud() as cloud:
        yield cloud


def test_child_serves_boto3_through_its_backend(child):
    kinesis = child.backend.client("kinesis")
    kinesis.create_stream(StreamName="child-stream", ShardCount=1)
    assert "child-stream" in kinesis.list_streams()["StreamNames"]
    assert child.status()["running"] is True
    assert child.backend.sagemaker_runtime_url.startswith("http://127.0.0.1:")


def test_restart_comes_back_empty_on_the_same_urls(child):
    backend = child.backend
    backend.client("kinesis").create_stream(StreamName="before-restart", ShardCount=1)
    child.restart()
    assert child.backend.endpoint_url == backend.endpoint_url
    assert "before-restart" not in backend.client("kinesis").list_streams()["StreamNames"]


def test_a_killed_child_starts_again_on_the_same_urls(child):
    urls = (child.backend.endpoint_url, child.backend.sagemaker_runtime_url)
    os.kill(child.pid, signal.SIGKILL)
    wait_for(lambda: not child.running)
    child.start()
    assert (child.backend.endpoint_url, child.backend.sagemaker_runtime_url) == urls
    assert child.backend.client("kinesis").list_streams()["StreamNames"] == []


def test_stop_ends_the_child():
    cloud = LocalCloud().start()
    pid = cloud.pid
    cloud.stop()
    assert cloud.status() == {"running": False}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_child_exits_when_its_owner_dies():
    owner = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from hbcore.localcloud.owner import LocalCloud; "
                                "c = LocalCloud().start(); print(c.pid, flush=True); time.sleep(600)")],
        cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, text=True)
    child_pid = int(owner.stdout.readline())
    owner.send_signal(signal.SIGKILL)
    owner.wait()

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout_s=10)


def test_start_failure_reports_the_childs_output(child):
    with pytest.raises(RuntimeError, match="Address already in use"):
        LocalCloud(port=child.port, startup_timeout_s=30).start()


def test_cli_up_refuses_a_second_cloud_and_down_stops_it(tmp_path):
    env = {**os.environ, "HB_CACHE_DIR": str(tmp_path)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "hbcore", "cloud", *args], cwd=REPOSITORY_ROOT,  # noqa: E731
                                       env=env, capture_output=True, text=True, timeout=90)
    up = run("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in up.stdout
        assert "export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:" in up.stdout
        again = run("up")
        assert again.returncode == 1
        assert "already running" in again.stdout
        assert json.loads(run("status").stdout)["running"] is True
    finally:
        down = run("down")
    assert "stopped" in down.stdout
    assert json.loads(run("status").stdout) == {"running": False}


def test_the_server_makes_moto_backends_before_their_first_request():
    """moto makes a backend on its service's first request (CloudFormation's took ~2 s): preload_backends makes
    them beforehand. A region no other test uses, so that the backend is made here and nowhere else."""
    from moto import backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from hbcore.localcloud import server

    per_account = backends.get_backend("sqs")[DEFAULT_ACCOUNT_ID]
    made = lambda: set(per_account.keys())  # noqa: E731 (its `in` is True of any valid region, made or not)
    assert "ap-southeast-4" not in made()
    server.preload_backends(("sqs",), region="ap-southeast-4")
    assert "ap-southeast-4" in made()
    assert server.PRELOADED_SERVICES[:3] == ("sts", "s3", "cloudformation")  # the order a stack's deploy asks
