"""Raw ECG of one MIT-BIH record around a time, with its reference beat annotations and classes.

The record viewer (Data page) and the "beats around it" view (Misclassified page) show the signal
the beat windows were cut from, so a user can check an annotation or a prediction against the
original 360 Hz trace. Reading a 10 s segment costs a few milliseconds: nothing is cached here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES


@dataclass(frozen=True)
class RecordSegment:
    """A stretch of one record: the first channel's trace and the beats annotated in it."""

    record: str
    lead: str
    fs: float
    signal: pd.DataFrame  # t_s, mv
    beats: pd.DataFrame   # t_s, sample, mv, symbol, class (AAMI class name)


def record_names(mitdb_dir: Path) -> list[str]:
    """The records in a WFDB folder (names of the ``.hea`` files), sorted."""
    return sorted(path.stem for path in Path(mitdb_dir).glob("*.hea"))


def _header(mitdb_dir: Path, record: str) -> tuple[Path, wfdb.Record]:
    path = Path(mitdb_dir) / record
    if not path.with_suffix(".hea").is_file():
        raise FileNotFoundError(f"record {record!r}: no {path.with_suffix('.hea')}")
    return path, wfdb.rdheader(str(path))


def record_seconds(mitdb_dir: Path, record: str) -> float:
    """Length of a record in seconds (from its header only)."""
    _, header = _header(mitdb_dir, record)
    return header.sig_len / header.fs


def read_segment(mitdb_dir: Path, record: str, start_s: float, duration_s: float) -> RecordSegment:
    """The first channel of ``record`` from ``start_s`` for ``duration_s`` seconds, with its beats.

    Raises ``FileNotFoundError`` naming the record when it is not in ``mitdb_dir``, and
    ``ValueError`` when the window is empty.
    """
    path, header = _header(mitdb_dir, record)
    if duration_s <= 0:
        raise ValueError(f"record {record!r}: duration must be positive, got {duration_s} s")
    first = max(0, int(start_s * header.fs))
    last = min(header.sig_len, first + int(duration_s * header.fs))
    if last <= first:
        raise ValueError(f"record {record!r}: {start_s} s is past its end ({header.sig_len / header.fs:.0f} s)")
    signal = wfdb.rdrecord(str(path), sampfrom=first, sampto=last, channels=[0])
    trace = signal.p_signal[:, 0]
    annotations = wfdb.rdann(str(path), "atr", sampfrom=first, sampto=last - 1)
    keep = [i for i, symbol in enumerate(annotations.symbol) if symbol in AAMI_SYMBOLS]
    samples = np.asarray(annotations.sample, dtype=int)[keep]
    symbols = [annotations.symbol[i] for i in keep]
    beats = pd.DataFrame({
        "t_s": samples / header.fs,
        "sample": samples,
        "mv": trace[samples - first],
        "symbol": symbols,
        "class": [CLASS_NAMES[AAMI_SYMBOLS[s]] for s in symbols],
    })
    times = (first + np.arange(last - first)) / header.fs
    return RecordSegment(record=record, lead=signal.sig_name[0], fs=float(header.fs),
                         signal=pd.DataFrame({"t_s": times, "mv": trace}), beats=beats)


def segment_around(mitdb_dir: Path, record: str, sample: int, *, seconds_each_side: float = 3.0) -> RecordSegment:
    """The stretch of ``record`` centred on one beat (its R peak at ``sample``)."""
    _, header = _header(mitdb_dir, record)
    start_s = max(0.0, sample / header.fs - seconds_each_side)
    return read_segment(mitdb_dir, record, start_s, 2 * seconds_each_side)
