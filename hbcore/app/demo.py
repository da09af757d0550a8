"""The full demo: data → model → stack → endpoint → replay, and the accounting of what came back.

:class:`DemoRun` does the set-up steps in a background thread (the app's **Run the full demo**
button polls its progress; the thread never calls Streamlit), and :func:`run_demo` is the headless
``python -m hbcore demo``: the same steps, then it waits until the reader has seen every beat and
prints what was sent, predicted, rejected, lost and duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hbcore.app.pipeline import Pipeline
from hbcore.app.training_run import beats_key
from hbcore.background import BackgroundTask
from hbcore.data import dataset
from hbcore.data.dataset import BeatSet
from hbcore.model import store as modelstore
from hbcore.model import training as models
from hbcore.stream import aggregations, tally
from hbcore.stream.beatids import ABSENT
from hbcore.stream.replay import Replay, select_beats, sent_inputs
from hbcore.stream.tally import UNLABELLED

STEPS: tuple[str, ...] = ("data", "model", "stack", "endpoint", "replay")
DEMO_SPLIT = "intra"
DEMO_BEATS = 2000
SETTLE_TIMEOUT_MIN_S = 60.0
SETTLE_BEATS_PER_S = 200.0  # the slowest drain rate allowed before the wait gives up
SETTLE_POLL_S = 0.5


def find_or_train_model(beats: BeatSet, split: str = DEMO_SPLIT) -> modelstore.SavedModel:
    """The stored model trained on exactly these beats with ``split``, training one if there is none."""
    key = beats_key(beats)
    saved = modelstore.find_model(key, split)
    if saved is None:
        saved = modelstore.save_model(models.train_and_evaluate(beats, split, data_key=key))
    return saved


def replay_selection(beats: BeatSet, n_beats: int, records: list[str] | None = None) -> BeatSet:
    """What the demo streams: the chosen records, else the test part of the demo split, in time order."""
    split = None if records else DEMO_SPLIT
    return select_beats(beats, split=split, records=records, order="time", limit=n_beats)


@dataclass
class DemoProgress:
    """A snapshot of a demo's set-up: the step under way and a line per finished step."""

    step: str | None
    done_steps: tuple[str, ...]
    messages: tuple[str, ...]
    error: str | None
    model: modelstore.SavedModel | None = None
    replay: Replay | None = None
    replay_started_s: float | None = None

    @property
    def fraction(self) -> float:
        return len(self.done_steps) / len(STEPS)

    @property
    def finished(self) -> bool:
        return self.replay is not None or self.error is not None


class DemoRun(BackgroundTask[DemoProgress]):
    """Owner of the set-up thread of one demo run (see the module docstring).

    Started and waited for as every :class:`~hbcore.background.BackgroundTask`; its steps run to the
    end (``stop`` waits for them up to its timeout). A failed step is the progress's ``error``,
    ``"<step>: <reason>"``.

    Parameters
    ----------
    pipeline : Pipeline
    load : callable returning the BeatSet
        How to get the beats (the app passes its cached loader; the CLI ``dataset.load_beats``).
    n_beats : int
    rate_bps : float or None
        Beats per second; None = as fast as the stream takes them.
    records : list of str, default=None
    model_path : Path, default=None
        Deploy this model instead of finding or training one.
    aggregate : bool, default=False
        Replay KPL-aggregated records (:class:`~hbcore.stream.replay.Replay`).
    """

    def __init__(self, pipeline: Pipeline, load: Callable[[], BeatSet], n_beats: int = DEMO_BEATS,
                 rate_bps: float | None = None, records: list[str] | None = None, model_path: Path | None = None,
                 aggregate: bool = False):
        super().__init__("demo-setup")
        self.pipeline = pipeline
        self.load = load
        self.n_beats = n_beats
        self.rate_bps = rate_bps
        self.records = records
        self.model_path = model_path
        self.aggregate = aggregate
        self.beats: BeatSet | None = None
        self._progress = DemoProgress(None, (), (), None)  # its error stays None: progress() adds the task's

    def progress(self) -> DemoProgress:
        with self._lock:
            error = None if self._error is None else f"{self._progress.step}: {self._error}"
            return replace(self._progress, error=error)

    def _note(self, message: str) -> None:
        with self._lock:
            self._progress.messages = (*self._progress.messages, message)

    def _enter(self, step: str) -> None:
        with self._lock:
            self._progress.step = step

    def _leave(self, step: str, message: str) -> None:
        with self._lock:
            self._progress.done_steps = (*self._progress.done_steps, step)
            self._progress.messages = (*self._progress.messages, message)

    def _work(self) -> str:
        """The set-up steps in order; "done" once the replay streams. A step that raises fails the run."""
        self._enter("data")
        self.beats = self.load()
        self._leave("data", f"{len(self.beats):,} beats loaded")
        self._enter("model")
        if self.model_path is not None:
            model_path = Path(self.model_path)
            self._leave("model", f"using {model_path}")
        else:
            saved = find_or_train_model(self.beats)
            with self._lock:
                self._progress.model = saved
            model_path = saved.path
            self._leave("model", f"model {saved.version}")
        self._enter("stack")
        self.pipeline.ensure_stack(progress=self._note)
        self._leave("stack", "stream, function and mapping ready")
        self._enter("endpoint")
        deployment = self.pipeline.deploy(model_path, progress=self._note)
        self._leave("endpoint", f"endpoint {deployment.endpoint} {deployment.status}")
        self._enter("replay")
        selection = replay_selection(self.beats, self.n_beats, self.records)
        started_s = time.time()
        replay = self.pipeline.start_replay(selection, rate_bps=self.rate_bps, aggregate=self.aggregate)
        with self._lock:
            self._progress.replay, self._progress.replay_started_s = replay, started_s
        self._leave("replay", f"streaming {len(selection):,} beats (run {replay.run})")
        with self._lock:
            self._progress.step = None
        return "done"


