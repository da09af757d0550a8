"""Download the MIT-BIH Arrhythmia Database (``mitdb``) from PhysioNet with wfdb.

Real users have internet and no copy of the records; ``python -m hbcore data download`` puts them
where ``hbcore.paths.default_mitdb_dir()`` looks next (the cache's ``mitdb/``). Tests never call
the network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from hbcore import paths

PHYSIONET_DATABASE = "mitdb"
RECORD_ANNOTATOR = "atr"


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


def cli_download(args: argparse.Namespace) -> int:
    """``python -m hbcore data download [--dir D]``: download and print where the records are."""
    from hbcore.cli import CliError

    try:
        dest = download_mitdb(args.dir)
    except Exception as error:  # network and HTTP errors come from requests, urllib3 and wfdb alike
        raise CliError(f"downloading {PHYSIONET_DATABASE} from PhysioNet failed ({error}); run it again to resume") from error
    print(json.dumps({"mitdb": str(dest), "records": len(list(dest.glob("*.hea")))}))
    return 0
