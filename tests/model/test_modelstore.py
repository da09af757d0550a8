"""The model store: saving, listing newest first, finding a model for the same data and split."""

import pytest
from kit.modelkit import fake_model as fake

from hbcore.model import store as modelstore
from hbcore.model.inference import FEATURE_VERSION


@pytest.fixture
def store(tmp_path):
    return tmp_path / "models"


def test_saved_models_are_listed_newest_first(store):
    fake(store, "20260101T000000Z-aaaa", split="intra")
    fake(store, "20260301T000000Z-bbbb", split="inter")
    versions = [saved.version for saved in modelstore.saved_models(store)]
    assert versions == ["20260301T000000Z-bbbb", "20260101T000000Z-aaaa"]


def test_incomplete_or_foreign_folders_are_skipped(store):
    fake(store, "20260101T000000Z-good")
    (store / "half").mkdir()
    (store / "half" / modelstore.MODEL_FILE).write_bytes(b"x")
    fake(store, "20260201T000000Z-bad")
    (store / "20260201T000000Z-bad" / modelstore.METADATA_FILE).write_text("{not json")
    assert [saved.version for saved in modelstore.saved_models(store)] == ["20260101T000000Z-good"]


def test_find_model_matches_data_and_split(store):
    fake(store, "20260101T000000Z-a", split="intra", data_key="k1")
    fake(store, "20260201T000000Z-b", split="inter", data_key="k1")
    fake(store, "20260301T000000Z-c", split="intra", data_key="k2")
    assert modelstore.find_model("k1", "intra", store).version == "20260101T000000Z-a"
    assert modelstore.find_model("k1", "inter", store).version == "20260201T000000Z-b"
    assert modelstore.find_model("k3", "intra", store) is None


def test_full_models_leave_out_quick_ones_other_splits_and_earlier_releases(store):
    """What the demo deploys at once and the home page looks for: a full model of the split, newest first."""
    fake(store, "20260101T000000Z-a", split="inter", data_key="k1")
    fake(store, "20260201T000000Z-b", split="inter", data_key="k2")
    fake(store, "20260301T000000Z-quick", split="inter", data_key="k1", preset=modelstore.QUICK)
    fake(store, "20260401T000000Z-intra", split="intra", data_key="k1")
    fake(store, "20260501T000000Z-old", split="inter", data_key="k1", model_format=None)
    assert [saved.version for saved in modelstore.full_models("inter", store=store)] == [
        "20260201T000000Z-b", "20260101T000000Z-a"]
    assert [saved.version for saved in modelstore.full_models("inter", "k1", store)] == ["20260101T000000Z-a"]
    assert [saved.quick for saved in modelstore.saved_models(store)] == [False, False, True, False, False]


def test_models_of_an_earlier_release_are_listed_but_not_servable(store):
    fake(store, "20260101T000000Z-old", split="intra", data_key="k1", model_format=None)
    [saved] = modelstore.saved_models(store)
    assert (saved.version, saved.servable) == ("20260101T000000Z-old", False)


def test_a_model_of_other_features_is_not_servable(store):
    """Its stream records would carry another context: every beat would be refused at the endpoint."""
    fake(store, "20260101T000000Z-old", split="inter", data_key="k1", feature_version=FEATURE_VERSION - 1)
    [saved] = modelstore.saved_models(store)
    assert not saved.servable and modelstore.find_model("k1", "inter", store) is None


def test_find_model_passes_over_models_of_an_earlier_release(store):
    fake(store, "20260101T000000Z-a", split="intra", data_key="k1")
    fake(store, "20260201T000000Z-old", split="intra", data_key="k1", model_format=None)
    assert modelstore.find_model("k1", "intra", store).version == "20260101T000000Z-a"


def test_save_model_writes_the_archive_and_its_metadata(store, small_model_tar):
    from hbcore.model.training import load_model

    model = load_model(small_model_tar)
    saved = modelstore.save_model(model, store)
    assert saved.path == store / model.version / modelstore.MODEL_FILE
    assert load_model(saved.path).version == model.version
    assert modelstore.saved_models(store)[0].metrics["accuracy"] == model.metadata["metrics"]["accuracy"]
    assert modelstore.saved_models(store)[0].servable


def test_a_saved_model_shows_the_evaluation_of_its_split(mitdb_beats, store):
    import numpy as np

    from hbcore.model.training import ModelParams, train_and_evaluate

    beats = mitdb_beats.subset(np.arange(0, len(mitdb_beats), 20))
    model = train_and_evaluate(beats, "inter", ModelParams(estimator="lda", feature_groups=("rr", "context")))

    evaluation = modelstore.save_model(model, store).evaluation

    assert evaluation["split"] == "inter" and evaluation["classes"] == "N/S/V/F"
    assert "232" in evaluation["test_records"] and "101" not in evaluation["test_records"]
    assert evaluation["accuracy"] == model.metadata["metrics"]["aami4"]["accuracy"]
    assert set(evaluation["se"]) == {"N", "S", "V", "F"} and 0 < evaluation["macro_f1"] <= 1
