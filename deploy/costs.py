"""What a deployment costs per hour while it sits there, from a small table of list prices.

Students pay for what they forget to delete, so ``up`` prints the idle cost and ``status`` repeats
it. Only the resources that bill by the hour are in the total; everything else bills per use and
costs nothing while no beats are streamed. Prices are us-east-1 on-demand list prices as of
``PRICES_AS_OF``; other regions differ by a few percent (check https://aws.amazon.com/pricing/).
"""

from __future__ import annotations

from dataclasses import dataclass

from hbcore.aws.endpoint import EndpointSpec
from hbcore.aws.stack import StackOptions

PRICES_AS_OF = "2025-10"
PRICES_REGION = "us-east-1"
HOURS_PER_MONTH = 730
KINESIS_SHARD_HOUR_USD = 0.015
KINESIS_ON_DEMAND_STREAM_HOUR_USD = 0.04
SAGEMAKER_INSTANCE_HOUR_USD = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.c5.large": 0.102,
    "ml.m5.xlarge": 0.23,
}
SERVERLESS_GB_SECOND_USD = 0.00002
DASHBOARD_MONTH_USD = 3.0
USAGE_BILLED = (
    "Lambda requests and duration",
    "Kinesis PUT payload units (on-demand: data in/out)",
    "serverless inference seconds",
    "CloudWatch Logs ingestion and Logs Insights data scanned",
    "SQS messages, S3 storage of a few MB",
)


@dataclass(frozen=True)
class CostLine:
    item: str
    usd_per_hour: float | None  # None: the price of this item is not in the table
    note: str = ""


def idle_cost_lines(stack: StackOptions | None, endpoint: EndpointSpec | None) -> list[CostLine]:
    """The hourly charges that run whether or not anything is streamed (None: not deployed)."""
    lines = []
    if stack is not None and stack.shard_count == 0:
        lines.append(CostLine("Kinesis on-demand stream", KINESIS_ON_DEMAND_STREAM_HOUR_USD, "per stream-hour"))
    elif stack is not None:
        lines.append(CostLine(f"Kinesis {stack.shard_count} shard(s)", KINESIS_SHARD_HOUR_USD * stack.shard_count,
                              f"${KINESIS_SHARD_HOUR_USD}/shard-hour"))
    if endpoint is not None and endpoint.serverless:
        per_second = SERVERLESS_GB_SECOND_USD * endpoint.memory_mb / 1024
        lines.append(CostLine(f"SageMaker serverless endpoint ({endpoint.memory_mb} MB)", 0.0,
                              f"idle is free; ${per_second:.5f} per second of inference"))
    elif endpoint is not None and endpoint.instance_type is not None:  # not serverless: instances
        price = SAGEMAKER_INSTANCE_HOUR_USD.get(endpoint.instance_type)
        lines.append(CostLine(f"SageMaker endpoint {endpoint.instance_count} x {endpoint.instance_type}",
                              None if price is None else price * endpoint.instance_count,
                              "bills every hour until `down`" if price is not None
                              else "price not in the table: see https://aws.amazon.com/sagemaker/pricing/"))
    if stack is not None and stack.dashboard:
        lines.append(CostLine("CloudWatch dashboard", DASHBOARD_MONTH_USD / HOURS_PER_MONTH,
                              f"${DASHBOARD_MONTH_USD:.0f}/month; the first 3 dashboards of an account are free"))
    return lines


def deployed_settings(state: dict) -> tuple[StackOptions | None, EndpointSpec | None]:
    """The cost-relevant settings of what ``deploy.status`` found (None for a part that is absent)."""
    stack_state, endpoint = state.get("stack"), state.get("endpoint")
    options = None
    if stack_state is not None:
        options = StackOptions(shard_count=int(stack_state["parameters"].get("ShardCount", 1)),
                               dashboard="DashboardName" in stack_state["outputs"])
    if endpoint is None:
        return options, None
    if endpoint.get("serverless"):
        serverless = endpoint["serverless"]
        return options, EndpointSpec(memory_mb=serverless["MemorySizeInMB"],
                                     max_concurrency=serverless["MaxConcurrency"])
    return options, EndpointSpec(instance_type=endpoint["instance_type"],
                                 instance_count=endpoint.get("instance_count") or 1)


def format_estimate(stack: StackOptions | None, endpoint: EndpointSpec | None) -> list[str]:
    """Printable lines: one per hourly item, the total, what bills per use, and the price date."""
    lines = idle_cost_lines(stack, endpoint)
    if not lines:
        return ["Estimated cost while idle: $0 (nothing that bills by the hour is deployed)"]
    width = max(len(line.item) for line in lines)
    out = [f"Estimated cost while idle ({PRICES_REGION} list prices as of {PRICES_AS_OF}):"]
    for line in lines:
        price = "     ?" if line.usd_per_hour is None else f"${line.usd_per_hour:.4f}/h"
        out.append(f"  {line.item:<{width}}  {price:>10}  {line.note}")
    known = sum(line.usd_per_hour for line in lines if line.usd_per_hour is not None)
    unknown = " + the items marked ?" if any(line.usd_per_hour is None for line in lines) else ""
    total = f"${known:.4f}/h"
    out.append(f"  {'total':<{width}}  {total:>10}{unknown}  (about ${known * HOURS_PER_MONTH:.2f} per month)")
    out.append(f"  billed per use, $0 while idle: {'; '.join(USAGE_BILLED)}")
    return out
