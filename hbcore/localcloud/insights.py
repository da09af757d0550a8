"""CloudWatch Logs Insights as AWS evaluates it, for the subset of the query language this project uses.

moto 5.2.5 evaluates only ``fields``, ``sort`` and ``limit``, ignores ``filter``, ``stats``, ``parse``
without a word (every raw event comes back), discovers no JSON fields, answers ``Complete`` at once
with epoch-millisecond timestamps, caps nothing and has no ``stop_query``. Code that works against
it can fail on AWS. This module is what ``hbcore.localcloud.motopatches`` puts in its place:

- the language: ``fields``, ``filter`` (``=``, ``==``, ``!=`` between fields, strings and numbers,
  joined by ``and`` / ``or``), ``stats count(*)`` / ``count(field)`` ``[as name]`` ``by`` fields and
  ``bin(<n>ms|s|m|h)``, ``sort`` (fields, ``asc`` / ``desc``), ``limit`` (1 to 10,000), in any order,
  each applied to the rows of the one before, as AWS does. Fields are the system ones (``@timestamp``,
  ``@message``, ``@logStream``, ``@log``, ``@ptr``, ``@ingestionTime``) and those discovered in a
  JSON message (nested keys joined by ``.``, array items by index, at most
  ``MAX_DISCOVERED_FIELDS``). Anything else fails the query with :class:`MalformedQuery`, as AWS
  fails what it cannot compile: the valid Logs Insights commands this module does not evaluate
  (``parse``, ``dedup``, ...) fail too, naming themselves, rather than being ignored;
- AWS's rules (:class:`Rules`, from the environment in the local cloud): each event becomes visible
  to queries after a random ingestion delay; a result holds at most ``max_rows`` rows while
  ``statistics.recordsMatched`` counts every event that matched; a query runs for ``run_s`` before it
  is ``Complete`` and at most ``max_concurrent`` run at once (``LimitExceededException`` beyond);
  ``@timestamp`` comes back as ``2026-11-27 19:42:35.975`` (UTC).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

INGESTION_DELAY_ENV = "HB_LOGS_INGESTION_DELAY_S"  # "MIN,MAX" or "MIN,MAX,TAIL" seconds
MAX_ROWS_ENV = "HB_LOGS_QUERY_MAX_ROWS"
MAX_CONCURRENT_ENV = "HB_LOGS_MAX_CONCURRENT_QUERIES"
QUERY_RUN_ENV = "HB_LOGS_QUERY_RUN_S"
DEFAULT_INGESTION_DELAY_S = (1.0, 5.0, 15.0)  # usually 1-5 s; TAIL_FRACTION of the events up to 15 s
TAIL_FRACTION = 0.01
AWS_MAX_ROWS = 10_000  # the Logs Insights result cap, and the largest ``limit``
AWS_MAX_CONCURRENT_QUERIES = 30  # per account (CloudWatch Logs API reference, StartQuery)
DEFAULT_QUERY_RUN_S = 0.2
MAX_DISCOVERED_FIELDS = 200  # JSON fields Logs Insights extracts from one event
SYSTEM_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ptr", "@ingestionTime")
# Valid Logs Insights commands that this module does not evaluate: a query using one fails, naming it.
NOT_EVALUATED = ("parse", "dedup", "display", "unmask", "pattern", "diff", "unnest", "filterIndex", "source",
                 "lookup", "anomaly")
_BIN_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class MalformedQuery(ValueError):
    """A query AWS would refuse to compile, or one using what this module does not evaluate."""


@dataclass(frozen=True)
class Rules:
    """What the local cloud holds Logs Insights to (see the module docstring)."""

    delay_min_s: float = 0.0
    delay_max_s: float = 0.0
    delay_tail_s: float = 0.0  # TAIL_FRACTION of events take up to this long (0: no tail)
    max_rows: int = AWS_MAX_ROWS
    max_concurrent: int = AWS_MAX_CONCURRENT_QUERIES
    run_s: float = 0.0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Rules:
        """The local cloud's rules: AWS's defaults, each settable by its environment variable."""
        environ = dict(os.environ if environ is None else environ)
        delay = environ.get(INGESTION_DELAY_ENV)
        low, high, tail = DEFAULT_INGESTION_DELAY_S
        if delay:
            try:
                values = [float(part) for part in delay.split(",")]
            except ValueError:
                values = []
            if len(values) not in (2, 3) or not 0 <= values[0] <= values[1] or min(values) < 0:
                raise ValueError(f"{INGESTION_DELAY_ENV}={delay!r}: expected MIN,MAX (or MIN,MAX,TAIL) seconds, "
                                 "0 <= MIN <= MAX")
            low, high = values[0], values[1]
            tail = values[2] if len(values) == 3 else 0.0
        return cls(low, high, tail, _positive_int(environ, MAX_ROWS_ENV, AWS_MAX_ROWS),
                   _positive_int(environ, MAX_CONCURRENT_ENV, AWS_MAX_CONCURRENT_QUERIES),
                   float(environ.get(QUERY_RUN_ENV) or DEFAULT_QUERY_RUN_S))

    def ingestion_delay_ms(self, rng: random.Random) -> int:
        """One event's delay before queries see it."""
        if self.delay_tail_s > self.delay_max_s and rng.random() < TAIL_FRACTION:
            return int(rng.uniform(self.delay_max_s, self.delay_tail_s) * 1000)
        return int(rng.uniform(self.delay_min_s, self.delay_max_s) * 1000)


