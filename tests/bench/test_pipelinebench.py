"""bench pipeline's summary of its runs: medians of the rates, the worst of the accounting, the targets."""

from __future__ import annotations

from hbcore.bench.pipelinebench import medians, targets


def run(read_bps: float, p95_ms: float, lost: int = 0, agreement: float = 1.0) -> dict:
    return {"read_beats_per_s": read_bps, "beats_per_s": read_bps, "latency_p50_ms": p95_ms / 2,
            "latency_p95_ms": p95_ms, "cloud_peak_rss_mb": 800.0, "records_per_invocation": 500.0, "wall_s": 60.0,
            "lost": lost, "duplicates": 0, "rejected": 0, "skipped_records": 0, "agreement": agreement,
            "sent": 100_000, "predicted": 100_000 - lost}


def test_rates_are_medians_and_the_accounting_is_the_worst_run():
    summary = medians([run(2500, 90), run(1800, 70, lost=3, agreement=0.99), run(2300, 80)])

    assert (summary["read_beats_per_s"], summary["latency_p95_ms"]) == (2300, 80)
    assert (summary["lost"], summary["agreement"], summary["predicted"]) == (3, 0.99, 99_997)


def test_a_lost_beat_misses_a_target_even_when_the_rates_are_met():
    met = targets(medians([run(2500, 90, lost=1)]), medians([run(500, 90)]))

    assert met == {"read_beats_per_s >= 2000": True, "lost == 0 and duplicates == 0": False,
                   "latency_p95_ms <= 1000": True, "cloud_peak_rss_mb <= 1536": True}
