"""The full demo: data → model → stack → endpoint → replay, and the accounting of what came back.

:class:`DemoRun` does the set-up steps in a background thread (the app's **Run the full demo**
button polls its progress; the thread never calls Streamlit), and :func:`run_demo` is the headless
``python -m hbcore demo``: the same steps, then it waits until the reader has seen every beat and
prints what was sent, predicted, rejected, lost and duplicated.

By default the demo streams **unseen patients**: a model trained on DS1 classifies the 22 DS2
records, several at once (``hbcore.data.splits``); ``split="intra"`` streams test beats of patients
the model has seen. Where the full model takes minutes to train (the intra-patient network), the
demo first streams with the split's quick preset (seconds), trains the full one meanwhile and
deploys it on the same endpoint in place (``update_endpoint``: the runtime serves the next call
with it, no beat is lost), which the timeline marks. The inter-patient model trains in seconds, so
it is trained at once; a stored full model is deployed at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hbcore.app import training_run
from hbcore.app.pipeline import Pipeline
from hbcore.app.training_run import beats_key
from hbcore.background import BackgroundTask, TaskFailed
from hbcore.data import dataset
from hbcore.data.dataset import BeatSet
from hbcore.model import store as modelstore
from hbcore.model import training as models
from hbcore.stream import aggregations, tally
from hbcore.stream.beatids import ABSENT
from hbcore.stream.replay import Replay, select_beats, sent_inputs
from hbcore.stream.tally import UNLABELLED

STEPS: tuple[str, ...] = ("data", "model", "stack", "endpoint", "replay")
# What the presenter picks between: who the streamed patients are to the model.
DEMO_SPLITS = {"inter": "Unseen patients: a model trained on DS1 classifies the 22 DS2 records",
               "intra": "Patients the model has seen: test beats of the intra-patient 80/20 split"}
DEMO_SPLIT = "inter"
DEMO_BEATS = 2000
# Seconds each step takes on the reference 2-core machine; the progress bar's estimate until a step
# has ended (the model step's comes from hbcore.app.training_run, the data step's from the caller).
STEP_SECONDS = {"data": 5.0, "model": 2.0, "stack": 2.5, "endpoint": 0.5, "replay": 0.3}
STEP_SHARE_CAP = 0.95  # a step never shows as done before it is
SETTLE_TIMEOUT_MIN_S = 60.0
SETTLE_BEATS_PER_S = 200.0  # the slowest drain rate allowed before the wait gives up
SETTLE_POLL_S = 0.5


def quick_params(split: str) -> models.ModelParams:
    """The demo's first model: the split's quick preset (seconds on all of MIT-BIH, lower scores).

    Where the preset is the full recipe itself (the inter-patient one trains in seconds), the demo
    trains that at once and has nothing to upgrade.
    """
    return models.default_params(split, "quick")


def find_full_model(beats: BeatSet, split: str) -> modelstore.SavedModel | None:
    """The newest stored full (not quick) model trained on exactly these beats with ``split``."""
    return next(iter(modelstore.full_models(split, beats_key(beats))), None)


def train_and_save(beats: BeatSet, split: str, params: models.ModelParams | None = None,
                   **info: object) -> modelstore.SavedModel:
    """Train on ``split``'s training part, evaluate on its test part, save into the store."""
    return modelstore.save_model(models.train_and_evaluate(beats, split, params, views=(), data_key=beats_key(beats),
                                                           **info))


def find_or_train_model(beats: BeatSet, split: str = DEMO_SPLIT) -> modelstore.SavedModel:
    """The stored full model trained on exactly these beats with ``split``, training one if there is none."""
    return find_full_model(beats, split) or train_and_save(beats, split)


def stage_model(pipeline: Pipeline, load: Callable[[], BeatSet],
                split: str = DEMO_SPLIT) -> modelstore.SavedModel | None:
    """The local warm-up's last step (``Pipeline.warm_up``): serve the stored full model the demo would
    deploy and call it once; the model, or None when there was nothing to do.

    A fresh app's first deploy and the runtime's loading of the model on its first call took ~1–2 s
    of the cached demo's click; afterwards the demo finds the model served (its deploy changes
    nothing). Nothing replaces a model already deployed, and with no stored full model nothing is
    trained: that waits for a click.
    """
    if pipeline.deployed_path is not None:
        return None
    beats = load()
    saved = find_full_model(beats, split)
    if saved is None:
        return None
    pipeline.deploy(saved.path, label=_model_text(saved))
    pipeline.test_invoke(beats.X[:1], models.rr_of(beats)[:1])
    return saved


