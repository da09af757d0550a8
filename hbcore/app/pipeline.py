"""The owner of one deployment's moving parts: backend, stack, endpoint, replay thread and reader.

The app keeps one :class:`Pipeline` in ``st.cache_resource`` and ``python -m hbcore demo`` makes one
of its own: both drive the pipeline through the same methods, so everything a page can do the
command line can do. On the local backend the first use of :attr:`Pipeline.backend` starts the
embedded cloud (a child process that stops with this one); on AWS it is plain boto3.

All methods are safe to call from several threads (Streamlit reruns, fragments): the parts are
created under one lock, and each part guards its own state.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hbcore.app.settings import Settings
from hbcore.aws import endpoint as serving
from hbcore.aws import stack
from hbcore.aws.backend import Backend
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
        self.replay: Replay | None = None
        self._reader: ResultsReader | None = None

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

                self._cloud = LocalCloud().start()
                self._backend = self._cloud.backend
            elif self._cloud is not None and not self._cloud.running:  # _cloud_died
                self._cloud.restart()
                self._stack_outputs = None
                self._deployment = None
            return self._backend

    @property
    def _cloud_died(self) -> bool:
        return self._cloud is not None and not self._cloud.running

    @property
    def backend_started(self) -> bool:
        """Whether the backend exists yet (the status panel must not start a cloud just to look)."""
        return self._backend is not None

    # -- stack and endpoint --

    def ensure_stack(self, progress: Progress = silent, options: stack.StackOptions | None = None) -> dict[str, str]:
        """Create or update the stream, function, log group and mapping; returns the stack outputs."""
        with self._lock:
            result = stack.deploy_stack(self.backend, self.names, options=options or stack.StackOptions(),
                                        progress=progress)
            self._stack_outputs = result.outputs
            return result.outputs

    def stack_outputs(self) -> dict[str, str] | None:
        """The outputs of the deployed stack, or None when there is none (read once, then cached)."""
        with self._lock:
            if self._stack_outputs is None and self.backend_started:
                status = stack.stack_status(self.backend, self.names)
                if status and status.get("outputs"):
                    self._stack_outputs = status["outputs"]
            return self._stack_outputs

    def deploy(self, model_tar: str | Path, spec: serving.EndpointSpec | None = None,
               progress: Progress = silent) -> serving.Deployment:
        """Serve ``model_tar`` on the endpoint (making the stack first if needed)."""
        outputs = self.stack_outputs() or self.ensure_stack(progress)
        with self._lock:
            self._deployment = serving.deploy_model(
                self.backend, self.names, model_tar, outputs["EndpointRoleArn"], spec or serving.EndpointSpec(),
                progress=progress)
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
                     aggregate: bool = False) -> Replay:
        """Stop any running replay, wait for it, and stream ``beats`` (already selected and ordered) into the stream.

        Two replays never run side by side (they would share the stream's throughput and the monitor
        would show only the second): if the running one has not ended within REPLAY_STOP_TIMEOUT_S,
        nothing is started and :class:`ReplayStillRunning` says so. ``aggregate``: KPL-aggregated
        records (:class:`~hbcore.stream.replay.Replay`).
        """
        with self._lock:
            self.stop_replay()
            if self.replay is not None and not self.replay.progress().done:
                raise ReplayStillRunning(f"replay {self.replay.run} did not stop within {REPLAY_STOP_TIMEOUT_S:g} s, "
                                         "so no second replay was started: press Stop, then Start again")
            self.reader  # noqa: B018 (the property starts reading, before the first beat is logged)
            self.replay = Replay(kinesis_client(self.backend), self.names.stream, beats, rate=rate_bps,
                                 speed=speed, aggregate=aggregate).start()
            return self.replay

    def stop_replay(self) -> None:
        """Stop the replay thread, if any (the beats already accepted still flow through)."""
        with self._lock:
            if self.replay is not None and not self.replay.progress().done:
                self.replay.stop(timeout_s=REPLAY_STOP_TIMEOUT_S)

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
        if not self.backend_started:
            idle = PartStatus("idle", "starts with the first action")
            return {**parts, "stack": idle, "endpoint": idle, "replay": idle, "reader": idle}
        if self._cloud_died:
            lost = PartStatus("missing", "lost with the local cloud")
            return {**parts, "stack": lost, "endpoint": lost, "replay": self._replay_part(), "reader": lost}
        outputs = self.stack_outputs()
        parts["stack"] = (PartStatus("ok", f"stream {self.names.stream} → function {self.names.function}")
                          if outputs else PartStatus("missing", "not deployed yet"))
        parts["endpoint"] = self._endpoint_part()
        parts["replay"] = self._replay_part()
        parts["reader"] = self._reader_part()
        return parts

    def _backend_status(self) -> PartStatus:
        if self.settings.backend == "aws":
            return PartStatus("ok", f"AWS {self.settings.region}" + (f" (profile {self.settings.profile})"
                                                                     if self.settings.profile else ""))
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

