"""``python -m hbcore bench faults``: inject each kind of failure during a replay; account for every beat.

Each scenario replays a few thousand beats through the real local pipeline (replay → Kinesis →
poller → ``lambda_function`` → endpoint server → CloudWatch Logs → results reader), injects one fault
while the beats flow, waits until the reader has seen every beat (``demo.settle``), and checks that
every beat the stream accepted appears exactly once in the reader's results, as a prediction or a
rejected record, and that the predictions agree with the model called directly (``demo.account``).

How each fault is made:

- endpoint down, 5xx, throttled, dropping connections, slow: the endpoint server's ``/_hb/faults``;
  "slow" delays each call past the handler's read timeout (``ENDPOINT_TIMEOUT_S`` of the function,
  set low here through ``StackOptions.endpoint_timeout_s``);
- PutRecords partial failures, throttling, lost responses: botocore event hooks on the replay's
  client (:class:`PutRecordsFaults`; moto never fails a put by itself);
- the handler crashing mid-batch: the function's handler pointed at ``hbcore.bench.faultkit.crashing_handler``;
- the local cloud killed (SIGKILL) and restarted: moto keeps nothing across a restart (stream,
  logs, stack, endpoint), so the stack and endpoint are deployed again and a replay continuing the
  run re-sends every beat the reader had not seen (``Ledger.forget``). "Nothing lost" there means:
  every beat the replay sent ends up once in the reader's results, although the cloud lost the
  records and log lines it held. (On AWS, Kinesis and CloudWatch Logs are durable: no resend.)
- the replay stopped and resumed: a new replay continues the run from the ledger; also with every
  PutRecords call slowed to SLOW_PUT_S, where the stop must still end the sending within one call;
- a model that refuses every request for REFUSING_S (``model_error`` faults for that long): an
  endpoint failure, retried until the model answers again; not one beat may be rejected for it;
- hostile log lines: text no handler prints (not JSON, the wrong shapes and types, other runs'
  ids, control characters, a 200 kB line) written into the function's log group while the beats
  flow; the reader must read past them, keep running, and lose nothing.

Copies are expected (Lambda's delivery is at least once: a batch retried after a crash or a put
resent after a lost answer is logged again); the reader drops them, and the table counts them.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hbcore.app import demo
from hbcore.app.pipeline import Pipeline
from hbcore.aws import stack
from hbcore.aws.backend import Backend
from hbcore.bench.faultkit.crashing_handler import CRASHES_VARIABLE
from hbcore.bench.faultkit.crashing_handler import HANDLER as CRASHING_HANDLER
from hbcore.bench.faultkit.putrecords import PutRecordsFaults
from hbcore.data.dataset import BeatSet
from hbcore.localcloud.owner import LocalCloud
from hbcore.model import training as models
from hbcore.stream import aggregations, tally
from hbcore.stream.beatids import BeatIds
from hbcore.stream.replay import Replay, kinesis_client

ENDPOINT_TIMEOUT_S = 2  # the handler's read timeout in the fault rig (the stack's default is 60 s)
SLOW_CALL_S = 3.0  # a slow endpoint answers after this: past ENDPOINT_TIMEOUT_S
FAULT_RATE_BPS = 500.0
SCENARIO_BEATS = 3000
FAULT_AT = 0.25  # share of the beats sent before the fault is injected
DOWN_S = 10.0
SLOW_S = 6.0
FAILING_CALLS = 4  # each handler invocation tries twice; Lambda's backoff doubles per failure
PUT_FAULT_CALLS = 6
LOST_RESPONSES = 3
CRASHES = 5
RESUME_AFTER_S = 2.0
SLOW_PUT_S = 0.15  # a PutRecords round trip plausible against real AWS (moto answers in milliseconds)
STOP_WITHIN_S = 2 * SLOW_PUT_S + 0.5  # a stop ends the sending after the call in flight
REFUSING_S = DOWN_S  # how long the model refuses every request
HOSTILE_ROUNDS = 5  # times the hostile log lines are written while the beats flow
WAIT_POLL_S = 0.05
HTTP_TIMEOUT_S = 10.0
# Beats not in the results by then count as lost (backoffs reach 8 s, drains take a while).
SETTLE_TIMEOUT_S = 180.0
DUPLICATE_REASON = "duplicate id in this batch"  # lambda_function's reason for a second copy in one batch


# --- the rig: a local cloud with the pipeline deployed --------------------------------------------

class FaultRig:
    """Owner of a local cloud with the pipeline deployed on it, and of the fault controls.

    Parameters
    ----------
    model_path : Path
        The ``model.tar.gz`` the endpoint serves (also called directly for the agreement).
    endpoint_timeout_s : int, default=ENDPOINT_TIMEOUT_S
        The handler's read timeout (a "slow endpoint" is slower than this).
    log_retention_s : float, default=None
        How long the local cloud keeps log events and metric data points (None: its default).
    """

    def __init__(self, model_path: str | Path, endpoint_timeout_s: int = ENDPOINT_TIMEOUT_S,
                 log_retention_s: float | None = None):
        self.model_path = Path(model_path)
        self.model = models.load_model(self.model_path)
        self.options = stack.StackOptions(endpoint_timeout_s=endpoint_timeout_s)
        self.cloud = LocalCloud(log_retention_s=log_retention_s)
        self._pipeline: Pipeline | None = None
        self.restarts = 0

    def start(self) -> FaultRig:
        self.cloud.start()
        self._pipeline = Pipeline(backend=self.cloud.backend)
        self.deploy()
        self.pipeline.reader  # noqa: B018 (the property starts reading, from before the first beat)
        return self

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
        self.cloud.stop()

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline on the rig's cloud (from :meth:`start` on)."""
        if self._pipeline is None:
            raise RuntimeError("the fault rig is not started")
        return self._pipeline

    def __enter__(self) -> FaultRig:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def backend(self) -> Backend:
        return self.cloud.backend

    def deploy(self) -> None:
        """Stack (stream, function, mapping, logs) and endpoint, as ``deploy`` makes them."""
        self.pipeline.ensure_stack(options=self.options)
        self.pipeline.deploy(self.model_path)

    def replay(self, beats: BeatSet, rate_bps: float | None = FAULT_RATE_BPS, ledger=None,
               put_faults: PutRecordsFaults | None = None) -> Replay:
        """Start a replay into the pipeline's stream (continuing ``ledger``'s run when given)."""
        kinesis = kinesis_client(self.backend)
        if put_faults is not None:
            put_faults.attach(kinesis)
        return Replay(kinesis, self.pipeline.names.stream, beats, rate=rate_bps, ledger=ledger).start()

    # -- faults --

    def _runtime(self, method: str, path: str, body: dict | None = None) -> dict:
        base_url = self.backend.sagemaker_runtime_url
        assert base_url is not None  # a local cloud's backend has both URLs
        request = urllib.request.Request(base_url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return json.loads(response.read())

    def inject(self, kind: str, **spec: object) -> None:
        """Add an endpoint fault (``endpoint_server`` ``POST /_hb/faults``)."""
        self._runtime("POST", "/_hb/faults", {"kind": kind, **spec})

    def endpoint_faults_injected(self) -> int:
        """Endpoint calls failed or delayed by injected faults so far (this cloud's lifetime)."""
        return sum(self._runtime("GET", "/_hb/faults")["injected"].values())

    def clear_faults(self) -> None:
        self._runtime("DELETE", "/_hb/faults")

    def mapping_counters(self) -> dict[str, int]:
        """Retries, function errors and skipped records of the mappings (this cloud's lifetime)."""
        mappings = self.cloud.status().get("mappings", [])
        return {name: sum(int(mapping.get(name, 0)) for mapping in mappings)
                for name in ("retries", "function_errors", "skipped_records")}

    def set_handler(self, handler: str, extra_environment: dict[str, str] | None = None) -> tuple[str, dict]:
        """Point the function at ``handler`` with more variables; returns the previous (handler, variables)."""
        lambda_client = self.backend.client("lambda")
        current = lambda_client.get_function_configuration(FunctionName=self.pipeline.names.function)
        # str(): moto's CloudFormation stores Number parameters given to variables as numbers.
        variables = {name: str(value) for name, value in current.get("Environment", {}).get("Variables", {}).items()}
        lambda_client.update_function_configuration(
            FunctionName=self.pipeline.names.function, Handler=handler,
            Environment={"Variables": {**variables, **(extra_environment or {})}})
        return current["Handler"], variables

    def restore_handler(self, previous: tuple[str, dict]) -> None:
        handler, variables = previous
        self.backend.client("lambda").update_function_configuration(
            FunctionName=self.pipeline.names.function, Handler=handler, Environment={"Variables": variables})

    def kill_cloud(self) -> None:
        """SIGKILL the local cloud's process, as a crash would end it."""
        pid = self.cloud.pid
        assert pid is not None, "the rig's cloud runs from start to close"
        os.kill(pid, signal.SIGKILL)

    def restart_cloud(self) -> None:
        """Bring an (empty) cloud back on the same ports and deploy the pipeline again."""
        self.cloud.restart()
        self.restarts += 1
        self.deploy()


# --- scenarios ------------------------------------------------------------------------------------

@dataclass
class Trial:
    """What a scenario started: its replays (the last one carries the run's whole ledger), how to
    count the faults it injected (asked once the beats have settled), and what to undo afterwards."""

    replays: list[Replay]
    injected: Callable[[], int]
    cleanup: Callable[[], None] = field(default=lambda: None)
    problem: str | None = None  # what the scenario saw go wrong that the beat counts cannot show


@dataclass(frozen=True)
class Scenario:
    """One row of the table: its name and what it does to a rig while replaying beats."""

    name: str
    run: Callable[[FaultRig, BeatSet, float | None], Trial]


def wait_until_sent(replay: Replay, count: int, timeout_s: float = 120.0) -> None:
    """Block until the replay has had ``count`` beats accepted (or has ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        progress = replay.progress()
        if progress.sent >= count or progress.done:
            return
        time.sleep(WAIT_POLL_S)
    raise TimeoutError(f"replay {replay.run}: {count} beats not sent within {timeout_s:.0f} s")


def endpoint_fault(*faults: dict) -> Callable[[FaultRig, BeatSet, float | None], Trial]:
    """A scenario injecting ``faults`` (``/_hb/faults`` bodies) once a quarter of the beats is sent."""
    def run(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
        before = rig.endpoint_faults_injected()
        replay = rig.replay(beats, rate_bps)
        wait_until_sent(replay, int(len(beats) * FAULT_AT))
        for fault in faults:
            rig.inject(**fault)
        return Trial([replay], lambda: rig.endpoint_faults_injected() - before)
    return run


def put_fault(mode: str, calls: int) -> Callable[[FaultRig, BeatSet, float | None], Trial]:
    """A scenario failing ``calls`` PutRecords calls of the replay, after the first few went through."""
    def run(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
        faults = PutRecordsFaults(mode, calls, skip_calls=5)
        return Trial([rig.replay(beats, rate_bps, put_faults=faults)], lambda: faults.injected)
    return run


def handler_crash(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
    """The handler crashes half-way through logging its next CRASHES batches."""
    before = rig.mapping_counters()["function_errors"]
    previous = rig.set_handler(CRASHING_HANDLER, {CRASHES_VARIABLE: str(CRASHES)})
    replay = rig.replay(beats, rate_bps)
    return Trial([replay], lambda: rig.mapping_counters()["function_errors"] - before,
                 cleanup=lambda: rig.restore_handler(previous))


def cloud_restart(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
    """Kill the local cloud mid-replay, bring it back empty, redeploy, resend what the reader lacks."""
    replay = rig.replay(beats, rate_bps)
    wait_until_sent(replay, int(len(beats) * FAULT_AT))
    rig.kill_cloud()
    replay.stop()
    rig.restart_cloud()
    ledger = replay.ledger
    ledger.forget(demo.unaccounted(replay, rig.pipeline.reader.snapshot()))
    return Trial([replay, rig.replay(beats, rate_bps, ledger=ledger)], lambda: 1)


def replay_stop_resume(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
    """Stop the replay after a quarter of the beats; continue the run from its ledger a little later."""
    replay = rig.replay(beats, rate_bps)
    wait_until_sent(replay, int(len(beats) * FAULT_AT))
    replay.stop()
    time.sleep(RESUME_AFTER_S)
    return Trial([replay, rig.replay(beats, rate_bps, ledger=replay.ledger)], lambda: 1)


def slow_put_stop_resume(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
    """Stop a replay whose every PutRecords call takes SLOW_PUT_S; it must end within one call. Then continue."""
    slowed = [0]

    def slow(**kwargs: object) -> None:
        slowed[0] += 1
        time.sleep(SLOW_PUT_S)

    kinesis = kinesis_client(rig.backend)
    kinesis.meta.events.register("before-send.kinesis.PutRecords", slow)
    replay = Replay(kinesis, rig.pipeline.names.stream, beats, rate=rate_bps).start()
    wait_until_sent(replay, int(len(beats) * FAULT_AT))
    asked = time.monotonic()
    stopped = replay.stop(timeout_s=SETTLE_TIMEOUT_S)
    took_s = time.monotonic() - asked
    problem = None
    if stopped.state != "stopped" or took_s > STOP_WITHIN_S:
        problem = (f"stop took {took_s:.2f} s (more than {STOP_WITHIN_S:g} s) and ended {stopped.state!r} "
                   f"with {stopped.sent} of {stopped.total} beats sent")
    return Trial([replay, rig.replay(beats, rate_bps, ledger=replay.ledger)], lambda: slowed[0], problem=problem)


def hostile_lines(run: str, beats: BeatSet) -> list[str]:
    """Log lines no handler prints, several of each kind, some naming this run's beats or shaped like its lines."""
    record, sample = str(beats.meta["record"].iloc[0]), int(beats.meta["sample"].iloc[0])
    lines = ["", "   ", "not json at all", "{", "}", "[]", "[1, 2, 3]", "null", "true", "42", '"a string"',
             "START RequestId: 00000000-0000-0000-0000-000000000000 Version: $LATEST",
             "\x00\x01\x1b[31m control characters \u0007", "\ud800 lone surrogate", "é" * 1000,
             "x" * 200_000, json.dumps({"kind": "prediction"}), json.dumps({"kind": "rejected"}),
             json.dumps({"kind": "summary", "beats": "many"}), json.dumps({"kind": 7, "id": None})]
    for identity in (f"{run}:{record}:{sample}:extra", f"{run}:{record}", f"other-run:{record}:{sample}", 5, None,
                     [run], {"run": run}):
        lines += [json.dumps({"kind": "prediction", "id": identity, "pred": "N", "probability": "high"}),
                  json.dumps({"kind": "prediction", "id": identity, "pred": 99, "probability": -1, "label": {},
                              "latency_ms": "soon", "sent_at": [], "t_s": "later"}),
                  json.dumps({"kind": "rejected", "id": identity, "reason": 12}),
                  json.dumps({"id": identity, "level": "INFO"}) + " trailing text"]
    return lines


def hostile_log_lines(rig: FaultRig, beats: BeatSet, rate_bps: float | None) -> Trial:
    """Write hostile log lines into the function's log group, HOSTILE_ROUNDS times while the beats flow."""
    logs = rig.backend.client("logs")
    log_group = rig.pipeline.names.log_group
    replay = rig.replay(beats, rate_bps)
    lines = hostile_lines(replay.run, beats)
    written = 0
    for round_ in range(HOSTILE_ROUNDS):
        wait_until_sent(replay, int(len(beats) * (round_ + 1) / (HOSTILE_ROUNDS + 1)))
        stream = f"hostile/{replay.run}/{round_}"
        logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
        now_ms = int(time.time() * 1000)
        logs.put_log_events(logGroupName=log_group, logStreamName=stream,
                            logEvents=[{"timestamp": now_ms, "message": line} for line in lines if line])
        written += sum(1 for line in lines if line)
    return Trial([replay], lambda: written)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("none", endpoint_fault()),
    Scenario(f"endpoint down {DOWN_S:g} s (503)", endpoint_fault({"kind": "unavailable", "seconds": DOWN_S})),
    Scenario(f"endpoint slow {SLOW_CALL_S:g} s > {ENDPOINT_TIMEOUT_S} s timeout, {SLOW_S:g} s",
             endpoint_fault({"kind": "delay", "delay_s": SLOW_CALL_S, "seconds": SLOW_S})),
    Scenario("endpoint 5xx (500, ModelError)", endpoint_fault({"kind": "internal", "calls": FAILING_CALLS},
                                                             {"kind": "model_error", "calls": FAILING_CALLS})),
    Scenario("endpoint throttling", endpoint_fault({"kind": "throttle", "calls": 2 * FAILING_CALLS})),
    Scenario("endpoint drops connections", endpoint_fault({"kind": "drop", "calls": FAILING_CALLS})),
    Scenario("PutRecords partial failures", put_fault("partial", PUT_FAULT_CALLS)),
    Scenario("PutRecords throttled", put_fault("throttle", PUT_FAULT_CALLS)),
    Scenario("PutRecords answer lost", put_fault("lost_response", LOST_RESPONSES)),
    Scenario("handler crash mid-batch", handler_crash),
    Scenario("replay stopped + resumed", replay_stop_resume),
    Scenario("local cloud killed + restarted", cloud_restart),
    Scenario("hostile log lines", hostile_log_lines),
    Scenario(f"PutRecords slow ({SLOW_PUT_S:g} s), stopped + resumed", slow_put_stop_resume),
    Scenario(f"model refuses every request {REFUSING_S:g} s",
             endpoint_fault({"kind": "model_error", "seconds": REFUSING_S})),
)


