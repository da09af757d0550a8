"""The pipeline's CloudFormation stack (``deploy/template.yaml``), the same on moto and on AWS.

The stack holds the stream (KMS-encrypted), the function (code zipped from ``lambda_function.py``
alone and uploaded to the artifact bucket under a content key), its least-privilege role, its log
group (optionally with a KMS key), the dead-letter queue, the SageMaker execution role, the
operations alarms and, optionally, the alarm topic with the ventricular-beat alarm, a budget and a
dashboard. Its tags (the cost-allocation tags among them) reach every resource that takes tags.

The Kinesis event-source mapping is defined once, in ``MAPPING_SETTINGS``. On AWS those settings
are rendered into the template's ``Mapping*`` parameters and CloudFormation makes the mapping. On
the local cloud the template's mapping is switched off — moto would try to run the function in
Docker on every put — and the same settings go to ``lambda.create_event_source_mapping``, which the
local cloud process intercepts and serves with ``hbcore.localcloud.poller``.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from hbcore.aws import artifacts, images
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names, cost_tags
from hbcore.aws.progress import Progress, silent
from hbcore.contracts import emf

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "deploy" / "template.yaml"
LAMBDA_SOURCE = REPO / "lambda_function.py"
LAMBDA_FILENAME = "lambda_function.py"

BATCH_SIZE = 500  # records per invocation at most (MAPPING_SETTINGS)

# The one definition of the event-source mapping (property name -> value), used by the template
# (through the Mapping<property> parameters) and by the local cloud's create_event_source_mapping.
MAPPING_SETTINGS: dict[str, object] = {
    # TRIM_HORIZON: records put while a new mapping is still being enabled (up to a minute on AWS)
    # are not skipped; the reader de-duplicates by beat id if a re-created mapping re-reads.
    "StartingPosition": "TRIM_HORIZON",
    # No batching window: a batch is what the shard holds when it is read, up to 500 records. Under
    # load the batches grow to 500 (one invocation and one endpoint call per replay PutRecords of
    # 500: ~650 KB, under the serverless endpoint's 4 MB request and Lambda's 6 MB event), and at a
    # low rate a beat is not held back to fill one (Lambda reads a shard about once a second; the
    # local poller every 0.2 s). Measured on the local cloud (bench pipeline, README): at 500
    # beats/s put → logged p95 210 ms, against 250 ms with 100 records and a 1 s window; at full
    # speed the same throughput, and the poller kept up (p95 0.9 s against 9 s).
    "BatchSize": BATCH_SIZE,
    "MaximumBatchingWindowInSeconds": 0,
    # Retry a failing batch until it succeeds or its records are older than
    # MaximumRecordAgeInSeconds, then its range goes to the dead-letter queue. A batch fails only
    # while the endpoint does (the handler rejects bad records alone, never failing their batch), so
    # waiting is right: with 3 retries (0.5 + 1 + 2 s of backoff locally) an endpoint down for 10 s
    # lost its batch (bench faults). The attempts are bounded (10,000, AWS's largest) but, with
    # retries seconds apart, the record age ends them first. Meanwhile the shard's later records wait.
    "MaximumRetryAttempts": 10_000,
    "MaximumRecordAgeInSeconds": 3600,
    "BisectBatchOnFunctionError": True,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
}
# update_event_source_mapping cannot change where a mapping starts reading.
MAPPING_CREATE_ONLY = ("StartingPosition",)

PREFIX_TAG = "hbcore:prefix"
# Digest of the template and parameters a stack was last deployed with. moto compares resolved
# (typed) parameter values with the raw strings of the request and so never answers "No updates
# are to be performed"; comparing this tag detects a no-op the same way on moto and on AWS.
INPUTS_TAG = "hbcore:inputs"
STACK_POLL_INTERVAL_S = 5.0
STACK_TIMEOUT_S = 1800.0
NO_UPDATES_MESSAGE = "No updates are to be performed"
FAILED_STATUSES = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
                   "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"}
DONE_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
MAX_PARALLELIZATION_FACTOR = 10
# Alarm when the function's oldest unread record is 5 minutes old: far behind for a monitor, and
# well inside MaximumRecordAgeInSeconds, after which batches would go to the dead-letter queue.
ITERATOR_AGE_ALARM_S = 300
# "Frequent" premature ventricular complexes: more than 6 a minute (a common clinical threshold).
DEFAULT_V_BEATS_PER_MINUTE = 6
# A Metrics Insights query returns at most 500 series; ordered, the patients with the most V beats
# are the ones returned, and each is a contributor of the multi-time-series alarm.
V_BEATS_QUERY = ("SELECT SUM({metric}) FROM SCHEMA({namespace}, {dimension}) GROUP BY {dimension} "
                 "ORDER BY SUM() DESC LIMIT 500")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
KMS_KEY_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+")


def v_beats_query() -> str:
    """The alarm's query over every patient's ventricular-beat count (names: ``hbcore.contracts.emf``)."""
    return V_BEATS_QUERY.format(metric=emf.V_BEATS_METRIC, namespace=emf.NAMESPACE, dimension=emf.PATIENT_DIMENSION)


@dataclass(frozen=True)
class StackOptions:
    """The knobs of the stack that are not names (units in the names)."""

    shard_count: int = 1
    stream_retention_hours: int = 24
    # A serverless endpoint's cold start can take most of SageMaker's 60 s limit; the handler tries
    # each call twice (ENDPOINT_MAX_ATTEMPTS), so the function gets 2 x 60 s plus room for the rest.
    function_timeout_s: int = 180
    function_memory_mb: int = 256
    endpoint_timeout_s: int = 60
    endpoint_max_request_bytes: int = 4_000_000  # the serverless limit, also under the real-time 6 MB
    log_retention_days: int = 14
    dashboard: bool = False
    parallelization_factor: int = 1  # concurrent batches per shard
    reserved_concurrency: int | None = None  # None: the function draws on the account's pool
    logs_kms_key_arn: str | None = None
    alarm_email: str | None = None  # the alarms' SNS subscription, the V-beat alarm and the budget
    budget_usd: float | None = None  # monthly AWS Budgets alarm of the account (needs alarm_email)
    v_beats_per_minute: int = DEFAULT_V_BEATS_PER_MINUTE

    def __post_init__(self) -> None:
        if not 0 <= self.shard_count <= 50:
            raise ValueError(f"shard count {self.shard_count}: expected 0 (on-demand) to 50")
        if not 1 <= self.parallelization_factor <= MAX_PARALLELIZATION_FACTOR:
            raise ValueError(f"parallelization factor {self.parallelization_factor}: expected 1 to "
                             f"{MAX_PARALLELIZATION_FACTOR} concurrent batches per shard")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 1:
            raise ValueError(f"reserved concurrency {self.reserved_concurrency}: expected at least 1")
        if self.logs_kms_key_arn is not None and not KMS_KEY_ARN_PATTERN.fullmatch(self.logs_kms_key_arn):
            raise ValueError(f"logs KMS key {self.logs_kms_key_arn!r}: expected a key ARN "
                             "(arn:aws:kms:<region>:<account>:key/<id>)")
        if self.alarm_email is not None and not EMAIL_PATTERN.fullmatch(self.alarm_email):
            raise ValueError(f"alarm email {self.alarm_email!r}: not an e-mail address")
        if self.budget_usd is not None and (self.budget_usd <= 0 or self.alarm_email is None):
            raise ValueError(f"budget ${self.budget_usd}: needs a positive amount and --alarm-email to notify")
        if self.v_beats_per_minute < 1:
            raise ValueError(f"V beats per minute {self.v_beats_per_minute}: expected at least 1")

    @property
    def max_concurrent_batches(self) -> int | None:
        """Concurrent invocations the mapping can run: shards x parallelization (None: on-demand)."""
        return None if self.shard_count == 0 else self.shard_count * self.parallelization_factor

    def describe_stream(self) -> str:
        return "on-demand" if self.shard_count == 0 else f"{self.shard_count} provisioned shard(s)"


@dataclass(frozen=True)
class StackResult:
    """The stack after ``deploy_stack``: status, outputs and whether anything changed."""

    name: str
    status: str
    outputs: dict[str, str]
    changed: bool
    code: artifacts.Upload
    mapping_uuid: str | None


def lambda_zip(source: str | Path | None = None) -> bytes:
    """A zip holding ``lambda_function.py`` alone, byte-identical for identical source.

    A fixed timestamp and mode make the content key (and therefore the stack) change only when the
    code changes.
    """
    source = Path(source or LAMBDA_SOURCE)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: the Lambda handler to deploy does not exist")
    info = zipfile.ZipInfo(LAMBDA_FILENAME, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, source.read_bytes())
    return buffer.getvalue()


def render_parameter(value: object) -> str:
    """A CloudFormation parameter value: booleans as true/false, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def mapping_parameters(settings: dict[str, object] = MAPPING_SETTINGS) -> dict[str, str]:
    """``MAPPING_SETTINGS`` as template parameters: ``Mapping<property>`` -> rendered value."""
    return {f"Mapping{name}": render_parameter(value) for name, value in settings.items()}


