"""A local Kinesis → Lambda event-source poller that behaves as Lambda's.

AWS runs the pipeline's function from an event-source mapping; moto cannot (it needs Docker), so
the local cloud serves the mapping API itself (``hbcore.localcloud.server``) and runs each mapping here:
one worker per shard reads batches (BatchSize, MaximumBatchingWindowInSeconds, StartingPosition),
calls the handler named in the function's configuration with Lambda's Kinesis event and a context
object, and applies Lambda's failure rules (ReportBatchItemFailures, MaximumRetryAttempts,
BisectBatchOnFunctionError, MaximumRecordAgeInSeconds, on-failure destinations). What the handler
prints goes to ``/aws/lambda/<function>`` between ``START`` / ``END`` / ``REPORT`` lines, one log
stream per execution environment, as Lambda writes it.

Each shard worker is its own execution environment: the handler module is imported once per worker
(and again when the function's configuration changes), so module-level state is per environment as
on AWS. Environment variables are process-wide here: functions mapped in one local cloud must not
disagree on a variable's value.
"""

from __future__ import annotations

import builtins
import datetime as dt
import importlib.util
import json
import math
import os
import resource
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hbcore.localcloud.motostate import (
    Arn,
    FunctionConfig,
    MotoDestinations,
    MotoKinesis,
    MotoLambda,
    MotoLogs,
    ShardRecord,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
IDLE_POLL_S = 0.05  # inside a batching window: how often to look for more records
# A shard that is caught up is read again this long after the previous read began: Lambda "polls
# each shard in your Kinesis stream for records at a base rate of once per second" (Lambda developer
# guide, Kinesis event source mapping). Faster would flatter first-prediction times and make tiny
# batches: at 500 beats/s ~19 records per invocation, each with 4 more log lines (START, summary,
# END, REPORT).
SHARD_POLL_S = 1.0
DISABLED_POLL_S = 0.2
SHARD_REFRESH_S = 5.0
RETRY_BACKOFF_S = 0.5  # first wait before a retry; doubles per attempt up to RETRY_BACKOFF_MAX_S
RETRY_BACKOFF_MAX_S = 8.0
MAX_EVENT_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
RECORD_ENVELOPE_BYTES = 400  # JSON around each record's data in the event
SKIPPED_BATCHES_KEPT = 100
STOP_JOIN_S = 10.0

STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
RESPONSE_TYPES = ("ReportBatchItemFailures",)


class MappingError(Exception):
    """A mapping API error, rendered as Lambda's REST error (status, error type, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> MappingError:
    return MappingError(400, "InvalidParameterValueException", message)


# --- per-thread capture of what the handler prints ------------------------------------------------

class ThreadOutput:
    """A stdout/stderr stand-in that sends each thread's writes to its own capture, if it has one.

    Several shard workers run handlers at once, so a process-wide ``redirect_stdout`` would mix
    their lines; threads without a capture write through to the original stream.
    """

    def __init__(self, fallback) -> None:
        self.fallback = fallback
        self._local = threading.local()

    def write(self, text: str) -> int:
        capture = getattr(self._local, "capture", None)
        if capture is None:
            return self.fallback.write(text)
        capture.write(text)
        return len(text)

    def flush(self) -> None:
        if getattr(self._local, "capture", None) is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)

    @contextmanager
    def capture(self, lines: LineCapture) -> Iterator[LineCapture]:
        previous = getattr(self._local, "capture", None)
        self._local.capture = lines
        try:
            yield lines
        finally:
            self._local.capture = previous


class LineCapture:
    """Lines written by one invocation, each stamped with the time its newline arrived, handed to ``sink``.

    Lines go to the sink as they complete: Lambda ships a function's output while it runs, so a
    line printed early in a long invocation is readable at once, not when the invocation ends.
    """

    def __init__(self, sink: Callable[[list[tuple[int, str]]], None]) -> None:
        self._sink = sink
        self._partial = ""

    def write(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        if complete:
            now_ms = int(time.time() * 1000)
            self._sink([(now_ms, line) for line in complete])

    def add(self, message: str) -> None:
        """One log event, newlines and all (Lambda's runtime logs an error report as one event)."""
        self.finish()
        self._sink([(int(time.time() * 1000), message)])

    def finish(self) -> None:
        """Hand over a last line that has no newline."""
        if self._partial:
            self._sink([(int(time.time() * 1000), self._partial)])
            self._partial = ""


_install_lock = threading.Lock()


def thread_outputs() -> tuple[ThreadOutput, ThreadOutput]:
    """Install (once) the per-thread stdout and stderr and return them."""
    with _install_lock:
        if not isinstance(sys.stdout, ThreadOutput):
            sys.stdout = ThreadOutput(sys.stdout)
        if not isinstance(sys.stderr, ThreadOutput):
            sys.stderr = ThreadOutput(sys.stderr)
    return sys.stdout, sys.stderr


@contextmanager
def captured_output(sink: Callable[[list[tuple[int, str]]], None]) -> Iterator[LineCapture]:
    """Send this thread's stdout and stderr, line by line, to ``sink`` (through one ``LineCapture``)."""
    stdout, stderr = thread_outputs()
    lines = LineCapture(sink)
    with stdout.capture(lines), stderr.capture(lines):
        yield lines


# --- the Lambda side: context, execution environment, invocation ---------------------------------

@dataclass
class LambdaContext:
    """The context object Lambda's Python runtime passes to the handler."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: str  # a string on AWS too (read from AWS_LAMBDA_FUNCTION_MEMORY_SIZE)
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What one invocation returned: the handler's result or the kind of function error."""

    result: Any = None
    error: str | None = None  # "Unhandled", "Task timed out", "Runtime.ImportModuleError", ...
    duration_ms: float = 0.0


_environ_lock = threading.Lock()


def apply_environment(function: FunctionConfig, region: str, runtime: dict[str, str]) -> None:
    """Set the variables Lambda sets for ``function`` in this process (only those that differ).

    ``runtime`` holds what the sandbox itself provides (credentials, the local cloud's endpoint
    URLs); the function's own variables win over it, as on AWS.
    """
    wanted = {
        **runtime,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "_HANDLER": function.handler,
        **function.environment,
    }
    with _environ_lock:
        for name, value in wanted.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def _load_handler(code_root: Path, handler: str) -> Callable[[dict, Any], Any]:
    """Import the handler's module from ``code_root`` as a fresh module and return the function."""
    module_path, _, function_name = handler.rpartition(".")
    if not module_path or not function_name:
        raise ImportError(f"Runtime.MalformedHandlerName: Bad handler '{handler}': not enough values to unpack")
    script = code_root.joinpath(*module_path.split(".")).with_suffix(".py")
    if not script.is_file():
        raise ImportError(f"Runtime.ImportModuleError: Unable to import module '{module_path}': "
                          f"No module named '{module_path}'")
    if str(code_root) not in sys.path:
        sys.path.append(str(code_root))
    unique_name = f"hb_lambda_{uuid.uuid4().hex}_{module_path.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(unique_name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"Runtime.ImportModuleError: Unable to import module '{module_path}'")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ImportError(f"Runtime.HandlerNotFound: Handler '{function_name}' missing on module '{module_path}'")
    return function


def _now_ms(floor: int = 0) -> int:
    return max(floor, int(time.time() * 1000))


class ExecutionEnvironment:
    """One warm Lambda sandbox: a function configuration, its handler module, its log stream."""

    def __init__(self, function: FunctionConfig, region: str, code_root: Path, logs: MotoLogs,
                 runtime_environment: dict[str, str]) -> None:
        self.function = function
        self.runtime_environment = runtime_environment
        self.region = region
        self.key = function.environment_key()
        self.log_group = f"/aws/lambda/{function.name}"
        self.log_stream = f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._code_root = code_root
        self._logs = logs
        self._handler: Callable[[dict, Any], Any] | None = None
        self._init_ms: float | None = None

    def _initialise(self, lines: LineCapture) -> str | None:
        """Import the handler (cold start); returns the error kind if the import fails."""
        started = time.perf_counter()
        try:
            apply_environment(self.function, self.region, self.runtime_environment)
            self._handler = _load_handler(self._code_root, self.function.handler)
            return None
        except Exception as error:  # the user's module may raise anything while it is imported
            message = str(error)
            if not message.startswith("Runtime."):
                module = self.function.handler.rpartition(".")[0]
                message = (f"Runtime.ImportModuleError: Unable to import module '{module}': "
                           f"{type(error).__name__}: {error}\n{traceback.format_exc().rstrip()}")
            lines.add(f"[ERROR] {message}")
            return message.split(":", 1)[0]
        finally:
            self._init_ms = (time.perf_counter() - started) * 1000

    def invoke(self, event: dict) -> Invocation:
        """Run the handler once, writing the invocation's log events as they are printed."""
        request_id = str(uuid.uuid4())
        log = LogStreamWriter(self._logs, self.region, self.log_group, self.log_stream)
        log.write([(_now_ms(), f"START RequestId: {request_id} Version: $LATEST")])
        outcome = Invocation()
        init_ms = None
        with captured_output(log.write) as lines:
            if self._handler is None:
                outcome.error = self._initialise(lines)
                init_ms = self._init_ms
            if outcome.error is None:
                outcome = self._call(event, request_id, lines)
            lines.finish()
        end_ms = _now_ms(log.floor_ms)
        log.write([(end_ms, f"END RequestId: {request_id}"),
                   (end_ms, self._report(request_id, outcome.duration_ms, init_ms))])
        return outcome

    def _call(self, event: dict, request_id: str, lines: LineCapture) -> Invocation:
        handler = self._handler
        assert handler is not None, "invoke() imports the handler before it calls it"
        apply_environment(self.function, self.region, self.runtime_environment)
        context = LambdaContext(
            function_name=self.function.name,
            invoked_function_arn=self.function.arn,
            memory_limit_in_mb=str(self.function.memory_mb),
            aws_request_id=request_id,
            log_group_name=self.log_group,
            log_stream_name=self.log_stream,
            deadline_monotonic=time.monotonic() + self.function.timeout_s,
        )
        started = time.perf_counter()
        outcome = Invocation()
        try:
            outcome.result = handler(event, context)
        except Exception as error:
            outcome.error = "Unhandled"
            lines.add(f"[ERROR] {type(error).__name__}: {error}\n" + traceback.format_exc().rstrip())
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        if outcome.duration_ms > self.function.timeout_s * 1000:
            # Lambda would have stopped the handler; we can only fail the invocation afterwards.
            outcome.error = "Task timed out"
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            lines.add(f"{stamp} {request_id} Task timed out after {self.function.timeout_s:.2f} seconds")
        return outcome

    def _report(self, request_id: str, duration_ms: float, init_ms: float | None) -> str:
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {self.function.memory_mb} MB\t"
                  f"Max Memory Used: {max_rss_mb} MB\t")
        if init_ms is not None:
            report += f"Init Duration: {init_ms:.2f} ms\t"
        return report


class LogStreamWriter:
    """Puts one invocation's log events into its log stream as they come, never out of time order."""

    def __init__(self, logs: MotoLogs, region: str, group: str, stream: str) -> None:
        self._logs = logs
        self._where = (region, group, stream)
        self.floor_ms = 0

    def write(self, events: list[tuple[int, str]]) -> None:
        ordered = []
        for ts, message in events:
            self.floor_ms = max(self.floor_ms, ts)  # PutLogEvents wants chronological events
            ordered.append((self.floor_ms, message))
        self._logs.put(*self._where, ordered)


def kinesis_event(records: list[ShardRecord], stream_arn: str, shard_id: str, region: str, role_arn: str) -> dict:
    """Lambda's Kinesis event for a batch (the data is moto's base64 text as it is)."""
    return {"Records": [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record.partition_key,
                "sequenceNumber": str(record.sequence_number),
                "data": record.data_b64,
                "approximateArrivalTimestamp": round(record.arrival_s, 3),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{record.sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": role_arn,
            "awsRegion": region,
            "eventSourceARN": stream_arn,
        }
        for record in records
    ]}


def failed_from(response: Any, records: list[ShardRecord]) -> int | None:
    """Where to resume after a ReportBatchItemFailures response: None = all succeeded, else an index.

    Lambda resumes at the lowest reported sequence number (compared as integers); an identifier that
    is empty, malformed or not in the batch fails the whole batch (index 0).
    """
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return None
    positions = {record.sequence_number: index for index, record in enumerate(records)}
    lowest: int | None = None
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        try:
            number = int(str(identifier))
        except ValueError:
            return 0
        if number not in positions:
            return 0
        lowest = number if lowest is None else min(lowest, number)
    assert lowest is not None, "failures is not empty, and each one returned 0 or set lowest"
    return positions[lowest]


# --- mappings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MappingConfig:
    """A mapping's settings, as the API returns them (immutable: updates replace the object)."""

    uuid: str
    event_source_arn: str
    function_arn: str
    starting_position: str
    starting_position_timestamp: float | None = None
    enabled: bool = True
    batch_size: int = 100
    batching_window_s: int = 0
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    bisect_on_error: bool = False
    report_item_failures: bool = False
    on_failure_destination: str | None = None
    last_modified: float = field(default_factory=time.time)

    @property
    def region(self) -> str:
        return Arn.parse(self.event_source_arn).region

    def to_api(self, state: str, last_result: str) -> dict[str, Any]:
        """The mapping as Lambda's API shapes it."""
        arn = Arn.parse(self.function_arn)
        body: dict[str, Any] = {
            "UUID": self.uuid,
            "StartingPosition": self.starting_position,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.batching_window_s,
            "ParallelizationFactor": 1,
            "EventSourceArn": self.event_source_arn,
            "FunctionArn": self.function_arn,
            "LastModified": self.last_modified,
            "LastProcessingResult": last_result,
            "State": state,
            "StateTransitionReason": "User action",
            "DestinationConfig": {"OnFailure": {"Destination": self.on_failure_destination}}
            if self.on_failure_destination else {"OnFailure": {}},
            "MaximumRecordAgeInSeconds": self.maximum_record_age_s,
            "BisectBatchOnFunctionError": self.bisect_on_error,
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "TumblingWindowInSeconds": 0,
            "FunctionResponseTypes": list(RESPONSE_TYPES) if self.report_item_failures else [],
            "EventSourceMappingArn": f"arn:aws:lambda:{arn.region}:{arn.account}:event-source-mapping:{self.uuid}",
        }
        if self.starting_position_timestamp is not None:
            body["StartingPositionTimestamp"] = self.starting_position_timestamp
        return body


def _int_in(params: dict, name: str, default: int, low: int, high: int, also: tuple[int, ...] = ()) -> int:
    value = params.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high or value in also):
        allowed = f"between {low} and {high}" + "".join(f" or {v}" for v in also)
        raise _invalid(f"{name} must be an integer {allowed}, got {value!r}")
    return value