def _positive_int(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a whole number of at least 1")
    return int(value)


class Event(NamedTuple):
    """One log event as a query sees it."""

    timestamp_ms: int
    message: str
    stream: str
    group: str  # "<account>:<group name>", as AWS's @log
    ptr: str
    ingestion_ms: int


# -- the language --------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?)
                        |(?P<op>==|!=|=|\(|\)|,|\*)|(?P<name>[@A-Za-z_][\w.@$\[\]-]*)|(?P<other>\S))""", re.X)


class _Token(NamedTuple):
    kind: str
    text: str


def _tokens(text: str) -> list[_Token]:
    found = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "other":
            raise MalformedQuery(f"unexpected symbol {match.group(kind)!r} in {text.strip()!r}")
        found.append(_Token(kind, match.group(kind)))
    return found


def _split_commands(query: str) -> list[str]:
    """The query's commands: split at ``|`` outside quotes."""
    parts, current, quote = [], [], ""
    for char in query:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == "|":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quote:
        raise MalformedQuery(f"unterminated string in {query!r}")
    parts.append("".join(current))
    return [part.strip() for part in parts]


Row = dict[str, Any]
Step = Callable[[list[Row]], list[Row]]


class Command(NamedTuple):
    """One command of a query: its name and what it does to the rows of the one before."""

    name: str
    run: Step


def _literal(token: _Token) -> Any:
    """A number, or a string in double or single quotes (backslash escapes as in JSON)."""
    if token.kind == "number":
        return float(token.text)
    body = token.text[1:-1]
    if token.text[0] == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    return json.loads(f'"{body}"')


def _operand(token: _Token) -> Callable[[Row], Any]:
    if token.kind == "name":
        return lambda row: row.get(token.text)
    if token.kind in ("string", "number"):
        value = _literal(token)
        return lambda row: value
    raise MalformedQuery(f"expected a field, a string or a number, found {token.text!r}")


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, float) or isinstance(right, float):
        try:
            return float(left) == float(right)
        except (TypeError, ValueError):
            return False
    return str(left) == str(right)


def _comparison(tokens: list[_Token]) -> Callable[[Row], bool]:
    if len(tokens) != 3 or tokens[1].kind != "op" or tokens[1].text not in ("=", "==", "!="):
        raise MalformedQuery(f"the local cloud evaluates filters of the form <a> = <b> or <a> != <b>, joined by "
                             f"and / or; not {' '.join(token.text for token in tokens)!r}")
    left, right = _operand(tokens[0]), _operand(tokens[2])
    if tokens[1].text == "!=":
        return lambda row: (left(row) is not None and right(row) is not None
                            and not _equal(left(row), right(row)))
    return lambda row: _equal(left(row), right(row))


def _filter(body: str) -> Step:
    tokens = _tokens(body)
    if not tokens:
        raise MalformedQuery("filter needs a condition")
    alternatives: list[list[Callable[[Row], bool]]] = [[]]
    term: list[_Token] = []
    for token in [*tokens, _Token("name", "or")]:
        if token.kind == "name" and token.text.lower() in ("and", "or"):
            alternatives[-1].append(_comparison(term))
            term = []
            if token.text.lower() == "or":
                alternatives.append([])
        else:
            term.append(token)
    alternatives.pop()
    return lambda rows: [row for row in rows if any(all(test(row) for test in terms) for terms in alternatives)]


def _names(body: str, command: str) -> list[str]:
    tokens = _tokens(body)
    names = [token.text for token in tokens[0::2]]
    if not tokens or any(token.kind != "name" for token in tokens[0::2]) or any(
            token.text != "," for token in tokens[1::2]):
        raise MalformedQuery(f"{command} takes field names separated by commas, not {body!r}")
    return names


