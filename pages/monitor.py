"""Live monitor: what the model predicts right now, refreshed by itself from the results reader."""

import math

import streamlit as st

from hbcore.app import alarms, charts, dashboard, links
from hbcore.app import resources as res
from hbcore.aws.redaction import redact

TILE_COLUMNS = 6
TILE_HEIGHT_PX = 150
ALARM_ROWS = 8
# While the latest run's first predictions are awaited, the page refreshes this often (then at the chosen
# interval), each refresh first waiting up to as long for the reader to read them: the refresh draws them as
# the query that read them ends, and redraws the waiting figures (the beats sent) between its waits.
FIRST_PREDICTIONS_REFRESH_S = 0.25
FIRST_DRAWN_KEY = "monitor_first_drawn_run"  # the awaited run whose first beats a refresh has drawn
PRESENTING_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"] {display: none;}
.block-container {padding-top: 1rem; max-width: 100%;}
[data-testid="stMetricValue"] {font-size: 3rem;}
[data-testid="stMetricLabel"] p {font-size: 1.2rem;}
</style>"""

# The view's filters live in the URL, so a view can be shared: a link's values win over the session's
# on arrival; the page then writes its own back (links.monitor_params).
_arrived = st.query_params.to_dict()
_view = links.monitor_view(_arrived)
if _arrived and _arrived != st.session_state.get("monitor_url"):
    st.session_state["monitor_interval"] = _view.interval
    st.session_state["monitor_all_runs"] = _view.all_runs
    st.session_state["monitor_pinned_run"] = None if _view.all_runs else _view.run
    st.session_state["monitor_normalise"] = _view.shares
    st.session_state["monitor_present"] = _view.present
st.session_state.setdefault("monitor_interval", links.DEFAULT_INTERVAL)
st.session_state.setdefault("monitor_all_runs", False)
st.session_state.setdefault("monitor_pinned_run", None)
st.session_state.setdefault("monitor_normalise", False)
st.session_state.setdefault("monitor_present", False)
presenting = st.session_state["monitor_present"]

if presenting:
    st.markdown(PRESENTING_CSS, unsafe_allow_html=True)
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

# While presenting, the controls sit in the (hidden) sidebar: still drawn, so their values are kept.
controls = st.sidebar.container() if presenting else st.container()
with controls:
    columns = [controls] * 4 if presenting else st.columns([1, 1, 1, 1, 2])
    columns[0].selectbox("Refresh every", list(links.INTERVALS_S), key="monitor_interval",
                         format_func=lambda label: label.replace("s", " s") if label != "paused" else label)
    columns[1].toggle("All runs", key="monitor_all_runs", help="Include earlier replays, not only the latest one")
    columns[2].toggle("Row shares", key="monitor_normalise",
                      help="Show the confusion matrix as shares of each true class")
    columns[3].toggle("Present", key="monitor_present",
                      help="Full width, large figures, no sidebar: the monitor alone (the link keeps it)")


def awaited_run() -> str | None:
    """The latest run, while it streams but none of its beats (predicted or rejected) has been read yet and the
    view follows it; else None."""
    if pipeline.replay is None or st.session_state["monitor_all_runs"] or st.session_state["monitor_pinned_run"]:
        return None
    progress = pipeline.replay.progress()
    read = pipeline.reader.wait_for_beats(progress.run, 0.0)  # the reader's own test, not a snapshot's totals
    return progress.run if progress.state == "running" and not read else None


chosen_every = links.INTERVALS_S[st.session_state["monitor_interval"]]
awaited = awaited_run() if chosen_every is not None else None
st.session_state["monitor_run_every"] = FIRST_PREDICTIONS_REFRESH_S if awaited is not None else chosen_every


def shown_run(snapshot) -> str | None:
    """The run on screen: None for all runs, a run pinned by a shared link while it exists, else the latest."""
    if st.session_state["monitor_all_runs"]:
        return None
    pinned = st.session_state["monitor_pinned_run"]
    if pinned and pinned in snapshot.runs and pinned != pipeline.current_run:
        return pinned
    return pipeline.current_run


def write_url(run: str | None) -> None:
    """Put the view on screen into the URL (what a copied link opens)."""
    view = links.MonitorView(run=links.ALL_RUNS if run is None else run, interval=st.session_state["monitor_interval"],
                             shares=st.session_state["monitor_normalise"], present=st.session_state["monitor_present"])
    params = links.monitor_params(view)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)
    st.session_state["monitor_url"] = params


def follow_latest_run() -> None:
    st.session_state["monitor_pinned_run"] = None


def stop_presenting() -> None:
    st.session_state["monitor_present"] = False


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else pattern.format(value)


def counts_line(figures: dashboard.DashboardFigures, progress) -> str:
    """The run's beat counts in one line, each named for what it counts, adding up."""
    counts = figures.counts
    parts = []
    if progress is not None and counts.sent is not None:
        rate = f" ({progress.rate_bps:,.0f} sent/s)" if progress.state == "running" else ""
        parts.append(f"Run `{progress.run}` {progress.state}: **{counts.sent:,} sent** of {progress.total:,}{rate} "
                     f"= {counts.processed:,} processed + {counts.rejected:,} rejected "
                     f"+ {counts.in_flight:,} in flight")
    else:
        parts.append(f"**{counts.processed:,} processed**, {counts.rejected:,} rejected")
    parts.append(f"{counts.labelled:,} of the processed have a reference label (the confusion matrix)")
    return " · ".join(parts)


