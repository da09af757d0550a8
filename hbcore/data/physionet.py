"""Download the MIT-BIH Arrhythmia Database (``mitdb``) from PhysioNet with wfdb.

Real users have internet and no copy of the records; ``python -m hbcore data download`` puts them
where ``hbcore.paths.default_mitdb_dir()`` looks next (the cache's ``mitdb/``). Tests never call
the network.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

from hbcore import paths
from hbcore.errors import HbError

PHYSIONET_DATABASE = "mitdb"
RECORD_ANNOTATOR = "atr"


PHYSIONET_HOST = "physionet.org"
# How a failed connection reads once requests and urllib3 have wrapped it (the exception types differ
# between their versions and wfdb's, the words do not).
UNREACHABLE_WORDS = ("NameResolutionError", "Name or service not known", "Temporary failure in name resolution",
                     "nodename nor servname", "Failed to establish a new connection", "Network is unreachable",
                     "Connection refused", "timed out", "No route to host")
OTHER_WAYS = ("a folder of WFDB records (.hea, .dat, .atr) copied from elsewhere, or the Kaggle CSV files "
              "(mitbih_train.csv, mitbih_test.csv)")


class DownloadError(HbError):
    """The PhysioNet download failed; what is already on disk stays, so running it again resumes."""


class PhysioNetUnreachable(DownloadError):
    """physionet.org cannot be reached at all (no internet, a proxy or firewall): retrying will not help."""


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) says the host could not be reached, rather than answered badly."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (socket.gaierror, ConnectionError, TimeoutError)):
            return True
        if type(current).__name__ in ("ConnectionError", "ConnectTimeout", "NameResolutionError",
                                      "NewConnectionError", "MaxRetryError"):
            return True
        if any(words in str(current) for words in UNREACHABLE_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def download_mitdb(dest: Path | str | None = None) -> Path:
    """Fetch every mitdb record (header, signal, ``atr`` annotations) into ``dest``.

    wfdb skips files that are already present, so an interrupted download resumes. Its progress
    messages go to stderr, so that stdout stays machine-readable.

    Network and HTTP errors come from requests, urllib3 and wfdb alike, so any failure of the
    download becomes one :class:`DownloadError` that names the database and the remedy;
    :class:`PhysioNetUnreachable` when the host cannot be reached at all, naming the ways on without it.
    """
    import wfdb

    dest = Path(dest) if dest is not None else paths.download_dir()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            wfdb.dl_database(PHYSIONET_DATABASE, str(dest), annotators=[RECORD_ANNOTATOR])
    except Exception as error:
        if unreachable(error):
            raise PhysioNetUnreachable(
                f"PhysioNet ({PHYSIONET_HOST}) cannot be reached: no internet connection, or a proxy or firewall in "
                f"the way. Without it, use {OTHER_WAYS}") from error
        raise DownloadError(f"downloading {PHYSIONET_DATABASE} from PhysioNet failed ({error}); "
                            "run it again to resume") from error
    return dest


def run_download(dest: Path | str | None = None) -> dict[str, object]:
    """``python -m hbcore data download``: download, then say where the records are and how many."""
    folder = download_mitdb(dest)
    return {"mitdb": str(folder), "records": len(list(folder.glob("*.hea")))}
