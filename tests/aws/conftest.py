"""Fixtures of the deploy tests (stack, deploy CLI)."""

import pytest

from hbcore.aws import images, quotas, stack


@pytest.fixture
def handler(tmp_path, monkeypatch):
    """A stand-in lambda_function.py (the real one is tested by its owner), as the default source."""
    path = tmp_path / "lambda_function.py"
    path.write_text("def lambda_handler(event, context):\n    return {'batchItemFailures': []}\n")
    monkeypatch.setattr(stack, "LAMBDA_SOURCE", path)
    return path


@pytest.fixture
def sagemaker_sdk():
    """Skips the test where the sagemaker SDK is absent: its data names the images deploying to AWS needs."""
    if images.sdk_data_file() is None:
        pytest.skip("the sagemaker SDK is not installed (pip install -r requirements-aws.txt): its image-URI "
                    "data names the container images that deploying to AWS needs")


@pytest.fixture
def quotas_not_listed(monkeypatch):
    """Service Quotas that list nothing, as moto's for Lambda and SageMaker (moto implements neither
    listing for them): the pre-flight check finds no quota and blocks nothing."""
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: {})