def model_line(figures: dashboard.DashboardFigures) -> str | None:
    """The deployed model's offline figures next to the live ones, so a presenter can explain the gap."""
    if figures.model_version is None:
        return None
    offline = dashboard.deployed_model_figures(figures.model_version)
    live = f"live: accuracy {_number(figures.accuracy, '{:.1%}')} over {figures.labelled:,} labelled beats"
    if offline is None:
        return f"Model `{figures.model_version}` (not in this app's model store: no offline figures) · {live}"
    split = {"intra": "the intra-patient split (patients seen in training)",
             "inter": "the inter-patient split (patients never seen)"}.get(offline.split or "", "its test split")
    tested = (f"{offline.n_test:,} test beats" if offline.n_test else "the test beats") + (
        f" of {len(offline.test_records)} records" if offline.test_records else "")
    se = " ".join(f"{name} {value:.0%}" for name, value in offline.sensitivity.items())
    return (f"Model `{offline.version}` · offline on {tested}, {split}, over {offline.classes}: "
            f"accuracy {offline.accuracy:.1%}, macro-F1 {offline.macro_f1:.2f}, Se {se} · {live}")


def alarm_feed(feed: alarms.AlarmFeed, run: str | None) -> None:
    """The newest alarms with their acknowledgement, each opening its patient."""
    shown = feed.alarms(run)
    open_alarms = [alarm.key for alarm in shown if not alarm.acknowledged]
    head = st.columns([3, 1])
    head[0].subheader(f"Alarms · {len(open_alarms):,} unacknowledged" if shown else "Alarms")
    if open_alarms:
        head[1].button("Acknowledge all", key="monitor_ack_all", on_click=feed.acknowledge, args=(open_alarms,))
    if feed.pending:
        st.caption(f"Catching up: {feed.pending:,} streamed beats still to be checked for rhythm events.")
    if feed.missed:
        st.caption(f"{feed.missed:,} beats were no longer kept by the reader when the feed reached them: "
                   "they were not checked for rhythm events.")
    if not shown:
        st.caption("No rhythm event in the streamed beats yet (runs, couplets, bigeminy, AF, rate alarms, pauses).")
        return
    for alarm in shown[:ALARM_ROWS]:
        row = st.columns([2, 2, 3, 2, 2, 2])
        row[0].markdown(dashboard.clock(alarm.raised_s))
        row[1].page_link("pages/patient.py", label=f"patient {alarm.event.patient}",
                         query_params=links.patient_params(alarm.event.patient, alarm.run))
        color = alarms.SEVERITY_COLORS.get(alarm.event.severity, "gray")
        row[2].markdown(f":{color}-badge[{alarm.event.severity}] {alarms.kind_title(alarm.event.kind)}")
        row[3].markdown(f"{alarm.duration_s:,.1f} s" + (" (ongoing)" if alarm.event.ongoing else ""))
        row[4].markdown(f"at {alarm.event.onset_s:,.1f} s")
        if alarm.acknowledged:
            row[5].markdown(":gray[acknowledged]")
        else:
            row[5].button("Acknowledge", key=f"monitor_ack_{alarm.key}", on_click=feed.acknowledge, args=([alarm.key],))
    if len(shown) > ALARM_ROWS:
        st.caption(f"and {len(shown) - ALARM_ROWS:,} earlier alarms (each patient's view lists its own)")


def patient_tiles(figures: dashboard.DashboardFigures, alarmed: set[str], run: str | None) -> None:
    """One tile per patient, most in need of a look first; a tile opens its patient."""
    tiles = dashboard.patient_tiles(figures.per_record, alarmed)
    for start in range(0, len(tiles), TILE_COLUMNS):
        columns = st.columns(TILE_COLUMNS)
        for column, (record, row) in zip(columns, tiles.iloc[start:start + TILE_COLUMNS].iterrows()):
            with column.container(border=True, height=TILE_HEIGHT_PX):
                st.page_link("pages/patient.py", label=f"**{record}**", icon=":material/monitor_heart:",
                             query_params=links.patient_params(str(record), run))
                st.markdown(f":{row['color']}-badge[{row['status']}] {_number(row['heart_rate_bpm'], '{:.0f} bpm')}  \n"
                            f"{int(row['beats']):,} beats · {_number(row['accuracy'], '{:.0%}')} right  \n"
                            f"{row['abnormal_share']:.0%} abnormal")


