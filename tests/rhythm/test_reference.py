"""Reference events from beat labels and rhythm notes; detected events in the same terms; real records."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.rhythm import evaluation, reference, scoring
from hbcore.rhythm.detector import detect
from hbcore.rhythm.events import RhythmEvent
from hbcore.rhythm.reference import RecordAnnotations
from hbcore.rhythm.scoring import Episode


def annotations(labels: str, rhythms: tuple[tuple[float, str], ...] = (), rr_s: float = 0.8) -> RecordAnnotations:
    t_s = rr_s * np.arange(1, len(labels) + 1)
    return RecordAnnotations("r", float(t_s[-1] + 1), t_s, tuple(labels), rhythms)


def counted(labels: str, kind: str) -> list[int]:
    """The beat counts of the reference runs a run kind counts (its class, from the family it holds)."""
    runs = reference.reference_episodes(annotations(labels))[kind]
    return [run.n_beats for run in runs if reference.RUN_CLASSES[kind].holds(run)]


def test_runs_are_split_into_couplets_short_and_long_runs():
    labels = "NVVN" + "VVVN" + "VVVVVVN" + "SSN" + "SSSSN"
    assert counted(labels, "v_couplet") == [2] and counted(labels, "v_short_run") == [3]
    assert counted(labels, "v_long_run") == [6] and counted(labels, "v_run") == [3, 6]
    assert counted(labels, "sv_couplet") == [2] and counted(labels, "sv_short_run") == [4]


def test_a_run_kind_holds_every_run_of_its_family_with_beat_times():
    ref = reference.reference_episodes(annotations("NVVNVVVN"))
    assert ref["v_couplet"] == ref["v_run"] == ref["v_long_run"]
    assert [run.beat_t_s for run in ref["v_couplet"]] == [pytest.approx((1.6, 2.4)), pytest.approx((4.0, 4.8, 5.6))]


def test_fusion_beats_extend_a_ventricular_run_as_in_rxr():
    """rxr counts V and F beats in a ventricular ectopic run (app/rxr.c lines 173-174, 226-227, 492-493)."""
    assert counted("NVFVN", "v_short_run") == [3]
    assert counted("NFFN", "v_couplet") == [2]
    assert counted("NVFVN", "sv_run") == [] and counted("NVSVN", "v_run") == []  # S ends a ventricular run


def test_a_run_at_the_end_of_the_record_counts():
    assert reference.label_runs(np.array([1.0, 2.0, 3.0, 4.0]), "NNVV", ("V",)) == [Episode.of_beats([3.0, 4.0])]


def test_a_rhythm_lasts_until_the_next_rhythm_note_or_the_end():
    ref = reference.reference_episodes(annotations("N" * 100, ((0.0, "(N"), (10.0, "(AFIB"), (40.0, "(N"),
                                                                (60.0, "(AFL"), (70.0, "(AFIB"))))
    assert ref["af"] == [Episode(10.0, 40.0), Episode(70.0, 81.0)]  # (AFL is not AF


def test_rhythm_notes_map_to_their_kinds():
    ref = reference.reference_episodes(annotations("N" * 10, ((0.0, "(B"), (2.0, "(T"), (3.0, "(VT"),
                                                              (4.0, "(SVTA"), (5.0, "(SBR"), (6.0, "(IVR"))))
    assert [len(ref[kind]) for kind in ("v_bigeminy", "v_trigeminy", "vt", "svta", "bradycardia")] == [1] * 5


def test_pause_and_tachycardia_references_follow_the_detectors_definitions():
    t_s = np.concatenate([np.arange(0, 8, 0.8), 8 + 2.5 + np.arange(0, 10, 0.5), [22.0]])
    ref = reference.rate_episodes(t_s)
    assert ref["pause"] == [Episode(7.2, 10.5, 2)]
    assert len(ref["tachycardia"]) == 1 and ref["tachycardia"][0].onset_s == pytest.approx(11.0)


def event(kind: str, beats: int, onset: float = 1.0) -> RhythmEvent:
    return RhythmEvent(f"p:{kind}:{onset}", "p", kind, onset, onset + beats - 1,
                       tuple(f"{onset}:{i}" for i in range(beats)), "high", False)


def beat_times(*events: RhythmEvent) -> dict[str, float]:
    """Beat i of an event one second after beat i - 1, from its onset."""
    return {beat: e.onset_s + i for e in events for i, beat in enumerate(e.beat_ids)}


def test_detected_couplets_and_runs_are_one_family_with_their_beat_times():
    events = [event("v_couplet", 2), event("vt", 4, 10.0), event("v_run", 8, 20.0), event("sv_run", 3, 40.0)]
    found = reference.detected_episodes(events, beat_times(*events))
    assert [e.n_beats for e in found["v_couplet"]] == [2, 4, 8] and found["v_long_run"] == found["v_couplet"]
    assert found["v_run"][1].beat_t_s == (10.0, 11.0, 12.0, 13.0)
    assert [e.n_beats for e in found["vt"]] == [4] and found["vt"][0].beat_t_s == ()  # VT: an episode
    assert [e.n_beats for e in found["sv_run"]] == [3]


def test_every_scored_kind_has_a_reference_and_detected_side():
    assert set(reference.reference_episodes(annotations("NVVVN"))) == set(reference.SCORED_KINDS)
    assert set(reference.detected_episodes([], {})) == set(reference.SCORED_KINDS)
    assert set(reference.RUN_CLASSES) <= set(reference.SCORED_KINDS)


# --- real records (skipped without HB_DATA_DIR) ------------------------------------------------------

def test_record_201_has_annotated_af_episodes(mitdb_dir):
    annotated = reference.read_annotations(mitdb_dir, "201")
    af = reference.reference_episodes(annotated)["af"]
    assert len(af) >= 2 and all(e.offset_s > e.onset_s for e in af)
    assert annotated.duration_s == pytest.approx(1805.6, abs=0.1)


def test_fed_the_reference_labels_the_detector_finds_every_reference_run(mitdb_dir):
    """Detector and reference share the run definitions: on record 208 (many V runs) they agree exactly."""
    from hbcore.data.dataset import build_record

    beats = build_record(mitdb_dir, "208")
    stream = evaluation.record_streams(beats, beats.y, ["208"])["208"]
    run = evaluation.run_stream("208", stream)
    score = evaluation.score_run(mitdb_dir, run, start_s=0.0)
    for kind in ("v_couplet", "v_run", "pause", "tachycardia"):
        counts = score.episodes[kind]
        assert counts.ref_detected == counts.n_ref and counts.detected_true == counts.n_detected, kind
    assert score.episodes["v_couplet"].n_ref > 50
    assert run.latency_s <= 2.0
    assert sorted(run.events, key=by_id) == sorted(detect("208", stream), key=by_id)  # the clock changes no event


def by_id(event: RhythmEvent) -> str:
    return event.event_id


def test_missing_record_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="record 999"):
        reference.read_annotations(tmp_path, "999")


def test_scores_cover_every_scored_kind():
    score = scoring.score_record("r", reference.reference_episodes(annotations("NVVVN")), {}, end_s=10.0, start_s=0)
    assert set(score.episodes) == set(reference.SCORED_KINDS)
