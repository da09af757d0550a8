"""Settings: where the pipeline runs (the local cloud, or AWS with a profile and region) and its names.

Applying a change stops the current pipeline, so it asks first when that would stop a replay or the
local cloud, shows a spinner while it stops, and on AWS checks the credentials at once.
"""

import streamlit as st

from hbcore.app import resources as res
from hbcore.app.settings import BACKENDS, Settings, save_settings
from hbcore.aws.identity import Identity
from hbcore.aws.redaction import user_message

BACKEND_LABELS = {"local": "Local cloud on 127.0.0.1 (no AWS account)", "aws": "AWS (your account)"}

saved = res.settings()
st.session_state.setdefault("settings_backend", saved.backend)
st.session_state.setdefault("settings_profile", saved.profile or "")
st.session_state.setdefault("settings_region", saved.region)
st.session_state.setdefault("settings_prefix", saved.prefix)
st.session_state.setdefault("settings_confirm", False)
st.session_state.setdefault("settings_flash", None)

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
pipeline = res.pipeline()


def apply(new: Settings) -> None:
    """Save, stop the old pipeline and, on AWS, check the credentials: all behind a spinner, then say what happened."""
    with st.spinner("Stopping the current pipeline…" if pipeline.backend_started else "Saving…"):
        save_settings(new)
        res.close_pipeline()
    flash = f"Saved: the pipeline now uses {BACKEND_LABELS[new.backend]}."
    if new.backend == "aws":
        with st.spinner("Checking the AWS credentials (STS GetCallerIdentity)…"):
            checked = res.pipeline().identity(refresh=True)
        flash += f" {checked.describe()}." if isinstance(checked, Identity) else ""
    st.session_state["settings_flash"] = flash
    st.session_state["settings_confirm"] = False
    st.rerun()  # redrawn with the new settings saved: Apply is disabled again


def running_parts() -> str | None:
    """What applying would stop, in words, or None when nothing runs."""
    if pipeline.replay_running():
        assert pipeline.replay is not None  # a replay runs
        progress = pipeline.replay.progress()
        return (f"the running replay (run `{progress.run}`, {progress.sent:,} of {progress.total:,} beats sent)"
                + (" and the local cloud with everything deployed on it" if saved.backend == "local" else ""))
    if saved.backend == "local" and pipeline.backend_started:
        return "the local cloud with everything deployed on it"
    return None


if st.button("Apply", key="settings_apply", type="primary",
             disabled=not changed or st.session_state["settings_confirm"]):
    assert chosen is not None  # Apply is enabled only for valid, changed settings
    if running_parts():
        st.session_state["settings_confirm"] = True
        st.rerun()
    apply(chosen)
if st.session_state["settings_confirm"]:
    stops = running_parts()
    if not changed or stops is None:  # the choice went back, or what would stop has ended
        st.session_state["settings_confirm"] = False
    else:
        assert chosen is not None  # changed implies valid
        st.warning(f"Applying stops {stops}. Apply the new settings?")
        choices = st.columns(2)
        if choices[0].button("Stop it and apply", key="settings_confirm_apply", type="primary"):
            apply(chosen)
        if choices[1].button("Cancel", key="settings_confirm_cancel"):
            st.session_state["settings_confirm"] = False
            st.rerun()
if st.session_state["settings_flash"]:
    st.success(st.session_state.pop("settings_flash"))
elif chosen == saved:
    st.caption(f"These are the active settings ({BACKEND_LABELS[saved.backend]}).")

if saved.backend == "aws" and chosen == saved:
    st.subheader("AWS credentials")
    checked = res.backend_problem()
    if checked:
        st.error(f"The AWS backend cannot be used: {checked}")
    else:
        identity = pipeline.identity()
        assert isinstance(identity, Identity)  # no problem: the check found the caller
        st.success(f"AWS: {identity.describe()}.")
    st.caption("What AWS needs: docs/aws.md → Prerequisites.")
    if st.button("Check again", key="settings_check"):
        with st.spinner("Checking the AWS credentials (STS GetCallerIdentity)…"):
            pipeline.identity(refresh=True)
        st.rerun()
