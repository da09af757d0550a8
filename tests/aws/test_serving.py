"""hbcore.aws.endpoint: the SageMaker control-plane calls, run against moto."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError

from hbcore.aws import artifacts, autoscaling, images
from hbcore.aws import endpoint as serving
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names
from hbcore.localcloud import motopatches

NAMES = Names("hbt")
ROLE_ARN = "arn:aws:iam::123456789012:role/hbt-sagemaker"
pytestmark = pytest.mark.usefixtures("sagemaker_sdk")  # an endpoint on AWS names its image from the SDK's data


@pytest.fixture
def backend(moto_aws) -> Backend:
    return Backend(kind="aws")


def _deploy(backend: Backend, model, spec: serving.EndpointSpec = serving.EndpointSpec(),
            **kwargs) -> serving.Deployment:
    return serving.deploy_model(backend, NAMES, model, ROLE_ARN, spec, poll_interval_s=0.01, **kwargs)


def _our_models(backend: Backend) -> list[str]:
    return [m["ModelName"] for m in backend.client("sagemaker").list_models()["Models"]]


def _our_configs(backend: Backend) -> list[str]:
    return [c["EndpointConfigName"] for c in backend.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]]


def _write_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"memory_mb": 1000}, "serverless endpoints take one of"),
    ({"max_concurrency": 0}, "expected 1..200"),
    ({"instance_type": "m5.large"}, "start with 'ml.'"),
    ({"framework_version": "0.1"}, "framework version"),
    ({"max_instance_count": 3}, "needs an instance endpoint"),
    ({"instance_type": "ml.c5.large", "instance_count": 2, "max_instance_count": 1}, "at least the initial 2"),
])
def test_endpoint_spec_rejects_bad_settings(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        serving.EndpointSpec(**kwargs)


def test_deploy_creates_a_serverless_endpoint_with_the_container_environment(backend, fake_model_tar):
    deployment = _deploy(backend, fake_model_tar())
    sagemaker = backend.client("sagemaker")
    model = sagemaker.describe_model(ModelName=deployment.model)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=deployment.config)
    assert (deployment.status, deployment.changed) == ("InService", True)
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    # the serving stack imports inference.py from the model's code/ even where the container's pip
    # install of it fails (serverless endpoints' read-only file system)
    assert model["PrimaryContainer"]["Environment"]["PYTHONPATH"] == "/opt/ml/model/code"
    assert model["PrimaryContainer"]["Image"] == images.image_uri("us-east-1")
    assert model["ExecutionRoleArn"] == ROLE_ARN
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert sagemaker.describe_endpoint(EndpointName=NAMES.endpoint)["EndpointConfigName"] == deployment.config


def test_model_is_uploaded_under_a_content_key(backend, fake_model_tar):
    path = fake_model_tar()
    deployment = _deploy(backend, path)
    bucket = NAMES.bucket("123456789012", "us-east-1")
    key = artifacts.content_key(artifacts.MODELS_PREFIX, path.read_bytes(), "model.tar.gz")
    assert deployment.model_uri == f"s3://{bucket}/{key}"
    assert backend.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == path.read_bytes()


def test_deploying_the_same_model_twice_changes_nothing(backend, fake_model_tar):
    path = fake_model_tar()
    first = _deploy(backend, path)
    second = _deploy(backend, path)
    assert second.changed is False
    assert (second.model, second.config) == (first.model, first.config)
    assert (_our_models(backend), _our_configs(backend)) == ([first.model], [first.config])


def test_instance_type_makes_a_real_time_variant(backend, fake_model_tar):
    deployment = _deploy(backend, fake_model_tar(), serving.EndpointSpec(instance_type="ml.t2.medium"))
    variant = backend.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=deployment.config)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.t2.medium", 1)
    assert "ServerlessConfig" not in variant


def test_new_model_updates_the_endpoint_and_removes_the_old_resources(backend, fake_model_tar):
    motopatches.apply()  # moto 5.2.5 lacks update_endpoint; the local cloud applies the same patch
    first = _deploy(backend, fake_model_tar("a.tar.gz", version="v1"))
    messages = []
    second = _deploy(backend, fake_model_tar("b.tar.gz", version="v2"), progress=messages.append)
    assert second.changed is True
    assert second.model != first.model
    described = backend.client("sagemaker").describe_endpoint(EndpointName=NAMES.endpoint)
    assert described["EndpointConfigName"] == second.config
    assert (_our_models(backend), _our_configs(backend)) == ([second.model], [second.config])
    assert any(message.startswith("updating endpoint") for message in messages)


def test_progress_reports_the_endpoint_status(backend, fake_model_tar):
    messages = []
    _deploy(backend, fake_model_tar(), progress=messages.append)
    assert f"endpoint {NAMES.endpoint}: InService (0 s)" in messages


def test_inference_code_too_new_for_the_container_is_a_warning(backend, fake_model_tar):
    deployment = _deploy(backend, fake_model_tar(inference_source="from warnings import deprecated\n"))
    assert len(deployment.warnings) == 1
    assert "(Python 3.12, numpy 2.1, scikit-learn 1.4.2)" in deployment.warnings[0]
    assert "code/inference.py line 1: warnings.deprecated needs Python 3.13" in deployment.warnings[0]


def test_autoscaling_follows_the_spec(backend, fake_model_tar):
    motopatches.apply()  # update_endpoint
    path = fake_model_tar()
    scaled = serving.EndpointSpec(instance_type="ml.c5.large", instance_count=2, max_instance_count=4,
                                  invocations_per_instance_per_minute=300)
    assert _deploy(backend, path, scaled).changed is True
    assert autoscaling.autoscaling_status(backend, NAMES.endpoint) == {
        "min": 2, "max": 4, "invocations_per_instance_per_minute": 300.0}
    assert _deploy(backend, path, scaled).changed is False
    _deploy(backend, path, serving.EndpointSpec())  # back to serverless: nothing to scale
    assert autoscaling.autoscaling_status(backend, NAMES.endpoint) is None


def test_the_real_artifact_deploys_without_warnings(backend, synthetic_model_tar):
    assert _deploy(backend, synthetic_model_tar).warnings == ()


def test_a_model_of_an_earlier_release_is_refused_with_a_word_to_retrain(tmp_path):
    path = tmp_path / "model.tar.gz"
    _write_tar(path, {"model.joblib": b"pickle", "code/inference.py": b"", "metadata.json": b"{}"})
    with pytest.raises(ValueError, match=r"model.tar.gz: a model of an earlier release .*retrain it"):
        serving.read_model_artifact(path)


def test_endpoint_status_describes_the_deployment(backend, fake_model_tar):
    deployment = _deploy(backend, fake_model_tar())
    status = serving.endpoint_status(backend, NAMES)
    assert status["status"] == "InService"
    assert (status["model"], status["model_uri"]) == (deployment.model, deployment.model_uri)
    assert status["serverless"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_endpoint_status_is_none_without_an_endpoint(backend):
    assert serving.endpoint_status(backend, NAMES) is None


def test_delete_removes_endpoint_configs_models_and_log_group(backend, fake_model_tar):
    _deploy(backend, fake_model_tar())
    backend.client("logs").create_log_group(logGroupName=f"/aws/sagemaker/Endpoints/{NAMES.endpoint}")
    deleted = serving.delete_endpoint(backend, NAMES, poll_interval_s=0.01)
    assert deleted[0] == f"endpoint {NAMES.endpoint}"
    assert serving.endpoint_status(backend, NAMES) is None
    assert (_our_models(backend), _our_configs(backend)) == ([], [])
    assert backend.client("logs").describe_log_groups()["logGroups"] == []


def test_delete_keeps_other_endpoints_resources(backend, fake_model_tar):
    other = Names("other")
    serving.deploy_model(backend, other, fake_model_tar(), ROLE_ARN, poll_interval_s=0.01)
    _deploy(backend, fake_model_tar())
    serving.delete_endpoint(backend, NAMES, poll_interval_s=0.01)
    assert serving.endpoint_status(backend, other)["status"] == "InService"
    assert len(_our_models(backend)) == 1


def test_delete_without_an_endpoint_deletes_nothing(backend):
    assert serving.delete_endpoint(backend, NAMES, poll_interval_s=0.01) == []


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent.tar.gz"):
        serving.read_model_artifact(tmp_path / "absent.tar.gz")


def test_a_file_that_is_not_a_tarball_is_rejected(tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_text("not a tarball")
    with pytest.raises(ValueError, match=r"model.tar.gz: not a gzip tarball"):
        serving.read_model_artifact(path)


def test_a_tarball_without_the_inference_code_is_rejected(tmp_path):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(ValueError, match=r"missing model.npz, code/inference.py"):
        serving.read_model_artifact(path)


def test_on_the_local_cloud_the_deployed_endpoint_answers(cloud, synthetic_model_tar):
    from hbcore.model.training import load_model

    backend = Backend(kind="local", endpoint_url=cloud.url, sagemaker_runtime_url=cloud.runtime_url)
    names = Names("hbserve")
    serving.deploy_model(backend, names, synthetic_model_tar, ROLE_ARN, poll_interval_s=0.05)
    response = backend.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=names.endpoint, ContentType="text/csv", Accept="application/json",
        Body=",".join(["0.5"] * 187))
    assert json.loads(response["Body"].read())["model_version"] == load_model(synthetic_model_tar).version
    serving.delete_endpoint(backend, names, poll_interval_s=0.05)
    assert serving.endpoint_status(backend, names) is None


def test_create_model_waits_for_a_new_role_to_propagate(monkeypatch):
    monkeypatch.setattr(serving, "ROLE_PROPAGATION_WAIT_S", 0)
    answers = iter([ClientError({"Error": {"Code": "ValidationException", "Message": "Could not assume role x"}},
                                "CreateModel")] * 2 + [{"ModelArn": "arn"}])
    messages = []

    def create_model(**kwargs):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert serving._while_role_propagates(create_model, messages.append, ModelName="m") == {"ModelArn": "arn"}
    assert len(messages) == 2


def test_other_create_model_errors_are_not_retried():
    calls = []

    def create_model(**kwargs):
        calls.append(kwargs)
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad image"}}, "CreateModel")

    with pytest.raises(ClientError, match="bad image"):
        serving._while_role_propagates(create_model, lambda message: None, ModelName="m")
    assert len(calls) == 1


def test_metadata_that_is_not_an_object_is_rejected(tmp_path):
    path = tmp_path / "model.tar.gz"
    _write_tar(path, {"model.npz": b"x", "code/inference.py": b"", "metadata.json": b"[1, 2]"})
    with pytest.raises(ValueError, match=r"metadata.json holds a list"):
        serving.read_model_artifact(path)
