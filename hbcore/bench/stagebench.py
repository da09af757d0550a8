"""``python -m hbcore bench stages``: the cost of each pipeline stage on its own, in this process.

- handler: ``lambda_handler`` on a 500-record Kinesis event with the endpoint call answered at once
  (parse, request body, log lines, summary), JSON records as the replay writes them and Kaggle CSV
  lines (``%.18e`` numbers, the exact path);
- replay: formatting 500 stream records, and the PutRecords rate of a replay at full speed into a
  moto server on 127.0.0.1 (plain moto 5.2.5, or with ``hbcore.localcloud.motopatches`` as the local cloud runs it);
- reader: parsing 100,000 prediction lines (each poll folds them into the kept rows and the
  totals), then one snapshot plus the dashboard's figures, first and after 2,000 more lines.

Real beat windows are used when ``$HB_DATA_DIR/kaggle_mitbih/mitbih_train_sample500.csv`` exists,
synthetic ones otherwise. Medians over repeats (the machine is noisy); a table, then a JSON line.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from hbcore import paths
from hbcore.app import dashboard
from hbcore.aws.names import DEFAULT_REGION
from hbcore.bench.table import median_seconds
from hbcore.contracts import inference, log_lines
from hbcore.contracts.beat_id import beat_id
from hbcore.data.dataset import BeatSet, meta_frame
from hbcore.stream import aggregations, reader, replay, tally

REPO = Path(__file__).resolve().parents[2]
BATCH = 500



def sample_beats(n: int) -> BeatSet:
    """``n`` beat windows: the real Kaggle sample rows (tiled) when present, else synthetic ones."""
    data_dir = paths.data_dir()
    path = data_dir / "kaggle_mitbih" / "mitbih_train_sample500.csv" if data_dir else None
    if path is not None and path.exists():
        from hbcore.data.kaggle import load_kaggle_csv

        rows = load_kaggle_csv(path)
        X, y = np.resize(rows.X, (n, rows.X.shape[1])), np.resize(rows.y, n)
    else:
        rng = np.random.default_rng(0)
        X = rng.random((n, 187)).astype(np.float32)
        X[:, 110:] = 0.0  # about 41% of a Kaggle row is zero padding
        y = (np.arange(n) % 5).astype(np.int8)
    t_s = np.arange(n) * 0.8
    meta = meta_frame({"record": np.full(n, "100"), "sample": np.rint(t_s * 360).astype(np.int64), "t_s": t_s,
                       "label": y.astype(np.int64), "rr_prev_s": np.full(n, 0.8), "rr_next_s": np.full(n, 0.8),
                       "rr_local_s": np.full(n, 0.8)})
    return BeatSet(X, y, meta)


# --- handler ----------------------------------------------------------------------------------------

class _HandlerModule(Protocol):
    """What the bench uses of a ``lambda_function`` loaded from its file."""

    runtime: Any  # the SageMaker runtime client

    def lambda_handler(self, event: dict[str, Any], context: Any) -> Any: ...


class _InstantEndpoint:
    """Stands in for the SageMaker runtime client: a canned answer, so only the handler is timed."""

    def __init__(self, n: int):
        self.body = inference.encode_response(np.tile([0.96, 0.01, 0.01, 0.01, 0.01], (n, 1)), "bench").encode()

    def invoke_endpoint(self, **request):
        return {"Body": io.BytesIO(self.body)}


def _kinesis_event(payloads: list[bytes]) -> dict:
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "100", "sequenceNumber": str(seq),
                    "data": base64.b64encode(payload).decode(), "approximateArrivalTimestamp": time.time()},
        "eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{seq}", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/hb-beats",
    } for seq, payload in enumerate(payloads, start=1)]}


def _fresh_handler() -> _HandlerModule:
    """``lambda_function`` imported anew with an endpoint name, its runtime client replaced."""
    os.environ.setdefault("ENDPOINT_NAME", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    spec = importlib.util.spec_from_file_location("lambda_function_bench", REPO / "lambda_function.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {REPO / 'lambda_function.py'}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    # A module executed from its file has no static type: this is the part of lambda_function used here.
    module = cast(_HandlerModule, loaded)
    module.runtime = _InstantEndpoint(BATCH)
    return module


def bench_handler(beats: BeatSet, repeats: int) -> dict[str, float]:
    """Milliseconds per 500-record batch through ``lambda_handler``, endpoint excluded."""
    handler = _fresh_handler()
    rows = np.arange(BATCH)
    json_event = _kinesis_event([data for _, _, data in
                                 replay.StreamSource(beats).records_for(rows, "bench", time.time())])
    csv_event = _kinesis_event([",".join(f"{value:.18e}" for value in row).encode() + b"\n" for row in beats.X[:BATCH]])
    figures = {}
    for name, event in (("json", json_event), ("kaggle_csv", csv_event)):
        with contextlib.redirect_stdout(io.StringIO()):
            response = handler.lambda_handler(event, None)
            if response["batchItemFailures"]:
                raise RuntimeError(f"bench event {name} failed in the handler: {response}")
            figures[f"handler_{name}_ms_per_{BATCH}"] = 1e3 * median_seconds(
                lambda: handler.lambda_handler(event, None), repeats)  # noqa: B023 (timed here)
    return figures


# --- replay -----------------------------------------------------------------------------------------

def bench_replay(beats: BeatSet, n_put: int, patched: bool, repeats: int) -> dict[str, float]:
    """Stream-record formatting time, and the put rate of a full-speed replay into moto on loopback."""
    source = replay.StreamSource(beats)
    figures = {f"replay_format_ms_per_{BATCH}": 1e3 * median_seconds(
        lambda: source.records_for(np.arange(BATCH), "bench", time.time()), repeats)}
    if n_put <= 0:
        return figures
    if patched:
        from hbcore.localcloud import motopatches

        motopatches.apply()
    from moto.server import ThreadedMotoServer

    from hbcore.aws.backend import Backend

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        backend = Backend(kind="local", endpoint_url=f"http://{host}:{port}")
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        backend.client("kinesis").create_stream(StreamName=stream, ShardCount=1)
        put_beats = replay.select_beats(sample_beats(n_put), order="as_is")
        run = replay.Replay(replay.kinesis_client(backend), stream, put_beats).start()
        progress = run.wait()
        figures["replay_put_beats_per_s"] = progress.sent / progress.elapsed_s
        figures["replay_put_beats"] = progress.sent
    finally:
        server.stop()
    return figures


# --- reader -----------------------------------------------------------------------------------------

class _LogRows:
    """A Logs client whose one query returns prepared rows, so the reader's own work is timed."""

    def __init__(self, rows: list[list[dict]]):
        self.rows = rows

    def start_query(self, **request):
        return {"queryId": "bench"}

    def get_query_results(self, queryId):
        rows, self.rows = self.rows, []
        return {"status": "Complete", "results": rows}


