"""hbcore.aws.stack on moto: the stack creates, updates only when something changed, and deletes cleanly."""

from __future__ import annotations

import io
import zipfile

import pytest

from hbcore.aws import artifacts, stack
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names

NAMES = Names("hbt")


@pytest.fixture
def local(moto_aws) -> Backend:
    return Backend(kind="local")


def _deploy(backend: Backend, **kwargs) -> stack.StackResult:
    return stack.deploy_stack(backend, NAMES, poll_interval_s=0.01, **kwargs)


def test_lambda_zip_holds_the_handler_alone(handler):
    with zipfile.ZipFile(io.BytesIO(stack.lambda_zip(handler))) as archive:
        assert archive.namelist() == ["lambda_function.py"]
        assert archive.read("lambda_function.py") == handler.read_bytes()


def test_lambda_zip_is_byte_identical_for_identical_source(handler):
    assert stack.lambda_zip(handler) == stack.lambda_zip(handler)


def test_lambda_zip_names_a_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.py"):
        stack.lambda_zip(tmp_path / "nope.py")


def test_stack_creates_stream_function_logs_and_queue(local, handler):
    result = _deploy(local)
    assert (result.status, result.changed) == ("CREATE_COMPLETE", True)
    function = local.client("lambda").get_function(FunctionName=NAMES.function)["Configuration"]
    # moto keeps a Number parameter's type in the environment; AWS turns every value into a string.
    assert {key: str(value) for key, value in function["Environment"]["Variables"].items()} == {
        "ENDPOINT_NAME": NAMES.endpoint, "ENDPOINT_TIMEOUT_S": "60", "ENDPOINT_MAX_REQUEST_BYTES": "4000000",
        "EMF_PATIENT_METRICS": ""}  # no alarm e-mail: fleet totals only, no custom metric per patient
    assert function["Handler"] == "lambda_function.lambda_handler"
    assert local.client("kinesis").describe_stream_summary(StreamName=NAMES.stream)[
        "StreamDescriptionSummary"]["OpenShardCount"] == 1
    groups = local.client("logs").describe_log_groups(logGroupNamePrefix=NAMES.log_group)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(NAMES.log_group, 14)]
    assert result.outputs["DeadLetterQueueUrl"].endswith(f"/{NAMES.function}-failures")


def test_function_code_is_the_uploaded_zip(local, handler):
    result = _deploy(local)
    body = local.client("s3").get_object(Bucket=result.code.bucket, Key=result.code.key)["Body"].read()
    assert body == stack.lambda_zip(handler)
    assert result.code.key.startswith("lambda/")


def test_local_mapping_is_made_by_the_lambda_api_with_the_shared_settings(local, handler):
    result = _deploy(local)
    template_mapping = "EventSourceMappingId" in result.outputs
    mapping = local.client("lambda").get_event_source_mapping(UUID=result.mapping_uuid)
    assert template_mapping is False
    assert {key: mapping[key] for key in stack.MAPPING_SETTINGS} == stack.MAPPING_SETTINGS
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": result.outputs["DeadLetterQueueArn"]}}


def test_template_mapping_gets_the_same_settings_as_the_api_mapping(moto_aws, handler, sagemaker_sdk):
    # No record is put in this test, so moto never tries to run the function in Docker.
    result = _deploy(Backend(kind="aws"))
    mapping = Backend(kind="aws").client("lambda").get_event_source_mapping(UUID=result.outputs["EventSourceMappingId"])
    assert {key: mapping[key] for key in stack.MAPPING_SETTINGS} == stack.MAPPING_SETTINGS
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": result.outputs["DeadLetterQueueArn"]}}


def test_deploying_twice_changes_nothing(local, handler):
    first = _deploy(local)
    events_before = local.client("cloudformation").describe_stack_events(StackName=NAMES.stack)["StackEvents"]
    second = _deploy(local)
    events_after = local.client("cloudformation").describe_stack_events(StackName=NAMES.stack)["StackEvents"]
    assert second.changed is False
    assert (second.code.uploaded, second.mapping_uuid) == (False, first.mapping_uuid)
    assert len(events_after) == len(events_before)


def test_changed_code_updates_the_function(local, handler):
    first = _deploy(local)
    handler.write_text(handler.read_text() + "# changed\n")
    second = _deploy(local)
    code = local.client("lambda").get_function(FunctionName=NAMES.function)["Configuration"]
    assert second.changed is True
    assert second.code.key != first.code.key
    assert second.status == "UPDATE_COMPLETE"
    assert code["CodeSize"] == len(stack.lambda_zip(handler))


