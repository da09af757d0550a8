"""The home page imports the demo's module in the background once it is drawn, so that **Run the full
demo** does not wait ~1 s for scikit-learn at the click (pages/home.py, DEMO_MODULE), and the live
monitor's modules, so that the monitor's first run does not import altair beside the replay's start."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
DEMO_MODULE = "hbcore.app.demo"
CHARTS_MODULE = "hbcore.app.charts"  # the monitor's (altair)
PRELOAD_THREAD = "home-demo-import"
IMPORT_TIMEOUT_S = 60.0


@pytest.fixture
def page_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HB_DATA_DIR", str(tmp_path / "data"))  # no records: nothing to build or stream
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))


def open_home():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def preload_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == PRELOAD_THREAD]


def test_opening_the_home_page_imports_the_demo_module_in_the_background(page_env, monkeypatch):
    import hbcore.app.demo  # both entries below exist, to be restored after the test

    monkeypatch.delitem(sys.modules, DEMO_MODULE)  # as in a fresh app process
    monkeypatch.delattr(hbcore.app, "demo")
    at = open_home()
    assert at.button(key="run_demo").label == "Run the full demo"
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    while DEMO_MODULE not in sys.modules or preload_threads():
        assert time.monotonic() < deadline, "the demo's module was not imported after the page was drawn"
        time.sleep(0.05)
    assert hasattr(sys.modules[DEMO_MODULE], "DemoRun")


def test_a_demo_module_already_imported_is_not_imported_again(page_env):
    import hbcore.app.demo

    open_home()
    assert not preload_threads()
    assert sys.modules[DEMO_MODULE] is hbcore.app.demo


def test_opening_the_home_page_imports_the_monitors_charts_in_the_background(page_env, monkeypatch):
    import hbcore.app.charts
    import hbcore.app.demo  # the entries below exist, to be restored after the test

    for name in (DEMO_MODULE, CHARTS_MODULE):
        monkeypatch.delitem(sys.modules, name)  # as in a fresh app process
        monkeypatch.delattr(hbcore.app, name.rsplit(".", 1)[1])
    open_home()
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    while CHARTS_MODULE not in sys.modules or preload_threads():
        assert time.monotonic() < deadline, "the monitor's charts were not imported after the page was drawn"
        time.sleep(0.05)
    assert hasattr(sys.modules[CHARTS_MODULE], "class_timeline")
