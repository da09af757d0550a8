"""Stream: replay beats into the Kinesis stream (rate or real time), pause, resume, stop, watch progress."""

import streamlit as st

from hbcore.app import resources as res
from hbcore.aws.redaction import redact, user_message
from hbcore.errors import HbError
from hbcore.stream import replay as replays

MODES = ("Beats per second", "Real time × speed")
WHICH = {"test": "Test split (beats the model did not train on)", "all": "All beats", "records": "Chosen records"}
ORDERS = {"time": "In time order (records interleaved, like live patients)", "shuffled": "Shuffled"}
PROGRESS_REFRESH_S = 1.0

st.session_state.setdefault("stream_mode", MODES[0])
st.session_state.setdefault("stream_rate", 250)
st.session_state.setdefault("stream_speed", 10.0)
st.session_state.setdefault("stream_which", "test")
st.session_state.setdefault("stream_split", "intra")
st.session_state.setdefault("stream_records", [])
st.session_state.setdefault("stream_order", "time")
st.session_state.setdefault("stream_limit", 0)
st.session_state.setdefault("stream_error", None)
st.session_state.setdefault("stream_confirm", False)

st.title("Stream")
beats = res.current_beats()
if beats is None:
    st.info("No beats to stream yet: choose or build a data source first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/database:")
    st.stop()

pipeline = res.pipeline()
problem = res.backend_problem()
try:
    deployed = problem is None and res.backend_ready() and pipeline.stack_outputs() is not None
except Exception as error:  # no network on AWS, a stack in a bad state: said, not raised
    problem = user_message(error)
    deployed = False
if problem:
    st.error(f"The backend cannot be used: {problem}")
    st.page_link("pages/settings.py", label="Check the settings", icon=":material/settings:")
elif not deployed:
    st.warning("The stream and the Lambda handler are not deployed yet: deploy a model first "
               "(it creates the stack), or run the whole demo from the home page.")
    st.page_link("pages/deploy.py", label="Go to Deploy", icon=":material/cloud_upload:")

mode = st.radio("Pace", MODES, key="stream_mode", horizontal=True)
left, right = st.columns(2)
if mode == MODES[0]:
    left.number_input("Beats per second", min_value=1, max_value=5000, step=50, key="stream_rate")
else:
    left.number_input("Speed (× real time; each record is one patient)", min_value=0.1, max_value=1000.0,
                      step=1.0, key="stream_speed")
right.number_input("At most this many beats (0 = all)", min_value=0, step=1000, key="stream_limit")
which = left.radio("Which beats", list(WHICH), key="stream_which", format_func=WHICH.get)
if which == "test":
    right.radio("Split", ["intra", "inter"], key="stream_split", horizontal=True,
                format_func={"intra": "intra-patient 80/20", "inter": "inter-patient DS2"}.get)
elif which == "records":
    available = beats.records()
    st.session_state["stream_records"] = [r for r in st.session_state["stream_records"] if r in available]
    right.multiselect("Records (patients)", available, key="stream_records")
right.radio("Order", list(ORDERS), key="stream_order", format_func=ORDERS.get)


def start_pressed() -> None:
    """Button callback: ask first when a replay runs (starting stops it), else start."""
    if pipeline.replay_running():
        st.session_state["stream_confirm"] = True
    else:
        start()


def start() -> None:
    """Button callback (runs before the rerun, so the page draws the new state)."""
    st.session_state["stream_error"] = None
    st.session_state["stream_confirm"] = False
    try:
        selected = replays.select_beats(
            beats,
            split=st.session_state["stream_split"] if st.session_state["stream_which"] == "test" else None,
            records=st.session_state["stream_records"] if st.session_state["stream_which"] == "records" else None,
            order=st.session_state["stream_order"],
            limit=st.session_state["stream_limit"] or None,
        )
        if st.session_state["stream_mode"] == MODES[0]:
            pipeline.start_replay(selected, rate_bps=float(st.session_state["stream_rate"]))
        else:
            pipeline.start_replay(selected, speed=float(st.session_state["stream_speed"]))
    except (ValueError, HbError) as error:  # a bad choice, a replay that would not stop, a cloud that will not start
        st.session_state["stream_error"] = user_message(error)


def pause_or_resume() -> None:
    if pipeline.replay is not None and pipeline.replay.progress().state == "paused":
        pipeline.resume_replay()
    else:
        pipeline.pause_replay()


state = pipeline.replay.progress().state if pipeline.replay is not None else None
running = state in ("running", "paused")
buttons = st.columns(4)
buttons[0].button("Start", key="stream_start", type="primary",
                  disabled=not deployed or st.session_state["stream_confirm"], on_click=start_pressed)
buttons[1].button("Resume" if state == "paused" else "Pause", key="stream_pause", disabled=not running,
                  on_click=pause_or_resume)
buttons[2].button("Stop", key="stream_stop", disabled=not running, on_click=pipeline.stop_replay)
with buttons[3]:
    st.page_link("pages/monitor.py", label="Open the live monitor", icon=":material/monitor_heart:")
if st.session_state["stream_confirm"]:
    if running:
        assert pipeline.replay is not None  # running
        current = pipeline.replay.progress()
        st.warning(f"A replay is running: run `{current.run}`, {current.sent:,} of {current.total:,} beats sent "
                   f"({current.state}). Stop it and start a new one?")
        choices = st.columns(2)
        choices[0].button("Stop it and start the new one", key="stream_confirm_replace", type="primary",
                          on_click=start)
        choices[1].button("Cancel", key="stream_confirm_cancel",
                          on_click=lambda: st.session_state.update(stream_confirm=False))
    else:  # it ended while the question was open
        st.session_state["stream_confirm"] = False
if st.session_state["stream_error"]:
    st.error(st.session_state["stream_error"])


@st.fragment(run_every=PROGRESS_REFRESH_S if running else None)
def progress_panel() -> None:
    """The replay's counters, polled from its thread-safe snapshot."""
    if pipeline.replay is None:
        st.caption("No replay yet: choose the beats and press Start.")
        return
    progress = pipeline.replay.progress()
    st.progress(progress.sent / progress.total if progress.total else 0.0,
                text=f"Run `{progress.run}`: {progress.state}, {progress.sent:,} of {progress.total:,} beats sent")
    columns = st.columns(5)
    columns[0].metric("Sent", f"{progress.sent:,}")
    columns[1].metric("Beats/s", f"{progress.rate_bps:,.0f}")
    columns[2].metric("Resent", f"{progress.retried:,}")
    columns[3].metric("Refused", f"{progress.refused:,}")
    columns[4].metric("Elapsed", f"{progress.elapsed_s:,.1f} s")
    if progress.error:
        st.error(f"The replay failed: {redact(progress.error)}")
    elif progress.errors:
        st.caption(f"Last of {progress.error_count} transient errors: {redact(progress.errors[-1])}")


progress_panel()