def _log_rows(start: int, count: int, base_ms: int) -> list[list[dict]]:
    rows = []
    for index in range(start, start + count):
        line = log_lines.Prediction(
            id=beat_id("bench", "100", index), run="bench", record=str(100 + index % 20), sample=index * 288,
            t=index * 0.8, label=index % 5, pred=(index * 7) % 5, pred_name="N", prob=0.9, model_version="bench",
            latency_ms=20.0 + index % 100, endpoint_ms=8.0, rr_local_s=0.8, seq=str(index),
            shard="shardId-000000000000")
        rows.append([{"field": "@timestamp", "value": str(base_ms + index // 2)},
                     {"field": "@message", "value": log_lines.encode_line(line) + "\n"},
                     {"field": "@logStream", "value": "bench"}])
    return rows


def _dashboard(snapshot: tally.ResultsSnapshot) -> None:
    dashboard.dashboard_figures(snapshot)
    aggregations.misclassified(snapshot.misclassified, limit=200)


def bench_reader(n_lines: int, repeats: int) -> dict[str, float]:
    """Parse time of ``n_lines`` prediction lines, then snapshot + aggregations, first and incremental."""
    base_ms = int(time.time() * 1000) - n_lines
    client = _LogRows(_log_rows(0, n_lines, base_ms))
    results_reader = reader.ResultsReader(client, "/aws/lambda/bench", start_s=base_ms / 1000 - 1,
                                          query_limit=n_lines + 10)
    started = time.perf_counter()
    results_reader.poll_once()
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    _dashboard(results_reader.snapshot())
    first_ms = (time.perf_counter() - started) * 1000.0
    incremental = []
    for repeat in range(repeats):
        client.rows = _log_rows(n_lines + repeat * 2000, 2000, base_ms)
        results_reader.poll_once(now_s=base_ms / 1000 + n_lines)
        started = time.perf_counter()
        _dashboard(results_reader.snapshot())
        incremental.append((time.perf_counter() - started) * 1000.0)
    return {
        "reader_parse_us_per_line": parse_s / n_lines * 1e6,
        f"reader_first_snapshot_and_aggregations_ms_{n_lines}": first_ms,
        f"reader_snapshot_and_aggregations_ms_{n_lines}_plus_2000": statistics.median(incremental),
    }


def run_bench_stages(repeats: int = 30, put_beats: int = 20_000, patched_moto: bool = False,
                     reader_lines: int = 100_000) -> dict[str, float]:
    """Each stage's cost on its own (handler, replay puts, reader parsing), to see which one bounds the pipeline."""
    beats = sample_beats(BATCH)
    figures: dict[str, float] = {}
    figures |= bench_handler(beats, repeats)
    figures |= bench_replay(beats, put_beats, patched_moto, repeats)
    figures |= bench_reader(reader_lines, max(3, repeats // 5))
    return figures
