"""Where data, caches and artifacts live, and the default names of cloud resources.

Everything is overridable from the environment so that tests, CI and users point the same code at
their own folders: ``HB_DATA_DIR`` (a folder laid out as ``shared/data``: ``mitdb/``, optionally
``kaggle_mitbih/``) and ``HB_CACHE_DIR`` (built datasets, downloads, models; default
``~/.cache/hbcore``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGION = "us-east-1"


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
    if data_dir() is not None:
        candidates.append(data_dir() / "mitdb")
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


@dataclass(frozen=True)
class Names:
    """Names of the cloud resources of one deployment, derived from a prefix.

    The same names are used locally and on AWS, so a user can move between the two without
    renaming anything.
    """

    prefix: str = "hb"

    @property
    def stream(self) -> str:
        return f"{self.prefix}-beats"

    @property
    def function(self) -> str:
        return f"{self.prefix}-classifier"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def stack(self) -> str:
        return f"{self.prefix}-pipeline"

    def bucket(self, account_id: str, region: str) -> str:
        """S3 bucket for model artifacts and the Lambda zip (bucket names are global)."""
        return f"{self.prefix}-artifacts-{account_id}-{region}"