# --- accounting -----------------------------------------------------------------------------------

def beat_results(replay: Replay, snapshot: tally.ResultsSnapshot) -> dict:
    """Per beat of the run: one result each? ``lost`` counts every beat of the replay without a result,
    sent or not (a replay that failed lost the beats it did not send). Copies of a predicted beat (a
    second record rejected as a duplicate id in its batch) are copies, not results."""
    predicted = snapshot.totals(replay.run).ids
    assert predicted is not None  # one run's totals hold its ids (only all runs merged have none)
    rejected = aggregations.for_run(snapshot.rejected, replay.run)
    rejected_ids = rejected["id"].dropna()
    copies = (rejected_ids.map(predicted.__contains__).astype(bool)
              & rejected.loc[rejected_ids.index, "reason"].str.startswith(DUPLICATE_REASON))
    results_ids = rejected_ids[~copies]
    outcome_rejected = set(results_ids)
    meta = replay.beats.meta
    every = BeatIds.of(replay.run, meta["record"], meta["sample"])
    lost = [identity for identity in every.difference(predicted) if identity not in outcome_rejected]
    unknown = set(predicted.difference(every)) | {identity for identity in outcome_rejected if identity not in every}
    return {
        "predicted": len(predicted),
        "rejected": len(outcome_rejected),
        "lost": len(lost),
        "unknown": len(unknown),
        "rejected_copies": int(copies.sum()),
        "exactly_once": not lost and not unknown and results_ids.is_unique
        and not any(identity in predicted for identity in outcome_rejected),
    }


