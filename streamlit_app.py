"""Heartbeat stream: the Streamlit entry point (`streamlit run streamlit_app.py`).

A thin router: the pages in ``pages/`` are views over ``hbcore``; the long-lived objects they
share (the Pipeline with its local cloud, replay and reader) and the cached frames are in
``hbcore.app.resources``.

``streamlit run`` imports this file once as its server starts, to find ``app``; each browser
session then runs it as ``__main__``, which routes to the pages. The server's start launches the
local cloud's process (``hbcore.app.prelaunch``), before any browser has connected.
"""

import streamlit as st

from hbcore.app import prelaunch


def route() -> None:
    """One run of a session: the page it asked for."""
    prelaunch.launch_local_cloud()  # launched as the server started (a no-op then), or now (AppTest)
    st.set_page_config(page_title="Heartbeat stream", page_icon="🫀", layout="wide")
    pages = {
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
    st.navigation(pages).run()


if __name__ == "__main__":
    route()
else:
    app = st.App(__file__, lifespan=prelaunch.at_server_start)
