"""Deploy a ``model.tar.gz`` to a SageMaker endpoint with plain boto3, locally and on AWS.

The same calls run against moto (the local cloud, where ``hbcore.localcloud.sagemaker_runtime`` answers the
invocations) and against AWS. The sagemaker SDK's modules are not used (version 3 has no SKLearn
estimator, and its resource classes fail against moto); only its image-URI data is, through
``hbcore.aws.images``.

Resource names are derived from content so that deploying the same artifact with the same settings
twice changes nothing: model ``<endpoint>-m-<digest>``, endpoint config ``<endpoint>-c-<digest>``.
After a successful update the configs and models the endpoint no longer uses are deleted, so a
deployment never accumulates old resources.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from hbcore.aws import artifacts, autoscaling, images, pycompat
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names, cost_tags
from hbcore.aws.progress import Progress, silent
from hbcore.model.inference import MODEL_FILE, PICKLE_MODEL_FILE

# Serverless: 2 GB holds the container plus a forest comfortably; 5 concurrent invocations fit the
# default account quota of new accounts (10 across all serverless endpoints of a region).
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_CONCURRENCY = 5
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
ENDPOINT_POLL_INTERVAL_S = 10.0
ENDPOINT_TIMEOUT_S = 1800.0
ROLE_PROPAGATION_ATTEMPTS = 12
ROLE_PROPAGATION_WAIT_S = 5.0
TRANSITIONAL_STATUSES = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}
TAG_KEY = "hbcore:endpoint"
INFERENCE_MEMBER = "code/inference.py"
REQUIRED_MEMBERS = (MODEL_FILE, INFERENCE_MEMBER)
DIGEST_CHARS = 12  # of the model and config names: <endpoint>-m-<12 hex> stays under SageMaker's 63
# Autoscaling target of instance endpoints (SageMakerVariantInvocationsPerInstance counts a minute).
# One invocation carries a batch of up to 500 beats; the numpy forward pass of 500 beats takes a
# few milliseconds, so 600 a minute (10 a second) leaves an ml.c5.large most of its time idle.
DEFAULT_INVOCATIONS_PER_INSTANCE_PER_MINUTE = 600

@dataclass(frozen=True)
class EndpointSpec:
    """How the endpoint runs: serverless (the default: nothing to pay while idle) or on instances."""

    memory_mb: int = DEFAULT_MEMORY_MB
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    instance_type: str | None = None
    instance_count: int = 1
    framework_version: str = images.DEFAULT_FRAMEWORK_VERSION
    max_instance_count: int | None = None  # instance endpoints: autoscale up to this many (None: fixed)
    invocations_per_instance_per_minute: int = DEFAULT_INVOCATIONS_PER_INSTANCE_PER_MINUTE

    def __post_init__(self) -> None:
        if self.instance_type is None:
            if self.memory_mb not in SERVERLESS_MEMORY_MB:
                raise ValueError(f"memory {self.memory_mb} MB: serverless endpoints take one of {SERVERLESS_MEMORY_MB}")
            if not 1 <= self.max_concurrency <= 200:
                raise ValueError(f"max concurrency {self.max_concurrency}: expected 1..200")
        elif not self.instance_type.startswith("ml."):
            raise ValueError(f"instance type {self.instance_type!r}: SageMaker types start with 'ml.' "
                             "(e.g. ml.m5.large)")
        if self.instance_count < 1:
            raise ValueError(f"instance count {self.instance_count}: expected at least 1")
        if self.max_instance_count is not None:
            if self.instance_type is None:
                raise ValueError("autoscaling (a maximum instance count) needs an instance endpoint: "
                                 "serverless endpoints scale by themselves")
            if self.max_instance_count < self.instance_count:
                raise ValueError(f"maximum instance count {self.max_instance_count}: expected at least the "
                                 f"initial {self.instance_count}")
        if self.invocations_per_instance_per_minute < 1:
            raise ValueError(f"invocations per instance {self.invocations_per_instance_per_minute}: "
                             "expected at least 1")
        images.check_framework_version(self.framework_version)

    @property
    def serverless(self) -> bool:
        return self.instance_type is None

    @property
    def autoscaled(self) -> bool:
        return self.max_instance_count is not None and self.max_instance_count > self.instance_count

    def describe(self) -> str:
        """One line for plans and summaries."""
        if self.serverless:
            return f"serverless, {self.memory_mb} MB, max concurrency {self.max_concurrency}"
        if self.autoscaled:
            return (f"{self.instance_count}-{self.max_instance_count} x {self.instance_type} (autoscaling at "
                    f"{self.invocations_per_instance_per_minute} invocations per instance per minute)")
        return f"{self.instance_count} x {self.instance_type}"

    def production_variant(self, model_name: str) -> dict[str, Any]:
        """The single ``ProductionVariants`` entry of the endpoint config."""
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model_name}
        if self.serverless:
            variant["ServerlessConfig"] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        else:
            variant.update(InstanceType=self.instance_type, InitialInstanceCount=self.instance_count,
                           InitialVariantWeight=1.0)
        return variant


@dataclass(frozen=True)
class ModelArtifact:
    """A validated ``model.tar.gz``: its bytes, its metadata and the inference code the container runs."""

    path: Path
    data: bytes
    metadata: dict
    inference_source: str


def read_model_artifact(path: str | Path) -> ModelArtifact:
    """Read and check a model tarball: it must hold ``model.npz`` and ``code/inference.py``.

    A tarball of an earlier release (a scikit-learn pickle, which the container can load only in
    the scikit-learn that wrote it) is refused with a word to retrain it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (train one with `python -m hbcore train --out {path}`)")
    data = path.read_bytes()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = set(tar.getnames())
            if PICKLE_MODEL_FILE in members and MODEL_FILE not in members:
                raise ValueError(f"{path}: a model of an earlier release ({PICKLE_MODEL_FILE}, a scikit-learn "
                                 "pickle the endpoint's container cannot load); retrain it (python -m hbcore train, "
                                 "or the Train page)")
            missing = [name for name in REQUIRED_MEMBERS if name not in members]
            if missing:
                raise ValueError(f"{path}: not a model artifact, missing {', '.join(missing)}")
            inference_file = tar.extractfile(INFERENCE_MEMBER)
            if inference_file is None:
                raise ValueError(f"{path}: {INFERENCE_MEMBER} is not a regular file")
            inference_source = inference_file.read().decode("utf-8", errors="replace")
            metadata_member = tar.extractfile("metadata.json") if "metadata.json" in members else None
            metadata = json.loads(metadata_member.read()) if metadata_member else {}
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a gzip tarball ({error})") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: metadata.json is not JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: metadata.json holds a {type(metadata).__name__}, expected an object")
    return ModelArtifact(path, data, metadata, inference_source)