def run_scenario(rig: FaultRig, scenario: Scenario, beats: BeatSet, rate_bps: float | None) -> dict:
    """Run one scenario and account for its beats: the row of the table."""
    started = time.monotonic()
    started_s = time.time()
    restarts = rig.restarts
    counters_before = rig.mapping_counters()
    copies_before = rig.pipeline.reader.snapshot().stats.duplicate_predictions
    trial = scenario.run(rig, beats, rate_bps)
    try:
        replay = trial.replays[-1]
        for earlier in trial.replays[:-1]:
            earlier.wait()
        snapshot = demo.settle(rig.pipeline, replay, SETTLE_TIMEOUT_S)
        injected = trial.injected()
    finally:
        trial.cleanup()
    summary = demo.account(replay, snapshot, rig.model, started_s)
    counts = beat_results(replay, snapshot)
    counters = rig.mapping_counters()
    if rig.restarts == restarts:  # a restarted cloud counts from zero
        counters = {name: value - counters_before[name] for name, value in counters.items()}
    return {
        "fault": scenario.name,
        "injected": injected,
        "sent": summary["sent"],
        "predicted": counts["predicted"],
        "rejected": counts["rejected"],
        "lost": counts["lost"],
        "duplicated": snapshot.stats.duplicate_predictions - copies_before + counts["rejected_copies"],
        "retried_puts": sum(r.progress().retried for r in trial.replays),
        "retried_batches": counters["retries"],
        "dead_lettered": counters["skipped_records"],  # records the mapping gave up on
        "agreement": summary["agreement"],
        "exactly_once": counts["exactly_once"],
        "latency_p95_ms": summary["latency_p95_ms"],
        "seconds": round(time.monotonic() - started, 1),
        "replay_error": next((r.progress().error for r in trial.replays if r.progress().error), None),
        "reader_error": reader_failure(snapshot),
        "problem": trial.problem,
    }


