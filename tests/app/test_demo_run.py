"""hbcore.app.demo without a cloud: what the demo streams, and how its set-up reports progress and failure."""

from __future__ import annotations

import threading
import time

import pytest
from kit.beatkit import make_beats

from hbcore.app import demo
from hbcore.data.splits import DS1_RECORDS, DS2_RECORDS


def test_the_default_demo_streams_the_unseen_ds2_patients_interleaved():
    beats = make_beats(dict.fromkeys((*DS1_RECORDS[:3], *DS2_RECORDS[:4]), 30))

    streamed = demo.replay_selection(beats, None)

    assert set(streamed.records()) == set(DS2_RECORDS[:4])  # no beat of a patient the model trained on
    first = streamed.meta["record"].iloc[:8].tolist()
    assert len(set(first)) == 4  # several patients at once, in time order, not one record after another


def test_patients_the_model_has_seen_are_the_other_choice():
    beats = make_beats(dict.fromkeys((*DS1_RECORDS[:2], *DS2_RECORDS[:2]), 50))

    streamed = demo.replay_selection(beats, None, split="intra")

    assert set(streamed.records()) == set(beats.records()) and len(streamed) < len(beats)


class StackOnly:
    """Enough of a Pipeline for the set-up's first steps: a stack that takes ``seconds``."""

    def __init__(self, seconds: float = 0.2):
        self.seconds = seconds
        self.made = threading.Event()

    def ensure_stack(self, progress):
        threading.Event().wait(self.seconds)
        progress("stack made")
        self.made.set()
        return {}


def test_a_failed_step_stops_the_bar_where_it_failed_with_the_reason():
    def no_data():
        raise FileNotFoundError("MIT-BIH folder /nowhere does not exist")

    pipeline = StackOnly()
    run = demo.DemoRun(pipeline, no_data, load_s=5.0).start()  # type: ignore[arg-type]
    ended = run.wait(30)

    assert ended.error == "data: FileNotFoundError: MIT-BIH folder /nowhere does not exist"
    assert ended.finished and ended.replay is None
    states = {step.name: step.state for step in ended.steps}
    assert states == {"data": "failed", "model": "waiting", "stack": "done", "endpoint": "waiting",
                      "replay": "waiting"}
    assert 0.0 < ended.fraction < 0.5  # the stack's share and a little of the data's; never 100 %
    assert ended.fraction == run.progress().fraction  # it stays there
    assert pipeline.made.is_set()  # the stack made meanwhile was waited for, not abandoned


def test_the_estimate_moves_while_a_step_works_and_never_claims_it_done():
    loading = threading.Event()

    def slow_data():
        loading.wait(10)
        raise RuntimeError("stopped by the test")

    run = demo.DemoRun(StackOnly(0.0), slow_data, load_s=0.2).start()  # type: ignore[arg-type]
    try:
        threading.Event().wait(0.5)  # past the data step's estimate
        data = next(step for step in run.progress().steps if step.name == "data")
        assert data.state == "working" and data.share == demo.STEP_SHARE_CAP
        assert run.progress().remaining_s == pytest.approx(sum(demo.STEP_SECONDS[name] for name in
                                                               ("model", "endpoint", "replay")), abs=0.01)
    finally:
        loading.set()
        run.wait(10)


def test_an_unknown_split_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="split 'diagonal'"):
        demo.DemoRun(StackOnly(), make_beats, split="diagonal")  # type: ignore[arg-type]


class FailingStack(StackOnly):
    def ensure_stack(self, progress):
        raise PermissionError("cloudformation:CreateStack denied")


class FailingOnceDataLoads(FailingStack):
    """Fails only once the data step is under way, so the test sees that step still working."""

    def __init__(self, data_started: threading.Event) -> None:
        super().__init__()
        self.data_started = data_started

    def ensure_stack(self, progress):
        self.data_started.wait(10)
        super().ensure_stack(progress)


def test_a_failed_stack_is_said_at_once_not_after_the_data_and_model_steps():
    loading, data_started = threading.Event(), threading.Event()

    def slow_data():
        data_started.set()
        loading.wait(10)
        raise RuntimeError("released by the test")

    run = demo.DemoRun(FailingOnceDataLoads(data_started), slow_data).start()  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 5
        while not run.progress().finished and time.monotonic() < deadline:
            time.sleep(0.05)
        progress = run.progress()
        assert progress.error == "stack: PermissionError: cloudformation:CreateStack denied"
        assert progress.finished and {step.name: step.state for step in progress.steps}["data"] == "working"
        assert progress.step == "stack"  # the bar names the step that failed, not the one still running
    finally:
        loading.set()
        run.wait(10)
