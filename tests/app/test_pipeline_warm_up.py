"""The home page's warm-up: on the local backend the cloud and the stack are made before the demo's click."""

from __future__ import annotations

import time

from hbcore.app.pipeline import WARM_UP_ENV, Pipeline
from hbcore.app.settings import Settings

WARM_UP_TIMEOUT_S = 120


def test_the_warm_up_starts_the_local_cloud_and_creates_the_stack_once(monkeypatch):
    monkeypatch.delenv(WARM_UP_ENV)
    last_steps = []
    with Pipeline(Settings(backend="local")) as pipeline:
        assert pipeline.warm_up(lambda warmed: last_steps.append(
            (warmed is pipeline, warmed.stack_outputs() is not None, warmed._reader is not None)))
        assert not pipeline.warm_up()  # once per pipeline
        assert not pipeline.replay_running()  # asked while the warm-up holds the lock: answered at once
        pipeline.wait_for_warm_up(WARM_UP_TIMEOUT_S)
        assert pipeline._warm_up is not None and not pipeline._warm_up.is_alive()
        assert pipeline.backend_started and pipeline.status()["stack"].state == "ok"
        assert last_steps == [(True, True, True)]  # its last step came after the stack and the reader
        started = time.monotonic()
        pipeline.ensure_stack()  # what the demo's stack step then does: the stack is up to date
        assert time.monotonic() - started < 1.0


def test_nothing_is_warmed_on_aws_when_turned_off_or_after_close(monkeypatch):
    assert not Pipeline(Settings(backend="aws", profile="no-such-profile-hb")).warm_up()
    assert not Pipeline(Settings(backend="local")).warm_up()  # HB_LOCAL_WARM_UP=0 (tests/app/conftest.py)
    monkeypatch.delenv(WARM_UP_ENV)
    closed = Pipeline(Settings(backend="local"))
    closed.close()
    assert not closed.warm_up() and not closed.backend_started
