"""Stand-ins for stored models: a model store's folders without training anything."""

import json
from pathlib import Path

from hbcore.model import store as modelstore
from hbcore.model.inference import FEATURE_VERSION, MODEL_FORMAT


def fake_model(store: Path, version: str, **metadata) -> None:
    """A stored model of this release under ``store`` (``model_format=None`` or another ``feature_version``
    makes one of an earlier release); the archive is a placeholder, the metadata ``metadata``."""
    folder = store / version
    folder.mkdir(parents=True)
    (folder / modelstore.MODEL_FILE).write_bytes(b"archive")
    metadata = {"version": version, "model_format": MODEL_FORMAT, "feature_version": FEATURE_VERSION, **metadata}
    (folder / modelstore.METADATA_FILE).write_text(json.dumps({k: v for k, v in metadata.items() if v is not None}))
