"""``python -m deploy``: dry run, up (twice), status and down, on moto; errors and cost estimate."""

from __future__ import annotations

import subprocess
import sys

import botocore.session
import pytest
from botocore.exceptions import ClientError

import deploy
from deploy import __main__ as cli
from hbcore.aws import autoscaling, images, quotas, sizing, stack
from hbcore.aws import endpoint as serving
from hbcore.aws.backend import Backend
from hbcore.aws.names import Names

FAST = ["--prefix", "hbt", "--region", "us-east-1"]
pytestmark = pytest.mark.usefixtures("sagemaker_sdk", "quotas_not_listed")


@pytest.fixture
def deployed(moto_aws, handler, fake_model_tar, capsys):
    """One successful ``up``; returns the model path."""
    model = fake_model_tar()
    assert cli.main(["up", *FAST, "--model", str(model)]) == 0
    capsys.readouterr()
    return model


def _inventory(backend: Backend) -> dict[str, list]:
    """Every kind of resource ``up`` makes, listed from the account."""
    sagemaker = backend.client("sagemaker")
    return {
        "streams": backend.client("kinesis").list_streams()["StreamNames"],
        "functions": backend.client("lambda").list_functions()["Functions"],
        "mappings": backend.client("lambda").list_event_source_mappings()["EventSourceMappings"],
        "roles": backend.client("iam").list_roles()["Roles"],
        "log_groups": backend.client("logs").describe_log_groups()["logGroups"],
        "queues": backend.client("sqs").list_queues().get("QueueUrls", []),
        "stacks": [s for s in backend.client("cloudformation").list_stacks()["StackSummaries"]
                   if s["StackStatus"] != "DELETE_COMPLETE"],
        "endpoints": sagemaker.list_endpoints()["Endpoints"],
        "configs": sagemaker.list_endpoint_configs()["EndpointConfigs"],
        "models": sagemaker.list_models()["Models"],
        "buckets": backend.client("s3").list_buckets()["Buckets"],
    }


def test_dry_run_prints_the_plan(capsys, fake_model_tar):
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar())]) == 0
    out = capsys.readouterr().out
    for expected in ("hbt-beats", "hbt-classifier", "hbt-pipeline", "hbt-endpoint", "/aws/lambda/hbt-classifier",
                     "hbt-artifacts-<account>-us-east-1", f"BatchSize={stack.MAPPING_SETTINGS['BatchSize']}",
                     "ReportBatchItemFailures",
                     "serverless, 2048 MB", "sagemaker-scikit-learn:1.4-2-py312-cpu-py3", "total", "$0.0150/h"):
        assert expected in out


def test_dry_run_creates_no_client(monkeypatch, capsys, fake_model_tar):
    def refuse(*args, **kwargs):
        raise AssertionError("a client was created during a dry run")

    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar())]) == 0
    assert cli.main(["status", "--dry-run", *FAST]) == 0
    assert cli.main(["down", "--dry-run", *FAST]) == 0
    assert capsys.readouterr().out.count("dry run") == 3


def test_dry_run_flags_a_missing_model(capsys, tmp_path):
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(tmp_path / "none.tar.gz")]) == 0
    assert "MISSING" in capsys.readouterr().out


def test_up_prints_what_it_made_and_the_cost(moto_aws, handler, fake_model_tar, capsys):
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar())]) == 0
    captured = capsys.readouterr()
    assert "stack      hbt-pipeline: CREATE_COMPLETE (created/updated)" in captured.out
    assert "endpoint   hbt-endpoint: InService" in captured.out
    assert "Estimated cost while idle" in captured.out
    assert "creating stack hbt-pipeline" in captured.err  # progress goes to stderr


def test_up_twice_changes_nothing(deployed, capsys):
    backend = Backend(kind="aws")
    before = _inventory(backend)
    assert cli.main(["up", *FAST, "--model", str(deployed)]) == 0
    out = capsys.readouterr().out
    assert "nothing changed" in out
    assert "(created/updated)" not in out
    assert _inventory(backend) == before


def test_status_shows_the_deployment(deployed, capsys):
    assert cli.main(["status", *FAST]) == 0
    out = capsys.readouterr().out
    assert "stack      hbt-pipeline: CREATE_COMPLETE" in out
    assert "endpoint   hbt-endpoint: InService (serverless 2048 MB)" in out
    assert "failures 0 message(s)" in out