def container_mismatch(artifact: ModelArtifact, framework_version: str) -> str | None:
    """A warning when the artifact's ``code/inference.py`` needs a newer Python or numpy than the
    container has: the endpoint would fail only when it starts, many minutes after the deploy."""
    container = images.CONTAINERS[images.check_framework_version(framework_version)]
    reasons = pycompat.incompatibilities(artifact.inference_source, container.python, INFERENCE_MEMBER,
                                         numpy=container.numpy)
    if reasons:
        return (f"{artifact.path.name}: the {framework_version} container ({container.describe()}) cannot run it: "
                f"{'; '.join(reasons)}")
    return None


def _digest(*parts: object) -> str:
    return artifacts.sha256_hex(json.dumps(parts, sort_keys=True).encode())[:DIGEST_CHARS]


MODEL_CODE_DIR = "/opt/ml/model/code"


def container_environment(region: str) -> dict[str, str]:
    """The model's environment in the scikit-learn container.

    The container imports SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY; the model tarball is
    unpacked into /opt/ml/model, so its code/ folder is the submit directory. On start-up the
    container also copies that folder and pip-installs it, which serverless endpoints' read-only
    file system has been reported to fail (sagemaker-python-sdk issue 4310); with PYTHONPATH the
    serving stack imports inference.py from where it lies.
    """
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
        "PYTHONPATH": MODEL_CODE_DIR,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
    }


