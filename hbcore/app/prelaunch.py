"""The local cloud's process, started as the app's server starts.

The local cloud's child spends ~1 s on its imports and ~1.5 s more making moto's CloudFormation
backend before the first stack can be made, and a fresh app's first page run, which begins only
once a browser has connected (~1 s after the server starts), spends ~1 s importing before a page
can call :meth:`~hbcore.app.pipeline.Pipeline.warm_up`. So ``streamlit run streamlit_app.py``
launches the child as the server starts (:func:`at_server_start`, the lifespan of the script's
``st.App``), and the page run calls :func:`launch_local_cloud` too (a no-op then; the launch where
no server started, as under AppTest). The first :class:`~hbcore.app.pipeline.Pipeline` on the local
backend takes the launched child (:func:`take`) instead of starting one. Once per process: a later
pipeline (settings changed, a restart after the child died) starts its own. This module imports
nothing heavy: it runs before the page's imports.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from hbcore.app.settings import load_settings
from hbcore.localcloud.owner import LocalCloud

# "0" turns off the local backend's warm-up (Pipeline.warm_up) and this launch: page tests that must not start a cloud.
WARM_UP_ENV = "HB_LOCAL_WARM_UP"

_lock = threading.Lock()
_launched: LocalCloud | None = None
_done = False  # launched once in this process (taken or not)


def launch_local_cloud() -> bool:
    """On the local backend, start the local cloud's child now without waiting for it (once per process);
    whether this call started it."""
    global _launched, _done
    with _lock:
        if _done or os.environ.get(WARM_UP_ENV) == "0" or load_settings().backend != "local":
            return False
        _done = True
        try:
            _launched = LocalCloud().launch()
        except OSError:  # no process could be started: the Pipeline's own start tries again and says why
            return False
        return True


def take() -> LocalCloud | None:
    """The launched child, handed over once (its owner then starts, stops and restarts it), or None."""
    global _launched
    with _lock:
        cloud, _launched = _launched, None
        return cloud


@contextlib.asynccontextmanager
async def at_server_start(_app: Any) -> AsyncIterator[None]:
    """The app server's lifespan: the local cloud's child is launched as the server starts (see the module)."""
    launch_local_cloud()
    yield
