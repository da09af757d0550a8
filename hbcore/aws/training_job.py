"""Train the model on SageMaker, in the same scikit-learn container that serves it, with plain boto3.

The model travels as plain numpy arrays (``model.npz``), so any scikit-learn trains it and the
endpoint needs none; the job's container (``hbcore.aws.images.CONTAINERS``) only has to run the
training code. The job runs ``hbcore/model/train_entry.py`` in script mode: the source archive holds
it at the top level next to the ``hbcore`` package it imports, the Kaggle-format CSVs are the
``train`` channel, and the container packs whatever the script writes to ``SM_MODEL_DIR`` into
``<output>/<job>/output/model.tar.gz``, which ``hbcore.aws.endpoint.deploy_model_uri`` deploys.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from hbcore.aws import artifacts, images
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names, cost_tags
from hbcore.aws.progress import Progress, silent

HBCORE_DIR = Path(__file__).resolve().parents[1]
ENTRY_POINT = "train_entry.py"
ENTRY_MODULE = f"model/{ENTRY_POINT}"  # under HBCORE_DIR
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
VOLUME_SIZE_GB = 10
MAX_RUNTIME_S = 3600
TRAINING_POLL_INTERVAL_S = 15.0
OUTPUT_PREFIX = f"{artifacts.TRAINING_PREFIX}output/"

def source_archive(hbcore_dir: Path | None = None) -> bytes:
    """``sourcedir.tar.gz``: the entry point at the top, the ``hbcore`` package beside it.

    Byte-identical for identical sources (fixed mtime, sorted members), so re-running a job with
    unchanged code re-uses the uploaded archive.
    """
    hbcore_dir = hbcore_dir or HBCORE_DIR
    entry = hbcore_dir / ENTRY_MODULE
    if not entry.is_file():
        raise FileNotFoundError(f"{entry}: the training entry point does not exist")
    members = {ENTRY_POINT: entry.read_bytes()}
    members.update({f"hbcore/{path.relative_to(hbcore_dir).as_posix()}": path.read_bytes()
                    for path in sorted(hbcore_dir.rglob("*.py"))})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def job_name(names: Names, now: datetime | None = None) -> str:
    """``<prefix>-train-<UTC timestamp>`` (the execution role scopes its log streams to the prefix)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{names.prefix}-train-{stamp}"


def training_job_request(
    name: str,
    region: str,
    role_arn: str,
    source_uri: str,
    train_uri: str,
    output_uri: str,
    *,
    hyperparameters: dict[str, object] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    framework_version: str = images.DEFAULT_FRAMEWORK_VERSION,
    max_runtime_s: int = MAX_RUNTIME_S,
) -> dict:
    """The ``create_training_job`` arguments of a script-mode job in the scikit-learn container.

    Hyperparameters are JSON-encoded, as the SageMaker training toolkit decodes them before it
    passes them to the entry point as ``--name value``.
    """
    script_mode = {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": source_uri,
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
    }
    encoded = {key: json.dumps(value) for key, value in {**(hyperparameters or {}), **script_mode}.items()}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": images.image_uri(region, framework_version, "training"),
                                   "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "HyperParameters": encoded,
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
        }],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": VOLUME_SIZE_GB},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "Tags": [{"Key": "hbcore:prefix", "Value": name.split("-train-")[0]},
                 *cost_tags(Names(name.split("-train-")[0]))],
    }


def _upload_training_data(backend: Backend, bucket: str, paths: Sequence[Path]) -> str:
    """Upload the CSVs under one prefix named by their joint digest; returns the channel's S3 prefix."""
    files = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such training file")
        files[path.name] = path.read_bytes()
    if len(files) != len(paths):
        raise ValueError(f"training files must have distinct names: {', '.join(str(p) for p in paths)}")
    digest = artifacts.sha256_hex(json.dumps({name: artifacts.sha256_hex(data) for name, data in files.items()},
                                             sort_keys=True).encode())[:artifacts.DIGEST_CHARS]
    prefix = f"{artifacts.TRAINING_PREFIX}data/{digest}/"
    s3 = backend.client("s3")
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)
    return f"s3://{bucket}/{prefix}"


def start_training_job(
    backend: Backend,
    names: Names,
    role_arn: str,
    data_paths: Sequence[str | Path],
    *,
    hyperparameters: dict[str, object] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    framework_version: str = images.DEFAULT_FRAMEWORK_VERSION,
    progress: Progress = silent,
) -> str:
    """Upload the source and the data, start the job, and return its name."""
    bucket = artifacts.bucket_name(backend, names)
    if artifacts.ensure_bucket(backend, bucket, cost_tags(names)):
        progress(f"created bucket {bucket}")
    source = artifacts.upload_once(backend, bucket, f"{artifacts.TRAINING_PREFIX}source/", source_archive(),
                                   "sourcedir.tar.gz")
    train_uri = _upload_training_data(backend, bucket, [Path(p) for p in data_paths])
    progress(f"uploaded {source.uri} and {train_uri}")
    name = job_name(names)
    backend.client("sagemaker").create_training_job(**training_job_request(
        name, backend.region, role_arn, source.uri, train_uri, f"s3://{bucket}/{OUTPUT_PREFIX}",
        hyperparameters=hyperparameters, instance_type=instance_type, framework_version=framework_version))
    progress(f"started training job {name} on {instance_type}")
    return name


def wait_for_training_job(
    backend: Backend,
    name: str,
    *,
    progress: Progress = silent,
    poll_interval_s: float = TRAINING_POLL_INTERVAL_S,
    timeout_s: float = MAX_RUNTIME_S + 900,
) -> str:
    """Poll until the job completes; return the S3 URI of its ``model.tar.gz`` (raise on failure)."""
    sagemaker = backend.client("sagemaker")
    started = time.monotonic()
    last = None
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        status = job["TrainingJobStatus"]
        detail = f"{status}/{job.get('SecondaryStatus', '')}"
        if detail != last:
            progress(f"training job {name}: {detail} ({time.monotonic() - started:.0f} s)")
            last = detail
        if status == "Completed":
            return job["ModelArtifacts"]["S3ModelArtifacts"]
        if status in ("Failed", "Stopped"):
            raise RuntimeError(f"training job {name} {status}: {job.get('FailureReason', 'no reason given')} "
                               "(see CloudWatch log group /aws/sagemaker/TrainingJobs)")
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"training job {name} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_interval_s)

