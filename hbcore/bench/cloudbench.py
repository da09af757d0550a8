"""``python -m hbcore bench cloud``: the local cloud's own figures, each measured on its own.

- moto's Kinesis put cost with 0 and 100k records already in the shard, plain moto 5.2.5 against
  ``hbcore.localcloud.motopatches`` (in-process backend calls, 500 records of ~1.5 KB per PutRecords, each
  variant in a fresh spawned process), and GetRecords of 100 near the end of the shard;
- the SageMaker runtime: ``invoke_endpoint`` round trips of 100 and 500 beats (the handler's JSON
  body) through boto3 to a local cloud child process serving a real ``model.tar.gz``;
- the poller: records/s drained from a pre-filled stream through a handler that returns at once
  and through one that prints a prediction-sized JSON line per record (what the logs cost);
- a soak: ``--beats`` stream records put at full speed by a replay-like writer while a mapping
  consumes them (printing one line per record), then the local cloud's peak memory, the records
  Kinesis still holds, and the end-to-end rate.

Medians over repeats (the machine is noisy). A table, then one JSON line.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from hbcore.aws.backend import Backend
from hbcore.bench.table import median_seconds
from hbcore.contracts import inference, log_lines, stream_record
from hbcore.localcloud.owner import LocalCloud, fetch_status

PUT_BATCH = 500
BENCH_HANDLERS = "hbcore.bench.cloudbench"
DRAIN_TIMEOUT_S = 600.0


# --- handlers the poller imports from this module ------------------------------------------------

def noop_handler(event: dict, context: object) -> dict:
    """Returns at once: the poller's own cost per record."""
    return {"batchItemFailures": []}


def print_handler(event: dict, context: object) -> dict:
    """One prediction line per record, as the handler writes it: the poller plus the log writes."""
    for record in event["Records"]:
        beat = stream_record.decode_record(base64.b64decode(record["kinesis"]["data"]))
        assert beat.id is not None  # the bench's records are the replay's, each with its id
        print(log_lines.encode_line(log_lines.Prediction(
            id=beat.id, run=beat.run, record=beat.record, sample=beat.sample, t=beat.t, label=beat.label, pred=0,
            pred_name="N", prob=0.9877, model_version="20260101T000000Z-0123abcd", latency_ms=12.3,
            endpoint_ms=6.8, rr_local_s=beat.rr_local_s, seq=record["kinesis"]["sequenceNumber"],
            shard=record["eventID"].split(":")[0])))
    return {"batchItemFailures": []}


# --- stream records as the replay writes them -----------------------------------------------------

def stream_records(n: int, run: str = "bench") -> list[tuple[str, bytes]]:
    """``n`` (partition key, data) pairs shaped as the replay's (~1.5 KB of JSON each)."""
    from hbcore.bench.stagebench import sample_beats
    from hbcore.stream.replay import StreamSource

    beats = sample_beats(min(n, 5000))
    source = StreamSource(beats)
    rows = np.arange(n) % len(beats)
    return [(key, data) for _, key, data in source.records_for(rows, run, time.time())]



# --- moto's put cost, before and after the patches ------------------------------------------------

def _moto_put_cost(patched: bool, fill: int, calls: int, queue) -> None:
    """In a fresh process: PutRecords and GetRecords cost on a shard already holding ``fill`` records."""
    if patched:
        from hbcore.localcloud import motopatches

        motopatches.apply()
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kinesis.models import Record, kinesis_backends

    backend = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.create_stream("bench", 1)
    shard = next(iter(backend.streams["bench"].shards.values()))
    entries = [{"PartitionKey": key, "Data": base64.b64encode(data).decode()}
               for key, data in stream_records(PUT_BATCH)]
    # The ignores below: moto annotates these parameters as str / datetime, yet its own responses layer
    # passes None for a parameter the request leaves out (no hash key, no ARN, no timestamp), as here.
    for number in range(1, fill + 1):  # filled directly: through put_record, plain moto would take minutes
        shard.records[number] = Record("k", entries[number % PUT_BATCH]["Data"], number, None)  # type: ignore[arg-type]
    shard.hb_last_sequence_number = fill  # type: ignore[attr-defined]  # motopatches' own, on moto's Shard
    backend.put_records(None, "bench", entries)  # type: ignore[arg-type]  # first call: CloudWatch's metric set-up
    put_s = median_seconds(lambda: backend.put_records(None, "bench", entries), calls)  # type: ignore[arg-type]
    iterator = backend.get_shard_iterator(None, "bench", shard.shard_id, "AFTER_SEQUENCE_NUMBER", fill,
                                          None)  # type: ignore[arg-type]
    get_s = median_seconds(lambda: backend.get_records(None, iterator, 100), calls)
    queue.put({"put_records_per_s": PUT_BATCH / put_s, "put_call_ms": put_s * 1000, "get_100_ms": get_s * 1000})


