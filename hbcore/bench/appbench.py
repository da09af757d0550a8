"""``python -m hbcore bench app``: the app's targets, as a table and one JSON line.

- ``monitor_refresh_s``: one refresh of the live monitor over 100,000 predictions (target ≤ 1 s):
  the reader's snapshot, every figure (``hbcore.app.dashboard``) and the chart specs, median of runs.
  The predictions are synthetic log lines read through a real :class:`ResultsReader` (over an
  in-memory Logs Insights stand-in), so the frames have exactly the reader's shape and types.
- ``first_paint_s``: ``streamlit run`` started → the home page's **Run the full demo** button drawn
  in headless Chromium (target ≤ 5 s), on the first cold run.
- ``cold_demo_to_first_prediction_s``: the button clicked → the live confusion matrix holding
  predictions, with empty HB_CACHE_DIR and HB_ARTIFACTS_DIR and the MIT-BIH records present (the
  beats are built, a quick model trained; target ≤ 20 s), median of ``runs`` runs, each in a fresh
  cache, app and local cloud.
- ``cached_demo_to_first_prediction_s``: the same with the beats and the full model cached (target
  ≤ 5 s): the last cold run's app is left running until its full model is stored, then each run
  starts a fresh app and local cloud on that cache.
- ``settled_demo_to_first_prediction_s``: cached again, but the click comes ``SETTLED_WAIT_S`` after
  the button is drawn, as a presenter's does who opens the app and then speaks: the page's warm-up
  (the local cloud, the stack, the reader, the stored model served) is over, so the figure is the
  demo's own, without the fresh app's start that the cached runs' immediate click waits for.
- ``cold_to_monitor_runs_s``, ``cached_to_monitor_runs_s``, ``settled_to_monitor_runs_s``: of each run,
  the click → the monitor's URL (the set-up); the rest is the wait for the first predictions to come
  through (the stream, the function, the logs' ingestion delay, the reader) and be drawn.

The browser figures need Debian's ``chromium`` (``/usr/bin/chromium``) and Playwright; the
real-browser test drives the app with the same :class:`AppServer` and :func:`chromium_page`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from hbcore.app import charts, dashboard
from hbcore.app.demo import DEMO_SPLIT
from hbcore.data.classes import CLASS_NAMES
from hbcore.localcloud import insights
from hbcore.model import store as modelstore
from hbcore.stream.reader import ResultsReader
from hbcore.stream.tally import ResultsSnapshot

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
SERVER_START_TIMEOUT_S = 60.0
DEMO_BUTTON = "Run the full demo"
PREDICTIONS_TEXT = re.compile(r"[1-9][\d,]* predictions in the confusion matrix")
REFRESH_RUNS = 5
# Cold, cached and settled runs each; their medians are reported. The logs' random ingestion delay moves the
# cached medians: on one box and code (4 December) a three-run median was 2.2 s from a seven-run one, and
# two seven-run medians 1.55 s apart clicked at once, 0.74 s settled.
DEMO_RUNS = 7
SETTLED_WAIT_S = 15.0  # button drawn → click in the settled runs (the warm-up took ~5-10 s on the 2-core box)
SYNTHETIC_RATE_BPS = 500.0
SYNTHETIC_RECORDS = 48
BENCH_RUN = "bench"


# --- the monitor refresh ----------------------------------------------------------------------------

class InMemoryLogsInsights:
    """Enough of the CloudWatch Logs client for a ResultsReader: its queries over a fixed list of events,
    evaluated as the local cloud evaluates them (``hbcore.localcloud.insights``: reads, stats probes)."""

    def __init__(self, events: list[tuple[int, str]]):
        self.events = events  # (epoch ms, message), sorted by time
        self._evaluated = [insights.Event(ms, message, "bench", "bench", str(index), ms)
                           for index, (ms, message) in enumerate(events)]
        self.times_ms = np.array([ms for ms, _ in events], dtype=np.int64)
        self.queries: dict[str, insights.Result] = {}

    def start_query(self, *, logGroupNames, startTime, endTime, queryString):  # boto3's parameter names
        first = int(np.searchsorted(self.times_ms, startTime * 1000, side="left"))
        last = int(np.searchsorted(self.times_ms, endTime * 1000 + 999, side="right"))
        query_id = str(len(self.queries))
        self.queries[query_id] = insights.evaluate(insights.parse_query(queryString), self._evaluated[first:last])
        return {"queryId": query_id}

    def get_query_results(self, *, queryId):
        result = self.queries[queryId]
        return {"status": "Complete", "results": result.rows,
                "statistics": {"recordsMatched": float(result.records_matched)}}


def synthetic_snapshot(n_beats: int, *, seed: int = 0, now_s: float | None = None) -> ResultsSnapshot:
    """A reader's snapshot after ``n_beats`` prediction lines of one run (95 % correct, 48 records)."""
    rng = np.random.default_rng(seed)
    now_s = time.time() if now_s is None else now_s
    start_ms = int((now_s - n_beats / SYNTHETIC_RATE_BPS) * 1000)
    labels = rng.choice(len(CLASS_NAMES), size=n_beats, p=[0.83, 0.03, 0.07, 0.01, 0.06])
    preds = np.where(rng.random(n_beats) < 0.95, labels, rng.integers(0, len(CLASS_NAMES), n_beats))
    records = rng.integers(100, 100 + SYNTHETIC_RECORDS, n_beats)
    events = []
    for i in range(n_beats):
        line = {"type": "prediction", "id": f"{BENCH_RUN}:{records[i]}:{i}", "run": BENCH_RUN,
                "record": str(records[i]), "sample": i * 300, "t": i * 0.8, "label": int(labels[i]),
                "pred": int(preds[i]), "pred_name": CLASS_NAMES[preds[i]], "prob": 0.9, "model_version": "bench",
                "latency_ms": 200.0 + i % 300, "endpoint_ms": 10.0, "rr_local_s": 0.8, "seq": str(i),
                "shard": "shardId-000000000000"}
        events.append((start_ms + int(i * 1000 / SYNTHETIC_RATE_BPS), json.dumps(line)))
    reader = ResultsReader(InMemoryLogsInsights(events), "/aws/lambda/bench", start_s=start_ms / 1000 - 1)
    reader.poll_once(now_s=now_s)
    return reader.snapshot()


