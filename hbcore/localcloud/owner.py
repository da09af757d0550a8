"""The owner of the local cloud's process, and the detached cloud of ``python -m hbcore cloud up|down|status``.

``LocalCloud`` starts ``python -m hbcore cloud serve`` as a child on free loopback ports, waits
until it reports itself healthy (its state file), and hands out a ``Backend`` pointing boto3 at it.
The child watches its owner's pid and exits when the owner dies, so a crashed app or test run
leaves nothing behind. A separate process keeps moto, the poller and the endpoint server off the
app's interpreter (the two cores are shared, and Streamlit reruns don't disturb the pipeline).

``cloud up`` starts a detached one (owner: nobody, :func:`start_detached`) and records it in
``<cache>/localcloud.json`` so that ``down`` and ``status`` (:func:`stop_detached`,
:func:`detached_status`) find it from any shell.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from hbcore.aws.backend import Backend
from hbcore.errors import HbError
from hbcore.paths import cache_dir

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
STDERR_TAIL_LINES = 30
STATUS_TIMEOUT_S = 5.0
DETACHED_STATE_FILE = "localcloud.json"
DETACHED_LOG_FILE = "localcloud.log"


class LocalCloudError(HbError, RuntimeError):
    """The local cloud could not be started: its process died or never became healthy.

    From the owner, the first line names the child's log and the rest is the log's tail. A
    ``RuntimeError`` too, as it was before it had a name, so existing callers keep catching it.
    """



def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _serve_command(port: int, runtime_port: int, state_file: Path, parent_pid: int,
                   retention_s: float | None, log_retention_s: float | None = None) -> list[str]:
    command = [sys.executable, "-m", "hbcore", "cloud", "serve", "--port", str(port),
               "--runtime-port", str(runtime_port), "--state-file", str(state_file), "--parent-pid", str(parent_pid)]
    if retention_s is not None:
        command += ["--retention-s", str(retention_s)]
    if log_retention_s is not None:
        command += ["--log-retention-s", str(log_retention_s)]
    return command


def _child_environment() -> dict[str, str]:
    """The caller's environment minus endpoint overrides (the child sets its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _wait_for_state(process: subprocess.Popen, state_file: Path, log_file: Path, timeout_s: float) -> dict[str, Any]:
    """The child's state once it is healthy; LocalCloudError naming its log, with the log's tail, otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalCloudError(f"the local cloud exited with code {process.returncode} while starting "
                                  f"(log: {log_file}):\n{_tail(log_file)}")
        if state_file.exists():
            try:
                return json.loads(state_file.read_text())
            except ValueError:
                pass  # written atomically, but a reader may still race the rename on some filesystems
        time.sleep(POLL_S)
    _terminate(process.pid, process)
    raise LocalCloudError(f"the local cloud did not become healthy within {timeout_s:.0f} s "
                          f"(log: {log_file}):\n{_tail(log_file)}")


def _terminate(pid: int, process: subprocess.Popen | None = None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process is not None else not _pid_alive(pid):
            return
        time.sleep(POLL_S)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(timeout=STOP_TIMEOUT_S)


def fetch_status(moto_url: str) -> dict[str, Any]:
    """The running cloud's ``/_hb/status`` (memory, Kinesis, mappings, endpoints)."""
    with urllib.request.urlopen(moto_url + "/_hb/status", timeout=STATUS_TIMEOUT_S) as response:
        return json.loads(response.read())


def _report(state: dict[str, Any] | None) -> dict[str, Any]:
    """Running or not, the URLs, and the child's own report when it answers (its silence is reported, not raised)."""
    if state is None:
        return {"running": False}
    report = {"running": True, **state}
    try:
        report.update(fetch_status(state["moto_url"]))
    except OSError as error:
        report["error"] = f"no answer from {state['moto_url']}: {error}"
    return report


