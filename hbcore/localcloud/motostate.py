"""Direct access to moto's in-process backends, for the parts of the local cloud that run beside it.

The poller, the event-source-mapping API and retention trimming live in moto's process. They read
Kinesis shards and write CloudWatch Logs without an HTTP round trip: moto already holds each
record's data as the base64 text the Lambda event carries, so a batch costs no re-encoding. Every
shard access holds ``motopatches.KINESIS_LOCK``; nothing here is used outside the local cloud's
process (clients there use plain boto3).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

from moto.awslambda.models import lambda_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.kinesis.models import kinesis_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from hbcore.localcloud.motopatches import (
    KINESIS_LOCK,
    LOGS_LOCK,
    in_time_order,
    last_sequence_number,
)

MAX_EVENTS_PER_PUT = 10_000  # CloudWatch Logs PutLogEvents limit


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN the local cloud needs."""

    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, arn: str) -> Arn:
        parts = str(arn).split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[2] or not parts[3] or not parts[4]:
            raise ValueError(f"{arn!r} is not an ARN (arn:partition:service:region:account:resource)")
        return cls(service=parts[2], region=parts[3], account=parts[4], resource=parts[5])


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One record of a shard, as the poller needs it for a Lambda event."""

    sequence_number: int
    partition_key: str
    data_b64: str
    arrival_s: float


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of a Lambda function's configuration the poller honours."""

    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout_s: int
    memory_mb: int
    runtime: str
    role: str

    def environment_key(self) -> tuple:
        """What makes an execution environment stale when it changes (Lambda starts new ones)."""
        return (self.arn, self.handler, tuple(sorted(self.environment.items())), self.timeout_s, self.memory_mb)


@dataclass(frozen=True)
class EndpointModel:
    """What a SageMaker endpoint serves: the model artifact of one production variant."""

    endpoint_name: str
    config_name: str
    variant_name: str
    model_data_url: str
    entry_point: str  # the script in code/ (SAGEMAKER_PROGRAM), "inference.py" by default


class MotoKinesis:
    """Shards of moto's Kinesis streams, read by sequence number, under ``KINESIS_LOCK``."""

    def _stream(self, stream_arn: str):
        arn = Arn.parse(stream_arn)
        if arn.service != "kinesis" or not arn.resource.startswith("stream/"):
            raise ValueError(f"{stream_arn!r} is not a Kinesis stream ARN")
        backend = kinesis_backends[arn.account][arn.region]
        stream = backend.streams.get(arn.resource.removeprefix("stream/"))
        if stream is None:
            raise LookupError(f"stream {stream_arn} does not exist")
        return stream

    def exists(self, stream_arn: str) -> bool:
        """Whether ``stream_arn`` names an existing stream (False for a malformed ARN too)."""
        try:
            with KINESIS_LOCK:
                self._stream(stream_arn)
        except (ValueError, LookupError):
            return False
        return True

    def shard_ids(self, stream_arn: str) -> list[str]:
        """The stream's shard ids, oldest first."""
        with KINESIS_LOCK:
            return list(self._stream(stream_arn).shards)

    def start_after(self, stream_arn: str, shard_id: str, position: str, timestamp: float | None = None) -> int:
        """The sequence number a reader starting at ``position`` reads after (TRIM_HORIZON → 0)."""
        with KINESIS_LOCK:
            shard = self._stream(stream_arn).get_shard(shard_id)
            if position == "LATEST":
                return last_sequence_number(shard)
            if position == "AT_TIMESTAMP":
                before = [number for number, record in shard.records.items() if record.created_at < (timestamp or 0)]
                return before[-1] if before else 0
            return 0

    def read(self, stream_arn: str, shard_id: str, after: int, limit: int) -> tuple[list[ShardRecord], int]:
        """Up to ``limit`` records with sequence numbers above ``after``, and the shard's latest number."""
        with KINESIS_LOCK:
            shard = self._stream(stream_arn).get_shard(shard_id)
            records, _, _ = shard.get_records(str(after), limit)
            latest = last_sequence_number(shard)
            return [
                ShardRecord(r.sequence_number, r.partition_key, r.data, r.created_at) for r in records
            ], latest

    def trim(self, stream_arn: str, consumed: dict[str, int] | None, older_than_s: float) -> int:
        """Drop records older than ``older_than_s`` seconds that every reader has consumed.

        ``consumed`` maps shard id → the lowest sequence number every mapping on the stream has
        processed; None means the stream has no mapping, so only age counts. Returns the count
        dropped. Kinesis itself drops records after the retention period; moto never does.
        """
        cutoff = time.time() - older_than_s
        dropped = 0
        with KINESIS_LOCK:
            for shard_id, shard in self._stream(stream_arn).shards.items():
                limit = last_sequence_number(shard) if consumed is None else consumed.get(shard_id, 0)
                records = shard.records
                while records:
                    number = next(iter(records))
                    if number > limit or records[number].created_at >= cutoff:
                        break
                    del records[number]
                    dropped += 1
        return dropped

    def stream_arns(self) -> list[str]:
        """Every stream of every account and region that moto has created."""
        with KINESIS_LOCK:
            return [
                stream.arn
                for account_backends in list(kinesis_backends.values())
                for backend in list(account_backends.values())
                for stream in list(backend.streams.values())
            ]

    def retained_records(self) -> int:
        """Records held in all shards (for status and memory checks)."""
        with KINESIS_LOCK:
            return sum(
                len(shard.records)
                for account_backends in list(kinesis_backends.values())
                for backend in list(account_backends.values())
                for stream in list(backend.streams.values())
                for shard in stream.shards.values()
            )


