"""The owner of one deployment's moving parts: backend, stack, endpoint, replay thread and reader.

The app keeps one :class:`Pipeline` in ``st.cache_resource`` and ``python -m hbcore demo`` makes one
of its own: both drive the pipeline through the same methods, so everything a page can do the
command line can do. On the local backend the first use of :attr:`Pipeline.backend` starts the
embedded cloud (a child process that stops with this one); on AWS it is plain boto3.

All methods are safe to call from several threads (Streamlit reruns, fragments): the parts are
created under one lock, and each part guards its own state.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hbcore.app import prelaunch
from hbcore.app.marks import Mark, MarkLog
from hbcore.app.prelaunch import WARM_UP_ENV
from hbcore.app.settings import Settings
from hbcore.aws import endpoint as serving
from hbcore.aws import stack
from hbcore.aws.backend import Backend
from hbcore.aws.identity import CredentialsProblem, Identity, caller_identity
from hbcore.aws.names import Names
from hbcore.aws.progress import Progress, silent
from hbcore.aws.redaction import user_message
from hbcore.contracts import inference, stream_record
from hbcore.data.dataset import BeatSet
from hbcore.errors import HbError
from hbcore.stream import reader
from hbcore.stream.reader import ResultsReader
from hbcore.stream.replay import Replay, kinesis_client

if TYPE_CHECKING:
    from hbcore.localcloud.owner import LocalCloud

# The reader starts this long before a replay's first beat, so beats logged early are not missed.
READER_MARGIN_S = 60
# How far back each poll of the reader re-reads for log events that became readable late. CloudWatch
# Logs ingests a function's output seconds after it is printed (reader.LAG_S); the local cloud
# writes each line as it is printed (hbcore.localcloud.poller), so seconds of margin are plenty there, and
# re-reading less cut the local pipeline's CPU per beat by ~15 % at full speed (bench pipeline).
LOCAL_READER_LAG_S = 3
# How long stopping a replay waits for its thread: the call in flight (read_timeout of kinesis_client, 30 s,
# at worst; well under a second normally) must end first.
REPLAY_STOP_TIMEOUT_S = 10.0


def _model_label(model_tar: str | Path) -> str:
    """A model's name on the timeline: its store folder (the version) when it has one."""
    path = Path(model_tar)
    return path.parent.name if path.name == "model.tar.gz" else path.name


class ReplayStillRunning(HbError, RuntimeError):
    """A replay did not end when asked, so a second one was not started beside it."""


@dataclass(frozen=True)
class PartStatus:
    """One box of the status panel: ``state`` is "ok", "idle", "working", "missing" or "error"."""

    state: str
    detail: str