def bench_moto_puts(fill: int, calls: int) -> dict[str, float]:
    """Put and get cost at 0 and ``fill`` records, plain moto and patched, one spawned process each."""
    context = multiprocessing.get_context("spawn")
    figures: dict[str, float] = {}
    for patched in (False, True):
        for size in (0, fill):
            queue = context.Queue()
            process = context.Process(target=_moto_put_cost, args=(patched, size, calls, queue))
            process.start()
            result = queue.get(timeout=DRAIN_TIMEOUT_S)
            process.join()
            label = f"moto_{'patched' if patched else 'plain'}_{size // 1000}k"
            figures |= {f"{label}_{name}": value for name, value in result.items()}
    return figures


# --- the SageMaker runtime ------------------------------------------------------------------------

def default_model(folder: Path) -> Path:
    """A model.tar.gz trained on the Kaggle sample rows (or synthetic beats) with the default network."""
    from hbcore.bench.stagebench import sample_beats
    from hbcore.model.training import ModelParams, train_model, write_model_tar

    return write_model_tar(train_model(sample_beats(500), ModelParams(max_iter=5)), folder / "model.tar.gz")


def deploy(backend: Backend, endpoint: str, model_path: Path) -> None:
    """Upload and serve ``model_path`` at ``endpoint`` with plain boto3 calls."""
    s3, sagemaker = backend.client("s3"), backend.client("sagemaker")
    s3.create_bucket(Bucket="hb-bench")
    s3.upload_file(str(model_path), "hb-bench", "model.tar.gz")
    sagemaker.create_model(ModelName="bench", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                           PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "s3://hb-bench/model.tar.gz"})
    sagemaker.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName="bench")


def bench_invoke(backend: Backend, model_path: Path, repeats: int) -> dict[str, float]:
    """Median boto3 ``invoke_endpoint`` round trips of 100 and 500 beats (keep-alive, as the handler)."""
    from hbcore.bench.stagebench import sample_beats

    deploy(backend, "bench", model_path)
    runtime = backend.client("sagemaker-runtime")
    beats = sample_beats(500)
    figures = {}
    for n in (100, 500):
        body = inference.encode_request(stream_record.carried_beats(beats.X[:n]), np.full((n, 3), 0.8))
        call = lambda: runtime.invoke_endpoint(  # noqa: E731
            EndpointName="bench", Body=body, ContentType=inference.CONTENT_TYPE)["Body"].read()  # noqa: B023 (timed here)
        call()  # loads the model
        figures[f"invoke_{n}_beats_ms"] = median_seconds(call, repeats) * 1000
        figures[f"invoke_{n}_body_kb"] = len(body) / 1024
    return figures


# --- the poller -----------------------------------------------------------------------------------

def create_function(backend: Backend, handler: str) -> str:
    iam, lam = backend.client("iam"), backend.client("lambda")
    name = f"bench-{handler.rsplit('.', 1)[-1].replace('_', '-')}-{time.time_ns() % 10**9}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("placeholder.py", "")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler=handler,
                        Code={"ZipFile": archive.getvalue()}, Timeout=60)
    return name


def create_stream(backend: Backend, name: str, shards: int = 1) -> str:
    kinesis = backend.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def put_all(backend: Backend, stream_arn: str, records: list[tuple[str, bytes]]) -> None:
    kinesis = backend.client("kinesis")
    for start in range(0, len(records), PUT_BATCH):
        kinesis.put_records(StreamARN=stream_arn, Records=[
            {"PartitionKey": key, "Data": data} for key, data in records[start:start + PUT_BATCH]])


