"""Where boto3 clients point: the embedded local cloud or real AWS.

This is the only place endpoint URLs are applied, so the handler, the replay, the reader and the
deploy code are the same plain boto3 calls on both backends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from hbcore.aws.names import DEFAULT_REGION

# Dummy credentials for the local cloud: moto accepts any, and they keep boto3 from searching the
# user's real credential chain (a local run must never touch an AWS account).
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_CLIENT_LOCK = threading.RLock()
CLIENT_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=20)


HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title")  # how a web page's body begins


class NotAnAwsResponse(BotoCoreError):
    """The endpoint answered with a web page: a proxy, a captive portal or a wrong URL, not AWS."""

    fmt = ("{operation}: the endpoint answered HTTP {status} with an HTML page, not an AWS response "
           "(a proxy or a captive portal in the way, or a wrong endpoint URL?)")


def refuse_html_pages(operation_model, response_dict: dict, **kwargs: Any) -> None:
    """Fail a call answered with HTML before botocore parses it (botocore ``before-parse`` hook).

    Parsed as an AWS answer, such a page becomes an error whose message quotes the whole body (which
    a proxy may fill with the request's headers), a ``KeyError`` deep in the XML parser, or a
    ``ClientError`` with no error code. An HTTP 5xx page is left to botocore: it becomes a
    ``ClientError`` naming the status, which the callers' retries treat as transient.
    """
    body = response_dict.get("body")
    status = int(response_dict.get("status_code") or 0)
    if status >= 500 or not isinstance(body, bytes):  # streamed bodies (S3 objects, model answers) are data
        return
    # By the body, not the Content-Type: moto (Werkzeug) labels S3's empty 404s and XML errors text/html.
    if body.lstrip()[:15].lower().startswith(HTML_STARTS):
        raise NotAnAwsResponse(operation=operation_model.name, status=status)


@dataclass(frozen=True)
class Backend:
    """A target for boto3: ``kind="local"`` (moto + local endpoint server) or ``kind="aws"``."""

    kind: str = "local"
    region: str = DEFAULT_REGION
    profile: str | None = None
    endpoint_url: str | None = None
    sagemaker_runtime_url: str | None = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def session(self) -> boto3.Session:
        """One boto3 session per backend (sessions are not thread-safe to create concurrently)."""
        with _CLIENT_LOCK:
            return self._session()

    def _session(self) -> boto3.Session:
        if "session" not in self._cache:
            if self.is_local:
                session = boto3.Session(region_name=self.region, **LOCAL_CREDENTIALS)
            else:
                session = boto3.Session(region_name=self.region, profile_name=self.profile)
            session.events.register("before-parse", refuse_html_pages)
            self._cache["session"] = session
        return self._cache["session"]

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint URL for a service, or None to let boto3 resolve the AWS one."""
        if service == "sagemaker-runtime":
            return self.sagemaker_runtime_url
        return self.endpoint_url

    def client(self, service: str, **kwargs: Any):
        """A boto3 client for ``service`` on this backend.

        Clients with the default configuration are made once and shared (boto3 clients are
        thread-safe, and making one costs tens of milliseconds); ``kwargs`` make a fresh one.
        """
        if kwargs:
            kwargs.setdefault("config", CLIENT_CONFIG)
            return self.session().client(service, endpoint_url=self.endpoint_for(service), **kwargs)
        with _CLIENT_LOCK:
            key = ("client", service)
            if key not in self._cache:
                self._cache[key] = self.session().client(
                    service, endpoint_url=self.endpoint_for(service), config=CLIENT_CONFIG)
            return self._cache[key]

    def environment(self) -> dict[str, str]:
        """Environment variables that point a child process's boto3 at this backend."""
        env = {"AWS_DEFAULT_REGION": self.region}
        if self.is_local:
            env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
            if self.endpoint_url:
                env["AWS_ENDPOINT_URL"] = self.endpoint_url
            if self.sagemaker_runtime_url:
                env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.sagemaker_runtime_url
        elif self.profile:
            env["AWS_PROFILE"] = self.profile
        return env
