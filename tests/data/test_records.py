"""The raw record viewer's data, read from the real MIT-BIH files."""

import pytest

from hbcore.data import records


def test_record_names_lists_the_48_records(mitdb_dir):
    names = records.record_names(mitdb_dir)
    assert len(names) == 48 and names[0] == "100" and names[-1] == "234"


def test_record_seconds_of_a_full_record(mitdb_dir):
    assert records.record_seconds(mitdb_dir, "100") == pytest.approx(650_000 / 360)


def test_read_segment_returns_the_trace_and_its_beats(mitdb_dir):
    segment = records.read_segment(mitdb_dir, "100", 0.0, 2.0)
    assert segment.lead == "MLII" and segment.fs == 360.0
    assert len(segment.signal) == 720 and segment.signal["t_s"].iloc[-1] == pytest.approx(719 / 360)
    # record 100 starts with beats at samples 77, 370, 662 (all N)
    assert segment.beats["sample"].tolist() == [77, 370, 662]
    assert segment.beats["class"].tolist() == ["N", "N", "N"]
    assert segment.beats["mv"].tolist() == segment.signal["mv"].iloc[[77, 370, 662]].tolist()


def test_read_segment_maps_symbols_to_aami_classes(mitdb_dir):
    segment = records.read_segment(mitdb_dir, "208", 100.0, 10.0)
    assert set(segment.beats["class"]) <= {"N", "S", "V", "F", "Q"}
    assert {"V", "F"} <= set(segment.beats["class"])


def test_segment_around_centres_on_the_beat(mitdb_dir):
    segment = records.segment_around(mitdb_dir, "100", 3600, seconds_each_side=2.0)
    assert segment.signal["t_s"].iloc[0] == pytest.approx(8.0)
    assert segment.signal["t_s"].iloc[-1] == pytest.approx(12.0 - 1 / 360)


def test_unknown_record_is_named(mitdb_dir):
    with pytest.raises(FileNotFoundError, match="record '999'"):
        records.read_segment(mitdb_dir, "999", 0.0, 1.0)


def test_window_past_the_end_is_refused(mitdb_dir):
    with pytest.raises(ValueError, match="past its end"):
        records.read_segment(mitdb_dir, "100", 5000.0, 1.0)
