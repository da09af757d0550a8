"""The beat id: ``<run>:<record>:<sample>``, one beat of one replay run, in the stream, the logs and the ledgers.

The replay writes it into each stream record; the handler copies it into the beat's log lines; the
replay's ledger and the results reader keep it (``hbcore.stream.beatids``) to account for every
beat once. ``run`` is a replay run id (``20261128T120000-ab12cd``: no colon), ``record`` a MIT-BIH
record ("100") or a Kaggle file (``kaggle:<stem>``, which holds a colon), ``sample`` the R peak's
360 Hz sample index (a Kaggle row's 0-based index): so the run ends at the first colon and the
sample starts after the last.

A stream record without an id (a bare CSV line, a JSON record without ``id``) gets the handler's
fallback ``<shardId>:<sequenceNumber>`` (:func:`stream_position_id`), stable across Kinesis
retries; it has one colon, so :func:`parse_beat_id` never mistakes it for a beat id. A user record
inside a KPL aggregate (``hbcore.contracts.kpl``) gets ``<shardId>:<sequenceNumber>:<subsequence>``:
its run part then starts with ``shardId-``, which no run id does.
"""

from __future__ import annotations

from typing import NamedTuple

VERSION = 1
SEPARATOR = ":"


class BeatKey(NamedTuple):
    """The parts of a beat id."""

    run: str
    record: str
    sample: int  # 360 Hz sample index of the R peak (a Kaggle row's index), ≥ 0


def beat_id(run: str, record: str, sample: int) -> str:
    """The id of one beat of one replay run."""
    return f"{run}:{record}:{sample}"


def parse_beat_id(identity: str) -> BeatKey | None:
    """The parts of an id :func:`beat_id` writes, such that writing them gives ``identity`` back;
    None for any other text (the handler's fallback, a sample that is not a plain decimal)."""
    run, colon, rest = identity.partition(SEPARATOR)
    record, colon, sample = rest.rpartition(SEPARATOR) if colon else ("", "", "")
    if not colon or not (sample.isascii() and sample.isdigit()) or (sample[0] == "0" and sample != "0"):
        return None
    return BeatKey(run, record, int(sample))


def stream_position_id(shard_id: str, sequence_number: str, subsequence: int | None = None) -> str:
    """The id the handler gives a stream record that carries none (``lambda_function.user_records``);
    ``subsequence`` is the user record's index in a KPL aggregate."""
    position = f"{shard_id}:{sequence_number}"
    return position if subsequence is None else f"{position}:{subsequence}"
