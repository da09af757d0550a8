"""Live monitor: what the model predicts right now, refreshed by itself from the results reader."""

import math

import streamlit as st

from hbcore.app import charts, dashboard
from hbcore.app import resources as res
from hbcore.aws.redaction import redact

INTERVALS_S = {"1 s": 1.0, "2 s": 2.0, "5 s": 5.0, "10 s": 10.0, "paused": None}
TILE_COLUMNS = 8

st.session_state.setdefault("monitor_interval", "2 s")
st.session_state.setdefault("monitor_all_runs", False)
st.session_state.setdefault("monitor_normalise", False)
st.session_state["monitor_run_every"] = INTERVALS_S[st.session_state["monitor_interval"]]

st.title("Live monitor")
pipeline = res.pipeline()
ready = res.backend_ready()
if not ready or (pipeline.replay is None and not st.session_state["monitor_all_runs"]):
    st.info("Nothing is streaming yet. Run the whole demo from the home page, or start a replay on the Stream page.")
    left, right = st.columns(2)
    with left:
        st.page_link("pages/home.py", label="Run the full demo", icon=":material/play_arrow:")
    with right:
        st.page_link("pages/stream.py", label="Start a replay", icon=":material/play_circle:")
    if not ready:
        st.stop()

controls = st.columns([1, 1, 1, 3])
controls[0].selectbox("Refresh every", list(INTERVALS_S), key="monitor_interval")
controls[1].toggle("All runs", key="monitor_all_runs", help="Include earlier replays, not only the latest one")
controls[2].toggle("Row shares", key="monitor_normalise", help="Show the confusion matrix as shares of each true class")


def _number(value: float, pattern: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else pattern.format(value)


@st.fragment(run_every=st.session_state["monitor_run_every"])
def live() -> None:
    """One refresh: a snapshot of the reader, the figures, the charts (never blocks on the cloud)."""
    run = None if st.session_state["monitor_all_runs"] else pipeline.current_run
    snapshot = pipeline.reader.snapshot()
    figures = dashboard.dashboard_figures(snapshot, run)
    if pipeline.replay is not None:
        progress = pipeline.replay.progress()
        st.caption(f"Run `{progress.run}`: {progress.state}, {progress.sent:,} of {progress.total:,} beats sent "
                   f"({progress.rate_bps:,.0f} beats/s).")
        if progress.error:
            st.error(f"The replay failed: {redact(progress.error)}")
    if snapshot.stats.state == "failed":  # its thread ended: nothing below changes any more
        reason = snapshot.stats.errors[-1] if snapshot.stats.errors else "no reason recorded"
        st.error(f"The results reader stopped: {redact(reason)}. The figures below are what it read before.")
    elif snapshot.stats.errors:
        st.warning(f"Reader: {redact(snapshot.stats.errors[-1])}")

    kpis = st.columns(6)
    kpis[0].metric("Beats processed", f"{figures.beats:,}")
    kpis[1].metric("Beats/s", _number(figures.beats_per_s, "{:,.0f}"))
    kpis[2].metric("Abnormal rate", _number(figures.abnormal_rate, "{:.1%}"),
                   help="Share of beats predicted S, V, F or Q")
    kpis[3].metric("p95 latency", _number(figures.latency_p95_ms, "{:,.0f} ms"), help="From PutRecords to the log line")
    kpis[4].metric("Rejected records", f"{figures.rejected:,}")
    kpis[5].metric("Accuracy", _number(figures.accuracy, "{:.2%}"), help="Over the beats with a known label")

    if figures.beats == 0:
        st.info("No predictions yet: the first ones appear a few seconds after the replay starts.")
        return

    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(charts.class_timeline(figures.distribution), width="stretch")
    with right:
        st.altair_chart(charts.confusion_heatmap(figures.confusion, normalise=st.session_state["monitor_normalise"],
                                                 title="live confusion matrix"), width="stretch")
        st.caption(f"{figures.labelled:,} predictions in the confusion matrix")

    st.subheader("Patients")
    table = figures.per_record
    for start in range(0, len(table), TILE_COLUMNS):
        columns = st.columns(TILE_COLUMNS)
        for column, (record, row) in zip(columns, table.iloc[start:start + TILE_COLUMNS].iterrows()):
            abnormal = " ".join(f"{name} {int(row[name])}" for name in ("S", "V", "F", "Q") if row[name])
            with column.container(border=True):
                st.markdown(f"**{record}** · {_number(row['heart_rate_bpm'], '{:.0f} bpm')}  \n"
                            f"{int(row['beats']):,} beats  \n" + (f":red[{abnormal}]" if abnormal else "all N"))

    st.subheader("Latest abnormal beats")
    st.dataframe(figures.latest_abnormal, hide_index=True, width="stretch",
                 column_config={"probability": st.column_config.NumberColumn(format="%.2f"),
                                "t_s": st.column_config.NumberColumn("t (s)", format="%.2f")})
    if figures.rejected:
        st.subheader("Rejected records")
        st.dataframe(figures.rejection_reasons, hide_index=True, width="stretch")


live()
