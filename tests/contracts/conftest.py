"""Fixtures of the contract tests: the handler module as Lambda imports it, Kinesis records around
stream-record bytes, and beats whose records take every path of the writer and the handler."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000003"

# No example database in the work tree; no per-example deadline nor generation-speed check on a
# shared 2-core machine (a slow draw there says nothing about the code).
settings.register_profile("contracts", database=None, deadline=None, max_examples=150,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("contracts")


@pytest.fixture(scope="module")
def handler():
    """``lambda_function`` imported from its file as Lambda does, with an endpoint name and no AWS set-up
    (only its parsers and writers are called: its client is created but never used)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"ENDPOINT_NAME": "hb-contracts", "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:9"}.items():
            patch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("lambda_function_contracts", REPO / "lambda_function.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kinesis_record(handler):
    """Factory: the handler's typed view of a Kinesis record carrying ``data``, as Lambda delivers it."""

    def make(data: bytes, seq: int = 1, partition_key: str = "100"):
        return handler.KinesisRecord({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key, "sequenceNumber": str(seq),
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1764300000.0},
            "eventSource": "aws:kinesis", "eventID": f"{SHARD}:{seq}", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/hb-beats",
        })

    return make


@pytest.fixture
def varied_beats() -> dict:
    """Columns of six beats covering the writer's cases: MIT-BIH and Kaggle records (a colon in the
    record), labelled and not, times and RR intervals known and NaN, values in [0, 1] (the table),
    one above 1 and one below 0 (the ``repr`` path; the handler's exact path for the sign); pre-R
    segments known and not, contexts known, partly known (null values) and unknown."""
    rng = np.random.default_rng(11)
    beats = rng.random((6, 187))
    beats[:, 150:] = 0.0
    beats[0, :3] = (0.0, 1.0, 0.99995)  # the ends of the table, and a value rounding up to 1
    beats[4, 10] = 1.25
    beats[5, 20] = -0.125
    pre = rng.random((6, 36))
    pre[3] = np.nan  # a Kaggle row has none
    pre[0, :2] = (0.0, 1.0)
    context = rng.normal(0.0, 2.0, (6, 18))
    context[3] = np.nan
    context[1, [2, 5, 13]] = np.nan  # values not known yet (no template): null in the record
    return {
        "records": ["100", "100", "201", "kaggle:mitbih_test", "207", "207"],
        "samples": [370, 662, 1204, 17, 9000, 12000],
        "labels": [0, 4, 2, -1, 1, 3],
        "beats": beats,
        "t_s": np.array([1.02777777, 1.8388889, 3.3444444, np.nan, 25.0, 33.3333333]),
        "rr": np.array([[0.8, 0.81234567, 0.79], [0.7, np.nan, 0.75], [1.2, 0.6, 0.9],
                        [np.nan, np.nan, np.nan], [100.5, 0.4, 2.0], [0.5, 0.5, 0.5]]),
        "pre": pre,
        "context": context,
    }
