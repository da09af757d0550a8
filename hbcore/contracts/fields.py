"""What the formats are made of: a field's spec, the error a reader raises, and the value checks.

The checks are the handler's (``lambda_function.py``), so that a value one reader accepts the
others accept too: a number is a JSON int within ±2**53 or a finite float, never a bool (Python's
``json`` reads ``true`` as an int subclass); a text is a str that encodes as UTF-8 (``json`` reads a
lone ``"\\ud800"`` escape into one, which pyarrow-backed frames then refuse).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

MAX_EXACT_INT = 2**53  # larger JSON integers are not values of these formats (nor exact as floats)


class Field(NamedTuple):
    """One key of a format: its name, the type of its value once read, and what the value means."""

    name: str
    kind: type  # str, int or float; the value may also be null (None) unless ``required``
    unit: str = ""  # the meaning and unit of the value ("s in the record", "ms", "class index")
    required: bool = False  # null or absent is refused; otherwise it reads as ``default``
    choices: range | None = None  # the values an int may take
    default: Any = None  # what an absent or null value reads as (None: unknown)


class FormatError(ValueError):
    """A value that breaks its format; ``field`` names where (None: the whole document)."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason if field is None else f"'{field}' {reason}")
        self.field = field
        self.reason = reason


def kind_of(value: Any) -> str:
    """The JSON-ish name of a value's type, for error messages."""
    return "null" if value is None else type(value).__name__


def number(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a bool), else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return float(value)
    return None


def integer(value: Any) -> int | None:
    """``value`` if it is a JSON int within ±2**53 (not a bool, not a float), else None."""
    return value if type(value) is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT else None


def whole_number(value: Any) -> int | None:
    """``value`` as an int if it is a JSON int, or an integral float (``370.0``), within ±2**53; else None."""
    if type(value) is float and value.is_integer() and -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return int(value)
    return integer(value)


def text(value: Any) -> str | None:
    """``value`` if it is a str that encodes as UTF-8, else None."""
    if type(value) is not str:
        return None
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def numbers(values: Any, count: int, where: str) -> list[float]:
    """``values`` as ``count`` finite floats (a beat, a row of probabilities); raises :class:`FormatError`."""
    if not isinstance(values, list):
        raise FormatError(where, f"is {kind_of(values)}, expected an array of {count} numbers")
    if len(values) != count:
        raise FormatError(where, f"has {len(values):,} values, expected {count}")
    if set(map(type, values)) == {float} and all(map(math.isfinite, values)):
        return values  # what every writer of ours writes: a third of the time of the check below
    floats: list[float] = []
    for index, value in enumerate(values):
        checked = number(value)
        if checked is None:
            raise FormatError(f"{where}[{index}]", f"is {value!r:.40}, expected a finite number")
        floats.append(checked)
    return floats