@st.fragment(run_every=st.session_state["monitor_run_every"])
def live() -> None:
    """One refresh: every figure from one snapshot of the reader (never blocks on the cloud; awaiting a run's
    first beats, waits FIRST_PREDICTIONS_REFRESH_S at most for the reader).

    The refresh that reads the run's first beats draws them; the next one reruns the page, which
    then refreshes at the chosen interval (a rerun at once put the page's own start, ~0.13 s in the
    app, and the browser's drawing of the whole page before them)."""
    if awaited is not None:
        if st.session_state.get(FIRST_DRAWN_KEY) == awaited:
            st.rerun()
        if pipeline.reader.wait_for_beats(awaited, FIRST_PREDICTIONS_REFRESH_S):
            st.session_state[FIRST_DRAWN_KEY] = awaited
    snapshot = pipeline.reader.snapshot()
    progress = pipeline.replay.progress() if pipeline.replay is not None else None  # after: sent ≥ what it holds
    run = shown_run(snapshot)
    write_url(run)
    sent = progress.sent if progress is not None and run is not None and run == progress.run else None
    figures = dashboard.dashboard_figures(snapshot, run, sent=sent)
    st.markdown(dashboard.freshness_text(dashboard.freshness(snapshot.stats)))
    if run is not None and run != pipeline.current_run:
        pinned = st.columns([4, 1])
        pinned[0].info(f"Showing run `{run}` (from the link); the latest run is `{pipeline.current_run}`.")
        pinned[1].button("Follow the latest run", key="monitor_follow",
                         on_click=follow_latest_run)
    st.markdown(counts_line(figures, progress if sent is not None else None))
    if progress is not None and progress.error:
        st.error(f"The replay failed: {redact(progress.error)}")
    if snapshot.stats.state == "failed":  # its thread ended: nothing below changes any more
        reason = snapshot.stats.errors[-1] if snapshot.stats.errors else "no reason recorded"
        st.error(f"The results reader stopped: {redact(reason)}. The figures below are what it read before.")
    elif snapshot.stats.errors:
        st.warning(f"Reader: {redact(snapshot.stats.errors[-1])}")

    trend = {column: figures.series[column].dropna().tolist() for column in dashboard.SERIES_COLUMNS}
    kpis = st.columns(6)
    kpis[0].metric("Beats processed", f"{figures.beats:,}", help="Predicted and logged (the run's sent beats "
                                                                 "minus those rejected or still in flight)")
    kpis[1].metric("Processed/s", _number(figures.beats_per_s, "{:,.0f}"), chart_data=trend["beats_per_s"] or None,
                   help=f"Beats logged per second over the last {dashboard.THROUGHPUT_WINDOW_S:g} s; the line: "
                        "per timeline bin (the replay's sent/s is in the line above)")
    kpis[2].metric("Abnormal rate", _number(figures.abnormal_rate, "{:.1%}"),
                   help="Share of processed beats predicted S, V, F or Q")
    kpis[3].metric("p95 latency", _number(figures.latency_p95_ms, "{:,.0f} ms"),
                   chart_data=trend["latency_p95_ms"] or None,
                   help="From PutRecords to the log line; the line: per timeline bin")
    kpis[4].metric("Rejected records", f"{figures.rejected:,}", chart_data=trend["reject_rate"] or None,
                   help="The line: the share of records rejected per timeline bin")
    kpis[5].metric("Accuracy", _number(figures.accuracy, "{:.2%}"),
                   help=f"Over the {figures.labelled:,} processed beats with a reference label")
    if figures.beats == 0:
        st.info("No predictions yet: the first ones appear a few seconds after the replay starts.")
        return
    if (line := model_line(figures)) is not None:
        st.markdown(line)

    feed = alarms.feed_for(pipeline.reader)
    feed.update(snapshot)
    left, right = st.columns([3, 2])
    with left:
        marks = [mark for mark in pipeline.marks() if run is None or mark.run in ("", run)]
        st.altair_chart(charts.class_timeline(figures.distribution, marks=marks), width="stretch")
    with right:
        st.altair_chart(charts.confusion_heatmap(figures.confusion, normalise=st.session_state["monitor_normalise"],
                                                 title="live confusion matrix"), width="stretch")
        st.caption(f"{figures.labelled:,} predictions in the confusion matrix")

    alarm_feed(feed, run)
    st.subheader("Patients")
    patient_tiles(figures, feed.unacknowledged_patients(run), run)
    if presenting:
        return
    st.subheader("Latest abnormal beats")
    st.dataframe(figures.latest_abnormal, hide_index=True, width="stretch",
                 column_config={"probability": st.column_config.NumberColumn(format="%.2f")})
    if figures.rejected:
        st.subheader("Rejected records")
        st.dataframe(figures.rejection_reasons, hide_index=True, width="stretch")


live()
if presenting:
    st.button("Exit presentation", key="monitor_present_exit", on_click=stop_presenting)
