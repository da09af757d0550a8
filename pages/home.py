"""Home: what the system is, one button that runs the whole demo, and the state of each part.

The button comes first: it is what most visitors want, and it paints before the status panel,
whose diagram and table load the browser's heavier chart code.
"""

import time
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from hbcore import paths
from hbcore.app import diagram
from hbcore.app import resources as res
from hbcore.aws.redaction import redact, user_message
from hbcore.data import physionet
from hbcore.model import store as modelstore

if TYPE_CHECKING:  # imported for real in start_demo: hbcore.app.demo loads scikit-learn
    from hbcore.app.demo import DemoRun

DEMO_RATE_BPS = 250.0
POLL_S = 0.5
STEP_LABELS = {"data": "Loading the beats", "model": "Training a model (or loading the saved one)",
               "stack": "Creating the stream, the Lambda handler and the log group",
               "endpoint": "Deploying the model to the endpoint", "replay": "Starting the replay"}

st.session_state.setdefault("home_demo_error", None)

st.title("Heartbeat stream")
st.markdown(
    "Real-time arrhythmia classification on the MIT-BIH Arrhythmia Database, streamed through "
    "**Kinesis → Lambda → SageMaker → CloudWatch Logs**. Each heartbeat is sent as a stream record, "
    "classified into the five AAMI classes (N normal, S supraventricular, V ventricular, F fusion, "
    "Q paced/unknown) by a model behind an endpoint, logged, and read back for the live monitor."
)

settings = res.settings()
pipeline = res.pipeline()
source = res.current_source()
saved = modelstore.saved_models()


def part_rows() -> dict[str, tuple[str, str]]:
    """(state, detail) of every part: data and model from the session, the rest from the Pipeline."""
    if source is None:
        data = ("missing", "no MIT-BIH records: download them above or choose a source on the Data page")
    elif source[0] == "mitdb" and not res.folder_is_built(source[1]):
        data = ("idle", f"{source[1]}: beats not built yet (the demo builds them, a few seconds)")
    else:
        data = ("ok", f"{source[1]}: beats ready")
    model = (("ok", (f"{len(saved)} saved, newest {saved[0].version} "
                     f"(accuracy {saved[0].metrics.get('accuracy', float('nan')):.2%})")) if saved
             else ("missing", "none trained yet (the demo trains one)"))
    rows = {"data": data, "model": model}
    if settings.backend == "aws" and not res.backend_ready():
        return rows | {"backend": ("error", "unusable profile: see Settings")}
    try:
        rows.update({name: (part.state, part.detail) for name, part in pipeline.status().items()})
    except Exception as error:  # no credentials, no network, a stack in a bad state: reported, not raised
        rows["backend"] = ("error", user_message(error))
    return rows


if source is None:
    st.warning("No MIT-BIH records found (HB_DATA_DIR is not set and nothing was downloaded). "
               "Download the 48 records (~100 MB) from PhysioNet, or choose a Kaggle CSV on the Data page.")
    if st.button("Download MIT-BIH from PhysioNet", key="home_download"):
        with st.spinner("Downloading from PhysioNet (a few minutes)…"):
            try:
                res.use_folder(str(physionet.download_mitdb(paths.download_dir())))
                st.rerun()
            except Exception as error:  # network errors come from requests, urllib3 and wfdb alike
                st.error(f"Downloading from PhysioNet failed: {user_message(error)}. Press the button again to resume.")
    st.page_link("pages/data.py", label="Choose another source on the Data page", icon=":material/database:")


def follow_demo(run: "DemoRun") -> str | None:
    """Draw a demo run's set-up until the replay starts; the error of the failed step, or None."""
    bar = st.progress(0.0, text="Starting…")
    started = time.monotonic()
    while not (progress := run.progress()).finished:
        step = STEP_LABELS.get(progress.step, "Working")
        last = progress.messages[-1] if progress.messages else ""
        bar.progress(progress.fraction, text=f"{step}… {time.monotonic() - started:,.0f} s · {last}")
        time.sleep(POLL_S)
    bar.progress(1.0, text="Streaming: opening the live monitor…")
    return redact(progress.error) if progress.error else None


def start_demo() -> "DemoRun | str":
    """Load (or build) the beats here, behind a spinner, then start the demo's set-up thread."""
    from hbcore.app.demo import (
        DemoRun,  # imports scikit-learn: not on the first paint of the app
    )

    with st.spinner("Loading the beats (building them takes a few seconds the first time)…"):
        try:
            demo_beats = res.current_beats(build=True)
        except (OSError, ValueError) as error:
            return f"data: {user_message(error)}"
    if demo_beats is None:
        return "data: no beats; choose a source on the Data page."
    run = DemoRun(pipeline, lambda: demo_beats, n_beats=len(demo_beats), rate_bps=DEMO_RATE_BPS)
    res.background_runs()["demo"] = run.start()
    return run


current = res.background_runs().get("demo")
demo_running = current is not None and not current.progress().finished
if st.button("Run the full demo", key="run_demo", type="primary", disabled=source is None or demo_running,
             help="Builds or loads the beats, trains a model (or reuses the saved one), deploys it, "
                  f"streams the test beats at {DEMO_RATE_BPS:.0f} beats/s and opens the live monitor"):
    current = start_demo()
    demo_running = not isinstance(current, str)
    st.session_state["home_demo_error"] = current if isinstance(current, str) else None
if demo_running:
    error = follow_demo(current)
    st.session_state["home_demo_error"] = error
    if error is None:
        st.switch_page("pages/monitor.py")
if st.session_state["home_demo_error"]:
    st.error(st.session_state["home_demo_error"])
elif current is not None and not isinstance(current, str) and (failure := current.progress().error):
    st.error(redact(failure))  # a demo that failed while this session was elsewhere

st.divider()
rows = part_rows()
st.graphviz_chart(diagram.pipeline_dot({name: state for name, (state, _) in rows.items()}), width="stretch")
status = pd.DataFrame([{"part": name, "state": state, "detail": redact(detail)}
                       for name, (state, detail) in rows.items()])
st.dataframe(status.style.map(lambda state: f"background-color: {diagram.STATE_COLORS.get(state, 'white')}",
                              subset=["state"]),
             hide_index=True, width="stretch")
st.caption(f"Backend: {'local cloud on 127.0.0.1' if settings.backend == 'local' else 'AWS ' + settings.region}. "
           "Change it in Settings.")

st.subheader("Step by step")
steps = st.columns(5)
for column, (page, label, icon) in zip(steps, [
    ("pages/data.py", "1 · Data", ":material/database:"),
    ("pages/train.py", "2 · Train", ":material/model_training:"),
    ("pages/deploy.py", "3 · Deploy", ":material/cloud_upload:"),
    ("pages/stream.py", "4 · Stream", ":material/play_circle:"),
    ("pages/monitor.py", "5 · Monitor", ":material/monitor_heart:"),
]):
    with column:
        st.page_link(page, label=label, icon=icon)
