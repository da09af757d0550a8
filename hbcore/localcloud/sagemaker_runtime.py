"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` served from the control plane.

The server does what SageMaker and its SKLearn serving container do for a request: find what the
endpoint serves (endpoint → endpoint config → model → ``ModelDataUrl``, through a ``ModelLocator``),
download and extract ``model.tar.gz``, import ``code/inference.py`` (a fresh module per model), call
``model_fn(model_dir)`` once, then ``input_fn`` → ``predict_fn`` → ``output_fn`` per request. Errors
are shaped as SageMaker's so boto3 raises the same exceptions locally and on AWS: an unknown
endpoint is ``ValidationError``, an exception in the model code is ``ModelError`` carrying its
message.

Loaded models are cached by (endpoint, ModelDataUrl, ETag); every request re-reads the control
plane (a dict lookup in moto's process), so a redeploy serves the new model from its next request.
Local-only control routes under ``/_hb/`` inject faults (for the reliability tests) and report
state. The server binds 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import socket
import sys
import tarfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from hbcore.aws.names import DEFAULT_REGION
from hbcore.localcloud.owner import ENDPOINTS_PREFIX, claim_folder

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request limit
IDLE_CONNECTION_TIMEOUT_S = 120.0
DEFAULT_ACCEPT = "application/json"
ACCOUNT_ID = "123456789012"  # moto's default account, named in SageMaker-shaped messages


class ModelLocator(Protocol):
    """Where endpoints and artifacts are recorded (``hbcore.localcloud.motostate.MotoSageMaker`` locally)."""

    def locate(self, endpoint_name: str, region: str, variant: str | None = None) -> Any: ...
    def etag(self, url: str) -> str: ...
    def read(self, url: str) -> bytes: ...


class SageMakerError(Exception):
    """An error response as SageMaker sends it: status, ``x-amzn-ErrorType`` code, JSON body."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message, "Message": self.message,
                           **self.extra}).encode()


def model_error(endpoint: str, region: str, original_status: int, original_message: str) -> SageMakerError:
    """The ``ModelError`` SageMaker returns when the container answers ``original_status``."""
    kind = "client" if original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return SageMakerError(
        424, "ModelError",
        f'Received {kind} error ({original_status}) from primary with message "{original_message}". '
        f"See the log group {log_group} in account {ACCOUNT_ID} for more information.",
        OriginalStatusCode=original_status,
        OriginalMessage=original_message,
        LogStreamArn=f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
    )


# --- the SKLearn container's defaults, used when inference.py does not override them -------------

def default_input_fn(body: bytes, content_type: str):
    """JSON, CSV or .npy to a numpy array, as the SKLearn container's default decoder does."""
    import numpy as np

    if content_type == "application/json":
        return np.asarray(json.loads(body))
    if content_type == "text/csv":
        return np.atleast_2d(np.loadtxt(io.StringIO(body.decode("utf-8")), delimiter=",", dtype=float))
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise ValueError(f"content type {content_type!r} is not supported (application/json, text/csv, application/x-npy)")


def default_predict_fn(data, model):
    return model.predict(data)


def default_output_fn(prediction, accept: str):
    """A numpy result as JSON, CSV or .npy, as the SKLearn container's default encoder does."""
    import numpy as np

    array = np.asarray(prediction)
    if accept == "application/json":
        return json.dumps(array.tolist())
    if accept == "text/csv":
        text = io.StringIO()
        np.savetxt(text, np.atleast_2d(array) if array.ndim > 1 else array[:, None], delimiter=",", fmt="%s")
        return text.getvalue()
    if accept == "application/x-npy":
        binary = io.BytesIO()
        np.save(binary, array)
        return binary.getvalue()
    raise ValueError(f"accept type {accept!r} is not supported (application/json, text/csv, application/x-npy)")


@dataclass
class LoadedModel:
    """A model.tar.gz extracted, its inference module imported and ``model_fn`` called."""

    key: tuple[str, str, str]
    model_dir: Path
    module: ModuleType
    model: Any

    def handler(self, name: str, default):
        return getattr(self.module, name, None) or default

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """input_fn → predict_fn → output_fn; returns the body and its content type."""
        data = self.handler("input_fn", default_input_fn)(body, content_type)
        prediction = self.handler("predict_fn", default_predict_fn)(data, self.model)
        result = self.handler("output_fn", default_output_fn)(prediction, accept)
        result, result_type = result if isinstance(result, tuple) else (result, accept)
        return (result.encode("utf-8") if isinstance(result, str) else bytes(result)), result_type


def load_served_model(archive: bytes, model_dir: Path, entry_point: str, key: tuple[str, str, str]) -> LoadedModel:
    """Extract ``archive`` into ``model_dir`` and load it as the SKLearn container does."""
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"{key[1]}: not a readable model.tar.gz ({error})") from error
    script = model_dir / "code" / entry_point
    if not script.is_file():
        raise ValueError(f"{key[1]}: the archive has no code/{entry_point}")
    module_name = f"hb_model_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise ValueError(f"{key[1]}: code/{entry_point} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look modules up by name
    try:
        spec.loader.exec_module(module)
        if not callable(getattr(module, "model_fn", None)):
            raise ValueError(f"{key[1]}: code/{entry_point} defines no model_fn(model_dir)")
        model = module.model_fn(str(model_dir))
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return LoadedModel(key=key, model_dir=model_dir, module=module, model=model)


