"""One shape for background work: a thread with an owner, a state, its recent errors and one lock.

The replay, the results reader, a training run and the demo's set-up each run in a thread that a
page polls. :class:`BackgroundTask` is what they share: it starts the thread once, asks it to stop
and waits for it, and keeps the state string and the errors a page shows. Whatever escapes the
subclass's work ends the task in state ``"failed"`` with the reason as its error, so a thread can
never die while its owner still reports it running.

Locking rule, the same for every method of every subclass: ``_lock`` guards the task's state, the
base's and the subclass's alike. A method whose name ends in ``_locked`` is called with the lock
held and never takes it; every other method takes the lock itself when it needs it, and so must not
be called with it held (the lock is not reentrant). ``_wake`` is a condition on the same lock.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Generic, Self, TypeVar

KEPT_ERRORS = 20  # error messages a task keeps (the newest); error_count counts them all
STOP_JOIN_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)

Progress = TypeVar("Progress")


class TaskFailed(RuntimeError):
    """Raised by a task's work to fail with this message as its error: a failure the work has
    described in full (a missing stream, a refused request), not a bug, so no traceback is logged."""


class BackgroundTask(ABC, Generic[Progress]):
    """Owner of one background thread: started once, stopped on request, its end always recorded.

    A subclass implements :meth:`_work` (the thread's body: returns the end state, e.g.
    ``"finished"``) and :meth:`progress` (its thread-safe snapshot, read under ``_lock``), and may
    add to :meth:`_on_stop_locked` and :meth:`_on_end_locked`. Its loops check the stop flag at
    every wait (:meth:`_wait_for_stop`, or ``_stop_requested`` read under the lock),
    so that :meth:`stop` is obeyed within one unit of work.

    Guarded by ``_lock`` (see the module docstring), for subclasses to read:

    - ``_state``: ``"idle"`` until :meth:`start`, then ``"running"`` (a subclass may set others
      while it runs, e.g. ``"paused"``), then what :meth:`_work` returned, or ``"failed"``.
    - ``_error``: why the task failed, or None.
    - ``_errors``, ``_error_count``: the last KEPT_ERRORS messages noted, and how many were.
    - ``_stop_requested``: :meth:`stop` was called.
    - ``_started_at``, ``_ended_at``: monotonic seconds, None until the task started / ended.

    Parameters
    ----------
    name : str
        The thread's name, also in the error of a second :meth:`start`.
    """

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._state = "idle"
        self._error: str | None = None
        self._errors: deque[str] = deque(maxlen=KEPT_ERRORS)
        self._error_count = 0
        self._stop_requested = False
        self._started_at: float | None = None
        self._ended_at: float | None = None

    # -- owner API --

    def start(self) -> Self:
        """Run the work in a background thread; returns self. A task runs once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self._name} was already started")
            self._state, self._started_at = "running", time.monotonic()
            self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = STOP_JOIN_TIMEOUT_S) -> Progress:
        """Ask the work to end at its next check and wait up to ``timeout_s`` for the thread; the progress then."""
        with self._lock:
            self._stop_requested = True
            self._on_stop_locked()
            self._wake.notify_all()
        return self.wait(timeout_s)

    def wait(self, timeout_s: float | None = None) -> Progress:
        """Block until the work has ended (or ``timeout_s`` passed); the progress then."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return self.progress()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @abstractmethod
    def progress(self) -> Progress:
        """A consistent snapshot for any thread (pages poll it)."""

    # -- for subclasses --

    @abstractmethod
    def _work(self) -> str:
        """The thread's body; returns the end state. Raise :class:`TaskFailed` to fail with a message."""

    def _on_stop_locked(self) -> None:
        """What the thread must see at the same moment as the stop flag (called by :meth:`stop`)."""

    def _on_end_locked(self) -> None:
        """Tidy up once the work has ended, its state and ``_ended_at`` set (called in the thread)."""

    def _note_error_locked(self, message: str) -> None:
        """Keep ``message`` among the recent errors and count it."""
        self._errors.append(message)
        self._error_count += 1

    def _wait_for_stop(self, timeout_s: float) -> bool:
        """Sleep ``timeout_s``, or less if :meth:`stop` is called meanwhile; whether it was."""
        with self._lock:
            return self._wake.wait_for(lambda: self._stop_requested, timeout_s)

    def _elapsed_s_locked(self, now: float) -> float:
        """Seconds from start to ``now`` (monotonic), frozen once the work ended; 0 before start."""
        if self._started_at is None:
            return 0.0
        return (now if self._ended_at is None else self._ended_at) - self._started_at

    def _main(self) -> None:
        """The thread: the work, then its end state, whatever the work raised."""
        error = None
        try:
            state = self._work()
        except TaskFailed as failure:
            state, error = "failed", str(failure)
        except Exception as failure:  # a bug must end the task visibly, never kill the thread silently
            log.exception("%s failed", self._name)
            state, error = "failed", f"{type(failure).__name__}: {failure}"
        with self._lock:
            self._state, self._error, self._ended_at = state, error, time.monotonic()
            if error is not None:
                self._note_error_locked(error)
            self._on_end_locked()
