"""deploy/costs.py: the idle estimate and the per-use estimate at a beat rate."""

from __future__ import annotations

import pytest

from deploy import costs
from hbcore.aws import endpoint as serving
from hbcore.aws import stack
from hbcore.contracts.log_lines import log_bytes_per_beat


def _usage(rate: float = 500.0, **stack_options) -> dict[str, float | None]:
    lines = costs.usage_cost_lines(stack.StackOptions(**stack_options), serving.EndpointSpec(), rate)
    return {line.item: line.usd_per_hour for line in lines}


def test_serverless_idle_cost_is_zero():
    lines = costs.idle_cost_lines(stack.StackOptions(shard_count=1), serving.EndpointSpec())
    assert [line.usd_per_hour for line in lines] == [costs.KINESIS_SHARD_HOUR_USD, 0.0, 5 * 0.10 / 730]


def test_instance_endpoint_cost_is_hourly():
    lines = costs.idle_cost_lines(stack.StackOptions(shard_count=0, dashboard=True),
                                  serving.EndpointSpec(instance_type="ml.m5.large", instance_count=2))
    assert [round(line.usd_per_hour, 4) for line in lines] == [0.04, 0.23, round(3 / 730, 4), round(0.5 / 730, 4)]


def test_unknown_instance_price_is_marked_not_guessed():
    text = "\n".join(costs.format_estimate(stack.StackOptions(), serving.EndpointSpec(instance_type="ml.p5.48xlarge")))
    assert "     ?" in text and "+ the items marked ?" in text


def test_nothing_deployed_costs_nothing():
    assert costs.format_estimate(None, None) == [
        "Estimated cost while idle: $0 (nothing that bills by the hour is deployed)"]


def test_logs_ingestion_follows_the_log_format():
    usage = _usage(500.0)
    expected = 500 * 3600 * log_bytes_per_beat(500, beats_per_s=500.0, patients=48) / 2**30 * 0.50
    assert usage["CloudWatch Logs ingestion"] == pytest.approx(expected)


def test_insights_scans_the_reader_window_per_poll_and_its_count_probe():
    # a 2 s poll re-reading 10 s of lag (+1 s): 6.5 times what is ingested; a probe of the last 121 s
    # every 5 polls (10 s): 12.1 times more
    assert costs.insights_scan_ratio() == pytest.approx(6.5 + 12.1)
    usage = _usage(500.0)
    assert usage["Logs Insights (Monitor page open)"] == pytest.approx(
        usage["CloudWatch Logs ingestion"] / 0.50 * 18.6 * 0.005)


def test_per_use_costs_grow_with_the_rate():
    slow, fast = _usage(100.0), _usage(400.0)
    assert fast["Kinesis PUT payload units"] == pytest.approx(4 * slow["Kinesis PUT payload units"])
    assert fast["SageMaker data in/out"] == pytest.approx(4 * slow["SageMaker data in/out"])


def test_kinesis_put_units_are_one_per_beat():
    assert _usage(500.0)["Kinesis PUT payload units"] == pytest.approx(500 * 3600 / 1e6 * 0.014)


def test_kpl_aggregates_share_put_units():
    units = costs.put_units_per_beat(aggregated=True)
    assert 0 < units < 0.1  # dozens of ~1.3 KB beats in an aggregate of a few 25 KB units
    aggregated = costs.usage_cost_lines(stack.StackOptions(), serving.EndpointSpec(), 500.0, aggregated=True)
    [line] = [line for line in aggregated if line.item == "Kinesis PUT payload units"]
    assert line.usd_per_hour == pytest.approx(_usage(500.0)["Kinesis PUT payload units"] * units)


def test_on_demand_streams_bill_data_instead_of_put_units():
    usage = _usage(500.0, shard_count=0)
    assert "Kinesis PUT payload units" not in usage and usage["Kinesis on-demand data in/out"] > 0


def test_emf_metrics_are_tiered():
    assert costs.custom_metrics_month_usd(4 * 48) == pytest.approx(192 * 0.30)
    assert costs.custom_metrics_month_usd(40_000) == pytest.approx(10_000 * 0.30 + 30_000 * 0.10)


def test_the_usage_estimate_adds_the_idle_charges():
    text = costs.format_usage_estimate(stack.StackOptions(), serving.EndpointSpec(), 500.0)
    per_use = sum(value or 0.0 for value in _usage(500.0).values())
    idle = sum(line.usd_per_hour or 0.0 for line in costs.idle_cost_lines(stack.StackOptions(), serving.EndpointSpec()))
    assert f"${per_use + idle:.4f}/h" in text[-1]


def test_a_rate_of_zero_is_refused():
    with pytest.raises(ValueError, match="rate 0"):
        _usage(0.0)
