"""The PhysioNet download: argument plumbing only (wfdb.dl_database is replaced; no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import wfdb

from hbcore import cli, paths
from hbcore.data import physionet


@pytest.fixture
def fake_download(monkeypatch) -> list[tuple]:
    """Replace wfdb.dl_database with one that writes two headers and chats on stdout, as wfdb does."""
    calls: list[tuple] = []

    def dl_database(db_dir, dl_dir, annotators="all", **kwargs):
        calls.append((db_dir, dl_dir, annotators))
        print("Downloading files...")
        for record in ("100", "101"):
            (Path(dl_dir) / f"{record}.hea").write_text("")

    monkeypatch.setattr(wfdb, "dl_database", dl_database)
    return calls


def test_download_fetches_mitdb_with_its_atr_annotations(tmp_path: Path, fake_download: list) -> None:
    assert physionet.download_mitdb(tmp_path / "mitdb") == tmp_path / "mitdb"
    assert fake_download == [("mitdb", str(tmp_path / "mitdb"), ["atr"])]


def test_download_defaults_to_the_cache_where_the_build_looks(tmp_path: Path, fake_download: list,
                                                             monkeypatch) -> None:
    monkeypatch.delenv("HB_DATA_DIR", raising=False)
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path))  # the fake headers must not land in a shared cache
    dest = physionet.download_mitdb()
    assert dest == paths.download_dir() and paths.default_mitdb_dir() == dest


def test_cli_download_prints_only_json_on_stdout(tmp_path: Path, fake_download: list, capsys) -> None:
    assert cli.main(["data", "download", "--dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"mitdb": str(tmp_path / "d"), "records": 2}
    assert "Downloading files" in out.err


def test_cli_download_offline_exits_2_naming_physionet_and_the_ways_on(tmp_path: Path, monkeypatch, capsys) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    assert cli.main(["data", "download", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "PhysioNet (physionet.org) cannot be reached" in err
    assert "a folder of WFDB records" in err and "Kaggle CSV files" in err


def requests_offline(*args, **kwargs):
    """What wfdb raises without DNS: requests' ConnectionError around urllib3's NameResolutionError."""
    raise requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='physionet.org', port=443): Max retries exceeded with url: /content/mitdb/ "
        "(Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection>: Failed to resolve 'physionet.org' "
        "([Errno -2] Name or service not known)\"))")


def test_an_unresolvable_physionet_is_reported_as_unreachable_not_as_a_raw_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(wfdb, "dl_database", requests_offline)

    with pytest.raises(physionet.PhysioNetUnreachable) as raised:
        physionet.download_mitdb(tmp_path)
    assert str(raised.value).startswith("PhysioNet (physionet.org) cannot be reached")
    assert "HTTPSConnectionPool" not in str(raised.value)


def test_a_download_failing_otherwise_says_run_it_again_to_resume(tmp_path: Path, monkeypatch):
    def not_found(*args, **kwargs):
        raise ValueError("mitdb: 404 for RECORDS")

    monkeypatch.setattr(wfdb, "dl_database", not_found)
    with pytest.raises(physionet.DownloadError) as raised:
        physionet.download_mitdb(tmp_path)
    assert not isinstance(raised.value, physionet.PhysioNetUnreachable)
    assert str(raised.value) == ("downloading mitdb from PhysioNet failed (mitdb: 404 for RECORDS); "
                                 "run it again to resume")
