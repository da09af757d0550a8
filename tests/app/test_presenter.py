"""The presenter's path through the app (AppTest): nothing is replaced or stopped without asking, an AWS
backend without credentials says what is missing and keeps the demo off, an offline PhysioNet
download names the ways on, and the Train page says what is deployed and how it scored offline.

The pages run against a Pipeline on a plain moto server (``moto_url``) holding a real, slow replay,
so "a replay is running" is true the way it is in the app.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kit.beatkit import make_beats

from hbcore.app import resources
from hbcore.app.pipeline import Pipeline
from hbcore.app.settings import Settings, load_settings, save_settings
from hbcore.aws.backend import Backend

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
RUN_TIMEOUT_S = 60
SLOW_RATE_BPS = 2.0  # the replay runs for minutes: it is still running when the page looks


def run(at):
    at.run(timeout=RUN_TIMEOUT_S)
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_app(page: str | None = None, **session):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    for key, value in session.items():
        at.session_state[key] = value
    run(at)
    if page is not None:
        at.switch_page(f"pages/{page}.py")
        run(at)
    return at


def texts(elements) -> str:
    return " | ".join(str(element.value) for element in elements)


@pytest.fixture
def app_cache(tmp_path, monkeypatch):
    """A private cache (settings, model store) and no MIT-BIH folder; the app's shared objects released after."""
    import streamlit as st

    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HB_DATA_DIR", raising=False)
    yield tmp_path / "cache"
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def running(app_cache, moto_url, monkeypatch):
    """The app's Pipeline on moto (its stream made), with a replay of 200 beats at SLOW_RATE_BPS running."""
    backend = Backend(kind="local", endpoint_url=moto_url)
    monkeypatch.setattr(resources, "Pipeline", lambda active: Pipeline(active, backend=backend))
    save_settings(Settings(prefix=f"hb{uuid.uuid4().hex[:6]}"))
    pipeline = resources.pipeline()
    kinesis = backend.client("kinesis")
    kinesis.create_stream(StreamName=pipeline.names.stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=pipeline.names.stream, WaiterConfig={"Delay": 0.1})
    pipeline._stack_outputs = {"StreamName": pipeline.names.stream}  # as deployed: the Stream page's Start is on
    replay = pipeline.start_replay(make_beats({"100": 200}), rate_bps=SLOW_RATE_BPS)
    yield pipeline, replay
    pipeline.close()


def kaggle_session() -> dict:
    """A session whose data source is a small beat set (as a loaded Kaggle CSV is)."""
    return {"data_source": ("kaggle", "beats.csv"), "data_kaggle_beats": make_beats({"101": 50, "102": 50})}


# --- a running replay is never replaced without asking ----------------------------------------------------

def test_run_the_full_demo_asks_before_replacing_a_running_replay(running):
    pipeline, replay = running
    at = open_app(**kaggle_session())
    at.button(key="run_demo").click()
    run(at)

    assert f"A replay is running: run `{replay.run}`" in texts(at.warning)
    assert "Stop it and start a new one?" in texts(at.warning)
    assert replay.progress().state == "running" and pipeline.replay is replay
    assert "demo" not in resources.background_runs()
    assert at.button(key="run_demo").disabled


def test_cancel_keeps_the_running_replay(running):
    pipeline, replay = running
    at = open_app(**kaggle_session())
    at.button(key="run_demo").click()
    run(at)
    at.button(key="home_confirm_cancel").click()
    run(at)

    assert not at.warning and not at.button(key="run_demo").disabled
    assert replay.progress().state == "running" and pipeline.replay is replay


def test_stream_start_asks_then_replaces_the_running_replay(running):
    pipeline, replay = running
    at = open_app("stream", **kaggle_session())
    at.radio(key="stream_which").set_value("all")
    at.button(key="stream_start").click()
    run(at)
    assert f"A replay is running: run `{replay.run}`" in texts(at.warning)
    assert pipeline.replay is replay and replay.progress().state == "running"

    at.button(key="stream_confirm_replace").click()
    run(at)
    assert replay.progress().state == "stopped"
    assert pipeline.replay is not replay and pipeline.replay.progress().state == "running"
    assert [mark.kind for mark in pipeline.marks()] == ["start", "stop", "start"]


