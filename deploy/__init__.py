"""The pipeline on real AWS, set up and torn down by one command each: ``python -m deploy up | down``.

``up`` checks the account's Service Quotas first, then makes (or brings up to date) the artifact
bucket, the CloudFormation stack of ``deploy/template.yaml`` (encrypted stream, function,
event-source mapping, roles, log group, dead-letter queue, alarms, optional SNS topic, budget and
dashboard) and the SageMaker endpoint (with autoscaling on instances); running it again with the
same inputs changes nothing. ``down`` removes all of it: the endpoint first (it is what bills by the hour),
then the stack, then the objects deployments wrote to the bucket. The same functions run against
moto in the tests; only the backend differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from hbcore.aws import artifacts, autoscaling, images, quotas, stack, training_job
from hbcore.aws import endpoint as serving
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names, cost_tags
from hbcore.aws.progress import Progress, silent

# Lower case because the prefix ends up in the bucket name and in the endpoint ARN of the
# function's IAM policy (SageMaker ARNs are lower case); short because bucket names are <= 63.
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PREFIX_MAX_CHARS = 20


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can name every resource of a deployment, else a ValueError saying why."""
    if len(prefix) > PREFIX_MAX_CHARS or not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r}: use 1-{PREFIX_MAX_CHARS} lower-case letters, digits and single "
                         "hyphens, starting with a letter (it names the bucket and the endpoint)")
    return prefix


@dataclass(frozen=True)
class Plan:
    """Everything ``up`` will do, decided before any AWS call (``--dry-run`` prints it)."""

    names: Names
    region: str
    model: str  # a local model.tar.gz, or the s3:// URI a training job wrote
    endpoint: serving.EndpointSpec = serving.EndpointSpec()
    stack: stack.StackOptions = stack.StackOptions()
    profile: str | None = None

    def __post_init__(self) -> None:
        check_prefix(self.names.prefix)
        images.image_uri(self.region, self.endpoint.framework_version)  # the SDK must list it for inference here

    @property
    def image(self) -> str:
        return images.image_uri(self.region, self.endpoint.framework_version)

    def lines(self) -> list[str]:
        """The plan, one resource per line."""
        names = self.names
        mapping = ", ".join(f"{key}={stack.render_parameter(value)}" for key, value in stack.MAPPING_SETTINGS.items())
        return [
            f"region {self.region}, profile {self.profile or '(default credential chain)'}, prefix {names.prefix}",
            f"bucket     {names.bucket('<account>', self.region)} (private; lambda/, models/ keys)",
            f"upload     {stack.LAMBDA_SOURCE.name} alone, zipped, to lambda/<sha256>/function.zip",
            self._model_line(),
            f"stack      {names.stack} from deploy/{stack.TEMPLATE_PATH.name}:",
            (f"  stream   {names.stream} ({self.stack.describe_stream()}, "
             f"{self.stack.stream_retention_hours} h retention)"),
            "           encrypted at rest with KMS key alias/aws/kinesis",
            (f"  function {names.function} (python3.12, arm64, {self.stack.function_memory_mb} MB, "
             f"timeout {self.stack.function_timeout_s} s, ENDPOINT_NAME={names.endpoint}, "
             f"{self._concurrency()})"),
            (f"  mapping  {names.stream} -> {names.function}: {mapping}, "
             f"ParallelizationFactor={self.stack.parallelization_factor}, "
             f"on failure -> {names.function}-failures (SQS)"),
            (f"  logs     {names.log_group} ({self.stack.log_retention_days} days retention, "
             f"{'KMS key ' + self.stack.logs_kms_key_arn if self.stack.logs_kms_key_arn else 'service encryption'})"),
            self._alarms_line(),
            ("  roles    function: read the stream, invoke the endpoint, write the log group, send dead letters; "
             "SageMaker: read models/, pull the scikit-learn image, write its logs"),
            f"  dashboard {names.stack}" if self.stack.dashboard else "  dashboard none (--dashboard adds one)",
            f"endpoint   {names.endpoint}: {self.endpoint.describe()}, image {self.image}",
            "tags       " + ", ".join(f"{tag['Key']}={tag['Value']}" for tag in cost_tags(names)) + " on everything",
            "quotas     checked with Service Quotas before anything is created: " + (
                "; ".join(f"{need.name} >= {need.needed:g}" for need in quota_needs(self)) or "none needed"),
        ]

    def _concurrency(self) -> str:
        reserved = self.stack.reserved_concurrency
        return f"{reserved} reserved concurrent executions" if reserved else "unreserved concurrency"

    def _alarms_line(self) -> str:
        email = self.stack.alarm_email
        line = ("  alarms   iterator age, dead letters, errors, throttles, endpoint 5xx"
                + (f"; V beats > {self.stack.v_beats_per_minute}/min of any patient; all to SNS -> {email}"
                   if email else " (no notifications: --alarm-email adds them and the V-beat alarm)"))
        if self.stack.budget_usd:
            line += f"; budget ${self.stack.budget_usd:g}/month of the account"
        return line

    @property
    def model_in_s3(self) -> bool:
        return self.model.startswith("s3://")

    def _model_line(self) -> str:
        if self.model_in_s3:
            return f"model      {self.model} (already in S3)"
        missing = "" if Path(self.model).is_file() else " (MISSING: train one first)"
        return f"upload     {self.model}{missing} to models/<sha256>/model.tar.gz"


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: the stack and the endpoint, each with its ``changed`` flag."""

    bucket: str
    stack: stack.StackResult
    deployment: serving.Deployment

    @property
    def changed(self) -> bool:
        return self.stack.changed or self.deployment.changed


def quota_needs(plan: Plan) -> list[quotas.QuotaNeed]:
    """The Service Quotas the plan's endpoint and function need."""
    endpoint = plan.endpoint
    return quotas.deployment_needs(
        serverless_concurrency=endpoint.max_concurrency if endpoint.serverless else None,
        endpoint_instance_type=endpoint.instance_type,
        endpoint_instances=endpoint.max_instance_count or endpoint.instance_count,
        lambda_concurrency=plan.stack.max_concurrent_batches,
        lambda_reserved=plan.stack.reserved_concurrency)


