"""The demo's set-up overlaps what does not depend on each other: the beats to stream are selected
(a fraction of a second over all of MIT-BIH) while the model, the stack and the endpoint are made."""

from __future__ import annotations

import threading
import types

from kit.beatkit import make_beats

from hbcore.app import demo

OVERLAP_WAIT_S = 5.0


class Recording:
    """Enough of a Pipeline for the whole set-up: an instant stack, a deploy that waits up to
    OVERLAP_WAIT_S for the selection to start, and a replay that records what it was given."""

    def __init__(self, selecting: threading.Event):
        self.selecting = selecting
        self.selected_during_deploy = False
        self.streamed = None

    def ensure_stack(self, progress):
        return {}

    def deploy(self, model_path, progress, label=None):
        self.selected_during_deploy = self.selecting.wait(OVERLAP_WAIT_S)
        return types.SimpleNamespace(endpoint="hb-endpoint", status="InService")

    def start_replay(self, beats, *, rate_bps=None, aggregate=True):
        self.streamed = beats
        return types.SimpleNamespace(run="r-1")


def test_the_beats_to_stream_are_selected_while_the_endpoint_is_deployed(monkeypatch, tmp_path):
    beats = make_beats({"100": 20, "101": 20})
    selecting = threading.Event()
    chosen = beats.subset([0, 1, 2])

    def selection(all_beats, n_beats, records, split):
        selecting.set()
        return chosen

    monkeypatch.setattr(demo, "replay_selection", selection)
    pipeline = Recording(selecting)
    ended = demo.DemoRun(pipeline, lambda: beats, model_path=tmp_path / "model.tar.gz").start().wait(30)  # type: ignore[arg-type]

    assert ended.error is None and ended.replay is not None
    assert pipeline.selected_during_deploy  # not after it, on the way to the first predictions
    assert pipeline.streamed is chosen


def test_a_selection_that_fails_is_the_replay_steps_error(monkeypatch, tmp_path):
    def selection(all_beats, n_beats, records, split):
        raise ValueError("records ['999'] are not in the beats")

    monkeypatch.setattr(demo, "replay_selection", selection)
    pipeline = Recording(threading.Event())
    ended = demo.DemoRun(pipeline, lambda: make_beats({"100": 5}),  # type: ignore[arg-type]
                         model_path=tmp_path / "model.tar.gz").start().wait(30)

    assert ended.error == "replay: ValueError: records ['999'] are not in the beats"
    states = {step.name: step.state for step in ended.steps}
    assert states == {"data": "done", "model": "done", "stack": "done", "endpoint": "done", "replay": "failed"}
    assert pipeline.streamed is None
