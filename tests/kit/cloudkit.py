"""Test kit for the local cloud: an in-process ``CloudServer``, tiny model archives, boto3 helpers.

The fixtures are imported by conftest.py, so every test module can ask for ``cloud`` (a running
local cloud in this process, one per test module) and ``clients`` (boto3 clients pointed at it).
Tests name their resources uniquely (``unique``), because moto's state is per process.
"""

from __future__ import annotations

import functools
import io
import json
import os
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

TESTS_DIR = Path(__file__).resolve().parent
REGION = "us-east-1"
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})

# A minimal SageMaker inference script: a scikit-learn classifier on N_FEATURES values per row.
INFERENCE_SCRIPT = '''
import io, json, os
import joblib
import numpy as np

def model_fn(model_dir):
    bundle = joblib.load(os.path.join(model_dir, "model.joblib"))
    return bundle

def input_fn(body, content_type):
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if content_type == "text/csv":
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    elif content_type == "application/json":
        rows = json.loads(text)["instances"]
    else:
        raise ValueError(f"unsupported content type {content_type}")
    for index, row in enumerate(rows):
        if len(row) != EXPECTED_VALUES:
            raise ValueError(f"instance {index}: {len(row)} values, expected EXPECTED_VALUES")
    return np.asarray(rows, dtype=float)

def predict_fn(data, bundle):
    return bundle["model"].predict_proba(data), bundle["version"]

def output_fn(prediction, accept):
    probabilities, version = prediction
    answer = {"model_version": version, "predictions": [
        {"class_index": int(p.argmax()), "probabilities": [float(v) for v in p]} for p in probabilities]}
    return json.dumps(answer), "application/json"
'''
N_FEATURES = 8


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train_tiny_model(seed: int = 0):
    """A logistic regression on synthetic 3-class data with N_FEATURES features."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, N_FEATURES))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)
    return LogisticRegression(max_iter=200).fit(X, y)


@functools.lru_cache(maxsize=16)
def model_tarball(version: str = "v1", seed: int = 0, script: str | None = None) -> bytes:
    """A model.tar.gz laid out as SageMaker expects: model.joblib and code/inference.py."""
    import joblib

    model_bytes = io.BytesIO()
    joblib.dump({"model": train_tiny_model(seed), "version": version}, model_bytes)
    files = {
        "model.joblib": model_bytes.getvalue(),
        "code/inference.py": (script or INFERENCE_SCRIPT.replace("EXPECTED_VALUES", str(N_FEATURES))).encode(),
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive.getvalue()


@dataclass
class Clients:
    """boto3 clients on one local cloud (created once per service and config: creation costs ~50 ms)."""

    url: str
    runtime_url: str
    _made: dict = field(default_factory=dict, repr=False)

    def __call__(self, service: str, **config: object):
        key = (service, repr(sorted(config.items())))
        if key not in self._made:
            endpoint = self.runtime_url if service == "sagemaker-runtime" else self.url
            self._made[key] = boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                                           aws_access_key_id="testing", aws_secret_access_key="testing",
                                           config=Config(**config) if config else None)
        return self._made[key]

    def deploy(self, endpoint: str, archive: bytes, key: str | None = None) -> str:
        """Upload ``archive`` and create (or update) ``endpoint`` to serve it; returns the S3 URL."""
        s3, sagemaker = self("s3"), self("sagemaker")
        bucket = "hb-test-models"
        s3.create_bucket(Bucket=bucket)
        key = key or f"{unique(endpoint)}/model.tar.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=archive)
        url = f"s3://{bucket}/{key}"
        model_name = unique(f"{endpoint}-model")
        sagemaker.create_model(ModelName=model_name, ExecutionRoleArn=self.role(),
                               PrimaryContainer={"Image": "sklearn", "ModelDataUrl": url})
        config_name = unique(f"{endpoint}-config")
        sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model_name, "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}])
        existing = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
        if endpoint in existing:
            sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        else:
            sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        return url

    def role(self) -> str:
        iam = self("iam")
        try:
            return iam.get_role(RoleName="hb-test-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            return iam.create_role(RoleName="hb-test-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]

    def stream(self, shards: int = 1) -> str:
        """A new Kinesis stream; returns its ARN."""
        kinesis = self("kinesis")
        name = unique("stream")
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]

    def function(self, handler: str, environment: dict[str, str] | None = None, timeout_s: int = 30) -> str:
        """A new Lambda function (the zip is a placeholder: the poller imports ``handler`` from its code root)."""
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("placeholder.py", "")
        name = unique("fn")
        self("lambda").create_function(FunctionName=name, Runtime="python3.11", Role=self.role(), Handler=handler,
                                       Code={"ZipFile": archive.getvalue()}, Timeout=timeout_s,
                                       Environment={"Variables": environment or {}})
        return name

    def log_messages(self, function: str) -> list[str]:
        """Every message in the function's log group, stream by stream, oldest first."""
        logs = self("logs")
        group = f"/aws/lambda/{function}"
        messages = []
        try:
            streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        for stream in streams:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
            messages.extend(event["message"] for event in events["events"])
        return messages


def wait_for(condition: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"condition not met within {timeout_s} s: {condition}")


def poll_reader_until(reader, done: Callable[[object], bool], timeout_s: float = 30.0, interval_s: float = 0.3):
    """Poll a ``ResultsReader`` until ``done(snapshot)`` holds; the last snapshot either way (the test judges it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        reader.poll_once()
        snapshot = reader.snapshot()
        if done(snapshot) or time.monotonic() > deadline:
            return snapshot
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def cloud():
    """A local cloud running in this process (threads), its handlers imported from tests/."""
    from hbcore.localcloud.server import CloudServer

    saved = dict(os.environ)
    server = CloudServer(code_root=TESTS_DIR).start()
    server.poller.retry_backoff_s = 0.05  # Lambda-like waits would only slow the tests down
    try:
        yield server
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def cloud_clients(cloud) -> Clients:
    return Clients(cloud.url, cloud.runtime_url)


@pytest.fixture
def clients(cloud, cloud_clients) -> Clients:
    """boto3 clients on ``cloud``; after the test its mappings are deleted and the environment
    variables its handlers set (the poller sets them process-wide, as a Lambda sandbox would) undone."""
    saved = dict(os.environ)
    yield cloud_clients
    for mapping in cloud.poller.describe():
        cloud.poller.delete(mapping["uuid"])
    os.environ.clear()
    os.environ.update(saved)
