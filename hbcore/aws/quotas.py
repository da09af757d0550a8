"""The pre-flight check of the Service Quotas a fresh account may lack, before ``up`` creates anything.

New accounts have been given low quotas: 10 concurrent invocations across all serverless endpoints
of a region, a Lambda concurrency of 10 rather than 1,000, and 0 instances of some endpoint types.
A deployment that exceeds one fails late (an endpoint stuck creating, a mapping throttled for
ever), so ``up`` asks Service Quotas first and stops with what to request: the quota's name and
code, its current value and the value needed.

Service Quotas reports a quota the account has changed through ``list_service_quotas`` and the
defaults through ``list_aws_default_service_quotas``; an applied value wins. SageMaker quotas are
found by name (each instance type has its own, with its own code); Lambda's by its code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from hbcore.aws.backend import Backend

LAMBDA_SERVICE = "lambda"
LAMBDA_CONCURRENCY_CODE = "L-B99A9384"
LAMBDA_CONCURRENCY_NAME = "Concurrent executions"
# Lambda keeps this much of the account's concurrency unreserved: a reservation needs it on top.
LAMBDA_UNRESERVED_MINIMUM = 100
SAGEMAKER_SERVICE = "sagemaker"
SERVERLESS_CONCURRENCY_NAME = "Maximum total concurrency that can be allocated across all serverless endpoints"


def endpoint_instances_name(instance_type: str) -> str:
    return f"{instance_type} for endpoint usage"


def training_instances_name(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


@dataclass(frozen=True)
class QuotaNeed:
    """A quota a deployment needs at least ``needed`` of, and why."""

    service: str
    name: str
    needed: float
    reason: str
    code: str | None = None  # known up front (Lambda); SageMaker's are looked up by name


@dataclass(frozen=True)
class QuotaCheck:
    """A need against what Service Quotas said (``current`` None: the quota was not found)."""

    need: QuotaNeed
    code: str | None
    current: float | None

    @property
    def short(self) -> bool:
        return self.current is not None and self.current < self.need.needed

    def line(self) -> str:
        """What to request, or what was found."""
        need = self.need
        code = self.code or "code unknown"
        if self.current is None:
            return (f"{need.service} quota {need.name!r} ({code}): not found in Service Quotas, not checked "
                    f"(needed: {need.needed:g}, {need.reason})")
        verdict = "request an increase to" if self.short else "enough for"
        return (f"{need.service} quota {need.name!r} ({code}): current {self.current:g}, {verdict} "
                f"{need.needed:g} ({need.reason})")


class QuotaShortfall(RuntimeError):
    """One or more quotas are below what the deployment needs (the message lists what to request)."""


def deployment_needs(*, serverless_concurrency: int | None = None, endpoint_instance_type: str | None = None,
                     endpoint_instances: int = 0, lambda_concurrency: int | None = None,
                     lambda_reserved: int | None = None, training_instance_type: str | None = None) -> list[QuotaNeed]:
    """The quotas a deployment with these settings needs (pass only what it uses)."""
    needs = []
    if training_instance_type is not None:  # a new account often has 0 of them: the job would fail at once
        needs.append(QuotaNeed(SAGEMAKER_SERVICE, training_instances_name(training_instance_type), 1,
                               "one instance for the training job"))
    if serverless_concurrency is not None:
        needs.append(QuotaNeed(SAGEMAKER_SERVICE, SERVERLESS_CONCURRENCY_NAME, serverless_concurrency,
                               "the serverless endpoint's max concurrency, shared by every serverless endpoint "
                               "of the region"))
    if endpoint_instance_type is not None:
        needs.append(QuotaNeed(SAGEMAKER_SERVICE, endpoint_instances_name(endpoint_instance_type), endpoint_instances,
                               "the endpoint's largest instance count"))
    if lambda_reserved is not None:
        needs.append(QuotaNeed(LAMBDA_SERVICE, LAMBDA_CONCURRENCY_NAME, lambda_reserved + LAMBDA_UNRESERVED_MINIMUM,
                               f"{lambda_reserved} reserved for the function + the {LAMBDA_UNRESERVED_MINIMUM} "
                               "Lambda keeps unreserved", LAMBDA_CONCURRENCY_CODE))
    elif lambda_concurrency is not None:
        needs.append(QuotaNeed(LAMBDA_SERVICE, LAMBDA_CONCURRENCY_NAME, lambda_concurrency,
                               "one concurrent invocation per shard and parallelized batch", LAMBDA_CONCURRENCY_CODE))
    return needs


def list_quotas(client, service: str) -> dict[str, tuple[str, float]]:
    """Quota name -> (code, value) of ``service``: the defaults, overlaid by the account's applied values."""
    found: dict[str, tuple[str, float]] = {}
    for operation in ("list_aws_default_service_quotas", "list_service_quotas"):
        try:
            for page in client.get_paginator(operation).paginate(ServiceCode=service):
                for quota in page["Quotas"]:
                    found[quota["QuotaName"]] = (quota["QuotaCode"], float(quota["Value"]))
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchResourceException":
                raise
    return found


def check_quotas(backend: Backend, needs: Iterable[QuotaNeed]) -> list[QuotaCheck]:
    """Each need against the account's quota (one listing per service)."""
    client = backend.client("service-quotas")
    listed: dict[str, dict[str, tuple[str, float]]] = {}
    checks = []
    for need in needs:
        if need.service not in listed:
            listed[need.service] = list_quotas(client, need.service)
        by_name = listed[need.service]
        by_code = {code: (name, value) for name, (code, value) in by_name.items()}
        if need.code is not None and need.code in by_code:
            checks.append(QuotaCheck(need, need.code, by_code[need.code][1]))
        elif need.name in by_name:
            code, value = by_name[need.name]
            checks.append(QuotaCheck(need, code, value))
        else:
            checks.append(QuotaCheck(need, need.code, None))
    return checks


def require_quotas(checks: list[QuotaCheck]) -> None:
    """Raise ``QuotaShortfall`` listing every quota that is too low (one line each)."""
    short = [check for check in checks if check.short]
    if short:
        lines = "; ".join(check.line() for check in short)
        raise QuotaShortfall(f"quotas too low for this deployment, nothing was created: {lines}. Request the "
                             "increases in the Service Quotas console (or `aws service-quotas "
                             "request-service-quota-increase --service-code S --quota-code Q --desired-value N`)")