class LocalCloud:
    """Owner of one local cloud child process; a context manager.

    Ports default to free ones; after the first start they are kept, so ``restart()`` brings the
    cloud back at the same URLs (clients keep working; moto's state starts empty).
    """

    def __init__(self, port: int = 0, runtime_port: int = 0, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 retention_s: float | None = None, log_retention_s: float | None = None) -> None:
        self.port = port
        self.runtime_port = runtime_port
        self.startup_timeout_s = startup_timeout_s
        self.retention_s = retention_s
        self.log_retention_s = log_retention_s
        self.state: dict[str, Any] | None = None
        self._process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._backend: Backend | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> LocalCloud:
        """Start the child (if not running) and wait until it is healthy."""
        if self.running:
            return self
        self.stop()  # a child that died (or was killed) leaves its working folder behind
        self._workdir = Path(tempfile.mkdtemp(prefix="hb-localcloud-"))
        state_file, log_file = self._workdir / "state.json", self._workdir / "cloud.log"
        with open(log_file, "wb") as log:
            self._process = subprocess.Popen(
                _serve_command(self.port, self.runtime_port, state_file, os.getpid(), self.retention_s,
                               self.log_retention_s),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=REPOSITORY_ROOT, env=_child_environment())
        self.state = _wait_for_state(self._process, state_file, log_file, self.startup_timeout_s)
        self._backend = None
        self.port = int(self.state["moto_url"].rsplit(":", 1)[1])
        self.runtime_port = int(self.state["sagemaker_runtime_url"].rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its working folder."""
        if self._process is not None:
            _terminate(self._process.pid, self._process)
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def restart(self) -> LocalCloud:
        """Stop and start again on the same ports (an empty cloud at the same URLs)."""
        self.stop()
        return self.start()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def backend(self) -> Backend:
        """A local ``Backend`` on this cloud's URLs, the same one until the next start.

        A ``Backend`` holds one boto3 session, and each new session loads the service models again
        (~5 MB for Kinesis): a soak making a replay client per run grew by that much a run.
        """
        if self.state is None:
            raise RuntimeError("the local cloud is not started: call start() first")
        if self._backend is None:
            self._backend = Backend(kind="local", endpoint_url=self.state["moto_url"],
                                    sagemaker_runtime_url=self.state["sagemaker_runtime_url"])
        return self._backend

    def status(self) -> dict[str, Any]:
        """Running or not, the URLs, and the child's own report when it answers."""
        return _report(self.state if self.running else None)


# --- the detached cloud of ``python -m hbcore cloud up`` -------------------------------------------

def detached_state() -> dict[str, Any] | None:
    """The state of the detached local cloud if its process is alive, else None (stale files removed)."""
    path = cache_dir() / DETACHED_STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _pid_alive(int(state.get("pid", 0))):
        path.unlink(missing_ok=True)
        return None
    return state


def exports(state: dict[str, Any]) -> str:
    """The two shell lines that point boto3 (and the AWS CLI) in another shell at this cloud."""
    return (f"export AWS_ENDPOINT_URL={state['moto_url']}\n"
            f"export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={state['sagemaker_runtime_url']}")


def detached_log_file() -> Path:
    """Where the detached cloud's output goes (it outlives the shell that started it)."""
    return cache_dir() / DETACHED_LOG_FILE


def start_detached(port: int = 0, runtime_port: int = 0) -> tuple[dict[str, Any], bool]:
    """The detached local cloud's state once healthy, and whether this call started it.

    At most one runs per cache folder, so that ``down`` and ``status`` know which one they mean: when
    one is alive already it is returned as it is (``False``). :class:`LocalCloudError` when a new one fails.
    """
    running = detached_state()
    if running is not None:
        return running, False
    state_file, log_file = cache_dir() / DETACHED_STATE_FILE, detached_log_file()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            _serve_command(port, runtime_port, state_file, 0, None),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=REPOSITORY_ROOT, env=_child_environment(), start_new_session=True)
    return _wait_for_state(process, state_file, log_file, STARTUP_TIMEOUT_S), True


def stop_detached() -> dict[str, Any] | None:
    """Stop the detached local cloud; the state of the one stopped, or None when none was running."""
    state = detached_state()
    if state is None:
        return None
    _terminate(int(state["pid"]))
    (cache_dir() / DETACHED_STATE_FILE).unlink(missing_ok=True)
    return state


def detached_status() -> dict[str, Any]:
    """The detached local cloud's report (``{"running": False}`` when there is none)."""
    return _report(detached_state())
