"""The benchmarks' shared report: a readable table, then one JSON line with the same figures."""

from __future__ import annotations

import json

from hbcore.bench.table import cell, print_figures


def test_cells_keep_small_figures_precise_and_large_ones_readable():
    assert [cell(0.98765), cell(3745.26), cell(109446), cell(None), cell(True), cell("ok")] == \
        ["0.9877", "3,745.3", "109,446", "-", "True", "ok"]
    assert cell({"before": 1.5, "after": 2.25}) == "before 1.500 after 2.250"


def test_the_table_is_aligned_and_the_json_line_carries_the_bench_name(capsys):
    print_figures("demo", {"beats": 1000, "p95_latency_ms": 211.04}, {"beats": 1000, "p95_latency_ms": 211.0})
    table, json_line = capsys.readouterr().out.strip().rsplit("\n", 1)
    assert table.splitlines() == ["beats           1,000", "p95_latency_ms  211.0"]
    assert json.loads(json_line) == {"bench": "demo", "beats": 1000, "p95_latency_ms": 211.0}
