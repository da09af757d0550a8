"""hbcore.app.pipeline.Pipeline: the parts it makes for a backend."""

from __future__ import annotations

import os
import signal

from hbcore.app.pipeline import LOCAL_READER_LAG_S, Pipeline
from hbcore.aws.backend import Backend
from hbcore.stream import reader


def test_the_local_reader_re_reads_seconds_not_cloudwatchs_ingestion_lag(moto_url):
    with Pipeline(backend=Backend(kind="local", endpoint_url=moto_url)) as pipeline:
        assert pipeline.reader.lag_s == LOCAL_READER_LAG_S < reader.LAG_S


def test_a_dead_local_cloud_is_reported_then_started_again_by_the_next_action():
    with Pipeline() as pipeline:
        pipeline.ensure_stack()
        cloud = pipeline._cloud
        os.kill(cloud.pid, signal.SIGKILL)
        cloud._process.wait(10)

        status = pipeline.status()
        assert status["backend"].state == "error" and "stopped" in status["backend"].detail
        assert status["stack"].state == status["endpoint"].state == "missing"
        assert not cloud.running  # looking never restarts it

        outputs = pipeline.ensure_stack()
        assert cloud.running and outputs["StreamName"] == pipeline.names.stream
        assert pipeline.status()["backend"].state == "ok"
