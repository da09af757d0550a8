"""The per-patient causal context: a beat's features read only its patient's past (and the next RR),
one beat at a time gives what the dataset build stores, and the reference stays robust."""

from __future__ import annotations

import numpy as np
import pytest

from hbcore.contracts import stream_record
from hbcore.data import patient
from hbcore.data.dataset import BeatSet, build_record


@pytest.fixture(scope="module")
def record_209(mitdb_dir) -> BeatSet:
    """Record 209 (DS1): runs of supraventricular beats among normal ones."""
    return build_record(mitdb_dir, "209")


@pytest.fixture(scope="module")
def record_119(mitdb_dir) -> BeatSet:
    """Record 119: ventricular bigeminy (every other beat a V in long stretches)."""
    return build_record(mitdb_dir, "119")


def rr(beats: BeatSet) -> np.ndarray:
    return beats.meta[list(patient.RR_COLUMNS)].to_numpy(dtype=np.float64)


def test_a_beat_by_beat_monitor_gives_what_the_build_stores(record_119):
    context = patient.PatientContext()
    values = rr(record_119)
    streamed = np.array([context.update(record_119.X[i], record_119.pre[i], *values[i]) for i in range(len(values))])

    carried = stream_record.carried_context(streamed.astype(np.float32)).astype(np.float32)
    np.testing.assert_array_equal(carried, record_119.context)


@pytest.mark.parametrize("beat", [40, 700, 1500])
def test_no_feature_reads_a_beat_beyond_the_next_r_peak(record_119, beat):
    values = rr(record_119)
    before = patient.record_context(record_119.X, record_119.pre, values)
    rng = np.random.default_rng(beat)
    X, pre, future = record_119.X.copy(), record_119.pre.copy(), values.copy()
    X[beat + 1:] = rng.random(X[beat + 1:].shape)
    pre[beat + 1:] = rng.random(pre[beat + 1:].shape)
    future[beat + 1:, 1:] = rng.uniform(0.3, 2.0, future[beat + 1:, 1:].shape)  # next and local RR of later beats
    future[beat + 2:, 0] = rng.uniform(0.3, 2.0, len(future) - beat - 2)  # previous RR after the next R peak

    after = patient.record_context(X, pre, future)

    np.testing.assert_array_equal(after[:beat + 1], before[:beat + 1])
    assert not np.array_equal(after[beat + 2:], before[beat + 2:])  # the perturbation did reach later beats


def references(beats: BeatSet) -> tuple[np.ndarray, np.ndarray]:
    """The normal-looking and the slow reference RR after each beat of a record."""
    context = patient.PatientContext()
    values = rr(beats)
    normal, slow = [], []
    for i in range(len(values)):
        context.update(beats.X[i], beats.pre[i], *values[i])
        normal.append(context.reference_rr())
        slow.append(context.slow_reference_rr())
    return np.array(normal), np.array(slow)


def normal_rr(beats: BeatSet) -> float:
    """The median RR between two consecutive N beats (labels: the test's, never the monitor's)."""
    both_normal = (beats.y[1:] == 0) & (beats.y[:-1] == 0)
    return float(np.median(rr(beats)[1:, 0][both_normal]))


def test_the_reference_rhythm_is_the_normal_beats_in_bigeminy(record_119):
    normal, _ = references(record_119)
    assert abs(np.median(normal[100:]) / normal_rr(record_119) - 1) < 0.05


def test_the_slow_reference_stays_on_the_sinus_rhythm_where_most_beats_are_premature():
    """Three intervals in five premature (0.5 s against a 1.0 s sinus rhythm): their median is the
    premature interval, the slow reference (an upper percentile) stays on the sinus one."""
    assert patient.SLOW_REFERENCE_PERCENTILE > 60
    context = patient.PatientContext()
    beat, pre = np.full(187, 0.5), np.full(36, 0.5)
    for i in range(300):
        context.update(beat, pre, 1.0 if i % 5 < 2 else 0.5, np.nan, np.nan)
    assert context.slow_reference_rr() == pytest.approx(1.0)


