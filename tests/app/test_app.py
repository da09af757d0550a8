"""The Streamlit app, page by page, with ``streamlit.testing.v1.AppTest`` against the local cloud.

The app runs on three real MIT-BIH records (symlinked into a private data folder) and a private
cache, with a small model saved in the model store beforehand so that **Run the full demo** reuses
it instead of training for minutes. The tests share one Pipeline (one local cloud), as the app's
sessions do, and release it at the end of the module.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
APP_RECORDS = ("100", "119", "208")  # N, then many V and F beats: every page has something to show
RUN_TIMEOUT_S = 60
DEMO_TIMEOUT_S = 300
PREDICTIONS_TIMEOUT_S = 180
PREDICTIONS_CAPTION = re.compile(r"([\d,]+) predictions in the confusion matrix")


@pytest.fixture(scope="module")
def app_env(mitdb_dir: Path, tmp_path_factory):
    """HB_DATA_DIR = three records, HB_CACHE_DIR = a fresh cache; the app's shared objects released after."""
    import streamlit as st

    data = tmp_path_factory.mktemp("app_data")
    (data / "mitdb").mkdir()
    for record in APP_RECORDS:
        for suffix in (".hea", ".dat", ".atr"):
            (data / "mitdb" / f"{record}{suffix}").symlink_to(mitdb_dir / f"{record}{suffix}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HB_DATA_DIR", str(data))
        patch.setenv("HB_CACHE_DIR", str(tmp_path_factory.mktemp("app_cache")))
        yield data
        st.cache_resource.clear()  # closes the Pipeline: replay, reader, local cloud
        st.cache_data.clear()


@pytest.fixture(scope="module")
def saved_model(app_env):
    """A small model trained on the app's beats, saved where the demo looks for one."""
    from hbcore.app import training_run as training
    from hbcore.data import dataset
    from hbcore.model import store as modelstore
    from hbcore.model.training import ModelParams, train_and_evaluate

    beats = dataset.load_beats(app_env / "mitdb")
    model = train_and_evaluate(beats, "intra", ModelParams(hidden_layers=(32,), max_iter=3),
                               data_key=training.beats_key(beats), source="mitdb", source_name=str(app_env / "mitdb"))
    return modelstore.save_model(model)


def run(at, timeout: float = RUN_TIMEOUT_S):
    """Run the script and fail on any exception it raised."""
    at.run(timeout=timeout)
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_app(page: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = run(AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S))
    if page is not None:
        at.switch_page(f"pages/{page}.py")
        run(at)
    return at


def keys(elements) -> set[str]:
    return {element.key for element in elements}


def texts(elements) -> str:
    return " | ".join(str(element.value) for element in elements)


