"""The patient view's data: a bedside-style ECG strip of the latest streamed beats, and the rate trend.

A nurse reads a bedside monitor as the last seconds of trace with each beat marked; the patient
view draws the same from what the stream has classified: the raw MIT-BIH record around the
patient's latest streamed beats (each beat's predicted class above it, the reference annotation
below it), its rhythm events shaded. Kaggle rows carry no raw record: the strip shows their beat
windows side by side instead, and says so. Everything here is plain pandas over one snapshot's rows
plus a few milliseconds of WFDB reading, so a refresh every two seconds stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hbcore.data import beat_templates as templates
from hbcore.data import records
from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import PAPER_FS_HZ, BeatSet
from hbcore.rhythm.events import RhythmEvent
from hbcore.stream import aggregations

STRIP_S = 10.0  # seconds of trace, as on a bedside monitor
STRIP_TAIL_S = 0.6  # trace shown after the latest streamed beat (its T wave)
WINDOW_STRIP_BEATS = 6  # Kaggle beat windows shown side by side (1.5 s each)
TREND_BEATS = 8  # beats each heart-rate point is the median over
SAME_BEAT_S = 0.05  # a reference annotation this close to a streamed beat is that beat
RAW_NOTE = "raw record {record} (lead {lead}), {fs:g} Hz"
CLASS_NAMES_ARRAY = np.array(CLASS_NAMES, dtype=object)
WINDOWS_NOTE = ("Kaggle rows carry no raw record: the strip shows the latest {n} beat windows side by side "
                "(1.5 s each, 125 Hz), not a continuous trace.")


@dataclass(frozen=True)
class Strip:
    """What the live strip draws.

    ``signal`` has columns t_s, mv (raw trace, seconds into the record; for beat windows seconds
    along the strip and the window's 0–1 amplitude). ``beats`` has t_s, mv, predicted, reference, id,
    streamed (True for beats the stream classified; reference annotations of beats not streamed
    show a reference label only). ``events`` has onset_s, offset_s, kind, severity.
    """

    record: str
    kind: str  # "raw" | "windows" | "none"
    note: str
    start_s: float
    end_s: float
    signal: pd.DataFrame
    beats: pd.DataFrame
    events: pd.DataFrame


def patient_rows(predictions: pd.DataFrame, run: str | None, record: str) -> pd.DataFrame:
    """The kept prediction rows of one patient (one run, or all when None), in record time order."""
    rows = aggregations.for_run(predictions, run)
    rows = rows[rows["record"] == str(record)]
    t = rows["t"].to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(t).all():  # Kaggle rows: their row number is their order
        return rows.sort_values("sample", kind="stable")
    return rows.iloc[np.argsort(t, kind="stable")]


def _names(values: pd.Series) -> list[str]:
    return [CLASS_NAMES[int(v)] if not pd.isna(v) else "" for v in values]


def _events_frame(events: Sequence[RhythmEvent], start_s: float, end_s: float) -> pd.DataFrame:
    shown = [event for event in events if event.offset_s >= start_s and event.onset_s <= end_s]
    return pd.DataFrame({"onset_s": [max(start_s, event.onset_s) for event in shown],
                         "offset_s": [min(end_s, event.offset_s) for event in shown],
                         "kind": [event.kind for event in shown],
                         "severity": [event.severity for event in shown]},
                        columns=["onset_s", "offset_s", "kind", "severity"])


def _empty(record: str, note: str) -> Strip:
    return Strip(record, "none", note, 0.0, 0.0, pd.DataFrame({"t_s": [], "mv": []}),
                 pd.DataFrame(columns=["t_s", "mv", "predicted", "reference", "id", "streamed"]),
                 _events_frame([], 0.0, 0.0))


def raw_strip(rows: pd.DataFrame, mitdb_dir: Path, record: str, events: Sequence[RhythmEvent] = (),
              seconds: float = STRIP_S) -> Strip:
    """The last ``seconds`` of ``record``'s raw trace up to its latest streamed beat (``rows``: patient_rows).

    Raises ``FileNotFoundError`` naming the record when it is not in ``mitdb_dir``.
    """
    t = rows["t"].to_numpy(dtype=float, na_value=np.nan)
    if not len(rows) or np.isnan(t).all():
        return _empty(record, "no beat of this patient with a time in the record yet")
    end_s = float(np.nanmax(t)) + STRIP_TAIL_S
    start_s = max(0.0, end_s - seconds)
    segment = records.read_segment(mitdb_dir, record, start_s, end_s - start_s)
    end_s = float(segment.signal["t_s"].iloc[-1]) if len(segment.signal) else end_s
    shown = rows[(t >= start_s) & (t <= end_s)]
    reference = segment.beats
    # each streamed beat's trace value at its R peak, for the label's position
    trace_t = segment.signal["t_s"].to_numpy()
    trace_mv = segment.signal["mv"].to_numpy()
    streamed_t = shown["t"].to_numpy(dtype=float)
    at = np.clip(np.searchsorted(trace_t, streamed_t), 0, max(0, len(trace_t) - 1))
    streamed = pd.DataFrame({
        "t_s": streamed_t, "mv": trace_mv[at] if len(trace_t) else np.zeros(len(shown)),
        "predicted": CLASS_NAMES_ARRAY[shown["pred"].to_numpy(dtype=np.int64)],
        "reference": _names(shown["label"]), "id": shown["id"].to_numpy(dtype=object), "streamed": True,
    })
    # annotated beats the stream did not carry (a test split streams some beats only): reference only
    near = np.abs(reference["t_s"].to_numpy()[:, None] - streamed_t[None, :]).min(axis=1) if len(streamed_t) \
        else np.full(len(reference), np.inf)
    others = reference[near > SAME_BEAT_S]
    unstreamed = pd.DataFrame({"t_s": others["t_s"].to_numpy(), "mv": others["mv"].to_numpy(),
                               "predicted": "", "reference": others["class"].to_numpy(dtype=object),
                               "id": "", "streamed": False})
    beats = pd.concat([streamed, unstreamed], ignore_index=True).sort_values("t_s", kind="stable")
    return Strip(record, "raw", RAW_NOTE.format(record=record, lead=segment.lead, fs=segment.fs), start_s, end_s,
                 segment.signal, beats.reset_index(drop=True), _events_frame(events, start_s, end_s))


def window_strip(rows: pd.DataFrame, beats: BeatSet, index: pd.Series, record: str,
                 n: int = WINDOW_STRIP_BEATS) -> Strip:
    """The latest ``n`` streamed beats of a patient without a raw record, their windows side by side.

    ``index`` is :func:`hbcore.data.beat_templates.beat_index` of ``beats``; beats it does not hold
    are left out.
    """
    parts, marks = [], []
    offset_s = 0.0
    width_s = beats.X.shape[1] / PAPER_FS_HZ
    for _, row in rows.tail(n).iterrows():
        window = templates.find_beat(beats, index, record, int(row["sample"]))
        if window is None:
            continue
        parts.append(pd.DataFrame({"t_s": offset_s + np.arange(len(window)) / PAPER_FS_HZ, "mv": window}))
        marks.append({"t_s": offset_s, "mv": float(window[0]), "predicted": CLASS_NAMES[int(row["pred"])],
                      "reference": _names(pd.Series([row["label"]]))[0], "id": row["id"], "streamed": True})
        offset_s += width_s
    if not parts:
        return _empty(record, "the beats of this patient are not in the active data source")
    return Strip(record, "windows", WINDOWS_NOTE.format(n=len(parts)), 0.0, offset_s,
                 pd.concat(parts, ignore_index=True), pd.DataFrame(marks), _events_frame([], 0.0, 0.0))


def rate_trend(rows: pd.DataFrame, beats: int = TREND_BEATS) -> pd.DataFrame:
    """The patient's heart rate over record time (t_s, bpm): 60 / the running median RR of ``beats`` beats.

    RR is the beat's ``rr_local_s`` when the replay sent one, else the gap to the previous streamed
    beat (the same rule as :func:`hbcore.stream.aggregations.heart_rates`). Empty without times.
    """
    t = rows["t"].to_numpy(dtype=float, na_value=np.nan)
    keep = ~np.isnan(t)
    t = t[keep]
    rr = rows["rr_local_s"].to_numpy(dtype=float, na_value=np.nan)[keep]
    gaps = np.r_[np.nan, np.diff(t)]
    rr = np.where(np.isnan(rr) & (gaps > 0), gaps, rr)
    median = pd.Series(rr).rolling(beats, min_periods=1).median().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        bpm = 60.0 / median
    good = np.isfinite(bpm)
    return pd.DataFrame({"t_s": t[good], "bpm": bpm[good]})