def test_s_beats_are_premature_against_the_slow_reference_and_n_beats_are_not(record_209):
    ratio = record_209.context[:, patient.CONTEXT_NAMES.index("rr_prev_slow_ratio")]
    assert np.nanmedian(ratio[record_209.y == 1]) < 0.8 < 0.9 < np.nanmedian(ratio[record_209.y == 0])


def test_v_beats_look_unlike_the_template(record_119):
    correlation = record_119.context[:, patient.CONTEXT_NAMES.index("wave_correlation")]
    assert np.nanmedian(correlation[record_119.y == 2]) < 0.7 < np.nanmedian(correlation[record_119.y == 0])


def test_the_first_beat_has_no_context():
    context = patient.PatientContext()
    values = context.update(np.full(187, 0.5), np.full(36, 0.5), np.nan, 0.8, np.nan)
    warmup = patient.CONTEXT_NAMES.index("warmup")
    assert np.isnan(np.delete(values, warmup)).all() and values[warmup] == 0.0


def test_normal_template_uses_only_the_beats_before(record_119):
    upto = int(record_119.meta["sample"].iloc[300])
    template = patient.normal_template(record_119, "119", upto)
    changed = BeatSet(np.where(np.arange(len(record_119))[:, None] >= 300, 0.0, record_119.X), record_119.y,
                      record_119.meta, pre=record_119.pre, context=record_119.context)

    assert template is not None and template.shape == (187,)
    np.testing.assert_array_equal(patient.normal_template(changed, "119", upto), template)
    assert patient.normal_template(record_119, "119", int(record_119.meta["sample"].iloc[0])) is None
    assert patient.normal_template(record_119, "no such record") is None


def test_normal_template_looks_like_the_normal_beats(record_119):
    template = patient.normal_template(record_119, "119")
    normal_mean = record_119.X[record_119.y == 0].mean(axis=0)
    assert np.corrcoef(template[:60], normal_mean[:60])[0, 1] > 0.95


def test_the_references_are_numpys_median_and_percentile_of_the_recent_intervals(record_119):
    context = patient.PatientContext(slow_percentile=70.0)
    values = rr(record_119)
    for i in range(200):
        context.update(record_119.X[i], record_119.pre[i], *values[i])
    recent = values[200 - patient.REFERENCE_BEATS:200, 0]

    assert context.slow_reference_rr() == pytest.approx(np.percentile(recent, 70.0), rel=1e-12)


def test_the_long_reference_is_numpys_median_of_the_last_intervals(record_119):
    context = patient.PatientContext()
    values = rr(record_119)
    n = patient.LONG_REFERENCE_BEATS + 100
    for i in range(n):
        context.update(record_119.X[i], record_119.pre[i], *values[i])
    recent = values[n - patient.LONG_REFERENCE_BEATS:n, 0]

    assert context.long_reference_rr() == pytest.approx(np.median(recent), rel=1e-12)


def test_the_long_reference_stays_on_the_sinus_rhythm_through_a_long_ectopic_stretch():
    """200 sinus intervals (1.0 s), then 100 premature ones (0.5 s): past 32 beats every short
    reference follows the ectopic rhythm, the long one (the median of the last 256) stays sinus, so a
    beat of the stretch is still premature against it."""
    context = patient.PatientContext()
    beat, pre = np.full(187, 0.5), np.full(36, 0.5)
    for i in range(300):
        values = context.update(beat, pre, 1.0 if i < 200 else 0.5, 1.0 if i < 199 else 0.5, np.nan)

    assert context.slow_reference_rr() == pytest.approx(0.5)
    assert context.long_reference_rr() == pytest.approx(1.0)
    assert values[patient.CONTEXT_NAMES.index("rr_prev_long_ratio")] == pytest.approx(0.5)
    assert values[patient.CONTEXT_NAMES.index("rr_next_long_ratio")] == pytest.approx(0.5)


