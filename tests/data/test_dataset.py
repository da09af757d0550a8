"""Beat windows from WFDB records: synthetic records written with wfdb, then the real database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hbcore import cli
from hbcore.data import dataset
from hbcore.data.classes import AAMI_SYMBOLS, CLASS_NAMES
from hbcore.data.dataset import BeatSet

FS_HZ = 360
RR_SAMPLES = 288  # 0.8 s
SYNTHETIC_SECONDS = 30
# The annotation totals of the full database (shared/data/README.md) and the beats the build drops.
ANNOTATED = {"N": 90_631, "S": 2_781, "V": 7_236, "F": 803, "Q": 8_043}
DROPPED_LAST_BEATS = {"N": 42, "S": 2, "V": 0, "F": 0, "Q": 4}


def _write_record(folder: Path, name: str, lead_names: tuple[str, str] = ("MLII", "V1")) -> np.ndarray:
    """A 30 s two-lead record with a spike at every beat and a rhythm (non-beat) annotation; returns beat samples."""
    import wfdb

    beats = np.arange(100, SYNTHETIC_SECONDS * FS_HZ - 50, RR_SAMPLES)
    t = np.arange(SYNTHETIC_SECONDS * FS_HZ)
    spikes = np.exp(-0.5 * ((t[:, None] - beats[None, :]) / 4.0) ** 2).sum(axis=1)
    signal = np.column_stack([spikes, 0.5 * spikes])
    wfdb.wrsamp(name, fs=FS_HZ, units=["mV", "mV"], sig_name=list(lead_names), p_signal=signal,
                fmt=["212", "212"], write_dir=str(folder))
    symbols = ["N"] * len(beats)
    symbols[3] = "V"
    symbols[5] = "A"
    samples = np.concatenate([[10], beats])  # a rhythm annotation first
    wfdb.wrann(name, "atr", samples, symbol=["+", *symbols], aux_note=["(N"] + [""] * len(beats),
               write_dir=str(folder))
    return beats


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mitdb"
    folder.mkdir()
    _write_record(folder, "900")
    _write_record(folder, "901", lead_names=("V5", "MLII"))
    return folder


# --- window arithmetic -------------------------------------------------------------------------

def test_beat_windows_scale_each_window_to_unit_range_and_zero_pad() -> None:
    signal = np.arange(100, dtype=float)
    windows = dataset.beat_windows(signal, np.array([10]), np.array([5]))
    assert windows.shape == (1, 187) and windows.dtype == np.float32
    np.testing.assert_allclose(windows[0, :5], [0, 0.25, 0.5, 0.75, 1.0])
    assert not windows[0, 5:].any()


def test_beat_windows_cut_at_the_end_of_the_signal() -> None:
    windows = dataset.beat_windows(np.arange(20, dtype=float), np.array([17]), np.array([10]))
    np.testing.assert_allclose(windows[0, :4], [0, 0.5, 1.0, 0])


def test_beat_windows_longer_than_187_samples_are_cut() -> None:
    windows = dataset.beat_windows(np.arange(400, dtype=float), np.array([0]), np.array([300]))
    assert windows[0, -1] == pytest.approx(1.0)


def test_flat_window_is_all_zeros() -> None:
    assert not dataset.beat_windows(np.ones(50), np.array([0]), np.array([20])).any()


def test_beat_windows_take_every_step_th_sample() -> None:
    windows = dataset.beat_windows(np.arange(30, dtype=float), np.array([0]), np.array([4]), step=3)
    np.testing.assert_allclose(windows[0, :4], [0, 1 / 3, 2 / 3, 1])


def test_period_is_the_median_rr_of_the_ten_second_window() -> None:
    beats = np.array([0, 300, 700, 1000, 3600, 3900, 4300])
    np.testing.assert_allclose(dataset._period_10s(beats), [300, 300, 300, 300, 350, 350, 350])


def test_window_with_one_beat_uses_the_record_median() -> None:
    beats = np.array([0, 200, 400, 3700, 8000, 8200])
    assert dataset._period_10s(beats)[3] == np.median(np.diff(beats))


def test_rr_features_in_seconds_with_nan_where_undefined() -> None:
    rr_prev, rr_next, rr_local = dataset._rr_features(np.array([0, 360, 1080]))
    np.testing.assert_allclose(rr_prev, [np.nan, 1.0, 2.0])
    np.testing.assert_allclose(rr_next, [1.0, 2.0, np.nan])
    np.testing.assert_allclose(rr_local, [np.nan, 1.0, 1.5])


# --- BeatSet -----------------------------------------------------------------------------------

def _beatset(labels: list[int], record: str = "100") -> BeatSet:
    n = len(labels)
    meta = dataset.meta_frame({"record": np.full(n, record), "sample": np.arange(n), "label": np.array(labels)})
    return BeatSet(np.random.default_rng(0).random((n, 187)), np.array(labels), meta)


def test_beatset_coerces_dtypes() -> None:
    beats = _beatset([0, 1])
    assert beats.X.dtype == np.float32 and beats.y.dtype == np.int8


def test_beatset_rejects_parts_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        BeatSet(np.zeros((2, 187)), np.zeros(3), dataset.meta_frame({"sample": np.arange(2)}))


def test_subset_by_mask_and_by_index() -> None:
    beats = _beatset([0, 1, 2, 3])
    assert beats.subset(np.array([False, True, False, True])).y.tolist() == [1, 3]
    picked = beats.subset([2, 0])
    assert picked.y.tolist() == [2, 0] and picked.meta["sample"].tolist() == [2, 0]


def test_class_counts_name_every_class_and_skip_unlabelled() -> None:
    assert _beatset([0, 0, 2, -1]).class_counts() == {"N": 2, "S": 0, "V": 1, "F": 0, "Q": 0}


def test_concatenate_keeps_order_and_records() -> None:
    joined = dataset.concatenate([_beatset([0], "100"), _beatset([4, 1], "101")])
    assert joined.y.tolist() == [0, 4, 1] and joined.records() == ["100", "101"]


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    beats = _beatset([0, 3, 4])
    assert dataset.read_beats(dataset.save_beats(beats, tmp_path / "out")).equals(beats)


# --- building records --------------------------------------------------------------------------

def test_build_drops_the_last_beat_and_ignores_rhythm_annotations(synthetic_dir: Path) -> None:
    beats = dataset.build_beats(synthetic_dir, ["900"])
    expected = len(np.arange(100, SYNTHETIC_SECONDS * FS_HZ - 50, RR_SAMPLES)) - 1
    assert len(beats) == expected
    assert beats.meta["symbol"].tolist()[3:6] == ["V", "N", "A"]
    assert beats.y.tolist()[3:6] == [AAMI_SYMBOLS["V"], 0, AAMI_SYMBOLS["A"]]


def test_build_metadata_matches_the_annotations(synthetic_dir: Path) -> None:
    meta = dataset.build_beats(synthetic_dir, ["900"]).meta
    assert meta["sample"].iloc[1] == 100 + RR_SAMPLES
    assert meta["t_s"].iloc[1] == pytest.approx((100 + RR_SAMPLES) / FS_HZ)
    assert meta["rr_prev_s"].iloc[1] == pytest.approx(0.8)
    assert meta["rr_next_s"].iloc[1] == pytest.approx(0.8)
    assert np.isnan(meta["rr_prev_s"].iloc[0])


def test_windows_start_at_the_r_peak(synthetic_dir: Path) -> None:
    for recipe in dataset.RECIPES:
        X = dataset.build_beats(synthetic_dir, ["900"], recipe=recipe).X
        assert (X[:, 0] == 1.0).all(), recipe


def test_paper_window_length_is_1_2_median_rr_at_125_hz(synthetic_dir: Path) -> None:
    X = dataset.build_beats(synthetic_dir, ["900"]).X
    expected = round(1.2 * RR_SAMPLES * 125 / 360)
    assert (X[2, expected:] == 0).all() and X[2, expected - 5:expected].any()


def test_lead_mlii_is_used_where_present(synthetic_dir: Path) -> None:
    beats = dataset.build_beats(synthetic_dir, ["900", "901"])
    assert beats.meta.groupby("record")["lead"].first().to_dict() == {"900": "MLII", "901": "MLII"}


def test_kaggle_recipe_uses_the_first_channel(synthetic_dir: Path) -> None:
    beats = dataset.build_beats(synthetic_dir, ["901"], recipe="kaggle")
    assert set(beats.meta["lead"]) == {"V5"}


def test_unknown_recipe_is_refused(synthetic_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown beat recipe 'fast'"):
        dataset.build_beats(synthetic_dir, recipe="fast")


def test_missing_record_is_skipped_with_its_reason(synthetic_dir: Path) -> None:
    beats = dataset.build_beats(synthetic_dir, ["900", "999"])
    assert beats.records() == ["900"]
    assert list(beats.skipped) == ["999"] and "record 999: cannot read" in beats.skipped["999"]


def test_corrupt_record_is_skipped_with_its_reason(synthetic_dir: Path) -> None:
    (synthetic_dir / "901.atr").write_bytes(b"\x00\x01garbage")
    beats = dataset.build_beats(synthetic_dir)
    assert beats.records() == ["900"] and beats.skipped["901"].startswith("record 901:")


def test_no_buildable_record_raises(synthetic_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"no record .* could be built: record 999"):
        dataset.build_beats(synthetic_dir, ["999"])


def test_folder_without_records_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no WFDB records"):
        dataset.build_beats(tmp_path)


# --- cache -------------------------------------------------------------------------------------

def test_second_load_comes_from_the_cache(synthetic_dir: Path, monkeypatch) -> None:
    first = dataset.load_beats(synthetic_dir)
    monkeypatch.setattr(dataset, "build_beats", lambda *a, **k: pytest.fail("rebuilt despite the cache"))
    assert dataset.load_beats(synthetic_dir).equals(first)


def test_cache_key_changes_with_the_source_and_the_recipe(synthetic_dir: Path) -> None:
    before = dataset.cache_path(synthetic_dir)
    assert dataset.cache_path(synthetic_dir, recipe="kaggle") != before
    _write_record(synthetic_dir, "902")
    assert dataset.cache_path(synthetic_dir) != before


def test_unreadable_cache_is_rebuilt(synthetic_dir: Path) -> None:
    first = dataset.load_beats(synthetic_dir)
    (dataset.cache_path(synthetic_dir) / "beats.npz").write_bytes(b"truncated")
    assert dataset.load_beats(synthetic_dir).equals(first)


def test_load_without_any_records_tells_how_to_get_them(monkeypatch) -> None:
    monkeypatch.delenv("HB_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="python -m hbcore data download"):
        dataset.load_beats()


# --- command line ------------------------------------------------------------------------------

def test_cli_build_prints_a_json_summary(synthetic_dir: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["data", "build", "--mitdb", str(synthetic_dir), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 2 and summary["dropped_edge_beats"] == 2 and summary["recipe"] == "paper"
    assert summary["beats"] == sum(summary["per_class"].values())
    assert (tmp_path / "out" / "meta.parquet").is_file() and summary["from_cache"] is False


def test_cli_build_without_records_exits_2_with_advice(monkeypatch, capsys) -> None:
    monkeypatch.delenv("HB_DATA_DIR", raising=False)
    assert cli.main(["data", "build"]) == 2
    assert "python -m hbcore data download" in capsys.readouterr().err


# --- the real database -------------------------------------------------------------------------

def test_real_build_counts_are_the_annotations_less_the_last_beat_of_each_record(mitdb_beats: BeatSet) -> None:
    assert mitdb_beats.class_counts() == {name: ANNOTATED[name] - DROPPED_LAST_BEATS[name] for name in CLASS_NAMES}
    assert len(mitdb_beats) == 109_494 - 48 and len(mitdb_beats.records()) == 48


def test_real_windows_are_unit_range_float32(mitdb_beats: BeatSet) -> None:
    assert mitdb_beats.X.shape == (109_446, 187) and mitdb_beats.X.dtype == np.float32
    assert mitdb_beats.X.min() == 0.0 and mitdb_beats.X.max() == 1.0
    assert (mitdb_beats.X.max(axis=1) == 1.0).mean() > 0.999


def test_real_labels_follow_the_symbols(mitdb_beats: BeatSet) -> None:
    assert (mitdb_beats.meta["symbol"].map(AAMI_SYMBOLS).to_numpy() == mitdb_beats.y).all()


def test_real_leads(mitdb_beats: BeatSet) -> None:
    leads = mitdb_beats.meta.groupby("record")["lead"].first()
    assert leads["114"] == "MLII" and leads["102"] == "V5" and leads["104"] == "V5"
    assert (leads.drop(["102", "104"]) == "MLII").all()


def test_kaggle_recipe_reproduces_a_published_kaggle_row(mitdb_dir: Path, kaggle_dir: Path) -> None:
    """Row 1 of mitbih_train.csv is record 122's beat at sample 82,213, cut by the "kaggle" recipe."""
    row = pd.read_csv(kaggle_dir / "mitbih_train_head10.csv", header=None).to_numpy()[0]
    beats = dataset.build_beats(mitdb_dir, ["122"], recipe="kaggle")
    rebuilt = beats.subset(beats.meta["sample"].to_numpy() == 82_213)
    np.testing.assert_allclose(rebuilt.X[0], row[:187], atol=1e-6)
    assert rebuilt.y[0] == row[187]
