"""Per-patient causal context: each beat described relative to the same patient's own past beats.

Patients differ more from one another than beat classes do within one patient: a supraventricular
beat is "premature" only against *that* patient's rhythm, a ventricular beat "wide and odd-shaped"
only against *that* patient's normal beat. So every beat gets context features measured against a
reference rhythm and a normal template that a monitor could hold for the patient while it runs:

- the reference RR is the median of the last :data:`REFERENCE_BEATS` RR intervals between two
  normal-looking beats; the template is the mean window (and pre-R segment) of the last
  :data:`REFERENCE_BEATS` normal-looking beats. Medians and a morphology gate keep the reference
  robust to isolated ectopic beats; the slow reference (:data:`SLOW_REFERENCE_PERCENTILE`) to runs
  of them, as long as they are fewer than about that share of the recent intervals; the long
  reference (the median of the last :data:`LONG_REFERENCE_BEATS` intervals) where ectopic beats
  dominate for longer than that;
- the rhythm's irregularity (atrial fibrillation: every beat "premature") tells an isolated
  premature beat from an irregular rhythm;
- the beat against the beat just before it (correlation, RMS): the beats of a ventricular run
  resemble one another and not the template, while the run's regular RR looks normal;
- "normal-looking" is judged without labels: not premature against the reference rhythm and
  correlating with the template (:func:`PatientContext.update`);
- causality: a beat's features read only the beats before it, its own window, pre-R segment and
  RR intervals (the next RR included, as the RR features always did). The state is updated with the
  beat only after its features are computed.

One class, :class:`PatientContext`, computes this, in O(:data:`REFERENCE_BEATS`) per beat (sorted
windows of recent RR intervals, a ring of recent normal-looking beats); the offline dataset build
(:mod:`hbcore.data.dataset`) runs the same steps over each record in time order
(:func:`record_context`: the template from running sums, the template and previous-beat comparisons
in one batch per record; the 48 MIT-BIH records in about 3 s where a numpy call per value took
0.6-0.9 s a record), and the stream records carry the result, so offline and streamed features are
the same numbers. :func:`normal_template` gives the template a patient's monitor held at a point in
time (the Misclassified page draws it).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hbcore.data.dataset import BeatSet

# The RR columns of a BeatSet's metadata a beat's context reads: previous, next and local mean RR (s).
RR_COLUMNS: tuple[str, ...] = ("rr_prev_s", "rr_next_s", "rr_local_s")
# Normal-looking beats (and RR intervals) the reference rhythm and the template are taken over.
REFERENCE_BEATS = 32
# A beat counts toward the reference only if its RR interval is at least this share of the reference
# (not premature) and its window correlates with the template at least this much.
PREMATURE_RATIO = 0.85
TEMPLATE_MIN_CORRELATION = 0.8
# The slow reference: this percentile of the last REFERENCE_BEATS RR intervals, whatever beats end
# them. Where premature beats outnumber normal ones the normal-looking reference follows the ectopic
# rhythm; an upper percentile stays near the sinus rhythm. Chosen among 50, 70 and 85 by the
# leave-records-out cross-validation inside DS1 (hbcore.model.selection.select_slow_percentile, with
# the chosen inter-patient estimator, on context version 6: pooled macro-F1 0.5730 / 0.5756 / 0.5753,
# differences within the folds' noise). An earlier 85 had been picked by looking at a DS2 record: withdrawn.
SLOW_REFERENCE_PERCENTILE = 70
# The long reference: the median of the last LONG_REFERENCE_BEATS RR intervals, whatever beats end
# them (about 3-5 minutes, de Chazal 2004's "average RR" horizon). Over a few minutes a patient's
# ectopic beats and the pauses that follow them balance around the sinus rhythm better than over 32
# beats. Horizon chosen among 64, 128, 256 and 512 by the leave-records-out cross-validation inside
# DS1 (hbcore.model.selection.select_long_horizon, which `python -m hbcore select-model` runs, with the
# chosen inter-patient estimator, on context version 6): pooled macro-F1 0.5381 / 0.5493 / 0.5758 /
# 0.5669. A first prototype sweep, not in the repository, had also tried the percentiles 80, 90 and 95
# of these intervals instead of their median (0.523-0.540 against 0.567) and no long reference (0.531).
# DS2 played no part.
LONG_REFERENCE_BEATS = 256
# Beats accepted without the morphology gate while the template forms (the patient's first beats).
WARMUP_BEATS = 8
# After this many beats in a row none of which looked normal, the template is formed again: the
# patient's normal beat has changed (another lead position, a rhythm change).
RESET_AFTER_BEATS = 64
# Samples of a beat's window and of its pre-R segment (hbcore.data.dataset, which imports this module).
WINDOW_SAMPLES = 187
PRE_R_SAMPLES = 36
# Samples of the window (125 Hz from the R peak) compared with the template: QRS, ST and most of T.
WAVE_SAMPLES = 60
# The QRS region: the last samples of the pre-R segment and the first of the window.
QRS_PRE_SAMPLES = 8
QRS_POST_SAMPLES = 15
CONTEXT_NAMES: tuple[str, ...] = (
    "rr_prev_ratio",     # previous RR / reference RR
    "rr_next_ratio",     # next RR / reference RR
    "rr_local_ratio",    # local mean RR / reference RR
    "rr_prev_change",    # previous RR / the RR before it
    "rr_prev_slow_ratio",  # previous RR / the slow reference (SLOW_REFERENCE_PERCENTILE of the last RR intervals)
    "rr_prev_long_ratio",  # previous RR / the long reference (median of the last LONG_REFERENCE_BEATS RR intervals)
    "rr_next_long_ratio",  # next RR / the long reference
    "rr_irregularity",   # median |log ratio| of successive RR intervals over the last REFERENCE_BEATS
    "wave_correlation",  # Pearson correlation of the window's first WAVE_SAMPLES with the template's
    "wave_rms",          # RMS difference from the template over the same samples
    "qrs_correlation",   # correlation over the QRS region
    "qrs_width_ratio",   # samples of the QRS region above half its deviation, beat / template
    "qrs_depth",         # lowest value after the R peak minus the template's (S wave)
    "p_correlation",     # correlation of the pre-R segment before the QRS (the P wave) with the template's
    "p_energy_ratio",    # log of its standard deviation over the template's
    "warmup",            # share of REFERENCE_BEATS normal-looking beats seen (0 = no template yet)
    "prev_correlation",  # Pearson correlation of the window's first WAVE_SAMPLES with the previous beat's
    "prev_rms",          # RMS difference from the previous beat over the same samples
)
N_CONTEXT = len(CONTEXT_NAMES)
# The first ones are ratios of RR intervals (the model reads their logarithm).
RR_RATIOS = 7
# Where each feature sits in a row of CONTEXT_NAMES.
_AT = {name: i for i, name in enumerate(CONTEXT_NAMES)}
# The beat against the beat just before it (prev_correlation, prev_rms): the beats of a ventricular
# run resemble one another and not the template, and a fast regular run looks "regular" to the RR
# ratios. Kept by the leave-records-out cross-validation inside DS1 (hbcore.model.selection.
# select_previous_beat, which `python -m hbcore select-model` runs, with the chosen inter-patient
# estimator): pooled macro-F1 0.5758 with both values, 0.5669 without. A prototype sweep, not in the
# repository, had also added the previous beat's template correlation: 0.505 (F lost). DS2 played no part.
# Bump when the features change: the dataset cache key includes it.
CONTEXT_VERSION = 6


def _centred(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row minus its mean, and the row's sum of squares after centring."""
    centred = rows - rows.sum(axis=1, keepdims=True) / rows.shape[1]  # the mean, without np.mean's overhead
    return centred, (centred * centred).sum(axis=1)


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (0 where one is flat)."""
    a, a_squares = _centred(a)
    b, b_squares = _centred(b)
    denominator = np.sqrt(a_squares * b_squares)
    return np.divide((a * b).sum(axis=1), denominator, out=np.zeros(len(a)), where=denominator > 1e-12)


def _qrs_widths(qrs: np.ndarray) -> np.ndarray:
    """Samples of each row above half its largest deviation from its median (0 for a flat row)."""
    deviation = np.abs(qrs - np.median(qrs, axis=1, keepdims=True))
    peak = deviation.max(axis=1, keepdims=True)
    return np.where(peak[:, 0] > 0, (deviation > 0.5 * peak).sum(axis=1), 0).astype(np.float64)


class _SortedWindow:
    """The last ``size`` values in arrival order and sorted: median and percentile in O(size) list
    moves (C memmoves of at most 32 pointers) instead of a numpy call per beat."""

    def __init__(self, size: int) -> None:
        self.recent: deque[float] = deque(maxlen=size)
        self.ordered: list[float] = []

    def append(self, value: float) -> None:
        if len(self.recent) == self.recent.maxlen:
            del self.ordered[bisect.bisect_left(self.ordered, self.recent[0])]
        self.recent.append(value)
        bisect.insort(self.ordered, value)

    def clear(self) -> None:
        self.recent.clear()
        self.ordered.clear()

    def __len__(self) -> int:
        return len(self.ordered)

    def percentile(self, q: float) -> float:
        """numpy's default (linear) percentile of the values; NaN when empty."""
        values = self.ordered
        if not values:
            return float("nan")
        position = (len(values) - 1) * q / 100.0
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (position - low)

    def median(self) -> float:
        values, n = self.ordered, len(self.ordered)
        if not n:
            return float("nan")
        return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0


