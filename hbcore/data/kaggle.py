"""Loader and validator for the Kaggle "ECG Heartbeat Categorization" CSV files (mitbih_train/test.csv).

The files as published are headerless, 188 columns (187 samples in [0, 1] + the label 0..4, written
with ``%.18e``). The loader also takes them gzipped, with a header row (pandas' ``0,1,...,187``
or names), with a leading index column (what ``DataFrame.to_csv()`` writes), and, for prediction
input, without the label column (187 values; ``y`` is then -1 for every row).

Parsing is pyarrow's multi-threaded CSV reader with every column typed float64, then vectorised
checks; only when something is wrong is the file read again line by line to name the first bad
line and the reason (``mitbih_test.csv line 1,204: 186 values, expected 187 or 188``). Line numbers
are 1-based physical lines of the (decompressed) file, header included.

Sources are a path, ``bytes`` or a binary file-like object (what ``st.file_uploader`` returns);
``max_bytes`` bounds both the raw and the decompressed size, for uploads.

Input is bounded before any parser sees it, whichever way it comes in: gzip is decompressed as a
stream that stops at a size cap (``max_bytes``, else ``MAX_DECOMPRESSED_BYTES``), no line is read
past ``MAX_LINE_BYTES``, and the first data line's column count and separator are checked before
pyarrow is asked for 187 or 188 columns (a one-line file of millions of fields hung it, or
aborted the process with ``std::bad_alloc``).

:func:`match_rebuilt` finds the MIT-BIH beat each Kaggle row was cut from, so that a figure on
Kaggle rows can leave out the rows whose beat the model trained on.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import zlib
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeGuard

import numpy as np

from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import WINDOW_SAMPLES, BeatSet, meta_frame

Source = str | os.PathLike | bytes | BinaryIO

VALUE_TOLERANCE = 1e-6
UNLABELLED = -1
GZIP_MAGIC = b"\x1f\x8b"
INDEX_HEADER_NAMES = frozenset({"", "unnamed: 0", "index", "id"})
READ_CHUNK_BYTES = 1 << 20
# A published row is 188 values of 24 characters (``%.18e``) and commas, ~4.7 KB; with an index and
# quotes well under this. A longer line is not a Kaggle row, and reading it whole is how a one-line
# file of millions of fields got into memory.
MAX_LINE_BYTES = 64 * 1024
# mitbih_train.csv is ~392 MB decompressed. Without ``max_bytes`` a gzip is still read as a stream
# stopped here, so a small gzip of gigabytes of zeros is an error naming the file, not a MemoryError.
MAX_DECOMPRESSED_BYTES = 2 * 1024**3
OTHER_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}
# Matching Kaggle rows to rebuilt beats: the leading samples compared (every window is longer: the
# shortest RR of MIT-BIH, ~0.25 s, still gives 36 of them), the largest distance between the two
# standardised shapes that counts as the same beat (float32 rounding is ~1e-5 of it; neighbouring
# beats of one patient differ by at least one ADC unit somewhere, ~1e-2), and rows per block.
MATCH_SAMPLES = 32
MATCH_TOLERANCE = 1e-3
MATCH_BLOCK_ROWS = 256


class _Readable(Protocol):
    """What the loader reads from: a binary file, an upload, a gzip stream."""

    def read(self, size: int = -1, /) -> bytes: ...


def _is_readable(source: object) -> TypeGuard[_Readable]:
    return hasattr(source, "read")


class CsvValidationError(ValueError):
    """A Kaggle-format CSV that cannot be used; the message names the file, the line and the reason."""


class _CappedGunzip(io.RawIOBase):
    """A gzip stream decompressed as it is read, that fails (naming the file) past ``cap`` bytes.

    One class for paths, bytes and uploads, so that every way in stops at the same cap with the same
    message; a corrupt stream is named here too rather than surfacing as a zlib error.
    """

    def __init__(self, compressed: BinaryIO, name: str, cap: int) -> None:
        super().__init__()
        self._gzip = gzip.GzipFile(fileobj=compressed, mode="rb")
        self._name = name
        self._cap = cap
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            size = self._gzip.readinto(view[:min(len(view), self._cap + 1 - self._read)])
        except (OSError, EOFError, zlib.error) as error:
            raise _error(self._name, f"not a valid gzip file ({error})") from None
        self._read += size
        if self._read > self._cap:
            raise _error(self._name, f"decompressed file larger than the {self._cap:,}-byte limit")
        return size

    def close(self) -> None:
        self._gzip.close()
        super().close()


@dataclass(frozen=True)
class _Input:
    """A CSV source as it came (``data`` in memory, or ``path`` on disk), maybe gzipped.

    Nothing is decompressed up front: every reader gets a fresh stream, capped at ``cap`` bytes.
    """

    name: str
    path: Path | None = None
    data: bytes | None = None
    gzipped: bool = False
    cap: int = MAX_DECOMPRESSED_BYTES

    def _raw(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None, "an _Input holds either data or a path"
        return open(self.path, "rb")

    def open_binary(self) -> BinaryIO:
        """A fresh binary stream of the decompressed text."""
        raw = self._raw()
        return io.BufferedReader(_CappedGunzip(raw, self.name, self.cap), READ_CHUNK_BYTES) if self.gzipped else raw

    def arrow_stream(self):
        """What pyarrow reads: its own readers for plain text, the capped stream for gzip."""
        import pyarrow as pa

        if self.gzipped:
            return self.open_binary()
        if self.data is not None:
            return pa.BufferReader(self.data)
        return pa.input_stream(str(self.path))


@dataclass(frozen=True)
class _Layout:
    """Where the data starts and which columns hold what."""

    first_line: int  # 1-based line of the first data row (after the header row, if any)
    n_columns: int
    has_index: bool

    @property
    def n_values(self) -> int:
        return self.n_columns - int(self.has_index)

    @property
    def has_label(self) -> bool:
        return self.n_values == WINDOW_SAMPLES + 1


def _error(name: str, reason: str, line: int | None = None) -> CsvValidationError:
    where = f"{name} line {line:,}" if line else name
    return CsvValidationError(f"{where}: {reason}")


def _read_bounded(stream: _Readable, name: str, max_bytes: int | None, what: str) -> bytes:
    limit = None if max_bytes is None else max_bytes + 1
    data = stream.read() if limit is None else stream.read(limit)
    if max_bytes is not None and len(data) > max_bytes:
        raise _error(name, f"{what} larger than the {max_bytes:,}-byte limit")
    return data


def _input(source: Source, name: str | None, max_bytes: int | None) -> _Input:
    """Normalise a path, bytes or file-like source; enforce the size limit."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "upload.csv"
        data = bytes(source)
        if max_bytes is not None and len(data) > max_bytes:
            raise _error(name, f"file larger than the {max_bytes:,}-byte limit")
    elif _is_readable(source):
        name = name or Path(str(getattr(source, "name", "") or "upload.csv")).name
        data = _read_bounded(source, name, max_bytes, "file")
    else:
        if not isinstance(source, (str, os.PathLike)):  # what Path() would raise
            raise TypeError(f"a CSV source is a path, bytes or a binary file, not {type(source).__name__}")
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such file ({path})")
        with open(path, "rb") as stream:
            gzipped = stream.read(2) == GZIP_MAGIC
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise _error(name, f"file larger than the {max_bytes:,}-byte limit")
        return _Input(name, path=path, gzipped=gzipped, cap=_cap(max_bytes))
    return _Input(name, data=data, gzipped=data[:2] == GZIP_MAGIC, cap=_cap(max_bytes))


