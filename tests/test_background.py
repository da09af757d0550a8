"""hbcore.background: the one shape of background work (start once, stop, state, errors, one lock)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hbcore.background import KEPT_ERRORS, BackgroundTask, TaskFailed

WAIT_S = 10.0


@dataclass(frozen=True)
class Status:
    state: str
    error: str | None
    errors: tuple[str, ...]
    error_count: int
    elapsed_s: float


class Task(BackgroundTask[Status]):
    """A task whose work is ``body(task)``; records what its hooks saw."""

    def __init__(self, body: Callable[[Task], str]):
        super().__init__("test-task")
        self.body = body
        self.hooks: list[tuple[str, str, bool]] = []  # (hook, state then, lock held)

    def progress(self) -> Status:
        with self._lock:
            return Status(self._state, self._error, tuple(self._errors), self._error_count,
                          self._elapsed_s_locked(time.monotonic()))

    def _work(self) -> str:
        return self.body(self)

    def _on_stop_locked(self) -> None:
        self.hooks.append(("stop", self._state, self._lock.locked()))

    def _on_end_locked(self) -> None:
        self.hooks.append(("end", self._state, self._lock.locked()))


def until_stopped(task: Task) -> str:
    """A loop that checks the stop flag at every wait, as the replay's and the reader's do."""
    while not task._wait_for_stop(60.0):
        pass
    return "stopped"


def test_a_task_is_idle_until_started_then_ends_in_the_state_its_work_returns():
    task = Task(lambda _: "finished")
    idle = task.progress()

    done = task.start().wait(WAIT_S)

    assert (idle.state, idle.elapsed_s) == ("idle", 0.0)
    assert (done.state, done.error, done.errors, done.error_count) == ("finished", None, (), 0)
    assert not task._thread.is_alive()


def test_a_task_starts_once():
    task = Task(lambda _: "finished").start()
    task.wait(WAIT_S)

    with pytest.raises(RuntimeError, match="test-task was already started"):
        task.start()


def test_an_unexpected_exception_fails_the_task_with_its_type_and_message(caplog):
    def broken(_: Task) -> str:
        raise TypeError("'NoneType' object is not subscriptable")

    with caplog.at_level(logging.ERROR, logger="hbcore.background"):
        progress = Task(broken).start().wait(WAIT_S)

    message = "TypeError: 'NoneType' object is not subscriptable"
    assert (progress.state, progress.error, progress.errors, progress.error_count) == ("failed", message, (message,), 1)
    assert [record.exc_info[0] for record in caplog.records] == [TypeError]  # the traceback is in the log


def test_a_described_failure_is_the_error_as_written_and_logs_no_traceback(caplog):
    def refused(_: Task) -> str:
        raise TaskFailed("PutRecords failed: ResourceNotFoundException")

    with caplog.at_level(logging.ERROR, logger="hbcore.background"):
        progress = Task(refused).start().wait(WAIT_S)

    assert (progress.state, progress.error) == ("failed", "PutRecords failed: ResourceNotFoundException")
    assert caplog.records == []


def test_stop_is_obeyed_at_the_next_wait_not_after_it():
    task = Task(until_stopped).start()

    started = time.monotonic()
    progress = task.stop()

    assert progress.state == "stopped"
    assert time.monotonic() - started < 1.0  # the loop waits 60 s at a time
    assert not task._thread.is_alive()


def test_wait_for_stop_sleeps_its_time_when_no_stop_comes():
    task = Task(lambda _: "finished")

    started = time.monotonic()
    stopped = task._wait_for_stop(0.05)

    assert (stopped, time.monotonic() - started >= 0.05) == (False, True)


def test_the_hooks_run_with_the_lock_held_stop_before_end():
    task = Task(until_stopped).start()

    task.stop()

    assert task.hooks == [("stop", "running", True), ("end", "stopped", True)]


def test_the_end_hook_runs_after_a_failure_too():
    def broken(_: Task) -> str:
        raise ValueError("bad")

    task = Task(broken).start()
    task.wait(WAIT_S)

    assert task.hooks == [("end", "failed", True)]


def test_the_newest_errors_are_kept_and_all_are_counted():
    def noisy(task: Task) -> str:
        with task._lock:
            for index in range(KEPT_ERRORS + 5):
                task._note_error_locked(f"error {index}")
        return "finished"

    progress = Task(noisy).start().wait(WAIT_S)

    assert progress.error_count == KEPT_ERRORS + 5
    assert progress.errors == tuple(f"error {index}" for index in range(5, KEPT_ERRORS + 5))


def test_elapsed_time_stops_when_the_work_ends():
    task = Task(lambda _: time.sleep(0.05) or "finished").start()
    first = task.wait(WAIT_S)
    time.sleep(0.05)

    assert first.elapsed_s >= 0.05
    assert task.progress().elapsed_s == first.elapsed_s


def test_the_context_manager_starts_and_stops_the_task():
    with Task(until_stopped) as task:
        assert task.progress().state == "running"

    assert task.progress().state == "stopped"


def test_a_page_polling_while_the_work_runs_sees_running():
    release = threading.Event()
    task = Task(lambda _: release.wait(WAIT_S) and "finished").start()

    running = task.progress()
    release.set()

    assert (running.state, task.wait(WAIT_S).state) == ("running", "finished")
