"""What a shared link to the live monitor or a patient holds: the view's filters as URL query parameters.

A presenter sends a colleague the monitor of one run, in presentation mode, refreshing every 5 s;
the link carries exactly that (``?run=<id>&every=5s&present=1``), and opening it shows the same
view. Only non-default values are written, so a plain page URL means the default view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INTERVALS_S: dict[str, float | None] = {"1s": 1.0, "2s": 2.0, "5s": 5.0, "10s": 10.0, "paused": None}
DEFAULT_INTERVAL = "2s"
ALL_RUNS = "all"
TRUE = "1"


@dataclass(frozen=True)
class MonitorView:
    """The monitor's filters: which run, how often it refreshes, how the matrix reads, presentation mode.

    ``run`` is a run id, ALL_RUNS, or None for the latest run (whichever it is when the page refreshes).
    """

    run: str | None = None
    interval: str = DEFAULT_INTERVAL
    shares: bool = False
    present: bool = False

    @property
    def all_runs(self) -> bool:
        return self.run == ALL_RUNS

    @property
    def interval_s(self) -> float | None:
        return INTERVALS_S[self.interval]


def monitor_view(params: Mapping[str, str]) -> MonitorView:
    """The view a URL's query parameters ask for; unknown or malformed values fall back to the defaults."""
    interval = params.get("every", DEFAULT_INTERVAL)
    run = params.get("run") or None
    return MonitorView(run=run, interval=interval if interval in INTERVALS_S else DEFAULT_INTERVAL,
                       shares=params.get("shares") == TRUE, present=params.get("present") == TRUE)


def monitor_params(view: MonitorView) -> dict[str, str]:
    """The query parameters of ``view`` (the inverse of :func:`monitor_view`), defaults left out."""
    params = {}
    if view.run:
        params["run"] = view.run
    if view.interval != DEFAULT_INTERVAL:
        params["every"] = view.interval
    if view.shares:
        params["shares"] = TRUE
    if view.present:
        params["present"] = TRUE
    return params


def patient_params(patient: str, run: str | None) -> dict[str, str]:
    """The query parameters of one patient's view (the patient page reads them back)."""
    return {"patient": str(patient), **({"run": run} if run else {})}