# A template row: the window's first WAVE_SAMPLES samples (all the features read of it), then the pre-R segment.
_TEMPLATE_WIDTH = WAVE_SAMPLES + PRE_R_SAMPLES


class PatientContext:
    """The causal state of one patient's monitor: fed beats in stream order, it describes each one.

    One instance per patient (record). :meth:`update` returns the context features of a beat
    (:data:`CONTEXT_NAMES`) from the state before it, then learns from it; :func:`record_context`
    runs the same steps over a whole record and computes the template comparisons in one batch, so
    the two give the same numbers. Each beat costs O(:data:`REFERENCE_BEATS`): sorted windows of the
    recent RR intervals, a ring of the recent normal-looking beats whose mean is the template.
    ``slow_percentile`` is the slow reference's percentile (default :data:`SLOW_REFERENCE_PERCENTILE`),
    ``long_beats`` the long reference's horizon (default :data:`LONG_REFERENCE_BEATS`): other values
    only for the cross-validation that chooses them (:mod:`hbcore.model.selection`).
    """

    def __init__(self, slow_percentile: float = SLOW_REFERENCE_PERCENTILE,
                 long_beats: int = LONG_REFERENCE_BEATS) -> None:
        self.slow_percentile = slow_percentile
        self._rr = _SortedWindow(REFERENCE_BEATS)  # normal-to-normal RR intervals
        self._rr_any = _SortedWindow(REFERENCE_BEATS)  # every RR interval
        self._rr_long = _SortedWindow(long_beats)  # every RR interval, over the long horizon
        self._changes = _SortedWindow(REFERENCE_BEATS)  # |log| of successive RR ratios
        self._waves = np.zeros((REFERENCE_BEATS, WINDOW_SAMPLES))  # ring of normal-looking windows
        self._rows = np.zeros((REFERENCE_BEATS, _TEMPLATE_WIDTH))  # the same beats' template rows
        self._sum = np.zeros(_TEMPLATE_WIDTH)  # the rows summed
        self._count = 0  # windows in the ring
        self._next = 0  # the ring slot the next normal-looking beat takes
        self._template: np.ndarray | None = None  # _TEMPLATE_WIDTH values, None before any normal beat
        self._template_centred: tuple[np.ndarray, float] | None = None  # its wave part centred, sum of squares
        self._last_rr = float("nan")
        self._previous_normal = False
        self._abnormal_run = 0
        # the previous beat's first WAVE_SAMPLES: raw, centred, sum of squares (one row each)
        self._previous_wave: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def reference_rr(self) -> float:
        """The patient's reference RR interval in seconds (NaN before any RR interval)."""
        return (self._rr if len(self._rr) >= 3 else self._rr_any).median()

    def slow_reference_rr(self) -> float:
        """The slow reference RR (``slow_percentile``), robust to a dominant ectopic rhythm."""
        return self._rr_any.percentile(self.slow_percentile)

    def long_reference_rr(self) -> float:
        """The long reference RR: the median of the last ``long_beats`` RR intervals."""
        return self._rr_long.median()

    def template(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The mean window (187) and pre-R segment of the normal-looking beats, or None before any."""
        if not self._count:
            return None
        return self._waves[:self._count].mean(axis=0), self._rows[:self._count, WAVE_SAMPLES:].mean(axis=0)

    def update(self, beat: np.ndarray, pre: np.ndarray, rr_prev: float, rr_next: float,
               rr_local: float) -> np.ndarray:
        """The context features of this beat (float64, NaN where unknown), then the state learns it.

        ``beat`` is its window (187 values), ``pre`` its pre-R segment (NaN when unknown), RR
        intervals in seconds (NaN when unknown).
        """
        beat = np.asarray(beat, dtype=np.float64)[np.newaxis]
        pre = np.asarray(pre, dtype=np.float64)[np.newaxis]
        wave, squares = _centred(beat[:, :WAVE_SAMPLES])
        values = np.full((1, N_CONTEXT), np.nan)
        templates = np.full((1, _TEMPLATE_WIDTH), np.nan)
        self._step(values[0], templates[0], beat[0], pre[0], wave[0], float(squares[0]), rr_prev, rr_next, rr_local)
        _compare(values, templates, beat, pre)
        if self._previous_wave is not None:
            _compare_previous(values, beat[:, :WAVE_SAMPLES], wave, squares, *self._previous_wave)
        self._previous_wave = (beat[:, :WAVE_SAMPLES].copy(), wave, squares)
        return values[0]

    def _step(self, values: np.ndarray, template_out: np.ndarray, beat: np.ndarray, pre: np.ndarray,
              wave: np.ndarray, squares: float, rr_prev: float, rr_next: float, rr_local: float) -> None:
        """Fill the features read off the state (RR, wave correlation, warm-up) and the template
        the beat is compared with, then learn the beat. ``wave`` is its first WAVE_SAMPLES centred."""
        reference = self.reference_rr()
        values[0], values[1], values[2] = rr_prev / reference, rr_next / reference, rr_local / reference
        values[3] = rr_prev / self._last_rr
        values[4] = rr_prev / self.slow_reference_rr()
        long_reference = self.long_reference_rr()
        values[_AT["rr_prev_long_ratio"]] = rr_prev / long_reference
        values[_AT["rr_next_long_ratio"]] = rr_next / long_reference
        values[_AT["rr_irregularity"]] = self._changes.median()
        wave_correlation = float("nan")
        if self._template_centred is not None:
            centred, template_squares = self._template_centred
            denominator = float(np.sqrt(squares * template_squares))
            wave_correlation = float((wave * centred).sum()) / denominator if denominator > 1e-12 else 0.0
            values[_AT["wave_correlation"]] = wave_correlation
            template_out[:] = self._template
        values[_AT["warmup"]] = self._count / REFERENCE_BEATS
        self._learn(beat, pre, rr_prev, reference, wave_correlation)

    def _learn(self, beat: np.ndarray, pre: np.ndarray, rr_prev: float, reference: float,
               wave_correlation: float) -> None:
        premature = rr_prev < PREMATURE_RATIO * reference  # False when either is NaN
        warming = self._count < WARMUP_BEATS
        looks_normal = not premature and (warming or wave_correlation >= TEMPLATE_MIN_CORRELATION)
        if rr_prev == rr_prev:  # not NaN
            if self._last_rr == self._last_rr:
                self._changes.append(abs(math.log(rr_prev / self._last_rr)))
            self._rr_any.append(float(rr_prev))
            self._rr_long.append(float(rr_prev))
        self._last_rr = float(rr_prev)
        if looks_normal:
            if self._previous_normal and rr_prev == rr_prev:
                self._rr.append(float(rr_prev))
            self._remember(beat, pre)
            self._abnormal_run = 0
        else:
            self._abnormal_run += 1
            if self._abnormal_run >= RESET_AFTER_BEATS:
                self._count = self._next = 0
                self._sum[:] = 0.0
                self._template = self._template_centred = None
                self._rr.clear()
                self._abnormal_run = 0
        self._previous_normal = looks_normal

    def _remember(self, beat: np.ndarray, pre: np.ndarray) -> None:
        """Put a normal-looking beat in the ring; the template is the ring's mean.

        The mean comes from a running sum of the rows (the slot's old row out, the new one in): a mean
        of the whole ring per normal beat was a third of a record's context time. The sum is taken
        again exactly each time the ring wraps (rounding does not build up) and while it is not finite
        (a NaN pre-R segment, as of Kaggle rows, leaves the sum when its row leaves the ring).
        """
        slot = self._next
        row = self._rows[slot]
        if self._count == REFERENCE_BEATS:
            self._sum -= row
        self._waves[slot] = beat
        row[:WAVE_SAMPLES], row[WAVE_SAMPLES:] = beat[:WAVE_SAMPLES], pre
        self._sum += row
        self._next = (slot + 1) % REFERENCE_BEATS
        self._count = min(self._count + 1, REFERENCE_BEATS)
        if self._next == 0 or not np.isfinite(self._sum).all():
            self._sum = self._rows[:self._count].sum(axis=0)
        template = self._sum / self._count
        centred, squares = _centred(template[np.newaxis, :WAVE_SAMPLES])
        self._template, self._template_centred = template, (centred[0], float(squares[0]))


def _compare(values: np.ndarray, templates: np.ndarray, beats: np.ndarray, pre: np.ndarray) -> None:
    """The template comparisons of :data:`CONTEXT_NAMES` (``wave_rms`` to ``p_energy_ratio``) of each
    row, in place (NaN without template)."""
    wave_t, pre_t = templates[:, :WAVE_SAMPLES], templates[:, WAVE_SAMPLES:]
    known = np.isfinite(wave_t).all(axis=1)
    if not known.any():
        return
    rows = np.flatnonzero(known)
    wave, wave_t, pre_t, pre = beats[rows, :WAVE_SAMPLES], wave_t[rows], pre_t[rows], pre[rows]
    values[rows, _AT["wave_rms"]] = np.sqrt(np.mean((wave - wave_t) ** 2, axis=1))
    values[rows, _AT["qrs_depth"]] = wave[:, :QRS_POST_SAMPLES].min(axis=1) - wave_t[:, :QRS_POST_SAMPLES].min(axis=1)
    segments = np.isfinite(pre).all(axis=1) & np.isfinite(pre_t).all(axis=1)
    if not segments.any():
        return
    rows, pick = rows[segments], np.flatnonzero(segments)
    wave, wave_t, pre_t, pre = wave[pick], wave_t[pick], pre_t[pick], pre[pick]
    qrs = np.hstack([pre[:, -QRS_PRE_SAMPLES:], wave[:, :QRS_POST_SAMPLES]])
    qrs_t = np.hstack([pre_t[:, -QRS_PRE_SAMPLES:], wave_t[:, :QRS_POST_SAMPLES]])
    values[rows, _AT["qrs_correlation"]] = _correlations(qrs, qrs_t)
    width, width_t = _qrs_widths(qrs), _qrs_widths(qrs_t)
    values[rows, _AT["qrs_width_ratio"]] = np.divide(width, width_t, out=np.full(len(rows), np.nan), where=width_t > 0)
    p, p_t = pre[:, :-QRS_PRE_SAMPLES], pre_t[:, :-QRS_PRE_SAMPLES]
    values[rows, _AT["p_correlation"]] = _correlations(p, p_t)
    values[rows, _AT["p_energy_ratio"]] = np.log((p.std(axis=1) + 1e-3) / (p_t.std(axis=1) + 1e-3))


def _compare_previous(values: np.ndarray, raw: np.ndarray, centred: np.ndarray, squares: np.ndarray,
                      previous_raw: np.ndarray, previous_centred: np.ndarray, previous_squares: np.ndarray) -> None:
    """``prev_correlation`` and ``prev_rms`` of each row against the row of the beat before it, in place.

    ``raw`` is the beats' first WAVE_SAMPLES, ``centred`` and ``squares`` as :func:`_centred` gives
    them; the ``previous_`` arrays the same of each one's previous beat.
    """
    denominator = np.sqrt(squares * previous_squares)
    values[:, _AT["prev_correlation"]] = np.divide((centred * previous_centred).sum(axis=1), denominator,
                                                   out=np.zeros(len(values)), where=denominator > 1e-12)
    values[:, _AT["prev_rms"]] = np.sqrt(np.mean((raw - previous_raw) ** 2, axis=1))


def record_context(X: np.ndarray, pre: np.ndarray, rr: np.ndarray,
                   slow_percentile: float = SLOW_REFERENCE_PERCENTILE,
                   long_beats: int = LONG_REFERENCE_BEATS) -> np.ndarray:
    """Context features ``(n, N_CONTEXT)`` float32 of one patient's beats, given in time order.

    ``rr`` is ``(n, 3)``: previous, next and local RR in seconds. Exactly what a
    :class:`PatientContext` fed the same beats one by one returns (``slow_percentile`` and
    ``long_beats`` as there): the same steps, with the template comparisons, row-wise, in one batch.
    """
    context = PatientContext(slow_percentile, long_beats)
    beats = np.asarray(X, dtype=np.float64)
    segments = np.asarray(pre, dtype=np.float64)
    waves, squares = _centred(beats[:, :WAVE_SAMPLES])
    values = np.full((len(beats), N_CONTEXT), np.nan)
    templates = np.full((len(beats), _TEMPLATE_WIDTH), np.nan)
    intervals = np.asarray(rr, dtype=np.float64).tolist()
    for i, (rr_prev, rr_next, rr_local) in enumerate(intervals):
        context._step(values[i], templates[i], beats[i], segments[i], waves[i], float(squares[i]),
                      rr_prev, rr_next, rr_local)
    _compare(values, templates, beats, segments)
    raw = beats[:, :WAVE_SAMPLES]
    _compare_previous(values[1:], raw[1:], waves[1:], squares[1:], raw[:-1], waves[:-1], squares[:-1])
    return values.astype(np.float32)


def normal_template(beats: BeatSet, record: str, upto_sample: int | None = None) -> np.ndarray | None:
    """The patient's normal-looking template window (187 values) from the beats before ``upto_sample``.

    What the patient's monitor held just before that beat (the whole record's beats when None);
    None when the record has no beat before it in ``beats``.
    """
    meta = beats.meta
    rows = np.flatnonzero(meta["record"].astype(str).to_numpy() == str(record))
    samples = meta["sample"].to_numpy()[rows]
    if upto_sample is not None:
        rows, samples = rows[samples < upto_sample], samples[samples < upto_sample]
    rows = rows[np.argsort(samples, kind="stable")]
    context = PatientContext()
    rr = meta[list(RR_COLUMNS)].to_numpy(dtype=np.float64)
    for row in rows:
        context.update(beats.X[row], beats.pre[row], *rr[row])
    template = context.template()
    return None if template is None else template[0].astype(np.float32)
