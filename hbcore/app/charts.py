"""Altair chart specifications shared by the app's pages.

The same confusion matrix is drawn after training and live on the monitor, and the same beat
waveforms on the Data and Misclassified pages; building the specs here keeps pages thin and lets
the specs be tested without a browser. Charts take long-form pandas frames (one row per mark).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from hbcore.app.marks import Mark
from hbcore.app.strip import Strip
from hbcore.data.classes import CLASS_NAMES

BEAT_SAMPLE_MS = 8.0  # beat windows are sampled at 125 Hz
CLASS_COLORS: dict[str, str] = {"N": "#4c78a8", "S": "#f58518", "V": "#e45756", "F": "#b279a2", "Q": "#54a24b"}


def class_scale() -> alt.Scale:
    """One colour per AAMI class, the same on every chart."""
    return alt.Scale(domain=list(CLASS_NAMES), range=[CLASS_COLORS[name] for name in CLASS_NAMES])


def class_bars(values: Mapping[str, float], *, title: str, axis_title: str, number_format: str = ",") -> alt.Chart:
    """Horizontal bars of one value per class (beats, probability…), the value written beside each bar."""
    frame = pd.DataFrame({"class": list(CLASS_NAMES), "value": [float(values.get(c, 0)) for c in CLASS_NAMES]})
    base = alt.Chart(frame, title=title).encode(
        y=alt.Y("class:N", sort=list(CLASS_NAMES), title=None),
        x=alt.X("value:Q", title=axis_title),
    )
    bars = base.mark_bar().encode(color=alt.Color("class:N", scale=class_scale(), legend=None),
                                  tooltip=["class", alt.Tooltip("value:Q", format=number_format)])
    return bars + base.mark_text(align="left", dx=3).encode(text=alt.Text("value:Q", format=number_format))


def confusion_frame(matrix: Sequence[Sequence[float]] | np.ndarray) -> pd.DataFrame:
    """Long form of a square confusion matrix (rows = true class) with row-normalised shares.

    A k×k matrix covers the first k classes (5 for the five-class figures, 4 for the inter-patient
    N, S, V, F figures).
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or not 0 < len(counts) <= len(CLASS_NAMES):
        raise ValueError(f"a confusion matrix must be square with at most {len(CLASS_NAMES)} classes, "
                         f"got {counts.shape}")
    names = CLASS_NAMES[:len(counts)]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    true, pred = np.meshgrid(range(len(names)), range(len(names)), indexing="ij")
    return pd.DataFrame({
        "true": [names[i] for i in true.ravel()],
        "predicted": [names[j] for j in pred.ravel()],
        "count": counts.ravel().astype(int),
        "share": shares.ravel(),
    })


