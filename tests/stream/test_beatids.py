"""hbcore.stream.beatids: a run's beat ids kept compactly, with the answers a Python set of strings gives."""

from __future__ import annotations

import pytest

from hbcore.stream import beatids
from hbcore.stream.beatids import ABSENT, BeatIds


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Merge every 3 ids, so that the tests cross merges."""
    monkeypatch.setattr(beatids, "PENDING_MAX", 3)


def ids_of(run: str, *identities: str) -> BeatIds:
    ids = BeatIds(run)
    for identity in identities:
        ids.add(identity)
    return ids


def test_an_id_is_added_once_before_and_after_a_merge():
    ids = BeatIds("r")
    added = [ids.add(f"r:100:{sample}") for sample in (1, 2, 3, 4)]  # the third add merges

    assert added == [True] * 4
    assert [ids.add("r:100:1"), ids.add("r:100:4")] == [False, False]
    assert len(ids) == 4


def test_iteration_gives_the_id_strings_back():
    identities = {"r:100:5", "r:kaggle:mitbih_test:0", "r:201:4294967295", "r:207:12"}

    assert set(ids_of("r", *identities)) == identities


def test_ids_of_another_form_are_kept_as_they_are():
    ids = ids_of("r", "shardId-000000000000:4959", "r:100:007", "other:100:7", "r:100:-1")

    assert {"shardId-000000000000:4959", "r:100:007", "other:100:7", "r:100:-1"} == set(ids)
    assert "r:100:7" not in ids  # not the same id as r:100:007


def test_each_id_keeps_its_value():
    ids = BeatIds("r")
    for sample, value in ((5, 3), (6, 1), (7, 4), (8, 2)):
        ids.add(f"r:100:{sample}", value)

    assert [ids.get(f"r:100:{sample}") for sample in (5, 6, 7, 8, 9)] == [3, 1, 4, 2, None]
    assert not ids.add("r:100:5", 0) and ids.get("r:100:5") == 3  # the first value stays


def test_lookup_gives_the_value_of_each_beat_or_absent():
    ids = BeatIds("r")
    ids.add("r:100:5", 2)
    ids.add("r:kaggle:x:7", 1)

    values = ids.lookup(["100", "kaggle:x", "100", "999"], [5, 7, 6, 5])

    assert values.tolist() == [2, 1, ABSENT, ABSENT]


def test_difference_lists_the_ids_the_other_lacks():
    mine = ids_of("r", "r:100:1", "r:100:2", "r:201:1", "r:999:1", "shard:1")
    theirs = ids_of("r", "r:201:1", "r:100:2", "r:555:5")  # records coded in another order

    assert sorted(mine.difference(theirs)) == ["r:100:1", "r:999:1", "shard:1"]


def test_discard_removes_ids():
    ids = ids_of("r", "r:100:1", "r:100:2", "r:100:3", "shard:1")

    ids.discard(["r:100:2", "shard:1", "r:404:1"])

    assert sorted(ids) == ["r:100:1", "r:100:3"]


def test_a_copy_does_not_change_with_the_original():
    ids = ids_of("r", "r:100:1", "r:100:2", "r:100:3", "r:100:4")
    copy = ids.copy()

    ids.add("r:100:5")
    ids.discard(["r:100:1"])

    assert sorted(copy) == ["r:100:1", "r:100:2", "r:100:3", "r:100:4"]


def test_of_builds_the_ids_of_a_replays_rows():
    ids = BeatIds.of("r", ["100", "201", "100"], [5, 6, -3])

    assert sorted(ids) == ["r:100:-3", "r:100:5", "r:201:6"]
    assert ids.lookup(["201", "100", "100"], [6, -3, 6]).tolist() == [0, 0, ABSENT]
