"""Home: what the system is, one button that runs the whole demo, and the state of each part.

The button comes first: it is what most visitors want, and it paints before the status panel,
whose diagram and table load the browser's heavier chart code. While the demo sets up, the page
redraws its progress and the status panel every POLL_S, then opens the live monitor. A replay
already running is never replaced without asking. On the local backend, opening the page starts
the local cloud and creates the stack in the background (Pipeline.warm_up): the demo's click then
waits for neither.
"""

import functools
import importlib
import sys
import threading
import time
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from hbcore import paths
from hbcore.app import diagram
from hbcore.app import resources as res
from hbcore.aws import identity
from hbcore.aws.redaction import redact, user_message
from hbcore.data import physionet
from hbcore.model import store as modelstore
from hbcore.model import training

if TYPE_CHECKING:  # imported for real in start_demo: hbcore.app.demo loads scikit-learn
    from hbcore.app.demo import DemoProgress, DemoRun
    from hbcore.app.pipeline import Pipeline

DEMO_RATE_BPS = 250.0
POLL_S = 0.5
FINISH_CHECK_S = 0.05  # between redraws, how often the page looks whether the replay has started
# The choice of patients; keys are hbcore.app.demo.DEMO_SPLITS' (not imported here: it loads scikit-learn).
PATIENTS = {"inter": "Unseen patients (DS2: 22 records the model never saw, trained on DS1)",
            "intra": "Patients the model has seen (intra-patient test beats)"}
STEP_LABELS = {"data": "Loading the beats", "model": "Training a model (or loading the saved one)",
               "stack": "Creating the stream, the Lambda handler and the log group",
               "endpoint": "Deploying the model to the endpoint", "replay": "Starting the replay"}
STEP_MARKS = {"waiting": "○", "working": "◐", "done": "●", "failed": "✕"}
DEMO_MODULE = "hbcore.app.demo"
MONITOR_MODULES = ("hbcore.app.charts", "hbcore.app.dashboard", "hbcore.app.alarms")  # charts: altair, 0.57 s headless
WARM_UP_WAIT_S = 60.0  # the longest the monitor's imports wait for the warm-up
PRELOAD_THREAD = "home-demo-import"
AWS_PREREQUISITES = "docs/aws.md → Prerequisites"

st.session_state.setdefault("home_demo_error", None)
st.session_state.setdefault("home_split", "inter")
st.session_state.setdefault("home_confirm", False)
st.session_state.setdefault("home_download_error", None)

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
blocked = res.backend_problem()


def stage_stored_model(folder: str, warmed: "Pipeline") -> None:
    """The warm-up's last step: the stored model the demo would deploy on these beats, served."""
    from hbcore.app.demo import stage_model  # scikit-learn: in the warm-up's thread, not on the first paint

    stage_model(warmed, lambda: res.folder_beats(folder))  # the demo's default split: unseen patients


# Local backend: the cloud, the stack, the reader and (beats built, unseen patients chosen) the stored demo
# model are made ready while the page is read.
built_folder = source[1] if source is not None and source[0] == "mitdb" and res.folder_is_built(source[1]) else None
if source is not None and blocked is None:
    pipeline.warm_up(functools.partial(stage_stored_model, built_folder)
                     if built_folder is not None and st.session_state["home_split"] == "inter" else None)


def part_rows() -> dict[str, tuple[str, str]]:
    """(state, detail) of every part: data and model from the session, the rest from the Pipeline."""
    if source is None:
        data = ("missing", "no MIT-BIH records: download them above or choose a source on the Data page")
    elif source[0] == "mitdb" and not res.folder_is_built(source[1]):
        estimate_s = res.load_estimate_s(source[1])
        data = ("idle", f"{source[1]}: beats not built yet (the demo builds them, about {estimate_s:,.0f} s)")
    else:
        data = ("ok", f"{source[1]}: beats ready")
    models = modelstore.saved_models()
    model = (("ok", (f"{len(models)} saved, newest {models[0].version} "
                     f"(accuracy {models[0].metrics.get('accuracy', float('nan')):.2%})")) if models
             else ("missing", "none trained yet (the demo trains one)"))
    rows = {"data": data, "model": model}
    if blocked:
        return rows | {"backend": ("error", blocked)}
    try:
        rows.update({name: (part.state, part.detail) for name, part in pipeline.status().items()})
    except Exception as error:  # no credentials, no network, a stack in a bad state: reported, not raised
        rows["backend"] = ("error", user_message(error))
    return rows


def download() -> None:
    """Button callback: fetch MIT-BIH from PhysioNet; a failure is kept for the page to explain."""
    st.session_state["home_download_error"] = None
    try:
        res.use_folder(str(physionet.download_mitdb(paths.download_dir())))
    except physionet.PhysioNetUnreachable as error:
        st.session_state["home_download_error"] = ("unreachable", redact(str(error)))
    except physionet.DownloadError as error:
        reason = f"{user_message(error)}. Press the button again to resume."
        st.session_state["home_download_error"] = ("failed", reason)