def replay_selection(beats: BeatSet, n_beats: int | None, records: list[str] | None = None,
                     split: str = DEMO_SPLIT) -> BeatSet:
    """What the demo streams: the chosen records, else the test part of ``split``, records interleaved in time order
    (at most ``n_beats``; None = all)."""
    return select_beats(beats, split=None if records else split, records=records, order="time", limit=n_beats)


@dataclass(frozen=True)
class StepState:
    """One step of the set-up: ``state`` is "waiting", "working", "done" or "failed"."""

    name: str
    state: str
    expected_s: float
    elapsed_s: float
    detail: str = ""

    @property
    def share(self) -> float:
        """How much of the step is behind it: 1 when done, else elapsed over the estimate (capped)."""
        if self.state == "done":
            return 1.0
        return min(STEP_SHARE_CAP, self.elapsed_s / self.expected_s) if self.expected_s > 0 else 0.0


@dataclass(frozen=True)
class UpgradeState:
    """The full model trained behind the quick one: "training", "deploying", "deployed", "skipped" or "failed"."""

    state: str
    expected_s: float
    elapsed_s: float
    detail: str
    model: modelstore.SavedModel | None = None

    @property
    def fraction(self) -> float:
        if self.state in ("deployed", "skipped", "failed"):
            return 1.0
        return min(STEP_SHARE_CAP, self.elapsed_s / self.expected_s) if self.expected_s > 0 else 0.0


@dataclass(frozen=True)
class DemoProgress:
    """A snapshot of a demo's set-up: every step's state, a line per event, and what it made."""

    steps: tuple[StepState, ...]
    messages: tuple[str, ...]
    error: str | None
    model: modelstore.SavedModel | None = None
    replay: Replay | None = None
    replay_started_s: float | None = None
    upgrade: UpgradeState | None = None

    @property
    def step(self) -> str | None:
        """The step that failed, else the first one under way, None when none is."""
        return next((step.name for step in self.steps if step.state == "failed"),
                    next((step.name for step in self.steps if step.state == "working"), None))

    @property
    def done_steps(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps if step.state == "done")

    @property
    def fraction(self) -> float:
        """Share of the set-up done, each step weighted by its estimate; a failed run stays where it failed."""
        total = sum(step.expected_s for step in self.steps)
        return sum(step.expected_s * step.share for step in self.steps) / total if total else 0.0

    @property
    def remaining_s(self) -> float:
        """Estimated seconds to the first live predictions (steps not done, at their estimates)."""
        return sum(max(step.expected_s - step.elapsed_s, 0.0) for step in self.steps if step.state != "done")

    @property
    def finished(self) -> bool:
        """The set-up is over: the replay streams, or a step failed (the upgrade may still be under way)."""
        return self.replay is not None or self.error is not None


