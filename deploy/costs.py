"""What a deployment costs per hour: while it sits there, and while beats stream at a given rate.

Students pay for what they forget to delete, so ``up`` prints the idle cost and ``status`` repeats
it. ``up`` (and ``--dry-run``) also prints the per-use costs at ``--rate`` beats a second: Logs
ingestion (the bytes a beat costs, from the log format's own ``log_bytes_per_beat``), the Logs
Insights scans of the Monitor page's reader (from its poll interval and window), Lambda requests
and duration, the endpoint's inference seconds and data, Kinesis PUT payload units, and the EMF
metrics of the patients. Prices are us-east-1 on-demand list prices as of ``PRICES_AS_OF``; other
regions differ by a few percent (check https://aws.amazon.com/pricing/). Free tiers are left out:
they shrink or end (accounts opened since July 2025 get credits instead of the old 12-month tier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hbcore.aws import sizing
from hbcore.aws.endpoint import EndpointSpec
from hbcore.aws.stack import BATCH_SIZE, StackOptions
from hbcore.contracts import emf
from hbcore.contracts.inference import CLASS_NAMES, CONTEXT_LENGTH, PRE_R_LENGTH, encode_request, encode_response
from hbcore.contracts.log_lines import log_bytes_per_beat
from hbcore.stream import reader, replay

PRICES_AS_OF = "2025-10"
PRICES_REGION = "us-east-1"
HOURS_PER_MONTH = 730
BYTES_PER_GB = 2**30
DEFAULT_RATE_BPS = 500.0
# The demo replays MIT-BIH: 48 records, each a patient of the EMF metrics.
DEFAULT_PATIENTS = 48
KINESIS_SHARD_HOUR_USD = 0.015
KINESIS_ON_DEMAND_STREAM_HOUR_USD = 0.04
KINESIS_PUT_UNITS_MILLION_USD = 0.014
KINESIS_PUT_UNIT_BYTES = 25 * 1024  # a record is billed one unit per started 25 KB
KINESIS_ON_DEMAND_IN_GB_USD = 0.08
KINESIS_ON_DEMAND_OUT_GB_USD = 0.04
LOGS_INGESTION_GB_USD = 0.50
LOGS_INSIGHTS_GB_SCANNED_USD = 0.005
LAMBDA_REQUESTS_MILLION_USD = 0.20
LAMBDA_ARM_GB_SECOND_USD = 0.0000133334
SAGEMAKER_DATA_GB_USD = 0.016  # data processed in and out, serverless and real-time
# Custom metrics a month: the first 10,000 of an account, then the next 240,000.
CUSTOM_METRIC_TIERS = ((10_000, 0.30), (240_000, 0.10))
ALARM_MONTH_USD = 0.10  # a standard-resolution alarm on one metric
# Estimate: seconds of serverless inference a batch of 500 beats is billed (parse ~650 KB of JSON,
# the numpy forward pass, the answer); check against the endpoint's ModelLatency metric.
SERVERLESS_S_PER_FULL_BATCH = 0.15
SAGEMAKER_INSTANCE_HOUR_USD = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.c5.large": 0.102,
    "ml.m5.xlarge": 0.23,
}
SERVERLESS_GB_SECOND_USD = 0.00002
DASHBOARD_MONTH_USD = 3.0
OPERATIONS_ALARMS = 5  # iterator age, dead letters, errors, throttles, endpoint 5xx (deploy/template.yaml)
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
    if stack is not None:
        lines.append(CostLine(f"CloudWatch alarms ({OPERATIONS_ALARMS})",
                              OPERATIONS_ALARMS * ALARM_MONTH_USD / HOURS_PER_MONTH, f"${ALARM_MONTH_USD}/alarm-month"))
    if stack is not None and stack.alarm_email is not None:
        lines.append(CostLine("V-beat alarm (Metrics Insights)", None,
                              "billed per metric it evaluates: see https://aws.amazon.com/cloudwatch/pricing/"))
    return lines


def _typical_inference_bytes() -> tuple[int, int]:
    """(request, response) bytes per beat of the endpoint's JSON, from the inference contract."""
    rng = np.random.default_rng(0)
    beats = np.round(rng.uniform(0.0, 1.0, (BATCH_SIZE, 187)), 4)
    beats[:, 110:] = 0.0
    rr = np.full((BATCH_SIZE, 3), 0.8167)
    pre = np.round(rng.uniform(0.0, 1.0, (BATCH_SIZE, PRE_R_LENGTH)), 4)  # what a MIT-BIH beat carries too
    context = np.round(rng.uniform(0.0, 2.0, (BATCH_SIZE, CONTEXT_LENGTH)), 4)
    probabilities = np.full((BATCH_SIZE, len(CLASS_NAMES)), 0.0001)
    probabilities[:, 0] = 0.9996
    request = len(encode_request(beats, rr, pre, context))
    response = len(encode_response(probabilities, "m-20261202-abcdef12").encode())
    return math.ceil(request / BATCH_SIZE), math.ceil(response / BATCH_SIZE)