def mapping_request(function: str, stream_arn: str, dead_letter_arn: str,
                    settings: dict[str, object] = MAPPING_SETTINGS) -> dict:
    """The ``create_event_source_mapping`` arguments equivalent to the template's mapping."""
    return {
        "FunctionName": function,
        "EventSourceArn": stream_arn,
        "Enabled": True,
        "DestinationConfig": {"OnFailure": {"Destination": dead_letter_arn}},
        **settings,
    }


def stack_parameters(names: Names, bucket: str, code_key: str, image_repository_arn: str, options: StackOptions,
                     *, mapping_in_template: bool) -> dict[str, str]:
    """Every template parameter, by name (the template has no defaults: this is the one source)."""
    return {
        "StreamName": names.stream,
        "ShardCount": str(options.shard_count),
        "StreamRetentionHours": str(options.stream_retention_hours),
        "FunctionName": names.function,
        "FunctionTimeoutSeconds": str(options.function_timeout_s),
        "FunctionMemoryMB": str(options.function_memory_mb),
        "EndpointTimeoutSeconds": str(options.endpoint_timeout_s),
        "EndpointMaxRequestBytes": str(options.endpoint_max_request_bytes),
        "LogGroupName": names.log_group,
        "LogRetentionDays": str(options.log_retention_days),
        "EndpointName": names.endpoint,
        "ArtifactBucket": bucket,
        "CodeKey": code_key,
        "ImageRepositoryArn": image_repository_arn,
        "TrainingJobPrefix": training_job_prefix(names),
        "CreateEventSourceMapping": render_parameter(mapping_in_template),
        "CreateDashboard": render_parameter(options.dashboard),
        "ParallelizationFactor": str(options.parallelization_factor),
        "ReservedConcurrency": str(-1 if options.reserved_concurrency is None else options.reserved_concurrency),
        "LogsKmsKeyArn": options.logs_kms_key_arn or "",
        "AlarmEmail": options.alarm_email or "",
        "BudgetUsd": render_parameter(options.budget_usd or 0),
        "IteratorAgeAlarmMilliseconds": str(ITERATOR_AGE_ALARM_S * 1000),
        "VBeatsQuery": v_beats_query(),
        # The V-beat alarm needs VBeats per patient; without it the handler publishes fleet totals only.
        "EmfPatientMetrics": emf.V_BEATS_METRIC if options.alarm_email else "",
        "VBeatsPerMinuteThreshold": str(options.v_beats_per_minute),
        **mapping_parameters(),
    }


