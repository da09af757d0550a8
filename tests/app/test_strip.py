"""The patient view's strip and rate trend, over the real MIT-BIH record 119 and over Kaggle rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import wfdb

from hbcore.app import strip
from hbcore.data import beat_templates as templates
from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES
from hbcore.data.dataset import BeatSet
from hbcore.rhythm.events import RhythmEvent


def rows_of(mitdb_dir, record: str, seconds: float, every: int = 1, run: str = "a") -> pd.DataFrame:
    """Prediction rows (the reader's columns that the strip reads) of ``record``'s first ``seconds``."""
    annotations = wfdb.rdann(str(mitdb_dir / record), "atr", sampto=int(seconds * 360))
    kept = [(s, AAMI_SYMBOLS[y]) for s, y in zip(annotations.sample, annotations.symbol) if y in AAMI_SYMBOLS][::every]
    samples = np.array([s for s, _ in kept])
    labels = np.array([y for _, y in kept])
    return pd.DataFrame({
        "id": [f"{run}:{record}:{s}" for s in samples], "run": run, "record": record, "sample": samples,
        "t": pd.array(samples / 360, dtype="Float64"), "label": pd.array(labels, dtype="Int64"),
        "pred": np.where(np.arange(len(labels)) % 7 == 3, 2, labels).astype(np.int8),
        "rr_local_s": pd.array([None] * len(samples), dtype="Float64"),
    })


def test_raw_strip_is_the_last_ten_seconds_up_to_the_latest_beat(mitdb_dir):
    rows = rows_of(mitdb_dir, "119", 60)
    shown = strip.raw_strip(strip.patient_rows(rows, "a", "119"), mitdb_dir, "119")
    latest = float(rows["t"].max())
    assert shown.kind == "raw" and shown.end_s == pytest.approx(latest + strip.STRIP_TAIL_S, abs=0.01)
    assert shown.end_s - shown.start_s == pytest.approx(strip.STRIP_S, abs=0.01)
    assert len(shown.signal) == pytest.approx(strip.STRIP_S * 360, abs=2)
    streamed = shown.beats[shown.beats["streamed"]]
    expected = rows[(rows["t"] >= shown.start_s) & (rows["t"] <= shown.end_s)]
    assert streamed["id"].tolist() == expected["id"].tolist()
    assert streamed["predicted"].tolist() == [CLASS_NAMES[p] for p in expected["pred"]]
    assert streamed["reference"].tolist() == [CLASS_NAMES[int(y)] for y in expected["label"]]
    assert "lead MLII" in shown.note


def test_raw_strip_shows_beats_not_streamed_with_their_reference_only(mitdb_dir):
    rows = rows_of(mitdb_dir, "119", 60, every=5)  # a test split: one beat in five
    shown = strip.raw_strip(rows, mitdb_dir, "119")
    others = shown.beats[~shown.beats["streamed"]]
    assert len(others) >= 3 * len(shown.beats[shown.beats["streamed"]]) - 5
    assert set(others["predicted"]) == {""} and set(others["reference"]) <= set(CLASS_NAMES)


def test_raw_strip_shades_the_events_inside_it_cut_to_its_window(mitdb_dir):
    rows = rows_of(mitdb_dir, "119", 60)
    events = [RhythmEvent("119:v_bigeminy:1", "119", "v_bigeminy", 40.0, 70.0, (), "low", True),
              RhythmEvent("119:pause:2", "119", "pause", 5.0, 6.0, (), "high", False)]
    shown = strip.raw_strip(rows, mitdb_dir, "119", events)
    assert shown.events.to_dict("records") == [{"onset_s": pytest.approx(shown.start_s), "offset_s": shown.end_s,
                                                "kind": "v_bigeminy", "severity": "low"}]


def test_patient_rows_are_one_patient_of_one_run_in_record_time(mitdb_dir):
    rows = pd.concat([rows_of(mitdb_dir, "119", 10), rows_of(mitdb_dir, "100", 10),
                      rows_of(mitdb_dir, "119", 5, run="b")]).sample(frac=1, random_state=0)
    mine = strip.patient_rows(rows, "a", "119")
    assert set(mine["record"]) == {"119"} and set(mine["run"]) == {"a"}
    assert mine["t"].is_monotonic_increasing and len(mine) == len(rows_of(mitdb_dir, "119", 10))


def test_a_patient_without_timed_beats_gets_an_empty_strip_that_says_why(mitdb_dir):
    shown = strip.raw_strip(rows_of(mitdb_dir, "119", 10).iloc[:0], mitdb_dir, "119")
    assert shown.kind == "none" and "no beat" in shown.note


def kaggle_beats(n: int) -> BeatSet:
    rng = np.random.default_rng(0)
    meta = pd.DataFrame({"record": ["kaggle:test"] * n, "sample": np.arange(n)})
    return BeatSet(rng.random((n, 187)).astype(np.float32), np.zeros(n, np.int8), meta)


def test_kaggle_rows_show_their_windows_side_by_side_and_say_so():
    beats = kaggle_beats(20)
    rows = pd.DataFrame({"id": [f"a:k:{i}" for i in range(20)], "run": "a", "record": "kaggle:test",
                         "sample": np.arange(20), "t": pd.array([None] * 20, dtype="Float64"),
                         "label": pd.array([0] * 20, dtype="Int64"), "pred": np.array([0] * 19 + [2], np.int8),
                         "rr_local_s": pd.array([None] * 20, dtype="Float64")})
    shown = strip.window_strip(strip.patient_rows(rows, "a", "kaggle:test"), beats, templates.beat_index(beats),
                               "kaggle:test")
    assert shown.kind == "windows" and "Kaggle rows carry no raw record" in shown.note
    assert len(shown.signal) == strip.WINDOW_STRIP_BEATS * 187
    assert shown.beats["id"].tolist() == [f"a:k:{i}" for i in range(14, 20)]
    assert shown.beats["predicted"].tolist()[-1] == "V" and set(shown.beats["reference"]) == {"N"}
    np.testing.assert_allclose(shown.signal["mv"].to_numpy()[-187:], beats.X[19], rtol=1e-6)
    assert strip.rate_trend(rows).empty


def test_rate_trend_is_sixty_over_the_running_median_rr(mitdb_dir):
    rows = rows_of(mitdb_dir, "100", 60)
    trend = strip.rate_trend(rows)
    gaps = np.diff(rows["t"].to_numpy(dtype=float))
    assert len(trend) == len(rows) - 1  # the first beat has no interval before it
    assert trend["bpm"].iloc[-1] == pytest.approx(60 / np.median(gaps[-strip.TREND_BEATS:]))
    assert 60 < trend["bpm"].median() < 90  # record 100: a sinus rhythm around 75 bpm