def insights_scan_ratio() -> float:
    """Bytes the Monitor page's reader scans per byte ingested: each poll reads ``lag_s`` again, and
    every ``PROBE_EVERY_POLLS`` polls a count probe scans the last ``LAG_MAX_S`` (hbcore.stream.reader).
    Re-reads of short invocations come on top, only when events come late."""
    window_s = reader.POLL_INTERVAL_S + reader.LAG_S + 1  # each query: last end - lag, to now + 1 s
    probe_s = (reader.LAG_MAX_S + 1) / reader.PROBE_EVERY_POLLS
    return (window_s + probe_s) / reader.POLL_INTERVAL_S


def put_units_per_beat(aggregated: bool) -> float:
    """Kinesis PUT payload units a beat costs: one record each, or its share of a KPL aggregate
    (``hbcore.stream.replay``'s bounds: at most MAX_BEATS_PER_AGGREGATE beats, MAX_AGGREGATE_BYTES)."""
    if not aggregated:
        return 1.0
    framed = sizing.typical_record_bytes() + replay.AGGREGATE_RECORD_OVERHEAD_BYTES
    beats = min(replay.MAX_BEATS_PER_AGGREGATE, replay.MAX_AGGREGATE_BYTES // framed)
    return math.ceil(beats * framed / KINESIS_PUT_UNIT_BYTES) / beats


def usage_cost_lines(stack: StackOptions, endpoint: EndpointSpec, rate_bps: float,
                     patients: int = DEFAULT_PATIENTS, *, aggregated: bool = False) -> list[CostLine]:
    """The hourly charges of streaming ``rate_bps`` beats a second from ``patients`` patients
    (``aggregated``: the replay packs beats into KPL aggregates, ``--aggregate``)."""
    if rate_bps <= 0:
        raise ValueError(f"rate {rate_bps} beats/s: expected a positive rate")
    beats_per_h = rate_bps * 3600
    shards = max(1, stack.shard_count)
    batch = max(1, min(BATCH_SIZE, math.ceil(rate_bps / shards / sizing.SHARD_READS_PER_S)))
    invocations_per_h = beats_per_h / batch
    log_bytes = log_bytes_per_beat(batch, beats_per_s=rate_bps, patients=patients)
    logs_gb_per_h = beats_per_h * log_bytes / BYTES_PER_GB
    scanned_gb_per_h = logs_gb_per_h * insights_scan_ratio()
    lambda_s = invocations_per_h * sizing.INVOCATION_S_PER_FULL_BATCH * batch / BATCH_SIZE
    request_bytes, response_bytes = _typical_inference_bytes()
    data_gb_per_h = beats_per_h * (request_bytes + response_bytes) / BYTES_PER_GB
    lines = [
        CostLine("CloudWatch Logs ingestion", logs_gb_per_h * LOGS_INGESTION_GB_USD,
                 f"{log_bytes:.0f} B/beat ({batch}-beat batches), {logs_gb_per_h:.3f} GB/h"),
        CostLine("Logs Insights (Monitor page open)", scanned_gb_per_h * LOGS_INSIGHTS_GB_SCANNED_USD,
                 f"{scanned_gb_per_h:.3f} GB/h scanned: a poll every {reader.POLL_INTERVAL_S:g} s "
                 f"re-reads {reader.LAG_S} s, a count probe every {reader.PROBE_EVERY_POLLS} polls"
                 f" {reader.LAG_MAX_S} s"),
        CostLine("Lambda requests", invocations_per_h / 1e6 * LAMBDA_REQUESTS_MILLION_USD,
                 f"{invocations_per_h:,.0f} invocations/h"),
        CostLine("Lambda duration (arm64)",
                 lambda_s * stack.function_memory_mb / 1024 * LAMBDA_ARM_GB_SECOND_USD,
                 f"{stack.function_memory_mb} MB, est. {sizing.INVOCATION_S_PER_FULL_BATCH} s per {BATCH_SIZE} beats"),
    ]
    if endpoint.serverless:
        serverless_s = invocations_per_h * SERVERLESS_S_PER_FULL_BATCH * batch / BATCH_SIZE
        lines.append(CostLine("SageMaker serverless inference",
                              serverless_s * endpoint.memory_mb / 1024 * SERVERLESS_GB_SECOND_USD,
                              f"est. {SERVERLESS_S_PER_FULL_BATCH} s per {BATCH_SIZE} beats at "
                              f"{endpoint.memory_mb} MB"))
    lines.append(CostLine("SageMaker data in/out", data_gb_per_h * SAGEMAKER_DATA_GB_USD,
                          f"{request_bytes + response_bytes} B/beat, {data_gb_per_h:.3f} GB/h"))
    if stack.shard_count == 0:
        stream_gb_per_h = beats_per_h * sizing.typical_record_bytes() / BYTES_PER_GB
        lines.append(CostLine("Kinesis on-demand data in/out",
                              stream_gb_per_h * (KINESIS_ON_DEMAND_IN_GB_USD + KINESIS_ON_DEMAND_OUT_GB_USD),
                              f"{stream_gb_per_h:.3f} GB/h"))
    else:
        units = put_units_per_beat(aggregated)
        lines.append(CostLine("Kinesis PUT payload units", beats_per_h * units / 1e6 * KINESIS_PUT_UNITS_MILLION_USD,
                              f"{units:.3g} a beat ({'KPL aggregates' if aggregated else 'a record per beat'})"))
    per_patient = 1 if stack.alarm_email else 0  # VBeats, for the V-beat alarm (hbcore.aws.stack)
    metrics = len(emf.METRICS) + patients * per_patient
    lines.append(CostLine(f"EMF metrics ({patients} patients)", custom_metrics_month_usd(metrics) / HOURS_PER_MONTH,
                          f"{metrics:,} custom metrics: {len(emf.METRICS)} fleet totals"
                          f" + {per_patient} a patient, prorated by the hour"))
    return lines


def custom_metrics_month_usd(metrics: int) -> float:
    """A month of ``metrics`` custom metrics at the tiered price."""
    total, left = 0.0, metrics
    for size, price in CUSTOM_METRIC_TIERS:
        total += min(left, size) * price
        left -= min(left, size)
    if left > 0:
        raise ValueError(f"{metrics:,} custom metrics: beyond the price table")
    return total


def format_usage_estimate(stack: StackOptions, endpoint: EndpointSpec, rate_bps: float,
                          patients: int = DEFAULT_PATIENTS, *, aggregated: bool = False) -> list[str]:
    """Printable per-use lines at ``rate_bps``, then the total per hour with the idle charges."""
    usage = usage_cost_lines(stack, endpoint, rate_bps, patients, aggregated=aggregated)
    idle = idle_cost_lines(stack, endpoint)
    width = max(len(line.item) for line in usage + idle)
    out = [(f"Estimated cost while streaming {rate_bps:g} beats/s ({PRICES_REGION} list prices as of "
            f"{PRICES_AS_OF}, no free tier):")]
    for line in usage:
        price = "     ?" if line.usd_per_hour is None else f"${line.usd_per_hour:.4f}/h"
        out.append(f"  {line.item:<{width}}  {price:>10}  {line.note}")
    per_use = sum(line.usd_per_hour or 0.0 for line in usage)
    idle_known = sum(line.usd_per_hour or 0.0 for line in idle)
    unknown = " + the items marked ?" if any(line.usd_per_hour is None for line in usage + idle) else ""
    out.append(f"  {'per use':<{width}}  {f'${per_use:.4f}/h':>10}")
    out.append(f"  {'total with idle':<{width}}  {f'${per_use + idle_known:.4f}/h':>10}{unknown}  "
               f"(idle ${idle_known:.4f}/h + per use)")
    return out


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
