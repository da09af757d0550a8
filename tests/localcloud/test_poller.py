"""The local Kinesis → Lambda poller: Lambda's event shape, batching, failure rules and logs.

Handlers live in tests/kit/poller_handlers.py; each test maps its own stream to its own function
through the plain boto3 mapping API of an in-process local cloud.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from kit.cloudkit import wait_for

HANDLERS = "poller_handlers"


def put(clients, stream_arn: str, payloads: list[str], key: str = "k") -> list[str]:
    response = clients("kinesis").put_records(
        StreamARN=stream_arn, Records=[{"Data": p.encode(), "PartitionKey": key} for p in payloads])
    return [r["SequenceNumber"] for r in response["Records"]]


def mapping(clients, stream_arn: str, function: str, **settings) -> dict:
    settings.setdefault("StartingPosition", "TRIM_HORIZON")
    return clients("lambda").create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=function, **settings)


def json_lines(clients, function: str) -> list[dict]:
    return [json.loads(m) for m in clients.log_messages(function) if m.startswith("{")]


def stats(cloud, uuid: str) -> dict:
    return next(m for m in cloud.poller.describe() if m["uuid"] == uuid)


def test_event_has_lambdas_kinesis_shape(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.echo")
    put(clients, stream, ["hello"], key="patient-100")
    mapping(clients, stream, function)
    event = wait_for(lambda: json_lines(clients, function))[0]
    record = event["Records"][0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventVersion"] == "1.0"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventID"] == "shardId-000000000000:1"
    assert record["eventSourceARN"] == stream
    assert record["awsRegion"] == "us-east-1"
    assert record["invokeIdentityArn"] == clients.role()
    kinesis = record["kinesis"]
    assert kinesis["kinesisSchemaVersion"] == "1.0"
    assert kinesis["partitionKey"] == "patient-100"
    assert kinesis["sequenceNumber"] == "1"
    assert base64.b64decode(kinesis["data"]) == b"hello"
    assert isinstance(kinesis["approximateArrivalTimestamp"], float)
    assert abs(kinesis["approximateArrivalTimestamp"] - time.time()) < 60


def test_context_and_environment_come_from_the_function_configuration(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.echo", environment={"GREETING": "hi"}, timeout_s=7)
    put(clients, stream, ["x"])
    mapping(clients, stream, function)
    context = wait_for(lambda: json_lines(clients, function))[1]
    arn = clients("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    assert context["function_name"] == function
    assert context["invoked_function_arn"] == arn
    assert context["memory_limit_in_mb"] == "128"
    assert 0 < context["remaining_ms"] <= 7000
    assert context["log_group_name"] == f"/aws/lambda/{function}"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", context["log_stream_name"])
    assert context["greeting"] == "hi"


def test_handler_output_is_logged_between_start_end_and_report(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.echo")
    put(clients, stream, ["x"])
    mapping(clients, stream, function)
    wait_for(lambda: any(m.startswith("REPORT") for m in clients.log_messages(function)))
    messages = clients.log_messages(function)
    request_id = json.loads(messages[2])["aws_request_id"]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1].startswith('{"Records"')
    assert messages[3] == f"END RequestId: {request_id}"
    assert re.match(rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: [\d.]+ ms", messages[4])


def test_a_line_is_logged_when_printed_not_when_the_invocation_ends(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.print_then_sleep", environment={"SLEEP_S": "2"})
    put(clients, stream, ["x"])
    mapping(clients, stream, function)

    messages = wait_for(lambda: [m for m in clients.log_messages(function) if m.startswith("{")] and
                        clients.log_messages(function))

    assert messages[0].startswith("START RequestId:") and messages[1] == '{"seqs": ["1"]}'
    assert not any(m.startswith("END") for m in messages)  # the handler is still sleeping


def test_batch_size_bounds_each_invocation(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.batches")
    put(clients, stream, [str(i) for i in range(25)])
    mapping(clients, stream, function, BatchSize=10)
    lines = wait_for(lambda: (lambda got: got if sum(len(b["seqs"]) for b in got) == 25 else None)(
        json_lines(clients, function)))
    assert [len(b["seqs"]) for b in lines] == [10, 10, 5]
    assert [d for b in lines for d in b["data"]] == [str(i) for i in range(25)]


def test_batching_window_gathers_records_put_apart(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.batches")
    mapping(clients, stream, function, BatchSize=100, MaximumBatchingWindowInSeconds=1, StartingPosition="LATEST")
    put(clients, stream, ["a", "b"])
    time.sleep(0.3)
    put(clients, stream, ["c"])
    lines = wait_for(lambda: json_lines(clients, function), timeout_s=10)
    assert lines[0]["data"] == ["a", "b", "c"]


def test_latest_skips_records_put_before_the_mapping(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.batches")
    put(clients, stream, ["old"])
    mapping(clients, stream, function, StartingPosition="LATEST")
    put(clients, stream, ["new"])
    lines = wait_for(lambda: json_lines(clients, function))
    assert [d for b in lines for d in b["data"]] == ["new"]


def test_at_timestamp_starts_at_the_first_record_from_that_time(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.batches")
    put(clients, stream, ["before"])
    cut = int(time.time()) + 1  # boto3 sends the timestamp in whole seconds
    time.sleep(cut - time.time() + 0.05)
    put(clients, stream, ["after"])
    mapping(clients, stream, function, StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=cut)
    lines = wait_for(lambda: json_lines(clients, function))
    assert [d for b in lines for d in b["data"]] == ["after"]


def test_reported_item_failure_is_retried_from_its_sequence_number(clients, cloud):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.report_failure", environment={"FAIL_SEQ": "3", "FAIL_TIMES": "1"})
    put(clients, stream, [str(i) for i in range(5)])
    created = mapping(clients, stream, function, FunctionResponseTypes=["ReportBatchItemFailures"])
    lines = wait_for(lambda: (lambda got: got if len(got) >= 2 else None)(json_lines(clients, function)))
    assert [b["seqs"] for b in lines] == [["1", "2", "3", "4", "5"], ["3", "4", "5"]]
    counters = wait_for(lambda: (lambda s: s if s["records"] == 5 else None)(stats(cloud, created["UUID"])))
    assert counters["retries"] == 1
    assert counters["partial_failures"] == 1


def test_item_failures_are_ignored_without_report_batch_item_failures(clients, cloud):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.report_failure", environment={"FAIL_SEQ": "2", "FAIL_TIMES": "1"})
    put(clients, stream, ["a", "b", "c"])
    created = mapping(clients, stream, function)
    wait_for(lambda: stats(cloud, created["UUID"])["records"] == 3)
    assert [b["seqs"] for b in json_lines(clients, function)] == [["1", "2", "3"]]


def test_unhandled_exception_retries_the_whole_batch_and_logs_the_error(clients):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.raise_first", environment={"RAISE_TIMES": "1"})
    put(clients, stream, ["a", "b"])
    mapping(clients, stream, function)
    lines = wait_for(lambda: (lambda got: got if len(got) >= 2 else None)(json_lines(clients, function)))
    assert [b["seqs"] for b in lines] == [["1", "2"], ["1", "2"]]
    errors = [m for m in clients.log_messages(function) if m.startswith("[ERROR]")]
    assert errors[0].startswith("[ERROR] RuntimeError: boom 1\nTraceback (most recent call last):")


def test_exhausted_retries_skip_the_batch_and_notify_the_destination(clients, cloud):
    sqs = clients("sqs")
    queue_url = sqs.create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.poison", environment={"POISON_SEQ": "1"})
    put(clients, stream, ["bad"])
    created = mapping(clients, stream, function, MaximumRetryAttempts=2,
                      DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    put(clients, stream, ["good"])
    counters = wait_for(lambda: (lambda s: s if s["records"] == 1 else None)(stats(cloud, created["UUID"])))
    assert counters["skipped_records"] == 1
    assert counters["skipped_batches"][0]["condition"] == "RetryAttemptsExhausted"
    assert counters["function_errors"] == 3
    message = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == "1"
    assert message["KinesisBatchInfo"]["batchSize"] == 1


def test_bisect_isolates_the_poisoned_record(clients, cloud):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.poison", environment={"POISON_SEQ": "3"})
    put(clients, stream, ["a", "b", "c", "d"])
    created = mapping(clients, stream, function, BisectBatchOnFunctionError=True, MaximumRetryAttempts=3)
    counters = wait_for(lambda: (lambda s: s if s["skipped_records"] else None)(stats(cloud, created["UUID"])),
                        timeout_s=15)
    wait_for(lambda: stats(cloud, created["UUID"])["records"] == 3)
    assert counters["skipped_batches"][0]["startSequenceNumber"] == "3"
    assert counters["skipped_batches"][0]["batchSize"] == 1


def test_each_shard_has_its_own_worker_and_keeps_its_order(clients, cloud):
    stream = clients.stream(shards=2)
    function = clients.function(f"{HANDLERS}.batches")
    for key in ("a", "b", "c", "d"):
        put(clients, stream, [f"{key}{i}" for i in range(3)], key=key)
    created = mapping(clients, stream, function, BatchSize=2)
    wait_for(lambda: stats(cloud, created["UUID"])["records"] == 12)
    data = [d for b in json_lines(clients, function) for d in b["data"]]
    for key in ("a", "b", "c", "d"):
        assert [d for d in data if d[0] == key] == [f"{key}0", f"{key}1", f"{key}2"]
    assert len(stats(cloud, created["UUID"])["checkpoints"]) == 2


def test_concurrent_invocations_log_only_their_own_output(clients, cloud):
    stream = clients.stream(shards=2)
    function = clients.function(f"{HANDLERS}.interleaved")
    for key in "abcdefgh":
        put(clients, stream, ["x"], key=key)
    created = mapping(clients, stream, function, BatchSize=1)
    wait_for(lambda: stats(cloud, created["UUID"])["records"] == 8)
    current = None
    for message in clients.log_messages(function):
        if message.startswith("START RequestId: "):
            current = message.split()[2]
        elif not message.startswith(("END", "REPORT")):
            assert message == current


def test_missing_handler_module_is_an_import_error_in_the_log(clients):
    stream = clients.stream()
    function = clients.function("no_such_module.handler")
    put(clients, stream, ["x"])
    mapping(clients, stream, function, MaximumRetryAttempts=0)
    messages = wait_for(lambda: [m for m in clients.log_messages(function) if m.startswith("[ERROR]")])
    assert "Runtime.ImportModuleError: Unable to import module 'no_such_module'" in messages[0]


def test_handler_slower_than_the_timeout_fails_the_invocation(clients, cloud):
    stream = clients.stream()
    function = clients.function(f"{HANDLERS}.batches", environment={"SLEEP_S": "1.1"}, timeout_s=1)
    put(clients, stream, ["x"])
    created = mapping(clients, stream, function, MaximumRetryAttempts=0)
    wait_for(lambda: stats(cloud, created["UUID"])["skipped_records"] == 1, timeout_s=10)
    assert any(m.endswith("Task timed out after 1.00 seconds") for m in clients.log_messages(function))


@pytest.mark.parametrize(("settings", "code"), [
    ({"FunctionName": "no-such-function"}, "ResourceNotFoundException"),
    ({"StartingPosition": None}, "InvalidParameterValueException"),
    ({"BatchSize": 20_000}, "InvalidParameterValueException"),
    ({"ParallelizationFactor": 4}, "InvalidParameterValueException"),
    ({"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"}, "InvalidParameterValueException"),
])
def test_invalid_mapping_is_rejected_with_lambdas_error(clients, settings, code):
    params = {"EventSourceArn": clients.stream(), "FunctionName": clients.function(f"{HANDLERS}.batches"),
              "StartingPosition": "LATEST", **settings}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(clients("lambda").exceptions.ClientError) as raised:
        clients("lambda").create_event_source_mapping(**params)
    assert raised.value.response["Error"]["Code"] == code
