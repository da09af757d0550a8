"""Chart specifications: the data they carry, not how they look."""

import json

import numpy as np
import pandas as pd
import pytest

from hbcore.app import charts
from hbcore.data.classes import CLASS_NAMES


def chart_rows(chart) -> list[dict]:
    """The rows of the (single) dataset embedded in a chart's Vega-Lite spec."""
    datasets = chart.to_dict()["datasets"]
    assert len(datasets) == 1
    return next(iter(datasets.values()))


def test_confusion_frame_has_row_shares():
    frame = charts.confusion_frame([[8, 2, 0, 0, 0], [1, 3, 0, 0, 0], [0] * 5, [0] * 5, [0, 0, 0, 0, 5]])
    cell = frame.set_index(["true", "predicted"])
    assert cell.loc[("N", "N"), "count"] == 8 and cell.loc[("N", "N"), "share"] == pytest.approx(0.8)
    assert cell.loc[("S", "N"), "share"] == pytest.approx(0.25)
    assert cell.loc[("V", "V"), "share"] == 0.0  # a class with no beats: no division by zero


def test_confusion_frame_of_four_classes_names_n_s_v_f():
    frame = charts.confusion_frame(np.eye(4))
    assert sorted(set(frame["true"])) == sorted(CLASS_NAMES[:4])


def test_confusion_frame_refuses_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        charts.confusion_frame(np.ones((5, 4)))


def test_confusion_heatmap_labels_counts_or_shares():
    matrix = np.diag([90, 5, 4, 1, 0])
    counts = {(r["true"], r["predicted"]): r["label"] for r in chart_rows(charts.confusion_heatmap(matrix))}
    shares = {(r["true"], r["predicted"]): r["label"]
              for r in chart_rows(charts.confusion_heatmap(matrix, normalise=True))}
    assert counts[("N", "N")] == "90" and counts[("N", "S")] == ""
    assert shares[("N", "N")] == "100%"


def test_class_bars_list_every_class_in_order():
    rows = chart_rows(charts.class_bars({"N": 10, "V": 2}, title="beats per class", axis_title="beats"))
    assert [(r["class"], r["value"]) for r in rows] == [("N", 10), ("S", 0), ("V", 2), ("F", 0), ("Q", 0)]


def test_class_timeline_stacks_the_distribution_frame():
    index = pd.to_datetime([0, 10], unit="s", utc=True).rename("time")
    distribution = pd.DataFrame({"N": [3, 4], "S": [0, 1], "V": [1, 0], "F": [0, 0], "Q": [0, 0]}, index=index)
    rows = chart_rows(charts.class_timeline(distribution))
    assert len(rows) == 10
    assert sum(r["beats"] for r in rows if r["class"] == "N") == 7
    second = {r["class"]: (r["bottom"], r["top"]) for r in rows if r["time"].startswith("1970-01-01T00:00:10")}
    assert second == {"N": (0, 4), "S": (4, 5), "V": (5, 5), "F": (5, 5), "Q": (5, 5)}


def test_beats_frame_is_one_row_per_sample_in_milliseconds():
    frame = charts.beats_frame(np.array([[0.0, 0.5, 1.0]]), ["V"], ["100:5"])
    assert frame["ms"].tolist() == [0.0, 8.0, 16.0]
    assert frame["amplitude"].tolist() == [0.0, 0.5, 1.0]
    assert set(frame["class"]) == {"V"} and set(frame["id"]) == {"100:5"}


def test_beat_overlay_draws_the_beat_and_each_template():
    rows = chart_rows(charts.beat_overlay(np.zeros(187), {"N": np.ones(187), "V": np.ones(187)}, title="t"))
    assert {r["class"] for r in rows} == {"this beat", "mean N", "mean V"}
    assert len(rows) == 3 * 187


