"""EC57-style matching on hand-made reference and detected episodes."""

from __future__ import annotations

import pytest

from hbcore.rhythm.scoring import (
    DurationCounts,
    Episode,
    EpisodeCounts,
    clip,
    duration,
    gross,
    match,
    merged,
    score_record,
)


def ep(onset: float, offset: float, n: int = 0) -> Episode:
    return Episode(onset, offset, n)


def test_a_reference_episode_is_detected_by_any_overlap():
    counts = match([ep(10, 20), ep(30, 40)], [ep(19, 25)])
    assert (counts.ref_detected, counts.detected_true) == (1, 1)
    assert (counts.se, counts.ppv) == (0.5, 1.0)


def test_episodes_sharing_one_beat_overlap():
    assert match([ep(10, 12, 3)], [ep(12, 14, 3)]).ref_detected == 1


def test_a_detection_outside_every_reference_is_false():
    counts = match([ep(10, 20)], [ep(10, 20), ep(50, 60), ep(70, 80)])
    assert (counts.n_detected, counts.detected_true) == (3, 1)
    assert counts.ppv == pytest.approx(1 / 3)


def test_one_long_detection_finds_two_references_and_counts_once():
    counts = match([ep(10, 20), ep(30, 40)], [ep(5, 45)])
    assert counts == EpisodeCounts(n_ref=2, ref_detected=2, n_detected=1, detected_true=1)


def test_no_reference_and_no_detection_leave_se_and_ppv_undefined():
    assert match([], []).se is None and match([], []).ppv is None
    assert match([], [ep(1, 2)]).ppv == 0.0 and match([], [ep(1, 2)]).se is None


def test_duration_se_and_ppv_are_shared_seconds_over_reference_and_detected_seconds():
    seconds = duration([ep(0, 100), ep(200, 300)], [ep(50, 250)])
    assert seconds == DurationCounts(ref_s=200, detected_s=200, overlap_s=100)
    assert (seconds.se, seconds.ppv) == (0.5, 0.5)


def test_overlapping_detections_count_their_seconds_once():
    assert merged([ep(0, 10), ep(5, 20), ep(30, 40)]) == [(0, 20), (30, 40)]
    assert duration([ep(0, 40)], [ep(0, 10), ep(5, 20)]) == DurationCounts(40, 20, 20)


def test_clip_cuts_to_the_comparison_interval_and_drops_what_is_outside():
    assert clip([ep(0, 100), ep(250, 400), ep(500, 600)], 300, 550) == [ep(300, 400), ep(500, 550)]


def test_the_first_five_minutes_are_not_compared():
    score = score_record("r", {"af": [ep(0, 200), ep(400, 500)]}, {"af": [ep(0, 250)]}, end_s=1800)
    assert score.episodes["af"] == EpisodeCounts(n_ref=1, ref_detected=0, n_detected=0, detected_true=0)
    assert score.durations["af"] == DurationCounts(100, 0, 0)


def test_a_kind_never_detected_counts_every_reference_as_missed():
    score = score_record("r", {"vt": [ep(400, 402)]}, {}, end_s=1800)
    assert score.episodes["vt"].se == 0.0 and score.episodes["vt"].ppv is None


def test_gross_sums_counts_and_seconds_over_records():
    a = score_record("a", {"af": [ep(400, 500)]}, {"af": [ep(400, 450)]}, end_s=1800)
    b = score_record("b", {"af": []}, {"af": [ep(600, 650)]}, end_s=1800)
    total = gross([a, b])
    assert total.episodes["af"] == EpisodeCounts(n_ref=1, ref_detected=1, n_detected=2, detected_true=1)
    assert total.durations["af"] == DurationCounts(100, 100, 50)


def test_an_episode_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="before it starts"):
        Episode(10.0, 9.0)