class _Clock:
    """Start and end times of the steps (monotonic seconds), for their elapsed time."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def elapsed(self, name: str, now: float) -> float:
        if name not in self.started:
            return 0.0
        return self.ended.get(name, now) - self.started[name]


class DemoRun(BackgroundTask[DemoProgress]):
    """Owner of the set-up thread of one demo run (see the module docstring).

    Started and waited for as every :class:`~hbcore.background.BackgroundTask`. The data and the
    model are made while the stack is created (they do not depend on each other), and the beats to
    stream are selected meanwhile; the endpoint then serves the model and the replay starts. A
    failed step is the progress's ``error``, ``"<step>: <reason>"``, and the bar stops where it
    failed. After the replay has started, a quick model is replaced by the full one
    (:attr:`DemoProgress.upgrade`); ``stop`` before that deploy keeps the quick model (a training
    under way cannot be cut short: ``stop`` waits up to its timeout).

    Parameters
    ----------
    pipeline : Pipeline
    load : callable returning the BeatSet
        How to get the beats (the app passes its cached loader; the CLI ``dataset.load_beats``).
    n_beats : int or None
        At most this many beats stream (None: all of the selection).
    rate_bps : float or None
        Beats per second; None = as fast as the stream takes them.
    records : list of str, default=None
    model_path : Path, default=None
        Deploy this model instead of finding or training one.
    aggregate : bool, default=True
        Replay KPL-aggregated records (:class:`~hbcore.stream.replay.Replay`).
    split : {"inter", "intra"}, default=DEMO_SPLIT
        Which patients stream (DEMO_SPLITS) and so which split the model trains on.
    quick : bool, default=True
        With no full model stored, stream with a quick one first and upgrade; False trains the full one first.
    load_s : float, default=STEP_SECONDS["data"]
        The data step's estimate (the app knows whether the beats are built).
    info : dict
        Recorded in the metadata of models the run trains (the data source).
    """

    def __init__(self, pipeline: Pipeline, load: Callable[[], BeatSet], n_beats: int | None = DEMO_BEATS,
                 rate_bps: float | None = None, records: list[str] | None = None, model_path: Path | None = None,
                 aggregate: bool = True, split: str = DEMO_SPLIT, quick: bool = True,
                 load_s: float = STEP_SECONDS["data"], **info: object):
        if split not in DEMO_SPLITS:
            raise ValueError(f"split {split!r}: expected one of {', '.join(DEMO_SPLITS)}")
        super().__init__("demo-setup")
        self.pipeline = pipeline
        self.load = load
        self.n_beats = n_beats
        self.rate_bps = rate_bps
        self.records = records
        self.model_path = model_path
        self.aggregate = aggregate
        self.split = split
        self.quick = quick
        self.info = info
        self.beats: BeatSet | None = None
        self._clock = _Clock()
        self._expected = dict(STEP_SECONDS, data=load_s)
        self._details: dict[str, str] = {}
        self._failed: str | None = None  # the first step that failed, and why
        self._failure: str | None = None
        self._messages: tuple[str, ...] = ()
        self._model: modelstore.SavedModel | None = None
        self._replay: Replay | None = None
        self._replay_started_s: float | None = None
        self._upgrade: UpgradeState | None = None
        self._upgrade_started: float | None = None

    # -- progress --

    def progress(self) -> DemoProgress:
        with self._lock:
            now = time.monotonic()
            steps = tuple(StepState(name, self._step_state_locked(name), self._expected[name],
                                    self._clock.elapsed(name, now), self._details.get(name, ""))
                          for name in STEPS)
            reason = self._failure if self._failed is not None else self._error
            error = None if reason is None else f"{self._failed or 'demo'}: {reason}"
            upgrade = self._upgrade
            if upgrade is not None and self._upgrade_started is not None and upgrade.state in ("training",
                                                                                                "deploying"):
                upgrade = replace(upgrade, elapsed_s=now - self._upgrade_started)
            return DemoProgress(steps, self._messages, error, self._model, self._replay, self._replay_started_s,
                                upgrade)

    def _step_state_locked(self, name: str) -> str:
        if name == self._failed:
            return "failed"
        if name in self._clock.ended:
            return "done"
        return "working" if name in self._clock.started else "waiting"

    def _note(self, message: str) -> None:
        with self._lock:
            self._messages = (*self._messages, message)

    @contextlib.contextmanager
    def _step(self, name: str, expected_s: float | None = None) -> Iterator[None]:
        """Time one step; an exception marks it failed (the first failure names the run's error)."""
        with self._lock:
            if expected_s is not None:
                self._expected[name] = expected_s
            self._clock.started[name] = time.monotonic()
        try:
            yield
        except BaseException as failure:
            with self._lock:
                self._clock.ended[name] = time.monotonic()
                if self._failed is None:  # said at once, not when the steps beside it end
                    self._failed = name
                    self._failure = (str(failure) if isinstance(failure, TaskFailed)
                                     else f"{type(failure).__name__}: {failure}")  # as BackgroundTask words it
            raise
        with self._lock:
            self._clock.ended[name] = time.monotonic()

    def _done(self, name: str, detail: str) -> None:
        with self._lock:
            self._details[name] = detail
            self._messages = (*self._messages, detail)

    # -- the thread --

    def _work(self) -> str:
        """The set-up steps; "done" once the replay streams (and a quick model was upgraded, or not).

        The stack is made beside the data and the model; the beats to stream are selected beside the
        model, the stack and the endpoint (a fraction of a second over all of MIT-BIH that the replay
        step then does not wait for).
        """
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-setup") as pool:
            stack_ready = pool.submit(self._make_stack)
            beats = self._load_data()
            selected = pool.submit(replay_selection, beats, self.n_beats, self.records, self.split)
            model_path, quick = self._make_model(beats)
            stack_ready.result()  # its error, if any, fails the run
            with self._step("endpoint"):
                deployment = self.pipeline.deploy(model_path, progress=self._note)
            self._done("endpoint", f"endpoint {deployment.endpoint} {deployment.status}")
            with self._step("replay"):
                selection = selected.result()  # its error, if any, is the replay step's
                started_s = time.time()
                replay = self.pipeline.start_replay(selection, rate_bps=self.rate_bps, aggregate=self.aggregate)
                with self._lock:
                    self._replay, self._replay_started_s = replay, started_s
            self._done("replay", f"streaming {len(selection):,} beats of {len(selection.records())} records "
                                 f"(run {replay.run})")
        if quick is not None:
            return self._upgrade_model(beats, quick)
        return "done"

    def _make_stack(self) -> None:
        with self._step("stack"):
            self.pipeline.ensure_stack(progress=self._note)
        self._done("stack", "stream, function and mapping ready")

    def _load_data(self) -> BeatSet:
        with self._step("data"):
            beats = self.beats = self.load()
        self._done("data", f"{len(beats):,} beats loaded")
        return beats

    def _make_model(self, beats: BeatSet) -> tuple[Path, modelstore.SavedModel | None]:
        """The model to deploy first, and that model when it is a quick one to upgrade."""
        if self.model_path is not None:
            with self._step("model", 0.0):
                path = Path(self.model_path)
            self._done("model", f"using {path}")
            return path, None
        full = find_full_model(beats, self.split)
        if full is not None or not self.quick or quick_params(self.split) == models.default_params(self.split):
            with self._step("model", 0.1 if full else self._train_estimate(beats, models.default_params(self.split))):
                saved = full or train_and_save(beats, self.split, None, **self.info)
            self._set_model(saved, f"model {saved.version} ({'stored' if full else 'trained'})")
            return saved.path, None
        params = quick_params(self.split)
        with self._step("model", self._train_estimate(beats, params)):
            saved = train_and_save(beats, self.split, params, **self.info, **{modelstore.PRESET_KEY: modelstore.QUICK})
        self._set_model(saved, f"quick model {saved.version} trained in {saved.metadata['train_seconds']:.1f} s: "
                               "it streams while the full model trains")
        return saved.path, saved

    def _set_model(self, saved: modelstore.SavedModel, detail: str) -> None:
        with self._lock:
            self._model = saved
        self._done("model", detail)

    def _train_estimate(self, beats: BeatSet, params: models.ModelParams) -> float:
        return training_run.expected_seconds(len(models.split_index(beats, self.split)[0]), params)

    def _upgrade_model(self, beats: BeatSet, quick: modelstore.SavedModel) -> str:
        """Train the full model, then serve it in place of ``quick`` unless someone else changed the endpoint."""
        n_train = int(quick.metadata.get("n_train") or len(models.split_index(beats, self.split)[0]))
        expected_s = training_run.scaled_seconds(float(quick.metadata["train_seconds"]), quick_params(self.split),
                                                 models.default_params(self.split), n_train)
        self._set_upgrade(UpgradeState("training", expected_s, 0.0,
                                       f"training the full model (about {expected_s:,.0f} s)"), started=True)
        try:
            full = train_and_save(beats, self.split, None, **self.info)
            with self._lock:
                stopping = self._stop_requested
            if stopping:
                self._set_upgrade(UpgradeState("skipped", expected_s, 0.0, f"full model {full.version} trained; "
                                               "not deployed: the demo was stopped", full))
                return "stopped"
            if self.pipeline.deployed_path != quick.path:
                self._set_upgrade(UpgradeState("skipped", expected_s, 0.0, f"full model {full.version} trained; "
                                               "not deployed: another model was deployed meanwhile", full))
                return "done"
            self._set_upgrade(UpgradeState("deploying", expected_s, 0.0, f"deploying the full model {full.version}",
                                           full))
            self.pipeline.deploy(full.path, progress=self._note, label=_model_text(full))
        except Exception as error:  # the replay goes on with the quick model; the page says why it stayed
            self._set_upgrade(UpgradeState("failed", expected_s, 0.0, f"the full model was not deployed: {error}"))
            return "done"
        self._set_upgrade(UpgradeState("deployed", expected_s, 0.0, f"{_model_text(full)} replaced the quick model "
                                       "in place", full))
        with self._lock:
            self._model = full
        return "done"

    def _set_upgrade(self, state: UpgradeState, started: bool = False) -> None:
        with self._lock:
            if started:
                self._upgrade_started = time.monotonic()
            elif self._upgrade_started is not None:
                state = replace(state, elapsed_s=time.monotonic() - self._upgrade_started)
            self._upgrade = state
            self._messages = (*self._messages, state.detail)


def _model_text(saved: modelstore.SavedModel) -> str:
    """A model as the timeline and the messages name it: version, split and offline macro-F1."""
    figures = saved.metrics
    score = f", macro-F1 {figures['macro_f1']:.3f} offline" if "macro_f1" in figures else ""
    kind = "quick" if saved.quick else "full"
    return f"{kind} model {saved.version} ({saved.split}{score})"


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


def account(replay: Replay, snapshot: tally.ResultsSnapshot,
            served: models.BeatModel | Mapping[str, models.BeatModel], started_s: float) -> dict:
    """What happened to every beat of a run: the JSON of ``python -m hbcore demo``.

    ``started_s`` (epoch seconds) is when the replay started: throughput is predictions over the
    time from then to the last prediction logged, so it is end to end (put → logged → read).
    ``served`` is the model that served the run, or each version that did (a quick one, then the
    full one) mapped to its model; ``agreement`` is the share of logged predictions equal to what
    that model predicts directly: over the whole run for one model, over the rows the reader keeps
    (``tally.KEEP_ROWS``: all of a run shorter than that) for several, whose log lines name the
    version. Counts cover the whole run (the reader's totals); latency covers the kept rows.
    """
    served = {served.version: served} if isinstance(served, models.BeatModel) else dict(served)
    totals = snapshot.totals(replay.run)
    rows = aggregations.for_run(snapshot.predictions, replay.run)
    agreeing, compared = (_agreement_of_run(replay, totals, next(iter(served.values()))) if len(served) == 1
                          else _agreement_by_version(replay, rows, served))
    labelled = totals.confusion[:UNLABELLED]
    accuracy = float(np.trace(labelled) / labelled.sum()) if labelled.sum() else None
    progress = replay.progress()
    span_s = (totals.last_ts - started_s) if totals.predicted else float("nan")
    latency = rows["latency_ms"].dropna()
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
        "agreement": round(agreeing / compared, 6) if compared else 0.0,
        "accuracy": round(accuracy, 6) if accuracy is not None else None,
        "model_versions": {str(version): int(count) for version, count in rows["model_version"].value_counts().items()},
        "model_version": next(reversed(served)),
    }