def confusion_heatmap(matrix: Sequence[Sequence[float]] | np.ndarray, *, normalise: bool = False,
                      title: str = "confusion matrix") -> alt.Chart:
    """Heatmap of true (rows) × predicted (columns); colour by row share so rare classes show.

    Colouring by raw counts would paint everything but the N/N cell white (N is ~83% of beats);
    the row share shows each class's recall whatever its size. ``normalise`` only changes the text.
    """
    frame = confusion_frame(matrix)
    frame["label"] = (frame["share"].map(lambda s: f"{s:.0%}" if s else "") if normalise
                      else frame["count"].map(lambda c: f"{c:,}" if c else ""))
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("predicted:N", sort=list(CLASS_NAMES), title="predicted", axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("true:N", sort=list(CLASS_NAMES), title="true"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="row share",
                        legend=alt.Legend(gradientLength=120)),
        tooltip=["true", "predicted", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    )
    text = base.mark_text(fontSize=13).encode(
        text="label:N",
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
    )
    return (cells + text).properties(height=260)


MARK_COLORS: dict[str, str] = {"start": "#2ca02c", "pause": "#ff7f0e", "resume": "#1f77b4", "stop": "#555555",
                               "model": "#9467bd"}


def marks_frame(marks: Sequence[Mark], start: pd.Timestamp | None = None,
                end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Timeline marks as rows (time, kind, text),
    those between ``start`` and ``end`` only (the timeline's span) when given."""
    frame = pd.DataFrame({"time": pd.to_datetime([mark.t for mark in marks], unit="s", utc=True),
                          "kind": [mark.kind for mark in marks], "text": [mark.text for mark in marks]})
    if start is not None:
        frame = frame[frame["time"] >= start]
    if end is not None:
        frame = frame[frame["time"] <= end]
    return frame.reset_index(drop=True)


def class_timeline(distribution: pd.DataFrame, *, title: str = "predicted classes over time",
                   marks: Sequence[Mark] = ()) -> alt.Chart | alt.LayerChart:
    """Stacked bars of predictions per class per time bin, each bar as wide as its bin, with the run's marks.

    ``distribution`` is ``hbcore.stream.aggregations.class_distribution``'s frame: index = bin start (UTC),
    one column of counts per class, bins of equal width. The stacks are computed here (rectangles
    with explicit bounds): Vega-Lite turns a bar with both ``x`` and ``x2`` into a horizontal one.
    ``marks`` (``hbcore.app.marks.Mark``: a run started, paused, resumed, stopped, a model deployed)
    are drawn as labelled vertical rules where they fall within the bars' span (or the bin before it).
    """
    width = distribution.index[1] - distribution.index[0] if len(distribution) > 1 else pd.Timedelta(seconds=2)
    columns = [name for name in CLASS_NAMES if name in distribution.columns]
    counts = distribution[columns].to_numpy()
    tops = counts.cumsum(axis=1)
    frame = pd.DataFrame({
        "time": np.repeat(distribution.index.to_numpy(), len(columns)),
        "class": np.tile(columns, len(distribution)),
        "beats": counts.ravel(),
        "bottom": (tops - counts).ravel(),
        "top": tops.ravel(),
    })
    frame["end"] = frame["time"] + width
    bars = alt.Chart(frame, title=title).mark_rect().encode(
        x=alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
        x2="end:T",
        y=alt.Y("bottom:Q", title=f"beats per {width.total_seconds():g} s"),
        y2="top:Q",
        color=alt.Color("class:N", scale=class_scale(), title="class"),
        tooltip=[alt.Tooltip("time:T", format="%H:%M:%S"), "class:N", "beats:Q"],
    ).properties(height=240)
    if not marks or distribution.empty:
        return bars
    # a bin's width of slack before the first bar: a run's start precedes its first prediction
    shown = marks_frame(marks, distribution.index[0] - width, distribution.index[-1] + width)
    if shown.empty:
        return bars
    kinds = [kind for kind in MARK_COLORS if kind in set(shown["kind"])]
    mark_color = alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[MARK_COLORS[k] for k in kinds]),
                           title="mark")
    rules = alt.Chart(shown).mark_rule(strokeWidth=2, strokeDash=[6, 3]).encode(
        x="time:T", color=mark_color, tooltip=[alt.Tooltip("time:T", format="%H:%M:%S"), "kind:N", "text:N"])
    labels = alt.Chart(shown).mark_text(align="left", dx=4, dy=-4, baseline="bottom", fontSize=12).encode(
        x="time:T", y=alt.value(12), text="kind:N", color=mark_color)
    return alt.layer(bars, rules, labels).resolve_scale(color="independent")


def beats_frame(beats: np.ndarray, classes: Sequence[str], ids: Sequence[str]) -> pd.DataFrame:
    """Long form of beat windows (one row per sample) for line charts, x in milliseconds."""
    beats = np.asarray(beats, dtype=float)
    n, width = beats.shape
    return pd.DataFrame({
        "id": np.repeat(np.asarray(ids, dtype=object), width),
        "class": np.repeat(np.asarray(classes, dtype=object), width),
        "ms": np.tile(np.arange(width) * BEAT_SAMPLE_MS, n),
        "amplitude": beats.ravel(),
    })


def beat_gallery(frame: pd.DataFrame, *, columns: int = len(CLASS_NAMES)) -> alt.Chart:
    """Small multiples of beat windows, one panel per class (columns of ``beats_frame``)."""
    return alt.Chart(frame).mark_line(opacity=0.45, strokeWidth=1).encode(
        x=alt.X("ms:Q", title="ms after R peak"),
        y=alt.Y("amplitude:Q", title=None, scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("class:N", scale=class_scale(), legend=None),
        detail="id:N",
    ).properties(width=170, height=140).facet(
        facet=alt.Facet("class:N", sort=list(CLASS_NAMES), title=None), columns=columns,
    )


TEMPLATE_DASHES: dict[str, list[int]] = {  # one pattern per class, so no two templates look alike in any colour
    "N": [8, 3], "S": [2, 2], "V": [10, 3, 2, 3], "F": [4, 4], "Q": [1, 4],
}
PATIENT_TEMPLATE = "patient's normal"


def beat_overlay(beat: np.ndarray, templates: Mapping[str, np.ndarray], *, title: str,
                 patient_normal: np.ndarray | None = None) -> alt.Chart:
    """One beat (thick black line) over the mean templates of the named classes, and the patient's own normal beat.

    Each template has its class colour *and* its own dash pattern (mean S, orange dots; mean V, red
    dash-dots), so two templates are told apart without telling orange from red. ``patient_normal``
    (``hbcore.data.patient.normal_template``) is drawn grey and solid: a beat is abnormal against
    *its* patient's normal beat, which may differ from the population's mean N.
    """
    names = list(templates)
    series = ["this beat"] + [f"mean {n}" for n in names]
    windows = [np.asarray(beat)] + [templates[n] for n in names]
    colors = ["black"] + [CLASS_COLORS.get(n, "grey") for n in names]
    dashes = [[1, 0]] + [TEMPLATE_DASHES.get(n, [5, 3]) for n in names]
    widths = [2.5] + [1.8] * len(names)
    if patient_normal is not None:
        series.append(PATIENT_TEMPLATE)
        windows.append(np.asarray(patient_normal))
        colors.append("#888888")
        dashes.append([1, 0])
        widths.append(3.0)
    frame = beats_frame(np.vstack(windows), series, series)
    return alt.Chart(frame, title=title).mark_line().encode(
        x=alt.X("ms:Q", title="ms after R peak"),
        y=alt.Y("amplitude:Q", title=None),
        color=alt.Color("class:N", scale=alt.Scale(domain=series, range=colors), title=None),
        strokeDash=alt.StrokeDash("class:N", scale=alt.Scale(domain=series, range=dashes), legend=None),
        strokeWidth=alt.StrokeWidth("class:N", scale=alt.Scale(domain=series, range=widths), legend=None),
    ).properties(height=260)


def ecg_trace(signal: pd.DataFrame, marks: pd.DataFrame, *, title: str,
              highlight_t_s: float | None = None) -> alt.LayerChart | alt.FacetChart:
    """An ECG trace (columns t_s, mv) with one labelled point per beat (t_s, mv, class, symbol).

    ``highlight_t_s`` draws a vertical rule at one beat (the beat being inspected). The type is
    ``alt.layer``'s; with no facet encodings in its layers, the chart is a LayerChart.
    """
    line = alt.Chart(signal).mark_line(color="#333", strokeWidth=1).encode(
        x=alt.X("t_s:Q", title="seconds in record"), y=alt.Y("mv:Q", title="mV"),
    )
    points = alt.Chart(marks).mark_point(filled=True, size=60).encode(
        x="t_s:Q", y="mv:Q",
        color=alt.Color("class:N", scale=class_scale(), title="class"),
        tooltip=[alt.Tooltip("t_s:Q", format=".2f"), "symbol", "class"],
    )
    labels = alt.Chart(marks).mark_text(dy=-10, fontSize=11).encode(x="t_s:Q", y="mv:Q", text="symbol:N")
    layers = [line, points, labels]
    if highlight_t_s is not None:
        rule = alt.Chart(pd.DataFrame({"t_s": [highlight_t_s]})).mark_rule(color="red", strokeDash=[4, 2])
        layers.append(rule.encode(x="t_s:Q"))
    return alt.layer(*layers, title=title).properties(height=240)


SEVERITY_COLORS: dict[str, str] = {"high": "#d62728", "medium": "#ff7f0e", "low": "#f2cf5b"}


def _values(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as Vega-Lite inline values, missing values as null (JSON has no NaN)."""
    names = list(frame.columns)
    columns = [frame[name].to_numpy(dtype=object, na_value=None).tolist() for name in names]
    return [dict(zip(names, row)) for row in zip(*columns)]


def ecg_strip(strip: Strip, *, title: str | None = None, height: int = 260) -> dict:
    """A bedside-monitor strip (``hbcore.app.strip.Strip``) as a Vega-Lite spec: the trace, each streamed
    beat's predicted class above it and the reference class below it, rhythm events shaded by severity.

    A plain spec (``st.vega_lite_chart``) rather than an Altair chart: the strip is redrawn every two
    seconds, and building and validating the same four layers in Altair took ~0.2 s of a 0.3 s budget
    (``tests/app/test_monitor_page.py`` measures the whole refresh).
    """
    signal = strip.signal
    low, high = (float(signal["mv"].min()), float(signal["mv"].max())) if len(signal) else (0.0, 1.0)
    pad = 0.25 * (high - low or 1.0)
    top, bottom = high + pad, low - pad
    x = {"field": "t_s", "type": "quantitative", "scale": {"domain": [strip.start_s, strip.end_s], "nice": False},
         "title": "seconds in record" if strip.kind == "raw" else "seconds along the strip"}
    y_scale = {"domain": [bottom, top]}
    beats = strip.beats.assign(top=top - 0.4 * pad, bottom=bottom + 0.4 * pad)
    streamed = beats[beats["streamed"].astype(bool)] if len(beats) else beats
    layers: list[dict] = []
    if not strip.events.empty:
        severities = list(SEVERITY_COLORS)
        layers.append({
            "data": {"values": _values(strip.events)}, "mark": {"type": "rect", "opacity": 0.25},
            "encoding": {"x": {**x, "field": "onset_s"}, "x2": {"field": "offset_s"},
                         "color": {"field": "severity", "type": "nominal", "title": "event",
                                   "scale": {"domain": severities, "range": [SEVERITY_COLORS[k] for k in severities]}},
                         "tooltip": [{"field": "kind", "type": "nominal"}, {"field": "severity", "type": "nominal"}]},
        })
    layers.append({
        "data": {"values": _values(signal[["t_s", "mv"]])}, "mark": {"type": "line", "color": "#0b7a3e",
                                                                     "strokeWidth": 1.3},
        "encoding": {"x": x, "y": {"field": "mv", "type": "quantitative", "scale": y_scale,
                                   "title": "mV" if strip.kind == "raw" else "amplitude"}},
    })
    layers.append({
        "data": {"values": _values(streamed)}, "mark": {"type": "text", "fontSize": 15, "fontWeight": "bold"},
        "encoding": {"x": {"field": "t_s", "type": "quantitative"},
                     "y": {"field": "top", "type": "quantitative", "scale": y_scale},
                     "text": {"field": "predicted", "type": "nominal"},
                     "color": {"field": "predicted", "type": "nominal", "title": "predicted",
                               "scale": {"domain": list(CLASS_NAMES), "range": [CLASS_COLORS[n] for n in CLASS_NAMES]}},
                     "tooltip": [{"field": "id", "type": "nominal"}, {"field": "predicted", "type": "nominal"},
                                 {"field": "reference", "type": "nominal"}]},
    })
    layers.append({
        "data": {"values": _values(beats)}, "mark": {"type": "text", "fontSize": 12, "color": "#555555"},
        "encoding": {"x": {"field": "t_s", "type": "quantitative"},
                     "y": {"field": "bottom", "type": "quantitative", "scale": y_scale},
                     "text": {"field": "reference", "type": "nominal"}},
    })
    return {"title": title or strip.note, "height": height, "layer": layers,
            "resolve": {"scale": {"color": "independent"}}}


def rate_trend(trend: pd.DataFrame, *, title: str = "heart rate", height: int = 160) -> alt.Chart:
    """The patient's heart rate over record time (``hbcore.app.strip.rate_trend``'s t_s, bpm)."""
    return alt.Chart(trend, title=title).mark_line(color="#d62728", strokeWidth=1.5).encode(
        x=alt.X("t_s:Q", title="seconds in record"),
        y=alt.Y("bpm:Q", title="bpm", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("t_s:Q", format=".1f"), alt.Tooltip("bpm:Q", format=".0f")],
    ).properties(height=height)