class Pipeline:
    """Backend, stack, endpoint, replay and reader of one deployment (see the module docstring).

    Parameters
    ----------
    settings : Settings
        Backend kind, region, profile and resource-name prefix.
    backend : Backend, default=None
        Use this backend instead of deriving one from ``settings`` (tests, an already running cloud).
    """

    def __init__(self, settings: Settings = Settings(), backend: Backend | None = None):
        self.settings = settings
        self.names: Names = settings.names
        if backend is None and settings.backend == "aws":
            backend = Backend(kind="aws", region=settings.region, profile=settings.profile)  # makes no call
        self._backend = backend
        self._cloud: LocalCloud | None = None  # the embedded cloud (local backend), once started
        self._lock = threading.RLock()
        self._stack_outputs: dict[str, str] | None = None
        self._deployment: serving.Deployment | None = None
        self.deployed_path: Path | None = None  # the model_tar of this pipeline's latest deploy
        self.replay: Replay | None = None
        self._reader: ResultsReader | None = None
        self._marks = MarkLog()
        self._busy: dict[str, str] = {}  # part → what is being done to it (see _busy_with)
        self._busy_lock = threading.Lock()
        self._identity: Identity | CredentialsProblem | None = None  # AWS: the last credentials check
        self._warm_up: threading.Thread | None = None
        self._closed = False

    # -- backend --

    @property
    def backend(self) -> Backend:
        """The boto3 target; on the local backend the first access starts the embedded cloud.

        An access after the cloud's process died (killed, out of memory) starts it again on the same
        URLs, empty: the stack and the endpoint are made again by the next deploy or demo.
        """
        with self._lock:
            if self._backend is None:
                from hbcore.localcloud.owner import LocalCloud

                self._cloud = (prelaunch.take() or LocalCloud()).start()  # the app's launched child, if any
                self._backend = self._cloud.backend
            elif self._cloud is not None and not self._cloud.running:  # _cloud_died
                self._cloud.restart()
                self._stack_outputs = None
                self._deployment = None
                self.deployed_path = None
            return self._backend

    def identity(self, refresh: bool = False) -> Identity | CredentialsProblem | None:
        """AWS: whose account the credentials reach, or what is missing (checked once, then kept
        until ``refresh``); None on the local backend, which needs no credentials."""
        if self.settings.backend != "aws":
            return None
        if self._identity is not None and not refresh:  # read without the lock a deploy may hold for minutes
            return self._identity
        with self._lock:
            if self._identity is None or refresh:
                try:
                    self._identity = caller_identity(self.backend)
                except CredentialsProblem as problem:
                    self._identity = problem
            return self._identity

    def unusable(self) -> str | None:
        """Why nothing can be deployed on this backend (AWS credentials missing, refused...), or None."""
        checked = self.identity()
        return str(checked) if isinstance(checked, CredentialsProblem) else None

    @property
    def _cloud_died(self) -> bool:
        return self._cloud is not None and not self._cloud.running

    @property
    def backend_started(self) -> bool:
        """Whether the backend exists yet (the status panel must not start a cloud just to look)."""
        return self._backend is not None

    def warm_up(self, then: Callable[[Pipeline], object] | None = None) -> bool:
        """Local backend: start the embedded cloud, create the stack and start the reader in a background
        thread, once; then ``then(self)`` in the same thread.

        The home page calls it when it opens, with ``then`` serving the stored model the demo would
        deploy (hbcore.app.demo.stage_model), so that **Run the full demo** waits for none of it
        (together ~4–6 s of a fresh app's cached demo). The local stack costs nothing; on AWS nothing
        is created before a click. A failure here is left to the demo or deploy that follows, whose own
        ``ensure_stack`` or deploy reports it. Whether this call started it.
        """
        if self.settings.backend != "local" or os.environ.get(WARM_UP_ENV) == "0":
            return False
        with self._lock:
            if self._warm_up is not None or self._backend is not None or self._closed:
                return False
            self._warm_up = threading.Thread(target=self._warm, args=(then,), name="pipeline-warm-up", daemon=True)
            self._warm_up.start()
            return True

    def wait_for_warm_up(self, timeout_s: float | None = None) -> None:
        """Return once the warm-up has ended (at once when none was started), or after ``timeout_s``: for work
        that would otherwise take the warm-up's CPU."""
        warming = self._warm_up  # set once, never cleared (not under _lock: the warm-up holds it for the stack)
        if warming is not None:
            warming.join(timeout_s)

    def _warm(self, then: Callable[[Pipeline], object] | None) -> None:
        with contextlib.suppress(Exception):  # reported by the next ensure_stack or deploy (see warm_up)
            with self._lock:
                if self._closed:  # a close before this thread got the lock: start nothing again
                    return
                self.ensure_stack()
                self.reader  # noqa: B018 (starts polling: a run's first beats then find the reader reading)
            if then is not None and not self._closed:
                then(self)

    # -- stack and endpoint --

    def ensure_stack(self, progress: Progress = silent, options: stack.StackOptions | None = None) -> dict[str, str]:
        """Create or update the stream, function, log group and mapping; returns the stack outputs."""
        with self._busy_with("stack", "creating or updating the stream, function and mapping"), self._lock:
            result = stack.deploy_stack(self.backend, self.names, options=options or stack.StackOptions(),
                                        progress=progress)
            self._stack_outputs = result.outputs
            return result.outputs

    @contextlib.contextmanager
    def _busy_with(self, part: str, detail: str) -> Iterator[None]:
        """Mark ``part`` as being worked on, so that :meth:`status` reports it without waiting for the lock
        the work holds (a stack takes seconds to minutes)."""
        with self._busy_lock:
            self._busy[part] = detail
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy.pop(part, None)

    def _busy_part(self, part: str) -> PartStatus | None:
        with self._busy_lock:
            detail = self._busy.get(part)
        return None if detail is None else PartStatus("working", detail)

    def stack_outputs(self) -> dict[str, str] | None:
        """The outputs of the deployed stack, or None when there is none (read once, then cached)."""
        with self._lock:
            if self._stack_outputs is None and self.backend_started:
                status = stack.stack_status(self.backend, self.names)
                if status and status.get("outputs"):
                    self._stack_outputs = status["outputs"]
            return self._stack_outputs

    def deploy(self, model_tar: str | Path, spec: serving.EndpointSpec | None = None,
               progress: Progress = silent, label: str | None = None) -> serving.Deployment:
        """Serve ``model_tar`` on the endpoint (making the stack first if needed).

        A change of the served model is marked on the timeline, as ``label`` (default: the model's
        folder name, its version in the store).
        """
        outputs = self.stack_outputs() or self.ensure_stack(progress)
        with self._busy_with("endpoint", f"deploying {_model_label(model_tar)}"), self._lock:
            previous = self._deployment
            self._deployment = serving.deploy_model(
                self.backend, self.names, model_tar, outputs["EndpointRoleArn"], spec or serving.EndpointSpec(),
                progress=progress)
            self.deployed_path = Path(model_tar)
            if self._deployment.changed:
                self._marks.add("model", f"{label or 'model ' + _model_label(model_tar)} deployed"
                                         + ("" if previous is None else " in place of the previous one"))
            return self._deployment

    def endpoint_status(self) -> dict | None:
        """The endpoint's status and model, or None when it is not deployed."""
        return serving.endpoint_status(self.backend, self.names) if self.backend_started else None

    def test_invoke(self, beats: np.ndarray, rr: np.ndarray | None = None) -> dict:
        """Call the endpoint with a few beats as the handler would send them once replayed (values as
        a stream record carries them); the endpoint's JSON answer, checked against the contract."""
        beats = np.atleast_2d(beats)
        body = inference.encode_request(stream_record.carried_beats(beats),
                                        None if rr is None else stream_record.carried_seconds(rr))
        started = time.perf_counter()
        response = self.backend.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=self.names.endpoint, ContentType=inference.CONTENT_TYPE, Accept=inference.CONTENT_TYPE,
            Body=body)
        payload = response["Body"].read()
        inference.decode_response(payload, expected=len(beats))
        answer = json.loads(payload)
        answer["round_trip_ms"] = (time.perf_counter() - started) * 1000
        return answer

    # -- replay and reader --

    def start_replay(self, beats: BeatSet, *, rate_bps: float | None = None, speed: float | None = None,
                     aggregate: bool = True) -> Replay:
        """Stop any running replay, wait for it, and stream ``beats`` (already selected and ordered) into the stream.

        Two replays never run side by side (they would share the stream's throughput and the monitor
        would show only the second): if the running one has not ended within REPLAY_STOP_TIMEOUT_S,
        nothing is started and :class:`ReplayStillRunning` says so. ``aggregate``: KPL-aggregated
        records (:class:`~hbcore.stream.replay.Replay`), the default: a twentieth of the PUT payload units.
        """
        with self._lock:
            self.stop_replay()
            if self.replay is not None and not self.replay.progress().done:
                raise ReplayStillRunning(f"replay {self.replay.run} did not stop within {REPLAY_STOP_TIMEOUT_S:g} s, "
                                         "so no second replay was started: press Stop, then Start again")
            reader = self.reader  # the property starts reading, before the first beat is logged
            self.replay = Replay(kinesis_client(self.backend), self.names.stream, beats, rate=rate_bps,
                                 speed=speed, aggregate=aggregate).start()
            reader.expect_events(self.replay.run)  # its first beats are polled for sooner
            records = beats.records()
            self._marks.add("start", f"run {self.replay.run} started: {len(beats):,} beats of "
                                     f"{len(records)} record{'s' if len(records) != 1 else ''}", self.replay.run)
            return self.replay

    def stop_replay(self) -> None:
        """Stop the replay thread, if any (the beats already accepted still flow through)."""
        with self._lock:
            if self.replay is not None and not self.replay.progress().done:
                self.replay.stop(timeout_s=REPLAY_STOP_TIMEOUT_S)
                progress = self.replay.progress()
                self._marks.add("stop", f"run {progress.run} stopped at {progress.sent:,} of {progress.total:,} beats",
                                progress.run)

    def pause_replay(self) -> None:
        """Hold the running replay (marked on the timeline); nothing when none runs."""
        with self._lock:
            if self.replay is not None and self.replay.progress().state == "running":
                self.replay.pause()
                self._marks.add("pause", f"run {self.replay.run} paused", self.replay.run)

    def resume_replay(self) -> None:
        """Let a paused replay go on (marked on the timeline)."""
        with self._lock:
            if self.replay is not None and self.replay.progress().state == "paused":
                self.replay.resume()
                self._marks.add("resume", f"run {self.replay.run} resumed", self.replay.run)

    def replay_running(self) -> bool:
        """Whether a replay is sending or paused (a new one would replace it: the pages ask first).

        Read without the lock, which a stack creation (the warm-up's among them) holds for seconds:
        the demo button's callback must not wait for it.
        """
        replay = self.replay
        return replay is not None and not replay.progress().done

    def marks(self) -> list[Mark]:
        """The timeline's marks, oldest first: runs started, paused, resumed, stopped or ended, models deployed.

        A run that ended by itself (every beat sent, or failed) is marked when this is first asked
        after its end, so its time is within one monitor refresh of the end.
        """
        with self._lock:
            if self.replay is not None:
                progress = self.replay.progress()
                if progress.done and not self._marks.has("stop", progress.run):
                    self._marks.add("stop", f"run {progress.run} {progress.state} at {progress.sent:,} of "
                                            f"{progress.total:,} beats", progress.run)
            return self._marks.all()

    @property
    def reader(self) -> ResultsReader:
        """The Logs Insights reader over the function's log group, polling in the background."""
        with self._lock:
            if self._reader is None:
                lag_s = LOCAL_READER_LAG_S if self.backend.is_local else reader.LAG_S
                self._reader = ResultsReader(self.backend.client("logs"), self.names.log_group,
                                             start_s=time.time() - READER_MARGIN_S, lag_s=lag_s).start()
            return self._reader

    @property
    def current_run(self) -> str | None:
        """The run id of the latest replay (the monitor shows this run)."""
        return self.replay.run if self.replay is not None else None

    # -- status --

    def status(self) -> dict[str, PartStatus]:
        """The state of each part for the status panel; never starts anything."""
        parts = {"backend": self._backend_status()}
        if parts["backend"].state == "error" and self.settings.backend == "aws":
            unknown = PartStatus("idle", "unknown until the AWS credentials work")
            return {**parts, "stack": unknown, "endpoint": unknown, "replay": self._replay_part(), "reader": unknown}
        if not self.backend_started:
            idle = PartStatus("idle", "starts with the first action")
            return {**parts, "stack": idle, "endpoint": idle, "replay": idle, "reader": idle}
        if self._cloud_died:
            lost = PartStatus("missing", "lost with the local cloud")
            return {**parts, "stack": lost, "endpoint": lost, "replay": self._replay_part(), "reader": lost}
        busy_stack, busy_endpoint = self._busy_part("stack"), self._busy_part("endpoint")
        if busy_stack or busy_endpoint:  # the lock is held for the work: report what is known without it
            parts["stack"] = busy_stack or PartStatus("ok" if self._stack_outputs else "missing",
                                                      "ready" if self._stack_outputs else "not deployed yet")
            parts["endpoint"] = busy_endpoint or PartStatus("idle", "waits for the stack")
            return {**parts, "replay": self._replay_part(), "reader": self._reader_part()}
        outputs = self.stack_outputs()
        parts["stack"] = (PartStatus("ok", f"stream {self.names.stream} → function {self.names.function}")
                          if outputs else PartStatus("missing", "not deployed yet"))
        parts["endpoint"] = self._endpoint_part()
        parts["replay"] = self._replay_part()
        parts["reader"] = self._reader_part()
        return parts

    def _backend_status(self) -> PartStatus:
        if self.settings.backend == "aws":
            checked = self.identity()
            if isinstance(checked, CredentialsProblem):
                return PartStatus("error", f"{checked.missing}: {checked}")
            assert checked is not None  # the AWS backend's check gives an identity or a problem
            return PartStatus("ok", f"AWS {checked.describe()}")
        if self._cloud is None:
            return PartStatus("idle" if self._backend is None else "ok", "local cloud on 127.0.0.1")
        if self._cloud_died:
            return PartStatus("error", "the local cloud stopped and lost its state: Run the full demo (or deploy) "
                                       "starts it again")
        assert self._backend is not None  # set with the cloud (backend), cleared with it (close)
        return PartStatus("ok", f"local cloud at {self._backend.endpoint_url}")

    def _endpoint_part(self) -> PartStatus:
        try:
            status = self.endpoint_status()
        except Exception as error:  # the status panel reports, it never raises
            return PartStatus("error", user_message(error))  # one line: botocore may quote a whole proxy page
        if status is None:
            return PartStatus("missing", "no model deployed")
        state = {"InService": "ok", "Failed": "error"}.get(status["status"], "working")
        return PartStatus(state, f"{status['endpoint']}: {status['status']}")

    def _replay_part(self) -> PartStatus:
        if self.replay is None:
            return PartStatus("idle", "not started")
        progress = self.replay.progress()
        state = {"running": "working", "failed": "error"}.get(progress.state, "ok")
        return PartStatus(state, f"{progress.state}: {progress.sent:,}/{progress.total:,} beats sent")

    def _reader_part(self) -> PartStatus:
        if self._reader is None:
            return PartStatus("idle", "not started")
        stats = self._reader.snapshot().stats
        counts = f"{stats.predictions:,} predictions, {stats.rejected:,} rejected"
        if stats.state == "failed":
            return PartStatus("error", f"the reader stopped: {stats.errors[-1] if stats.errors else 'unknown error'} "
                                       f"({counts})")
        state = "error" if stats.errors and stats.failed_queries else "ok"
        return PartStatus(state, counts)

    def close(self) -> None:
        """Stop the replay, the reader and (local backend) the embedded cloud."""
        with self._lock:
            self._closed = True
            self.stop_replay()
            if self._reader is not None:
                self._reader.stop()
                self._reader = None
            if self._cloud is not None:
                self._cloud.stop()
                self._cloud = None
                self._backend = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

