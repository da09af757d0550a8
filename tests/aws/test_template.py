"""deploy/template.yaml: lint-clean, least privilege, and the mapping settings defined only once."""

from __future__ import annotations

import pytest
from cfnlint.api import lint
from cfnlint.decode import decode_str

from hbcore.aws import stack
from hbcore.aws.names import Names
from hbcore.localcloud import poller

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
    parameters = stack.stack_parameters(Names("hb"), "bucket", "lambda/x/function.zip", "us-east-1",
                                        stack.StackOptions(), mapping_in_template=True)
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
    }