def test_ecg_trace_marks_the_inspected_beat():
    signal = pd.DataFrame({"t_s": [0.0, 0.5, 1.0], "mv": [0.1, 1.2, 0.1]})
    marks = pd.DataFrame({"t_s": [0.5], "mv": [1.2], "class": ["V"], "symbol": ["V"]})
    spec = charts.ecg_trace(signal, marks, title="record 100", highlight_t_s=0.5).to_dict()
    assert len(spec["layer"]) == 4
    assert any(rows == [{"t_s": 0.5}] for rows in spec["datasets"].values())


def datasets(chart) -> list[list[dict]]:
    """Every dataset embedded in a chart's spec (layered charts carry one per layer)."""
    return list(chart.to_dict()["datasets"].values())


def test_class_timeline_draws_the_marks_within_its_span():
    from hbcore.app.marks import Mark

    index = pd.to_datetime([100, 110], unit="s", utc=True).rename("time")
    distribution = pd.DataFrame({"N": [3, 4], "S": [0, 1], "V": [1, 0], "F": [0, 0], "Q": [0, 0]}, index=index)
    marks = [Mark(105.0, "pause", "run a paused", "a"), Mark(111.0, "model", "model m deployed"),
             Mark(50.0, "start", "an earlier run started", "z")]  # before the bars: left out
    spec = charts.class_timeline(distribution, marks=marks).to_dict()
    mark_rows = [rows for rows in spec["datasets"].values() if rows and "text" in rows[0]]
    assert [(row["kind"], row["text"]) for row in mark_rows[0]] == [("pause", "run a paused"),
                                                                    ("model", "model m deployed")]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "rule", "text"]


def test_class_timeline_without_marks_is_the_bars_alone():
    index = pd.to_datetime([100], unit="s", utc=True).rename("time")
    distribution = pd.DataFrame({"N": [3], "S": [0], "V": [1], "F": [0], "Q": [0]}, index=index)
    assert "layer" not in charts.class_timeline(distribution).to_dict()


def test_beat_overlay_gives_each_template_its_own_dash_and_draws_the_patients_normal():
    chart = charts.beat_overlay(np.zeros(187), {"S": np.ones(187), "V": np.ones(187)}, title="t",
                                patient_normal=np.full(187, 0.5))
    spec = chart.to_dict()
    dash = spec["encoding"]["strokeDash"]["scale"]
    patterns = dict(zip(dash["domain"], dash["range"]))
    assert patterns["mean S"] != patterns["mean V"]
    assert {row["class"] for row in datasets(chart)[0]} == {"this beat", "mean S", "mean V", charts.PATIENT_TEMPLATE}


def test_ecg_strip_puts_the_prediction_above_each_beat_and_the_reference_below():
    from hbcore.app.strip import Strip

    signal = pd.DataFrame({"t_s": np.arange(0, 2, 0.01), "mv": np.sin(np.arange(0, 2, 0.01))})
    signal.loc[3, "mv"] = np.nan
    beats = pd.DataFrame({"t_s": [0.5, 1.5], "mv": [0.5, 1.0], "predicted": ["V", ""], "reference": ["N", "N"],
                          "id": ["a:1:1", ""], "streamed": [True, False]})
    events = pd.DataFrame({"onset_s": [0.4], "offset_s": [1.0], "kind": ["vt"], "severity": ["high"]})
    spec = charts.ecg_strip(Strip("119", "raw", "raw record 119", 0.0, 2.0, signal, beats, events))
    json.dumps(spec, allow_nan=False)  # plain JSON: what st.vega_lite_chart sends
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "line", "text", "text"]
    shading, trace, above, below = (layer["data"]["values"] for layer in spec["layer"])
    assert shading == [{"onset_s": 0.4, "offset_s": 1.0, "kind": "vt", "severity": "high"}]
    assert len(trace) == len(signal) and trace[3]["mv"] is None
    assert [row["predicted"] for row in above] == ["V"]  # streamed beats only
    assert [row["reference"] for row in below] == ["N", "N"]
    assert above[0]["top"] > np.nanmax(signal["mv"]) > np.nanmin(signal["mv"]) > below[0]["bottom"]
