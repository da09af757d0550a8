"""hbcore.pipeline.Pipeline: the parts it makes for a backend."""

from __future__ import annotations

from hbcore import results
from hbcore.backend import Backend
from hbcore.pipeline import LOCAL_READER_LAG_S, Pipeline


def test_the_local_reader_re_reads_seconds_not_cloudwatchs_ingestion_lag(moto_url):
    with Pipeline(backend=Backend(kind="local", endpoint_url=moto_url)) as pipeline:
        assert pipeline.reader.lag_s == LOCAL_READER_LAG_S < results.LAG_S
