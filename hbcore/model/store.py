"""The trained models kept on disk: one folder per model version under ``paths.models_dir()``.

Each folder holds ``model.tar.gz`` and a copy of its ``metadata.json`` beside it, so that listing
and comparing models never opens an archive (nor imports scikit-learn: the app's first page lists
models before anything needs the estimator). A model records the data it was trained on
(``data_key``) and its split, which lets the demo reuse a model instead of training again.

Models saved by earlier releases hold a scikit-learn pickle (``model.joblib``) instead of
``model.npz``, or read other features (an older ``feature_version``); they stay listed, with their
figures, but are not :attr:`SavedModel.servable`:
the demo trains a new model rather than reuse one, and deploying one fails with a word to retrain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hbcore import paths
from hbcore.model.inference import FEATURE_VERSION, MODEL_FORMAT

if TYPE_CHECKING:
    from hbcore.model.training import BeatModel

MODEL_FILE = "model.tar.gz"
METADATA_FILE = "metadata.json"  # the same name as inside the archive (hbcore.model.training.METADATA_FILE)
# A quick preset's model (the demo's first one, streamed while the full one trains) records PRESET_KEY: QUICK;
# a full model records no preset.
PRESET_KEY = "preset"
QUICK = "quick"


@dataclass(frozen=True)
class SavedModel:
    """A model in the store: where its artifact is and what it says about itself."""

    version: str
    path: Path  # model.tar.gz
    metadata: dict

    @property
    def metrics(self) -> dict:
        return self.metadata.get("metrics", {})

    @property
    def evaluation(self) -> dict | None:
        """What to show of its offline test: ``split``, ``test_records``, ``classes``, ``accuracy``,
        ``macro_f1``, ``se`` per class (``hbcore.model.training.evaluation_summary``); None for a
        model stored without a test."""
        return self.metadata.get("evaluation")

    @property
    def split(self) -> str | None:
        return self.metadata.get("split")

    @property
    def data_key(self) -> str | None:
        return self.metadata.get("data_key")

    @property
    def quick(self) -> bool:
        """Whether a quick preset trained it (a full model is what the demo deploys once it has one)."""
        return self.metadata.get(PRESET_KEY) == QUICK

    @property
    def servable(self) -> bool:
        """Whether this release's endpoint and ``load_model`` read it: earlier releases wrote pickles,
        or computed other features (another ``feature_version``: the stream's context would not fit)."""
        return (self.metadata.get("model_format") == MODEL_FORMAT
                and self.metadata.get("feature_version") == FEATURE_VERSION)


def save_model(model: BeatModel, store: Path | None = None) -> SavedModel:
    """Write ``model`` into the store (a model already there under its version is kept as is)."""
    from hbcore.model.training import (
        write_model_tar,  # scikit-learn: imported only when a model is saved
    )

    folder = (store or paths.models_dir()) / model.version
    path = folder / MODEL_FILE
    if not path.is_file():
        write_model_tar(model, path)
        (folder / METADATA_FILE).write_text(json.dumps(model.metadata, indent=2) + "\n")
    return SavedModel(model.version, path, model.metadata)


def saved_models(store: Path | None = None) -> list[SavedModel]:
    """Every complete model in the store, newest first (versions start with their UTC time)."""
    models = []
    for folder in (store or paths.models_dir()).iterdir():
        path, metadata_path = folder / MODEL_FILE, folder / METADATA_FILE
        if path.is_file() and metadata_path.is_file():
            try:
                metadata = json.loads(metadata_path.read_text())
            except ValueError:  # a half-written or foreign file: not a model of ours
                continue
            models.append(SavedModel(folder.name, path, metadata))
    return sorted(models, key=lambda saved: saved.version, reverse=True)


def full_models(split: str, data_key: str | None = None, store: Path | None = None) -> list[SavedModel]:
    """The servable full (not quick) models trained with ``split``, on the data ``data_key`` if given; newest first."""
    return [saved for saved in saved_models(store) if saved.servable and not saved.quick and saved.split == split
            and (data_key is None or saved.data_key == data_key)]


def find_model(data_key: str, split: str, store: Path | None = None) -> SavedModel | None:
    """The newest servable model trained on the data ``data_key`` with ``split``, or None."""
    return next((saved for saved in saved_models(store)
                 if saved.servable and saved.data_key == data_key and saved.split == split), None)