def test_status_of_nothing(moto_aws, capsys):
    assert cli.main(["status", *FAST]) == 0
    assert "nothing deployed" in capsys.readouterr().out


def test_down_leaves_nothing_behind(deployed, capsys):
    backend = Backend(kind="aws")
    backend.client("logs").create_log_group(logGroupName="/aws/sagemaker/Endpoints/hbt-endpoint")
    assert cli.main(["down", *FAST]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "deleted endpoint hbt-endpoint"  # the endpoint goes first
    assert all(resources == [] for resources in _inventory(backend).values()), _inventory(backend)


def test_down_keeps_a_bucket_holding_other_objects(deployed, capsys):
    backend = Backend(kind="aws")
    bucket = Names("hbt").bucket("123456789012", "us-east-1")
    backend.client("s3").put_object(Bucket=bucket, Key="notes/mine.txt", Body=b"keep me")
    assert cli.main(["down", *FAST]) == 0
    keys = [o["Key"] for o in backend.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["notes/mine.txt"]


def test_down_twice_is_harmless(deployed, capsys):
    assert cli.main(["down", *FAST]) == 0
    assert cli.main(["down", *FAST]) == 0
    assert capsys.readouterr().out.strip().endswith("nothing to delete")


def test_missing_model_exits_2_before_any_aws_call(moto_aws, handler, capsys, tmp_path):
    assert cli.main(["up", *FAST, "--model", str(tmp_path / "none.tar.gz")]) == 2
    captured = capsys.readouterr()
    assert "none.tar.gz: no such model file" in captured.err
    assert Backend(kind="aws").client("cloudformation").list_stacks()["StackSummaries"] == []


def test_bad_prefix_exits_2(capsys):
    assert cli.main(["status", "--prefix", "Bad_Prefix", "--dry-run"]) == 2
    assert "prefix 'Bad_Prefix'" in capsys.readouterr().err


def test_missing_credentials_exit_1_with_advice(monkeypatch, capsys, handler, fake_model_tar):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar())]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err


def test_errors_never_show_credentials(monkeypatch, capsys):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    def fail(backend, names, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied",
                                     "Message": f"key AKIAIOSFODNN7EXAMPLE secret {secret} denied"}}, "DescribeStacks")

    monkeypatch.setattr(deploy, "status", fail)
    assert cli.main(["status", *FAST]) == 1
    err = capsys.readouterr().err
    assert "AccessDenied" in err
    assert "AKIAIOSFODNN7EXAMPLE" not in err and secret not in err


def test_region_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert cli.resolve_region(None, None) == "eu-central-1"
    assert cli.resolve_region("ap-south-1", None) == "ap-south-1"


def test_module_runs_as_a_script(tmp_path):
    result = subprocess.run([sys.executable, "-m", "deploy", "up", "--dry-run", *FAST, "--model", "x.tar.gz"],
                            cwd=stack.REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Plan (dry run: nothing was called):" in result.stdout


def test_up_deploys_a_model_already_in_s3(moto_aws, handler, capsys):
    uri = "s3://hbt-artifacts-123456789012-us-east-1/training/output/hbt-train-1/output/model.tar.gz"
    assert cli.main(["up", *FAST, "--model", uri]) == 0
    assert serving.endpoint_status(Backend(kind="aws"), Names("hbt"))["model_uri"] == uri
    assert f"<- {uri}" in capsys.readouterr().out


def test_status_estimates_the_cost_of_what_is_deployed(deployed, capsys):
    assert cli.main(["status", *FAST]) == 0
    out = capsys.readouterr().out
    assert "Kinesis 1 shard(s)" in out and "SageMaker serverless endpoint (2048 MB)" in out
    assert "$0.0150/h" in out


def test_dry_run_prints_the_plan_for_10000_patients(capsys, fake_model_tar):
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar()), "--patients", "10000"]) == 0
    out = capsys.readouterr().out
    sized = sizing.plan_for_patients(10_000)
    concurrency = sized.stack.max_concurrent_batches
    assert "Sizing for 10,000 patients at 1.25 beats/s each: 12,500 beats/s" in out
    assert f"hbt-beats ({sized.stack.shard_count} provisioned shard(s)" in out
    assert f"ParallelizationFactor={sized.stack.parallelization_factor}" in out
    assert f"{concurrency} reserved concurrent executions" in out
    assert f"{sized.endpoint.describe()}, image" in out
    assert f"Concurrent executions >= {concurrency + quotas.LAMBDA_UNRESERVED_MINIMUM}" in out
    assert "Estimated cost while streaming 12500 beats/s" in out