def wait_for_predictions(at, timeout_s: float = PREDICTIONS_TIMEOUT_S) -> int:
    """Rerun the monitor until its confusion matrix holds predictions; how many it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run(at)
        for caption in at.caption:
            match = PREDICTIONS_CAPTION.search(str(caption.value))
            if match and int(match.group(1).replace(",", "")) > 0:
                return int(match.group(1).replace(",", ""))
        time.sleep(1.0)
    pytest.fail(f"no predictions on the monitor after {timeout_s} s: {texts(at.info)} {texts(at.warning)}")


# --- every page renders, with its widgets, before anything runs ---------------------------------------

PAGE_WIDGETS = {
    "home": {"button": {"run_demo"}},
    "data": {"radio": {"data_source_choice"}, "button": {"data_load"},
             "slider": {"data_gallery_n", "data_record_start"}, "selectbox": {"data_record", "data_record_window"}},
    "train": {"radio": {"train_split"}, "number_input": {"train_max_iter"}, "button": {"train_run"},
              "selectbox": {"train_model"}},
    "deploy": {"selectbox": {"deploy_model"}, "button": {"deploy_run"}},
    "stream": {"radio": {"stream_mode", "stream_which", "stream_order"},
               "number_input": {"stream_rate", "stream_limit"},
               "button": {"stream_start", "stream_pause", "stream_stop"}},
    "settings": {"radio": {"settings_backend"},
                 "text_input": {"settings_profile", "settings_region", "settings_prefix"},
                 "button": {"settings_apply"}},
}


@pytest.mark.parametrize("page", sorted(PAGE_WIDGETS))
def test_page_renders_with_its_widgets(app_env, saved_model, page):
    at = open_app(page)
    for kind, expected in PAGE_WIDGETS[page].items():
        assert expected <= keys(getattr(at, kind)), f"{page}: {kind} keys {keys(getattr(at, kind))}"


@pytest.mark.parametrize("page", ["monitor", "misclassified"])
def test_page_without_results_says_what_to_do(app_env, page):
    at = open_app(page)
    assert "demo" in texts(at.info).lower()
    assert "home" in {link.proto.page for link in at.get("page_link")}


def test_home_shows_the_status_of_every_part(app_env, saved_model):
    at = open_app()
    parts = at.table[0].value  # a table: its details wrap instead of being cut off at the column's width
    assert list(parts["part"]) == ["data", "model", "backend", "stack", "endpoint", "replay", "reader"]
    assert parts.set_index("part").loc["model", "state"] == "ok"


# --- data ----------------------------------------------------------------------------------------------

def test_data_builds_the_folder_and_shows_its_classes(app_env):
    at = open_app("data")
    at.button(key="data_load").click()
    run(at)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert int(metrics["Records"]) == len(APP_RECORDS)
    assert int(metrics["Beats"].replace(",", "")) > 5000


def test_data_record_viewer_follows_the_chosen_record(app_env):
    at = open_app("data")
    at.selectbox(key="data_record").set_value("208")
    at.selectbox(key="data_record_window").set_value(5)
    run(at)
    assert any("record 208, lead MLII" in chart.proto.spec for chart in at.get("vega_lite_chart"))


def upload(at, name: str, content: bytes):
    at.radio(key="data_source_choice").set_value("Kaggle CSV")
    run(at)
    at.file_uploader(key="data_upload").set_value((name, content, "text/csv"))
    run(at)
    at.button(key="data_upload_load").click()
    return run(at)


def test_data_accepts_a_kaggle_csv_upload(app_env, kaggle_dir):
    name = "mitbih_train_sample500.csv"
    at = upload(open_app("data"), name, (kaggle_dir / name).read_bytes())
    assert not at.error
    assert {metric.label: metric.value for metric in at.metric}["Beats"] == "500"
    assert "Kaggle rows carry no raw signal" in texts(at.info)


def test_data_accepts_a_kaggle_csv_with_a_header_row(app_env, kaggle_dir):
    header = ",".join(str(i) for i in range(188)) + "\n"
    content = header.encode() + (kaggle_dir / "mitbih_test_head10.csv").read_bytes()
    at = upload(open_app("data"), "with_header.csv", content)
    assert not at.error
    assert {metric.label: metric.value for metric in at.metric}["Beats"] == "10"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("short.csv", b"0.5,0.5,0.5\n0.1,0.2,0.3\n", "3 values, expected 187 or 188"),
    ("binary.csv", bytes(range(256)) * 8, "not UTF-8"),
    ("label7.csv", (",".join(["0.5"] * 187) + ",7\n").encode(), "label 7"),
])
def test_data_names_the_file_and_the_reason_of_a_bad_csv(app_env, name, content, reason):
    at = upload(open_app("data"), name, content)
    assert name in texts(at.error) and reason in texts(at.error)


def test_data_refuses_an_upload_over_the_limit(app_env, kaggle_dir):
    from streamlit import config

    limit_mb = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        content = (kaggle_dir / "mitbih_train_sample500.csv").read_bytes()  # 1.2 MB
        at = upload(open_app("data"), "mitbih_train_sample500.csv", content)
    finally:
        config.set_option("server.maxUploadSize", limit_mb)
    assert "larger than the 1,048,576-byte limit" in texts(at.error)


# --- settings ------------------------------------------------------------------------------------------

def test_settings_reject_a_bad_prefix(app_env):
    at = open_app("settings")
    at.text_input(key="settings_prefix").set_value("Bad_Prefix")
    run(at)
    assert "prefix 'Bad_Prefix'" in texts(at.error)
    assert at.button(key="settings_apply").disabled


def test_settings_apply_saves_the_names(app_env):
    from hbcore.app.settings import load_settings

    at = open_app("settings")
    at.text_input(key="settings_prefix").set_value("demo2")
    run(at)
    assert "demo2-beats" in at.table[0].value.to_string()
    at.button(key="settings_apply").click()
    run(at)
    assert load_settings().prefix == "demo2"
    at.text_input(key="settings_prefix").set_value("hb")
    run(at)
    at.button(key="settings_apply").click()
    run(at)
    assert load_settings().prefix == "hb"


def test_an_unusable_aws_profile_is_reported_on_every_page(app_env, saved_model):
    from hbcore.app.settings import Settings, save_settings

    save_settings(Settings(backend="aws", profile="no-such-profile-hb"))
    try:
        for page in (None, "deploy", "stream", "monitor", "misclassified"):
            at = open_app(page)
            assert "no-such-profile-hb" in texts(at.error), page
    finally:
        save_settings(Settings())


# --- train ---------------------------------------------------------------------------------------------

def test_train_fits_a_model_and_shows_its_figures(app_env):
    at = open_app("train")
    at.number_input(key="train_max_iter").set_value(1)
    at.button(key="train_run").click()
    run(at, timeout=300)
    assert "Trained model" in texts(at.success)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert 0.5 < float(metrics["Accuracy"].rstrip("%")) / 100 <= 1.0
    assert at.get("download_button")[0].key == "train_download"


# --- the full demo, then the pages that read its results ------------------------------------------------

@pytest.fixture(scope="module")
def demo(app_env, saved_model):
    """Run the full demo once (reusing the saved model) and return the app on the live monitor."""
    at = open_app()
    at.button(key="run_demo").click()
    run(at, timeout=DEMO_TIMEOUT_S)
    assert not at.error, texts(at.error)
    assert any(title.value == "Live monitor" for title in at.title)
    return at


def test_run_full_demo_shows_live_predictions(demo):
    predictions = wait_for_predictions(demo)
    assert predictions > 0
    metrics = {metric.label: metric.value for metric in demo.metric}
    assert int(metrics["Beats processed"].replace(",", "")) >= predictions
    tiles = [link.proto.label.strip("*") for link in demo.get("page_link")
             if link.proto.page == "patient" and link.proto.label.startswith("**")]  # a tile opens its patient
    assert tiles and set(tiles) <= set(APP_RECORDS)


def test_deploy_page_invokes_the_endpoint(demo):
    at = open_app("deploy")
    assert {metric.label: metric.value for metric in at.metric}["Status"] == "InService"
    at.button(key="deploy_test").click()
    run(at)
    assert "predicted" in texts(at.markdown)


def test_stream_pauses_resumes_and_stops_a_replay(demo):
    at = open_app("stream")
    at.radio(key="stream_which").set_value("records")
    run(at)
    at.multiselect(key="stream_records").set_value(["119"])
    at.number_input(key="stream_rate").set_value(50)
    at.button(key="stream_start").click()
    run(at)
    assert "running" in texts(at.get("progress")) or "running" in str(at.get("progress")[0].proto.text)
    at.button(key="stream_pause").click()
    run(at)
    assert "paused" in str(at.get("progress")[0].proto.text)
    assert at.button(key="stream_pause").label == "Resume"
    at.button(key="stream_stop").click()
    run(at)
    assert "stopped" in str(at.get("progress")[0].proto.text)


def open_misclassified_of_all_runs():
    """The Misclassified page over every run (the Stream test started a later, shorter one)."""
    at = open_app("misclassified")
    at.toggle(key="mis_all_runs").set_value(True)
    return run(at)


def test_misclassified_shows_the_selected_beat_and_exports_csv(demo):
    wait_for_predictions(demo)
    at = open_misclassified_of_all_runs()
    deadline = time.monotonic() + PREDICTIONS_TIMEOUT_S
    while not at.dataframe and time.monotonic() < deadline:  # wait for a first mistake to be logged
        time.sleep(2)
        at.button(key="mis_refresh").click()
        run(at)
    assert at.dataframe, f"no misclassified beat after {PREDICTIONS_TIMEOUT_S} s: {texts(at.info)}"
    table = at.dataframe[0].value
    assert len(table) > 0 and (table["true"] != table["pred"]).all()
    at.session_state["mis_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    run(at)
    assert texts(at.subheader).startswith(f"Beat `{table['id'][0]}`")
    assert any("the mean beat of each class" in chart.proto.spec for chart in at.get("vega_lite_chart"))
    export = at.get("download_button")[0]
    assert export.key == "mis_export" and not export.proto.disabled


def test_misclassified_filters_by_true_class(demo):
    at = open_misclassified_of_all_runs()
    if not at.dataframe:
        pytest.fail("no misclassified beats to filter (the previous test waits for them)")
    first = at.dataframe[0].value["true"].iloc[0]
    at.multiselect(key="mis_true").set_value([first])
    run(at)
    assert set(at.dataframe[0].value["true"]) == {first}
