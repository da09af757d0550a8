"""hbcore.aws.failed (``python -m deploy replay-failed``): failed records found with their bytes and sent
back into the stream, on moto; the handler's own rejected line, decoded and replayed byte for byte."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest

from hbcore.aws import failed
from hbcore.contracts import log_lines

GROUP = "/aws/lambda/hb-classifier"
STREAM = "hb-beats"


@pytest.fixture
def aws(moto_aws):
    region = "us-east-1"
    clients = {name: boto3.client(name, region_name=region) for name in ("logs", "kinesis", "sqs")}
    clients["logs"].create_log_group(logGroupName=GROUP)
    clients["logs"].create_log_stream(logGroupName=GROUP, logStreamName="s")
    clients["kinesis"].create_stream(StreamName=STREAM, ShardCount=1)
    return clients


def stream_records(kinesis) -> list[tuple[str, bytes]]:
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [(record["PartitionKey"], record["Data"]) for record in records]


def rejected(seq: str, data: bytes | None, beat: str = "r1:100:5") -> str:
    return log_lines.encode_line(log_lines.Rejected(
        beat, "r1", "100", seq, "shardId-000000000000", "'beat' has 1 values, expected 187", 3,
        None if data is None else base64.b64encode(data).decode()))


def test_rejected_records_are_found_with_their_bytes_once_each_and_replayed(aws):
    now_ms = int(time.time() * 1000)
    lines = [rejected("7", b'{"beat": [0.5]}'), rejected("7", b'{"beat": [0.5]}'),  # a retry logged it twice
             rejected("8", None, "r1:100:6"),  # an older handler's line: no payload, nothing to replay
             log_lines.encode_line(log_lines.Summary(3, 0, 3, 0, 0, None, 1.0, None, 3, 3)), "START RequestId: x"]
    aws["logs"].put_log_events(logGroupName=GROUP, logStreamName="s",
                               logEvents=[{"timestamp": now_ms + k, "message": line} for k, line in enumerate(lines)])

    records = failed.rejected_records(aws["logs"], GROUP, since_s=now_ms / 1000 - 60)
    result = failed.replay(aws["kinesis"], STREAM, records)

    assert [(record.id, record.data) for record in records] == [("r1:100:5", b'{"beat": [0.5]}')]
    assert (result.sent, result.failed) == (1, 0)
    assert stream_records(aws["kinesis"]) == [("100", b'{"beat": [0.5]}')]


def test_a_batch_lambda_gave_up_on_is_read_from_the_stream_and_its_message_deleted(aws):
    kinesis, sqs = aws["kinesis"], aws["sqs"]
    sent = [kinesis.put_record(StreamName=STREAM, Data=f"beat {k}".encode(), PartitionKey="201")["SequenceNumber"]
            for k in range(4)]
    queue = sqs.create_queue(QueueName="hb-classifier-failures")["QueueUrl"]
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "KinesisBatchInfo": {"shardId": "shardId-000000000000", "startSequenceNumber": sent[1],
                             "endSequenceNumber": sent[2], "streamArn": arn, "batchSize": 2}}))

    records = failed.discarded_records(sqs, kinesis, queue)
    result = failed.replay(kinesis, STREAM, records, sqs, queue)

    assert [record.data for record in records] == [b"beat 1", b"beat 2"]
    assert (result.sent, result.deleted_messages) == (2, 1)
    assert stream_records(kinesis)[-2:] == [("201", b"beat 1"), ("201", b"beat 2")]
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_the_handlers_rejected_line_replays_the_record_as_it_came(aws, monkeypatch):
    import importlib.util
    from pathlib import Path

    monkeypatch.setenv("ENDPOINT_NAME", "hb-endpoint")
    spec = importlib.util.spec_from_file_location("lambda_function_failed",
                                                  Path(__file__).parents[2] / "lambda_function.py")
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    payload = b'{"id": "r1:100:9", "run": "r1", "beat": "not numbers"}'
    record = handler.KinesisRecord({"kinesis": {"partitionKey": "100", "sequenceNumber": "12",
                                                "data": base64.b64encode(payload).decode()},
                                    "eventID": "shardId-000000000000:12"})
    with pytest.raises(handler.BadRecord) as raised:
        handler.parse_record(record)
    now_ms = int(time.time() * 1000)
    aws["logs"].put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": now_ms, "message": handler.rejected_line(record, raised.value, inv=1)}])

    failed.replay(aws["kinesis"], STREAM, failed.rejected_records(aws["logs"], GROUP, now_ms / 1000 - 5))

    assert stream_records(aws["kinesis"]) == [("100", payload)]


@pytest.mark.parametrize(("text", "expected"), [("30m", 1800.0), ("6h", 21600.0), ("2d", 172800.0), ("90s", 90.0)])
def test_since_is_a_duration_back_from_now(text, expected):
    assert failed.parse_since(text, now_s=1_000_000.0) == 1_000_000.0 - expected


def test_since_refuses_what_is_neither_a_duration_nor_a_time():
    with pytest.raises(ValueError, match="--since 'yesterday'"):
        failed.parse_since("yesterday")
