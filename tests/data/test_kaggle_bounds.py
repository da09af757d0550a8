"""Bounded input before parsing: one very long line, gzip bombs, other separators, every way in.

Every source kind (path, bytes, upload, each plain and gzipped) must stop with an error naming the
file, the line and the reason, quickly, with memory bounded by the caps (lowered here to stay fast).
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbcore.data import kaggle
from hbcore.data.kaggle import CsvValidationError, load_kaggle_csv

FAST_S = 5.0
FIXTURE_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def rows_text(n: int, labels: bool = True, separator: str = ",") -> str:
    values = np.random.default_rng(n).random((n, 187))
    table = np.column_stack([values, np.arange(n) % 5]) if labels else values
    return "".join(separator.join(f"{v:.6f}" for v in row) + "\n" for row in table)


def via_path(tmp_path: Path, data: bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def via_upload(_: Path, data: bytes, name: str) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def via_bytes(_: Path, data: bytes, name: str) -> bytes:
    return data


WAYS_IN: dict[str, Callable[[Path, bytes, str], object]] = {"path": via_path, "upload": via_upload, "bytes": via_bytes}


def load(tmp_path: Path, way: str, data: bytes, gzipped: bool, **kwargs):
    name = "beats.csv.gz" if gzipped else "beats.csv"
    payload = gzip.compress(data, compresslevel=1) if gzipped else data
    started = time.monotonic()
    try:
        return load_kaggle_csv(WAYS_IN[way](tmp_path, payload, name), name=name, **kwargs)
    finally:
        assert time.monotonic() - started < FAST_S


# --- one very long line --------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("way", sorted(WAYS_IN))
def test_a_line_of_a_million_fields_is_refused_before_parsing(tmp_path: Path, way: str, gzipped: bool) -> None:
    data = ",".join(["0.5"] * 1_000_000).encode() + b"\n"  # ~4 MB, one line
    with pytest.raises(CsvValidationError, match=r"^beats\.csv(\.gz)? line 1: more than 65,536 bytes on one line"):
        load(tmp_path, way, data, gzipped)


@FIXTURE_SETTINGS
@given(line=st.integers(min_value=1, max_value=6), fields=st.integers(min_value=20_000, max_value=200_000),
       gzipped=st.booleans(), way=st.sampled_from(sorted(WAYS_IN)))
def test_a_long_line_anywhere_is_named(tmp_path: Path, line: int, fields: int, gzipped: bool, way: str) -> None:
    lines = rows_text(6).splitlines(keepends=True)
    lines[line - 1] = ",".join(["0.5"] * fields) + "\n"
    with pytest.raises(CsvValidationError, match=rf"line {line}: more than 65,536 bytes on one line"):
        load(tmp_path, way, "".join(lines).encode(), gzipped)


@FIXTURE_SETTINGS
@given(fields=st.integers(min_value=190, max_value=10_000) | st.integers(min_value=2, max_value=186),
       gzipped=st.booleans(), way=st.sampled_from(sorted(WAYS_IN)))
def test_the_first_line_column_count_is_checked_before_parsing(tmp_path: Path, monkeypatch, fields: int,
                                                              gzipped: bool, way: str) -> None:
    def no_parser(*args, **kwargs):
        raise AssertionError("pyarrow was asked to parse a file whose first line is not a Kaggle row")

    monkeypatch.setattr(kaggle, "_parse_fast", no_parser)
    data = (",".join(["0.5"] * fields) + "\n").encode() * 3
    with pytest.raises(CsvValidationError, match=rf"line 1: {fields:,} values, expected 187 or 188$"):
        load(tmp_path, way, data, gzipped)


# --- gzip bombs ----------------------------------------------------------------------------------

@FIXTURE_SETTINGS
@given(cap=st.integers(min_value=1_000, max_value=60_000), way=st.sampled_from(sorted(WAYS_IN)),
       filler=st.sampled_from([b"\0", b"0", b"\n"]))
def test_a_gzip_bomb_stops_at_the_cap(tmp_path: Path, monkeypatch, cap: int, way: str, filler: bytes) -> None:
    monkeypatch.setattr(kaggle, "MAX_DECOMPRESSED_BYTES", cap)
    with pytest.raises(CsvValidationError, match=rf"^beats\.csv\.gz: decompressed file larger than the {cap:,}-byte"):
        load(tmp_path, way, filler * (4 << 20), gzipped=True)


@FIXTURE_SETTINGS
@given(extra_rows=st.integers(min_value=5, max_value=40), way=st.sampled_from(sorted(WAYS_IN)))
def test_good_rows_past_the_cap_are_refused_not_truncated(tmp_path: Path, monkeypatch, extra_rows: int,
                                                          way: str) -> None:
    data = rows_text(10 + extra_rows).encode()
    cap = len(rows_text(10).encode())
    monkeypatch.setattr(kaggle, "MAX_DECOMPRESSED_BYTES", cap)
    with pytest.raises(CsvValidationError, match=rf"decompressed file larger than the {cap:,}-byte limit"):
        load(tmp_path, way, data, gzipped=True)


def test_zeros_without_a_newline_under_the_default_cap_hit_the_line_limit(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"^beats\.csv\.gz line 1: more than 65,536 bytes on one line"):
        load(tmp_path, "path", b"\0" * (8 << 20), gzipped=True)


@pytest.mark.parametrize("way", sorted(WAYS_IN))
def test_a_gzip_under_the_cap_loads_by_every_way_in(tmp_path: Path, monkeypatch, way: str) -> None:
    data = rows_text(20).encode()
    monkeypatch.setattr(kaggle, "MAX_DECOMPRESSED_BYTES", len(data))
    beats = load(tmp_path, way, data, gzipped=True)
    assert beats.y.tolist() == [i % 5 for i in range(20)]


@pytest.mark.parametrize("way", sorted(WAYS_IN))
def test_a_truncated_gzip_is_named_by_every_way_in(tmp_path: Path, way: str) -> None:
    payload = gzip.compress(rows_text(20).encode())[:-30]
    with pytest.raises(CsvValidationError, match=r"^beats\.csv\.gz: not a valid gzip file"):
        load_kaggle_csv(WAYS_IN[way](tmp_path, payload, "beats.csv.gz"), name="beats.csv.gz")


# --- other separators ----------------------------------------------------------------------------

SEPARATOR_NAMES = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


@FIXTURE_SETTINGS
@given(separator=st.sampled_from(sorted(SEPARATOR_NAMES)), header=st.booleans(), labels=st.booleans(),
       gzipped=st.booleans(), way=st.sampled_from(sorted(WAYS_IN)))
def test_another_separator_is_named_on_line_1(tmp_path: Path, separator: str, header: bool, labels: bool,
                                              gzipped: bool, way: str) -> None:
    n_values = 188 if labels else 187
    text = (separator.join(f"c{i}" for i in range(n_values)) + "\n" if header else "") + rows_text(
        4, labels, separator)
    name = SEPARATOR_NAMES[separator]
    expected = rf"line 1: values are separated by {name} \({n_values} fields split on .*\), expected commas"
    with pytest.raises(CsvValidationError, match=expected):
        load(tmp_path, way, text.encode(), gzipped)
