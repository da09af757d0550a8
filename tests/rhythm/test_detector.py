"""The rhythm detector on synthetic beat sequences: one behaviour per test, each kind at its boundaries."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import numpy as np
import pytest

from hbcore.rhythm import detector
from hbcore.rhythm.detector import EventDetector, PatientDetector, detect, final_events
from hbcore.rhythm.events import KINDS, SEVERITY, BeatObs, RhythmEvent


def stream(labels: str, rr_s: float | list[float] = 0.8, *, with_rr: bool = True) -> list[BeatObs]:
    """Beats labelled by the characters of ``labels``, ``rr_s`` apart (one value or one per beat)."""
    intervals = [rr_s] * len(labels) if isinstance(rr_s, float) else list(rr_s)
    times = np.cumsum(intervals)
    return [BeatObs(float(t), label, float(rr) if with_rr and i else None, str(i))
            for i, (t, label, rr) in enumerate(zip(times, labels, intervals))]


def kinds(events: list[RhythmEvent]) -> list[str]:
    return [event.kind for event in events]


def of_kind(events: list[RhythmEvent], kind: str) -> list[RhythmEvent]:
    return [event for event in events if event.kind == kind]


def test_every_kind_has_a_severity():
    assert set(SEVERITY) == set(KINDS)


def test_a_couplet_is_two_ventricular_beats():
    events = detect("p", stream("NNNVVNNN"))
    assert kinds(events) == ["v_couplet"]
    assert events[0].beat_ids == ("3", "4") and not events[0].ongoing
    assert (events[0].onset_s, events[0].offset_s) == pytest.approx((3.2, 4.0))


def test_one_ventricular_beat_is_no_event():
    assert detect("p", stream("NNNVNNN")) == []


def test_three_ventricular_beats_are_a_run_slow_at_100_bpm_and_vt_above():
    assert kinds(detect("p", stream("NNVVVNN", 0.6))) == ["v_run"]   # exactly 100 bpm: not above
    assert kinds(detect("p", stream("NNVVVNN", 0.59))) == ["vt"]


def test_a_run_broken_by_one_normal_beat_is_two_runs():
    events = detect("p", stream("NNVVVNVVVNN", 0.5))
    runs = of_kind(events, "vt")
    assert [run.beat_ids for run in runs] == [("2", "3", "4"), ("6", "7", "8")]
    assert runs[0].event_id != runs[1].event_id


def test_fusion_beats_are_part_of_a_ventricular_run_as_in_ec57():
    """rxr (the EC57 run-by-run comparator) counts V and F beats in a ventricular ectopic run."""
    events = detect("p", stream("NNVFVNN", 0.5))
    assert kinds(events) == ["vt"] and events[0].beat_ids == ("2", "3", "4")
    assert kinds(detect("p", stream("NNFFNN"))) == ["v_couplet"]


def test_a_supraventricular_beat_ends_a_ventricular_run():
    assert kinds(detect("p", stream("NNVVSVVNN", 0.5))) == ["v_couplet", "v_couplet"]


def test_fusion_beats_do_not_make_bigeminy():
    """Bigeminy and trigeminy stay patterns of V beats: rxr scores runs only, it has no rule for them."""
    assert of_kind(detect("p", stream("NNNN" + "NF" * 5 + "NNNN")), "v_bigeminy") == []


def test_a_run_is_reported_at_its_third_beat_then_ended_under_the_same_id():
    reports = PatientDetector("p").feed_all(stream("NN" + "V" * 30 + "NN", 0.5))
    runs = of_kind(reports, "vt")
    assert runs[0].ongoing and runs[0].beat_ids == ("2", "3", "4")
    assert not runs[-1].ongoing and len(runs[-1].beat_ids) == 30
    assert {run.event_id for run in runs} == {runs[0].event_id}
    assert all(earlier.offset_s <= later.offset_s for earlier, later in itertools.pairwise(runs))
    assert len(runs) > 2  # 15 s of VT: reported again while it lasts


def test_a_run_crossing_a_batch_boundary_gives_the_events_of_one_batch():
    beats = stream("NNNN" + "V" * 8 + "NNNN", 0.5)
    whole = PatientDetector("p")
    expected = [*whole.feed_all(beats), *whole.flush()]
    split = PatientDetector("p")
    got = [*split.feed_all(beats[:7]), *split.feed_all(beats[7:]), *split.flush()]
    assert got == expected and "vt" in kinds(expected)


def doubtful(labels: str, probs: dict[int, float], rr_s: float = 0.5) -> list[BeatObs]:
    """``stream(labels)`` with the classifier's probability ``probs[i]`` on beat i (1.0 elsewhere)."""
    return [replace(beat, prob=probs.get(i, 1.0)) for i, beat in enumerate(stream(labels, rr_s))]


