"""What goes into the rhythm detector (one beat) and what comes out (one event), and the event kinds.

The clinical definition of every kind is in docs/alarms.md; the thresholds are constants in
:mod:`hbcore.rhythm.detector`. An event is reported when it starts (``ongoing=True``) for the kinds
that last (runs, bigeminy, AF, rate alarms) and again, under the same ``event_id``, with a later
offset while it lasts and with ``ongoing=False`` when it ends; couplets and pauses are reported
once, complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["high", "medium", "low"]

KINDS: tuple[str, ...] = (
    "v_couplet",     # exactly 2 consecutive ventricular ectopic beats (V or F, as EC57's rxr counts them)
    "v_run",         # >= 3 consecutive ventricular ectopic beats (V or F) at <= 100 bpm (idioventricular)
    "vt",            # >= 3 consecutive ventricular ectopic beats (V or F) above 100 bpm
    "v_bigeminy",    # ventricular beats alternating with one other beat
    "v_trigeminy",   # a ventricular beat after every two other beats
    "sv_couplet",    # exactly 2 consecutive supraventricular ectopic beats
    "sv_run",        # >= 3 consecutive supraventricular ectopic beats at <= 100 bpm
    "svta",          # >= 3 consecutive supraventricular ectopic beats above 100 bpm
    "af",            # atrial fibrillation: irregularly irregular RR intervals
    "bradycardia",   # sustained heart rate below the low limit
    "tachycardia",   # sustained heart rate above the high limit
    "pause",         # one RR interval above the pause limit
)
SEVERITY: dict[str, Severity] = {
    "v_couplet": "low",
    "v_run": "medium",
    "vt": "high",
    "v_bigeminy": "low",
    "v_trigeminy": "low",
    "sv_couplet": "low",
    "sv_run": "low",
    "svta": "medium",
    "af": "medium",
    "bradycardia": "medium",
    "tachycardia": "medium",
    "pause": "high",
}
BEAT_LABELS: tuple[str, ...] = ("N", "S", "V", "F", "Q")  # the AAMI classes (hbcore.data.classes.CLASS_NAMES)


@dataclass(frozen=True)
class BeatObs:
    """One beat as the detector sees it: when, what the classifier (or the annotator) called it.

    ``rr_prev_s`` is the interval from the previous beat; when None the detector takes it from the
    previous beat's ``t_s``. ``beat_id`` names the beat in events (the stream's beat id); when None
    the detector uses the beat's position in the patient's stream ("0", "1", ...).
    """

    t_s: float
    label: str  # "N", "S", "V", "F", "Q"
    rr_prev_s: float | None = None
    beat_id: str | None = None
    prob: float | None = None

    def __post_init__(self) -> None:
        if self.label not in BEAT_LABELS:
            raise ValueError(f"beat at {self.t_s} s: label {self.label!r}, expected one of {', '.join(BEAT_LABELS)}")


@dataclass(frozen=True)
class RhythmEvent:
    """One rhythm event of one patient; a later report with the same ``event_id`` supersedes it.

    ``onset_s``/``offset_s`` are stream times (the first and last beat involved, or for AF the
    estimated start and end of the irregular stretch); ``beat_ids`` are the beats involved, in order.
    """

    event_id: str
    patient: str
    kind: str
    onset_s: float
    offset_s: float
    beat_ids: tuple[str, ...]
    severity: Severity
    ongoing: bool

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s
