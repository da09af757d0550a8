"""``python -m hbcore bench soak``: the whole local pipeline at a steady rate for minutes.

The issue's load target is 500 beats/s for the equivalent of an hour of data (1.8 M beats): memory
steady, latency steady, nothing lost. The soak replays the MIT-BIH beats in time order at ``--rate``
for ``--minutes`` (consecutive runs of the whole set, so beat ids never repeat), and every
``--sample-s`` seconds records what a long run would show drifting: the local cloud's resident
memory, this process's (the results reader keeps the latest rows and counts the rest), the
end-to-end latency (put → logged) and throughput of the beats logged in the last interval, how far
the reader is behind the logs, and how many log events and Kinesis records the cloud holds (it
trims both after a retention window; ``--log-retention-s`` shortens the log one, to reach the
steady state sooner). At the end every run is settled and accounted (``demo.settle`` /
``demo.account``): lost and duplicated beats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from hbcore.app import demo
from hbcore.aws import stack
from hbcore.bench.faultbench import FaultRig, beat_results
from hbcore.data.dataset import BeatSet
from hbcore.localcloud.server import memory_mb
from hbcore.stream.replay import Replay, select_beats

SAMPLE_S = 30.0
RATE_BPS = 500.0
SETTLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SoakSample:
    """The pipeline at one moment of the soak (rates and latencies over the interval just ended)."""

    t_s: float
    sent: int
    predicted: int
    logged_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    reader_lag_s: float
    cloud_rss_mb: float
    app_rss_mb: float
    reader_frames_mb: float  # the rows the reader keeps (part of app_rss_mb; bounded by its keep_* limits)
    log_events: int  # held by the local cloud (its log retention trims them)
    kinesis_records: int


def _round(value: float, digits: int = 1) -> float:
    return round(float(value), digits) if np.isfinite(value) else float("nan")


def sample(rig: FaultRig, started: float, runs: list[Replay], interval_s: float) -> SoakSample:
    """Measure the pipeline now (polls the reader once first)."""
    reader = rig.pipeline.reader
    reader.poll_once()
    snapshot = reader.snapshot()
    now_s = time.time()
    predictions = snapshot.predictions[snapshot.predictions["run"].isin([run.run for run in runs])]
    recent = predictions[predictions["ts"] > now_s - interval_s]
    latency = recent["latency_ms"].dropna().to_numpy()
    status = rig.cloud.status()
    return SoakSample(
        t_s=round(time.monotonic() - started, 1),
        sent=sum(run.progress().sent for run in runs),
        predicted=sum(snapshot.totals(run.run).predicted for run in runs),
        logged_per_s=_round(len(recent) / interval_s),
        latency_p50_ms=_round(np.percentile(latency, 50)) if len(latency) else float("nan"),
        latency_p95_ms=_round(np.percentile(latency, 95)) if len(latency) else float("nan"),
        reader_lag_s=_round(now_s - predictions["ts"].max()) if len(predictions) else float("nan"),
        cloud_rss_mb=status.get("rss_mb", float("nan")),
        app_rss_mb=memory_mb()["rss_mb"],
        reader_frames_mb=_round(sum(frame.memory_usage(deep=True).sum() for frame in
                                    (snapshot.predictions, snapshot.rejected, snapshot.summaries,
                                     snapshot.misclassified)) / 2**20),
        log_events=status.get("logs", {}).get("retained_events", -1),
        kinesis_records=status.get("kinesis", {}).get("retained_records", 0),
    )


def first_beats(beats: BeatSet, count: int) -> BeatSet:
    """The first ``count`` beats as views (``subset`` copies X: 22 MB for the last run's 30k beats)."""
    return replace(beats, X=beats.X[:count], y=beats.y[:count], meta=beats.meta.iloc[:count])


def soak(rig: FaultRig, beats: BeatSet, minutes: float, rate_bps: float = RATE_BPS,
         interval_s: float = SAMPLE_S, log=print) -> tuple[list[SoakSample], list[dict]]:
    """Replay for ``minutes`` at ``rate_bps``; samples every ``interval_s``, then one account per run."""
    total = int(minutes * 60 * rate_bps)
    started = time.monotonic()
    runs: list[Replay] = []
    samples: list[SoakSample] = []
    next_sample = started + interval_s
    while sum(run.progress().sent for run in runs) < total or not runs[-1].progress().done:
        if not runs or runs[-1].progress().done:
            remaining = total - sum(run.progress().sent for run in runs)
            run_beats = beats if remaining >= len(beats) else first_beats(beats, remaining)
            runs.append(rig.replay(run_beats, rate_bps))
        if time.monotonic() >= next_sample:
            samples.append(sample(rig, started, runs, interval_s))
            log(samples[-1])
            next_sample += interval_s
        time.sleep(0.2)
    accounts = []
    for run in runs:
        snapshot = demo.settle(rig.pipeline, run, SETTLE_TIMEOUT_S)
        accounts.append({**demo.account(run, snapshot, rig.model, time.time()), **beat_results(run, snapshot)})
    samples.append(sample(rig, started, runs, interval_s))
    log(samples[-1])
    return samples, accounts


def drift(samples: list[SoakSample], field: str) -> float:
    """Change per minute of ``field`` over the second half of the streaming (the first half warms up).

    The last sample, taken after every run was settled and accounted (the model called on every
    beat sent), is left out: it measures the accounting, not the pipeline.
    """
    streaming = samples[:-1]
    half = [s for s in streaming[len(streaming) // 2:] if np.isfinite(getattr(s, field))]
    if len(half) < 2:
        return float("nan")
    t_min = np.array([s.t_s for s in half]) / 60.0
    return float(np.polyfit(t_min, [getattr(s, field) for s in half], 1)[0])


def run_bench_soak(minutes: float = 10.0, rate: float = RATE_BPS, sample_s: float = SAMPLE_S,
                   log_retention_s: float | None = None, model: Path | str | None = None, mitdb: str | None = None,
                   log: Callable[[str], None] = print) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The soak's summary and its samples; a table line per sample goes to ``log`` as the soak runs.

    ``model`` None serves the demo's model (trained if absent); the summary's drifts (per minute)
    are what says whether memory and latency stayed steady.
    """
    from hbcore.data import dataset

    all_beats = dataset.load_beats(mitdb)
    model_path = Path(model) if model else demo.find_or_train_model(all_beats).path
    beats = select_beats(all_beats, order="time")
    log("  ".join(f"{name:>15}" for name in SoakSample.__dataclass_fields__))
    options = stack.StackOptions()
    with FaultRig(model_path, endpoint_timeout_s=options.endpoint_timeout_s,
                  log_retention_s=log_retention_s) as rig:
        samples, accounts = soak(rig, beats, minutes, rate, sample_s,
                                 log=lambda s: log("  ".join(f"{v:>15}" for v in asdict(s).values())))
    summary = {
        "minutes": minutes, "rate_bps": rate, "log_retention_s": log_retention_s,
        "sent": sum(a["sent"] for a in accounts), "predicted": sum(a["predicted"] for a in accounts),
        "rejected": sum(a["rejected"] for a in accounts), "lost": sum(a["lost"] for a in accounts),
        "duplicates": accounts[-1]["duplicates"] if accounts else 0,
        "exactly_once": all(a["exactly_once"] for a in accounts),
        "cloud_rss_mb_per_min": _round(drift(samples, "cloud_rss_mb"), 2),
        "app_rss_mb_per_min": _round(drift(samples, "app_rss_mb"), 2),
        "latency_p95_ms_per_min": _round(drift(samples, "latency_p95_ms"), 1),
        "peak_cloud_rss_mb": max(s.cloud_rss_mb for s in samples),
        "median_logged_per_s": _round(np.median([s.logged_per_s for s in samples[1:-1]] or [0.0])),
        "median_latency_p50_ms": _round(np.nanmedian([s.latency_p50_ms for s in samples[1:-1]] or [np.nan])),
        "median_latency_p95_ms": _round(np.nanmedian([s.latency_p95_ms for s in samples[1:-1]] or [np.nan])),
    }
    return summary, [asdict(s) for s in samples]
