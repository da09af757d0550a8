"""Where data, caches and artifacts live.

Everything is overridable from the environment so that tests, CI and users point the same code at
their own folders: ``HB_DATA_DIR`` (a folder laid out as ``shared/data``: ``mitdb/``, optionally
``kaggle_mitbih/``) and ``HB_CACHE_DIR`` (built datasets, downloads, models; default
``~/.cache/hbcore``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from hbcore.errors import HbError

_usable_cache_dirs: set[Path] = set()  # checked once per process: a probe file per call would cost


class CacheDirError(HbError):
    """The cache folder cannot be used (a file, read-only, full); the message names it and why.

    Not an ``OSError`` on purpose: code that shrugs off a failed cache write must not shrug off this.
    """


def cache_dir() -> Path:
    """The writable cache folder (created, and proven writable, on first use).

    Everything that runs (models, the local cloud's state and lock, downloads) writes here, so an
    unusable folder is reported once, up front, naming the folder and the reason, rather than as a
    traceback from whichever write happens to come first.
    """
    path = Path(os.environ.get("HB_CACHE_DIR") or Path.home() / ".cache" / "hbcore")
    if path in _usable_cache_dirs and path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:  # creating is not enough: a full disk fails on write
            probe.write(b"\0")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise CacheDirError(f"cache folder {path} is not usable: {_reason(error)} "
                            "(set HB_CACHE_DIR to a writable folder)") from None
    _usable_cache_dirs.add(path)
    return path


def _reason(error: OSError) -> str:
    reasons = {errno.EEXIST: "a file is in the way", errno.ENOTDIR: "a file is in the way",
               errno.EACCES: "permission denied (read-only?)", errno.EPERM: "permission denied (read-only?)",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device",
               errno.EDQUOT: "disk quota exceeded"}
    return reasons.get(error.errno or 0, error.strerror or str(error))


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
