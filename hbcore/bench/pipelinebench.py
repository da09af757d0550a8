"""``python -m hbcore bench pipeline``: the end-to-end targets, measured on the local cloud.

Two phases, each run ``--repeats`` times in a fresh local cloud (so that a run's memory is its own),
after a warm-up replay that loads the model in the endpoint server and imports the handler:

- throughput: ``--beats`` MIT-BIH beats (100,000) put as fast as the stream takes them, through
  Kinesis → poller → ``lambda_function`` → endpoint → CloudWatch Logs, until the results reader has
  read every one. ``read_beats_per_s`` = beats / (first put → last beat read): target ≥ 2,000 with
  0 lost and 0 duplicate predictions; the local cloud's peak resident memory: target ≤ 1.5 GB.
- latency: ``--latency-rate`` beats/s (500) for LATENCY_S seconds; put → logged p50 / p95 (the
  handler's ``latency_ms``: now − ``sent_at``): target p95 ≤ 1 s.

Every run also reports the demo's accounting (``demo.account``: sent, predicted, rejected, lost,
duplicates, agreement with the model called directly, accuracy). Medians over the repeats go into
the table and the JSON line; the runs themselves are in the JSON line too.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from hbcore.app import demo
from hbcore.app.pipeline import Pipeline
from hbcore.aws import stack
from hbcore.bench.table import cell
from hbcore.data import dataset
from hbcore.data.dataset import BeatSet
from hbcore.localcloud.owner import fetch_status
from hbcore.model import training as models
from hbcore.stream.replay import select_beats

LATENCY_S = 30.0
WARMUP_BEATS = 500
TARGET_READ_BEATS_PER_S = 2000.0
TARGET_P95_MS = 1000.0
TARGET_PEAK_MB = 1536.0
MEDIAN_KEYS = ("read_beats_per_s", "beats_per_s", "latency_p50_ms", "latency_p95_ms", "cloud_peak_rss_mb",
               "records_per_invocation", "wall_s")


def run_once(beats: BeatSet, selection: BeatSet, model_path: Path, model: models.BeatModel,
             rate_bps: float | None) -> dict:
    """One replay of ``selection`` through a fresh local pipeline; the demo's accounting plus timings."""
    opened = time.monotonic()
    with Pipeline() as pipeline:
        pipeline.ensure_stack()
        pipeline.deploy(model_path)
        demo.settle(pipeline, pipeline.start_replay(select_beats(beats, order="shuffled", limit=WARMUP_BEATS, seed=1)))
        before = _mapping(pipeline)
        started_s = time.time()
        replay = pipeline.start_replay(selection, rate_bps=rate_bps)
        snapshot = demo.settle(pipeline, replay)
        read_s = time.time() - started_s
        figures = demo.account(replay, snapshot, model, started_s)
        status = _cloud_status(pipeline)
        after = _mapping(pipeline, status)
    invocations = after["invocations"] - before["invocations"]
    return {
        **figures,
        "rate_bps": rate_bps,
        "read_s": round(read_s, 2),
        "read_beats_per_s": round(figures["predicted"] / read_s, 1),
        "cloud_peak_rss_mb": status["peak_rss_mb"],
        "invocations": invocations,
        "records_per_invocation": (round((after["records"] - before["records"]) / invocations, 1)
                                   if invocations else None),
        "skipped_records": after["skipped_records"],
        "wall_s": round(time.monotonic() - opened, 1),
    }


def _cloud_status(pipeline: Pipeline) -> dict:
    """The local cloud's ``/_hb/status`` (the bench's pipeline runs on the local backend)."""
    moto_url = pipeline.backend.endpoint_url
    assert moto_url is not None  # the local backend has one
    return fetch_status(moto_url)


def _mapping(pipeline: Pipeline, status: dict | None = None) -> dict:
    """The counters of the stack's one mapping in the local cloud's status."""
    status = status or _cloud_status(pipeline)
    (mapping,) = status["mappings"]
    return mapping


def medians(runs: list[dict]) -> dict:
    """The median of each MEDIAN_KEYS figure, and the worst of the accounting, over ``runs``."""
    summary = {key: round(statistics.median(run[key] for run in runs), 1) for key in MEDIAN_KEYS
               if all(run.get(key) is not None for run in runs)}
    summary |= {key: max(run[key] for run in runs) for key in ("lost", "duplicates", "rejected", "skipped_records")}
    summary |= {key: min(run[key] for run in runs) for key in ("agreement", "sent", "predicted")}
    return summary


def targets(throughput: dict, latency: dict) -> dict[str, bool]:
    return {
        "read_beats_per_s >= 2000": throughput["read_beats_per_s"] >= TARGET_READ_BEATS_PER_S,
        "lost == 0 and duplicates == 0": max(throughput["lost"], throughput["duplicates"],
                                             latency["lost"], latency["duplicates"]) == 0,
        "latency_p95_ms <= 1000": latency["latency_p95_ms"] <= TARGET_P95_MS,
        "cloud_peak_rss_mb <= 1536": throughput["cloud_peak_rss_mb"] <= TARGET_PEAK_MB,
    }


TABLE_ROWS = (("sent", ""), ("predicted", ""), ("rejected", ""), ("lost", "0"), ("duplicates", "0"),
              ("agreement", "1"), ("read_beats_per_s", ">= 2,000"), ("beats_per_s", ""),
              ("latency_p50_ms", ""), ("latency_p95_ms", "<= 1,000 at 500/s"), ("cloud_peak_rss_mb", "<= 1,536"),
              ("records_per_invocation", ""), ("wall_s", ""))


def print_table(phases: dict[str, dict]) -> None:
    """One row per figure, one column per phase, and the target (see ``medians`` for what each cell is)."""
    print(f"{'figure':<24}" + "".join(f"{phase:>14}" for phase in phases) + "  target")
    for key, target in TABLE_ROWS:
        print(f"{key:<24}" + "".join(f"{cell(figures.get(key)):>14}" for figures in phases.values()) + f"  {target}")


def run_bench_pipeline(beats: int = 100_000, latency_rate: float = 500.0, repeats: int = 3,
                       model: Path | str | None = None, mitdb: str | None = None) -> dict:
    """Both phases ``repeats`` times: the JSON line's content (medians per phase, targets met, every run).

    ``model`` None serves the demo's model, trained if absent.
    """
    all_beats = dataset.load_beats(mitdb)
    model_path = Path(model) if model else demo.find_or_train_model(all_beats).path
    served = models.load_model(model_path)
    runs: dict[str, list[dict]] = {"throughput": [], "latency": []}
    plans = {"throughput": (select_beats(all_beats, order="time", limit=beats), None),
             "latency": (select_beats(all_beats, order="time", limit=int(latency_rate * LATENCY_S)), latency_rate)}
    for _ in range(repeats):
        for phase, (selection, rate_bps) in plans.items():
            runs[phase].append(run_once(all_beats, selection, model_path, served, rate_bps))
    phases = {phase: medians(phase_runs) for phase, phase_runs in runs.items()}
    mapping = {key: stack.MAPPING_SETTINGS[key] for key in ("BatchSize", "MaximumBatchingWindowInSeconds")}
    return {"bench": "pipeline", "repeats": repeats, "mapping": mapping, **phases,
            "targets": targets(phases["throughput"], phases["latency"]), "model_version": served.version,
            "runs": runs}