def preflight(backend: Backend, plan: Plan, *, progress: Progress = silent) -> list[quotas.QuotaCheck]:
    """Check the quotas before anything is created; raises ``QuotaShortfall`` with what to request."""
    checks = quotas.check_quotas(backend, quota_needs(plan))
    for check in checks:
        progress(check.line())
    quotas.require_quotas(checks)
    return checks


def up(backend: Backend, plan: Plan, *, progress: Progress = silent) -> UpResult:
    """Check the quotas, deploy the stack, then the model on the endpoint (it needs the stack's role)."""
    if not plan.model_in_s3:
        serving.read_model_artifact(plan.model)  # fail on a bad file before touching AWS
    preflight(backend, plan, progress=progress)
    result = stack.deploy_stack(backend, plan.names, options=plan.stack, progress=progress)
    role_arn = result.outputs["EndpointRoleArn"]
    if plan.model_in_s3:
        deployment = serving.deploy_model_uri(backend, plan.names, plan.model, role_arn, plan.endpoint,
                                              progress=progress)
    else:
        deployment = serving.deploy_model(backend, plan.names, plan.model, role_arn, plan.endpoint, progress=progress)
    return UpResult(result.code.bucket, result, deployment)


def summary_lines(result: UpResult) -> list[str]:
    """What ``up`` made or found, one resource per line."""
    def verb(changed: bool) -> str:
        return "created/updated" if changed else "unchanged"

    outputs = result.stack.outputs
    deployment = result.deployment
    lines = [
        f"stack      {result.stack.name}: {result.stack.status} ({verb(result.stack.changed)})",
        f"  stream   {outputs.get('StreamName')}  {outputs.get('StreamArn')}",
        f"  function {outputs.get('FunctionName')}",
        f"  logs     {outputs.get('LogGroupName')}",
        f"  failures {outputs.get('DeadLetterQueueUrl')}",
        f"  mapping  {result.stack.mapping_uuid}",
    ]
    if outputs.get("DashboardName"):
        lines.append(f"  dashboard {outputs['DashboardName']}")
    lines += [
        (f"endpoint   {deployment.endpoint}: {deployment.status}, {deployment.spec.describe()} "
         f"({verb(deployment.changed)})"),
        f"  model    {deployment.model} <- {deployment.model_uri}",
        f"bucket     {result.bucket}",
    ]
    lines += [f"warning: {warning}" for warning in deployment.warnings]
    lines.append("nothing changed: the deployment already matched" if not result.changed
                 else "done: stream beats to the stream; `python -m deploy down` removes everything")
    return lines


