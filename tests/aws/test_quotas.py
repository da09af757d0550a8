"""hbcore.aws.quotas: the pre-flight Service Quotas check, against moto and a stubbed client.

moto's Service Quotas knows no Lambda or SageMaker defaults and does not implement
``list_service_quotas``; the account's answers are given with botocore's Stubber instead.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from hbcore.aws import quotas
from hbcore.aws.backend import Backend

LAMBDA_DEFAULT = {"QuotaName": quotas.LAMBDA_CONCURRENCY_NAME, "QuotaCode": quotas.LAMBDA_CONCURRENCY_CODE,
                  "Value": 1000.0, "ServiceCode": "lambda"}
LAMBDA_FRESH = {**LAMBDA_DEFAULT, "Value": 10.0}
SERVERLESS_FRESH = {"QuotaName": quotas.SERVERLESS_CONCURRENCY_NAME, "QuotaCode": "L-SLS", "Value": 10.0,
                    "ServiceCode": "sagemaker"}
INSTANCES_NONE = {"QuotaName": quotas.endpoint_instances_name("ml.c5.large"), "QuotaCode": "L-C5L", "Value": 0.0,
                  "ServiceCode": "sagemaker"}


def _client_answering(listings: dict[tuple[str, str], list[dict]]):
    """A service-quotas client that answers each (operation, service) listing as given, then nothing."""
    client = boto3.client("service-quotas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for (method, service), quota_list in listings.items():
        stubber.add_response(method, {"Quotas": quota_list}, {"ServiceCode": service})
    stubber.activate()
    return client, stubber


def test_applied_values_win_over_the_defaults():
    client, stubber = _client_answering({("list_aws_default_service_quotas", "lambda"): [LAMBDA_DEFAULT],
                                         ("list_service_quotas", "lambda"): [LAMBDA_FRESH]})
    assert quotas.list_quotas(client, "lambda") == {quotas.LAMBDA_CONCURRENCY_NAME: ("L-B99A9384", 10.0)}
    stubber.assert_no_pending_responses()


def test_a_service_moto_knows_no_quotas_of_lists_nothing(moto_aws):
    client = Backend(kind="aws").client("service-quotas")
    with pytest.raises(NotImplementedError):  # moto 5.2.5 lacks list_service_quotas
        client.list_service_quotas(ServiceCode="lambda")
    with pytest.raises(client.exceptions.NoSuchResourceException):
        client.list_aws_default_service_quotas(ServiceCode="lambda")


def test_the_needs_of_a_serverless_deployment():
    needs = quotas.deployment_needs(serverless_concurrency=5, lambda_concurrency=1)
    assert [(need.service, need.name, need.needed) for need in needs] == [
        ("sagemaker", quotas.SERVERLESS_CONCURRENCY_NAME, 5), ("lambda", "Concurrent executions", 1)]


def test_a_reservation_needs_the_unreserved_hundred_on_top():
    [need] = quotas.deployment_needs(lambda_concurrency=34, lambda_reserved=34)
    assert (need.code, need.needed) == ("L-B99A9384", 134)


@pytest.fixture
def fresh_account(monkeypatch):
    """An account with new-account quotas: Lambda 10, serverless 10, no ml.c5.large for endpoints."""
    listed = {"lambda": {LAMBDA_FRESH["QuotaName"]: (LAMBDA_FRESH["QuotaCode"], 10.0)},
              "sagemaker": {SERVERLESS_FRESH["QuotaName"]: ("L-SLS", 10.0),
                            INSTANCES_NONE["QuotaName"]: ("L-C5L", 0.0)}}
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: listed.get(service, {}))


def test_a_fresh_account_is_told_what_to_request(moto_aws, fresh_account):
    needs = quotas.deployment_needs(endpoint_instance_type="ml.c5.large", endpoint_instances=6,
                                    lambda_concurrency=34, lambda_reserved=34)
    checks = quotas.check_quotas(Backend(kind="aws"), needs)
    with pytest.raises(quotas.QuotaShortfall) as raised:
        quotas.require_quotas(checks)
    message = str(raised.value)
    assert "sagemaker quota 'ml.c5.large for endpoint usage' (L-C5L): current 0, request an increase to 6" in message
    assert "lambda quota 'Concurrent executions' (L-B99A9384): current 10, request an increase to 134" in message
    assert message.startswith("quotas too low for this deployment, nothing was created")


def test_enough_quota_passes(moto_aws, fresh_account):
    checks = quotas.check_quotas(Backend(kind="aws"), quotas.deployment_needs(serverless_concurrency=5,
                                                                               lambda_concurrency=1))
    quotas.require_quotas(checks)
    assert [check.short for check in checks] == [False, False]
    assert checks[0].line().endswith("current 10, enough for 5 (the serverless endpoint's max concurrency, shared "
                                     "by every serverless endpoint of the region)")


def test_a_quota_not_found_is_reported_and_not_blocking(moto_aws, monkeypatch):
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: {})
    [check] = quotas.check_quotas(Backend(kind="aws"), quotas.deployment_needs(serverless_concurrency=5))
    quotas.require_quotas([check])
    assert check.current is None and "not found in Service Quotas, not checked" in check.line()


def test_training_needs_one_instance_of_its_type(moto_aws, monkeypatch):
    listed = {"sagemaker": {quotas.training_instances_name("ml.m5.large"): ("L-M5T", 0.0)}}
    monkeypatch.setattr(quotas, "list_quotas", lambda client, service: listed.get(service, {}))
    checks = quotas.check_quotas(Backend(kind="aws"), quotas.deployment_needs(training_instance_type="ml.m5.large"))
    with pytest.raises(quotas.QuotaShortfall, match=r"'ml.m5.large for training job usage' \(L-M5T\): current 0, "
                                                    r"request an increase to 1"):
        quotas.require_quotas(checks)