def settle(pipeline: Pipeline, replay: Replay, timeout_s: float | None = None) -> tally.ResultsSnapshot:
    """Wait until the replay has finished and the reader has seen every accepted beat of its run.

    Only the reader's own thread queries the logs: each poll re-reads the last ``lag_s`` seconds,
    so extra polls here would multiply the work of the pipeline being waited for (at 0.5 s they
    re-read every event ~20 times and cost a tenth of the end-to-end rate).
    """
    replay.wait()
    expected = len(replay.ledger)
    timeout_s = timeout_s or max(SETTLE_TIMEOUT_MIN_S, expected / SETTLE_BEATS_PER_S)
    deadline = time.monotonic() + timeout_s
    while True:
        snapshot = pipeline.reader.snapshot()
        totals = snapshot.totals(replay.run)
        if totals.predicted + totals.rejected >= expected and not unaccounted(replay, snapshot):
            return snapshot
        if time.monotonic() > deadline:
            return snapshot
        time.sleep(SETTLE_POLL_S)


def unaccounted(replay: Replay, snapshot: tally.ResultsSnapshot) -> list[str]:
    """Ids Kinesis accepted for the replay's run that have neither a prediction nor a rejected record."""
    rejected = set(aggregations.for_run(snapshot.rejected, replay.run)["id"].dropna())
    predicted = snapshot.totals(replay.run).ids
    assert predicted is not None  # one run's totals hold its ids (only all runs merged have none)
    return [identity for identity in replay.ledger.accepted().difference(predicted) if identity not in rejected]


def account(replay: Replay, snapshot: tally.ResultsSnapshot, model: models.BeatModel, started_s: float) -> dict:
    """What happened to every beat of a run: the JSON of ``python -m hbcore demo``.

    ``started_s`` (epoch seconds) is when the replay started: throughput is predictions over the
    time from then to the last prediction logged, so it is end to end (put → logged → read).
    Counts cover the whole run (the reader's totals); latency covers the run's beats among the
    latest rows the reader keeps (``tally.KEEP_ROWS``: all of a run shorter than that).
    """
    totals = snapshot.totals(replay.run)
    assert totals.ids is not None  # one run's totals hold its ids (only all runs merged have none)
    sent_beats = replay.beats
    logged = totals.ids.lookup(sent_beats.meta["record"], sent_beats.meta["sample"])
    found = logged != ABSENT
    direct = models.predict(model, *sent_inputs(sent_beats))[found]
    agreement = float((direct == logged[found]).mean()) if found.any() else 0.0
    labelled = totals.confusion[:UNLABELLED]
    accuracy = float(np.trace(labelled) / labelled.sum()) if labelled.sum() else None
    progress = replay.progress()
    span_s = (totals.last_ts - started_s) if totals.predicted else float("nan")
    latency = aggregations.for_run(snapshot.predictions, replay.run)["latency_ms"].dropna()
    return {
        "run": replay.run,
        "sent": len(replay.ledger),
        "predicted": totals.predicted,
        "rejected": totals.rejected,
        "lost": len(unaccounted(replay, snapshot)),
        "duplicates": snapshot.stats.duplicate_predictions,
        "retried_puts": progress.retried,
        "beats_per_s": round(totals.predicted / span_s, 1) if span_s and span_s > 0 else None,
        "latency_p50_ms": round(float(np.percentile(latency, 50)), 1) if len(latency) else None,
        "latency_p95_ms": round(float(np.percentile(latency, 95)), 1) if len(latency) else None,
        "agreement": round(agreement, 6),
        "accuracy": round(accuracy, 6) if accuracy is not None else None,
        "model_version": model.version,
    }


def run_demo(n_beats: int = DEMO_BEATS, rate_bps: float | None = None, records: list[str] | None = None,
             model_path: Path | None = None, mitdb: str | None = None, log=print, aggregate: bool = False) -> dict:
    """The whole pipeline on the local cloud, end to end; returns :func:`account`'s summary."""
    with Pipeline() as pipeline:
        run = DemoRun(pipeline, lambda: dataset.load_beats(mitdb), n_beats, rate_bps, records, model_path,
                      aggregate=aggregate).start()
        shown = 0
        while not (state := run.progress()).finished:
            for message in state.messages[shown:]:
                log(message)
            shown = len(state.messages)
            time.sleep(0.2)
        if state.error:
            raise RuntimeError(state.error)
        replay, started_s = state.replay, state.replay_started_s
        assert replay is not None and started_s is not None  # finished without an error: the replay streams
        snapshot = settle(pipeline, replay)
        if model_path is None:
            assert state.model is not None  # the run found or trained one
            model_path = state.model.path
        model = models.load_model(model_path)
        return account(replay, snapshot, model, started_s)