def train(backend: Backend, names: Names, data_paths: list[Path], options: stack.StackOptions, *,
          instance_type: str = training_job.DEFAULT_INSTANCE_TYPE,
          framework_version: str = images.DEFAULT_FRAMEWORK_VERSION,
          hyperparameters: dict[str, object] | None = None, progress: Progress = silent) -> str:
    """Check the training instance's quota, deploy the stack (it holds the execution role), train on
    SageMaker, return the model's S3 URI."""
    checks = quotas.check_quotas(backend, quotas.deployment_needs(training_instance_type=instance_type))
    for check in checks:
        progress(check.line())
    quotas.require_quotas(checks)
    result = stack.deploy_stack(backend, names, options=options, progress=progress)
    job = training_job.start_training_job(
        backend, names, result.outputs["EndpointRoleArn"], data_paths, hyperparameters=hyperparameters,
        instance_type=instance_type, framework_version=framework_version, progress=progress)
    return training_job.wait_for_training_job(backend, job, progress=progress)


def _dead_letters(backend: Backend, queue_url: str | None) -> int | None:
    if not queue_url:
        return None
    attributes = backend.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0))


def status(backend: Backend, names: Names) -> dict:
    """The stack, the endpoint and its autoscaling, the dead-letter queue depth and the bucket's managed objects."""
    stack_state = stack.stack_status(backend, names)
    bucket = artifacts.bucket_name(backend, names)
    exists = artifacts.bucket_exists(backend, bucket)
    endpoint = serving.endpoint_status(backend, names)
    on_instances = endpoint is not None and not endpoint.get("serverless")
    return {
        "stack": stack_state,
        "endpoint": endpoint,
        "autoscaling": autoscaling.autoscaling_status(backend, names.endpoint) if on_instances else None,
        "dead_letters": _dead_letters(backend, (stack_state or {}).get("outputs", {}).get("DeadLetterQueueUrl")),
        "bucket": bucket if exists else None,
        "objects": len(artifacts.managed_keys(backend, bucket)) if exists else 0,
    }


def down(backend: Backend, names: Names, *, progress: Progress = silent) -> list[str]:
    """Remove everything ``up`` made, the endpoint first; returns what was deleted."""
    deleted = serving.delete_endpoint(backend, names, progress=progress)
    if stack.delete_stack(backend, names, progress=progress):
        deleted.append(f"stack {names.stack}")
    bucket = artifacts.bucket_name(backend, names)
    try:
        count, bucket_deleted = artifacts.delete_managed_objects(backend, bucket)
    except ClientError as error:
        raise RuntimeError(f"bucket {bucket}: could not empty it ({error.response['Error']['Code']})") from error
    if count:
        deleted.append(f"{count} object(s) in {bucket}")
    if bucket_deleted:
        deleted.append(f"bucket {bucket}")
    elif artifacts.bucket_exists(backend, bucket):
        progress(f"kept bucket {bucket}: it holds objects that deployments did not write")
    return deleted