def _is_missing(error: ClientError) -> bool:
    """SageMaker answers a describe of a missing resource with ValidationException 'Could not find'."""
    return (error.response["Error"]["Code"] == "ValidationException"
            and "could not find" in error.response["Error"].get("Message", "").lower())


def _while_role_propagates(call: Callable[..., dict], progress: Progress, **kwargs) -> dict:
    """``call(**kwargs)``, retried while SageMaker cannot assume a role IAM has only just created.

    ``up`` passes the execution role of a stack that finished seconds ago; IAM is eventually
    consistent, and SageMaker answers ValidationException "Could not assume role" until it is not.
    """
    attempts = 0
    while True:
        try:
            return call(**kwargs)
        except ClientError as error:
            attempts += 1
            if "assume role" not in error.response["Error"].get("Message", "").lower() \
                    or attempts == ROLE_PROPAGATION_ATTEMPTS:
                raise
            progress(f"waiting for the new IAM role to propagate ({attempts}/{ROLE_PROPAGATION_ATTEMPTS})")
            time.sleep(ROLE_PROPAGATION_WAIT_S)


def _describe(call: Callable[..., dict], **kwargs) -> dict | None:
    try:
        return call(**kwargs)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


@dataclass(frozen=True)
class Deployment:
    """What ``deploy_model`` left behind, and whether it had to change anything."""

    endpoint: str
    model: str
    config: str
    model_uri: str
    image: str
    spec: EndpointSpec
    status: str
    changed: bool
    warnings: tuple[str, ...] = ()


def deploy_model(
    backend: Backend,
    names: Names,
    model_path: str | Path,
    role_arn: str,
    spec: EndpointSpec = EndpointSpec(),
    *,
    progress: Progress = silent,
    poll_interval_s: float = ENDPOINT_POLL_INTERVAL_S,
    timeout_s: float = ENDPOINT_TIMEOUT_S,
) -> Deployment:
    """Make ``names.endpoint`` serve ``model_path`` with ``spec``; a no-op when it already does.

    Uploads the tarball to the artifact bucket (created if missing) under a content key, creates
    the model and the endpoint config when they do not exist yet, then creates the endpoint or
    points it at the new config, waits until it is InService, and removes the configs and models
    it no longer uses.
    """
    artifact = read_model_artifact(model_path)
    warnings = tuple(w for w in [container_mismatch(artifact, spec.framework_version)] if w)
    for warning in warnings:
        progress(f"warning: {warning}")
    bucket = artifacts.bucket_name(backend, names)
    if artifacts.ensure_bucket(backend, bucket, cost_tags(names)):
        progress(f"created bucket {bucket}")
    upload = artifacts.upload_once(backend, bucket, artifacts.MODELS_PREFIX, artifact.data, "model.tar.gz")
    progress(f"{'uploaded' if upload.uploaded else 'already uploaded'} {upload.uri}")
    return deploy_model_uri(backend, names, upload.uri, role_arn, spec, progress=progress,
                            poll_interval_s=poll_interval_s, timeout_s=timeout_s, warnings=warnings)


