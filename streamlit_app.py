"""Heartbeat stream: the Streamlit entry point (`streamlit run streamlit_app.py`).

A thin router: the pages in ``pages/`` are views over ``hbcore``; the long-lived objects they
share (the Pipeline with its local cloud, replay and reader) and the cached frames are in
``hbcore.app.resources``.
"""

import streamlit as st

from hbcore.app.prelaunch import launch_local_cloud

launch_local_cloud()  # the local cloud's process starts while the first page imports (once per process)
st.set_page_config(page_title="Heartbeat stream", page_icon="🫀", layout="wide")

PAGES = {
    "Demo": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/monitor.py", title="Live monitor", icon=":material/monitor_heart:"),
        st.Page("pages/patient.py", title="Patient", icon=":material/ecg_heart:"),
        st.Page("pages/misclassified.py", title="Misclassified", icon=":material/search:"),
    ],
    "Pipeline": [
        st.Page("pages/data.py", title="Data", icon=":material/database:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/deploy.py", title="Deploy", icon=":material/cloud_upload:"),
        st.Page("pages/stream.py", title="Stream", icon=":material/play_circle:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ],
}

st.navigation(PAGES).run()
