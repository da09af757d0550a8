"""Where data, caches and artifacts live.

Everything is overridable from the environment so that tests, CI and users point the same code at
their own folders: ``HB_DATA_DIR`` (a folder laid out as ``shared/data``: ``mitdb/``, optionally
``kaggle_mitbih/``) and ``HB_CACHE_DIR`` (built datasets, downloads, models; default
``~/.cache/hbcore``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The writable cache folder (created on first use)."""
    path = Path(os.environ.get("HB_CACHE_DIR") or Path.home() / ".cache" / "hbcore")
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """The folder named by ``HB_DATA_DIR``, or None when it is unset."""
    value = os.environ.get("HB_DATA_DIR")
    return Path(value) if value else None


def download_dir() -> Path:
    """Where ``python -m hbcore data download`` puts the PhysioNet records."""
    return cache_dir() / "mitdb"


def default_mitdb_dir() -> Path | None:
    """``$HB_DATA_DIR/mitdb`` if it holds records, else the download cache if it does, else None."""
    candidates = []
    data = data_dir()
    if data is not None:
        candidates.append(data / "mitdb")
    candidates.append(download_dir())
    for candidate in candidates:
        if any(candidate.glob("*.hea")):
            return candidate
    return None


def models_dir() -> Path:
    """Where trained ``model.tar.gz`` files are kept (one sub-folder per model version)."""
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