def deploy_model_uri(
    backend: Backend,
    names: Names,
    model_uri: str,
    role_arn: str,
    spec: EndpointSpec = EndpointSpec(),
    *,
    progress: Progress = silent,
    poll_interval_s: float = ENDPOINT_POLL_INTERVAL_S,
    timeout_s: float = ENDPOINT_TIMEOUT_S,
    warnings: tuple[str, ...] = (),
) -> Deployment:
    """``deploy_model`` for a tarball already in S3 (for example a training job's output)."""
    sagemaker = backend.client("sagemaker")
    endpoint = names.endpoint
    image = images.backend_image_uri(backend, spec.framework_version)
    environment = container_environment(backend.region)
    tags = [{"Key": TAG_KEY, "Value": endpoint}, *cost_tags(names)]
    changed = False

    model_name = f"{endpoint}-m-{_digest(model_uri, image, environment, role_arn)}"
    if _describe(sagemaker.describe_model, ModelName=model_name) is None:
        _while_role_propagates(
            sagemaker.create_model, progress,
            ModelName=model_name,
            PrimaryContainer={"Image": image, "ModelDataUrl": model_uri, "Environment": environment},
            ExecutionRoleArn=role_arn,
            Tags=tags,
        )
        progress(f"created model {model_name}")
        changed = True

    variant = spec.production_variant(model_name)
    config_name = f"{endpoint}-c-{_digest(variant)}"
    if _describe(sagemaker.describe_endpoint_config, EndpointConfigName=config_name) is None:
        sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[variant], Tags=tags)
        progress(f"created endpoint config {config_name} ({spec.describe()})")
        changed = True

    current = _describe(sagemaker.describe_endpoint, EndpointName=endpoint)
    if current is not None and current["EndpointStatus"] == "Failed":
        progress(f"endpoint {endpoint} is Failed ({current.get('FailureReason', 'no reason given')}): recreating it")
        _delete_endpoint_and_wait(sagemaker, endpoint, progress, poll_interval_s, timeout_s)
        current = None
    if current is None:
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name, Tags=tags)
        progress(f"creating endpoint {endpoint}")
        changed = True
    elif current["EndpointConfigName"] != config_name:
        _wait_in_service(sagemaker, endpoint, progress, poll_interval_s, timeout_s)
        autoscaling.remove_autoscaling(backend, endpoint, progress=progress)  # registered again below
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        progress(f"updating endpoint {endpoint} to {config_name}")
        changed = True
    status = _wait_in_service(sagemaker, endpoint, progress, poll_interval_s, timeout_s)
    if spec.autoscaled:
        assert spec.max_instance_count is not None  # autoscaled says so
        changed |= autoscaling.ensure_autoscaling(backend, endpoint, spec.instance_count, spec.max_instance_count,
                                                  spec.invocations_per_instance_per_minute, progress=progress)
    else:
        changed |= autoscaling.remove_autoscaling(backend, endpoint, progress=progress)
    _prune(sagemaker, endpoint, keep_config=config_name, keep_model=model_name, progress=progress)
    return Deployment(endpoint, model_name, config_name, model_uri, image, spec, status, changed, warnings)


def _wait_in_service(sagemaker, endpoint: str, progress: Progress, poll_interval_s: float, timeout_s: float) -> str:
    """Poll ``describe_endpoint`` until the endpoint is InService; raise if it fails or times out."""
    started = time.monotonic()
    last = None
    while True:
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
        status = description["EndpointStatus"]
        elapsed_s = time.monotonic() - started
        if status != last:
            progress(f"endpoint {endpoint}: {status} ({elapsed_s:.0f} s)")
            last = status
        if status == "InService":
            return status
        if status not in TRANSITIONAL_STATUSES:
            reason = description.get("FailureReason", "no reason given")
            raise RuntimeError(f"endpoint {endpoint} is {status}: {reason} "
                               f"(see CloudWatch log group /aws/sagemaker/Endpoints/{endpoint})")
        if elapsed_s > timeout_s:
            raise TimeoutError(f"endpoint {endpoint} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_interval_s)


def endpoint_status(backend: Backend, names: Names) -> dict | None:
    """The endpoint's status, config, model and serving settings; None when it does not exist."""
    sagemaker = backend.client("sagemaker")
    description = _describe(sagemaker.describe_endpoint, EndpointName=names.endpoint)
    if description is None:
        return None
    status = {
        "endpoint": names.endpoint,
        "status": description["EndpointStatus"],
        "config": description["EndpointConfigName"],
        "failure_reason": description.get("FailureReason"),
    }
    config = _describe(sagemaker.describe_endpoint_config, EndpointConfigName=description["EndpointConfigName"])
    if config is not None:
        variant = config["ProductionVariants"][0]
        status["model"] = variant["ModelName"]
        status["serverless"] = variant.get("ServerlessConfig")
        status["instance_type"] = variant.get("InstanceType")
        status["instance_count"] = variant.get("InitialInstanceCount")
        model = _describe(sagemaker.describe_model, ModelName=variant["ModelName"])
        if model is not None:
            status["model_uri"] = model["PrimaryContainer"].get("ModelDataUrl")
            status["image"] = model["PrimaryContainer"].get("Image")
    return status


def _owned(names_in_account: list[str], endpoint: str, marker: str) -> list[str]:
    """The names this module made for ``endpoint``: exactly ``<endpoint>-m-<digest>`` or ``-c-<digest>``."""
    pattern = re.compile(rf"{re.escape(endpoint)}-{marker}-[0-9a-f]{{{DIGEST_CHARS}}}")
    return sorted(name for name in names_in_account if pattern.fullmatch(name))


def _model_names(sagemaker, endpoint: str) -> list[str]:
    pages = sagemaker.get_paginator("list_models").paginate(NameContains=endpoint)
    return _owned([model["ModelName"] for page in pages for model in page["Models"]], endpoint, "m")


def _config_names(sagemaker, endpoint: str) -> list[str]:
    pages = sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=endpoint)
    return _owned([config["EndpointConfigName"] for page in pages for config in page["EndpointConfigs"]],
                  endpoint, "c")