def test_the_previous_beat_features_are_numpys_correlation_and_rms_with_the_beat_before(record_119):
    values = patient.record_context(record_119.X, record_119.pre, rr(record_119)).astype(np.float64)
    at = patient.CONTEXT_NAMES.index
    wave = record_119.X[:, :patient.WAVE_SAMPLES].astype(np.float64)

    assert np.isnan(values[0, at("prev_correlation")]) and np.isnan(values[0, at("prev_rms")])
    for i in (1, 500, 1500):
        assert values[i, at("prev_correlation")] == pytest.approx(np.corrcoef(wave[i], wave[i - 1])[0, 1], abs=1e-6)
        assert values[i, at("prev_rms")] == pytest.approx(np.sqrt(np.mean((wave[i] - wave[i - 1]) ** 2)), abs=1e-6)


def test_a_beat_like_the_one_before_it_correlates_more_than_one_unlike_it():
    """The beats of a run resemble one another: a repeated beat scores correlation 1 and RMS 0 with
    the one before it, a different one less and more."""
    context = patient.PatientContext()
    t = np.linspace(0.0, 1.0, 187)
    narrow, wide = np.exp(-((t - 0.05) / 0.02) ** 2), np.exp(-((t - 0.1) / 0.08) ** 2)
    pre, at = np.full(36, 0.5), patient.CONTEXT_NAMES.index
    context.update(narrow, pre, 0.8, 0.8, 0.8)
    same = context.update(narrow, pre, 0.8, 0.8, 0.8)
    other = context.update(wide, pre, 0.8, 0.8, 0.8)

    assert same[at("prev_correlation")] == pytest.approx(1.0) and same[at("prev_rms")] == pytest.approx(0.0)
    assert other[at("prev_correlation")] < 0.9 and other[at("prev_rms")] > 0.05


def test_the_template_is_the_mean_of_the_last_normal_beats_after_many_turns_of_the_ring(record_119):
    """The template is kept as a running sum: after hundreds of normal beats it still equals the mean
    of the last REFERENCE_BEATS normal-looking ones (rounding does not build up)."""
    context = patient.PatientContext()
    values = rr(record_119)
    for i in range(900):
        context.update(record_119.X[i], record_119.pre[i], *values[i])
    _, pre = context.template()  # numpy's mean of the ring's windows and pre-R segments
    recent = context._waves[:context._count]  # the ring itself: what the template must be the mean of
    np.testing.assert_allclose(context._template[:patient.WAVE_SAMPLES], recent[:, :patient.WAVE_SAMPLES].mean(axis=0),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(context._template[patient.WAVE_SAMPLES:], pre, rtol=0, atol=1e-12)


def test_a_beat_without_a_pre_r_segment_leaves_the_template_when_it_leaves_the_ring():
    """A Kaggle-like beat (pre-R segment unknown) makes the template's P wave unknown only while it is
    one of the last REFERENCE_BEATS normal beats: the P-wave features come back afterwards."""
    context = patient.PatientContext()
    t = np.linspace(0.0, 1.0, 187)
    beat, pre = np.exp(-((t - 0.05) / 0.02) ** 2), np.sin(np.linspace(0.0, 3.0, 36))
    p_at = patient.CONTEXT_NAMES.index("p_correlation")
    known = []
    for i in range(3 * patient.REFERENCE_BEATS):
        features = context.update(beat, np.full(36, np.nan) if i == 10 else pre, 0.8, 0.8, 0.8)
        known.append(bool(np.isfinite(features[p_at])))

    assert not any(known[11:11 + patient.REFERENCE_BEATS])  # the unknown segment is in the template's ring
    assert all(known[11 + patient.REFERENCE_BEATS:])  # it has left it
