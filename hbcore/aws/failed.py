"""Failed records, found again and sent back into the stream: ``python -m deploy replay-failed``.

Two kinds of records never reach a prediction, and both keep their bytes somewhere a user can
replay them from once the cause is fixed (a model that refused good beats, a producer bug):

- records the handler rejects (malformed, or refused by the model): their ``rejected`` log line
  holds the record's bytes in base64 (``data``, hbcore.contracts.log_lines). They are read back with
  ``filter_log_events`` (no Logs Insights ingestion delay, no row cap) and decoded by the contract;
- batches Lambda gave up on after its retries (the mapping's on-failure SQS queue, ``<function>-failures``):
  the queue message holds only the shard and sequence range (``KinesisBatchInfo``), so the records
  are read from Kinesis itself, while the stream still retains them (24 h by default on AWS, 30 s
  in the local cloud). A message is deleted once its records are sent again.

Records are sent with ``put_records`` (500 a call), partition key the record's own (the patient),
so a replayed beat is classified and logged like any other; the results reader keeps one
prediction per beat id, so replaying twice counts once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hbcore.aws.names import Names
from hbcore.contracts import log_lines

PUT_RECORDS_MAX = 500  # records per PutRecords call
QUEUE_BATCH = 10  # messages per ReceiveMessage call (the SQS maximum)
FILTER_PATTERN = '"rejected"'  # the word every rejected line holds (plain words: moto and AWS alike)


@dataclass(frozen=True)
class FailedRecord:
    """One record to send again: its bytes, its partition key, and why it failed."""

    source: str  # "rejected" (a handler's rejected line) or "discarded" (a batch Lambda gave up on)
    id: str | None
    partition_key: str
    reason: str
    data: bytes
    ts: float  # epoch seconds it failed (the log line's, the queue message's)
    receipt: str | None = None  # the queue message to delete once replayed ("discarded" only)


def _log_events(logs, log_group: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = logs.filter_log_events(logGroupName=log_group, startTime=start_ms, endTime=end_ms,
                                      filterPattern=FILTER_PATTERN, **({"nextToken": token} if token else {}))
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return


def rejected_records(logs, log_group: str, since_s: float, until_s: float | None = None) -> list[FailedRecord]:
    """The records the handler rejected between ``since_s`` and ``until_s`` (epoch seconds), with their bytes.

    One per distinct (shard, sequence number, id): a record rejected again on a Kinesis retry is
    replayed once. Lines without a payload (an older handler, a record over 64 KB) are skipped.
    """
    found: dict[tuple, FailedRecord] = {}
    end_ms = int((time.time() if until_s is None else until_s) * 1000)
    for event in _log_events(logs, log_group, int(since_s * 1000), end_ms):
        line = log_lines.decode_line(event.get("message", "").strip())
        if type(line) is not log_lines.Rejected or line.data is None:
            continue
        try:
            data = base64.b64decode(line.data, validate=True)
        except (binascii.Error, ValueError):
            data = line.data.encode()  # what Lambda delivered was not base64: it is replayed as it came
        key = (line.shard, line.seq, line.id)
        found.setdefault(key, FailedRecord("rejected", line.id, line.record or line.id or "replayed", line.reason,
                                           data, event.get("timestamp", 0) / 1000.0))
    return list(found.values())


def discarded_records(sqs, kinesis, queue_url: str, wait_s: int = 0) -> list[FailedRecord]:
    """The records of every batch Lambda gave up on, as the on-failure queue describes them, read from Kinesis.

    A batch whose records the stream no longer holds (past its retention) gives no record, and its
    message stays in the queue (visible again after five minutes).
    """
    found: list[FailedRecord] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=QUEUE_BATCH,
                                       WaitTimeSeconds=wait_s, VisibilityTimeout=300).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.extend(_batch_records(kinesis, message))


def _batch_records(kinesis, message: dict[str, Any]) -> list[FailedRecord]:
    try:
        body = json.loads(message["Body"])
        info = body["KinesisBatchInfo"]
        stream_arn, shard = info["streamArn"], info["shardId"]
        first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        condition = body.get("requestContext", {}).get("condition", "RetryAttemptsExhausted")
    except (KeyError, TypeError, ValueError):
        return []  # not a Lambda on-failure record: left in the queue
    try:
        iterator = kinesis.get_shard_iterator(StreamName=stream_arn.rpartition("/")[2], ShardId=shard,
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=str(first))["ShardIterator"]
    except kinesis.exceptions.ResourceNotFoundException:
        return []  # the stream is gone: nothing to read the batch from
    records: list[FailedRecord] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        batch = [record for record in page.get("Records", []) if int(record["SequenceNumber"]) <= last]
        reason = f"Lambda gave up on the batch: {condition}"
        records.extend(FailedRecord("discarded", None, record["PartitionKey"], reason, record["Data"], time.time(),
                                    message["ReceiptHandle"]) for record in batch)
        if len(batch) < len(page.get("Records", [])) or not page.get("Records"):
            break
        iterator = page.get("NextShardIterator")
    return records


@dataclass(frozen=True)
class ReplayResult:
    """What a replay sent: records accepted by Kinesis, and those refused after the retries."""

    sent: int
    failed: int
    deleted_messages: int


def replay(kinesis, stream: str, records: list[FailedRecord], sqs=None, queue_url: str | None = None,
           progress: Callable[[str], None] = lambda message: None) -> ReplayResult:
    """Put ``records`` back into ``stream``; delete the queue messages whose records all went in."""
    sent = failed = 0
    refused_receipts: set[str] = set()
    for start in range(0, len(records), PUT_RECORDS_MAX):
        chunk = records[start:start + PUT_RECORDS_MAX]
        entries = [{"Data": record.data, "PartitionKey": record.partition_key[:256] or "replayed"} for record in chunk]
        response = kinesis.put_records(StreamName=stream, Records=entries)
        for record, result in zip(chunk, response.get("Records", [])):
            if result.get("ErrorCode"):
                failed += 1
                if record.receipt:
                    refused_receipts.add(record.receipt)
            else:
                sent += 1
        progress(f"replayed {sent:,} of {len(records):,} failed records")
    deleted = 0
    if sqs is not None and queue_url:
        for receipt in {record.receipt for record in records if record.receipt} - refused_receipts:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            deleted += 1
    return ReplayResult(sent, failed, deleted)


def replay_failed(backend, names: Names, since_s: float,
                  progress: Callable[[str], None] = lambda message: None) -> ReplayResult:
    """The whole ``replay-failed``: the rejected records of ``names.log_group`` since ``since_s`` and the
    batches in the on-failure queue (``<function>-failures``, if the stack has one), back into ``names.stream``."""
    records = rejected_records(backend.client("logs"), names.log_group, since_s)
    sqs, queue_url = backend.client("sqs"), None
    with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):  # a stack without an on-failure queue
        queue_url = sqs.get_queue_url(QueueName=f"{names.function}-failures")["QueueUrl"]
    kinesis = backend.client("kinesis")
    if queue_url:
        records += discarded_records(sqs, kinesis, queue_url)
    progress(f"found {len(records):,} failed records")
    return replay(kinesis, names.stream, records, sqs, queue_url, progress)


def parse_since(text: str, now_s: float | None = None) -> float:
    """``--since``: a duration back from now (``90s``, ``30m``, ``6h``, ``2d``) or epoch seconds; epoch seconds."""
    now_s = time.time() if now_s is None else now_s
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip()
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now_s - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration such as 30m, 6h, 2d, or epoch seconds") from None