if source is None:
    st.warning("No MIT-BIH records found (HB_DATA_DIR is not set and nothing was downloaded). "
               "Download the 48 records (~100 MB) from PhysioNet, or choose a Kaggle CSV on the Data page.")
    st.button("Download MIT-BIH from PhysioNet", key="home_download", on_click=download)
    problem = st.session_state["home_download_error"]
    if problem and problem[0] == "unreachable":
        st.error(f"PhysioNet ({physionet.PHYSIONET_HOST}) cannot be reached: no internet connection, or a proxy "
                 "or firewall in the way. Two ways on without it:")
        ways = st.columns(2)
        with ways[0]:
            st.page_link("pages/data.py", label="Use a folder of WFDB records (.hea, .dat, .atr)",
                         icon=":material/folder_open:")
        with ways[1]:
            st.page_link("pages/data.py", label="Use a Kaggle CSV (mitbih_train.csv, mitbih_test.csv)",
                         icon=":material/table:")
    elif problem:
        st.error(f"Downloading from PhysioNet failed: {problem[1]}")
    else:
        st.page_link("pages/data.py", label="Choose another source on the Data page", icon=":material/database:")

if blocked:
    st.error(f"The AWS backend cannot be used: {blocked}")
    st.caption(f"What AWS needs: {AWS_PREREQUISITES} (credentials, permissions, a region with SageMaker "
               "serverless). The demo stays off until the check passes; the local cloud needs none of it.")
    if (needs := identity.prerequisites()) is not None:
        with st.expander("docs/aws.md → Prerequisites"):
            st.markdown(needs)
    st.page_link("pages/settings.py", label="Check again, or switch to the local cloud, in Settings",
                 icon=":material/settings:")


def start_demo() -> None:
    """Start the demo's set-up thread; the beats are loaded (or built) in it, with the rest."""
    from hbcore.app.demo import (
        DemoRun,  # imports scikit-learn: not on the first paint of the app
    )

    st.session_state["home_demo_error"] = None
    st.session_state["home_confirm"] = False
    if source is None:
        st.session_state["home_demo_error"] = "data: no beats; choose a source on the Data page."
        return
    kind, name = source
    if kind == "kaggle":
        beats = res.current_beats()
        if beats is None:
            st.session_state["home_demo_error"] = "data: the Kaggle rows are gone; load the CSV again on the Data page."
            return
        load, load_s = (lambda: beats), 0.1
    else:
        load, load_s = (lambda: res.folder_beats(name)), res.load_estimate_s(name)
    split = "intra" if kind == "kaggle" else st.session_state["home_split"]  # Kaggle rows name no patient
    run = DemoRun(pipeline, load, n_beats=None, rate_bps=DEMO_RATE_BPS, split=split, load_s=load_s, source=kind,
                  source_name=name)
    res.background_runs()["demo"] = run.start()


def demo_pressed() -> None:
    """Button callback: ask first when a replay runs (it would be stopped), else start."""
    if pipeline.replay_running():
        st.session_state["home_confirm"] = True
    else:
        start_demo()


def replace_replay() -> None:
    pipeline.stop_replay()
    start_demo()


current = res.background_runs().get("demo")
demo_running = current is not None and not current.progress().finished
if source is not None and source[0] == "kaggle":
    st.caption("Kaggle rows name no patient: the demo streams the intra-patient test beats.")
else:
    st.radio("Patients to stream", list(PATIENTS), key="home_split", format_func=PATIENTS.get,
             disabled=demo_running)
st.button("Run the full demo", key="run_demo", type="primary",
          disabled=source is None or demo_running or blocked is not None or st.session_state["home_confirm"],
          on_click=demo_pressed)
st.caption("Loads (or builds) the beats, trains a quick model while the stream and the handler are created, "
           f"deploys it, streams the chosen patients at {DEMO_RATE_BPS:.0f} beats/s and opens the live monitor; "
           "the fully trained model replaces the quick one on the endpoint when it is ready.")

if st.session_state["home_confirm"]:
    if pipeline.replay_running():
        assert pipeline.replay is not None  # a replay runs
        running = pipeline.replay.progress()
        st.warning(f"A replay is running: run `{running.run}`, {running.sent:,} of {running.total:,} beats sent "
                   f"({running.state}). Stop it and start a new one?")
        choices = st.columns(3)
        choices[0].button("Stop it and start the demo", key="home_confirm_replace", type="primary",
                          on_click=replace_replay)
        with choices[1]:
            st.page_link("pages/monitor.py", label="Watch the running replay instead", icon=":material/monitor_heart:")
        choices[2].button("Cancel", key="home_confirm_cancel",
                          on_click=lambda: st.session_state.update(home_confirm=False))
    else:  # it ended while the question was open: nothing left to replace
        st.session_state["home_confirm"] = False
        st.rerun()

progress_area = st.empty()
st.divider()
diagram_area = st.empty()
table_area = st.empty()
st.caption(f"Backend: {'local cloud on 127.0.0.1' if settings.backend == 'local' else 'AWS ' + settings.region}. "
           "Change it in Settings.")