def test_dry_run_prints_the_per_use_costs_at_the_rate(capsys, fake_model_tar):
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar()), "--rate", "250"]) == 0
    out = capsys.readouterr().out
    assert "Estimated cost while streaming 250 beats/s" in out
    for item in ("CloudWatch Logs ingestion", "Logs Insights", "Lambda requests", "Lambda duration",
                 "SageMaker serverless inference", "Kinesis PUT payload units", "total with idle"):
        assert item in out


def test_up_refuses_a_version_the_sdk_lists_for_training_only(capsys, fake_model_tar):
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar()), "--framework-version", "1.4-2"]) == 2
    assert "the sagemaker SDK lists no scikit-learn inference image for it" in capsys.readouterr().err


def test_up_without_the_sdk_says_what_to_install(monkeypatch, capsys, fake_model_tar):
    monkeypatch.setattr(images, "sdk_data_file", lambda: None)
    assert cli.main(["up", "--dry-run", *FAST, "--model", str(fake_model_tar())]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("pip install -r requirements-aws.txt")


def test_up_with_alarm_email_makes_the_topic_and_the_v_beat_alarm(moto_aws, handler, fake_model_tar, capsys):
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar()), "--alarm-email", "ward@example.org",
                     "--budget-usd", "20"]) == 0
    backend = Backend(kind="aws")
    [topic] = backend.client("sns").list_topics()["Topics"]
    assert topic["TopicArn"].endswith(":hbt-pipeline-alarms")
    # moto's CloudFormation makes no alarms or budgets (tests/aws/test_template.py checks those resources);
    # what the stack received:
    state = stack.stack_status(backend, Names("hbt"))
    assert state["outputs"]["AlarmTopicArn"] == topic["TopicArn"]
    assert {key: state["parameters"][key] for key in ("AlarmEmail", "BudgetUsd", "VBeatsQuery")} == {
        "AlarmEmail": "ward@example.org", "BudgetUsd": "20.0", "VBeatsQuery": stack.v_beats_query()}


def test_up_stops_before_creating_anything_when_a_quota_is_short(moto_aws, handler, fake_model_tar, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: {
        quotas.SERVERLESS_CONCURRENCY_NAME: ("L-SERVERLESS", 2.0)} if service == "sagemaker" else {})
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar())]) == 1
    err = capsys.readouterr().err
    assert (f"sagemaker quota '{quotas.SERVERLESS_CONCURRENCY_NAME}' (L-SERVERLESS): current 2, request an increase "
            "to 5") in err
    assert Backend(kind="aws").client("cloudformation").list_stacks()["StackSummaries"] == []


def test_up_tags_the_stack_for_cost_allocation(deployed):
    cfn = Backend(kind="aws").client("cloudformation")
    [stack_description] = cfn.describe_stacks(StackName="hbt-pipeline")["Stacks"]
    tags = {tag["Key"]: tag["Value"] for tag in stack_description["Tags"]}
    assert tags["hb:project"] == "heartbeat-monitor" and tags["hb:deployment"] == "hbt"


def test_status_says_an_instance_endpoint_without_autoscaling_has_a_fixed_count(moto_aws, handler, fake_model_tar,
                                                                                   capsys):
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar()), "--instance-type", "ml.c5.large"]) == 0
    capsys.readouterr()
    assert cli.main(["status", *FAST]) == 0
    assert "  scaling  none: a fixed 1 instance(s)" in capsys.readouterr().out
    assert cli.main(["down", *FAST]) == 0


def test_up_scales_an_instance_endpoint(moto_aws, handler, fake_model_tar, capsys):
    assert cli.main(["up", *FAST, "--model", str(fake_model_tar()), "--instance-type", "ml.c5.large",
                     "--instance-count", "2", "--max-instance-count", "5"]) == 0
    assert autoscaling.autoscaling_status(Backend(kind="aws"), "hbt-endpoint") == {
        "min": 2, "max": 5, "invocations_per_instance_per_minute": 600.0}
    capsys.readouterr()
    assert cli.main(["status", *FAST]) == 0
    assert "  scaling  2-5 instances, target 600 invocations per instance per minute, now 2" in capsys.readouterr().out
    assert cli.main(["down", *FAST]) == 0
    assert autoscaling.autoscaling_status(Backend(kind="aws"), "hbt-endpoint") is None
