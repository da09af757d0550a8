"""deploy/template.yaml: lint-clean, least privilege, and the mapping settings defined only once."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cfnlint.api import lint
from cfnlint.decode import decode_str

from hbcore.aws import stack
from hbcore.aws.names import Names
from hbcore.contracts import emf
from hbcore.localcloud import poller

CHECKOV = shutil.which("checkov")
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALARMS = {"IteratorAgeAlarm": ("AWS/Lambda", "IteratorAge"),
          "DeadLettersAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
          "FunctionErrorsAlarm": ("AWS/Lambda", "Errors"),
          "FunctionThrottlesAlarm": ("AWS/Lambda", "Throttles"),
          "Endpoint5xxAlarm": ("AWS/SageMaker", "Invocation5XXErrors")}

# The only statements allowed a "*" resource: the actions have no resource-level permissions.
WILDCARD_ALLOWED = {"EcrLoginHasNoResourceLevelPermissions", "PutMetricDataHasNoResourceLevelPermissions"}


@pytest.fixture(scope="module")
def template() -> dict:
    decoded, errors = decode_str(stack.TEMPLATE_PATH.read_text())
    assert not errors
    return decoded


def _statements(template: dict, role: str) -> dict[str, dict]:
    policy = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_cfn_lint_reports_nothing():
    matches = lint(stack.TEMPLATE_PATH.read_text(), regions=["us-east-1", "eu-west-1"])
    assert [str(match) for match in matches] == []


def test_mapping_properties_come_from_mapping_settings_only(template):
    properties = template["Resources"]["EventSourceMapping"]["Properties"]
    for name in stack.MAPPING_SETTINGS:
        assert properties[name] == {"Ref": f"Mapping{name}"}
    mapping_parameters = {key for key in template["Parameters"] if key.startswith("Mapping")}
    assert mapping_parameters == set(stack.mapping_parameters())
    assert all("Default" not in template["Parameters"][key] for key in mapping_parameters)


def test_mapping_settings_retry_until_the_record_age_bound_and_report_partial_failures():
    settings = stack.MAPPING_SETTINGS
    assert settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert settings["BisectBatchOnFunctionError"] is True
    # bounded, but an endpoint outage must not drop batches (tests/bench/test_faults.py): the record age ends
    # the retries
    assert settings["MaximumRetryAttempts"] == 10_000
    assert settings["MaximumRetryAttempts"] * poller.RETRY_BACKOFF_S > settings["MaximumRecordAgeInSeconds"]
    assert 60 <= settings["MaximumRecordAgeInSeconds"] <= 24 * 3600  # within the stream's retention


def test_mapping_sends_failures_to_the_dead_letter_queue(template):
    destination = template["Resources"]["EventSourceMapping"]["Properties"]["DestinationConfig"]
    assert destination == {"OnFailure": {"Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}}


def test_mapping_is_skipped_when_the_condition_is_off(template):
    assert template["Resources"]["EventSourceMapping"]["Condition"] == "WithMapping"
    assert template["Conditions"]["WithMapping"] == {"Fn::Equals": [{"Ref": "CreateEventSourceMapping"}, "true"]}


def test_stack_parameters_supply_every_template_parameter(template):
    parameters = stack.stack_parameters(Names("hb"), "bucket", "lambda/x/function.zip",
                                        "arn:aws:ecr:us-east-1:1:repository/r", stack.StackOptions(),
                                        mapping_in_template=True)
    assert set(parameters) == set(template["Parameters"])


def test_function_role_names_its_own_resources(template):
    statements = _statements(template, "FunctionRole")
    assert statements["ReadStream"]["Resource"] == {"Fn::GetAtt": ["Stream", "Arn"]}
    assert statements["WriteLogs"]["Resource"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}
    assert statements["SendDeadLetters"]["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert statements["InvokeEndpoint"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${EndpointName}"}
    assert statements["InvokeEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"


@pytest.mark.parametrize("role", ["FunctionRole", "EndpointRole"])
def test_no_wildcard_resources_except_where_aws_requires_them(template, role):
    def resources(statement: dict) -> list:
        return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]

    wildcards = {sid for sid, statement in _statements(template, role).items() if "*" in resources(statement)}
    assert wildcards <= WILDCARD_ALLOWED
    assert all(statement["Effect"] == "Allow" and "*" not in str(statement["Action"])
               for statement in _statements(template, role).values())


def test_log_group_has_a_retention_and_the_function_writes_to_it(template):
    resources = template["Resources"]
    assert resources["LogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert resources["Function"]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": "LogGroup"}
    assert resources["Function"]["Properties"]["Runtime"] == "python3.12"
    assert resources["Function"]["Properties"]["Environment"]["Variables"] == {
        "ENDPOINT_NAME": {"Ref": "EndpointName"},
        "ENDPOINT_TIMEOUT_S": {"Ref": "EndpointTimeoutSeconds"},
        "ENDPOINT_MAX_REQUEST_BYTES": {"Ref": "EndpointMaxRequestBytes"},
        emf.PATIENT_METRICS_ENV: {"Ref": "EmfPatientMetrics"},
    }


def test_the_stream_is_encrypted_with_the_kinesis_managed_key(template):
    assert template["Resources"]["Stream"]["Properties"]["StreamEncryption"] == {
        "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}


def test_the_log_group_takes_an_optional_kms_key(template):
    assert template["Resources"]["LogGroup"]["Properties"]["KmsKeyId"] == {
        "Fn::If": ["WithLogsKmsKey", {"Ref": "LogsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    options = stack.StackOptions(logs_kms_key_arn=KEY_ARN)
    assert _parameters(options)["LogsKmsKeyArn"] == options.logs_kms_key_arn
    assert _parameters(stack.StackOptions())["LogsKmsKeyArn"] == ""


def _parameters(options: stack.StackOptions) -> dict[str, str]:
    return stack.stack_parameters(Names("hb"), "bucket", "lambda/x/function.zip",
                                  "arn:aws:ecr:us-east-1:1:repository/r", options, mapping_in_template=True)


def test_scale_options_reach_the_mapping_and_the_function(template):
    resources = template["Resources"]
    assert resources["EventSourceMapping"]["Properties"]["ParallelizationFactor"] == {"Ref": "ParallelizationFactor"}
    assert resources["Function"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["WithReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    parameters = _parameters(stack.StackOptions(shard_count=4, parallelization_factor=3, reserved_concurrency=12))
    assert (parameters["ShardCount"], parameters["ParallelizationFactor"], parameters["ReservedConcurrency"]) == \
        ("4", "3", "12")
    assert _parameters(stack.StackOptions())["ReservedConcurrency"] == "-1"


@pytest.mark.parametrize(("alarm", "metric"), ALARMS.items())
def test_operations_alarms_watch_the_pipeline(template, alarm, metric):
    properties = template["Resources"][alarm]["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == metric
    assert "Condition" not in template["Resources"][alarm]  # always there; notify only with an address
    assert properties["AlarmActions"] == {
        "Fn::If": ["WithAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_endpoint_alarm_names_its_variant(template):
    dimensions = template["Resources"]["Endpoint5xxAlarm"]["Properties"]["Dimensions"]
    assert dimensions == [{"Name": "EndpointName", "Value": {"Ref": "EndpointName"}},
                          {"Name": "VariantName", "Value": "AllTraffic"}]


def test_the_v_beat_alarm_queries_every_patient_by_the_emf_names(template):
    alarm = template["Resources"]["VBeatsAlarm"]
    assert alarm["Condition"] == "WithAlarmEmail"
    [query] = alarm["Properties"]["Metrics"]
    assert query["Expression"] == {"Ref": "VBeatsQuery"}
    assert stack.v_beats_query() == ("SELECT SUM(VBeats) FROM SCHEMA(HeartbeatMonitor, Patient) GROUP BY Patient "
                                     "ORDER BY SUM() DESC LIMIT 500")
    parameters = _parameters(stack.StackOptions(alarm_email="a@b.org", v_beats_per_minute=10))
    assert parameters["VBeatsPerMinuteThreshold"] == "10"
    # The alarm's metric per patient is published only with the alarm (a custom metric per patient each).
    assert parameters["EmfPatientMetrics"] == emf.V_BEATS_METRIC
    assert _parameters(stack.StackOptions())["EmfPatientMetrics"] == ""


def test_the_topic_mails_the_address_and_the_budget_needs_it(template):
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert template["Conditions"]["WithBudget"]["Fn::And"][0] == {"Condition": "WithAlarmEmail"}
    with pytest.raises(ValueError, match="needs a positive amount and --alarm-email"):
        stack.StackOptions(budget_usd=20)


@pytest.mark.parametrize("options", [
    {"alarm_email": "a@b.org", "budget_usd": 25.0, "logs_kms_key_arn": KEY_ARN},
    {"shard_count": 0, "reserved_concurrency": 5, "parallelization_factor": 10},
])
def test_cfn_lint_reports_nothing_for_the_parameters_of_each_option(options):
    template = stack.TEMPLATE_PATH.read_text()
    matches = lint(template, regions=["us-east-1"])  # conditions are linted both ways already
    assert [str(match) for match in matches] == []
    assert set(_parameters(stack.StackOptions(**options))) == set(decode_str(template)[0]["Parameters"])


@pytest.fixture(scope="module")
def checkov_results() -> dict:
    if CHECKOV is None:
        pytest.skip("checkov is not installed: .ci/run installs it in its own venv (its pins conflict with "
                    "requirements.txt) and puts it on PATH")
    # --skip-download: no Bridgecrew/Prisma guidelines from the network (CI has none)
    result = subprocess.run([CHECKOV, "--file", str(stack.TEMPLATE_PATH), "--framework", "cloudformation",
                             "--output", "json", "--compact", "--skip-download"],
                            capture_output=True, text=True, timeout=300)
    return json.loads(result.stdout)["results"]


def test_checkov_passes_the_streams_encryption_checks(checkov_results):
    stream_checks = [check for check in checkov_results["passed_checks"] + checkov_results["failed_checks"]
                     if check["resource"] == "AWS::Kinesis::Stream.Stream"]
    assert {check["check_id"] for check in stream_checks} >= {"CKV_AWS_43"}
    assert [check["check_id"] for check in checkov_results["failed_checks"]
            if check["resource"] == "AWS::Kinesis::Stream.Stream"] == []


def test_checkov_fails_nothing_and_every_skipped_check_says_why(checkov_results):
    assert [(check["check_id"], check["resource"]) for check in checkov_results["failed_checks"]] == []
    skipped = {check["check_id"]: check["check_result"].get("suppress_comment", "")
               for check in checkov_results["skipped_checks"]}
    assert skipped and all(len(reason) > 40 for reason in skipped.values()), skipped