BRIDGE = detector.RunParams(bridge_below=0.8, bridge_after=2)


def test_a_run_goes_on_through_one_doubtful_beat_of_another_class():
    events = detect("p", doubtful("NNVVNVVNN", {4: 0.6}), runs=BRIDGE)
    assert kinds(events) == ["vt"] and events[0].beat_ids == ("2", "3", "4", "5", "6")


def test_a_confident_beat_a_doubtful_beat_too_early_or_two_in_a_row_still_break_a_run():
    assert kinds(detect("p", doubtful("NNVVNVVNN", {4: 0.9}), runs=BRIDGE)) == ["v_couplet", "v_couplet"]
    assert kinds(detect("p", doubtful("NNVNVVNN", {3: 0.6}), runs=BRIDGE)) == ["v_couplet"]  # after 1 V only
    assert kinds(detect("p", doubtful("NNVVNNVVNN", {4: 0.6, 5: 0.6}), runs=BRIDGE)) == ["v_couplet", "v_couplet"]


def test_a_doubtful_beat_after_a_run_is_not_part_of_it():
    events = detect("p", doubtful("NNVVVNNNN", {5: 0.6}), runs=BRIDGE)
    assert kinds(events) == ["vt"] and events[0].beat_ids == ("2", "3", "4")


def test_without_probabilities_or_with_the_default_rule_nothing_is_held():
    assert kinds(detect("p", stream("NNVVNVVNN", 0.5), runs=BRIDGE)) == ["v_couplet", "v_couplet"]
    assert kinds(detect("p", doubtful("NNVVNVVNN", {4: 0.01}))) == ["v_couplet", "v_couplet"]


def test_a_held_beat_does_not_delay_a_couplet_past_the_end_gap():
    beats = doubtful("NNVVN", {4: 0.6})
    patient = PatientDetector("p", runs=BRIDGE)
    assert kinds(patient.feed_all(beats)) == []  # the doubtful beat is held: the couplet may go on
    reports = [(float(now), event) for now in np.arange(beats[-1].t_s + 0.1, beats[3].t_s + 2.0, 0.1)
               for event in patient.advance(float(now))]
    assert [event.kind for _, event in reports] == ["v_couplet"]
    assert reports[0][0] - beats[3].t_s <= 2.0 and reports[0][1].beat_ids == ("2", "3")


def test_a_run_bridged_across_a_batch_boundary_gives_the_events_of_one_batch():
    beats = doubtful("NNVVVNVVNN", {5: 0.5})
    whole = PatientDetector("p", runs=BRIDGE)
    expected = [*whole.feed_all(beats), *whole.flush()]
    split = PatientDetector("p", runs=BRIDGE)
    got = [*split.feed_all(beats[:6]), *split.feed_all(beats[6:]), *split.flush()]
    assert got == expected and len(final_events(expected)[0].beat_ids) == 6


def test_run_parameters_out_of_range_are_refused():
    with pytest.raises(ValueError, match="probability"):
        detector.RunParams(bridge_below=1.5)
    with pytest.raises(ValueError, match="after"):
        detector.RunParams(bridge_after=0)


