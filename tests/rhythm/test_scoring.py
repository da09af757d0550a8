"""EC57-style matching on hand-made reference and detected episodes, and rxr's run-by-run rules on runs."""

from __future__ import annotations

import pytest

from hbcore.rhythm.reference import ANY_RUN, COUPLET, LONG_RUN, RUN_CLASSES, SHORT_RUN
from hbcore.rhythm.scoring import (
    DurationCounts,
    Episode,
    EpisodeCounts,
    clip,
    duration,
    gross,
    match,
    match_runs,
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


# --- run by run (rxr: app/rxr.c) -----------------------------------------------------------------------

def run(first_s: float, n: int, rr_s: float = 0.5) -> Episode:
    """A run of ``n`` beats, ``rr_s`` apart, from ``first_s``."""
    return Episode.of_beats(first_s + rr_s * i for i in range(n))


def runs_matched(reference: list[Episode], detected: list[Episode], run_class) -> tuple[int, int, int, int]:
    counts = match_runs(reference, detected, run_class, start_s=0.0, end_s=1800.0)
    return counts.n_ref, counts.ref_detected, counts.n_detected, counts.detected_true


def test_a_run_sharing_one_beat_is_not_a_match_only_the_beats_inside_the_window_count():
    """rxr gives a run the other side's longest run between 150 ms before its first beat and 150 ms after
    its last (lines 229-234, 179, 428-559): one shared beat is a run of 1 there, not of 3."""
    assert runs_matched([run(10.0, 3)], [run(11.0, 3)], SHORT_RUN) == (1, 0, 1, 0)
    assert match([run(10.0, 3)], [run(11.0, 3)]).ref_detected == 1  # what overlap alone would say


def test_beats_up_to_150_ms_off_are_inside_the_window_and_200_ms_off_are_not():
    assert runs_matched([run(10.0, 3)], [run(10.15, 3)], SHORT_RUN) == (1, 1, 1, 1)
    assert runs_matched([run(10.0, 3)], [run(10.2, 3)], SHORT_RUN) == (1, 0, 1, 0)  # 2 of its beats inside


def test_a_long_detection_finds_a_short_reference_run_but_is_no_long_run_true_against_it():
    reference, detected = [run(10.0, 3)], [run(5.0, 31)]  # the detection covers the reference run
    assert runs_matched(reference, detected, SHORT_RUN)[:2] == (1, 1)  # 3 of its beats in the window
    assert runs_matched(reference, detected, LONG_RUN)[2:] == (1, 0)   # the reference has 3, not 6, in its window
    assert runs_matched(reference, detected, ANY_RUN) == (1, 1, 1, 1)


def test_a_reference_couplet_is_found_by_a_longer_detected_run():
    """Upwards (lines 806-807): a couplet is found by a run of 2 or more in its window."""
    assert runs_matched([run(10.0, 2)], [run(9.0, 5)], COUPLET)[:2] == (1, 1)
    assert runs_matched([run(10.0, 2)], [run(10.0, 1)], COUPLET)[:2] == (1, 0)  # a lone V beat is no couplet


def test_a_detected_short_run_is_true_inside_a_longer_reference_run():
    """Upwards (lines 816-819): a detected run of 3-5 is true when the reference has 3 or more in its window."""
    assert runs_matched([run(10.0, 10)], [run(11.0, 4)], SHORT_RUN)[2:] == (1, 1)
    assert runs_matched([run(10.0, 10)], [run(11.0, 2)], COUPLET)[2:] == (1, 1)


def test_matching_does_not_go_downwards():
    assert runs_matched([run(10.0, 3)], [run(10.0, 2)], SHORT_RUN)[:2] == (1, 0)  # a couplet finds no short run
    assert runs_matched([run(10.0, 8)], [run(11.0, 4)], LONG_RUN)[:2] == (1, 0)   # a long run needs 6 (line 823)
    assert runs_matched([run(10.0, 8)], [run(11.0, 4)], ANY_RUN)[:2] == (1, 1)   # as a run of 3 or more it is found


def test_the_longest_of_several_runs_in_the_window_counts_not_their_sum():
    reference = [run(10.0, 6)]  # 10.0 .. 12.5 s; the detector broke it where it saw an N at 11.0 s
    assert runs_matched(reference, [run(10.0, 2), run(11.5, 2)], ANY_RUN)[:2] == (1, 0)  # 2 + 2 beats, longest 2
    assert runs_matched(reference, [run(10.0, 2), run(11.5, 3)], ANY_RUN)[:2] == (1, 1)


def test_a_run_starting_before_the_comparison_counts_from_its_first_beat_inside():
    """rxr starts a run at its first beat in the test period: 2 of 4 beats after 5 minutes are a couplet."""
    counts = match_runs([run(299.0, 4)], [run(299.0, 4)], COUPLET, start_s=300.0, end_s=1800.0)
    assert (counts.n_ref, counts.ref_detected, counts.n_detected, counts.detected_true) == (1, 1, 1, 1)
    assert clip([run(299.0, 4)], 300.0, 1800.0) == [run(300.0, 2)]


def test_score_record_matches_its_run_kinds_run_by_run():
    reference, detected = {"v_couplet": [run(400.0, 2)]}, {"v_couplet": [run(399.0, 6)]}
    assert score_record("r", reference, detected, end_s=1800, run_classes=RUN_CLASSES).episodes["v_couplet"] \
        == EpisodeCounts(n_ref=1, ref_detected=1, n_detected=0, detected_true=0)  # a run of 6 is no couplet


def test_run_by_run_matching_needs_beat_times():
    with pytest.raises(ValueError, match="no beat times"):
        match_runs([run(10.0, 3)], [Episode(10.0, 11.0, 3)], SHORT_RUN, start_s=0.0, end_s=100.0)
    with pytest.raises(ValueError, match="2 beats but 3 beat times"):
        Episode(1.0, 3.0, 2, (1.0, 2.0, 3.0))