def _prune(sagemaker, endpoint: str, *, keep_config: str | None, keep_model: str | None,
           progress: Progress) -> list[str]:
    """Delete the configs and models made for ``endpoint`` except the ones it uses."""
    deleted = []
    for config in _config_names(sagemaker, endpoint):
        if config != keep_config:
            sagemaker.delete_endpoint_config(EndpointConfigName=config)
            deleted.append(f"endpoint config {config}")
    for model in _model_names(sagemaker, endpoint):
        if model != keep_model:
            sagemaker.delete_model(ModelName=model)
            deleted.append(f"model {model}")
    for item in deleted:
        progress(f"deleted {item}")
    return deleted


def _delete_endpoint_and_wait(sagemaker, endpoint: str, progress: Progress, poll_interval_s: float,
                              timeout_s: float) -> bool:
    if _describe(sagemaker.describe_endpoint, EndpointName=endpoint) is None:
        return False
    sagemaker.delete_endpoint(EndpointName=endpoint)
    progress(f"deleting endpoint {endpoint}")
    started = time.monotonic()
    while _describe(sagemaker.describe_endpoint, EndpointName=endpoint) is not None:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"endpoint {endpoint} still exists {timeout_s:.0f} s after delete_endpoint")
        time.sleep(poll_interval_s)
    return True


def delete_endpoint(
    backend: Backend,
    names: Names,
    *,
    progress: Progress = silent,
    poll_interval_s: float = ENDPOINT_POLL_INTERVAL_S,
    timeout_s: float = ENDPOINT_TIMEOUT_S,
) -> list[str]:
    """Delete the endpoint, then every config and model made for it, then its log group.

    Returns what was deleted; deleting nothing (nothing was deployed) is not an error.
    """
    endpoint = names.endpoint
    sagemaker = backend.client("sagemaker")
    deleted = []
    if autoscaling.remove_autoscaling(backend, endpoint, progress=progress):
        deleted.append(f"autoscaling of {endpoint}")
    if _delete_endpoint_and_wait(sagemaker, endpoint, progress, poll_interval_s, timeout_s):
        deleted.append(f"endpoint {endpoint}")
    deleted += _prune(sagemaker, endpoint, keep_config=None, keep_model=None, progress=progress)
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"  # created by SageMaker on the endpoint's behalf
    try:
        backend.client("logs").delete_log_group(logGroupName=log_group)
        deleted.append(f"log group {log_group}")
        progress(f"deleted log group {log_group}")
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    return deleted
