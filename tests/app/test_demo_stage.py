"""The warm-up's staging of the demo's model (hbcore.app.demo.stage_model): the stored full model served and
called once before the click, and nothing done when something is served already or nothing is stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from kit.beatkit import make_beats

from hbcore.app import demo
from hbcore.data.splits import DS1_RECORDS, DS2_RECORDS


class ServingPipeline:
    """What stage_model uses of a Pipeline: the path deployed, deploy and a test call, recorded."""

    def __init__(self, deployed: Path | None = None):
        self.deployed_path = deployed
        self.calls: list[tuple] = []

    def deploy(self, model_tar, label=None):
        self.calls.append(("deploy", Path(model_tar), label))
        self.deployed_path = Path(model_tar)

    def test_invoke(self, beats, rr=None):
        self.calls.append(("invoke", np.asarray(beats).shape, np.asarray(rr).shape))
        return {}


STORED = SimpleNamespace(path=Path("/store/v1/model.tar.gz"), version="v1", split="inter",
                         metrics={"macro_f1": 0.5}, metadata={}, quick=False)


def beats():
    return make_beats(dict.fromkeys((*DS1_RECORDS[:2], *DS2_RECORDS[:2]), 20))


def test_the_stored_full_model_is_served_and_called_once(monkeypatch):
    asked = []
    monkeypatch.setattr(demo, "find_full_model", lambda data, split: asked.append(split) or STORED)
    pipeline = ServingPipeline()

    assert demo.stage_model(pipeline, beats) is STORED  # type: ignore[arg-type]

    assert asked == [demo.DEMO_SPLIT]
    assert [call[0] for call in pipeline.calls] == ["deploy", "invoke"]
    assert pipeline.calls[0][1] == STORED.path and "v1" in pipeline.calls[0][2]
    assert pipeline.calls[1][1:] == ((1, 187), (1, 3))  # one beat, as a stream record carries it


def test_nothing_replaces_a_served_model_and_nothing_is_trained_without_a_stored_one(monkeypatch):
    loads = []
    served = ServingPipeline(Path("/store/v0/model.tar.gz"))
    assert demo.stage_model(served, lambda: loads.append(1) or beats()) is None  # type: ignore[arg-type]
    assert served.calls == [] and loads == []  # not even the beats were loaded

    monkeypatch.setattr(demo, "find_full_model", lambda data, split: None)
    monkeypatch.setattr(demo, "train_and_save", lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError))
    empty = ServingPipeline()
    assert demo.stage_model(empty, beats) is None  # type: ignore[arg-type]
    assert empty.calls == []


def test_the_demo_module_loads_no_scikit_learn():
    """The home page imports it in the background and the cached demo trains nothing: scikit-learn (~1.3 s of
    CPU beside the app's start) is imported only where a model is fitted."""
    code = "import sys, hbcore.app.demo, hbcore.model.store; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_import_estimators_imports_what_a_fit_needs():
    """What the home page's background preload calls when the demo will train (no stored full model)."""
    code = ("import sys, hbcore.model.training as training; training.import_estimators(); "
            "print(all(name in sys.modules for name in ('sklearn.discriminant_analysis', 'sklearn.exceptions')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