def _cap(max_bytes: int | None) -> int:
    """The decompressed-size cap: the caller's limit, else the module's (read now, so tests can lower it)."""
    return MAX_DECOMPRESSED_BYTES if max_bytes is None else max_bytes


def _raw_lines(stream: BinaryIO, name: str) -> Generator[tuple[int, bytes], None, None]:
    """(1-based line number, raw line) of every line, none read past ``MAX_LINE_BYTES``."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            values = raw.count(b",") + 1
            raise _error(name, f"more than {MAX_LINE_BYTES:,} bytes on one line ({values:,} values in the first "
                               f"{MAX_LINE_BYTES:,} bytes, expected {WINDOW_SAMPLES} or {WINDOW_SAMPLES + 1})",
                         number)
        yield number, raw


def _lines(inp: _Input) -> Generator[tuple[int, list[str]], None, None]:
    """(1-based line number, fields) of every non-blank line; names the line that is not text."""
    try:
        with inp.open_binary() as stream:
            for number, raw in _raw_lines(stream, inp.name):
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise _error(inp.name, "not UTF-8 text (a binary file?)", number) from None
                text = text.strip()
                if text:
                    yield number, next(csv.reader([text])) if '"' in text else text.split(",")
    except (OSError, EOFError, zlib.error) as error:
        raise _error(inp.name, f"cannot read ({error})") from error


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_header(fields: list[str]) -> bool:
    """Names in most fields, or pandas' default column numbers ``0,1,...`` (maybe after a blank)."""
    values = [_number(field) for field in fields]
    if sum(value is None for value in values) * 2 > len(values):
        return True
    numbers = values[1:] if fields[0].strip() == "" else values
    return len(numbers) > 2 and numbers[0] in (0.0, 1.0) and numbers == [numbers[0] + i for i in range(len(numbers))]