def test_supraventricular_couplet_run_and_svta():
    assert kinds(detect("p", stream("NNSSNN"))) == ["sv_couplet"]
    assert kinds(detect("p", stream("NNSSSNN"))) == ["sv_run"]
    assert "svta" in kinds(detect("p", stream("NNSSSSNN", 0.5)))


def test_bigeminy_needs_three_cycles():
    assert of_kind(detect("p", stream("NNNN" + "NV" * 2 + "NNNN")), "v_bigeminy") == []
    events = of_kind(detect("p", stream("NNNN" + "NV" * 5 + "NNNN")), "v_bigeminy")
    assert len(events) == 1
    assert events[0].beat_ids == tuple(str(i) for i in range(4, 15))  # first N of the pattern .. the N after the last V


def test_trigeminy_is_not_bigeminy():
    events = detect("p", stream("NNNN" + "NNV" * 5 + "NNNN"))
    assert kinds(events) == ["v_trigeminy"]
    assert events[0].beat_ids[0] == "4" and events[0].beat_ids[-1] == "20"


def test_a_couplet_breaks_bigeminy():
    events = detect("p", stream("NN" + "NV" * 4 + "VN" + "NV" * 4 + "NN"))
    assert len(of_kind(events, "v_bigeminy")) == 2
    assert len(of_kind(events, "v_couplet")) == 1


def irregular(n: int, seed: int = 1) -> list[float]:
    return list(np.random.default_rng(seed).uniform(0.45, 1.15, n))


def test_irregularly_irregular_rr_is_af_dated_to_the_irregular_stretch():
    rr = [0.8] * 100 + irregular(300) + [0.8] * 100
    events = of_kind(detect("p", stream("N" * 500, rr)), "af")
    assert len(events) == 1
    onset, offset = np.cumsum(rr)[100], np.cumsum(rr)[399]
    window_s = detector.AF_PARAMS.window * 0.8
    assert abs(events[0].onset_s - onset) < window_s and abs(events[0].offset_s - offset) < window_s


def test_ventricular_bigeminy_with_short_coupling_is_irregular_but_not_af():
    rr = [0.8] * 20 + [0.5, 1.1] * 150 + [0.8] * 20
    events = detect("p", stream("N" * 20 + "NV" * 150 + "N" * 20, rr))
    assert of_kind(events, "af") == [] and len(of_kind(events, "v_bigeminy")) == 1


def test_sinus_arrhythmia_is_not_af():
    rr = list(0.85 + 0.12 * np.sin(2 * np.pi * np.arange(600) / 12))  # respiratory: 12 beats a breath
    assert of_kind(detect("p", stream("N" * 600, rr)), "af") == []


def window_of(rr: list[float]) -> np.ndarray:
    rr_s = np.asarray(rr)
    return np.column_stack([np.abs(np.diff(rr_s)) / (0.5 * (rr_s[1:] + rr_s[:-1])), rr_s[1:], np.diff(rr_s)])


@pytest.mark.parametrize("metric", ["median", "share", "cells", "dash"])
def test_each_af_metric_rates_random_intervals_far_above_regular_ones(metric):
    params = detector.AfParams(metric=metric)
    regular = params.irregularity(window_of(list(0.8 + 0.005 * np.sin(np.arange(33)))))
    assert params.irregularity(window_of(irregular(33))) > regular + 0.3


def test_patterned_ectopy_fills_few_cells_of_the_rr_map():
    params = detector.AfParams(metric="cells")
    bigeminy = params.irregularity(window_of([0.5, 1.1] * 16 + [0.5]))
    assert bigeminy <= 0.125 < params.irregularity(window_of(irregular(33)))  # 2 clusters: 2..4 of 32 cells


DASH = detector.AfParams(window=detector.DASH_WINDOW, metric="dash", limit=1.0, exclude=("V",))