def refresh(reader_snapshot: ResultsSnapshot, run: str | None) -> None:
    """What one monitor refresh computes: every figure and the Vega-Lite specs of both charts."""
    figures = dashboard.dashboard_figures(reader_snapshot, run)
    charts.class_timeline(figures.distribution).to_dict()
    charts.confusion_heatmap(figures.confusion).to_dict()


def monitor_refresh_seconds(n_beats: int, runs: int = REFRESH_RUNS) -> float:
    """Median seconds of one monitor refresh over ``n_beats`` predictions."""
    snapshot = synthetic_snapshot(n_beats)
    assert snapshot.stats.predictions == n_beats, "the synthetic lines were not all read"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        refresh(snapshot, BENCH_RUN)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- the app in a browser ---------------------------------------------------------------------------

def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class AppServer:
    """Owner of a ``streamlit run streamlit_app.py`` subprocess on a free loopback port.

    ``env`` is the child's environment (HB_DATA_DIR, HB_CACHE_DIR...); ``log_path`` receives its
    output. ``started_at`` is the monotonic time the process was started (for first-paint timing).
    """

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started_at = 0.0
        self._process: subprocess.Popen | None = None
        self._log: IO[str] | None = None

    def start(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> AppServer:
        self._log = open(self.log_path, "w+")  # noqa: SIM115 (open while the server runs; stop() closes it)
        self.started_at = time.monotonic()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        while not _healthy(self.url):
            if self._process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self._process.returncode}:\n{self.output()}")
            if time.monotonic() - self.started_at > timeout_s:
                self.stop()
                raise TimeoutError(f"streamlit not healthy on {self.url} after {timeout_s:.0f} s")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        """What the server has printed so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


@contextlib.contextmanager
def chromium_page(profile_dir: Path) -> Iterator[object]:
    """A Playwright page in Debian's headless Chromium with a fresh profile (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir, executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS),
            viewport={"width": 1600, "height": 1300},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