def _fields(body: str) -> Step:
    """``fields`` chooses the fields a result shows (``evaluate`` projects at the end): later commands
    still see every field of the event, as on AWS (``fields @message | filter @logStream = ...``)."""
    names = _names(body, "fields")
    return lambda rows: [{**row, "_shown": (*row.get("_shown", ()), *names)} for row in rows]


def _bin_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if match is None or int(match.group(1)) < 1:
        raise MalformedQuery(f"bin() takes a period such as 1s, 5m or 1h, not {text!r}")
    return int(match.group(1)) * _BIN_UNITS_MS[match.group(2)]


def _binned(period_ms: int) -> Callable[[Row], Any]:
    """The start of a row's bin of ``period_ms``, as AWS shows ``bin()`` values."""
    return lambda row: aws_timestamp(row["_ts_ms"] // period_ms * period_ms)


def _getter(name: str) -> Callable[[Row], Any]:
    return lambda row: row.get(name)


def _split_by(body: str) -> tuple[str, str, str]:
    """``count(*) ... by a, b`` as (the aggregations, "by", the groups); no groups: (body, "", "")."""
    parts = re.split(r"\s+by\s+", body, maxsplit=1)
    return (parts[0], "by", parts[1]) if len(parts) == 2 else (body, "", "")


def _stats(body: str) -> Step:
    head, _, groups_text = _split_by(body)
    counts: list[tuple[str, str | None]] = []  # (output name, counted field or None for *)
    for part in (piece.strip() for piece in head.split(",")):
        match = re.fullmatch(r"count\(\s*(\*|[@\w.$-]+)?\s*\)(?:\s+as\s+([@\w.$-]+))?", part)
        if match is None:
            raise MalformedQuery(f"the local cloud evaluates stats count(*) / count(field) [as name]; not {part!r}")
        field = None if match.group(1) in (None, "*") else match.group(1)
        counts.append((match.group(2) or part.replace(" ", ""), field))
    groups: list[tuple[str, Callable[[Row], Any]]] = []
    for part in (piece.strip() for piece in groups_text.split(",")) if groups_text else ():
        match = re.fullmatch(r"bin\(\s*(\w+)\s*\)(?:\s+as\s+([@\w.$-]+))?", part)
        if match is not None:
            groups.append((match.group(2) or f"bin({match.group(1)})", _binned(_bin_ms(match.group(1)))))
        elif re.fullmatch(r"[@A-Za-z_][\w.@$-]*", part):
            groups.append((part, _getter(part)))
        else:
            raise MalformedQuery(f"stats ... by takes fields and bin(period), not {part!r}")

    def run(rows: list[Row]) -> list[Row]:
        table: dict[tuple, list[int]] = {}
        for row in rows:
            key = tuple(value(row) for _, value in groups)
            tally = table.setdefault(key, [0] * len(counts))
            for index, (_, field) in enumerate(counts):
                tally[index] += field is None or row.get(field) is not None
        out = []
        for key, tally in sorted(table.items(), key=lambda item: tuple("" if v is None else str(v) for v in item[0])):
            row = {name: value for (name, _), value in zip(groups, key) if value is not None}
            row.update({name: count for (name, _), count in zip(counts, tally)})
            out.append(row)
        return out

    return run


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, value)
    try:
        return (0, float(value))
    except ValueError:
        return (1, str(value))


def _sort(body: str) -> Step:
    keys = []
    for part in (piece.strip() for piece in body.split(",")):
        match = re.fullmatch(r"([@A-Za-z_][\w.@$-]*(?:\([\w*@.]*\))?)(?:\s+(asc|desc))?", part, re.I)
        if match is None:
            raise MalformedQuery(f"sort takes fields, each optionally asc or desc, not {part!r}")
        keys.append((match.group(1), (match.group(2) or "desc").lower() == "desc"))

    def run(rows: list[Row]) -> list[Row]:
        for name, descending in reversed(keys):  # stable sorts, the last key first
            field = "_ts_ms" if name == "@timestamp" else name
            rows = sorted(rows, key=lambda row: _sort_key(row.get(field)), reverse=descending)
        return rows

    return run


class Query(NamedTuple):
    """A parsed query: its commands in order, and whether it needs the fields discovered in JSON messages."""

    commands: tuple[Command, ...]
    needs_json: bool


_BUILDERS: dict[str, Callable[[str], Step]] = {"fields": _fields, "filter": _filter, "stats": _stats, "sort": _sort}
_WORDS = set(SYSTEM_FIELDS) | {"and", "or", "asc", "desc", "by", "as", "count", "bin", *_BUILDERS, "limit"}
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def _limit(body: str) -> Step:
    if not body.isdigit() or not 1 <= int(body) <= AWS_MAX_ROWS:
        raise MalformedQuery(f"limit takes a whole number from 1 to {AWS_MAX_ROWS:,}, not {body!r}")
    count = int(body)
    return lambda rows: rows[:count]


