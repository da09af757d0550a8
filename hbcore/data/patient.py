"""Per-patient causal context: each beat described relative to the same patient's own past beats.

Patients differ more from one another than beat classes do within one patient: a supraventricular
beat is "premature" only against *that* patient's rhythm, a ventricular beat "wide and odd-shaped"
only against *that* patient's normal beat. So every beat gets context features measured against a
reference rhythm and a normal template that a monitor could hold for the patient while it runs:

- the reference RR is the median of the last :data:`REFERENCE_BEATS` RR intervals between two
  normal-looking beats; the template is the mean window (and pre-R segment) of the last
  :data:`REFERENCE_BEATS` normal-looking beats. Medians and a morphology gate keep the reference
  robust where ectopic beats dominate (record 232, where most beats are supraventricular);
- the rhythm's irregularity (atrial fibrillation: every beat "premature") tells an isolated
  premature beat from an irregular rhythm;
- "normal-looking" is judged without labels: not premature against the reference rhythm and
  correlating with the template (:func:`PatientContext.update`);
- causality: a beat's features read only the beats before it, its own window, pre-R segment and
  RR intervals (the next RR included, as the RR features always did). The state is updated with the
  beat only after its features are computed.

One class, :class:`PatientContext`, computes this; the offline dataset build
(:mod:`hbcore.data.dataset`) runs it over each record in time order, and the stream records carry
the result, so offline and streamed features are the same numbers. :func:`normal_template` gives the
template a patient's monitor held at a point in time (the Misclassified page draws it).
"""

from __future__ import annotations

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
# them. Where premature beats outnumber normal ones (record 232: three S beats to one N) the
# normal-looking reference follows the ectopic rhythm; an upper percentile stays near the sinus
# rhythm (1.14 x the normal beats' median RR there, where the median of all intervals is 0.45 x).
SLOW_REFERENCE_PERCENTILE = 85
# Beats accepted without the morphology gate while the template forms (the patient's first beats).
WARMUP_BEATS = 8
# After this many beats in a row none of which looked normal, the template is formed again: the
# patient's normal beat has changed (another lead position, a rhythm change).
RESET_AFTER_BEATS = 64
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
    "rr_irregularity",   # median |log ratio| of successive RR intervals over the last REFERENCE_BEATS
    "wave_correlation",  # Pearson correlation of the window's first WAVE_SAMPLES with the template's
    "wave_rms",          # RMS difference from the template over the same samples
    "qrs_correlation",   # correlation over the QRS region
    "qrs_width_ratio",   # samples of the QRS region above half its deviation, beat / template
    "qrs_depth",         # lowest value after the R peak minus the template's (S wave)
    "p_correlation",     # correlation of the pre-R segment before the QRS (the P wave) with the template's
    "p_energy_ratio",    # log of its standard deviation over the template's
    "warmup",            # share of REFERENCE_BEATS normal-looking beats seen (0 = no template yet)
)
N_CONTEXT = len(CONTEXT_NAMES)
# The first ones are ratios of RR intervals (the model reads their logarithm).
RR_RATIOS = 5
# Bump when the features change: the dataset cache key includes it.
CONTEXT_VERSION = 3


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 1e-12 else 0.0


def _qrs_width(qrs: np.ndarray) -> float:
    deviation = np.abs(qrs - np.median(qrs))
    peak = float(deviation.max())
    return float((deviation > 0.5 * peak).sum()) if peak > 0 else 0.0