@dataclass
class Fault:
    """One injected fault: what to do, for how many calls or until when, on which endpoint."""

    kind: str
    calls: int | None = None
    until: float | None = None
    delay_s: float = 0.0
    endpoint: str | None = None

    KINDS = ("model_error", "throttle", "unavailable", "internal", "delay", "drop")

    @classmethod
    def from_request(cls, spec: dict[str, Any]) -> Fault:
        """Validate a ``POST /_hb/faults`` body: kind, and calls (default 1) or seconds."""
        kind = spec.get("kind")
        if kind not in cls.KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(cls.KINDS)}")
        seconds = spec.get("seconds")
        calls = spec.get("calls", None if seconds is not None else 1)
        if calls is not None and (not isinstance(calls, int) or calls < 1):
            raise ValueError(f"fault calls must be a positive integer, got {calls!r}")
        if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValueError(f"fault seconds must be a positive number, got {seconds!r}")
        delay_s = float(spec.get("delay_s", 0.0))
        if kind == "delay" and delay_s <= 0:
            raise ValueError("a delay fault needs delay_s > 0")
        return cls(kind=kind, calls=calls, until=None if seconds is None else time.monotonic() + seconds,
                   delay_s=delay_s, endpoint=spec.get("endpoint"))

    def live(self, now: float) -> bool:
        return (self.calls is None or self.calls > 0) and (self.until is None or now < self.until)

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"kind": self.kind, "calls_left": self.calls, "endpoint": self.endpoint, "delay_s": self.delay_s,
                "seconds_left": None if self.until is None else round(max(0.0, self.until - now), 3)}


class FaultPlan:
    """Faults waiting to hit invocations, consumed in order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.injected: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The fault that hits this call, if any (a call-counted fault loses one call)."""
        now = time.monotonic()
        with self._lock:
            self._faults = [f for f in self._faults if f.live(now)]
            for fault in self._faults:
                if fault.endpoint in (None, endpoint):
                    if fault.calls is not None:
                        fault.calls -= 1
                    self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                    return fault
        return None

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            return {"active": [f.describe() for f in self._faults if f.live(now)], "injected": dict(self.injected)}


@dataclass
class EndpointStats:
    """Counters per endpoint, read by ``/_hb/status``."""

    invocations: int = 0
    errors: int = 0
    bytes_in: int = 0
    model_ms_total: float = 0.0
    by_error: dict[str, int] = field(default_factory=dict)


