"""How big a deployment must be for N monitored patients: shards, parallelization, concurrency, endpoint.

The arithmetic of ``python -m deploy up --patients N``. Its inputs are AWS's fixed limits (a shard
takes 1,000 records and 1 MiB a second), the size of our stream record (from its contract), a
patient's beat rate, and two estimates marked as such: how long one invocation of the function
takes for a batch and how many invocations an endpoint instance serves. Check both against the
deployed pipeline's Lambda ``Duration`` and SageMaker ``ModelLatency`` metrics (the dashboard
shows them) and size again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hbcore.aws import endpoint as serving
from hbcore.aws.stack import BATCH_SIZE, MAX_PARALLELIZATION_FACTOR, StackOptions
from hbcore.contracts.stream_record import encode_records

BEATS_PER_PATIENT_S = 1.25  # 75 beats a minute
SHARD_RECORDS_PER_S = 1000
SHARD_BYTES_PER_S = 1_048_576
SHARD_UTILISATION = 0.9  # room for bursts before PutRecords is throttled
MAX_PROVISIONED_SHARDS = 50  # the template's bound; beyond it use an on-demand stream
# Lambda reads each shard about once a second, so a batch holds what a shard took in a second.
SHARD_READS_PER_S = 1.0
# Estimate: one invocation for a batch of 500 beats (decode, one endpoint call, 500 log lines) on a
# 256 MB function, which has about a seventh of a vCPU.
INVOCATION_S_PER_FULL_BATCH = 0.5
INVOCATION_BUSY_TARGET = 0.5  # share of the time each concurrent batch of a shard is busy
# New accounts have been given 10 concurrent invocations across all serverless endpoints; beyond
# that the plan takes instances, which also cost less under a steady load.
SERVERLESS_FRESH_ACCOUNT_CONCURRENCY = 10
ENDPOINT_INSTANCE_TYPE = "ml.c5.large"
MIN_ENDPOINT_INSTANCES = 2  # one per availability zone: an instance can be replaced at any time
AUTOSCALING_HEADROOM = 2  # maximum = twice the instances the steady load needs


def typical_record_bytes() -> int:
    """Bytes of a typical stream record: a beat of 110 values in (0, 1) and 77 padding zeros.

    About 41% of a beat window is padding; the values are written with at most 4 decimals.
    """
    rng = np.random.default_rng(0)
    beat = np.zeros((1, 187))
    beat[0, :110] = rng.uniform(0.0, 1.0, 110)
    [(_, _, data)] = encode_records("r1764331355-ab12", 1764331355.123, ["100"], [123456], [0], beat,
                                    np.array([342.9444]), np.array([[0.8167, 0.8056, 0.8111]]))
    return len(data)


@dataclass(frozen=True)
class SizingPlan:
    """The deployment for ``patients`` monitored patients, with the figures it was derived from."""

    patients: int
    beats_per_s: float
    record_bytes: int
    shard_beats_per_s: float  # what one shard carries at SHARD_UTILISATION
    stack: StackOptions
    endpoint: serving.EndpointSpec
    batch_beats: int
    invocations_per_s: float

    def lines(self) -> list[str]:
        """The plan and its reasons, for ``--dry-run`` and docs/aws.md."""
        stack = self.stack
        mib_per_s = self.beats_per_s * self.record_bytes / SHARD_BYTES_PER_S
        return [
            (f"Sizing for {self.patients:,} patients at {BEATS_PER_PATIENT_S} beats/s each: "
             f"{self.beats_per_s:,.0f} beats/s, {self.record_bytes:,} B records ({mib_per_s:.1f} MiB/s)"),
            (f"  shards       {stack.shard_count} (one carries {self.shard_beats_per_s:,.0f} beats/s: "
             f"{SHARD_RECORDS_PER_S:,} records/s and 1 MiB/s, at {SHARD_UTILISATION:.0%})"),
            (f"  batches      ~{self.batch_beats} beats each, {self.invocations_per_s:,.1f} invocations/s "
             f"(estimate: {INVOCATION_S_PER_FULL_BATCH} s per {BATCH_SIZE} beats)"),
            (f"  parallelism  {stack.parallelization_factor} concurrent batch(es) per shard -> "
             f"{stack.max_concurrent_batches} concurrent invocations, reserved"),
            f"  endpoint     {self.endpoint.describe()}",
        ]


def plan_for_patients(patients: int, *, beats_per_patient_s: float = BEATS_PER_PATIENT_S,
                      base: StackOptions | None = None) -> SizingPlan:
    """Shards, parallelization, reserved concurrency and the endpoint for ``patients`` patients.

    ``base`` supplies the options sizing does not decide (log retention, alarms, ...).
    """
    if patients < 1:
        raise ValueError(f"patients {patients}: expected at least 1")
    base = base or StackOptions()
    beats_per_s = patients * beats_per_patient_s
    record_bytes = typical_record_bytes()
    shard_beats_per_s = min(SHARD_RECORDS_PER_S, SHARD_BYTES_PER_S / record_bytes) * SHARD_UTILISATION
    shards = max(1, math.ceil(beats_per_s / shard_beats_per_s))
    if shards > MAX_PROVISIONED_SHARDS:
        raise ValueError(f"{patients:,} patients need {shards} shards, more than the template's "
                         f"{MAX_PROVISIONED_SHARDS}: use an on-demand stream (--shards 0) and size it by hand")
    batch_beats = max(1, min(BATCH_SIZE, math.ceil(beats_per_s / shards / SHARD_READS_PER_S)))
    batches_per_shard_s = beats_per_s / shards / batch_beats
    busy = batches_per_shard_s * INVOCATION_S_PER_FULL_BATCH * batch_beats / BATCH_SIZE
    factor = min(MAX_PARALLELIZATION_FACTOR, max(1, math.ceil(busy / INVOCATION_BUSY_TARGET)))
    concurrency = shards * factor
    invocations_per_s = beats_per_s / batch_beats
    if concurrency <= SERVERLESS_FRESH_ACCOUNT_CONCURRENCY:
        endpoint = serving.EndpointSpec(max_concurrency=max(concurrency, serving.DEFAULT_MAX_CONCURRENCY))
    else:
        target = serving.DEFAULT_INVOCATIONS_PER_INSTANCE_PER_MINUTE
        steady = math.ceil(invocations_per_s * 60 / target)
        initial = max(MIN_ENDPOINT_INSTANCES, steady)
        endpoint = serving.EndpointSpec(instance_type=ENDPOINT_INSTANCE_TYPE, instance_count=initial,
                                        max_instance_count=max(initial + 1, AUTOSCALING_HEADROOM * steady),
                                        invocations_per_instance_per_minute=target)
    stack = replace(base, shard_count=shards, parallelization_factor=factor, reserved_concurrency=concurrency)
    return SizingPlan(patients, beats_per_s, record_bytes, shard_beats_per_s, stack, endpoint, batch_beats,
                      invocations_per_s)