class PatientContext:
    """The causal state of one patient's monitor: fed beats in stream order, it describes each one.

    Parameters are module constants; one instance per patient (record). :meth:`update` returns the
    context features of a beat (:data:`CONTEXT_NAMES`) from the state before it, then learns from it.
    """

    def __init__(self) -> None:
        self._rr: deque[float] = deque(maxlen=REFERENCE_BEATS)  # normal-to-normal RR intervals
        self._rr_any: deque[float] = deque(maxlen=REFERENCE_BEATS)  # every RR interval
        self._changes: deque[float] = deque(maxlen=REFERENCE_BEATS)  # |log| of successive RR ratios
        self._waves: deque[np.ndarray] = deque(maxlen=REFERENCE_BEATS)
        self._pres: deque[np.ndarray] = deque(maxlen=REFERENCE_BEATS)
        self._previous_normal = False
        self._last_rr_known = False
        self._abnormal_run = 0

    def reference_rr(self) -> float:
        """The patient's reference RR interval in seconds (NaN before any RR interval)."""
        source = self._rr if len(self._rr) >= 3 else self._rr_any
        return float(np.median(source)) if source else float("nan")

    def slow_reference_rr(self) -> float:
        """The slow reference RR (:data:`SLOW_REFERENCE_PERCENTILE`), robust to a dominant ectopic rhythm."""
        return float(np.percentile(self._rr_any, SLOW_REFERENCE_PERCENTILE)) if self._rr_any else float("nan")

    def template(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The mean window (187) and pre-R segment of the normal-looking beats, or None before any."""
        if not self._waves:
            return None
        return np.mean(self._waves, axis=0), np.mean(self._pres, axis=0)

    def update(self, beat: np.ndarray, pre: np.ndarray, rr_prev: float, rr_next: float,
               rr_local: float) -> np.ndarray:
        """The context features of this beat (float64, NaN where unknown), then the state learns it.

        ``beat`` is its window (187 values), ``pre`` its pre-R segment (NaN when unknown), RR
        intervals in seconds (NaN when unknown).
        """
        beat = np.asarray(beat, dtype=np.float64)
        pre = np.asarray(pre, dtype=np.float64)
        reference = self.reference_rr()
        values = np.full(N_CONTEXT, np.nan)
        values[0:3] = np.array([rr_prev, rr_next, rr_local], dtype=np.float64) / reference
        previous_rr = self._rr_any[-1] if self._rr_any and self._last_rr_known else float("nan")
        values[3] = rr_prev / previous_rr
        values[4] = rr_prev / self.slow_reference_rr()
        values[5] = float(np.median(self._changes)) if self._changes else float("nan")
        template = self.template()
        wave_correlation = float("nan")
        if template is not None:
            wave_t, pre_t = template
            wave, reference_wave = beat[:WAVE_SAMPLES], wave_t[:WAVE_SAMPLES]
            wave_correlation = _correlation(wave, reference_wave)
            values[6] = wave_correlation
            values[7] = float(np.sqrt(np.mean((wave - reference_wave) ** 2)))
            values[10] = float(beat[:QRS_POST_SAMPLES].min() - wave_t[:QRS_POST_SAMPLES].min())
            if np.isfinite(pre).all() and np.isfinite(pre_t).all():
                qrs = np.concatenate([pre[-QRS_PRE_SAMPLES:], beat[:QRS_POST_SAMPLES]])
                qrs_t = np.concatenate([pre_t[-QRS_PRE_SAMPLES:], wave_t[:QRS_POST_SAMPLES]])
                values[8] = _correlation(qrs, qrs_t)
                width_t = _qrs_width(qrs_t)
                values[9] = _qrs_width(qrs) / width_t if width_t > 0 else np.nan
                p, p_t = pre[:-QRS_PRE_SAMPLES], pre_t[:-QRS_PRE_SAMPLES]
                values[11] = _correlation(p, p_t)
                values[12] = float(np.log((p.std() + 1e-3) / (p_t.std() + 1e-3)))
        values[13] = len(self._waves) / REFERENCE_BEATS
        self._learn(beat, pre, rr_prev, reference, wave_correlation)
        return values

    def _learn(self, beat: np.ndarray, pre: np.ndarray, rr_prev: float, reference: float,
               wave_correlation: float) -> None:
        premature = bool(np.isfinite(rr_prev) and np.isfinite(reference) and rr_prev < PREMATURE_RATIO * reference)
        warming = len(self._waves) < WARMUP_BEATS
        looks_normal = not premature and (warming or wave_correlation >= TEMPLATE_MIN_CORRELATION)
        if np.isfinite(rr_prev):
            if self._rr_any and self._last_rr_known:
                self._changes.append(abs(float(np.log(rr_prev / self._rr_any[-1]))))
            self._rr_any.append(float(rr_prev))
        self._last_rr_known = bool(np.isfinite(rr_prev))
        if looks_normal:
            if self._previous_normal and np.isfinite(rr_prev):
                self._rr.append(float(rr_prev))
            self._waves.append(beat)
            self._pres.append(pre)
            self._abnormal_run = 0
        else:
            self._abnormal_run += 1
            if self._abnormal_run >= RESET_AFTER_BEATS:
                self._waves.clear()
                self._pres.clear()
                self._rr.clear()
                self._abnormal_run = 0
        self._previous_normal = looks_normal


def record_context(X: np.ndarray, pre: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """Context features ``(n, N_CONTEXT)`` float32 of one patient's beats, given in time order.

    ``rr`` is ``(n, 3)``: previous, next and local RR in seconds. Exactly what a
    :class:`PatientContext` fed the same beats one by one returns.
    """
    context = PatientContext()
    out = np.empty((len(X), N_CONTEXT), dtype=np.float32)
    for i in range(len(X)):
        out[i] = context.update(X[i], pre[i], float(rr[i, 0]), float(rr[i, 1]), float(rr[i, 2]))
    return out


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
