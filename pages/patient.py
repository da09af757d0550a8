"""Patient view: one patient's live ECG strip, like a bedside monitor, with its alarms and heart-rate trend."""

import math
import time
from pathlib import Path

import streamlit as st

from hbcore.app import alarms, charts, dashboard, links, strip
from hbcore.app import resources as res
from hbcore.aws.redaction import user_message
from hbcore.stream import aggregations

STRIP_REFRESH_S = 2.0  # the reader polls every 2 s: a faster strip would redraw the same beats


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None or math.isnan(value) else pattern.format(value)


st.session_state.setdefault("patient_record", None)
params = st.query_params.to_dict()
if params.get("patient") and params != st.session_state.get("patient_url"):  # a link arrived: it names the patient
    st.session_state["patient_record"] = params["patient"]

st.title("Patient")
pipeline = res.pipeline()
if not res.backend_ready() or pipeline.replay is None:
    st.info("Nothing is streaming yet. Run the whole demo from the home page, then open a patient from the "
            "Live monitor.")
    st.page_link("pages/home.py", label="Run the full demo", icon=":material/play_arrow:")
    st.stop()

run = params.get("run") or pipeline.current_run
if run == links.ALL_RUNS:
    run = None
patients = sorted(pipeline.reader.snapshot().totals(run).records)
if not patients:
    st.info("No beat of this run has been classified yet: the patients appear a few seconds after the replay starts.")
    st.page_link("pages/monitor.py", label="Back to the Live monitor", icon=":material/monitor_heart:")
    st.stop()
if st.session_state["patient_record"] not in patients:
    st.session_state["patient_record"] = patients[0]
top = st.columns([1, 3])
top[0].selectbox("Patient (record)", patients, key="patient_record")
top[1].page_link("pages/monitor.py", label="Back to the Live monitor", icon=":material/monitor_heart:")
record = st.session_state["patient_record"]
st.session_state["patient_url"] = links.patient_params(record, params.get("run"))
if st.session_state["patient_url"] != params:
    st.query_params.from_dict(st.session_state["patient_url"])
source = res.current_source()
mitdb = source if source is not None and source[0] == "mitdb" else res.default_source()


def draw_strip(rows, events) -> None:
    """The strip of the source the patient's beats came from: the raw record, or Kaggle beat windows."""
    if mitdb is not None and (Path(mitdb[1]) / f"{record}.hea").is_file():
        try:
            shown = strip.raw_strip(rows, Path(mitdb[1]), record, events)
        except (OSError, ValueError) as error:
            st.error(user_message(error))
            return
    else:
        beats = res.current_beats()
        if beats is None or source is None:
            st.info(f"Record {record} is not in {mitdb[1] if mitdb else 'any MIT-BIH folder'} and no data source "
                    "holds its beats: choose the source that was replayed on the Data page.")
            return
        shown = strip.window_strip(rows, beats, res.beat_lookup(beats, source), record)
    if shown.kind == "none":
        st.info(shown.note)
        return
    st.vega_lite_chart(charts.ecg_strip(shown, title=f"{shown.note}: predicted class above each beat, "
                                                      "reference below"), width="stretch")
    if shown.kind == "windows":
        st.caption(shown.note)


@st.fragment(run_every=STRIP_REFRESH_S)
def live() -> None:
    """One refresh of the bedside view: the latest beats from one snapshot."""
    started = time.perf_counter()
    snapshot = pipeline.reader.snapshot()
    feed = alarms.feed_for(pipeline.reader)
    feed.update(snapshot)
    rows = strip.patient_rows(snapshot.predictions, run, record)
    shown_alarms = feed.alarms(run, record)
    st.markdown(dashboard.freshness_text(dashboard.freshness(snapshot.stats)))
    table = aggregations.per_record(snapshot.totals(run), rows)
    figures = table.loc[record] if record in table.index else None
    kpis = st.columns(5)
    rate = aggregations.heart_rates(rows).get(record) if len(rows) else None
    kpis[0].metric("Heart rate", _number(rate, "{:.0f} bpm"))
    kpis[1].metric("Beats processed", "0" if figures is None else f"{int(figures['beats']):,}")
    kpis[2].metric("Abnormal", "0" if figures is None else f"{int(figures['abnormal']):,}",
                   help="Beats predicted S, V, F or Q")
    kpis[3].metric("Accuracy", _number(None if figures is None else figures["accuracy"], "{:.1%}"),
                   help="Over this patient's beats with a reference label")
    kpis[4].metric("Unacknowledged alarms", f"{sum(not alarm.acknowledged for alarm in shown_alarms):,}")

    draw_strip(rows, [alarm.event for alarm in shown_alarms])
    trend = strip.rate_trend(rows)
    left, right = st.columns([3, 2])
    with left:
        if trend.empty:
            st.caption("No heart-rate trend: these beats carry no time (Kaggle rows).")
        else:
            st.altair_chart(charts.rate_trend(trend, title=f"heart rate of {record} (last {len(rows):,} beats kept)"),
                            width="stretch")
    with right:
        st.subheader("Alarms")
        if not shown_alarms:
            st.caption("No rhythm event for this patient yet.")
        for alarm in shown_alarms:
            row = st.columns([3, 2, 2])
            color = alarms.SEVERITY_COLORS.get(alarm.event.severity, "gray")
            row[0].markdown(f":{color}-badge[{alarm.event.severity}] {alarms.kind_title(alarm.event.kind)}  \n"
                            f"{dashboard.clock(alarm.raised_s)}")
            row[1].markdown(f"{alarm.event.onset_s:,.1f}–{alarm.event.offset_s:,.1f} s"
                            + ("  \n(ongoing)" if alarm.event.ongoing else ""))
            if alarm.acknowledged:
                row[2].markdown(":gray[acknowledged]")
            else:
                row[2].button("Acknowledge", key=f"patient_ack_{alarm.key}", on_click=feed.acknowledge,
                              args=([alarm.key],))
    st.caption(f"Refreshed every {STRIP_REFRESH_S:g} s; this refresh took "
               f"{(time.perf_counter() - started) * 1000:,.0f} ms.")


live()
