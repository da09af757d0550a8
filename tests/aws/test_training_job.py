"""hbcore.aws.training_job: the create_training_job call shape, and a job run end to end on moto."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from datetime import UTC, datetime

import numpy as np
import pytest

import deploy
from deploy import __main__ as cli
from hbcore.aws import images, quotas, training_job
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names
from hbcore.aws.stack import StackOptions

NAMES = Names("hbt")
ROLE_ARN = "arn:aws:iam::123456789012:role/hbt-sagemaker"
pytestmark = pytest.mark.usefixtures("sagemaker_sdk")  # the job's image comes from the SDK's data


@pytest.fixture
def source_dir(tmp_path, monkeypatch):
    """A stand-in hbcore folder with an entry point, as the default source."""
    folder = tmp_path / "hbcore"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "train_entry.py").write_text("print('training')\n")
    (folder / "model" / "training.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(training_job, "HBCORE_DIR", folder)
    return folder


def _request(**kwargs) -> dict:
    return training_job.training_job_request(
        "hbt-train-20260101-000000", "eu-west-1", ROLE_ARN, "s3://b/training/source/x/sourcedir.tar.gz",
        "s3://b/training/data/y/", "s3://b/training/output/", **kwargs)


def test_request_runs_the_entry_point_in_the_scikit_learn_container():
    request = _request()
    assert request["AlgorithmSpecification"] == {"TrainingImage": images.image_uri("eu-west-1", scope="training"),
                                                 "TrainingInputMode": "File"}
    assert json.loads(request["HyperParameters"]["sagemaker_program"]) == "train_entry.py"
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]) == \
        "s3://b/training/source/x/sourcedir.tar.gz"
    assert request["RoleArn"] == ROLE_ARN


def test_request_json_encodes_hyperparameters():
    request = _request(hyperparameters={"max-iter": 200, "split": "inter"})
    assert (request["HyperParameters"]["max-iter"], request["HyperParameters"]["split"]) == ("200", '"inter"')


def test_request_reads_the_train_channel_and_writes_under_training_output():
    request = _request(instance_type="ml.c5.xlarge")
    channel = request["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://b/training/data/y/"
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://b/training/output/"}
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == training_job.MAX_RUNTIME_S


def test_job_name_carries_the_prefix_the_role_scopes_logs_to():
    now = datetime(2026, 11, 28, 12, 0, 5, tzinfo=UTC)
    assert training_job.job_name(NAMES, now) == "hbt-train-20261128-120005"


def test_source_archive_puts_the_entry_point_beside_the_package(source_dir):
    with tarfile.open(fileobj=io.BytesIO(training_job.source_archive()), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["hbcore/model/train_entry.py", "hbcore/model/training.py", "train_entry.py"]
        assert tar.extractfile("train_entry.py").read() == b"print('training')\n"


def test_source_archive_is_byte_identical_for_identical_sources(source_dir):
    assert training_job.source_archive() == training_job.source_archive()


def test_source_archive_names_a_missing_entry_point(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train_entry.py"):
        training_job.source_archive(tmp_path)


def test_job_runs_on_moto_and_reports_its_model(moto_aws, source_dir, tmp_path):
    backend = Backend(kind="aws")
    data = tmp_path / "mitbih_train.csv"
    data.write_text("0.5,0.25,0\n")
    name = training_job.start_training_job(backend, NAMES, ROLE_ARN, [data], hyperparameters={"max-iter": 5})
    model_uri = training_job.wait_for_training_job(backend, name, poll_interval_s=0.01)
    job = backend.client("sagemaker").describe_training_job(TrainingJobName=name)
    bucket = NAMES.bucket("123456789012", "us-east-1")
    assert model_uri.startswith(f"s3://{bucket}/training/output/")
    assert job["HyperParameters"]["max-iter"] == "5"
    channel_uri = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    key = channel_uri.removeprefix(f"s3://{bucket}/") + "mitbih_train.csv"
    assert backend.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == data.read_bytes()


def test_missing_training_file_is_named(moto_aws, source_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent.csv"):
        training_job.start_training_job(Backend(kind="aws"), NAMES, ROLE_ARN, [tmp_path / "absent.csv"])


def test_train_dry_run_prints_the_job(capsys, tmp_path):
    data = tmp_path / "mitbih_train.csv"
    data.write_text("0.5,0\n")
    assert cli.main(["train", "--dry-run", "--prefix", "hbt", "--region", "us-east-1", "--csv", str(data),
                     "--hyperparameter", "max-iter=50"]) == 0
    out = capsys.readouterr().out
    assert "training job hbt-train-<time> on ml.m5.large" in out
    assert "{'max-iter': 50}" in out


def test_train_without_a_training_instance_quota_creates_nothing(moto_aws, monkeypatch, tmp_path):
    listed = {"sagemaker": {quotas.training_instances_name("ml.m5.large"): ("L-M5T", 0.0)}}
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: listed.get(service, {}))
    data = tmp_path / "mitbih_train.csv"
    data.write_text("0.5,0\n")
    with pytest.raises(quotas.QuotaShortfall, match=r"ml\.m5\.large for training job usage"):
        deploy.train(Backend(kind="aws"), NAMES, [data], StackOptions())
    assert Backend(kind="aws").client("cloudformation").list_stacks()["StackSummaries"] == []


def test_bad_hyperparameter_exits_2(capsys, tmp_path):
    data = tmp_path / "mitbih_train.csv"
    data.write_text("0.5,0\n")
    assert cli.main(["train", "--dry-run", "--csv", str(data), "--hyperparameter", "oops"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_source_archive_trains_on_its_own_as_in_the_container(tmp_path, container_python):
    """The real archive, unpacked alone (as /opt/ml/code), runs with SageMaker's environment."""
    code, channel, model_dir = tmp_path / "code", tmp_path / "train", tmp_path / "model"
    channel.mkdir()
    with tarfile.open(fileobj=io.BytesIO(training_job.source_archive()), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.4f}" for v in np.clip(rng.normal(0.3 + 0.1 * (i % 5), 0.05, 187), 0, 1)) + f",{i % 5}.0"
            for i in range(200)]
    (channel / "mitbih_train.csv").write_text("\n".join(rows) + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SM_CHANNEL_TRAIN": str(channel),
           "SM_MODEL_DIR": str(model_dir)}
    result = subprocess.run([container_python, training_job.ENTRY_POINT, "--max-iter", "2"], cwd=code, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()) == [
        "code/inference.py", "code/requirements.txt", "metadata.json", "model.npz"]