class MotoLambda:
    """Function configurations from moto's Lambda control plane."""

    def function(self, name_or_arn: str, region: str, account: str = DEFAULT_ACCOUNT_ID) -> FunctionConfig:
        """The current configuration of a function (name, partial or full ARN); LookupError if absent."""
        if str(name_or_arn).startswith("arn:"):
            arn = Arn.parse(name_or_arn)
            region, account = arn.region, arn.account
        try:
            fn = lambda_backends[account][region].get_function(name_or_arn)
        except Exception as error:  # moto raises its UnknownFunctionException (a RESTError)
            raise LookupError(f"function {name_or_arn} not found in {region}") from error
        return FunctionConfig(
            name=fn.function_name,
            arn=fn.function_arn,
            handler=fn.handler or "lambda_function.lambda_handler",
            environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
            timeout_s=int(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            runtime=fn.run_time or "python3.11",
            role=fn.role or "",
        )


class MotoLogs:
    """Writes to moto's CloudWatch Logs, creating the group and stream as Lambda does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def put(self, region: str, group: str, stream: str, events: list[tuple[int, str]],
            account: str = DEFAULT_ACCOUNT_ID) -> None:
        """Append ``(timestamp_ms, message)`` events (chronological) to ``group``/``stream``."""
        backend = logs_backends[account][region]
        with self._lock:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            for start in range(0, len(events), MAX_EVENTS_PER_PUT):
                chunk = events[start:start + MAX_EVENTS_PER_PUT]
                backend.put_log_events(group, stream, [{"timestamp": ts, "message": msg} for ts, msg in chunk])

    def trim(self, older_than_s: float) -> int:
        """Drop log events older than ``older_than_s`` seconds from every stream; returns the count dropped.

        CloudWatch Logs expires events after the group's retention (days); moto never does, so a
        long run at 500 beats/s grew by ~1 GB an hour. A stream's list is replaced, not edited, so a
        query reading it keeps a consistent view; ``LOGS_LOCK`` keeps appends out meanwhile.
        """
        cutoff_ms = int((time.time() - older_than_s) * 1000)
        dropped = 0
        with LOGS_LOCK:
            for stream in self._streams():
                events = stream.events
                if in_time_order(stream):
                    old = bisect_left(events, cutoff_ms, key=attrgetter("timestamp"))
                    kept = events[old:] if old else events
                else:
                    kept = [event for event in events if event.timestamp >= cutoff_ms]
                    old = len(events) - len(kept)
                if old:
                    stream.events = kept  # storedBytes stays what was ingested: moto never lowered it
                    dropped += old
        return dropped

    def retained_events(self) -> int:
        """Log events held in all streams (for status and memory checks)."""
        return sum(len(stream.events) for stream in self._streams())

    @staticmethod
    def _streams() -> list:
        return [
            stream
            for account_backends in list(logs_backends.values())
            for backend in list(account_backends.values())
            for group in backend.groups.values()
            for stream in group.streams.values()
        ]


class MotoMetrics:
    """Metric data points in moto's CloudWatch, which moto's Kinesis adds to on every PutRecords call."""

    def trim(self, older_than_s: float) -> int:
        """Drop data points older than ``older_than_s`` seconds; returns the count dropped.

        moto's Kinesis puts an IncomingBytes and an IncomingRecords point per PutRecords call (AWS
        publishes them once a minute) and CloudWatch keeps them for ever: ~1 MB a minute at 10 calls
        a second. Only the points present when the pass starts are replaced (one slice assignment,
        atomic under the GIL), so a put appending meanwhile is kept.
        """
        cutoff_s = time.time() - older_than_s
        dropped = 0
        for data in self._lists():
            count = len(data)
            kept = [point for point in data[:count] if _epoch_s(point.timestamp) >= cutoff_s]
            if len(kept) < count:
                data[:count] = kept
                dropped += count - len(kept)
        return dropped

    def retained_points(self) -> int:
        """Data points held (for status and memory checks)."""
        return sum(len(data) for data in self._lists())

    @staticmethod
    def _lists() -> list[list]:
        return [backend.metric_data
                for account_backends in list(cloudwatch_backends.values())
                for backend in list(account_backends.values())]


def _epoch_s(timestamp: object) -> float:
    """Epoch seconds of a data point's time (moto's own are naive UTC); +inf for anything else (kept)."""
    if not isinstance(timestamp, datetime):
        return float("inf")
    return (timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)).timestamp()



class MotoSageMaker:
    """Endpoints and model artifacts as recorded in moto's SageMaker control plane and S3."""

    def locate(self, endpoint_name: str, region: str, variant: str | None = None,
               account: str = DEFAULT_ACCOUNT_ID) -> EndpointModel:
        """Follow endpoint → endpoint config → model → ModelDataUrl; LookupError if any link is missing."""
        backend = sagemaker_backends[account][region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise LookupError(f"Endpoint {endpoint_name} of account {account} not found.")
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        if config is None:
            raise LookupError(f"Endpoint {endpoint_name}: configuration {endpoint.endpoint_config_name} not found.")
        variants = config.production_variants or []
        chosen = next((v for v in variants if variant is None or v.get("VariantName") == variant), None)
        if chosen is None:
            raise LookupError(f"Endpoint {endpoint_name} has no production variant {variant!r}.")
        model_name = chosen.get("ModelName")
        model = backend._models.get(model_name) if model_name is not None else None
        if model is None:
            raise LookupError(f"Endpoint {endpoint_name}: model {model_name} not found.")
        container = model.primary_container or (model.containers[0] if model.containers else {})
        url = container.get("ModelDataUrl")
        if not url:
            raise LookupError(f"Endpoint {endpoint_name}: model {model.model_name} has no ModelDataUrl.")
        program = (container.get("Environment") or {}).get("SAGEMAKER_PROGRAM") or "inference.py"
        return EndpointModel(endpoint_name, endpoint.endpoint_config_name, chosen.get("VariantName", ""), url, program)

    def _key(self, url: str, account: str):
        if not url.startswith("s3://") or "/" not in url[5:]:
            raise LookupError(f"ModelDataUrl {url!r} is not s3://bucket/key")
        bucket, key = url[5:].split("/", 1)
        try:
            found = s3_backends[account]["aws"].get_object(bucket, key)
        except Exception as error:  # moto raises MissingBucket / MissingKey (RESTErrors)
            raise LookupError(f"ModelDataUrl {url}: {error}") from error
        if found is None:
            raise LookupError(f"ModelDataUrl {url}: no such object")
        return found

    def etag(self, url: str, account: str = DEFAULT_ACCOUNT_ID) -> str:
        """The artifact's ETag, so an overwritten model.tar.gz is noticed."""
        return self._key(url, account).etag

    def read(self, url: str, account: str = DEFAULT_ACCOUNT_ID) -> bytes:
        """The artifact's bytes."""
        return self._key(url, account).value


class MotoDestinations:
    """On-failure destinations of event-source mappings: SQS queues and SNS topics in moto."""

    SERVICES = ("sqs", "sns")

    def exists(self, destination_arn: str) -> bool:
        """Whether the queue or topic exists (False for other services or malformed ARNs)."""
        try:
            arn = Arn.parse(destination_arn)
            if arn.service == "sqs":
                return arn.resource in sqs_backends[arn.account][arn.region].queues
            if arn.service == "sns":
                return destination_arn in sns_backends[arn.account][arn.region].topics
        except ValueError:
            pass
        return False

    def send(self, destination_arn: str, message: str) -> None:
        """Deliver one JSON record describing a discarded batch."""
        arn = Arn.parse(destination_arn)
        if arn.service == "sqs":
            sqs_backends[arn.account][arn.region].send_message(arn.resource, message)
        elif arn.service == "sns":
            sns_backends[arn.account][arn.region].topics[destination_arn].publish(message)
        else:
            raise ValueError(f"{destination_arn}: on-failure destinations must be SQS queues or SNS topics")
