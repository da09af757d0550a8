"""End to end on the local cloud: real MIT-BIH beats → Kinesis → poller → lambda_function → endpoint
server → CloudWatch Logs → results reader, driven as ``python -m hbcore demo`` drives it (``DemoRun``,
``settle``, ``account``), with a small real model. Every beat sent must come back exactly once and
agree with the model called directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from kit.cloudkit import unique

from hbcore.app import demo
from hbcore.app.pipeline import Pipeline
from hbcore.contracts.beat_id import beat_id
from hbcore.model import store as modelstore
from hbcore.model import training as models

E2E_BEATS = 3000
SETUP_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def e2e(mitdb_beats, small_model_tar, tmp_path_factory):
    """One demo run of E2E_BEATS beats: (its accounting, the beats it sent, the reader's predictions)."""
    with pytest.MonkeyPatch.context() as env:  # module scope: the autouse isolation has not run yet
        env.setenv("HB_CACHE_DIR", str(tmp_path_factory.mktemp("e2e_cache")))
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
            env.delenv(name, raising=False)
        with Pipeline() as pipeline:
            # intra: the test beats of every record, 207's long gaps among them
            run = demo.DemoRun(pipeline, lambda: mitdb_beats, E2E_BEATS, model_path=small_model_tar,
                               split="intra").start()
            state = run.wait(SETUP_TIMEOUT_S)
            assert state.error is None and state.replay is not None, state.error or "the set-up did not finish"
            snapshot = demo.settle(pipeline, state.replay, timeout_s=SETTLE_TIMEOUT_S)
            model = models.load_model(small_model_tar)
            summary = demo.account(state.replay, snapshot, {model.version: model}, state.replay_started_s)
            yield summary, state.replay.beats, snapshot.predictions


def test_every_beat_sent_is_predicted_exactly_once(e2e):
    summary, _, _ = e2e

    assert (summary["sent"], summary["predicted"], summary["rejected"]) == (E2E_BEATS, E2E_BEATS, 0)
    assert (summary["lost"], summary["duplicates"]) == (0, 0)


def test_the_logged_predictions_agree_with_the_model_called_directly(e2e):
    summary, _, _ = e2e

    assert summary["agreement"] == 1.0


def test_beats_whose_rr_spans_a_long_unannotated_gap_are_predicted(e2e):
    """Record 207's 'RR' of 12 s across ventricular flutter once failed its whole batch at the endpoint."""
    summary, sent, predictions = e2e
    rr = sent.meta[["rr_prev_s", "rr_next_s"]].to_numpy()
    long_gaps = sent.meta[np.nanmax(rr, axis=1) > 10.0]
    ids = {beat_id(summary["run"], record, sample) for record, sample in zip(long_gaps["record"], long_gaps["sample"])}

    assert len(ids) >= 1
    assert ids <= set(predictions["id"])


AGGREGATED_BEATS = 1500


def test_every_beat_of_an_aggregated_replay_is_predicted_exactly_once(cloud, clients, mitdb_beats, small_model_tar,
                                                                     monkeypatch):
    """KPL aggregates (``Replay(aggregate=True)``) through the in-process local cloud: the handler de-aggregates."""
    from hbcore.app import pipeline as pipeline_module
    from hbcore.app.settings import Settings
    from hbcore.aws.backend import Backend
    from hbcore.localcloud.poller import REPOSITORY_ROOT
    from hbcore.stream.replay import kinesis_client

    monkeypatch.setattr(cloud.poller, "code_root", REPOSITORY_ROOT)  # the fixture's handlers are in tests/
    entries: list[int] = []

    def counting_client(backend: Backend):
        client = kinesis_client(backend)
        client.meta.events.register("before-parameter-build.kinesis.PutRecords",
                                    lambda params, **kwargs: entries.append(len(params["Records"])))
        return client

    monkeypatch.setattr(pipeline_module, "kinesis_client", counting_client)
    backend = Backend(kind="local", endpoint_url=cloud.url, sagemaker_runtime_url=cloud.runtime_url)
    with Pipeline(Settings(prefix=unique("hbagg")), backend=backend) as pipeline:
        run = demo.DemoRun(pipeline, lambda: mitdb_beats, AGGREGATED_BEATS, model_path=small_model_tar,
                           aggregate=True).start()
        state = run.wait(SETUP_TIMEOUT_S)
        assert state.error is None and state.replay is not None, state.error or "the set-up did not finish"
        snapshot = demo.settle(pipeline, state.replay, timeout_s=SETTLE_TIMEOUT_S)
        model = models.load_model(small_model_tar)
        summary = demo.account(state.replay, snapshot, {model.version: model}, state.replay_started_s)

    assert 0 < sum(entries) < AGGREGATED_BEATS / 10  # the beats went packed, many to a Kinesis record
    assert (summary["sent"], summary["predicted"], summary["rejected"]) == (AGGREGATED_BEATS, AGGREGATED_BEATS, 0)
    assert (summary["lost"], summary["duplicates"], summary["agreement"]) == (0, 0, 1.0)


UPGRADE_RECORDS = ("100", "103", "119", "208")
UPGRADE_RATE_BPS = 40.0  # the replay outlasts the full model's training (seconds on these beats)


def test_the_quick_model_is_replaced_in_place_by_the_full_one_and_no_beat_is_lost(mitdb_beats, monkeypatch,
                                                                                  tmp_path):
    """Cold start, intra-patient: stream with the quick model, train the full one meanwhile, deploy it in place."""
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path))  # an empty model store: nothing to reuse
    beats = mitdb_beats.subset(np.flatnonzero(mitdb_beats.meta["record"].isin(UPGRADE_RECORDS).to_numpy()))
    with Pipeline() as pipeline:
        run = demo.DemoRun(pipeline, lambda: beats, None, rate_bps=UPGRADE_RATE_BPS, split="intra", source="mitdb",
                           source_name="four records").start()
        ended = run.wait(SETUP_TIMEOUT_S + SETTLE_TIMEOUT_S)
        assert ended.error is None and ended.replay is not None, ended.error
        assert ended.upgrade is not None and ended.upgrade.state == "deployed", ended.upgrade
        assert ended.replay.progress().state == "running", "the full model came after the stream ended"
        snapshot = demo.settle(pipeline, ended.replay, timeout_s=SETTLE_TIMEOUT_S)
        quick, full = (saved for saved in sorted(modelstore.saved_models(), key=lambda saved: saved.version))
        served = {saved.version: models.load_model(saved.path) for saved in (quick, full)}
        summary = demo.account(ended.replay, snapshot, served, ended.replay_started_s)
        kinds = [mark.kind for mark in pipeline.marks()]

    assert quick.metadata["preset"] == "quick" and "preset" not in full.metadata
    assert quick.metadata["source_name"] == full.metadata["source_name"] == "four records"
    assert (summary["sent"], summary["predicted"], summary["lost"], summary["duplicates"]) == (
        len(ended.replay.beats), len(ended.replay.beats), 0, 0)
    assert set(summary["model_versions"]) == {quick.version, full.version} and summary["agreement"] == 1.0
    assert kinds == ["model", "start", "model", "stop"]  # quick deployed, run started, full deployed, run ended
