"""MIT-BIH beat windows of the Kaggle "ECG Heartbeat Categorization" kind, built from raw WFDB records.

Two recipes cut the windows (``recipe=``; the cache keeps them apart):

``"paper"`` (default) — Kachuee, Fazeli & Sarrafzadeh (2018) as written: the signal is resampled
from 360 Hz to 125 Hz (polyphase filter: scipy's ``resample_poly(x, 25, 72)``, computed by
:mod:`hbcore.data.resample`); the record is cut into consecutive 10-second windows whose nominal
period ``T`` is the median of the RR intervals between consecutive beats that both lie in it (a
window with fewer than two beats uses the record's median RR); each beat's window starts at its R
peak and is ``round(1.2 T)`` samples long at 125 Hz.
Lead MLII wherever the record has it: the first channel in 45 records, the second in record 114
(``V5, MLII``); records 102 and 104 have no MLII (``V5, V2``), so they use their first channel, V5.

``"kaggle"`` — what the published Kaggle rows actually hold, found by matching them against the raw
records: 476 of the 520 rows in ``kaggle_mitbih/`` equal, to float precision, every 3rd sample
of the first channel's 360 Hz ADC values (so 120 Hz, not 125 Hz, and no anti-alias filter)
starting exactly at an ``atr`` beat annotation, min-max scaled. The window length is close to
``ceil(1.2 x the next RR interval / 3)`` samples (the closest rule found; the Kaggle code's own
R-peak detector is not reproducible from the rows). It uses the first channel everywhere, as the
Kaggle rows do (V5 for record 114).

Common to both:

- Beats are the reference ``atr`` annotations whose symbol is an AAMI beat symbol
  (:data:`hbcore.data.classes.AAMI_SYMBOLS`); rhythm, noise and artefact annotations are ignored.
- A window is cut at the end of the signal, min-max scaled to [0, 1] over its samples (a flat
  window is all zeros), then zero-padded or cut to 187 samples.
- Dropped edge beats: the last beat annotation of every record (48 beats on the full database:
  N 42, S 2, Q 4). It has no next beat, so no next RR interval, and in most records its window
  would run past the end of the signal. The Kaggle files drop exactly the same beats: the full
  build has 109,446 beats, N 90,589, S 2,779, V 7,236, F 803, Q 8,039, the Kaggle dataset's
  counts class for class (annotations: 109,494 = N 90,631, S 2,781, V 7,236, F 803, Q 8,043).
- RR features (``rr_prev_s``, ``rr_next_s``, ``rr_local_s``) come from the annotated beat
  positions at 360 Hz: the previous and next RR interval, and the mean of the up-to-10 RR
  intervals that end at this beat. They are NaN where undefined (``rr_prev_s`` and ``rr_local_s``
  of a record's first beat). The ``lead`` column names the channel the window was cut from.
- The pre-R segment (``BeatSet.pre``): the :data:`PRE_R_SAMPLES` samples just before the R peak, at
  the window's rate, scaled with the window's own minimum and maximum and clipped to [0, 1]: where
  the P wave is, which the window (it starts at the R peak) cannot show. Edge samples before the
  signal starts repeat its first sample.
- Context features (``BeatSet.context``): :func:`hbcore.data.patient.record_context` over each
  record's beats in time order, the beat against the patient's own past (reference rhythm, normal
  template), rounded as a stream record carries them; NaN rows for sources without records
  (Kaggle rows).

Built sets are cached in ``hbcore.paths.cache_dir()/beats/<key>/`` (``beats.npz`` + ``meta.parquet``)
where the key hashes the source files (names, sizes, modification times), the recipe and
:data:`BUILD_PARAMS`; :func:`load_beats` returns the cached set or builds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hbcore import paths
from hbcore.contracts import stream_record
from hbcore.data import patient
from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES
from hbcore.data.resample import resample_poly

log = logging.getLogger(__name__)

SOURCE_FS_HZ = 360
PAPER_FS_HZ = 125
KAGGLE_STEP = 3
WINDOW_SAMPLES = 187
PRE_R_SAMPLES = 36  # 0.29 s at 125 Hz (0.3 s at the kaggle recipe's 120 Hz): the P wave and the Q wave
WINDOW_RR_FACTOR = 1.2
PERIOD_WINDOW_S = 10.0
LOCAL_RR_BEATS = 10
PREFERRED_LEAD = "MLII"
# Bump when the recipe changes so that old caches are not reused.
BUILD_VERSION = 2
DEFAULT_RECIPE = "paper"
BUILD_PARAMS: dict[str, object] = {
    "version": BUILD_VERSION,
    "paper_fs_hz": PAPER_FS_HZ,
    "kaggle_step": KAGGLE_STEP,
    "window_samples": WINDOW_SAMPLES,
    "window_rr_factor": WINDOW_RR_FACTOR,
    "period_window_s": PERIOD_WINDOW_S,
    "local_rr_beats": LOCAL_RR_BEATS,
    "lead": PREFERRED_LEAD,
    "pre_r_samples": PRE_R_SAMPLES,
    "context_version": patient.CONTEXT_VERSION,
    "context_decimals": stream_record.CONTEXT_DECIMALS,
}
META_COLUMNS: tuple[str, ...] = (
    "record", "sample", "t_s", "symbol", "label", "lead", "rr_prev_s", "rr_next_s", "rr_local_s",
)
SOURCE_SUFFIXES: tuple[str, ...] = (".hea", ".dat", ".atr")


@dataclass(frozen=True)
class BeatSet:
    """Beat windows, their AAMI labels and per-beat metadata, aligned row for row.

    ``X`` is ``float32 (n, 187)``, ``y`` is ``int8 (n,)`` with labels 0..4 (``CLASS_NAMES``) or -1
    for unlabelled rows, ``meta`` has the columns in :data:`META_COLUMNS` (see
    docs/ARCHITECTURE.md). ``skipped`` maps records that could not be built to the reason.
    ``pre`` is ``float32 (n, PRE_R_SAMPLES)``, the pre-R segments, and ``context`` ``float32 (n,
    patient.N_CONTEXT)``, the per-patient context features; both NaN where unknown (the default).
    """

    X: np.ndarray
    y: np.ndarray
    meta: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict, compare=False)
    # None (the default) is replaced by NaN arrays in __post_init__: the attributes are always arrays.
    pre: np.ndarray = field(default=None, compare=False)  # type: ignore[arg-type]
    context: np.ndarray = field(default=None, compare=False)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.X.shape[1] != WINDOW_SAMPLES:
            raise ValueError(f"BeatSet.X must have shape (n, {WINDOW_SAMPLES}), got {self.X.shape}")
        if not (len(self.X) == len(self.y) == len(self.meta)):
            raise ValueError(f"BeatSet parts differ in length: X {len(self.X)}, y {len(self.y)}, meta {len(self.meta)}")
        object.__setattr__(self, "X", np.ascontiguousarray(self.X, dtype=np.float32))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.int8))
        for name, width in (("pre", PRE_R_SAMPLES), ("context", patient.N_CONTEXT)):
            value = getattr(self, name)
            value = np.full((len(self.y), width), np.nan, np.float32) if value is None else value
            value = np.ascontiguousarray(value, dtype=np.float32)
            if value.shape != (len(self.y), width):
                raise ValueError(f"BeatSet.{name} must have shape ({len(self.y)}, {width}), got {value.shape}")
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.y)

    @cached_property
    def digest(self) -> str:
        """A digest of the windows and labels: models trained on equal beats record the same one.

        Taken once per set (it is frozen): over all of MIT-BIH it costs ~0.1 s, which the demo's click
        would otherwise pay again for the set the page's warm-up already looked its model up with.
        """
        digest = hashlib.sha256()
        digest.update(self.X.tobytes())
        digest.update(self.y.tobytes())
        return digest.hexdigest()[:24]

    def subset(self, selector: np.ndarray | Sequence[int] | Sequence[bool]) -> BeatSet:
        """The beats picked by a boolean mask or an index array, in that order."""
        index = np.asarray(selector)
        if index.dtype == bool:
            if len(index) != len(self):
                raise ValueError(f"mask has {len(index)} entries for {len(self)} beats")
            index = np.flatnonzero(index)
        return BeatSet(self.X[index], self.y[index], self.meta.iloc[index].reset_index(drop=True), dict(self.skipped),
                       self.pre[index], self.context[index])

    def class_counts(self) -> dict[str, int]:
        """Beats per AAMI class name, every class present (unlabelled rows are not counted)."""
        counts = np.bincount(self.y[self.y >= 0].astype(np.int64), minlength=len(CLASS_NAMES))
        return {name: int(count) for name, count in zip(CLASS_NAMES, counts)}

    def records(self) -> list[str]:
        """The distinct records, in order of first appearance."""
        return list(pd.unique(self.meta["record"]))

    def equals(self, other: BeatSet) -> bool:
        """True when both sets hold the same windows, labels and metadata."""
        return (
            np.array_equal(self.X, other.X)
            and np.array_equal(self.y, other.y)
            and np.array_equal(self.pre, other.pre, equal_nan=True)
            and np.array_equal(self.context, other.context, equal_nan=True)
            and self.meta.reset_index(drop=True).equals(other.meta.reset_index(drop=True))
        )


def concatenate(beatsets: Iterable[BeatSet]) -> BeatSet:
    """One BeatSet holding the given sets one after the other."""
    parts = list(beatsets)
    if not parts:
        return empty_beats()
    skipped: dict[str, str] = {}
    for part in parts:
        skipped.update(part.skipped)
    return BeatSet(
        np.concatenate([part.X for part in parts]),
        np.concatenate([part.y for part in parts]),
        pd.concat([part.meta for part in parts], ignore_index=True),
        skipped,
        np.concatenate([part.pre for part in parts]),
        np.concatenate([part.context for part in parts]),
    )


def empty_beats() -> BeatSet:
    """A BeatSet with no beats (and every metadata column)."""
    return BeatSet(np.zeros((0, WINDOW_SAMPLES), np.float32), np.zeros(0, np.int8), meta_frame({}))


def meta_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Metadata with the contract's columns and dtypes (missing columns empty)."""
    dtypes = {"record": "str", "sample": "int64", "t_s": "float64", "symbol": "str", "label": "int64",
              "lead": "str", "rr_prev_s": "float64", "rr_next_s": "float64", "rr_local_s": "float64"}
    n = len(next(iter(columns.values()))) if columns else 0
    frame = {}
    for name in META_COLUMNS:
        values = columns.get(name)
        if values is None:
            values = np.full(n, np.nan) if dtypes[name] == "float64" else np.full(n, "" if dtypes[name] == "str" else 0)
        frame[name] = pd.Series(values, dtype=dtypes[name])
    return pd.DataFrame(frame)


