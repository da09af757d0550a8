"""The training and demo set-up threads never die silently: an unexpected exception is the run's error."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.app import training_run as training
from hbcore.app.demo import DemoRun
from hbcore.data.dataset import BeatSet, meta_frame
from hbcore.model.training import ModelParams

WAIT_S = 30.0


@pytest.fixture
def beats() -> BeatSet:
    n = 10
    meta = meta_frame({"record": np.full(n, "100"), "sample": np.arange(n), "label": np.zeros(n, np.int64)})
    return BeatSet(np.zeros((n, 187), np.float32), np.zeros(n, np.int8), meta)


def test_an_unexpected_exception_in_the_training_thread_fails_the_run(beats, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("cannot allocate 2.1 GiB")

    monkeypatch.setattr("hbcore.model.training.train_and_evaluate", broken)
    run = training.TrainingRun(beats, "intra", ModelParams(max_iter=1), store=tmp_path).start()

    done = run.wait(WAIT_S)

    assert (done.state, done.error, done.saved) == ("failed", "MemoryError: cannot allocate 2.1 GiB", None)
    assert (done.done, done.fraction) == (True, 1.0)
    assert not run._thread.is_alive()


def test_a_training_run_not_started_is_idle_not_done(beats, tmp_path):
    progress = training.TrainingRun(beats, "intra", ModelParams(max_iter=1), store=tmp_path).progress()

    assert (progress.state, progress.done, progress.fraction, progress.elapsed_s) == ("idle", False, 0.0, 0.0)


class BrokenStack:
    """A pipeline whose stack outputs lack a key (an answer of a shape nobody expected)."""

    def ensure_stack(self, progress):
        progress("creating the stack")
        raise KeyError("StreamName")


def test_an_unexpected_exception_in_the_demo_thread_fails_the_step_under_way(beats, tmp_path):
    run = DemoRun(BrokenStack(), lambda: beats, model_path=tmp_path / "model.tar.gz").start()

    progress = run.wait(WAIT_S)

    assert progress.error == "stack: KeyError: 'StreamName'"
    assert (progress.finished, progress.step, progress.done_steps) == (True, "stack", ("data", "model"))
    assert "creating the stack" in progress.messages  # the stack is made while the data and model steps run
    assert not run._thread.is_alive()