def _layout(inp: _Input) -> _Layout:
    lines = _lines(inp)
    first = next(lines, None)
    if first is None:
        raise _error(inp.name, "empty file, no rows")
    number, fields = first
    _check_separator(inp.name, number, fields)
    index_named = False
    if _is_header(fields):
        index_named = fields[0].strip().lower() in INDEX_HEADER_NAMES
        following = next(lines, None)
        if following is None:
            raise _error(inp.name, "a header row and no data rows")
        number, fields = following
    lines.close()
    _check_separator(inp.name, number, fields)
    layout = _Layout(number, len(fields), index_named or len(fields) == WINDOW_SAMPLES + 2)
    if layout.n_values not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):  # before pyarrow is asked for these columns
        raise _error(inp.name, f"{layout.n_values:,} values, expected {WINDOW_SAMPLES} or {WINDOW_SAMPLES + 1}",
                     number)
    return layout


def _check_separator(name: str, number: int, fields: list[str]) -> None:
    """Refuse a line that splits on something other than commas, naming the separator found.

    Otherwise a semicolon- or tab-separated file is one field a line: its first line is taken for a
    header (a name) and its second reported as "1 values", which says nothing of the cause.
    """
    if len(fields) != 1:
        return
    text = fields[0]
    found = max(OTHER_SEPARATORS, key=text.count)
    if text.count(found):
        raise _error(name, f"values are separated by {OTHER_SEPARATORS[found]}s ({text.count(found) + 1:,} fields "
                           f"split on {found!r}), expected commas", number)


def _running_index(column: np.ndarray) -> bool:
    """True for 0,1,2,... or k,k+1,... over more than two rows: an index column, not samples."""
    return len(column) > 2 and bool(np.all(np.diff(column) == 1)) and float(column[0]).is_integer()