class RecordError(Exception):
    """A record that cannot be read or holds no usable beats; the message names it and the reason."""


def list_records(mitdb_dir: Path) -> list[str]:
    """The records of a WFDB folder: its ``RECORDS`` file if present, else every ``.hea`` stem."""
    listing = mitdb_dir / "RECORDS"
    if listing.is_file():
        return listing.read_text().split()
    return sorted(path.stem for path in mitdb_dir.glob("*.hea"))


def _period_10s(beat_samples: np.ndarray) -> np.ndarray:
    """The nominal period (median RR, in source samples) of each beat's 10-second window."""
    window = (beat_samples // int(PERIOD_WINDOW_S * SOURCE_FS_HZ)).astype(np.int64)
    rr = np.diff(beat_samples).astype(np.float64)
    same_window = window[1:] == window[:-1]
    medians = pd.Series(rr[same_window]).groupby(window[1:][same_window]).median()
    periods = np.full(int(window.max()) + 1, float(np.median(rr)))
    periods[medians.index.to_numpy()] = medians.to_numpy()
    return periods[window]


def _rr_features(beat_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Previous, next and local mean RR interval of every beat, in seconds (NaN where undefined)."""
    rr = np.diff(beat_samples).astype(np.float64) / SOURCE_FS_HZ
    rr_prev = np.concatenate([[np.nan], rr])
    rr_next = np.concatenate([rr, [np.nan]])
    rr_local = pd.Series(rr_prev).rolling(LOCAL_RR_BEATS, min_periods=1).mean().to_numpy()
    return rr_prev, rr_next, rr_local


def beat_windows(signal: np.ndarray, starts: np.ndarray, lengths: np.ndarray, step: int = 1) -> np.ndarray:
    """Windows of ``lengths`` samples (every ``step``-th) from ``starts``, min-max scaled, zero-padded/cut to 187.

    A window is cut at the end of the signal; a flat window is all zeros.
    """
    return windows_and_pre(signal, starts, lengths, step)[0]


def windows_and_pre(signal: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                    step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`beat_windows` and each one's pre-R segment (``PRE_R_SAMPLES`` before ``starts``).

    The segment is scaled with its window's minimum and maximum, so that a P wave keeps its height
    relative to the QRS, and clipped to [0, 1].
    """
    offsets = np.arange(WINDOW_SAMPLES)
    index = starts[:, None] + step * offsets[None, :]
    inside = (offsets[None, :] < np.minimum(lengths, WINDOW_SAMPLES)[:, None]) & (index < len(signal))
    windows = signal[np.minimum(index, len(signal) - 1)].astype(np.float64)
    low = np.where(inside, windows, np.inf).min(axis=1, keepdims=True)
    high = np.where(inside, windows, -np.inf).max(axis=1, keepdims=True)
    span = high - low
    scaled = np.divide(windows - low, span, out=np.zeros_like(windows), where=span > 0)
    pre_index = starts[:, None] + step * np.arange(-PRE_R_SAMPLES, 0)[None, :]
    pre = signal[np.clip(pre_index, 0, len(signal) - 1)].astype(np.float64)
    pre = np.clip(np.divide(pre - low, span, out=np.zeros_like(pre), where=span > 0), 0.0, 1.0)
    return np.where(inside, scaled, 0.0).astype(np.float32), pre.astype(np.float32)


def _paper_windows(signal: np.ndarray, beat_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kachuee et al. as written: 125 Hz, 1.2 x the median RR of the beat's 10-second window."""
    ratio = np.gcd(PAPER_FS_HZ, SOURCE_FS_HZ)
    resampled = resample_poly(signal.astype(np.float64), PAPER_FS_HZ // ratio, SOURCE_FS_HZ // ratio)
    scale = PAPER_FS_HZ / SOURCE_FS_HZ
    starts = np.rint(beat_samples[:-1] * scale).astype(np.int64)
    lengths = np.rint(WINDOW_RR_FACTOR * _period_10s(beat_samples)[:-1] * scale).astype(np.int64)
    return windows_and_pre(resampled, starts, lengths)


def _kaggle_windows(signal: np.ndarray, beat_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the Kaggle rows hold: every 3rd sample at 360 Hz (120 Hz), ceil(1.2 x the next RR) long."""
    lengths = np.ceil(WINDOW_RR_FACTOR * np.diff(beat_samples) / KAGGLE_STEP).astype(np.int64)
    return windows_and_pre(signal, beat_samples[:-1], lengths, KAGGLE_STEP)


@dataclass(frozen=True)
class Recipe:
    """How beat windows are cut: which lead, and the window function (windows and pre-R segments;
    the last beat excluded)."""

    name: str
    prefer_mlii: bool
    windows: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

    def lead_index(self, signal_names: Sequence[str]) -> int:
        names = list(signal_names)
        return names.index(PREFERRED_LEAD) if self.prefer_mlii and PREFERRED_LEAD in names else 0


RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", prefer_mlii=True, windows=_paper_windows),
    "kaggle": Recipe("kaggle", prefer_mlii=False, windows=_kaggle_windows),
}


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown beat recipe {name!r}, expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


def build_record(mitdb_dir: Path | str, record: str, recipe: str = DEFAULT_RECIPE) -> BeatSet:
    """The beat windows of one record; raises :class:`RecordError` naming the record and reason."""
    import wfdb

    cutter = _recipe(recipe)
    base = str(Path(mitdb_dir) / record)
    try:
        header = wfdb.rdheader(base)
        lead = cutter.lead_index(header.sig_name)
        signal = wfdb.rdrecord(base, channels=[lead], physical=False).d_signal[:, 0]
        annotation = wfdb.rdann(base, "atr")
    except Exception as error:  # wfdb raises many kinds (OSError, ValueError, IndexError...)
        raise RecordError(f"record {record}: cannot read ({type(error).__name__}: {error})") from error
    if header.fs != SOURCE_FS_HZ:
        raise RecordError(f"record {record}: sampled at {header.fs} Hz, expected {SOURCE_FS_HZ} Hz")

    symbols = np.asarray(annotation.symbol)
    is_beat = np.isin(symbols, list(AAMI_SYMBOLS))
    samples = np.asarray(annotation.sample, dtype=np.int64)[is_beat]
    symbols = symbols[is_beat]
    if len(samples) < 2:
        raise RecordError(f"record {record}: {len(samples)} beat annotations, need at least 2")
    if samples.max() >= len(signal) or samples.min() < 0 or np.any(np.diff(samples) <= 0):
        raise RecordError(f"record {record}: beat annotations out of order or beyond the {len(signal)}-sample signal")

    rr_prev, rr_next, rr_local = _rr_features(samples)
    keep = slice(0, len(samples) - 1)  # drop the last beat: see the module docstring
    labels = pd.Series(symbols[keep]).map(AAMI_SYMBOLS).to_numpy(np.int8)
    meta = meta_frame({
        "record": np.full(len(labels), record),
        "sample": samples[keep],
        "t_s": samples[keep] / SOURCE_FS_HZ,
        "symbol": symbols[keep],
        "label": labels.astype(np.int64),
        "lead": np.full(len(labels), header.sig_name[lead]),
        "rr_prev_s": rr_prev[keep],
        "rr_next_s": rr_next[keep],
        "rr_local_s": rr_local[keep],
    })
    windows, pre = cutter.windows(signal, samples)
    rr = np.column_stack([rr_prev[keep], rr_next[keep], rr_local[keep]])
    # Rounded as the stream record carries them: the replay sends exactly these numbers.
    context = stream_record.carried_context(patient.record_context(windows, pre, rr))
    return BeatSet(windows, labels, meta, pre=pre, context=context)


def build_beats(mitdb_dir: Path | str, records: Sequence[str] | None = None, recipe: str = DEFAULT_RECIPE) -> BeatSet:
    """Beat windows of ``records`` (default: all) from a WFDB folder, without the cache.

    A record that cannot be built is logged and listed in ``BeatSet.skipped`` with the reason;
    the others still build. Raises ``FileNotFoundError`` when the folder holds no records and
    ``ValueError`` when no record could be built. Records are built one after the other: reading
    the annotations dominates, and a process pool gained little on 2 cores (see the README).
    """
    mitdb_dir = Path(mitdb_dir)
    if not mitdb_dir.is_dir():
        raise FileNotFoundError(f"MIT-BIH folder {mitdb_dir} does not exist")
    _recipe(recipe)
    records = list(records) if records is not None else list_records(mitdb_dir)
    if not records:
        raise FileNotFoundError(f"MIT-BIH folder {mitdb_dir} holds no WFDB records (.hea files)")
    built, skipped = [], {}
    for record in records:
        try:
            built.append(build_record(mitdb_dir, record, recipe))
        except RecordError as error:
            log.warning("skipped %s", error)
            skipped[record] = str(error)
    if not built:
        raise ValueError(f"no record in {mitdb_dir} could be built: " + "; ".join(skipped.values()))
    beats = concatenate(built)
    return BeatSet(beats.X, beats.y, beats.meta, skipped, beats.pre, beats.context)


def source_key(mitdb_dir: Path, records: Sequence[str], recipe: str = DEFAULT_RECIPE) -> str:
    """A hash of the source files (names, sizes, mtimes), the recipe and the build parameters."""
    digest = hashlib.sha256(json.dumps(BUILD_PARAMS | {"recipe": recipe}, sort_keys=True).encode())
    for record in records:
        for suffix in SOURCE_SUFFIXES:
            path = mitdb_dir / f"{record}{suffix}"
            stat = path.stat() if path.exists() else None
            digest.update(f"{path.name}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def save_beats(beats: BeatSet, folder: Path | str) -> Path:
    """Write ``beats.npz`` (X, y, pre, context, skipped records) and ``meta.parquet`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "beats.npz", X=beats.X, y=beats.y, pre=beats.pre, context=beats.context,
             skipped=np.array(json.dumps(beats.skipped)))
    beats.meta.to_parquet(folder / "meta.parquet", index=False)
    return folder


def read_beats(folder: Path | str) -> BeatSet:
    """Read a folder written by :func:`save_beats` (one without ``pre``/``context``: unknown, NaN)."""
    folder = Path(folder)
    with np.load(folder / "beats.npz", allow_pickle=False) as arrays:
        X, y, skipped = arrays["X"], arrays["y"], json.loads(str(arrays["skipped"]))
        extra = {name: arrays[name] for name in ("pre", "context") if name in arrays.files}
    meta = pd.read_parquet(folder / "meta.parquet")
    return BeatSet(X, y, meta_frame({name: meta[name].to_numpy() for name in META_COLUMNS}), skipped, **extra)


def cache_path(mitdb_dir: Path | str, records: Sequence[str] | None = None, recipe: str = DEFAULT_RECIPE) -> Path:
    """Where the built set of these sources lives in the cache."""
    mitdb_dir = Path(mitdb_dir)
    records = list(records) if records is not None else list_records(mitdb_dir)
    return paths.cache_dir() / "beats" / source_key(mitdb_dir, records, recipe)


def resolve_mitdb_dir(mitdb_dir: Path | str | None) -> Path:
    """The given folder, else the default one; a clear error when there is none."""
    if mitdb_dir is not None:
        return Path(mitdb_dir)
    default = paths.default_mitdb_dir()
    if default is None:
        raise FileNotFoundError(
            "no MIT-BIH records found: run `python -m hbcore data download`, "
            "or set HB_DATA_DIR to a folder holding mitdb/, or pass --mitdb DIR"
        )
    return default


def load_beats(
    mitdb_dir: Path | str | None = None,
    records: Sequence[str] | None = None,
    recipe: str = DEFAULT_RECIPE,
) -> BeatSet:
    """The beat set of a WFDB folder (default: ``paths.default_mitdb_dir()``), from the cache if built.

    An unreadable cache entry is rebuilt. Sets with skipped records are cached too (the key changes
    when a source file changes).
    """
    mitdb_dir = resolve_mitdb_dir(mitdb_dir)
    folder = cache_path(mitdb_dir, records, recipe)
    if folder.is_dir():
        try:
            return read_beats(folder)
        except Exception as error:  # a truncated or foreign cache entry: rebuild it
            log.warning("rebuilding unreadable cache %s (%s)", folder, error)
            shutil.rmtree(folder, ignore_errors=True)
    beats = build_beats(mitdb_dir, records, recipe)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    save_beats(beats, staging)
    try:
        staging.rename(folder)
    except OSError:  # another process cached the same key first
        shutil.rmtree(staging, ignore_errors=True)
    return beats


def summary(beats: BeatSet) -> dict[str, object]:
    """Counts a user wants to see after a build."""
    return {
        "beats": len(beats),
        "records": len(beats.records()),
        "per_class": beats.class_counts(),
        "dropped_edge_beats": len(beats.records()),
        "skipped_records": beats.skipped,
    }


def run_build(mitdb: Path | str | None = None, recipe: str | None = None,
              out: Path | str | None = None) -> dict[str, object]:
    """``python -m hbcore data build``: build (or reuse) the cached set and report on it.

    The report says whether the cache answered and how long it took, so that a user can tell a
    cold build from a cached load; ``out`` also writes the set where a training job can read it.
    ``recipe`` None is :data:`DEFAULT_RECIPE`.
    """
    mitdb_dir = resolve_mitdb_dir(mitdb)
    recipe = recipe or DEFAULT_RECIPE
    folder = cache_path(mitdb_dir, recipe=recipe)
    cached = folder.is_dir()
    started = time.perf_counter()
    beats = load_beats(mitdb_dir, recipe=recipe)
    result = summary(beats) | {
        "recipe": recipe,
        "seconds": round(time.perf_counter() - started, 3),
        "from_cache": cached,
        "mitdb": str(mitdb_dir),
        "cache": str(folder),
    }
    if out is not None:
        result["out"] = str(save_beats(beats, out))
    return result
