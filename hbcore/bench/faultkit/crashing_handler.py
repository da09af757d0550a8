"""``lambda_function``'s handler, made to crash half-way through logging its next few batches.

The fault bench points the function's ``Handler`` here (``hbcore.bench.faultkit.crashing_handler.lambda_handler``)
to show what a crash in the middle of a batch does: half of the batch's predictions are already in
the log when the invocation fails (as after an out-of-memory kill, a timeout or a bug: a beats line
holding the first half of its rows, or half of the prediction lines), and Lambda retries the batch,
so those beats are logged again. The reader must keep one result per beat.

The number of invocations that crash is ``HB_CRASH_INVOCATIONS`` in the function's environment,
counted per execution environment (the module is imported afresh by each one, as Lambda does).
Loaded by the local poller as a script, so it imports only the standard library and loads
``lambda_function.py`` itself: its module-level settings then come from this environment.
"""

import importlib.util
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

CRASHES_VARIABLE = "HB_CRASH_INVOCATIONS"
HANDLER = "hbcore.bench.faultkit.crashing_handler.lambda_handler"
_SOURCE = Path(__file__).resolve().parents[3] / "lambda_function.py"
_PREDICTION_PREFIX = '{"type":"prediction"'
_BEATS_PREFIX = '{"type":"beats"'


class InjectedCrash(RuntimeError):
    """The crash this module injects (an unhandled error, so Lambda counts a function error)."""


class _HandlerModule(Protocol):
    """What this module uses of a ``lambda_function`` loaded from its file."""

    _emit: Callable[[list[str]], int]

    def lambda_handler(self, event: dict[str, Any], context: Any) -> Any: ...


def _load_handler_module() -> _HandlerModule:
    """A fresh ``lambda_function`` whose log writer crashes while crashes are left (on first use:
    importing this module for its constants must not create the handler's boto3 client)."""
    spec = importlib.util.spec_from_file_location(f"hb_crashing_lambda_{uuid.uuid4().hex}", _SOURCE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {_SOURCE}")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    # A module executed from its file has no static type: this is the part of lambda_function used here.
    module = cast(_HandlerModule, loaded)
    emit_all = module._emit
    crashes_left = int(os.environ.get(CRASHES_VARIABLE, "0"))

    def emit_then_crash(lines: list[str]) -> int:
        """Log the lines (their number); while crashes are left, log half of a batch's predictions and raise."""
        nonlocal crashes_left
        if crashes_left > 0 and lines and lines[0].startswith(_BEATS_PREFIX):
            crashes_left -= 1
            line = json.loads(lines[0])
            rows = line["beats"]
            line["beats"] = rows[: len(rows) // 2]
            emit_all([json.dumps(line, separators=(",", ":"))])
            raise InjectedCrash(f"injected crash after logging {len(rows) // 2} of {len(rows)} predictions")
        if crashes_left > 0 and lines and lines[0].startswith(_PREDICTION_PREFIX):
            crashes_left -= 1
            emit_all(lines[: len(lines) // 2])
            raise InjectedCrash(f"injected crash after logging {len(lines) // 2} of {len(lines)} predictions")
        return emit_all(lines)

    module._emit = emit_then_crash
    return module


_inner: _HandlerModule | None = None


def lambda_handler(event, context):
    global _inner
    if _inner is None:
        _inner = _load_handler_module()
    return _inner.lambda_handler(event, context)