# In the page: the click's time, and the first animation frame whose text holds PREDICTIONS_TEXT (the
# frame that paints them), on the page's clock. Playwright's waits poll the page with a back-off that
# reaches 500 ms, which added ~0.25 s (up to 0.5 s) to each run; the app's page switch keeps this
# document (no reload), so the marks survive the move to the monitor.
PAGE_MARKS_JS = """(pattern) => {
  const marks = window.__hbMarks = {clicked: null, seen: null};
  const shows = new RegExp(pattern);
  document.addEventListener("click", () => { marks.clicked ??= performance.now(); }, true);
  let pending = false;
  const look = () => {
    pending = false;
    if (marks.seen === null && marks.clicked !== null && shows.test(document.body.innerText)) {
      marks.seen = performance.now();
    }
  };
  new MutationObserver(() => {
    if (!pending && marks.seen === null) { pending = true; requestAnimationFrame(look); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def run_demo_in_browser(page, server: AppServer, timeout_s: float, wait_s: float = 0.0) -> dict[str, float]:
    """Open the app, click **Run the full demo** (``wait_s`` after it can be clicked), wait for live
    predictions; the timings.

    ``demo_to_predictions_s`` is timed in the page (:data:`PAGE_MARKS_JS`): the click → the frame
    that paints the first predictions. ``to_monitor_s`` (click → the monitor's URL) is the set-up as
    the browser sees it; the rest is the wait for the first predictions on the monitor (the beats
    through the stream, the function, the logs' ingestion delay, the reader and the page's refresh).
    """
    page.goto(server.url)
    button = page.get_by_role("button", name=DEMO_BUTTON)
    button.wait_for(timeout=SERVER_START_TIMEOUT_S * 1000)
    first_paint_s = time.monotonic() - server.started_at
    page.wait_for_function(f"() => [...document.querySelectorAll('button')].some("
                           f"b => b.innerText.includes('{DEMO_BUTTON}') && !b.disabled)",
                           timeout=SERVER_START_TIMEOUT_S * 1000)
    page.evaluate(PAGE_MARKS_JS, PREDICTIONS_TEXT.pattern)
    time.sleep(wait_s)
    clicked = time.monotonic()
    button.click()
    page.wait_for_url(re.compile(r".*/monitor"), timeout=timeout_s * 1000)
    to_monitor_s = time.monotonic() - clicked
    marks = page.wait_for_function("() => window.__hbMarks.seen !== null && window.__hbMarks",
                                   timeout=timeout_s * 1000).json_value()
    return {"first_paint_s": round(first_paint_s, 2),
            "demo_to_predictions_s": round((marks["seen"] - marks["clicked"]) / 1000, 2),
            "to_monitor_s": round(to_monitor_s, 2)}


def app_environment(cache_dir: str | None = None, artifacts_dir: str | None = None) -> dict[str, str]:
    """This process's environment for the app, with dummy AWS credentials (the local cloud needs none)."""
    env = dict(os.environ)
    if cache_dir:
        env["HB_CACHE_DIR"] = cache_dir
    if artifacts_dir:
        env["HB_ARTIFACTS_DIR"] = artifacts_dir
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def full_model_stored(cache_dir: Path) -> bool:
    """Whether the demo's full (not quick) model of unseen patients is in the cache's model store."""
    store = cache_dir / "models"
    return store.is_dir() and bool(modelstore.full_models(DEMO_SPLIT, store=store))


def wait_for_full_model(cache_dir: Path, server: AppServer, timeout_s: float) -> None:
    """Keep the app running until the demo has stored its full model (it trains behind the quick one)."""
    deadline = time.monotonic() + timeout_s
    while not full_model_stored(cache_dir):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no full model in {cache_dir / 'models'} after {timeout_s:.0f} s:\n{server.output()}")
        time.sleep(1.0)


def demo_runs(page, scratch: Path, runs: int, timeout_s: float) -> dict[str, object]:
    """Cold runs (each in an empty cache), then cached and settled runs (beats and full model stored); medians
    and every run."""
    if not os.environ.get("HB_DATA_DIR"):
        raise RuntimeError("bench app needs the MIT-BIH records: set HB_DATA_DIR (the cold runs build the beats)")
    cold: list[dict[str, float]] = []
    cache = scratch
    for index in range(runs):
        cache, artifacts = scratch / f"cold{index}" / "cache", scratch / f"cold{index}" / "artifacts"
        cache.mkdir(parents=True)
        artifacts.mkdir()
        with AppServer(app_environment(str(cache), str(artifacts)), scratch / f"cold{index}.log") as server:
            cold.append(run_demo_in_browser(page, server, timeout_s))
            if index == runs - 1:
                wait_for_full_model(cache, server, timeout_s)
    cached: list[dict[str, float]] = []
    for index in range(runs):
        with AppServer(app_environment(str(cache), str(scratch / "cold0" / "artifacts")),
                       scratch / f"cached{index}.log") as server:
            cached.append(run_demo_in_browser(page, server, timeout_s))
    settled: list[dict[str, float]] = []
    for index in range(runs):
        with AppServer(app_environment(str(cache), str(scratch / "cold0" / "artifacts")),
                       scratch / f"settled{index}.log") as server:
            settled.append(run_demo_in_browser(page, server, timeout_s, wait_s=SETTLED_WAIT_S))
    cold_s = [run["demo_to_predictions_s"] for run in cold]
    cached_s = [run["demo_to_predictions_s"] for run in cached]
    settled_s = [run["demo_to_predictions_s"] for run in settled]
    return {"first_paint_s": cold[0]["first_paint_s"],
            "cold_demo_to_first_prediction_s": round(statistics.median(cold_s), 2),
            "cached_demo_to_first_prediction_s": round(statistics.median(cached_s), 2),
            "settled_demo_to_first_prediction_s": round(statistics.median(settled_s), 2),
            "demo_runs": runs, "cold_runs_s": cold_s, "cached_runs_s": cached_s, "settled_runs_s": settled_s,
            "cold_to_monitor_runs_s": [run["to_monitor_s"] for run in cold],
            "cached_to_monitor_runs_s": [run["to_monitor_s"] for run in cached],
            "settled_to_monitor_runs_s": [run["to_monitor_s"] for run in settled]}


def run_bench_app(predictions: int = 100_000, browser: bool = True, timeout_s: float = 900.0,
                  runs: int = DEMO_RUNS) -> dict[str, object]:
    """The app's figures: a monitor refresh, and with Chromium at hand first paint and demo → first predictions."""
    import tempfile

    figures: dict[str, object] = {"monitor_predictions": predictions,
                                  "monitor_refresh_s": round(monitor_refresh_seconds(predictions), 3)}
    if browser and CHROMIUM.is_file():
        with tempfile.TemporaryDirectory() as scratch, chromium_page(Path(scratch) / "profile") as page:
            figures |= demo_runs(page, Path(scratch), runs, timeout_s)
    elif browser:
        figures["browser"] = f"skipped: {CHROMIUM} absent"
    return figures
