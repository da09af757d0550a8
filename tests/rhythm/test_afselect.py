"""The AF selection's candidates: the searched grids and the published detector at its own values."""

from __future__ import annotations

from hbcore.rhythm import afselect, detector


def test_the_published_detector_is_a_candidate_at_its_own_window_and_thresholds_alone():
    published = [c for c in afselect.candidates() if c.metric == "dash"]
    assert {c.exclude for c in published} == set(afselect.EXCLUSIONS)
    assert {c.window for c in published} == {detector.DASH_WINDOW} and afselect.LIMITS["dash"] == (1.0,)


def test_every_searched_metric_is_tried_at_every_window_and_exclusion():
    searched = [c for c in afselect.candidates() if c.metric != "dash"]
    assert len(searched) == len(afselect.WINDOWS) * len(afselect.SEARCHED_METRICS) * len(afselect.EXCLUSIONS)
    assert len(set(searched)) == len(searched)