class EndpointServer:
    """The runtime server: owns the HTTP thread, the loaded models, the fault plan and counters."""

    def __init__(self, store: ModelLocator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.faults = FaultPlan()
        self._models: dict[str, LoadedModel] = {}  # endpoint name -> model it serves now
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stats: dict[str, EndpointStats] = {}
        self._workdir = claim_folder(ENDPOINTS_PREFIX)  # removed by stop(), or by the next run if killed
        self._httpd = _Server((host, port), self)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str), "the address of a bound AF_INET socket names its host as text"
        return f"http://{host}:{port}"

    def start(self) -> EndpointServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="endpoint-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and delete the extracted models."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            for loaded in self._models.values():
                sys.modules.pop(loaded.module.__name__, None)
            self._models.clear()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def model_for(self, endpoint: str, region: str, variant: str | None) -> tuple[LoadedModel, str]:
        """The loaded model the endpoint serves now (loading it on first use) and its variant name."""
        try:
            located = self.store.locate(endpoint, region, variant)
            key = (endpoint, located.model_data_url, self.store.etag(located.model_data_url))
        except LookupError as error:
            raise SageMakerError(400, "ValidationError", str(error)) from None
        with self._lock:
            current = self._models.get(endpoint)
            if current is not None and current.key == key:
                return current, located.variant_name
            load_lock = self._load_locks.setdefault(endpoint, threading.Lock())
        with load_lock:
            with self._lock:
                current = self._models.get(endpoint)
            if current is None or current.key != key:
                current = self._load(endpoint, region, located, key)
        return current, located.variant_name

    def _load(self, endpoint: str, region: str, located: Any, key: tuple[str, str, str]) -> LoadedModel:
        try:
            archive = self.store.read(located.model_data_url)
            loaded = load_served_model(archive, self._workdir / uuid.uuid4().hex, located.entry_point, key)
        except Exception as error:
            raise model_error(endpoint, region, 500, f"model could not be loaded: {error}") from None
        with self._lock:
            previous = self._models.get(endpoint)
            self._models[endpoint] = loaded
        if previous is not None:
            sys.modules.pop(previous.module.__name__, None)
            shutil.rmtree(previous.model_dir, ignore_errors=True)
        return loaded

    def invoke(self, endpoint: str, region: str, body: bytes, content_type: str, accept: str,
               variant: str | None = None) -> tuple[bytes, str, str]:
        """One invocation: (body, content type, variant), or a SageMakerError."""
        loaded, variant_name = self.model_for(endpoint, region, variant)
        try:
            result, result_type = loaded.invoke(body, content_type, accept)
        except Exception as error:
            # The SKLearn serving stack answers 500 for any exception in input_fn/predict_fn/output_fn,
            # a model's refusal (ValueError, its own words) included; never a 4xx.
            message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            raise model_error(endpoint, region, 500, message) from None
        return result, result_type, variant_name

    def record(self, endpoint: str, started: float, size: int, error: str | None) -> None:
        with self._lock:
            stats = self._stats.setdefault(endpoint, EndpointStats())
            stats.invocations += 1
            stats.bytes_in += size
            stats.model_ms_total += (time.perf_counter() - started) * 1000
            if error:
                stats.errors += 1
                stats.by_error[error] = stats.by_error.get(error, 0) + 1

    def status(self) -> dict[str, Any]:
        """Loaded models, per-endpoint counters and faults, as JSON-ready data."""
        with self._lock:
            return {
                "models": {name: {"model_data_url": m.key[1], "etag": m.key[2]} for name, m in self._models.items()},
                "endpoints": {
                    name: {"invocations": s.invocations, "errors": s.errors, "bytes_in": s.bytes_in,
                           "mean_ms": round(s.model_ms_total / s.invocations, 3) if s.invocations else None,
                           "by_error": dict(s.by_error)}
                    for name, s in self._stats.items()
                },
                "faults": self.faults.describe(),
            }


def region_of(authorization: str | None) -> str:
    """The region in a SigV4 ``Authorization`` header's credential scope (default us-east-1)."""
    if authorization and "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 3 and scope[2]:
            return scope[2]
    return DEFAULT_REGION


def content_length(values: list[str]) -> int | None:
    """The body length given by the ``Content-Length`` header lines, or None when it is not one number.

    Only one plain decimal number counts (RFC 9110's ``1*DIGIT``): ``int()`` alone takes ``-1``,
    ``+5`` or ``1_0``, and a negative length made the server wait for a body that never comes. A
    list (``5, 5``, or two header lines) is refused rather than guessed at, as a proxy would.
    """
    if len(values) != 1:
        return None
    text = values[0].strip()
    return int(text) if text.isascii() and text.isdigit() else None


