"""The local cloud's process: moto + patches + mapping API + SageMaker runtime + poller.

``python -m hbcore cloud serve`` (:func:`run_serve`) runs a ``CloudServer`` in the foreground: moto's
server app behind a WSGI middleware that serves Lambda's event-source-mapping API from
``hbcore.localcloud.poller`` (moto would try to run the function in Docker on every put), the
endpoint server, and a retention trimmer that drops Kinesis records every mapping has consumed once
they are older than the retention window, and log events and metric data points older than the log
retention (moto keeps all three forever). Everything binds 127.0.0.1. Once healthy it writes a state
file (pid, URLs, started_at); it exits on SIGTERM or when its ``--parent-pid`` is gone.

Tests run a ``CloudServer`` in their own process (threads only); the app and the CLI run it as a
child process through ``hbcore.localcloud.owner``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One BLAS thread per process, set before numpy loads: on this 2-core machine OpenBLAS's own threads
# made a (100 x 200) @ (200 x 256) product 8-20x slower (1.7-4.4 ms against 0.2-0.7 ms), and the
# endpoint server runs the model's products for every batch beside the poller's threads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from hbcore.localcloud import insights, motopatches  # noqa: E402

motopatches.apply()  # before moto.server is imported: backends are created with the patched classes

from moto import backends  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from hbcore.localcloud.motostate import (  # noqa: E402
    MotoKinesis,
    MotoLogs,
    MotoMetrics,
    MotoSageMaker,
)
from hbcore.localcloud.owner import LocalCloudError, process_start  # noqa: E402
from hbcore.localcloud.poller import REPOSITORY_ROOT, MappingError, Poller  # noqa: E402
from hbcore.localcloud.sagemaker_runtime import EndpointServer, region_of  # noqa: E402

HOST = "127.0.0.1"
RETENTION_S = 30.0
# Log events (and metric data points) are kept this long: as far back as a new results reader starts
# reading (hbcore.stream.reader.LOOKBACK_S), far beyond the seconds its polls lag behind.
LOG_RETENTION_S = 15 * 60.0
TRIM_INTERVAL_S = 2.0
PARENT_CHECK_S = 0.5
# moto makes a service's backend on the service's first request. CloudFormation's imports the models of
# every service a template can name (1.9 s on the reference machine), SageMaker's takes 0.3 s, so the
# first stack took ~3 s longer than any later one. The server makes them in a thread as it starts
# (``preload_backends``), while its first clients are still connecting; the first stack comes sooner.
# In the order a stack's deploy first calls them: moto makes one backend at a time, under one lock, so
# the bucket and the code upload (STS, S3) must not wait behind CloudFormation's.
PRELOADED_SERVICES = ("sts", "s3", "cloudformation", "iam", "lambda", "logs", "kinesis", "sqs", "cloudwatch",
                      "sagemaker")
MAPPINGS_PATH = "/2015-03-31/event-source-mappings"
STATUS_PATH = "/_hb/status"
LIST_MAX_ITEMS = 100


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (MB), from /proc."""
    values = {"rss_mb": 0.0, "peak_rss_mb": 0.0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                values["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
            elif line.startswith("VmHWM:"):
                values["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return values


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request, with TCP_NODELAY."""

    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silent: at thousands of puts a log line per request costs more than it tells."""


class MappingApi:
    """WSGI middleware: Lambda's event-source-mapping API from the poller, everything else to moto."""

    def __init__(self, moto_app: Any, poller: Poller, status: Callable[[], dict[str, Any]]) -> None:
        self.moto_app = moto_app
        self.poller = poller
        self.status = status

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == STATUS_PATH:
            return self._respond(start_response, 200, self.status())
        if not path.startswith(MAPPINGS_PATH):
            return self.moto_app(environ, start_response)
        try:
            status, body = self._mapping_call(environ, path[len(MAPPINGS_PATH):].strip("/"))
        except MappingError as error:
            return self._respond(start_response, error.status, {"Type": "User", "message": error.message},
                                 error.code)
        return self._respond(start_response, status, body)

    def _mapping_call(self, environ: dict[str, Any], mapping_uuid: str) -> tuple[int, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        region = region_of(environ.get("HTTP_AUTHORIZATION"))
        params = self._body(environ)
        if not mapping_uuid and method == "POST":
            return 202, self.poller.create(params, region)
        if not mapping_uuid and method == "GET":
            return 200, self._list(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")), region)
        if mapping_uuid and method == "GET":
            return 200, self.poller.get(mapping_uuid)
        if mapping_uuid and method == "PUT":
            return 202, self.poller.update(mapping_uuid, params, region)
        if mapping_uuid and method == "DELETE":
            return 202, self.poller.delete(mapping_uuid)
        raise MappingError(405, "InvalidParameterValueException",
                           f"{method} {MAPPINGS_PATH}/{mapping_uuid} is not an operation")

    def _list(self, query: dict[str, list[str]], region: str) -> dict[str, Any]:
        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        mappings = self.poller.list(first("EventSourceArn"), first("FunctionName"), region)
        try:
            start = int(first("Marker") or 0)
            size = int(first("MaxItems") or LIST_MAX_ITEMS)
        except ValueError:
            raise MappingError(400, "InvalidParameterValueException", "Marker and MaxItems must be integers") from None
        page: dict[str, Any] = {"EventSourceMappings": mappings[start:start + size]}
        if start + size < len(mappings):
            page["NextMarker"] = str(start + size)
        return page

    @staticmethod
    def _body(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw:
            return {}
        try:
            params = json.loads(raw)
        except ValueError:
            raise MappingError(400, "InvalidParameterValueException", "the request body is not JSON") from None
        if not isinstance(params, dict):
            raise MappingError(400, "InvalidParameterValueException", "the request body must be a JSON object")
        return params

    @staticmethod
    def _respond(start_response: Any, status: int, body: dict[str, Any], error_type: str | None = None) -> list[bytes]:
        data = json.dumps(body, default=str).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        reason = {200: "OK", 202: "Accepted"}.get(status, "Error")
        start_response(f"{status} {reason}", headers)
        return [data]


def preload_backends(services: tuple[str, ...] = PRELOADED_SERVICES, region: str = "us-east-1") -> None:
    """Make moto's backends of ``services`` now rather than on their first request (PRELOADED_SERVICES).

    moto guards the making of a backend with its own lock, so a request arriving meanwhile waits for
    the same backend instead of making a second one.
    """
    for service in services:
        per_account = backends.get_backend(service)[DEFAULT_ACCOUNT_ID]  # type: ignore[call-overload]
        per_account[region if region in per_account.regions else "aws"]


class CloudServer:
    """moto (with the mapping API), the endpoint server, the poller and the trimmer, in threads."""

    def __init__(self, port: int = 0, runtime_port: int = 0, code_root: Path = REPOSITORY_ROOT,
                 retention_s: float | None = None, log_retention_s: float | None = None) -> None:
        # AWS's Logs Insights rules (ingestion delay, row cap, quota), from HB_LOGS_* (hbcore.localcloud.insights)
        self.logs_rules = insights.Rules.from_environment()
        self.retention_s = RETENTION_S if retention_s is None else retention_s
        self.log_retention_s = LOG_RETENTION_S if log_retention_s is None else log_retention_s
        self.started_at = time.time()
        self.trimmed_records = 0
        self.trimmed_events = 0
        self.trimmed_points = 0
        self.kinesis = MotoKinesis()
        self.logs = MotoLogs()
        self.metrics = MotoMetrics()
        self.endpoints = EndpointServer(MotoSageMaker(), HOST, runtime_port)
        self.poller = Poller(code_root=code_root, kinesis=self.kinesis, logs=self.logs)
        app = MappingApi(DomainDispatcherApplication(create_backend_app), self.poller, self.status)
        self._httpd = make_server(HOST, port, app, threaded=True, request_handler=_QuietHandler)
        self.poller.runtime_environment.update(self.client_environment())
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._previous_logs_rules = motopatches.LOGS_RULES

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._httpd.server_port}"

    @property
    def runtime_url(self) -> str:
        return self.endpoints.url

    def client_environment(self) -> dict[str, str]:
        """What a boto3 client (the handler included) needs to reach this local cloud."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.runtime_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def start(self) -> CloudServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._previous_logs_rules = motopatches.set_logs_rules(self.logs_rules)
        self.endpoints.start()
        for target, name in ((self._httpd.serve_forever, "moto-server"), (self._trim_forever, "trimmer"),
                             (preload_backends, "moto-preload")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop the poller first (no invocation half done against a closed server), then the servers."""
        self._stopped.set()
        self.poller.stop()
        self.endpoints.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        motopatches.set_logs_rules(self._previous_logs_rules)

    def __enter__(self) -> CloudServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def trim(self) -> int:
        """One retention pass over every stream; returns the records dropped."""
        dropped = 0
        for stream_arn in self.kinesis.stream_arns():
            try:
                dropped += self.kinesis.trim(stream_arn, self.poller.consumed(stream_arn), self.retention_s)
            except LookupError:
                continue  # deleted since listed
        self.trimmed_records += dropped
        return dropped

    def trim_logs(self) -> int:
        """One log retention pass over every log stream; returns the events dropped."""
        dropped = self.logs.trim(self.log_retention_s)
        self.trimmed_events += dropped
        return dropped

    def trim_metrics(self) -> int:
        """One retention pass over the metric data points (kept as long as log events); returns those dropped."""
        dropped = self.metrics.trim(self.log_retention_s)
        self.trimmed_points += dropped
        return dropped

    def _trim_forever(self) -> None:
        while not self._stopped.wait(TRIM_INTERVAL_S):
            self.trim()
            self.trim_logs()
            self.trim_metrics()

    def status(self) -> dict[str, Any]:
        """Process, Kinesis, poller and endpoint state, served at ``/_hb/status``."""
        return {
            "pid": os.getpid(),
            "moto_url": self.url,
            "sagemaker_runtime_url": self.runtime_url,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 1),
            **memory_mb(),
            "kinesis": {"retained_records": self.kinesis.retained_records(), "trimmed_records": self.trimmed_records,
                        "retention_s": self.retention_s},
            "logs": {"retained_events": self.logs.retained_events(), "trimmed_events": self.trimmed_events,
                     "retention_s": self.log_retention_s, "insights_rules": dataclasses.asdict(self.logs_rules)},
            "metrics": {"retained_points": self.metrics.retained_points(), "trimmed_points": self.trimmed_points,
                        "retention_s": self.log_retention_s},
            "mappings": self.poller.describe(),
            "endpoints": self.endpoints.status(),
        }

    def healthy(self) -> bool:
        """Both servers answer on loopback."""
        try:
            for url in (self.url + STATUS_PATH, self.runtime_url + "/ping"):
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status != 200:
                        return False
        except OSError:
            return False
        return True


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(path)


class ParentWatch:
    """Whether the owner process still lives (a reparented child means a dead direct parent)."""

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid
        self.direct = parent_pid == os.getppid()

    def alive(self) -> bool:
        if not self.parent_pid:
            return True
        if self.direct:
            return os.getppid() == self.parent_pid
        try:
            os.kill(self.parent_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def run_serve(port: int = 0, runtime_port: int = 0, retention_s: float | None = None,
              log_retention_s: float | None = None, state_file: Path | str | None = None, parent_pid: int = 0,
              on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
    """``python -m hbcore cloud serve``: run the local cloud until SIGTERM, SIGINT or the parent's death.

    Once both servers answer, the state (pid, URLs) goes to ``state_file``, which is how the owner
    learns that the child is healthy, and to ``on_ready``; the file is removed on the way out, so
    a stale one never points at a dead cloud. :class:`LocalCloudError` when the servers do not answer.
    """
    watch = ParentWatch(parent_pid)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = CloudServer(port=port, runtime_port=runtime_port, retention_s=retention_s,
                         log_retention_s=log_retention_s).start()
    state_path = Path(state_file) if state_file else None
    try:
        if not server.healthy():
            raise LocalCloudError("the local cloud did not answer on loopback")
        # process_start lets a reader tell this process from a later one given the same pid
        state = {"pid": os.getpid(), "process_start": process_start(os.getpid()), "moto_url": server.url,
                 "sagemaker_runtime_url": server.runtime_url, "started_at": server.started_at,
                 "parent_pid": parent_pid}
        if state_path:
            write_state(state_path, state)
        if on_ready is not None:
            on_ready(state)
        while not stop.wait(PARENT_CHECK_S):
            if not watch.alive():
                break
    finally:
        server.stop()
        if state_path and state_path.exists():
            try:
                if json.loads(state_path.read_text()).get("pid") == os.getpid():
                    state_path.unlink()
            except (OSError, ValueError):
                pass