def test_stream_pause_and_resume_are_marked_on_the_timeline(running):
    pipeline, replay = running
    at = open_app("stream", **kaggle_session())
    at.button(key="stream_pause").click()
    run(at)
    at.button(key="stream_pause").click()
    run(at)

    marks = pipeline.marks()
    assert [mark.kind for mark in marks] == ["start", "pause", "resume"]
    assert all(mark.run == replay.run for mark in marks) and marks[0].t <= marks[1].t <= marks[2].t


# --- settings: ask first, spinner, Apply only for a change -------------------------------------------------

def test_apply_is_disabled_until_something_changes(app_cache):
    at = open_app("settings")
    assert at.button(key="settings_apply").disabled
    at.text_input(key="settings_prefix").set_value("other")
    run(at)
    assert not at.button(key="settings_apply").disabled


def test_applying_asks_before_stopping_a_running_replay(running):
    _, replay = running
    before = load_settings()
    at = open_app("settings")
    at.text_input(key="settings_prefix").set_value("other")
    run(at)
    at.button(key="settings_apply").click()
    run(at)

    assert f"Applying stops the running replay (run `{replay.run}`" in texts(at.warning)
    assert load_settings() == before and replay.progress().state == "running"
    assert at.button(key="settings_apply").disabled  # one question at a time

    at.button(key="settings_confirm_apply").click()
    run(at)
    assert load_settings().prefix == "other"
    assert replay.progress().done
    assert "Saved" in texts(at.success)
    assert at.button(key="settings_apply").disabled  # saved: nothing left to apply


def test_applying_with_nothing_running_saves_at_once(app_cache):
    at = open_app("settings")
    at.text_input(key="settings_prefix").set_value("other")
    run(at)
    at.button(key="settings_apply").click()
    run(at)

    assert load_settings().prefix == "other" and not at.warning
    assert "Saved" in texts(at.success) and at.button(key="settings_apply").disabled


# --- AWS without credentials -------------------------------------------------------------------------------