def _agreement_of_run(replay: Replay, totals: tally.RunTotals, model: models.BeatModel) -> tuple[int, int]:
    """(agreeing, compared): every logged beat of the run against ``model``'s direct prediction."""
    assert totals.ids is not None  # one run's totals hold its ids (only all runs merged have none)
    sent_beats = replay.beats
    logged = totals.ids.lookup(sent_beats.meta["record"], sent_beats.meta["sample"])
    found = logged != ABSENT
    direct = models.predict(model, *sent_inputs(sent_beats))[found]
    return int((direct == logged[found]).sum()), int(found.sum())


def _agreement_by_version(replay: Replay, rows: pd.DataFrame, served: dict[str, models.BeatModel]) -> tuple[int, int]:
    """(agreeing, compared): each kept row against the direct prediction of the model its line names."""
    sent_beats = replay.beats
    position = {key: index for index, key in enumerate(zip(sent_beats.meta["record"].astype(str),
                                                           sent_beats.meta["sample"].astype(int)))}
    agreeing = compared = 0
    for version, group in rows.groupby("model_version"):
        model = served.get(str(version))
        if model is None:
            continue  # not a model of this run (an endpoint changed by hand): not compared
        index = np.array([position[(str(record), int(sample))] for record, sample
                          in zip(group["record"], group["sample"])])
        direct = models.predict(model, *sent_inputs(sent_beats.subset(index)))
        agreeing += int((direct == group["pred"].to_numpy()).sum())
        compared += len(group)
    return agreeing, compared