def parse_query(query: str) -> Query:
    """The query's commands; raises :class:`MalformedQuery` for anything outside the evaluated subset."""
    commands = []
    for text in _split_commands(query):
        name, _, body = text.partition(" ")
        name, body = name.strip(), body.strip()
        if not name:
            raise MalformedQuery(f"an empty command in {query!r}")
        if name in NOT_EVALUATED:
            raise MalformedQuery(f"{name}: a Logs Insights command the local cloud does not evaluate "
                                 "(hbcore.localcloud.insights)")
        build = _limit if name == "limit" else _BUILDERS.get(name)
        if build is None:
            raise MalformedQuery(f"unexpected symbol {name!r}: not a Logs Insights command")
        commands.append(Command(name, build(body)))
    # the fields it names, outside strings, aliases (as x) and periods (bin(1s)): JSON is parsed only if needed
    text = re.sub(r"\bas\s+[@\w.$-]+|\bbin\([^)]*\)", " ", _QUOTED.sub(" ", query))
    named = set(re.findall(r"(?<![\w.@$-])[@A-Za-z_][\w.@$-]*", text))
    return Query(tuple(commands), bool(named - _WORDS))


# -- evaluation ----------------------------------------------------------------------------------

def aws_timestamp(epoch_ms: int) -> str:
    """``@timestamp`` as AWS returns it: ``2026-11-27 19:42:35.975`` (UTC)."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _flatten(value: Any, prefix: str, out: Row) -> None:
    if len(out) >= MAX_DISCOVERED_FIELDS:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}", out)
    elif value is not None and prefix:
        out[prefix] = value


def discovered_fields(message: str) -> Row:
    """The fields Logs Insights discovers in one JSON message (none for other text)."""
    text = message.strip()
    if not text.startswith("{"):
        return {}
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    out: Row = {}
    if isinstance(document, dict):
        _flatten(document, "", out)
    return out


def _row(event: Event, needs_json: bool) -> Row:
    row: Row = {"_ts_ms": event.timestamp_ms}
    if needs_json:
        row.update(discovered_fields(event.message))
    row.update({"@timestamp": aws_timestamp(event.timestamp_ms), "@message": event.message,
                "@logStream": event.stream, "@log": event.group, "@ptr": event.ptr,
                "@ingestionTime": event.ingestion_ms})
    return row


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else repr(value)
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Result:
    """What get_query_results returns once the query is complete."""

    rows: list[list[dict[str, str]]]
    records_matched: int
    records_scanned: int
    bytes_scanned: int


DEFAULT_SHOWN = ("@timestamp", "@message", "@logStream", "@log")


def _shown(row: Row, aggregated: bool) -> Row:
    """The fields of a result row: those ``fields`` named (the default ones without), and ``@ptr``;
    a stats row as it is. Keys starting with ``_`` are the evaluator's own."""
    if aggregated and "_shown" not in row:
        return {name: value for name, value in row.items() if not name.startswith("_")}
    names = row.get("_shown", DEFAULT_SHOWN)
    shown = {name: row[name] for name in names if name in row}
    if "@ptr" in row:
        shown["@ptr"] = row["@ptr"]
    return shown


def evaluate(query: Query, events: Iterable[Event], max_rows: int = AWS_MAX_ROWS) -> Result:
    """Run ``query`` over ``events``: at most ``max_rows`` rows; ``records_matched`` counts the events that
    passed its filters (before ``stats`` and ``limit``), as AWS's statistics do."""
    rows = []
    scanned_bytes = 0
    for event in events:
        scanned_bytes += len(event.message)
        rows.append(_row(event, query.needs_json))
    scanned = len(rows)
    if not any(command.name in ("sort", "stats") for command in query.commands):
        rows.sort(key=lambda row: row["_ts_ms"], reverse=True)  # AWS's order without a sort: newest first
    matched: int | None = None
    for command in query.commands:
        if matched is None and command.name in ("stats", "limit"):
            matched = len(rows)
        rows = command.run(rows)
    aggregated = any(command.name == "stats" for command in query.commands)
    cut = [_shown(row, aggregated) for row in rows[:max_rows]]
    results = [[{"field": name, "value": _text(value)} for name, value in row.items()] for row in cut]
    return Result(results, len(rows) if matched is None else matched, scanned, scanned_bytes)