def _parse_fast(inp: _Input, layout: _Layout) -> np.ndarray:
    """All rows as float64 (pyarrow); raises whatever pyarrow raises on malformed text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(layout.n_columns)]
    table = pacsv.read_csv(
        inp.arrow_stream(),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=layout.first_line - 1),
        convert_options=pacsv.ConvertOptions(column_types={name: pa.float64() for name in names}),
    )
    if any(table.column(name).null_count for name in names):
        raise ValueError("empty fields")
    if not table.num_rows:
        return np.zeros((0, layout.n_columns))
    return np.column_stack([table.column(name).to_numpy() for name in names])


def _field_problem(fields: list[str]) -> str | None:
    """Why a field of one line is not a number, or None."""
    for column, text in enumerate(fields, start=1):
        if not text.strip():
            return f"column {column} is empty"
        if _number(text) is None:
            return f"column {column} is not a number ({text.strip()[:20]!r})"
    return None


def _row_problem(values: list[float], layout: _Layout) -> str | None:
    """Why one row of numbers is invalid, or None; the checks of :func:`_bad_rows`, one row at a time."""
    offset = int(layout.has_index)
    for column, value in enumerate(values):
        if not math.isfinite(value):
            return f"column {column + 1} is {value} (values must be finite)"
    if layout.has_index and not float(values[0]).is_integer():
        return f"index column holds {values[0]!r}, not an integer"
    samples = values[offset:offset + WINDOW_SAMPLES]
    low, high = min(samples), max(samples)
    if low < -VALUE_TOLERANCE or high > 1 + VALUE_TOLERANCE:
        bad = low if low < -VALUE_TOLERANCE else high
        return f"sample value {bad:g} outside [0, 1] (column {offset + samples.index(bad) + 1})"
    if layout.has_label:
        label = values[-1]
        if not float(label).is_integer() or not 0 <= label < len(CLASS_NAMES):
            return f"label {label:g} is not an integer class 0..{len(CLASS_NAMES) - 1}"
    return None


def _locate_problem(inp: _Input, layout: _Layout, fallback: str) -> CsvValidationError:
    """Read line by line to name the first bad line; ``fallback`` when every line passes."""
    for number, fields in _lines(inp):
        if number < layout.first_line:
            continue
        count = len(fields) - int(layout.has_index)
        if count not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):
            return _error(inp.name, f"{count} values, expected {WINDOW_SAMPLES} or {WINDOW_SAMPLES + 1}", number)
        if len(fields) != layout.n_columns:
            return _error(inp.name, f"{count} values, expected {layout.n_values} as on line {layout.first_line:,}",
                          number)
        problem = _field_problem(fields) or _row_problem([float(field) for field in fields], layout)
        if problem:
            return _error(inp.name, problem, number)
    return _error(inp.name, fallback)


def _bad_rows(table: np.ndarray, layout: _Layout) -> np.ndarray:
    """A mask of the rows that fail :func:`_row_problem`'s checks, computed on the whole table."""
    offset = int(layout.has_index)
    samples = table[:, offset:offset + WINDOW_SAMPLES]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(table).all(axis=1)
        bad |= (samples < -VALUE_TOLERANCE).any(axis=1) | (samples > 1 + VALUE_TOLERANCE).any(axis=1)
        if layout.has_index:
            bad |= table[:, 0] != np.round(table[:, 0])
        if layout.has_label:
            labels = table[:, -1]
            bad |= (labels != np.round(labels)) | (labels < 0) | (labels >= len(CLASS_NAMES))
    return bad


def _line_of_row(inp: _Input, layout: _Layout, row: int) -> int:
    """The 1-based line number of the 0-based data row ``row`` (blank lines do not count)."""
    seen = -1
    with inp.open_binary() as stream:
        for number, raw in _raw_lines(stream, inp.name):
            if number >= layout.first_line and raw.strip():
                seen += 1
                if seen == row:
                    return number
    raise _error(inp.name, f"row {row + 1} not found")


def _with_detected_index(table: np.ndarray, layout: _Layout) -> _Layout:
    """A headerless 188-column file whose first column runs 0,1,2,... is index + 187 samples."""
    if not layout.has_index and layout.n_columns == WINDOW_SAMPLES + 1 and _running_index(table[:, 0]):
        return _Layout(layout.first_line, layout.n_columns, has_index=True)
    return layout