def draw_status(previous: dict[str, tuple[str, str]] | None = None) -> dict[str, tuple[str, str]]:
    """The diagram and the table of every part's state; redrawn only when something changed."""
    rows = part_rows()
    if rows != previous:
        diagram_area.graphviz_chart(diagram.pipeline_dot({name: state for name, (state, _) in rows.items()}),
                                    width="stretch")
        status = pd.DataFrame([{"part": name, "state": state, "detail": redact(detail)}
                               for name, (state, detail) in rows.items()])
        # st.table wraps long details; a data frame cut them off at the column's width
        table_area.table(status.style.hide(axis="index").map(
            lambda state: f"background-color: {diagram.STATE_COLORS.get(state, 'white')}", subset=["state"]))
    return rows


def draw_progress(progress: "DemoProgress", elapsed_s: float) -> None:
    """The bar (stopped where a step failed), and one line per step with its time and estimate."""
    with progress_area.container():
        if progress.error:
            text = f"Stopped at {STEP_LABELS.get(progress.step or '', 'the demo')}: {redact(progress.error)}"
        else:
            step = STEP_LABELS.get(progress.step or "", "Working")
            last = f" · {redact(progress.messages[-1])}" if progress.messages else ""
            text = f"{step}… {elapsed_s:,.0f} s, about {progress.remaining_s:,.0f} s to the first predictions{last}"
        st.progress(progress.fraction, text=text)
        lines = []
        for step in progress.steps:
            timing = (f"{step.elapsed_s:,.1f} s" if step.state in ("done", "failed")
                      else f"{step.elapsed_s:,.0f} of ~{step.expected_s:,.0f} s" if step.state == "working" else "")
            lines.append(f"{STEP_MARKS[step.state]} {STEP_LABELS[step.name]} {timing}"
                         + (f" · {redact(step.detail)}" if step.detail else ""))
        st.caption("  \n".join(lines))


def follow_demo(run: "DemoRun") -> str | None:
    """Redraw a demo run's set-up and the status panel until the replay starts; the failed step's error, or None."""
    started = time.monotonic()
    rows = None
    while not (progress := run.progress()).finished:
        draw_progress(progress, time.monotonic() - started)
        rows = draw_status(rows)
        redraw_at = time.monotonic() + POLL_S
        while time.monotonic() < redraw_at and not run.progress().finished:  # leave as soon as the replay starts
            time.sleep(FINISH_CHECK_S)
    draw_progress(progress, time.monotonic() - started)
    return redact(progress.error) if progress.error else None


if demo_running:
    assert current is not None  # running
    error = follow_demo(current)
    st.session_state["home_demo_error"] = error
    if error is None:
        st.switch_page("pages/monitor.py")
    draw_status()
else:
    draw_status()
    if st.session_state["home_demo_error"]:
        progress_area.error(st.session_state["home_demo_error"])
    elif current is not None:
        ended = current.progress()
        if ended.error:
            draw_progress(ended, 0.0)  # a demo that failed while this session was elsewhere
        elif ended.upgrade is not None:
            progress_area.caption(f"Model: {redact(ended.upgrade.detail)}"
                                  + (f" ({ended.upgrade.elapsed_s:,.0f} of ~{ended.upgrade.expected_s:,.0f} s)"
                                     if ended.upgrade.state == "training" else ""))

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



def preload(folder: str | None, will_train: bool, warming: "Pipeline") -> None:
    """Import the demo's module, load the built beats of ``folder`` (None: none) into the app's cache with their
    digest, when the demo ``will_train`` import what training needs (scikit-learn: ~1.3 s) and, once
    ``warming``'s warm-up has ended (so as not to slow it), the live monitor's modules (the page the demo opens)."""
    importlib.import_module(DEMO_MODULE)
    if folder is not None:
        res.folder_beats(folder).digest  # noqa: B018 (taken once per set: the model lookups then hash nothing)
    if will_train:
        training.import_estimators()
    warming.wait_for_warm_up(WARM_UP_WAIT_S)
    for module in MONITOR_MODULES:
        importlib.import_module(module)


# Once the page is drawn, the demo's module is imported, the built beats loaded, (no stored full model of
# unseen patients: the demo will train) scikit-learn imported and, after the warm-up, the monitor's modules
# imported in the background, so that neither the click, the warm-up nor the monitor's first run (which
# imported them after a click, beside the replay's start) waits for them (an import or a load under way is
# waited for, not repeated). With a model stored, scikit-learn is not imported: the cached demo needs none
# of it, and the warm-up's CPU is scarce.
if DEMO_MODULE not in sys.modules and not any(thread.name == PRELOAD_THREAD for thread in threading.enumerate()):
    stored = bool(modelstore.full_models("inter"))
    threading.Thread(target=preload, args=(built_folder, built_folder is None or not stored, pipeline),
                     name=PRELOAD_THREAD, daemon=True).start()