def reader_failure(snapshot: tally.ResultsSnapshot) -> str | None:
    """Why the results reader's thread ended, or None while it reads on (as it must through every fault)."""
    if snapshot.stats.state != "failed":
        return None
    return snapshot.stats.errors[-1] if snapshot.stats.errors else "the reader failed without a reason"


# --- the command ----------------------------------------------------------------------------------

TABLE_COLUMNS = (("fault", "<42"), ("injected", ">8"), ("sent", ">6"), ("predicted", ">9"), ("rejected", ">8"),
                 ("lost", ">5"), ("duplicated", ">10"), ("retried", ">9"), ("agreement", ">9"), ("once", ">4"),
                 ("seconds", ">7"))


def table_row(row: dict) -> str:
    cells = dict(row, retried=f"{row['retried_puts']}/{row['retried_batches']}",
                 once="yes" if row["exactly_once"] else "NO", agreement=f"{row['agreement']:.4f}")
    return "  ".join(f"{cells[name]:{spec}}" for name, spec in TABLE_COLUMNS)


def scenarios_named(names: list[str] | None) -> list[Scenario]:
    """The scenarios with these table names (all when None); ValueError naming any unknown one."""
    unknown = sorted(set(names or ()) - {scenario.name for scenario in SCENARIOS})
    if unknown:
        raise ValueError(f"unknown fault scenario(s) {', '.join(map(repr, unknown))}: expected one of "
                         + ", ".join(repr(scenario.name) for scenario in SCENARIOS))
    return [scenario for scenario in SCENARIOS if names is None or scenario.name in names]


