"""The local SageMaker runtime: boto3 round trips, SageMaker-shaped errors, redeploys, faults."""

from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request

import numpy as np
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from kit.cloudkit import N_FEATURES, model_tarball, train_tiny_model, unique

NO_RETRIES = {"retries": {"total_max_attempts": 1, "mode": "standard"}}


def rows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, N_FEATURES))


def invoke_json(clients, endpoint: str, data: np.ndarray, **config) -> dict:
    runtime = clients("sagemaker-runtime", **config)
    body = json.dumps({"instances": data.tolist()})
    response = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json",
                                       Accept="application/json")
    return json.loads(response["Body"].read())


@pytest.fixture
def endpoint(clients) -> str:
    name = unique("ep")
    clients.deploy(name, model_tarball("v1"))
    return name


def control(clients, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(clients.runtime_url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_ping_answers_200(clients):
    with urllib.request.urlopen(clients.runtime_url + "/ping", timeout=5) as response:
        assert response.status == 200


def test_invoke_endpoint_returns_the_models_predictions(clients, endpoint):
    data = rows(20)
    result = invoke_json(clients, endpoint, data)
    expected = train_tiny_model(0).predict_proba(data)
    assert result["model_version"] == "v1"
    assert [p["class_index"] for p in result["predictions"]] == expected.argmax(axis=1).tolist()
    assert np.allclose([p["probabilities"] for p in result["predictions"]], expected)


def test_csv_body_is_passed_to_input_fn_with_its_content_type(clients, endpoint):
    data = rows(3)
    body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in data)
    response = clients("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")
    assert response["ContentType"] == "application/json"
    assert len(json.loads(response["Body"].read())["predictions"]) == 3


def test_unknown_endpoint_is_a_validation_error(clients):
    runtime = clients("sagemaker-runtime", **NO_RETRIES)
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1", ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no-such-endpoint" in raised.value.response["Error"]["Message"]


def test_value_error_in_input_fn_is_a_model_error_with_its_message(clients, endpoint):
    runtime = clients("sagemaker-runtime", **NO_RETRIES)
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, Body="1,2,3", ContentType="text/csv")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "instance 0: 3 values, expected 8" in error["Error"]["Message"]
    assert error["OriginalStatusCode"] == 500
    assert error["OriginalMessage"] == "instance 0: 3 values, expected 8"


def test_update_endpoint_serves_the_new_model_on_the_next_call(clients, endpoint):
    clients.deploy(endpoint, model_tarball("v2", seed=5))
    assert invoke_json(clients, endpoint, rows(2))["model_version"] == "v2"


def test_an_overwritten_archive_is_reloaded(clients):
    name = unique("ep")
    key = f"{name}/model.tar.gz"
    clients.deploy(name, model_tarball("v1"), key=key)
    assert invoke_json(clients, name, rows(1))["model_version"] == "v1"
    clients("s3").put_object(Bucket="hb-test-models", Key=key, Body=model_tarball("v1-retrained", seed=3))
    assert invoke_json(clients, name, rows(1))["model_version"] == "v1-retrained"


def test_connection_is_kept_alive_between_calls(clients, endpoint):
    host, port = urllib.parse.urlsplit(clients.runtime_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps({"instances": rows(1).tolist()})
    sockets = []
    for _ in range(3):
        connection.request("POST", f"/endpoints/{endpoint}/invocations", body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        sockets.append(connection.sock)
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    connection.close()


def test_model_without_handlers_uses_the_sklearn_container_defaults(clients):
    name = unique("ep")
    script = "import joblib, os\ndef model_fn(d):\n    return joblib.load(os.path.join(d, 'model.joblib'))['model']\n"
    clients.deploy(name, model_tarball(script=script))
    data = rows(4)
    response = clients("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=json.dumps(data.tolist()), ContentType="application/json")
    assert json.loads(response["Body"].read()) == train_tiny_model(0).predict(data).tolist()


def test_unreadable_archive_is_a_model_error_naming_the_artifact(clients):
    name = unique("ep")
    url = clients.deploy(name, b"this is not a tarball")
    runtime = clients("sagemaker-runtime", **NO_RETRIES)
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=name, Body="1", ContentType="text/csv")
    assert url in raised.value.response["Error"]["Message"]


def test_payload_over_6_mb_is_rejected(clients, endpoint):
    runtime = clients("sagemaker-runtime", **NO_RETRIES)
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"0" * (6 * 1024 * 1024 + 1), ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "exceeds the limit" in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(("kind", "code"), [
    ("model_error", "ModelError"),
    ("throttle", "ThrottlingException"),
    ("unavailable", "ServiceUnavailable"),
    ("internal", "InternalFailure"),
])
def test_injected_fault_fails_one_call_with_sagemakers_error(clients, endpoint, kind, code):
    status, _ = control(clients, "POST", "/_hb/faults", {"kind": kind, "calls": 1, "endpoint": endpoint})
    assert status == 200
    with pytest.raises(ClientError) as raised:
        invoke_json(clients, endpoint, rows(1), **NO_RETRIES)
    assert raised.value.response["Error"]["Code"] == code
    assert invoke_json(clients, endpoint, rows(1), **NO_RETRIES)["model_version"] == "v1"


def test_injected_drop_closes_the_connection_without_an_answer(clients, endpoint):
    control(clients, "POST", "/_hb/faults", {"kind": "drop", "calls": 1, "endpoint": endpoint})
    with pytest.raises(ConnectionClosedError):
        invoke_json(clients, endpoint, rows(1), **NO_RETRIES)
    assert invoke_json(clients, endpoint, rows(1), **NO_RETRIES)["model_version"] == "v1"


def test_injected_faults_are_counted_and_cleared(clients, endpoint):
    control(clients, "DELETE", "/_hb/faults")
    control(clients, "POST", "/_hb/faults", {"kind": "delay", "delay_s": 0.01, "calls": 2, "endpoint": endpoint})
    invoke_json(clients, endpoint, rows(1))
    status, faults = control(clients, "GET", "/_hb/faults")
    assert status == 200
    assert faults["active"][0]["calls_left"] == 1
    _, faults = control(clients, "DELETE", "/_hb/faults")
    assert faults["active"] == []
    assert faults["injected"]["delay"] >= 1


def test_bad_fault_request_is_rejected_with_the_reason(clients):
    status, body = control(clients, "POST", "/_hb/faults", {"kind": "meteor"})
    assert status == 400
    assert "meteor" in body["message"]
