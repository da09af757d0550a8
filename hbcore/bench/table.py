"""How every ``python -m hbcore bench …`` times and reports: medians of repeated calls, a table for people,
then one JSON line for tools."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping


def median_seconds(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls (this is a noisy shared machine: medians, not means)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cell(value: object) -> str:
    """One figure as a table cell: thousands separators, 4 decimals below 10 and 1 above, ``-`` for none."""
    if isinstance(value, dict):
        return " ".join(f"{name} {number:.3f}" for name, number in value.items())
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def print_figures(bench: str, figures: Mapping[str, object], json_figures: Mapping[str, object] | None = None) -> None:
    """Print ``figures`` one per line, then ``{"bench": bench, …}`` (``json_figures`` if given, else ``figures``)."""
    width = max(map(len, figures), default=0)
    for name, value in figures.items():
        print(f"{name:<{width}}  {cell(value)}")
    print(json.dumps({"bench": bench, **(figures if json_figures is None else json_figures)}))
