"""Bad stream records and foreign log lines through the REAL local pipeline (stream → poller → handler →
endpoint → logs → reader): each bad record gets one rejected line with a clear reason, the good
records around it are predicted, and lines that are not ours are counted and ignored.

The handler's own unit tests (tests/handler/test_handler.py) cover each rule in isolation; these follow the
records end to end, put in one PutRecords call between good beats as a broken sender would.
"""

from __future__ import annotations

import json
import time

import pytest
from kit.cloudkit import poll_reader_until

from hbcore.stream import aggregations
from hbcore.stream.replay import StreamSource, new_run_id, select_beats

WAIT_S = 60.0
ONE_MIB = 1024 * 1024
GOOD = ",".join(["0.5"] * 187)

# name -> (record data, what its rejected line's reason says)
BAD_RECORDS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty record"),
    "blank": (b"  \n ", "empty record"),
    "not UTF-8": (b"\xff\xfe0.5,0.5", "not UTF-8"),
    "neither JSON nor CSV": (b"hello, world", "neither a JSON object nor a CSV line of numbers: value 1 is 'hello'"),
    "0 values": (b'{"id": "x0", "beat": []}', "'beat' has 0 values, expected 187"),
    "186 values": (",".join(["0.5"] * 186).encode(), "186 values, expected 187 (or 188 with a label)"),
    "188 values in JSON": (json.dumps({"beat": [0.5] * 188}).encode(), "'beat' has 188 values, expected 187"),
    "10,000 values": (",".join(["0.5"] * 10_000).encode(), "10,000 values, expected 187 (or 188 with a label)"),
    "NaN": (b'{"beat": [' + b"0.5," * 5 + b"NaN" + b",0.5" * 181 + b"]}", "'beat'[5] is NaN or infinite"),
    "infinity in CSV": (",".join(["0.5"] * 9 + ["inf"] + ["0.5"] * 177).encode(),
                        "value 10 is 'inf', expected a finite number"),
    "strings in the array": (json.dumps({"beat": ["0.5"] * 187}).encode(),
                             "'beat'[0] is str, expected a finite number"),
    "1 MiB": (b"0" * (ONE_MIB - len("junk")), "bytes, over the 65,536-byte limit for one beat"),
    "nested junk": (json.dumps({"beat": {"lead": [[0.5], {"x": None}]}}).encode(), "'beat' is dict, expected an array"),
    "deep nesting": (b"[" * 30_000 + b"]" * 30_000, "JSON nested too deeply"),
    "JSON array": (b"[0.5, 0.5]", "JSON list, expected an object"),
    "label out of range": (f"{GOOD},7".encode(), "label 7.0 is not one of 0..4"),
    "RR of zero": (json.dumps({"beat": [0.5] * 187, "rr_prev_s": 0}).encode(), "'rr_prev_s' is 0"),
    # Accepted by the handler, refused by the model container (values outside [0, 1]): found by halving.
    "values the model refuses": (json.dumps({"beat": [5.0] * 187}).encode(), "the endpoint refused this beat"),
}


@pytest.fixture(scope="module")
def good_beats(mitdb_beats):
    return select_beats(mitdb_beats, split="intra", order="time", limit=40)


@pytest.fixture(scope="module")
def streamed(fault_rig, good_beats):
    """Good beats with every bad record between them, put 10 a call; the first call also carries one
    beat twice (in one call, so in one batch). Returns (run, good ids, seq by name, final snapshot)."""
    run = new_run_id()
    good = StreamSource(good_beats).records_for(list(range(len(good_beats))), run, time.time())
    entries: list[tuple[str | None, str, bytes]] = [(None, "good", good[-1][2]), ("duplicate id", "good", good[-1][2])]
    for index, (name, (data, _)) in enumerate(BAD_RECORDS.items()):
        entries.append((None, "good", good[index][2]))
        entries.append((name, "junk", data))
    entries += [(None, "good", data) for _, _, data in good[len(BAD_RECORDS):-1]]
    kinesis = fault_rig.backend.client("kinesis")
    seq_of: dict[str, str] = {}
    for start in range(0, len(entries), 10):
        chunk = entries[start:start + 10]
        answer = kinesis.put_records(StreamName=fault_rig.pipeline.names.stream,
                                     Records=[{"Data": data, "PartitionKey": key} for _, key, data in chunk])
        assert answer["FailedRecordCount"] == 0
        seq_of.update({name: result["SequenceNumber"]
                       for (name, _, _), result in zip(chunk, answer["Records"]) if name})
    good_ids = {identity for identity, _, _ in good}

    def done(snapshot):
        rejected = set(snapshot.rejected["seq"])
        return good_ids <= set(snapshot.predictions["id"]) and set(seq_of.values()) <= rejected

    return run, good_ids, seq_of, poll_reader_until(fault_rig.pipeline.reader, done, WAIT_S, 0.5)


@pytest.mark.parametrize("name", [*BAD_RECORDS, "duplicate id"])
def test_a_bad_record_gets_one_rejected_line_with_its_reason(streamed, name):
    _, _, seq_of, snapshot = streamed
    lines = snapshot.rejected[snapshot.rejected["seq"] == seq_of[name]]
    expected = "duplicate id in this batch" if name == "duplicate id" else BAD_RECORDS[name][1]
    assert len(lines) == 1
    assert expected in lines["reason"].iloc[0]


def test_the_good_records_around_them_are_predicted_once(streamed, fault_rig, good_beats):
    run, good_ids, _, snapshot = streamed
    predictions = aggregations.for_run(snapshot.predictions, run)
    assert set(predictions["id"]) == good_ids
    assert predictions["id"].is_unique


def test_foreign_log_lines_are_counted_and_ignored(fault_rig, good_beats):
    reader = fault_rig.pipeline.reader
    before = reader.snapshot().stats
    logs = fault_rig.backend.client("logs")
    group, stream = fault_rig.pipeline.names.log_group, f"foreign-{time.time_ns()}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    foreign = ["plain text from another program", '{"type": "metric", "value": 3}', "[1, 2, 3]",
               '{"type": "prediction", "pred": 1}', '{"type": "prediction", "id": "a", "pred": 9}',
               '{"type": "rejected", "reason": 7}', "{not json", "x" * 10_000]
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now_ms, "message": message} for message in foreign])
    snapshot = poll_reader_until(reader, lambda s: s.stats.foreign_lines >= before.foreign_lines + len(foreign),
                                 WAIT_S, 0.5)
    assert snapshot.stats.foreign_lines - before.foreign_lines == len(foreign)
    assert (snapshot.stats.predictions, snapshot.stats.rejected) == (before.predictions, before.rejected)
    assert snapshot.stats.error_count == before.error_count