def mapping_records(moto_url: str, uuid: str) -> int:
    return next(m["records"] for m in fetch_status(moto_url)["mappings"] if m["uuid"] == uuid)


def drain(backend: Backend, stream_arn: str, handler: str, n: int, batch_size: int) -> float:
    """Seconds for a new mapping to push ``n`` waiting records through ``handler``."""
    function = create_function(backend, handler)
    started = time.perf_counter()
    uuid = backend.client("lambda").create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="TRIM_HORIZON", BatchSize=batch_size)["UUID"]
    moto_url = backend.endpoint_url
    assert moto_url is not None  # a local cloud's backend
    while mapping_records(moto_url, uuid) < n:
        if time.perf_counter() - started > DRAIN_TIMEOUT_S:
            raise RuntimeError(f"the poller did not drain {n} records within {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    backend.client("lambda").delete_event_source_mapping(UUID=uuid)
    return elapsed


def bench_poller(backend: Backend, n: int) -> dict[str, float]:
    """Records/s a mapping drains from one pre-filled shard, per handler and batch size."""
    records = stream_records(n, run="poller")
    figures = {}
    for handler, batch_size in ((f"{BENCH_HANDLERS}.noop_handler", 100), (f"{BENCH_HANDLERS}.print_handler", 100),
                                (f"{BENCH_HANDLERS}.print_handler", 500)):
        stream_arn = create_stream(backend, f"poller-{time.time_ns() % 10**9}")
        put_all(backend, stream_arn, records)
        elapsed = drain(backend, stream_arn, handler, n, batch_size)
        figures[f"poller_{handler.rsplit('.', 1)[-1]}_batch{batch_size}_records_per_s"] = n / elapsed
    return figures


# --- the soak: memory over a long run -------------------------------------------------------------

def bench_soak(beats: int, retention_s: float | None) -> dict[str, float]:
    """Put ``beats`` records at full speed while a mapping consumes them; memory and rates."""
    with LocalCloud(retention_s=retention_s) as cloud:
        backend = cloud.backend
        moto_url = backend.endpoint_url
        assert moto_url is not None  # a local cloud's backend
        stream_arn = create_stream(backend, "soak", shards=1)
        function = create_function(backend, f"{BENCH_HANDLERS}.print_handler")
        uuid = backend.client("lambda").create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName=function, StartingPosition="TRIM_HORIZON", BatchSize=100,
            FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
        records = stream_records(beats, run="soak")
        peak = {"retained": 0}
        started = time.perf_counter()
        writer = threading.Thread(target=put_all, args=(backend, stream_arn, records))
        writer.start()
        while writer.is_alive():
            peak["retained"] = max(peak["retained"], fetch_status(moto_url)["kinesis"]["retained_records"])
            time.sleep(0.5)
        put_s = time.perf_counter() - started
        while mapping_records(moto_url, uuid) < beats:
            if time.perf_counter() - started > DRAIN_TIMEOUT_S:
                raise RuntimeError(f"the soak did not finish within {DRAIN_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        total_s = time.perf_counter() - started
        status = fetch_status(moto_url)
    return {
        "soak_beats": beats,
        "soak_put_records_per_s": beats / put_s,
        "soak_end_to_end_records_per_s": beats / total_s,
        "soak_peak_rss_mb": status["peak_rss_mb"],
        "soak_final_rss_mb": status["rss_mb"],
        "soak_peak_retained_records": peak["retained"],
        "soak_trimmed_records": status["kinesis"]["trimmed_records"],
    }


def run_bench_cloud(repeats: int = 20, model: Path | str | None = None, moto_fill: int = 100_000,
                    poller_records: int = 20_000, beats: int = 100_000,
                    retention_s: float | None = None) -> dict[str, float]:
    """The local cloud's own costs; a zero count skips its figures (``model`` None: a small one is trained)."""
    figures: dict[str, float] = {}
    if moto_fill:
        figures |= bench_moto_puts(moto_fill, max(3, repeats // 3))
    with tempfile.TemporaryDirectory() as folder, LocalCloud() as cloud:
        model_path = Path(model) if model else default_model(Path(folder))
        figures |= bench_invoke(cloud.backend, model_path, repeats)
        if poller_records:
            figures |= bench_poller(cloud.backend, poller_records)
    if beats:
        figures |= bench_soak(beats, retention_s)
    return figures