def dash_of(rr: list[float]) -> float:
    rows = window_of(rr)
    return detector.dash_score(rows[:, 1], rows[:, 2])


def test_dash_calls_af_only_when_all_three_tests_do():
    assert dash_of(irregular(129)) > 1.0                                       # random: all three
    assert dash_of(list(0.8 + 0.01 * np.random.default_rng(2).standard_normal(129))) < 0.5  # steady: nRMSSD low
    assert dash_of([0.55, 1.05] * 64 + [0.55]) == 0.0    # alternating: every interval a turning point
    assert dash_of(list(np.linspace(0.4, 1.2, 129))) == 0.0  # a ramp: no turning point


def test_dash_detects_af_in_an_irregularly_irregular_stretch():
    rr = [0.8] * 200 + irregular(600) + [0.8] * 200
    events = of_kind(detect("p", stream("N" * 1000, rr), DASH), "af")
    assert len(events) == 1
    onset, offset = np.cumsum(rr)[200], np.cumsum(rr)[799]
    half_window_s = DASH.window / 2 * 0.8
    assert abs(events[0].onset_s - onset) < half_window_s and abs(events[0].offset_s - offset) < half_window_s


def sinus_with_pvcs(n: int, share: float, seed: int = 3) -> tuple[str, list[float]]:
    """Sinus rhythm at 75 bpm with premature V beats at random (coupling 0.4-0.6 s, full compensatory pause)."""
    rng = np.random.default_rng(seed)
    labels = "".join("V" if rng.random() < share and i % 2 else "N" for i in range(n))
    rr: list[float] = []
    for i, label in enumerate(labels):
        if label == "V":
            rr.append(0.5 + 0.1 * rng.uniform(-1.0, 1.0))
        else:
            rr.append(1.6 - rr[-1] if i and labels[i - 1] == "V" else 0.8 + 0.02 * rng.standard_normal())
    return labels, rr


def test_frequent_pvcs_in_sinus_rhythm_are_not_af_once_their_intervals_are_left_out():
    labels, rr = sinus_with_pvcs(3000, 0.5)  # a V beat after one in four beats, at random
    beats = stream(labels, rr)
    assert of_kind(detect("p", beats, replace(DASH, exclude=())), "af") != []  # the raw RR series reads as AF
    assert of_kind(detect("p", beats, DASH), "af") == []


def periodic_irregular(n: int, spread_s: float) -> list[float]:
    """A fixed random pattern of 128 intervals around 0.8 s, repeated: every window holds the same values."""
    pattern = np.random.default_rng(5).uniform(-1.0, 1.0, detector.DASH_WINDOW)
    return list(0.8 + spread_s * np.resize(pattern, n))


def test_dash_af_ends_only_below_its_hysteresis():
    weak = periodic_irregular(129, 0.095)
    assert 0.8 < dash_of(weak) < 1.0  # not AF to start, AF to go on with
    rr = [0.8] * 150 + periodic_irregular(300, 0.3) + periodic_irregular(500, 0.095) + [0.8] * 300
    beats, ends = stream("N" * len(rr), rr), np.cumsum(rr)
    with_hysteresis = of_kind(detect("p", beats, DASH), "af")
    assert len(with_hysteresis) == 1 and with_hysteresis[0].offset_s > ends[900]  # through the weak stretch
    without = of_kind(detect("p", beats, replace(DASH, hysteresis=1.0)), "af")
    assert len(without) == 1 and without[0].offset_s < ends[600]  # ends soon after the weak stretch starts
    assert of_kind(detect("p", stream("N" * 800, [0.8] * 150 + periodic_irregular(650, 0.095)), DASH), "af") == []