def training_job_prefix(names: Names) -> str:
    """Name prefix of the deployment's SageMaker training jobs (the execution role's log scope)."""
    return f"{names.prefix}-train-"


def inputs_digest(template: str, parameters: dict[str, str]) -> str:
    """A short digest of everything a stack update would send."""
    return artifacts.sha256_hex(json.dumps([template, parameters], sort_keys=True).encode())[:artifacts.DIGEST_CHARS]


def _describe_stack(cfn, name: str) -> dict | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return None
        raise
    live = [stack for stack in stacks if stack["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def _failure_reasons(cfn, name: str) -> str:
    """The reasons CloudFormation gave for failed resources, newest first, for the error message."""
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return "no events"
    reasons = [f"{event['LogicalResourceId']}: {event['ResourceStatusReason']}" for event in events
               if event.get("ResourceStatus", "").endswith("FAILED") and event.get("ResourceStatusReason")]
    return "; ".join(reasons[:5]) or "no reason given"


def _event_ids(cfn, name: str) -> set[str]:
    """Ids of the stack's events so far, so that waiting reports only the new ones."""
    if _describe_stack(cfn, name) is None:
        return set()
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return {event["EventId"] for event in events}


def _wait_for_stack(
    cfn,
    name: str,
    *,
    progress: Progress = silent,
    seen_events: set[str] | None = None,
    poll_interval_s: float = STACK_POLL_INTERVAL_S,
    timeout_s: float = STACK_TIMEOUT_S,
) -> dict | None:
    """Poll until the stack leaves its ``*_IN_PROGRESS`` state, reporting each new resource event.

    Returns the final description (None once deleted); raises RuntimeError on a failed or rolled
    back operation, with CloudFormation's reasons. ``seen_events`` are not reported again.
    """
    seen = set(seen_events or ())
    started = time.monotonic()
    while True:
        stack = _describe_stack(cfn, name)
        if stack is not None:
            events = cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
            for event in reversed(events):  # the API lists newest first
                if event["EventId"] not in seen:
                    seen.add(event["EventId"])
                    progress(f"  {event['ResourceStatus']:<20} {event['ResourceType']:<30} "
                             f"{event['LogicalResourceId']}")
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if not status.endswith("IN_PROGRESS"):
            if status in FAILED_STATUSES:
                raise RuntimeError(f"stack {name} is {status}: {_failure_reasons(cfn, name)}")
            return stack
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"stack {name} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_interval_s)


def deploy_stack(
    backend: Backend,
    names: Names,
    *,
    options: StackOptions = StackOptions(),
    code_path: str | Path | None = None,
    mapping_via_api: bool | None = None,
    progress: Progress = silent,
    poll_interval_s: float = STACK_POLL_INTERVAL_S,
) -> StackResult:
    """Create or update the stack so that it matches the template, the code and ``options``.

    ``mapping_via_api`` (default: on the local backend) makes the event-source mapping with the
    Lambda API instead of the template. Running it twice with the same inputs changes nothing and
    returns ``changed=False``: the stack's ``INPUTS_TAG`` already holds the digest of this template
    and these parameters (AWS would also answer "No updates are to be performed").
    """
    mapping_via_api = backend.is_local if mapping_via_api is None else mapping_via_api
    bucket = artifacts.bucket_name(backend, names)
    if artifacts.ensure_bucket(backend, bucket, cost_tags(names)):
        progress(f"created bucket {bucket}")
    code = artifacts.upload_once(backend, bucket, artifacts.LAMBDA_PREFIX, lambda_zip(code_path), "function.zip")
    progress(f"{'uploaded' if code.uploaded else 'already uploaded'} {code.uri}")
    parameters = stack_parameters(names, bucket, code.key, images.backend_repository_arn(backend), options,
                                  mapping_in_template=not mapping_via_api)
    cfn = backend.client("cloudformation")
    changed, seen_events = _create_or_update(cfn, names, parameters, progress, poll_interval_s)
    if changed:
        stack = _wait_for_stack(cfn, names.stack, progress=progress, seen_events=seen_events,
                                poll_interval_s=poll_interval_s)
    else:
        stack = _describe_stack(cfn, names.stack)
    if stack is None:  # a create or update that ends in DELETE_COMPLETE, or a stack deleted meanwhile
        raise RuntimeError(f"stack {names.stack} does not exist after the deploy")
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    mapping_uuid = outputs.get("EventSourceMappingId")
    if mapping_via_api:
        mapping_uuid, mapping_changed = ensure_event_source_mapping(
            backend, names.function, outputs["StreamArn"], outputs["DeadLetterQueueArn"], progress=progress)
        changed = changed or mapping_changed
    return StackResult(names.stack, stack["StackStatus"], outputs, changed, code, mapping_uuid)


def _create_or_update(cfn, names: Names, parameters: dict[str, str], progress: Progress,
                      poll_interval_s: float) -> tuple[bool, set[str]]:
    """Start a create or an update; returns (changed, the event ids from before it started)."""
    template = TEMPLATE_PATH.read_text()
    digest = inputs_digest(template, parameters)
    request = {
        "StackName": names.stack,
        "TemplateBody": template,
        "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        "Capabilities": ["CAPABILITY_IAM"],
        # CloudFormation copies stack tags to every resource that takes tags: the cost-allocation tags.
        "Tags": [{"Key": PREFIX_TAG, "Value": names.prefix}, {"Key": INPUTS_TAG, "Value": digest},
                 *cost_tags(names)],
    }
    existing = _describe_stack(cfn, names.stack)
    if existing is not None and existing["StackStatus"].endswith("IN_PROGRESS"):
        progress(f"stack {names.stack} is {existing['StackStatus']}: waiting for it first")
        existing = _wait_for_stack(cfn, names.stack, progress=progress, poll_interval_s=poll_interval_s)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A stack whose creation rolled back cannot be updated, only deleted.
        progress(f"stack {names.stack} is ROLLBACK_COMPLETE from an earlier failure: deleting it first")
        cfn.delete_stack(StackName=names.stack)
        _wait_for_stack(cfn, names.stack, progress=progress, poll_interval_s=poll_interval_s)
        existing = None
    seen_events = _event_ids(cfn, names.stack)
    if existing is None:
        cfn.create_stack(**request, OnFailure="ROLLBACK")
        progress(f"creating stack {names.stack}")
        return True, seen_events
    tags = {tag["Key"]: tag["Value"] for tag in existing.get("Tags", [])}
    if existing["StackStatus"] in DONE_STATUSES and tags.get(INPUTS_TAG) == digest:
        progress(f"stack {names.stack} is up to date")
        return False, seen_events
    try:
        cfn.update_stack(**request)
    except ClientError as error:
        if NO_UPDATES_MESSAGE in error.response["Error"].get("Message", ""):
            progress(f"stack {names.stack} is up to date")
            return False, seen_events
        raise
    progress(f"updating stack {names.stack}")
    return True, seen_events


def _mappings(lambda_client, function: str) -> list[dict]:
    try:
        return lambda_client.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise


def ensure_event_source_mapping(backend: Backend, function: str, stream_arn: str, dead_letter_arn: str,
                                *, progress: Progress = silent) -> tuple[str, bool]:
    """Create the stream -> function mapping with the Lambda API, or bring its settings in line.

    Returns (mapping UUID, whether anything changed).
    """
    desired = mapping_request(function, stream_arn, dead_letter_arn)
    lambda_client = backend.client("lambda")
    existing = [m for m in _mappings(lambda_client, function) if m.get("EventSourceArn") == stream_arn]
    if not existing:
        uuid = lambda_client.create_event_source_mapping(**desired)["UUID"]
        progress(f"created event-source mapping {uuid} ({stream_arn.rsplit('/', 1)[-1]} -> {function})")
        return uuid, True
    current = existing[0]
    updates = {key: value for key, value in desired.items()
               if key not in ("FunctionName", "EventSourceArn", "Enabled", *MAPPING_CREATE_ONLY)
               and current.get(key) != value}
    if not updates:
        return current["UUID"], False
    lambda_client.update_event_source_mapping(UUID=current["UUID"], **updates)
    progress(f"updated event-source mapping {current['UUID']}: {', '.join(sorted(updates))}")
    return current["UUID"], True


def stack_status(backend: Backend, names: Names) -> dict | None:
    """The stack's status, outputs, parameters and mapping state; None when there is no stack."""
    stack = _describe_stack(backend.client("cloudformation"), names.stack)
    if stack is None:
        return None
    mappings = _mappings(backend.client("lambda"), names.function)
    return {
        "stack": names.stack,
        "status": stack["StackStatus"],
        "outputs": {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
        "parameters": {item["ParameterKey"]: item["ParameterValue"] for item in stack.get("Parameters", [])},
        "mappings": [{"uuid": m["UUID"], "state": m.get("State"), "batch_size": m.get("BatchSize"),
                      "last_result": m.get("LastProcessingResult")} for m in mappings],
    }


def delete_stack(
    backend: Backend,
    names: Names,
    *,
    mapping_via_api: bool | None = None,
    progress: Progress = silent,
    poll_interval_s: float = STACK_POLL_INTERVAL_S,
) -> bool:
    """Delete the stack (and, on the local cloud, the API-made mapping first); False if none existed."""
    mapping_via_api = backend.is_local if mapping_via_api is None else mapping_via_api
    if mapping_via_api:
        lambda_client = backend.client("lambda")
        for mapping in _mappings(lambda_client, names.function):
            lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
            progress(f"deleted event-source mapping {mapping['UUID']}")
    cfn = backend.client("cloudformation")
    if _describe_stack(cfn, names.stack) is None:
        return False
    seen_events = _event_ids(cfn, names.stack)
    cfn.delete_stack(StackName=names.stack)
    progress(f"deleting stack {names.stack}")
    _wait_for_stack(cfn, names.stack, progress=progress, seen_events=seen_events, poll_interval_s=poll_interval_s)
    return True
