"""hbcore.aws.images: container image URIs from the sagemaker SDK's own data file."""

from __future__ import annotations

import json

import pytest

from hbcore.aws import images
from hbcore.aws.backend import Backend


@pytest.fixture
def sdk_data(sagemaker_sdk) -> dict:
    path = images.sdk_data_file()
    assert path is not None
    return json.loads(path.read_text())


def test_the_data_file_is_the_sdks(sdk_data):
    path = images.sdk_data_file()
    assert path is not None and path.name == "sklearn.json"
    assert path.parent.name == "image_uri_config"
    assert "inference" in sdk_data and "training" in sdk_data


def test_the_default_version_is_listed_for_inference_and_training(sagemaker_sdk):
    assert images.DEFAULT_FRAMEWORK_VERSION in images.sdk_versions("inference")
    assert images.DEFAULT_FRAMEWORK_VERSION in images.sdk_versions("training")


def test_image_uri_is_the_regional_registry_of_the_sdk(sdk_data):
    account = sdk_data["inference"]["versions"]["1.4-2-py312"]["registries"]["eu-west-1"]
    assert images.image_uri("eu-west-1", "1.4-2-py312") == \
        f"{account}.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-py312-cpu-py3"
    assert images.image_uri("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-scikit-learn:1.4-2-py312-cpu-py3")


def test_a_version_listed_for_training_only_is_refused_for_inference(sagemaker_sdk):
    assert "1.4-2" in images.sdk_versions("training")
    with pytest.raises(ValueError, match="lists no scikit-learn inference image"):
        images.image_uri("us-east-1", "1.4-2")
    assert images.image_uri("us-east-1", "1.4-2", "training").endswith(":1.4-2-cpu-py3")


def test_a_version_unknown_to_the_project_is_refused_without_the_sdk():
    with pytest.raises(ValueError, match=r"framework version '0\.1'"):
        images.check_framework_version("0.1")


def test_an_unknown_region_is_refused(sagemaker_sdk):
    with pytest.raises(ValueError, match="mars-east-1"):
        images.image_uri("mars-east-1")


def test_repository_arn_uses_the_region_partition(sdk_data):
    account = sdk_data["inference"]["versions"]["1.4-2-py312"]["registries"]["us-gov-west-1"]
    assert images.repository_arn("us-gov-west-1") == \
        f"arn:aws-us-gov:ecr:us-gov-west-1:{account}:repository/sagemaker-scikit-learn"


def test_without_the_sdk_aws_needs_it_and_the_local_cloud_does_not(monkeypatch):
    monkeypatch.setattr(images, "sdk_data_file", lambda: None)
    with pytest.raises(images.SdkNotInstalled, match=r"pip install -r requirements-aws\.txt"):
        images.image_uri("us-east-1")
    with pytest.raises(images.SdkNotInstalled):
        images.backend_image_uri(Backend(kind="aws", region="us-east-1"))
    local = images.backend_image_uri(Backend(kind="local", region="us-east-1"))
    assert local.startswith(f"{images.LOCAL_STAND_IN_ACCOUNT}.dkr.ecr.us-east-1.")


def test_every_known_container_says_what_it_runs():
    for version, container in images.CONTAINERS.items():
        assert container.python >= (3, 9), version
        assert container.scikit_learn.split(".")[0] == "1", version
    assert images.CONTAINERS[images.DEFAULT_FRAMEWORK_VERSION].python == (3, 12)
