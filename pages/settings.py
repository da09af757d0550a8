"""Settings: where the pipeline runs (the local cloud, or AWS with a profile and region) and its names."""

import streamlit as st

from hbcore.app import resources as res
from hbcore.app.settings import BACKENDS, save_settings
from hbcore.aws.redaction import user_message

BACKEND_LABELS = {"local": "Local cloud on 127.0.0.1 (no AWS account)", "aws": "AWS (your account)"}

saved = res.settings()
st.session_state.setdefault("settings_backend", saved.backend)
st.session_state.setdefault("settings_profile", saved.profile or "")
st.session_state.setdefault("settings_region", saved.region)
st.session_state.setdefault("settings_prefix", saved.prefix)

st.title("Settings")

backend = st.radio("Backend", BACKENDS, key="settings_backend", format_func=BACKEND_LABELS.get)
if backend == "aws":
    st.caption("Credentials come from boto3's standard chain (a profile in ~/.aws, environment variables, "
               "an instance role). The app stores only the profile's name, never a key. Create the stack "
               "first with `python -m deploy up`; remove everything with `python -m deploy down`.")
left, right = st.columns(2)
left.text_input("AWS profile (empty: the default chain)", key="settings_profile", disabled=backend == "local")
left.text_input("Region", key="settings_region")
right.text_input("Resource prefix", key="settings_prefix",
                 help="1-20 lower-case letters, digits or '-'; every resource name starts with it")

try:
    chosen = saved.with_changes(backend=backend, profile=st.session_state["settings_profile"].strip(),
                                region=st.session_state["settings_region"].strip(),
                                prefix=st.session_state["settings_prefix"].strip())
except ValueError as error:
    st.error(user_message(error))
    chosen = None

if chosen is not None:
    names = chosen.names
    st.subheader("Resource names")
    st.table({
        "resource": ["Kinesis stream", "Lambda function", "Log group", "SageMaker endpoint", "CloudFormation stack",
                     "S3 bucket"],
        "name": [names.stream, names.function, names.log_group, names.endpoint, names.stack,
                 names.bucket("<account>", chosen.region)],
    })
changed = chosen is not None and chosen != saved
if st.button("Apply", key="settings_apply", type="primary", disabled=not changed):
    save_settings(chosen)
    res.close_pipeline()
    st.success("Saved. The pipeline now uses these settings; the previous one was stopped.")
elif chosen == saved:
    st.caption(f"These are the active settings ({BACKEND_LABELS[saved.backend]}).")