def test_changed_mapping_setting_updates_the_api_mapping(local, handler, monkeypatch):
    # Called directly: moto 5.2.5 crashes updating a stack whose condition-off mapping changed
    # (it "modifies" the never-created resource), so a stack update cannot carry this change.
    first = _deploy(local)
    monkeypatch.setitem(stack.MAPPING_SETTINGS, "BatchSize", 50)
    uuid, changed = stack.ensure_event_source_mapping(
        local, NAMES.function, first.outputs["StreamArn"], first.outputs["DeadLetterQueueArn"])
    mapping = local.client("lambda").get_event_source_mapping(UUID=first.mapping_uuid)
    assert (changed, uuid, mapping["BatchSize"]) == (True, first.mapping_uuid, 50)


def test_on_demand_stream_needs_no_shard_count(local, handler):
    result = _deploy(local, options=stack.StackOptions(shard_count=0))
    parameters = local.client("cloudformation").describe_stacks(StackName=NAMES.stack)["Stacks"][0]["Parameters"]
    assert result.status == "CREATE_COMPLETE"
    assert {"ParameterKey": "ShardCount", "ParameterValue": "0"} in parameters


def test_delete_leaves_nothing_behind(local, handler):
    _deploy(local)
    assert stack.delete_stack(local, NAMES, poll_interval_s=0.01) is True
    assert stack.stack_status(local, NAMES) is None
    assert local.client("kinesis").list_streams()["StreamNames"] == []
    assert local.client("lambda").list_functions()["Functions"] == []
    assert local.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert local.client("iam").list_roles()["Roles"] == []
    assert local.client("logs").describe_log_groups()["logGroups"] == []
    assert local.client("sqs").list_queues().get("QueueUrls", []) == []


def test_delete_without_a_stack_is_not_an_error(local):
    assert stack.delete_stack(local, NAMES, poll_interval_s=0.01) is False


def test_status_reports_outputs_and_the_mapping(local, handler):
    result = _deploy(local)
    status = stack.stack_status(local, NAMES)
    assert status["status"] == "CREATE_COMPLETE"
    assert status["outputs"]["StreamArn"] == result.outputs["StreamArn"]
    assert [(m["uuid"], m["state"]) for m in status["mappings"]] == [(result.mapping_uuid, "Enabled")]


def test_rolled_back_stack_is_replaced(local, handler, monkeypatch):
    cfn = local.client("cloudformation")
    states = iter(["ROLLBACK_COMPLETE"])
    real_describe = stack._describe_stack

    def describe_once_rolled_back(client, name):
        description = real_describe(client, name)
        if description is not None:
            description = {**description, "StackStatus": next(states, description["StackStatus"])}
        return description

    _deploy(local)
    monkeypatch.setattr(stack, "_describe_stack", describe_once_rolled_back)
    messages = []
    result = _deploy(local, progress=messages.append)
    assert result.status == "CREATE_COMPLETE"
    assert any("ROLLBACK_COMPLETE" in message for message in messages)
    assert len(cfn.describe_stacks()["Stacks"]) == 1


def test_bucket_is_private_and_tagged(local, handler):
    result = _deploy(local)
    s3 = local.client("s3")
    block = s3.get_public_access_block(Bucket=result.code.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert artifacts.MANAGED_TAG in s3.get_bucket_tagging(Bucket=result.code.bucket)["TagSet"]


def test_on_the_local_cloud_the_poller_serves_the_mapping(cloud, handler):
    backend = Backend(kind="local", endpoint_url=cloud.url, sagemaker_runtime_url=cloud.runtime_url)
    names = Names("hbloop")
    result = stack.deploy_stack(backend, names, poll_interval_s=0.05)
    served = [m for m in cloud.poller.describe() if m["uuid"] == result.mapping_uuid]
    assert [m["event_source_arn"] for m in served] == [result.outputs["StreamArn"]]
    assert stack.deploy_stack(backend, names, poll_interval_s=0.05).changed is False
    stack.delete_stack(backend, names, poll_interval_s=0.05)
    assert [m for m in cloud.poller.describe() if m["uuid"] == result.mapping_uuid] == []
    assert names.stream not in backend.client("kinesis").list_streams()["StreamNames"]


def test_default_zip_is_the_repository_handler_alone():
    with zipfile.ZipFile(io.BytesIO(stack.lambda_zip())) as archive:
        assert archive.namelist() == ["lambda_function.py"]
        assert archive.read("lambda_function.py") == (stack.REPO / "lambda_function.py").read_bytes()
