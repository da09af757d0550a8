"""Page tests start no local cloud on their own: the home page's warm-up (Pipeline.warm_up) is off here;
tests/app/test_pipeline_warm_up.py turns it on to test it."""

import pytest

from hbcore.app.pipeline import WARM_UP_ENV


@pytest.fixture(autouse=True)
def _no_warm_up(monkeypatch):
    monkeypatch.setenv(WARM_UP_ENV, "0")
