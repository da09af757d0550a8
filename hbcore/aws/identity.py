"""Whose AWS account the app would use, checked before anything is created in it.

Choosing the AWS backend makes no call: boto3 looks for credentials only when a client first signs
a request, so without any the demo used to fail half-way, as a bare ``NoCredentialsError`` under a
progress bar at 100 %. :func:`caller_identity` asks STS ``GetCallerIdentity`` (needs no permission,
creates nothing, costs nothing) and either names the account, the caller and the region, or says
exactly what is missing and where docs/aws.md's prerequisites explain it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from hbcore.aws.backend import Backend
from hbcore.aws.redaction import user_message
from hbcore.errors import HbError

PREREQUISITES = "docs/aws.md, Prerequisites"
AWS_DOC = Path(__file__).resolve().parents[2] / "docs" / "aws.md"
PREREQUISITES_HEADING = "## Prerequisites"
# One quick attempt: the check runs when the presenter picks AWS and must answer in seconds, online or not.
STS_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})
REFUSED_CREDENTIALS = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                                 "AuthFailure", "InvalidAccessKeyId"})
EXPIRED_CREDENTIALS = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


@dataclass(frozen=True)
class Identity:
    """The AWS caller behind the backend's credentials."""

    account: str
    arn: str
    region: str
    profile: str | None

    def describe(self) -> str:
        """One line for the status panel: account, caller and region."""
        profile = f", profile {self.profile}" if self.profile else ""
        return f"account {self.account} as {self.arn} in {self.region}{profile}"


class CredentialsProblem(HbError):
    """The AWS backend cannot be used: no credentials, refused or expired ones, or no way to reach AWS.

    ``missing`` names what is wrong in a few words (the status panel's state), the message says
    what to do.
    """

    def __init__(self, missing: str, message: str):
        super().__init__(message)
        self.missing = missing


def caller_identity(backend: Backend) -> Identity:
    """Ask STS who the backend's credentials belong to; :class:`CredentialsProblem` says why not."""
    profile = f"profile {backend.profile!r}" if backend.profile else "the default credential chain"
    try:
        answer = backend.session().client("sts", config=STS_CONFIG).get_caller_identity()
    except ProfileNotFound:
        raise CredentialsProblem(
            "profile not found", f"AWS profile {backend.profile!r} is not in ~/.aws/config or ~/.aws/credentials: "
            f"create it (`aws configure --profile {backend.profile}`) or clear the profile in Settings "
            f"({PREREQUISITES})") from None
    except NoCredentialsError:
        raise CredentialsProblem(
            "no credentials", f"no AWS credentials found in {profile} (environment variables AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, ~/.aws/config, SSO, an instance role): run `aws configure` "
            f"or `aws sso login`, then check again ({PREREQUISITES})") from None
    except PartialCredentialsError as error:
        raise CredentialsProblem(
            "incomplete credentials", f"incomplete AWS credentials in {profile}: {user_message(error)} "
            f"({PREREQUISITES})") from None
    except (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError):
        raise CredentialsProblem(
            "SSO session expired", f"the AWS SSO session of {profile} is missing or expired: run "
            f"`aws sso login{' --profile ' + backend.profile if backend.profile else ''}` ({PREREQUISITES})") from None
    except NoRegionError:
        raise CredentialsProblem("no region", f"no AWS region set: choose one in Settings ({PREREQUISITES})") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError):
        raise CredentialsProblem(
            "AWS unreachable", f"AWS STS in {backend.region} cannot be reached (no network, or a proxy in the way): "
            "the AWS backend needs internet; the local cloud does not") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in REFUSED_CREDENTIALS:
            raise CredentialsProblem(
                "credentials refused", f"AWS refused the credentials of {profile} ({code}): the access key is "
                f"unknown or its secret is wrong ({PREREQUISITES})") from None
        if code in EXPIRED_CREDENTIALS:
            raise CredentialsProblem(
                "credentials expired", f"the AWS credentials of {profile} have expired ({code}): renew them "
                f"(`aws sso login`, or new session keys) ({PREREQUISITES})") from None
        raise CredentialsProblem("STS error", f"AWS STS refused GetCallerIdentity: {user_message(error)}") from None
    except BotoCoreError as error:
        raise CredentialsProblem("AWS error", f"checking the AWS credentials failed: {user_message(error)}") from None
    return Identity(answer["Account"], answer["Arn"], backend.region, backend.profile)


def prerequisites(doc: Path = AWS_DOC) -> str | None:
    """The Prerequisites section of docs/aws.md (markdown, without its heading), for the app to show
    beside a credentials problem; None when the file is not there (an installed package)."""
    try:
        text = doc.read_text()
    except OSError:
        return None
    _, found, rest = text.partition(PREREQUISITES_HEADING + "\n")
    return rest.split("\n## ", 1)[0].strip() if found else None
