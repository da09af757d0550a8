"""Training in the background: progress while it runs, the saved model when it is done."""

import numpy as np
import pytest
from kit.beatkit import make_beats

from hbcore.app import training_run as training
from hbcore.data import dataset
from hbcore.model import store as modelstore
from hbcore.model.training import ModelParams


@pytest.fixture(scope="module")
def few_beats(mitdb_beats):
    return mitdb_beats.subset(np.flatnonzero(mitdb_beats.meta["record"].isin(["100", "119"]).to_numpy()))


def test_beats_key_depends_on_the_beats_only(few_beats):
    assert training.beats_key(few_beats) == training.beats_key(few_beats.subset(np.arange(len(few_beats))))
    assert training.beats_key(few_beats) != training.beats_key(few_beats.subset(np.arange(10)))


def test_the_digest_is_taken_once_per_set(monkeypatch):
    """The warm-up and the demo's click look the model up with the same set: the second lookup hashes nothing."""
    beats = make_beats({"100": 5, "119": 3})
    first = training.beats_key(beats)
    monkeypatch.setattr(dataset.hashlib, "sha256", lambda: pytest.fail("the windows were hashed again"))
    assert training.beats_key(beats) == beats.digest == first


def test_expected_seconds_grows_with_beats_and_epochs():
    small = training.expected_seconds(10_000, ModelParams(max_iter=10, final_iter=0))
    large = training.expected_seconds(40_000, ModelParams(max_iter=30, final_iter=10))
    assert large - training.FIXED_SECONDS == pytest.approx(16 * (small - training.FIXED_SECONDS))


def test_expected_seconds_counts_shifted_copies_and_the_network_size():
    plain = ModelParams(hidden_layers=(128,), max_iter=4, final_iter=0)
    shifted = ModelParams(hidden_layers=(128,), max_iter=4, final_iter=0, shifts=(-1, 1))
    wider = ModelParams(hidden_layers=(256,), max_iter=4, final_iter=0)
    assert training.fit_work(1000, shifted) == 3 * training.fit_work(1000, plain)
    assert training.fit_work(1000, wider) == 2 * training.fit_work(1000, plain)


def test_a_measured_fit_scales_to_another_recipe_on_the_same_beats():
    quick = ModelParams(hidden_layers=(128,), max_iter=4, final_iter=0)
    full = ModelParams(hidden_layers=(128,), max_iter=8, final_iter=0, shifts=(-2, -1, 1, 2))
    measured_s = training.FIXED_SECONDS + 2.0
    assert training.scaled_seconds(measured_s, quick, full, 50_000) == pytest.approx(training.FIXED_SECONDS + 20.0)


def test_training_run_saves_an_evaluated_model(few_beats, tmp_path):
    run = training.TrainingRun(few_beats, "intra", ModelParams(hidden_layers=(16,), max_iter=2), store=tmp_path,
                               source="mitdb").start()
    assert run.progress().state == "running" and 0.0 <= run.progress().fraction <= training.ESTIMATE_CAP
    done = run.wait(120)
    assert done.state == "done" and done.fraction == 1.0 and done.error is None
    assert done.saved.metadata["data_key"] == training.beats_key(few_beats)
    assert done.saved.metadata["source"] == "mitdb" and 0.5 < done.saved.metrics["accuracy"] <= 1.0
    assert modelstore.find_model(training.beats_key(few_beats), "intra", tmp_path).version == done.saved.version


def test_training_run_reports_a_failure(few_beats, tmp_path):
    run = training.TrainingRun(few_beats, "diagonal", ModelParams(max_iter=1), store=tmp_path).start()
    done = run.wait(60)
    assert done.state == "failed" and "split 'diagonal'" in done.error and done.saved is None
