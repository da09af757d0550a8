"""hbcore.contracts.emf against the handler's EMF writer and CloudWatch's Embedded Metric Format schema.

The schema is the one the EMF specification publishes for validating documents (AWS CloudWatch User
Guide, "Specification: Embedded metric format", section "Embedded metric format example and JSON
schema"), written out here in the structure it gives; the target-member rules the specification
states in prose (every metric name a number on the root, every dimension name a string, no more
than 30 dimensions per set) are checked beside it.
"""

from __future__ import annotations

import json

import pytest

from hbcore.contracts import emf
from hbcore.stream.tally import ResultsStore

jsonschema = pytest.importorskip("jsonschema")

_NAME = {"type": "string", "pattern": "^(.*)$", "minLength": 1, "maxLength": 255}
_UNITS = ("Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|"
          "Gigabits|Terabits|Percent|Count|Bytes\\/Second|Kilobytes\\/Second|Megabytes\\/Second|Gigabytes\\/Second|"
          "Terabytes\\/Second|Bits\\/Second|Kilobits\\/Second|Megabits\\/Second|Gigabits\\/Second|"
          "Terabits\\/Second|Count\\/Second|None")
EMF_SCHEMA = {
    "type": "object",
    "title": "Root Node",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "title": "Metadata",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "title": "The Timestamp Schema"},
                "CloudWatchMetrics": {
                    "type": "array",
                    "title": "MetricDirectives",
                    "items": {
                        "type": "object",
                        "title": "MetricDirective",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": _NAME,
                            "Dimensions": {
                                "type": "array", "title": "The Dimensions Schema", "minItems": 1,
                                "items": {"type": "array", "title": "DimensionSet", "minItems": 0, "maxItems": 9,
                                          "items": _NAME},
                            },
                            "Metrics": {
                                "type": "array", "title": "MetricDefinitions",
                                "items": {
                                    "type": "object", "title": "MetricDefinition", "required": ["Name"],
                                    "properties": {"Name": _NAME,
                                                   "Unit": {"type": "string", "pattern": f"^({_UNITS})$"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def assert_valid_emf(text: str) -> dict:
    document = json.loads(text)
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            assert isinstance(value, (int, float)) and not isinstance(value, bool), metric
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(document[name], str) for name in dimension_set)
    return document


@pytest.fixture
def line() -> emf.PatientMetrics:
    return emf.PatientMetrics(1764331355123, "208", 120, 30, 4, 36, 17)


def test_the_contracts_emf_line_is_valid_emf_with_our_names(line):
    document = assert_valid_emf(emf.encode_metrics(line))

    (directive,) = document["_aws"]["CloudWatchMetrics"]  # fleet totals only: no metric per patient
    assert directive["Namespace"] == emf.NAMESPACE == "HeartbeatMonitor"
    assert directive["Dimensions"] == [[]] and document["Patient"] == "208"
    assert [metric["Name"] for metric in directive["Metrics"]] == ["Beats", "VBeats", "SBeats", "AbnormalBeats"]
    assert [document[name] for name in emf.METRICS] == [120, 30, 4, 36]


def test_a_metric_asked_for_per_patient_gets_the_patient_dimension_too(line):
    document = assert_valid_emf(emf.encode_metrics(line, (emf.V_BEATS_METRIC,)))

    fleet, per_patient = document["_aws"]["CloudWatchMetrics"]
    assert fleet["Dimensions"] == [[]] and len(fleet["Metrics"]) == len(emf.METRICS)
    assert per_patient["Dimensions"] == [[emf.PATIENT_DIMENSION]]
    assert [metric["Name"] for metric in per_patient["Metrics"]] == ["VBeats"]
    assert emf.decode_metrics(document) == line


def test_the_handlers_emf_line_is_the_contracts_byte_for_byte(handler, line):
    text = handler.emf_line(line.timestamp_ms, line.patient, [line.beats, line.v_beats, line.s_beats,
                                                              line.abnormal_beats], line.inv)

    assert text == emf.encode_metrics(line)
    assert emf.decode_metrics(json.loads(text)) == line
    per_patient = handler.emf_line(line.timestamp_ms, line.patient, [line.beats, line.v_beats, line.s_beats,
                                                                     line.abnormal_beats], line.inv, ("VBeats",))
    assert per_patient == emf.encode_metrics(line, ("VBeats",))
    assert (handler.EMF_NAMESPACE, handler.EMF_DIMENSION, handler.EMF_METRICS) == (
        emf.NAMESPACE, emf.PATIENT_DIMENSION, emf.METRICS)
    assert handler.EMF_VERSION == emf.VERSION


def test_the_handler_counts_v_s_and_abnormal_beats_per_patient(handler):
    counts = handler.Environment()
    for patient, pred in (("100", 0), ("100", 2), ("100", 1), ("201", 3), ("201", 0)):
        counts.count(patient, pred)

    lines = counts.emf_lines(now_s=1000.0, inv=3)

    decoded = {metrics.patient: metrics for metrics in map(emf.decode_metrics, map(json.loads, lines))}
    assert {patient: decoded[patient][2:6] for patient in decoded} == {"100": (3, 1, 1, 2), "201": (2, 0, 0, 1)}
    assert counts.emf_lines(now_s=1000.0 + emf.EMF_INTERVAL_S, inv=4) == []  # nothing counted since


def test_emf_lines_are_printed_at_once_then_held_until_the_interval_has_passed(handler):
    counts = handler.Environment()
    counts.count("100", 0)
    assert len(counts.emf_lines(now_s=1000.0, inv=1)) == 1  # the environment's first lines

    counts.count("100", 2)

    assert counts.emf_lines(now_s=1000.0 + emf.EMF_INTERVAL_S / 2, inv=2) == []
    assert len(counts.emf_lines(now_s=1000.0 + emf.EMF_INTERVAL_S, inv=3)) == 1


@pytest.mark.parametrize("document", [
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "Other", "Dimensions": [["Patient"]],
                                                     "Metrics": [{"Name": name} for name in emf.METRICS]}]},
     "Patient": "1", "Beats": 1, "VBeats": 0, "SBeats": 0, "AbnormalBeats": 0},
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}},
    {"_aws": "x"},
])
def test_another_programs_emf_is_not_ours(document):
    assert emf.decode_metrics(document) is None


def test_the_reader_counts_emf_lines_as_ours_never_as_predictions_or_noise(line):
    store = ResultsStore()

    store.ingest([(1764331355.0, "stream", emf.encode_metrics(line)), (1764331355.1, "stream", '{"_aws": 1}')])

    stats = store.snapshot(state="idle", queries=0, failed_queries=0, truncated_windows=0, read_until_s=None,
                           last_poll_s=None, errors=(), error_count=0).stats
    assert (stats.metric_lines, stats.predictions, stats.foreign_lines) == (1, 0, 1)


@pytest.mark.parametrize("broken", [
    lambda document: document["_aws"].pop("Timestamp"),
    lambda document: document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Beats"),
    lambda document: document["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[]),
])
def test_the_schema_check_refuses_a_document_that_breaks_the_specification(line, broken):
    document = json.loads(emf.encode_metrics(line))
    broken(document)

    with pytest.raises(jsonschema.ValidationError):
        assert_valid_emf(json.dumps(document))
