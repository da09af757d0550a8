"""The app benchmark's synthetic monitor load (the browser timings are exercised by test_browser.py)."""

from kit.modelkit import fake_model

from hbcore.app import dashboard
from hbcore.bench import appbench
from hbcore.model import store as modelstore


def test_synthetic_snapshot_is_read_whole_through_the_reader_windows():
    snapshot = appbench.synthetic_snapshot(25_000, now_s=1_800_000_000.0)  # more than one 10,000-row query
    predictions = snapshot.predictions
    assert len(predictions) == 25_000 and predictions["id"].is_unique
    assert set(predictions["run"]) == {appbench.BENCH_RUN}
    assert snapshot.stats.duplicate_predictions == 0 and snapshot.stats.queries >= 3


def test_refresh_computes_every_figure_of_the_snapshot():
    snapshot = appbench.synthetic_snapshot(2_000, now_s=1_800_000_000.0)
    appbench.refresh(snapshot, appbench.BENCH_RUN)  # the chart specs build from the reader's own frames
    figures = dashboard.dashboard_figures(snapshot, appbench.BENCH_RUN, now_s=1_800_000_000.0)
    assert figures.beats == 2_000 and figures.labelled == 2_000
    assert len(figures.per_record) == appbench.SYNTHETIC_RECORDS


def test_only_a_full_model_ends_the_wait_before_the_cached_runs(tmp_path):
    """The cached runs need the full model of unseen patients: the quick one the cold run streams with first, one
    of another split or one this release cannot serve does not count."""
    store = tmp_path / "models"
    assert not appbench.full_model_stored(tmp_path)
    fake_model(store, "quick", split="inter", preset=modelstore.QUICK)
    fake_model(store, "intra", split="intra")
    fake_model(store, "old", split="inter", model_format=None)
    fake_model(store, "broken")
    (store / "broken" / modelstore.METADATA_FILE).write_text("{not json")
    assert not appbench.full_model_stored(tmp_path)
    fake_model(store, "full", split="inter")
    assert appbench.full_model_stored(tmp_path)