def load_kaggle_csv(
    source: Source,
    *,
    name: str | None = None,
    require_labels: bool = True,
    max_bytes: int | None = None,
) -> BeatSet:
    """Rows of a Kaggle-format CSV as a :class:`BeatSet`, after validating every row.

    Parameters
    ----------
    source : path, bytes or binary file-like
        ``mitbih_train.csv``/``mitbih_test.csv`` as published, gzipped or not.
    name : str, default=None
        The name used in error messages and in ``meta["record"]`` (``kaggle:<stem>``); default:
        the file's name.
    require_labels : bool, default=True
        Training and evaluation need the label column; prediction input may omit it, and then
        ``y`` and ``meta["label"]`` are -1.
    max_bytes : int, default=None
        Reject sources (raw or decompressed) larger than this.

    Raises
    ------
    CsvValidationError
        A ``ValueError`` naming the file, the first bad line and the reason.
    FileNotFoundError
        ``source`` is a path that does not exist.
    """
    inp = _input(source, name, max_bytes)
    layout = _layout(inp)
    try:
        table = _parse_fast(inp, layout)
    except CsvValidationError:
        raise  # the capped gzip stream's own error, passed through pyarrow
    except Exception as error:  # pyarrow: malformed rows, text, empty fields, encoding; located below
        raise _locate_problem(inp, layout, f"cannot parse ({error})") from None
    if len(table) == 0:
        raise _error(inp.name, "no data rows")
    layout = _with_detected_index(table, layout)
    if layout.n_values not in (WINDOW_SAMPLES, WINDOW_SAMPLES + 1):
        raise _error(inp.name, f"{layout.n_values} values, expected {WINDOW_SAMPLES} or {WINDOW_SAMPLES + 1}",
                     layout.first_line)
    bad = _bad_rows(table, layout)
    if bad.any():
        row = int(np.argmax(bad))
        raise _error(inp.name, _row_problem(table[row].tolist(), layout) or "invalid row",
                     _line_of_row(inp, layout, row))
    if require_labels and not layout.has_label:
        raise _error(inp.name, f"{WINDOW_SAMPLES} values per row and no label column (training and evaluation "
                               f"need labels 0..4 in column {WINDOW_SAMPLES + 1})")
    return _beatset(table, layout, inp.name)


def _beatset(table: np.ndarray, layout: _Layout, name: str) -> BeatSet:
    offset = int(layout.has_index)
    X = np.clip(table[:, offset:offset + WINDOW_SAMPLES], 0.0, 1.0).astype(np.float32)
    y = table[:, -1].astype(np.int8) if layout.has_label else np.full(len(table), UNLABELLED, np.int8)
    stem = name.removesuffix(".gz").removesuffix(".csv")
    meta = meta_frame({
        "record": np.full(len(table), f"kaggle:{stem}"),
        "sample": np.arange(len(table)),
        "label": y.astype(np.int64),
    })
    return BeatSet(X, y, meta)


def _shapes(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The leading :data:`MATCH_SAMPLES` of each window, centred and scaled to unit norm (float64),
    and a mask of the windows that have a shape there (not flat)."""
    lead = np.asarray(windows, dtype=np.float64)[:, :MATCH_SAMPLES]
    lead = lead - lead.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(lead, axis=1, keepdims=True)
    usable = norms[:, 0] > 1e-6
    return np.divide(lead, norms, out=np.zeros_like(lead), where=norms > 1e-6), usable


def match_rebuilt(rows: BeatSet, rebuilt: BeatSet) -> np.ndarray:
    """For every Kaggle row, the index in ``rebuilt`` of the beat it was cut from, or -1.

    ``rebuilt`` is the MIT-BIH rebuild of the ``kaggle`` recipe (``load_beats(recipe="kaggle")``),
    whose windows hold the same every-3rd sample from the same beat annotation as the published
    rows (see :mod:`hbcore.data.dataset`). The two windows may differ in length, and so in their
    min-max scaling, but not in shape: over the leading samples that both hold, one is the other
    times a positive factor plus an offset. So the rows are compared on those samples centred and
    scaled to unit norm; the nearest beat of the same label within :data:`MATCH_TOLERANCE` is the
    match. The cost is one matrix product (rows x beats x 32): about a second for 500 rows
    against the 109,446 beats.
    """
    beat_shapes, beat_usable = _shapes(rebuilt.X)
    row_shapes, row_usable = _shapes(rows.X)
    matches = np.full(len(rows), -1, dtype=np.int64)
    for start in range(0, len(rows), MATCH_BLOCK_ROWS):
        block = slice(start, start + MATCH_BLOCK_ROWS)
        # For unit vectors |a - b|^2 = 2 - 2 a.b: the nearest beat is the largest dot product.
        similarity = row_shapes[block] @ beat_shapes.T
        similarity[:, ~beat_usable] = -np.inf
        similarity[rows.y[block, None] != rebuilt.y[None, :]] = -np.inf
        best = similarity.argmax(axis=1)
        distance = np.sqrt(np.maximum(2.0 - 2.0 * similarity[np.arange(len(best)), best], 0.0))
        found = (distance <= MATCH_TOLERANCE) & row_usable[block]
        matches[block] = np.where(found, best, -1)
    return matches
