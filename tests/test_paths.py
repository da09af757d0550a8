"""An unusable cache folder is one clear line naming the folder and the reason, not a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbcore import paths
from hbcore.cli import USER_ERROR_EXIT, main
from hbcore.errors import HbError
from hbcore.paths import CacheDirError, cache_dir

WRITE_FAILURES = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
                  errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}


@pytest.fixture
def fresh_checks(monkeypatch):
    """Forget which folders were proven usable, so each test checks its own."""
    monkeypatch.setattr(paths, "_usable_cache_dirs", set())


@pytest.mark.parametrize("below", ["", "sub", "sub/deeper"])
def test_a_file_in_the_way_names_the_folder(tmp_path: Path, monkeypatch, fresh_checks, below: str) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    target = blocker / below if below else blocker
    monkeypatch.setenv("HB_CACHE_DIR", str(target))
    with pytest.raises(CacheDirError, match=rf"^cache folder {target} is not usable: a file is in the way"):
        cache_dir()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.sampled_from(sorted(WRITE_FAILURES)), failing=st.sampled_from(["TemporaryFile", "fsync"]))
def test_a_folder_that_refuses_writes_names_the_reason(tmp_path: Path, monkeypatch, code: int, failing: str) -> None:
    monkeypatch.setattr(paths, "_usable_cache_dirs", set())
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as patch:
        patch.setattr(paths.tempfile if failing == "TemporaryFile" else paths.os, failing, refuse)
        with pytest.raises(CacheDirError) as raised:
            cache_dir()
    assert str(raised.value).startswith(f"cache folder {tmp_path / 'cache'} is not usable: {WRITE_FAILURES[code]}")
    assert isinstance(raised.value, HbError)


def test_a_usable_folder_is_created_and_returned(tmp_path: Path, monkeypatch, fresh_checks) -> None:
    monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path / "a" / "b"))
    assert cache_dir() == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe leaves nothing behind


@pytest.mark.parametrize("command", [["cloud", "status"], ["cloud", "down"], ["cloud", "up"]])
def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path, monkeypatch, capsys, fresh_checks,
                                             command: list[str]) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("")
    monkeypatch.setenv("HB_CACHE_DIR", str(blocker))
    assert main(command) == USER_ERROR_EXIT
    err = capsys.readouterr().err
    reason = "a file is in the way (set HB_CACHE_DIR to a writable folder)"
    assert err == f"error: cache folder {blocker} is not usable: {reason}\n"
