"""Kaggle-format CSV loading and validation (small files in tmp_path, then the real rows)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hbcore.data.kaggle import CsvValidationError, load_kaggle_csv


def _rows(n: int = 5, labels: bool = True) -> np.ndarray:
    rng = np.random.default_rng(n)
    values = rng.random((n, 187))
    values[:, 0] = 1.0
    return np.column_stack([values, np.arange(n) % 5]) if labels else values


def _text(rows: np.ndarray) -> str:
    return "".join(",".join(f"{value:.18e}" for value in row) + "\n" for row in rows)


def _write(tmp_path: Path, text: str, name: str = "beats.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _with_line(rows: np.ndarray, number: int, line: str) -> str:
    lines = _text(rows).splitlines(keepends=True)
    lines[number - 1] = line + "\n"
    return "".join(lines)


# --- accepted layouts --------------------------------------------------------------------------

def test_headerless_188_columns_as_published(tmp_path: Path) -> None:
    rows = _rows()
    beats = load_kaggle_csv(_write(tmp_path, _text(rows)))
    np.testing.assert_allclose(beats.X, rows[:, :187], rtol=1e-6)
    assert beats.y.tolist() == [0, 1, 2, 3, 4]
    assert beats.meta["record"].iloc[0] == "kaggle:beats" and beats.meta["sample"].tolist() == [0, 1, 2, 3, 4]
    assert beats.meta["rr_prev_s"].isna().all()


def test_gzip_file_gives_the_same_rows(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "beats.csv.gz"
    path.write_bytes(gzip.compress(_text(rows).encode()))
    beats = load_kaggle_csv(path)
    assert beats.meta["record"].iloc[0] == "kaggle:beats"
    np.testing.assert_allclose(beats.X, rows[:, :187], rtol=1e-6)


def test_pandas_default_header_row_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    pd.DataFrame(_rows()).to_csv(path, index=False)
    assert load_kaggle_csv(path).y.tolist() == [0, 1, 2, 3, 4]


def test_named_header_row_is_skipped(tmp_path: Path) -> None:
    header = ",".join([f"s{i}" for i in range(187)] + ["label"])
    assert len(load_kaggle_csv(_write(tmp_path, header + "\n" + _text(_rows())))) == 5


def test_index_column_with_header_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    rows = _rows()
    pd.DataFrame(rows).to_csv(path)
    beats = load_kaggle_csv(path)
    np.testing.assert_allclose(beats.X, rows[:, :187], rtol=1e-6)
    assert beats.y.tolist() == [0, 1, 2, 3, 4]


def test_index_column_without_header_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    rows = _rows()
    pd.DataFrame(rows).to_csv(path, header=False)
    np.testing.assert_allclose(load_kaggle_csv(path).X, rows[:, :187], rtol=1e-6)


def test_unlabelled_rows_with_an_index_column_for_prediction(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    rows = _rows(labels=False)
    pd.DataFrame(rows).to_csv(path, header=False)
    beats = load_kaggle_csv(path, require_labels=False)
    np.testing.assert_allclose(beats.X, rows, rtol=1e-6)


def test_unlabelled_rows_get_label_minus_one(tmp_path: Path) -> None:
    beats = load_kaggle_csv(_write(tmp_path, _text(_rows(labels=False))), require_labels=False)
    assert beats.y.tolist() == [-1] * 5 and beats.meta["label"].tolist() == [-1] * 5
    assert beats.class_counts() == {"N": 0, "S": 0, "V": 0, "F": 0, "Q": 0}


def test_unlabelled_rows_are_refused_for_training(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"beats.csv: 187 values per row and no label column"):
        load_kaggle_csv(_write(tmp_path, _text(_rows(labels=False))))


def test_bytes_and_file_like_sources(tmp_path: Path) -> None:
    data = gzip.compress(_text(_rows()).encode())
    assert load_kaggle_csv(data, name="up.csv.gz").meta["record"].iloc[0] == "kaggle:up"
    upload = io.BytesIO(data)
    upload.name = "upload.csv.gz"
    assert load_kaggle_csv(upload).y.tolist() == [0, 1, 2, 3, 4]


def test_values_just_outside_the_unit_range_are_clipped(tmp_path: Path) -> None:
    rows = _rows()
    rows[1, 3], rows[2, 4] = 1 + 1e-7, -1e-7
    beats = load_kaggle_csv(_write(tmp_path, _text(rows)))
    assert beats.X.max() == 1.0 and beats.X.min() == 0.0


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    assert len(load_kaggle_csv(_write(tmp_path, _text(_rows()).replace("\n", "\n\n", 1)))) == 5


# --- refused files: the message names the file, the line and the reason --------------------------

@pytest.mark.parametrize(("line", "reason"), [
    (",".join(["0.5"] * 186), "line 3: 186 values, expected 187 or 188"),
    (",".join(["0.5"] * 187), "line 3: 187 values, expected 188 as on line 1"),
    (",".join(["0.5"] * 4 + ["abc"] + ["0.5"] * 183), r"line 3: column 5 is not a number \('abc'\)"),
    (",".join(["0.5"] * 4 + ["nan"] + ["0.5"] * 183), "line 3: column 5 is nan"),
    (",".join(["0.5"] * 4 + [""] + ["0.5"] * 183), "line 3: column 5 is empty"),
    (",".join(["0.5"] * 187 + ["7"]), "line 3: label 7 is not an integer class 0..4"),
    (",".join(["0.5"] * 187 + ["1.5"]), "line 3: label 1.5 is not an integer class 0..4"),
    (",".join(["0.5"] * 9 + ["1.5"] + ["0.5"] * 177 + ["0"]),
     r"line 3: sample value 1.5 outside \[0, 1\] \(column 10\)"),
    (",".join(["0.5"] * 9 + ["inf"] + ["0.5"] * 177 + ["0"]), "line 3: column 10 is inf"),
])
def test_bad_line_is_named(tmp_path: Path, line: str, reason: str) -> None:
    with pytest.raises(CsvValidationError, match=f"^beats.csv {reason}"):
        load_kaggle_csv(_write(tmp_path, _with_line(_rows(), 3, line)))


def test_line_numbers_count_the_header_and_use_thousands_separators(tmp_path: Path) -> None:
    rows = _rows(1300)
    text = "header," * 187 + "label\n" + _with_line(rows, 1203, ",".join(["0.5"] * 186))
    with pytest.raises(CsvValidationError, match=r"^beats.csv line 1,204: 186 values, expected 187 or 188"):
        load_kaggle_csv(_write(tmp_path, text))


def test_short_first_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"^beats.csv line 1: 186 values, expected 187 or 188"):
        load_kaggle_csv(_write(tmp_path, ",".join(["0.5"] * 186) + "\n"))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"^beats.csv: empty file, no rows"):
        load_kaggle_csv(_write(tmp_path, "\n\n"))


def test_header_without_rows(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"^beats.csv: a header row and no data rows"):
        load_kaggle_csv(_write(tmp_path, ",".join(str(i) for i in range(188)) + "\n"))


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(CsvValidationError, match=r"^beats.csv line 1: not UTF-8 text"):
        load_kaggle_csv(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match=r"^up.csv.gz: not a valid gzip file"):
        load_kaggle_csv(gzip.compress(_text(_rows()).encode())[:-30], name="up.csv.gz")


def test_size_limit_for_uploads() -> None:
    with pytest.raises(CsvValidationError, match=r"^upload.csv: file larger than the 1,000-byte limit"):
        load_kaggle_csv(io.BytesIO(_text(_rows()).encode()), max_bytes=1000)


def test_size_limit_applies_to_the_decompressed_size() -> None:
    data = gzip.compress(_text(np.zeros((50, 188))).encode())
    with pytest.raises(CsvValidationError, match="decompressed file larger than the 20,000-byte limit"):
        load_kaggle_csv(data, name="up.csv.gz", max_bytes=20_000)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope.csv: no such file"):
        load_kaggle_csv(tmp_path / "nope.csv")


def test_errors_are_value_errors() -> None:
    assert issubclass(CsvValidationError, ValueError)


# --- the real Kaggle rows ------------------------------------------------------------------------

def test_real_head_rows_in_the_original_number_format(kaggle_dir: Path) -> None:
    for name in ("mitbih_train_head10.csv", "mitbih_test_head10.csv"):
        beats = load_kaggle_csv(kaggle_dir / name)
        expected = pd.read_csv(kaggle_dir / name, header=None).to_numpy()
        np.testing.assert_allclose(beats.X, expected[:, :187], rtol=1e-6)
        assert beats.class_counts() == {"N": 10, "S": 0, "V": 0, "F": 0, "Q": 0}


def test_real_sample_and_its_gzip_are_equal(kaggle_dir: Path) -> None:
    plain = load_kaggle_csv(kaggle_dir / "mitbih_train_sample500.csv")
    assert plain.class_counts() == {"N": 100, "S": 100, "V": 100, "F": 100, "Q": 100}
    assert plain.equals(load_kaggle_csv(kaggle_dir / "mitbih_train_sample500.csv.gz"))


def test_real_rows_with_a_broken_line(kaggle_dir: Path, tmp_path: Path) -> None:
    lines = (kaggle_dir / "mitbih_test_head10.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].rsplit(",", 2)[0] + "\n"
    path = tmp_path / "mitbih_test.csv"
    path.write_text("".join(lines))
    with pytest.raises(CsvValidationError, match=r"^mitbih_test.csv line 4: 186 values, expected 187 or 188"):
        load_kaggle_csv(path)
