"""Deploy: serve a trained model on the endpoint (local or SageMaker), check it, call it with a beat."""

import numpy as np
import streamlit as st

from hbcore.app import charts
from hbcore.app import resources as res
from hbcore.aws.redaction import redact, user_message
from hbcore.data.classes import CLASS_NAMES
from hbcore.model import store as modelstore
from hbcore.model.training import rr_of

st.session_state.setdefault("deploy_sample_class", "V")
st.session_state.setdefault("deploy_sample_seed", 0)

st.title("Deploy")
settings = res.settings()
saved = modelstore.saved_models()
if not saved:
    st.info("No trained model yet: train one first (or run the whole demo from the home page).")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

pipeline = res.pipeline()
versions = [model.version for model in saved]
if st.session_state.get("deploy_model") not in versions:
    st.session_state["deploy_model"] = versions[0]
version = st.selectbox("Model", versions, key="deploy_model",
                       format_func=lambda v: f"{v} ({saved[versions.index(v)].split or '?'} split, accuracy "
                                             f"{saved[versions.index(v)].metrics.get('accuracy', float('nan')):.2%})")
chosen = saved[versions.index(version)]
if not chosen.servable:
    st.warning(f"Model {chosen.version} was saved by an earlier release (a scikit-learn pickle, or features this "
               "release no longer computes), which the endpoint does not load: retrain it on the Train page.")
target = "the local endpoint server" if settings.backend == "local" else f"SageMaker in {settings.region} (serverless)"
st.caption(f"Deploys to endpoint `{pipeline.names.endpoint}` on {target}; the stream, the Lambda handler and the "
           "log group are created first if they do not exist.")

problem = res.backend_problem()
if problem:
    st.error(f"The backend cannot be used: {problem}")
    st.page_link("pages/settings.py", label="Check the settings", icon=":material/settings:")
if st.button("Deploy", key="deploy_run", type="primary", disabled=problem is not None):
    with st.status(f"Deploying {chosen.version}…", expanded=True) as box:
        try:
            deployment = pipeline.deploy(chosen.path, progress=box.write)
            box.update(label=f"Endpoint {deployment.endpoint}: {deployment.status}", state="complete", expanded=False)
            for warning in deployment.warnings:
                st.warning(warning)
        except Exception as error:  # boto3, moto and serving raise many kinds; all are shown, redacted
            box.update(label="Deploy failed", state="error")
            st.error(user_message(error))

st.subheader("Endpoint")
if not res.backend_ready():
    if settings.backend == "local":
        st.info("Nothing deployed in this session yet: press **Deploy** (the local cloud starts with it).")
    st.stop()
try:
    status = pipeline.endpoint_status()
except Exception as error:  # shown, redacted: the page must still draw
    st.error(user_message(error))
    st.stop()
if status is None:
    st.info(f"Endpoint `{pipeline.names.endpoint}` does not exist yet: press **Deploy**.")
    st.stop()
columns = st.columns(3)
columns[0].metric("Status", status["status"])
columns[1].markdown(f"**Model**  \n`{status.get('model', '?')}`")
columns[2].metric("Serving", "serverless" if status.get("serverless") else status.get("instance_type") or "?")
if status.get("failure_reason"):
    st.error(redact(status["failure_reason"]))

st.subheader("Test invocation")
beats = res.current_beats()
if beats is None:
    st.info("A test needs a beat from the active data source: choose one first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/database:")
    st.stop()
left, right = st.columns([1, 3])
present = [name for name, count in beats.class_counts().items() if count]
if st.session_state["deploy_sample_class"] not in present:
    st.session_state["deploy_sample_class"] = present[0]
left.selectbox("A random beat of class", present, key="deploy_sample_class")
if left.button("Invoke the endpoint", key="deploy_test"):
    st.session_state["deploy_sample_seed"] += 1
    label = CLASS_NAMES.index(st.session_state["deploy_sample_class"])
    rows = np.flatnonzero(beats.y == label)
    row = int(np.random.default_rng(st.session_state["deploy_sample_seed"]).choice(rows))
    try:
        answer = pipeline.test_invoke(beats.X[row], rr_of(beats)[row:row + 1])
        st.session_state["deploy_answer"] = (row, answer)
    except Exception as error:  # the endpoint may be down or still starting: say why
        st.session_state.pop("deploy_answer", None)
        st.error(user_message(error))
if "deploy_answer" in st.session_state and st.session_state["deploy_answer"][0] < len(beats):
    row, answer = st.session_state["deploy_answer"]
    prediction = answer["predictions"][0]
    with right:
        st.markdown(f"Beat `{beats.meta['record'][row]}:{beats.meta['sample'][row]}`, true class "
                    f"**{CLASS_NAMES[beats.y[row]]}** → predicted **{prediction['class_name']}** by model "
                    f"`{answer.get('model_version', '?')}` in {answer['round_trip_ms']:,.0f} ms")
        st.altair_chart(charts.beat_overlay(beats.X[row], {}, title="the beat sent"), width="stretch")
        st.altair_chart(charts.class_bars(dict(zip(CLASS_NAMES, prediction["probabilities"])), title="probabilities",
                                          axis_title="probability", number_format=".3f"), width="stretch")
