"""The app in a real browser: `streamlit run` on a free loopback port, driven by headless Chromium.

Debian's ``chromium`` package only (no browser download). The run's screenshot of the live monitor
and its timings (first paint, demo → first predictions) are written to ``$HB_ARTIFACTS_DIR``
(default ``./artifacts``) for a human to look at; the timings are reported, not asserted.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60
DEMO_TIMEOUT_S = 900  # a cold cache builds the beats and trains the model on all of MIT-BIH first
PREDICTIONS_TEXT = re.compile(r"[1-9][\d,]* predictions in the confusion matrix")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("HB_ARTIFACTS_DIR") or REPO / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def app_server(mitdb_dir: Path, tmp_path_factory):
    """`streamlit run streamlit_app.py` on a free loopback port; stopped at the end of the module."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} absent: install Debian's chromium package (.ci/run does)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)  # HB_DATA_DIR and HB_CACHE_DIR pass through
    env.setdefault("HB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hbcache"))
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    log = open(tmp_path_factory.mktemp("streamlit") / "streamlit.log", "w+")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        while not _healthy(url):
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read()}")
            if time.monotonic() - started > SERVER_START_TIMEOUT_S:
                pytest.fail(f"streamlit not healthy on {url} after {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield url, started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def browser_page(tmp_path):
    """A Chromium page in a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1300},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_run_full_demo_shows_live_predictions(app_server, browser_page, artifacts_dir):
    url, started = app_server
    page = browser_page
    page.goto(url)
    page.get_by_role("button", name="Run the full demo").wait_for(timeout=SERVER_START_TIMEOUT_S * 1000)
    first_paint_s = time.monotonic() - started

    clicked = time.monotonic()
    page.get_by_role("button", name="Run the full demo").click()
    page.wait_for_url(re.compile(r".*/monitor"), timeout=DEMO_TIMEOUT_S * 1000)
    page.get_by_text(PREDICTIONS_TEXT).wait_for(timeout=DEMO_TIMEOUT_S * 1000)
    demo_s = time.monotonic() - clicked
    page.wait_for_timeout(3000)  # let the charts finish drawing before the screenshot
    page.screenshot(path=artifacts_dir / "monitor.png", full_page=True)

    shown = page.get_by_text(PREDICTIONS_TEXT).first.inner_text()
    assert int(re.match(r"[\d,]+", shown).group().replace(",", "")) > 0
    (artifacts_dir / "app_timings.json").write_text(json.dumps({
        "first_paint_s": round(first_paint_s, 2), "demo_to_first_predictions_s": round(demo_s, 2),
    }))
