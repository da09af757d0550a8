"""hbcore.aws.identity: whose account the AWS backend reaches, or exactly what is missing (no network)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from hbcore.aws.backend import Backend
from hbcore.aws.identity import CredentialsProblem, caller_identity


def test_the_caller_is_named_with_its_account_and_region():
    with mock_aws():
        found = caller_identity(Backend(kind="aws", region="eu-west-1"))

    assert found.account == "123456789012" and found.region == "eu-west-1"
    assert found.describe() == f"account 123456789012 as {found.arn} in eu-west-1"


def test_no_credentials_anywhere_says_so_and_where_to_read_up(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(CredentialsProblem) as raised:
        caller_identity(Backend(kind="aws", region="us-east-1"))

    assert raised.value.missing == "no credentials"
    assert str(raised.value).startswith("no AWS credentials found in the default credential chain")
    assert str(raised.value).endswith("(docs/aws.md, Prerequisites)")


def test_an_unknown_profile_is_named():
    with pytest.raises(CredentialsProblem, match=r"AWS profile 'nobody-hb' is not in ~/\.aws/config") as raised:
        caller_identity(Backend(kind="aws", profile="nobody-hb"))
    assert raised.value.missing == "profile not found"


def stubbed(monkeypatch, error_code: str | None = None, raises: Exception | None = None) -> Backend:
    """A backend whose STS client answers GetCallerIdentity with ``error_code`` (botocore's Stubber) or raises."""
    backend = Backend(kind="aws", region="us-east-1")
    client = boto3.Session(region_name="us-east-1").client("sts")
    stubber = Stubber(client)
    if error_code:
        stubber.add_client_error("get_caller_identity", service_error_code=error_code, http_status_code=403)
    stubber.activate()
    if raises is not None:
        def fail(**kwargs):
            raise raises
        monkeypatch.setattr(client, "get_caller_identity", fail)
    session = backend.session()
    monkeypatch.setattr(session, "client", lambda service, **kwargs: client)
    return backend


@pytest.mark.parametrize(("code", "missing", "words"), [
    ("InvalidClientTokenId", "credentials refused", "the access key is unknown or its secret is wrong"),
    ("SignatureDoesNotMatch", "credentials refused", "the access key is unknown or its secret is wrong"),
    ("ExpiredToken", "credentials expired", "have expired (ExpiredToken): renew them"),
])
def test_refused_and_expired_credentials_are_told_apart(monkeypatch, code, missing, words):
    with pytest.raises(CredentialsProblem) as raised:
        caller_identity(stubbed(monkeypatch, error_code=code))
    assert raised.value.missing == missing and words in str(raised.value)


def test_no_network_says_aws_cannot_be_reached(monkeypatch):
    offline = EndpointConnectionError(endpoint_url="https://sts.us-east-1.amazonaws.com/")
    with pytest.raises(CredentialsProblem, match="AWS STS in us-east-1 cannot be reached") as raised:
        caller_identity(stubbed(monkeypatch, raises=offline))
    assert raised.value.missing == "AWS unreachable"



def test_the_prerequisites_shown_beside_a_problem_are_docs_aws_md_s_section():
    from hbcore.aws.identity import prerequisites

    needs = prerequisites()
    assert needs is not None and needs.startswith("1. An AWS account and credentials")
    assert "\n## " not in needs  # the section alone


def test_no_doc_no_prerequisites(tmp_path):
    from hbcore.aws.identity import prerequisites

    assert prerequisites(tmp_path / "aws.md") is None
