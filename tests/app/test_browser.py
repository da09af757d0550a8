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

from hbcore.bench import appbench

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 300

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("HB_ARTIFACTS_DIR") or REPO / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


# The monitor's figures as its text reads (bold marks are gone in innerText).
COUNTS_LINE = re.compile(r"([\d,]+) sent of ([\d,]+).*?= ([\d,]+) processed \+ ([\d,]+) rejected \+ ([\d,]+) in flight")
LABELLED_LINE = re.compile(r"([\d,]+) of the processed have a reference label")
CONFUSION_CAPTION = re.compile(r"([\d,]+) predictions in the confusion matrix")
PROCESSED_METRIC = re.compile(r"Beats processed\s+([\d,]+)")
REJECTED_METRIC = re.compile(r"Rejected records\s+([\d,]+)")
SETTLED_TEXT_JS = "() => document.querySelector('[data-stale=\"true\"]') ? null : document.body.innerText"
SNAPSHOTS = 3


def number(pattern: re.Pattern, text: str, group: int = 1) -> int:
    match = pattern.search(text)
    assert match is not None, f"{pattern.pattern!r} not on the page:\n{text[:3000]}"
    return int(match.group(group).replace(",", ""))


def settled_text(page) -> str:
    """The page's text once no element is stale (a refresh half-drawn would mix two snapshots)."""
    return page.wait_for_function(SETTLED_TEXT_JS, timeout=30_000).json_value()


@pytest.fixture(scope="module")
def app_and_page(mitdb_dir: Path, tmp_path_factory):
    """Headless Chromium (started first, so first paint does not count its start), then the app as
    `streamlit run` starts it on a **cold** machine: the MIT-BIH records present (HB_DATA_DIR), an
    empty cache and artifacts folder, so the demo builds the beats and trains its quick model."""
    if not appbench.CHROMIUM.is_file():
        pytest.skip(f"{appbench.CHROMIUM} absent: install Debian's chromium package (.ci/run does)")
    scratch = tmp_path_factory.mktemp("browser")
    cache, artifacts = scratch / "cache", scratch / "artifacts"
    cache.mkdir()
    artifacts.mkdir()
    env = appbench.app_environment(str(cache), str(artifacts)) | {"HB_DATA_DIR": str(mitdb_dir.parent)}
    with appbench.chromium_page(scratch / "profile") as page, \
            appbench.AppServer(env, scratch / "streamlit.log") as server:
        yield server, page


def test_the_cold_demo_reaches_the_monitor_and_its_figures_agree(app_and_page, artifacts_dir):
    app_server, page = app_and_page
    timings = appbench.run_demo_in_browser(page, app_server, DEMO_TIMEOUT_S)
    assert 0 < timings["to_monitor_s"] <= timings["demo_to_predictions_s"]  # the set-up, then the wait
    page.mouse.move(0, 0)  # no hover toolbar over the charts in the screenshot
    page.wait_for_timeout(4000)  # two refreshes: the charts finish drawing before the screenshot
    page.screenshot(path=artifacts_dir / "monitor.png", full_page=True)
    (artifacts_dir / "app_timings.json").write_text(json.dumps(timings))

    for _ in range(SNAPSHOTS):  # several refreshes while the beats stream: each one agrees with itself
        text = settled_text(page)
        sent, processed, rejected, in_flight = (number(COUNTS_LINE, text, group) for group in (1, 3, 4, 5))
        assert sent == processed + rejected + in_flight, text[:2000]
        assert number(PROCESSED_METRIC, text) == processed
        assert number(REJECTED_METRIC, text) == rejected
        assert number(LABELLED_LINE, text) == number(CONFUSION_CAPTION, text) <= processed
        assert processed > 0
        page.wait_for_timeout(1500)
    assert "Traceback" not in app_server.output()
    assert "missing ScriptRunContext" not in app_server.output()  # the demo's thread calls no Streamlit command