class _Server(ThreadingHTTPServer):
    """The HTTP server, holding the :class:`EndpointServer` its handlers answer for."""

    def __init__(self, address: tuple[str, int], endpoint_server: EndpointServer) -> None:
        super().__init__(address, _Handler)
        self.endpoint_server = endpoint_server

    def handle_error(self, request: Any, client_address: Any) -> None:
        """No traceback for a client that hung up (broken pipe, reset): nothing is wrong here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive with TCP_NODELAY: without it each kept-alive call waits ~40 ms for an ACK."""

    server: _Server

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server_version = "hbcore-sagemaker-runtime"

    @property
    def app(self) -> EndpointServer:
        return self.server.endpoint_server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a line per request would cost more than the request."""

    def _read_body(self) -> bytes:
        """The request body, after checking its framing; the connection closes on any framing error.

        A body whose length is unknown leaves the next request's start unknown too, so every
        refusal here also ends the connection. A client that hangs up mid-body is no error to answer.
        """
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise SageMakerError(411, "ValidationError", "a Content-Length header is required")
            return b""
        size = content_length(lengths)
        if size is None:
            self.close_connection = True
            shown = ", ".join(repr(value) for value in lengths)
            raise SageMakerError(400, "ValidationError",
                                 f"Content-Length {shown} is not one non-negative decimal integer")
        if size > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            raise SageMakerError(413, "ValidationError",
                                 f"Request payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes")
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            raise ConnectionAbortedError(f"the client hung up after {len(body)} of {size} body bytes")
        return body

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send_error(self, error: SageMakerError) -> None:
        self._send(error.status, error.body(), "application/json", {"x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/"})

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(200, b"", "application/json")
        elif self.path == "/_hb/status":
            self._send_json(200, self.app.status())
        elif self.path == "/_hb/faults":
            self._send_json(200, self.app.faults.describe())
        else:
            self._send_error(SageMakerError(404, "UnknownOperationException", f"no route for GET {self.path}"))

    def do_DELETE(self) -> None:
        if self.path == "/_hb/faults":
            self.app.faults.clear()
            self._send_json(200, self.app.faults.describe())
        else:
            self._send_error(SageMakerError(404, "UnknownOperationException", f"no route for DELETE {self.path}"))

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            if self.path == "/_hb/faults":
                self._add_fault(body)
                return
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations" or not parts[1]:
                raise SageMakerError(404, "UnknownOperationException", f"no route for POST {self.path}")
            self._invoke(parts[1], body)
        except SageMakerError as error:
            self._send_error(error)

    def _add_fault(self, body: bytes) -> None:
        try:
            self.app.faults.add(Fault.from_request(json.loads(body or b"{}")))
        except (ValueError, TypeError, AttributeError) as error:
            raise SageMakerError(400, "ValidationError", f"bad fault: {error}") from None
        self._send_json(200, self.app.faults.describe())

    def _invoke(self, endpoint: str, body: bytes) -> None:
        started = time.perf_counter()
        region = region_of(self.headers.get("Authorization"))
        fault = self.app.faults.take(endpoint)
        error_code = None
        try:
            if fault is not None:
                self._apply(fault, endpoint, region)
            content_type = (self.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
            accept = (self.headers.get("Accept") or DEFAULT_ACCEPT).split(",")[0].split(";")[0].strip()
            if accept in ("", "*/*"):
                accept = DEFAULT_ACCEPT
            result, result_type, variant = self.app.invoke(
                endpoint, region, body, content_type, accept, self.headers.get("X-Amzn-SageMaker-Target-Variant"))
            self._send(200, result, result_type, {"x-Amzn-Invoked-Production-Variant": variant})
        except SageMakerError as error:
            error_code = error.code
            raise
        except ConnectionError:
            error_code = "drop"
        except Exception as error:  # a bug here must still answer as SageMaker would
            error_code = "InternalFailure"
            traceback.print_exc()
            raise SageMakerError(500, "InternalFailure", f"{type(error).__name__}: {error}") from None
        finally:
            self.app.record(endpoint, started, len(body), error_code)

    def _apply(self, fault: Fault, endpoint: str, region: str) -> None:
        """Make this call fail (or wait) the way ``fault`` says."""
        if fault.kind == "delay":
            time.sleep(fault.delay_s)
        elif fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            raise ConnectionError("connection dropped by an injected fault")
        elif fault.kind == "model_error":
            raise model_error(endpoint, region, 500, "injected fault: the model container failed")
        elif fault.kind == "throttle":
            raise SageMakerError(400, "ThrottlingException", "Rate exceeded (injected fault)")
        elif fault.kind == "unavailable":
            raise SageMakerError(503, "ServiceUnavailable", "Service is unavailable (injected fault)")
        elif fault.kind == "internal":
            raise SageMakerError(500, "InternalFailure", "An internal failure occurred (injected fault)")