def test_af_shorter_than_the_minimum_episode_is_not_reported():
    short_window = replace(detector.AF_PARAMS, window=32)  # short enough for a 30 s burst to show
    burst = stream("N" * 240, [0.8] * 100 + irregular(40) + [0.8] * 100)
    unbounded = of_kind(detect("p", burst, replace(short_window, min_episode_s=0.0)), "af")
    assert len(unbounded) == 1 and unbounded[0].duration_s < detector.AF_MIN_EPISODE_S
    assert of_kind(detect("p", burst, short_window), "af") == []
    flickering = of_kind(detect("p", stream("N" * 500, [0.8] * 100 + irregular(300) + [0.8] * 100), short_window), "af")
    assert flickering and min(event.duration_s for event in flickering) >= detector.AF_MIN_EPISODE_S


def test_an_unknown_af_metric_is_refused():
    with pytest.raises(ValueError, match="AF metric 'entropy'"):
        detector.AfParams(metric="entropy")


def test_bradycardia_below_50_bpm_sustained_and_not_at_50():
    assert of_kind(detect("p", stream("N" * 40, [0.8] * 20 + [1.2] * 20)), "bradycardia") == []
    events = of_kind(detect("p", stream("N" * 50, [0.8] * 20 + [1.3] * 20 + [0.8] * 10)), "bradycardia")
    assert len(events) == 1
    assert events[0].beat_ids[0] == "19"  # the window that crosses: 9 slow intervals and the one before


def test_tachycardia_above_100_bpm_and_not_at_100():
    assert of_kind(detect("p", stream("N" * 40, [0.8] * 20 + [0.6] * 20)), "tachycardia") == []
    events = of_kind(detect("p", stream("N" * 60, [0.8] * 20 + [0.5] * 30 + [0.8] * 10)), "tachycardia")
    assert len(events) == 1 and not events[0].ongoing


def test_a_pause_is_an_rr_interval_above_2_s():
    assert detect("p", stream("NNNNN", [0.8, 0.8, 2.0, 0.8, 0.8])) == []
    events = detect("p", stream("NNNNN", [0.8, 0.8, 2.5, 0.8, 0.8]))
    assert kinds(events) == ["pause"]
    assert events[0].beat_ids == ("1", "2") and events[0].duration_s == pytest.approx(2.5)


def test_rr_is_taken_from_the_previous_beat_when_not_given():
    labels, rr = "NNVVVN" + "N" * 30, [0.8] * 6 + irregular(30)
    assert detect("p", stream(labels, rr, with_rr=False)) == detect("p", stream(labels, rr))


def test_a_beat_not_later_than_the_last_is_ignored():
    beats = stream("NNVVNN")
    patient = PatientDetector("p")
    events = patient.feed_all([*beats[:4], beats[3], beats[1], *beats[4:]])
    assert patient.ignored_beats == 2
    assert final_events([*events, *patient.flush()]) == detect("p", beats)


