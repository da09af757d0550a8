"""Download the MIT-BIH Arrhythmia Database (``mitdb``) from PhysioNet with wfdb.

Real users have internet and no copy of the records; ``python -m hbcore data download`` puts them
where ``hbcore.paths.default_mitdb_dir()`` looks next (the cache's ``mitdb/``). Tests never call
the network.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from hbcore import paths
from hbcore.errors import HbError

PHYSIONET_DATABASE = "mitdb"
RECORD_ANNOTATOR = "atr"


class DownloadError(HbError):
    """The PhysioNet download failed; what is already on disk stays, so running it again resumes."""


def download_mitdb(dest: Path | str | None = None) -> Path:
    """Fetch every mitdb record (header, signal, ``atr`` annotations) into ``dest``.

    wfdb skips files that are already present, so an interrupted download resumes. Its progress
    messages go to stderr, so that stdout stays machine-readable.
    """
    import wfdb

    dest = Path(dest) if dest is not None else paths.download_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):
        wfdb.dl_database(PHYSIONET_DATABASE, str(dest), annotators=[RECORD_ANNOTATOR])
    return dest


def run_download(dest: Path | str | None = None) -> dict[str, object]:
    """``python -m hbcore data download``: download, then say where the records are and how many.

    Network and HTTP errors come from requests, urllib3 and wfdb alike, so any failure of the
    download becomes one :class:`DownloadError` that names the database and the remedy.
    """
    try:
        folder = download_mitdb(dest)
    except Exception as error:
        raise DownloadError(f"downloading {PHYSIONET_DATABASE} from PhysioNet failed ({error}); "
                            "run it again to resume") from error
    return {"mitdb": str(folder), "records": len(list(folder.glob("*.hea")))}