def run_faults(model_path: Path, beats: BeatSet, rate_bps: float | None = FAULT_RATE_BPS,
               scenarios: Sequence[Scenario] = SCENARIOS, log=print) -> list[dict]:
    """Each scenario in turn on one rig; one row each."""
    rows = []
    with FaultRig(model_path) as rig:
        for scenario in scenarios:
            rows.append(run_scenario(rig, scenario, beats, rate_bps))
            log(table_row(rows[-1]))
    return rows


def run_bench_faults(beats: int = SCENARIO_BEATS, rate: float = FAULT_RATE_BPS, model: Path | str | None = None,
                     scenarios: Sequence[str] | None = None, mitdb: str | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """The fault table, a row through ``log`` as each scenario ends (they take minutes), and its JSON.

    ``scenarios`` are table names (all when None); ``model`` None serves the demo's model, trained if absent.
    ``retried`` in the table = PutRecords entries resent / batches retried.
    """
    from hbcore.data import dataset

    chosen = scenarios_named(list(scenarios) if scenarios else None)
    all_beats = dataset.load_beats(mitdb)
    model_path = Path(model) if model else demo.find_or_train_model(all_beats).path
    selection = demo.replay_selection(all_beats, beats)
    header = "  ".join(f"{name:{spec}}" for name, spec in TABLE_COLUMNS)
    log(header)
    log("-" * len(header))
    rows = run_faults(model_path, selection, rate, chosen, log=log)
    return {"bench": "faults", "beats_per_scenario": len(selection), "rate_bps": rate,
            "all_exactly_once": all(row["exactly_once"] for row in rows),
            "lost": sum(row["lost"] for row in rows), "scenarios": rows}