def random_stream(n: int = 4000, seed: int = 7) -> list[BeatObs]:
    """A patient with everything: ectopy of both kinds, AF stretches, pauses, fast and slow spells."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(list("NNNNNNNNSVVF"), n)
    rr = rng.uniform(0.55, 0.95, n)
    rr[1000:1600] = rng.uniform(0.4, 1.2, 600)
    rr[2500:2600] = 1.4
    rr[rng.choice(n, 8)] = 2.4
    return stream("".join(labels), list(rr))


def test_events_depend_only_on_the_past():
    beats = random_stream()
    full = PatientDetector("p")
    emitted_at = [full.feed(beat) for beat in beats]
    assert sum(map(len, emitted_at)) > 100
    for cut in (1, 500, 1234, 2999):
        prefix = PatientDetector("p")
        assert [prefix.feed(beat) for beat in beats[:cut]] == emitted_at[:cut]


def test_every_report_is_emitted_by_the_beat_that_completes_it():
    beats = random_stream()
    patient = PatientDetector("p")
    index = {beat.beat_id: i for i, beat in enumerate(beats)}
    for i, beat in enumerate(beats):
        for event in patient.feed(beat):
            assert event.offset_s <= beat.t_s  # nothing from the future
            if event.kind == "af" and not event.ongoing:
                continue  # an AF end is dated back to the middle of the window that shows it (docs/alarms.md)
            assert i - index[event.beat_ids[-1]] <= 1, event  # the beat itself, or the first beat after the event


def live(beats: list[BeatObs], tick_s: float = 0.1) -> list[tuple[float, RhythmEvent]]:
    """Every report with the stream time it came out, the clock advanced every ``tick_s`` between beats."""
    patient, reports = PatientDetector("p"), []
    for beat, following in zip(beats, [*beats[1:], None]):
        reports += [(beat.t_s, event) for event in patient.feed(beat)]
        for now in np.arange(beat.t_s + tick_s, following.t_s if following else beat.t_s, tick_s):
            reports += [(float(now), event) for event in patient.advance(float(now))]
    return reports + [(beats[-1].t_s, event) for event in patient.flush()]


def test_with_a_clock_every_ectopy_event_is_out_within_2_s_of_its_last_beat():
    beats = random_stream()
    times = {beat.beat_id: beat.t_s for beat in beats}
    ectopy = {"v_couplet", "v_run", "vt", "v_bigeminy", "v_trigeminy", "sv_couplet", "sv_run", "svta"}
    delays = [now - times[event.beat_ids[-1]] for now, event in live(beats) if event.kind in ectopy]
    assert len(delays) > 100 and max(delays) <= 2.0


def by_id(events: list[RhythmEvent]) -> list[RhythmEvent]:
    return sorted(events, key=lambda event: event.event_id)


def test_a_clock_changes_when_events_come_out_not_what_they_are():
    beats = random_stream()
    assert by_id(final_events([event for _, event in live(beats)])) == by_id(detect("p", beats))


def test_a_couplet_before_a_pause_is_out_when_the_gap_shows_it():
    beats = stream("NNVV", 0.8)
    reports = live([*beats, BeatObs(beats[-1].t_s + 3.0, "N", 3.0, "4")])
    couplet = next((now, event) for now, event in reports if event.kind == "v_couplet")
    assert couplet[0] - beats[-1].t_s == pytest.approx(detector.END_GAP_S, abs=0.11)


def test_a_pause_is_reported_under_way_then_ended_by_the_next_beat():
    beats = stream("NNNN", 0.8)
    reports = live([*beats, BeatObs(beats[-1].t_s + 4.0, "N", 4.0, "4")])
    pauses = [(now, event) for now, event in reports if event.kind == "pause"]
    (started_at, started), (ended_at, ended) = pauses
    assert started.ongoing and started_at - beats[-1].t_s == pytest.approx(detector.PAUSE_S, abs=0.11)
    assert not ended.ongoing and ended.event_id == started.event_id and ended.beat_ids == ("3", "4")
    assert ended.duration_s == pytest.approx(4.0) and ended_at == beats[-1].t_s + 4.0


def test_the_event_detector_keeps_patients_apart():
    a, b = stream("NNVVNN" + "V" * 5 + "NN", 0.5), stream("NNNSSSNN")
    together = EventDetector()
    reports = [event for pair in zip(a, b)
               for patient, beat in zip("ab", pair) for event in together.feed(patient, beat)]
    reports += [event for beat in a[len(b):] for event in together.feed("a", beat)]
    reports += together.flush()
    final = final_events(reports)
    assert [e for e in final if e.patient == "a"] == detect("a", a)
    assert [e for e in final if e.patient == "b"] == detect("b", b)


def test_event_ids_name_patient_and_kind():
    event = detect("record-7", stream("NNVVNN"))[0]
    assert event.event_id.startswith("record-7:v_couplet:") and event.severity == SEVERITY["v_couplet"]


def test_an_unknown_label_is_refused_naming_the_beat():
    with pytest.raises(ValueError, match=re.escape("12.5 s: label 'X'")):
        BeatObs(12.5, "X")
