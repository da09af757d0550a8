"""The ventricular-run rule's DS1 selection: its candidates, ties, and the held-out folds."""

from __future__ import annotations

import pytest

from hbcore.rhythm import runselect, scoring
from hbcore.rhythm.detector import RunParams


def test_holding_nothing_comes_first_and_the_grid_has_no_duplicates():
    grid = runselect.candidates()
    assert grid[0] == RunParams() and len(set(grid)) == len(grid)
    assert len(grid) == 1 + len(runselect.BRIDGE_BELOW) * len(runselect.BRIDGE_AFTER)


def test_the_score_is_the_smaller_of_se_and_ppv_and_zero_without_detections():
    assert runselect.score(scoring.EpisodeCounts(4, 3, 10, 5)) == pytest.approx(0.5)
    assert runselect.score(scoring.EpisodeCounts(4, 0, 0, 0)) == 0.0


def fake_counts(better: RunParams, better_on: set[str]):
    """Every candidate finds 1 of 2 runs per record; ``better`` finds both on ``better_on``."""
    def record_counts(mitdb_dir, streams, params):
        return {record: scoring.EpisodeCounts(2, 2 if params == better and record in better_on else 1, 2, 2)
                for record in streams}
    return record_counts


def test_ties_keep_holding_nothing(monkeypatch):
    monkeypatch.setattr(runselect, "record_counts", fake_counts(RunParams(0.9, 1), set()))
    selection = runselect.select("unused", {"a": [], "b": []})
    assert selection.chosen == RunParams() and set(selection.fold_choices) == {RunParams()}


def test_each_fold_chooses_from_the_other_records_only(monkeypatch):
    better = RunParams(0.9, 2)
    monkeypatch.setattr(runselect, "record_counts", fake_counts(better, {"a", "b"}))
    selection = runselect.select("unused", {"a": [], "b": [], "c": []})
    assert selection.chosen == better and selection.fold_choices == (better, better, better)
    assert selection.cross_validated == scoring.EpisodeCounts(6, 5, 6, 6)


def test_a_gain_that_does_not_survive_leaving_a_record_out_is_not_taken(monkeypatch):
    better = RunParams(0.9, 2)
    monkeypatch.setattr(runselect, "record_counts", fake_counts(better, {"a"}))
    selection = runselect.select("unused", {"a": [], "b": [], "c": []})
    assert selection.plain[better].ref_detected == 4  # best on all records ...
    assert selection.fold_choices == (RunParams(), better, better)  # ... but the fold leaving "a" out cannot see it
    assert selection.cross_validated == scoring.EpisodeCounts(6, 3, 6, 6)  # no better than holding nothing
    assert selection.chosen == RunParams()