UNSUPPORTED_SETTINGS = {
    "ParallelizationFactor": 1, "TumblingWindowInSeconds": 0, "FilterCriteria": None,
    "Topics": None, "Queues": None, "SourceAccessConfigurations": None, "SelfManagedEventSource": None,
    "ScalingConfig": None, "AmazonManagedKafkaEventSourceConfig": None, "SelfManagedKafkaEventSourceConfig": None,
    "DocumentDBEventSourceConfig": None, "KMSKeyArn": None, "MetricsConfig": None, "ProvisionedPollerConfig": None,
}


def settings_from(params: dict, base: MappingConfig, destinations: MotoDestinations) -> MappingConfig:
    """Validate API parameters (create or update) into a config derived from ``base``."""
    for name, neutral in UNSUPPORTED_SETTINGS.items():
        if params.get(name) not in (None, neutral, {}, []):
            raise _invalid(f"{name} is not supported by the local cloud's poller (only {neutral!r})")
    response_types = params.get("FunctionResponseTypes")
    if response_types is not None and (not isinstance(response_types, list)
                                       or any(t not in RESPONSE_TYPES for t in response_types)):
        raise _invalid(f"FunctionResponseTypes must be a subset of {list(RESPONSE_TYPES)}, got {response_types!r}")
    destination = base.on_failure_destination
    if "DestinationConfig" in params:
        destination = ((params.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination") or None
        if destination is not None and not destinations.exists(destination):
            raise _invalid(f"DestinationConfig.OnFailure.Destination {destination} is not an existing SQS queue "
                           "or SNS topic")
    enabled = params.get("Enabled", base.enabled)
    if not isinstance(enabled, bool):
        raise _invalid(f"Enabled must be true or false, got {enabled!r}")
    bisect = params.get("BisectBatchOnFunctionError", base.bisect_on_error)
    if not isinstance(bisect, bool):
        raise _invalid(f"BisectBatchOnFunctionError must be true or false, got {bisect!r}")
    return replace(
        base,
        enabled=enabled,
        batch_size=_int_in(params, "BatchSize", base.batch_size, 1, 10_000),
        batching_window_s=_int_in(params, "MaximumBatchingWindowInSeconds", base.batching_window_s, 0, 300),
        maximum_retry_attempts=_int_in(params, "MaximumRetryAttempts", base.maximum_retry_attempts, 0, 10_000, (-1,)),
        maximum_record_age_s=_int_in(params, "MaximumRecordAgeInSeconds", base.maximum_record_age_s, 60, 604_800,
                                     (-1,)),
        bisect_on_error=bisect,
        report_item_failures=base.report_item_failures if response_types is None else bool(response_types),
        on_failure_destination=destination,
        last_modified=time.time(),
    )


@dataclass
class MappingStats:
    """Counters of one mapping; updated by its shard workers under the mapping's lock."""

    invocations: int = 0
    batches: int = 0
    records: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    retries: int = 0
    skipped_records: int = 0
    iterator_age_ms: int = 0
    last_result: str = "No records processed"
    checkpoints: dict[str, int] = field(default_factory=dict)
    latest: dict[str, int] = field(default_factory=dict)
    skipped: deque = field(default_factory=lambda: deque(maxlen=SKIPPED_BATCHES_KEPT))


class Mapping:
    """One event-source mapping: its config, its shard workers, its counters."""

    def __init__(self, config: MappingConfig, poller: Poller) -> None:
        self._config = config
        self.poller = poller
        self.lock = threading.Lock()
        self.stats = MappingStats()
        self.state = "Creating"
        self.stopped = threading.Event()
        self._workers: dict[str, ShardWorker] = {}
        self._refresher = threading.Thread(target=self._refresh_shards, name=f"mapping-{config.uuid[:8]}", daemon=True)

    @property
    def config(self) -> MappingConfig:
        return self._config

    def start(self) -> None:
        """Fix each shard's starting position now (LATEST means after this call), then start workers."""
        self._start_workers(self.config.starting_position)
        self.state = "Enabled" if self.config.enabled else "Disabled"
        self._refresher.start()

    def _start_workers(self, position: str) -> None:
        kinesis = self.poller.kinesis
        for shard_id in kinesis.shard_ids(self.config.event_source_arn):
            if shard_id in self._workers:
                continue
            after = kinesis.start_after(self.config.event_source_arn, shard_id, position,
                                        self.config.starting_position_timestamp)
            with self.lock:
                self.stats.checkpoints[shard_id] = after
            worker = ShardWorker(self, shard_id, after)
            self._workers[shard_id] = worker
            worker.start()

    def _refresh_shards(self) -> None:
        """Start workers for shards created by resharding (read from their beginning, as Lambda does)."""
        while not self.stopped.wait(SHARD_REFRESH_S):
            try:
                self._start_workers("TRIM_HORIZON")
            except LookupError:
                continue  # stream deleted: workers keep failing quietly until the mapping is deleted

    def update(self, config: MappingConfig) -> None:
        self._config = config
        self.state = "Enabled" if config.enabled else "Disabled"

    def stop(self) -> None:
        self.stopped.set()
        for worker in list(self._workers.values()):
            worker.join(timeout=STOP_JOIN_S)
        if self._refresher.is_alive():
            self._refresher.join(timeout=STOP_JOIN_S)

    def to_api(self, state: str | None = None) -> dict[str, Any]:
        with self.lock:
            last_result = self.stats.last_result
        return self.config.to_api(state or self.state, last_result)

    def describe(self) -> dict[str, Any]:
        """Counters and positions, for ``/_hb/status`` and the benchmarks."""
        with self.lock:
            s = self.stats
            lag = sum(max(0, s.latest.get(shard, 0) - at) for shard, at in s.checkpoints.items())
            return {
                "uuid": self.config.uuid, "state": self.state, "function_arn": self.config.function_arn,
                "event_source_arn": self.config.event_source_arn, "invocations": s.invocations,
                "batches": s.batches, "records": s.records, "function_errors": s.function_errors,
                "partial_failures": s.partial_failures, "retries": s.retries, "skipped_records": s.skipped_records,
                "skipped_batches": list(s.skipped), "iterator_age_ms": s.iterator_age_ms, "lag_records": lag,
                "checkpoints": dict(s.checkpoints), "last_result": s.last_result,
            }


class ShardWorker(threading.Thread):
    """Reads one shard for one mapping and invokes the function, one batch at a time."""

    def __init__(self, mapping: Mapping, shard_id: str, after: int) -> None:
        super().__init__(name=f"shard-{mapping.config.uuid[:8]}-{shard_id[-4:]}", daemon=True)
        self.mapping = mapping
        self.shard_id = shard_id
        self.after = after
        self._environment: ExecutionEnvironment | None = None

    @property
    def _stopped(self) -> threading.Event:
        return self.mapping.stopped

    def run(self) -> None:
        while not self._stopped.is_set():
            config = self.mapping.config
            if not config.enabled:
                self._stopped.wait(DISABLED_POLL_S)
                continue
            read_at = time.monotonic()
            try:
                batch = self._collect(config)
            except LookupError:
                self._stopped.wait(SHARD_REFRESH_S)
                continue
            if batch:
                self._process(batch)
            if len(batch) < config.batch_size:  # caught up with the shard: poll it again later
                self._stopped.wait(max(0.0, read_at + SHARD_POLL_S - time.monotonic()))

    def _collect(self, config: MappingConfig) -> list[ShardRecord]:
        """A batch: up to BatchSize records and 6 MB, waiting up to the batching window to fill it."""
        deadline = time.monotonic() + config.batching_window_s
        batch: list[ShardRecord] = []
        size = 0
        position = self.after
        while True:
            records, latest = self.mapping.poller.kinesis.read(
                config.event_source_arn, self.shard_id, position, config.batch_size - len(batch))
            with self.mapping.lock:
                self.mapping.stats.latest[self.shard_id] = latest
            for record in records:
                record_size = len(record.data_b64) + len(record.partition_key) + RECORD_ENVELOPE_BYTES
                if batch and size + record_size > MAX_EVENT_BYTES:
                    return batch
                batch.append(record)
                size += record_size
                position = record.sequence_number
            if len(batch) >= config.batch_size or time.monotonic() >= deadline or self._stopped.is_set():
                return batch
            self._stopped.wait(min(IDLE_POLL_S, max(0.0, deadline - time.monotonic())))

    def _process(self, batch: list[ShardRecord]) -> None:
        """Invoke until every record is done or discarded; segments keep bisected halves in order."""
        batch = self._drop_expired(batch)
        segments: deque[tuple[list[ShardRecord], int]] = deque([(batch, 0)] if batch else [])
        while segments and not self._stopped.is_set():
            config = self.mapping.config
            if not config.enabled:
                self._stopped.wait(DISABLED_POLL_S)
                continue
            records, attempts = segments.popleft()
            outcome = self._invoke(records, config)
            if outcome is None:  # function missing: retry later without counting an attempt
                segments.appendleft((records, attempts))
                self._stopped.wait(RETRY_BACKOFF_MAX_S)
                continue
            reports_items = outcome.error is None and config.report_item_failures
            resume = failed_from(outcome.result, records) if reports_items else None
            self._count(records, outcome, resume)
            if outcome.error is None and resume is None:
                self._done(records, succeeded=len(records))
                continue
            if resume:
                self._done(records[:resume], succeeded=resume)
                records = records[resume:]
            attempts += 1
            if 0 <= config.maximum_retry_attempts < attempts:
                self._discard(records, config, "RetryAttemptsExhausted", attempts)
                continue
            with self.mapping.lock:
                self.mapping.stats.retries += 1
            if outcome.error is not None and config.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                segments.appendleft((records[half:], attempts))
                segments.appendleft((records[:half], attempts))
            else:
                segments.appendleft((records, attempts))
            self._stopped.wait(min(RETRY_BACKOFF_MAX_S, self.mapping.poller.retry_backoff_s * 2 ** (attempts - 1)))

    def _drop_expired(self, batch: list[ShardRecord]) -> list[ShardRecord]:
        config = self.mapping.config
        if config.maximum_record_age_s < 0:
            return batch
        cutoff = time.time() - config.maximum_record_age_s
        expired = [r for r in batch if r.arrival_s < cutoff]
        if expired:
            self._discard(expired, config, "RecordAgeExceeded", 0)
        return [r for r in batch if r.arrival_s >= cutoff]

    def _invoke(self, records: list[ShardRecord], config: MappingConfig) -> Invocation | None:
        """One invocation of the mapped function (None when the function does not exist)."""
        poller = self.mapping.poller
        region = config.region
        try:
            function = poller.functions.function(config.function_arn, region)
        except LookupError:
            with self.mapping.lock:
                self.mapping.stats.last_result = "PROBLEM: Function not found"
            return None
        if self._environment is None or self._environment.key != function.environment_key():
            self._environment = ExecutionEnvironment(function, region, poller.code_root, poller.logs,
                                                     poller.runtime_environment)
        event = kinesis_event(records, config.event_source_arn, self.shard_id, region, function.role)
        return self._environment.invoke(event)

    def _count(self, records: list[ShardRecord], outcome: Invocation, resume: int | None) -> None:
        with self.mapping.lock:
            stats = self.mapping.stats
            stats.invocations += 1
            stats.iterator_age_ms = int((time.time() - records[-1].arrival_s) * 1000)
            if outcome.error is not None:
                stats.function_errors += 1
            elif resume is not None:
                stats.partial_failures += 1
            stats.last_result = "OK" if outcome.error is None and resume is None else "PROBLEM: Function call failed"

    def _done(self, records: list[ShardRecord], succeeded: int) -> None:
        self.after = records[-1].sequence_number
        with self.mapping.lock:
            stats = self.mapping.stats
            stats.batches += 1
            stats.records += succeeded
            stats.checkpoints[self.shard_id] = self.after

    def _discard(self, records: list[ShardRecord], config: MappingConfig, condition: str, attempts: int) -> None:
        """Give up on ``records`` as Lambda does: record it, tell the on-failure destination, move on."""
        info = {
            "shardId": self.shard_id,
            "startSequenceNumber": str(records[0].sequence_number),
            "endSequenceNumber": str(records[-1].sequence_number),
            "approximateArrivalOfFirstRecord": _iso(records[0].arrival_s),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrival_s),
            "batchSize": len(records),
            "streamArn": config.event_source_arn,
        }
        if config.on_failure_destination:
            message = {
                "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": config.function_arn,
                                   "condition": condition, "approximateInvokeCount": attempts},
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "version": "1.0",
                "timestamp": _iso(time.time()),
                "KinesisBatchInfo": info,
            }
            self.mapping.poller.destinations.send(config.on_failure_destination, json.dumps(message))
        self.after = records[-1].sequence_number
        with self.mapping.lock:
            stats = self.mapping.stats
            stats.skipped_records += len(records)
            stats.skipped.append({**info, "condition": condition, "attempts": attempts})
            stats.checkpoints[self.shard_id] = self.after


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Poller:
    """The mappings of one local cloud: the mapping API's backend and the owner of every worker."""

    def __init__(self, code_root: Path = REPOSITORY_ROOT, kinesis: MotoKinesis | None = None,
                 functions: MotoLambda | None = None, logs: MotoLogs | None = None,
                 destinations: MotoDestinations | None = None,
                 runtime_environment: dict[str, str] | None = None,
                 retry_backoff_s: float = RETRY_BACKOFF_S) -> None:
        self.code_root = Path(code_root)
        self.retry_backoff_s = retry_backoff_s
        self.runtime_environment = dict(runtime_environment or {})
        self.kinesis = kinesis or MotoKinesis()
        self.functions = functions or MotoLambda()
        self.logs = logs or MotoLogs()
        self.destinations = destinations or MotoDestinations()
        self._mappings: dict[str, Mapping] = {}
        self._lock = threading.Lock()
        thread_outputs()

    def create(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        """CreateEventSourceMapping: validate, start the workers, return the API shape."""
        source = params.get("EventSourceArn")
        if not source:
            raise _invalid("EventSourceArn is required (the local cloud's poller reads Kinesis streams)")
        try:
            source_arn = Arn.parse(source)
        except ValueError as error:
            raise _invalid(str(error)) from None
        if source_arn.service != "kinesis":
            raise _invalid(f"{source}: the local cloud's poller reads Kinesis streams only")
        if not self.kinesis.exists(source):
            raise _invalid(f"Stream not found: {source}")
        function = self._function(params.get("FunctionName"), region)
        position = params.get("StartingPosition")
        if position not in STARTING_POSITIONS:
            raise _invalid(f"StartingPosition must be one of {', '.join(STARTING_POSITIONS)} for a Kinesis stream, "
                           f"got {position!r}")
        timestamp = params.get("StartingPositionTimestamp")
        starting_timestamp: float | None = None
        if position == "AT_TIMESTAMP":
            if not isinstance(timestamp, (int, float)):
                raise _invalid("StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP")
            starting_timestamp = float(timestamp)
        with self._lock:
            for existing in self._mappings.values():
                if existing.config.event_source_arn == source and existing.config.function_arn == function.arn:
                    raise MappingError(409, "ResourceConflictException",
                                       f"An event source mapping with Kinesis arn \" {source} \" and function "
                                       f"\" {function.name} \" already exists. Please update or delete the "
                                       f"existing mapping with UUID {existing.config.uuid}")
            base = MappingConfig(uuid=str(uuid.uuid4()), event_source_arn=source, function_arn=function.arn,
                                 starting_position=position,
                                 starting_position_timestamp=starting_timestamp)
            config = settings_from(params, base, self.destinations)
            mapping = Mapping(config, self)
            mapping.start()
            self._mappings[config.uuid] = mapping
        return mapping.to_api(state="Creating")

    def _function(self, name: Any, region: str) -> FunctionConfig:
        if not name or not isinstance(name, str):
            raise _invalid("FunctionName is required")
        try:
            return self.functions.function(name, region)
        except LookupError:
            raise MappingError(404, "ResourceNotFoundException", f"Function not found: {name}") from None

    def _get(self, mapping_uuid: str) -> Mapping:
        with self._lock:
            mapping = self._mappings.get(mapping_uuid)
        if mapping is None:
            raise MappingError(404, "ResourceNotFoundException",
                               f"The resource you requested does not exist. (Service: Lambda, UUID: {mapping_uuid})")
        return mapping

    def get(self, mapping_uuid: str) -> dict[str, Any]:
        return self._get(mapping_uuid).to_api()

    def list(self, event_source_arn: str | None = None, function_name: str | None = None,
             region: str = "us-east-1") -> list[dict[str, Any]]:
        function_arn = self._function(function_name, region).arn if function_name else None
        with self._lock:
            mappings = list(self._mappings.values())
        return [m.to_api() for m in mappings
                if (event_source_arn is None or m.config.event_source_arn == event_source_arn)
                and (function_arn is None or m.config.function_arn == function_arn)]

    def update(self, mapping_uuid: str, params: dict[str, Any], region: str) -> dict[str, Any]:
        mapping = self._get(mapping_uuid)
        config = mapping.config
        if params.get("FunctionName"):
            config = replace(config, function_arn=self._function(params["FunctionName"], region).arn)
        mapping.update(settings_from(params, config, self.destinations))
        return mapping.to_api(state="Updating")

    def delete(self, mapping_uuid: str) -> dict[str, Any]:
        mapping = self._get(mapping_uuid)
        with self._lock:
            self._mappings.pop(mapping_uuid, None)
        mapping.stop()
        return mapping.to_api(state="Deleting")

    def consumed(self, stream_arn: str) -> dict[str, int] | None:
        """Per shard, the position every mapping on the stream has passed (None: no mapping reads it)."""
        with self._lock:
            mappings = [m for m in self._mappings.values() if m.config.event_source_arn == stream_arn]
        if not mappings:
            return None
        consumed: dict[str, int] | None = None
        for mapping in mappings:
            with mapping.lock:
                checkpoints = dict(mapping.stats.checkpoints)
            if consumed is None:
                consumed = checkpoints
            else:
                consumed = {shard: min(consumed.get(shard, 0), checkpoints.get(shard, 0))
                            for shard in set(consumed) | set(checkpoints)}
        return consumed

    def describe(self) -> builtins.list[dict[str, Any]]:  # in this class, list names the method above
        with self._lock:
            mappings = list(self._mappings.values())
        return [m.describe() for m in mappings]

    def stop(self) -> None:
        """Stop every worker (each finishes the invocation it is in)."""
        with self._lock:
            mappings = list(self._mappings.values())
            self._mappings.clear()
        for mapping in mappings:
            mapping.stopped.set()
        for mapping in mappings:
            mapping.stop()

