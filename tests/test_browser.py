"""The app in a real browser: `streamlit run` on a free loopback port, driven by headless Chromium.

Debian's ``chromium`` package only (no browser download). The screenshot of the live monitor and the
run's timings (first paint, demo → first predictions; reported by ``python -m hbcore bench app``,
not asserted) are written to ``$HB_ARTIFACTS_DIR`` (default ``./artifacts``) for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from hbcore import appbench

REPO = Path(__file__).resolve().parent.parent
DEMO_TIMEOUT_S = 900  # a cold cache builds the beats and trains the model on all of MIT-BIH first

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("HB_ARTIFACTS_DIR") or REPO / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def app_and_page(mitdb_dir: Path, tmp_path_factory):
    """Headless Chromium (started first, so first paint does not count its start), then the app as
    `streamlit run` starts it, with HB_DATA_DIR and HB_CACHE_DIR passed through."""
    if not appbench.CHROMIUM.is_file():
        pytest.skip(f"{appbench.CHROMIUM} absent: install Debian's chromium package (.ci/run does)")
    cache = os.environ.get("HB_CACHE_DIR") or str(tmp_path_factory.getbasetemp() / "hbcache")
    scratch = tmp_path_factory.mktemp("browser")
    with appbench.chromium_page(scratch / "profile") as page, \
            appbench.AppServer(appbench.app_environment(cache), scratch / "streamlit.log") as server:
        yield server, page


def test_run_full_demo_shows_live_predictions(app_and_page, artifacts_dir):
    app_server, page = app_and_page
    timings = appbench.run_demo_in_browser(page, app_server, DEMO_TIMEOUT_S)
    page.mouse.move(0, 0)  # no hover toolbar over the charts in the screenshot
    page.wait_for_timeout(4000)  # two refreshes: the charts finish drawing before the screenshot
    page.screenshot(path=artifacts_dir / "monitor.png", full_page=True)
    (artifacts_dir / "app_timings.json").write_text(json.dumps(timings))

    shown = page.get_by_text(appbench.PREDICTIONS_TEXT).first.inner_text()
    assert int(re.match(r"[\d,]+", shown).group().replace(",", "")) > 0
    assert page.get_by_text("Beats processed").count() == 1
    assert "Traceback" not in app_server.output()