def run_demo(n_beats: int = DEMO_BEATS, rate_bps: float | None = None, records: list[str] | None = None,
             model_path: Path | None = None, mitdb: str | None = None, log=print, aggregate: bool = True,
             split: str = DEMO_SPLIT, quick: bool = True) -> dict:
    """The whole pipeline on the local cloud, end to end; returns :func:`account`'s summary.

    With a quick model first, the run waits for the full model's deploy too, so that the summary
    covers the switch (``model_versions``: beats each model served).
    """
    with Pipeline() as pipeline:
        run = DemoRun(pipeline, lambda: dataset.load_beats(mitdb), n_beats, rate_bps, records, model_path,
                      aggregate=aggregate, split=split, quick=quick, source="mitdb", source_name=mitdb or "default")
        run.start()
        shown = 0
        while not (state := run.progress()).finished:
            for message in state.messages[shown:]:
                log(message)
            shown = len(state.messages)
            time.sleep(0.2)
        if state.error:
            raise RuntimeError(state.error)
        first = state.model
        replay, started_s = state.replay, state.replay_started_s
        assert replay is not None and started_s is not None  # finished without an error: the replay streams
        state = run.wait()
        for message in state.messages[shown:]:
            log(message)
        snapshot = settle(pipeline, replay)
        paths = [model_path] if model_path is not None else [saved.path for saved in (first, state.model)
                                                             if saved is not None]
        served = {model.version: model for model in (models.load_model(path) for path in paths)}
        return account(replay, snapshot, served, started_s)