@pytest.fixture
def aws_without_credentials(app_cache, monkeypatch):
    """The AWS backend chosen on a machine with no credentials anywhere (boto3 fails before any request)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    save_settings(Settings(backend="aws", region="eu-west-1"))


NO_CREDENTIALS = "no AWS credentials found in the default credential chain"


def test_aws_without_credentials_says_what_is_missing_and_keeps_the_demo_off(aws_without_credentials):
    at = open_app(**kaggle_session())

    assert NO_CREDENTIALS in texts(at.error)
    assert "docs/aws.md, Prerequisites" in texts(at.error)
    assert "NoCredentialsError" not in texts(at.error)
    assert at.button(key="run_demo").disabled
    assert "docs/aws.md → Prerequisites" in texts(at.caption)
    assert [expander.label for expander in at.expander] == ["docs/aws.md → Prerequisites"]
    assert "An AWS account and credentials" in texts(at.expander[0].markdown)
    backend_row = at.table[0].value.set_index("part").loc["backend"]
    assert backend_row["state"] == "error" and backend_row["detail"].startswith(NO_CREDENTIALS)


def test_the_stream_page_names_the_missing_credentials_not_a_missing_deploy(aws_without_credentials):
    at = open_app("stream", **kaggle_session())

    assert NO_CREDENTIALS in texts(at.error)
    assert "deploy a model first" not in texts(at.warning)
    assert at.button(key="stream_start").disabled


def test_settings_check_the_aws_credentials_when_aws_is_applied(app_cache, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    at = open_app("settings")
    at.radio(key="settings_backend").set_value("aws")
    run(at)
    at.button(key="settings_apply").click()
    run(at)

    assert load_settings().backend == "aws"
    assert NO_CREDENTIALS in texts(at.error)
    assert at.button(key="settings_check").label == "Check again"


# --- no data, no internet ------------------------------------------------------------------------------------

def test_an_offline_physionet_download_names_the_two_ways_on(app_cache, monkeypatch):
    import requests
    import wfdb

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='physionet.org', port=443): Max retries exceeded with url: /content/mitdb/ "
            "(Caused by NameResolutionError(\"Failed to resolve 'physionet.org'\"))")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    at = open_app()
    at.button(key="home_download").click()
    run(at)

    shown = texts(at.error)
    assert "PhysioNet (physionet.org) cannot be reached" in shown
    assert "HTTPSConnectionPool" not in shown and "NameResolutionError" not in shown
    labels = {link.proto.label for link in at.get("page_link")}
    assert {"Use a folder of WFDB records (.hea, .dat, .atr)",
            "Use a Kaggle CSV (mitbih_train.csv, mitbih_test.csv)"} <= labels


# --- the Train page: what is deployed, and its offline figures ----------------------------------------------

def test_train_names_the_deployed_model_its_source_and_its_offline_figures(running):
    from hbcore.model import store as modelstore
    from hbcore.model.training import ModelParams, train_and_evaluate

    pipeline, _ = running
    beats = make_beats({"101": 60, "102": 60})
    model = train_and_evaluate(beats, "intra", ModelParams(hidden_layers=(8,), max_iter=2), source="mitdb",
                               source_name="/data/mitdb", preset="quick")
    saved = modelstore.save_model(model)
    pipeline.deployed_path = saved.path
    figures = saved.metrics

    at = open_app("train", **kaggle_session())

    shown = texts(at.info)
    assert f"**Deployed:** quick model `{saved.version}` (intra split, from /data/mitdb)" in shown
    assert f"accuracy {figures['accuracy']:.2%}, macro-F1 {figures['macro_f1']:.3f}" in shown
    assert f"Se N {figures['per_class']['N']['recall']:.2f}" in shown
    table = at.dataframe[-1].value.set_index("version")
    assert table.loc[saved.version, "source"] == "/data/mitdb" and table.loc[saved.version, "kind"] == "quick"


def test_marks_record_a_finished_run_once(running):
    pipeline, replay = running
    replay.stop()
    deadline = time.monotonic() + 10
    while not replay.progress().done and time.monotonic() < deadline:
        time.sleep(0.05)
    pipeline.marks()
    assert [mark.kind for mark in pipeline.marks()] == ["start", "stop"]


def test_a_failed_demo_step_stops_the_bar_where_it_failed_with_the_reason(app_cache, moto_url, monkeypatch):
    backend = Backend(kind="local", endpoint_url=moto_url)

    def made_at_once(active):
        pipeline = Pipeline(active, backend=backend)
        pipeline.ensure_stack = lambda progress=None, options=None: {}  # the data step is the one that fails
        return pipeline

    monkeypatch.setattr(resources, "Pipeline", made_at_once)
    at = open_app(data_source=("mitdb", str(app_cache / "no-such-folder")))
    at.button(key="run_demo").click()
    run(at)

    bar = at.get("progress")[0].proto
    assert bar.text.startswith("Stopped at Loading the beats: data: ")
    assert "no-such-folder" in bar.text
    assert 0 < bar.value < 100  # where it stopped, not full
    assert "✕ Loading the beats" in texts(at.caption)
    run(at)
    assert not at.button(key="run_demo").disabled  # once it failed, it can be tried again


def test_the_data_page_says_physionet_is_unreachable_and_points_to_the_offline_sources(app_cache, monkeypatch):
    import requests
    import wfdb

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("HTTPSConnectionPool(host='physionet.org', port=443): "
                                                  "Max retries exceeded (Caused by NameResolutionError)")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    at = open_app("data")
    at.radio(key="data_source_choice").set_value("Download from PhysioNet")
    run(at)
    at.text_input(key="data_download_dir").set_value(str(app_cache / "download"))
    run(at)
    at.button(key="data_download").click()
    run(at)

    assert texts(at.error).startswith("PhysioNet (physionet.org) cannot be reached")
    assert "HTTPSConnectionPool" not in texts(at.error)
    assert "MIT-BIH records in a folder" in texts(at.info) and "Kaggle CSV" in texts(at.info)
