"""CloudWatch Embedded Metric Format: the handler's per-patient counts, as CloudWatch extracts metrics from them.

The handler (``lambda_function.py``, self-contained: ``emf_line``) counts, per execution environment
and patient, the beats it classified, and prints one EMF line per patient at most every
``EMF_INTERVAL_S`` (env, default 60 s: CloudWatch's standard resolution), with these names; the
deploy's alarms (``deploy up --alarm-email``) watch the metrics. A line per patient per batch would
cost about one line per beat when a batch holds a hundred patients (~250 bytes a beat, more than the
compact beats lines themselves). The lines are the EMF specification's (AWS CloudWatch User Guide,
"Specification: Embedded metric format"; tests/contracts/test_contract_emf.py validates them against
its JSON schema) plus ``inv``, the invocation number that ties them to the invocation's summary line
(``hbcore.contracts.log_lines``): the results reader counts them as ours, never as predictions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeGuard

from hbcore.contracts.fields import integer, text
from hbcore.contracts.inference import CLASS_NAMES

VERSION = 1
NAMESPACE = "HeartbeatMonitor"
PATIENT_DIMENSION = "Patient"
BEATS_METRIC = "Beats"
V_BEATS_METRIC = "VBeats"
S_BEATS_METRIC = "SBeats"
ABNORMAL_BEATS_METRIC = "AbnormalBeats"
METRICS = (BEATS_METRIC, V_BEATS_METRIC, S_BEATS_METRIC, ABNORMAL_BEATS_METRIC)
UNIT = "Count"
V_CLASS = CLASS_NAMES.index("V")
S_CLASS = CLASS_NAMES.index("S")
NORMAL_CLASS = CLASS_NAMES.index("N")
EMF_INTERVAL_S = 60.0
# The metrics the handler also publishes per patient (env, comma-separated; default none). Every line
# carries the patient's counts as properties, but a metric per patient is a custom metric per patient
# (~$0.30 a month each): the fleet totals (one dimension set with no dimension) are the default, and
# ``deploy up --alarm-email`` adds VBeats per patient for its alarm.
PATIENT_METRICS_ENV = "EMF_PATIENT_METRICS"

_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class PatientMetrics(NamedTuple):
    """One EMF line: a patient's counts over an interval, stamped at its end."""

    timestamp_ms: int
    patient: str
    beats: int
    v_beats: int
    s_beats: int
    abnormal_beats: int
    inv: int | None = None


def counts_of(predicted: list[int]) -> tuple[int, int, int, int]:
    """(beats, V beats, S beats, abnormal beats) of predicted class indices; abnormal is every class but N."""
    return (len(predicted), predicted.count(V_CLASS), predicted.count(S_CLASS),
            len(predicted) - predicted.count(NORMAL_CLASS))


def directives(patient_metrics: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The line's metric directives: the fleet totals of every metric, then ``patient_metrics`` per patient."""
    found = [{"Namespace": NAMESPACE, "Dimensions": [[]],
              "Metrics": [{"Name": name, "Unit": UNIT} for name in METRICS]}]
    if patient_metrics:
        found.append({"Namespace": NAMESPACE, "Dimensions": [[PATIENT_DIMENSION]],
                      "Metrics": [{"Name": name, "Unit": UNIT} for name in patient_metrics]})
    return found


def encode_metrics(line: PatientMetrics, patient_metrics: Sequence[str] = ()) -> str:
    """The text of one EMF line (no newline), as the handler prints it."""
    return _to_json({
        "_aws": {"Timestamp": line.timestamp_ms, "CloudWatchMetrics": directives(patient_metrics)},
        PATIENT_DIMENSION: line.patient,
        BEATS_METRIC: line.beats, V_BEATS_METRIC: line.v_beats, S_BEATS_METRIC: line.s_beats,
        ABNORMAL_BEATS_METRIC: line.abnormal_beats,
        "inv": line.inv,
    })


def _directive_is_ours(metadata: Any) -> TypeGuard[dict[str, Any]]:
    if type(metadata) is not dict:
        return False
    found = metadata.get("CloudWatchMetrics")
    if type(found) is not list or not 1 <= len(found) <= 2 or any(type(item) is not dict for item in found):
        return False
    names = [tuple(metric.get("Name") if type(metric) is dict else None for metric in item.get("Metrics") or ())
             for item in found]
    if not all(item.get("Namespace") == NAMESPACE for item in found) or names[0] != METRICS:
        return False
    if found[0].get("Dimensions") != [[]]:
        return False
    return len(found) == 1 or (found[1].get("Dimensions") == [[PATIENT_DIMENSION]] and bool(names[1])
                               and set(names[1]) <= set(METRICS))


def decode_metrics(document: dict[str, Any]) -> PatientMetrics | None:
    """The EMF line of ours a decoded JSON object is, or None (another program's EMF, or not EMF)."""
    metadata = document.get("_aws")
    if not _directive_is_ours(metadata):
        return None
    timestamp_ms, patient = integer(metadata.get("Timestamp")), text(document.get(PATIENT_DIMENSION))
    counts = [integer(document.get(name)) for name in METRICS]
    inv = document.get("inv")
    if timestamp_ms is None or patient is None or (inv is not None and integer(inv) is None):
        return None
    beats, v_beats, s_beats, abnormal = counts
    if beats is None or v_beats is None or s_beats is None or abnormal is None or min(beats, v_beats, s_beats,
                                                                                       abnormal) < 0:
        return None
    return PatientMetrics(timestamp_ms, patient, beats, v_beats, s_beats, abnormal, inv)
