"""The app's alarm feed: the rhythm detector fed from the reader's snapshots, with acknowledgements."""

from __future__ import annotations

import json

import pytest

from hbcore.app import alarms
from hbcore.bench.appbench import InMemoryLogsInsights
from hbcore.data.classes import CLASS_NAMES
from hbcore.stream.reader import ResultsReader

NOW_S = 1_800_000_000.0
# 5 ventricular beats in a row at 120 bpm (ventricular tachycardia) among normal beats at 75 bpm
VT_LABELS = "NNNNNNNNNN" + "VVVVV" + "NNNNNNNNNN"


def lines(labels: str, record: str = "119", run: str = "a", first_ts: float = NOW_S - 100) -> list[tuple[int, str]]:
    """Prediction log events of one patient's beats, in stream order, one per 0.1 s of log time."""
    events, t = [], 0.0
    for i, label in enumerate(labels):
        t += 0.5 if label == "V" else 0.8
        events.append((int((first_ts + i * 0.1) * 1000), json.dumps({
            "type": "prediction", "id": f"{run}:{record}:{i}", "run": run, "record": record, "sample": int(t * 360),
            "t": round(t, 3), "label": CLASS_NAMES.index(label), "pred": CLASS_NAMES.index(label), "prob": 0.9})))
    return events


class Logs(InMemoryLogsInsights):
    """An in-memory log group that more events can be appended to."""

    def add(self, events: list[tuple[int, str]]) -> None:
        self.__init__(sorted(self.events + events))


@pytest.fixture
def logs() -> Logs:
    return Logs([])


def read(logs: Logs, reader: ResultsReader | None = None) -> ResultsReader:
    reader = reader or ResultsReader(logs, "/aws/lambda/test", start_s=NOW_S - 1000, lag_s=1000)
    reader.poll_once(now_s=NOW_S)
    return reader


def test_a_ventricular_run_raises_one_alarm_that_grows_until_it_ends(logs):
    logs.add(lines(VT_LABELS))
    feed = alarms.AlarmFeed()
    assert feed.update(read(logs).snapshot()) == len(VT_LABELS)

    shown = feed.alarms()
    assert [(alarm.event.kind, alarm.event.patient, alarm.event.ongoing) for alarm in shown] == [("vt", "119", False)]
    assert shown[0].event.beat_ids == tuple(f"a:119:{i}" for i in range(10, 15))
    assert shown[0].duration_s == pytest.approx(2.0) and shown[0].event.severity == "high"
    assert shown[0].raised_s == pytest.approx(NOW_S - 100 + 1.2, abs=0.01)  # logged with the run's 3rd V beat


def test_rows_are_fed_once_whatever_the_number_of_updates(logs):
    first, second = lines(VT_LABELS)[:12], lines(VT_LABELS)[12:]
    logs.add(first)
    reader = read(logs)
    feed = alarms.AlarmFeed()
    assert feed.update(reader.snapshot()) == 12
    assert feed.update(reader.snapshot()) == 0
    assert feed.alarms() == []  # two V beats so far: a couplet is only known when the third is not V
    logs.add(second)
    assert feed.update(read(logs, reader).snapshot()) == len(VT_LABELS) - 12
    assert [alarm.event.kind for alarm in feed.alarms()] == ["vt"]


def test_feeding_in_two_chunks_gives_the_events_of_one(logs):
    logs.add(lines(VT_LABELS + "NVVN" + "N" * 10))
    whole = alarms.AlarmFeed()
    whole.update(read(logs).snapshot())

    chunked_logs = Logs([])
    events = lines(VT_LABELS + "NVVN" + "N" * 10)
    chunked_logs.add(events[:13])
    reader = read(chunked_logs)
    chunked = alarms.AlarmFeed()
    chunked.update(reader.snapshot())
    chunked_logs.add(events[13:])
    chunked.update(read(chunked_logs, reader).snapshot())

    def kinds(feed):
        return [(alarm.event.kind, alarm.event.onset_s, alarm.event.offset_s) for alarm in feed.alarms()]

    assert kinds(chunked) == kinds(whole) and {kind for kind, _, _ in kinds(whole)} == {"vt", "v_couplet"}


def test_each_patient_is_fed_in_record_time_and_late_rows_are_counted(logs):
    events = lines(VT_LABELS, record="119") + lines("N" * 20, record="100")
    logs.add(events[:14] + events[15:])
    reader = read(logs)
    feed = alarms.AlarmFeed()
    feed.update(reader.snapshot())
    logs.add(events[14:15])  # the last V beat of 119, logged after beats that follow it
    feed.update(read(logs, reader).snapshot())
    assert feed.out_of_order == 1
    assert {alarm.event.patient for alarm in feed.alarms()} == {"119"}


def test_rows_without_a_time_are_not_fed(logs):
    logs.add([(int(NOW_S * 1000) - 5000, json.dumps({"type": "prediction", "id": "a:kaggle:1", "run": "a",
                                                       "record": "kaggle:test", "sample": 1, "pred": 2}))])
    feed = alarms.AlarmFeed()
    assert feed.update(read(logs).snapshot()) == 0 and feed.untimed == 1


def test_rows_dropped_before_an_update_are_counted_as_missed(logs):
    logs.add(lines("N" * 30))
    reader = ResultsReader(logs, "/aws/lambda/test", start_s=NOW_S - 1000, lag_s=1000, keep_rows=10)
    feed = alarms.AlarmFeed()
    assert feed.update(read(logs, reader).snapshot()) == 10 and feed.missed == 20


def test_runs_have_their_own_detector_and_alarm_keys(logs):
    logs.add(lines(VT_LABELS, run="a") + lines(VT_LABELS, run="b", first_ts=NOW_S - 50))
    feed = alarms.AlarmFeed()
    feed.update(read(logs).snapshot())
    assert [alarm.run for alarm in feed.alarms()] == ["b", "a"]  # newest first
    assert len({alarm.key for alarm in feed.alarms()}) == 2
    assert [alarm.run for alarm in feed.alarms(run="a")] == ["a"]


def test_acknowledged_alarms_stay_acknowledged_and_clear_the_patient(logs):
    logs.add(lines(VT_LABELS[:13]))  # VT under way: ongoing
    reader = read(logs)
    feed = alarms.AlarmFeed()
    feed.update(reader.snapshot())
    (alarm,) = feed.alarms()
    assert alarm.event.ongoing and feed.unacknowledged_patients() == {"119"}

    feed.acknowledge([alarm.key, "a/no-such-event"])
    logs.add(lines(VT_LABELS)[13:])
    feed.update(read(logs, reader).snapshot())

    (alarm,) = feed.alarms()
    assert alarm.acknowledged and not alarm.event.ongoing  # the episode ended under the same key
    assert feed.unacknowledged_patients() == set()


def test_feed_frame_lists_time_patient_kind_duration_severity(logs):
    logs.add(lines(VT_LABELS))
    feed = alarms.AlarmFeed()
    feed.update(read(logs).snapshot())
    frame = alarms.feed_frame(feed.alarms())
    assert list(frame.columns) == list(alarms.FEED_COLUMNS)
    row = frame.iloc[0]
    assert (row["patient"], row["kind"], row["severity"], bool(row["acknowledged"])) == ("119", "vt", "high", False)
    assert row["duration_s"] == pytest.approx(2.0) and str(row["raised"].tz) == "UTC"


def test_one_feed_per_reader(logs):
    first, second = read(logs), read(logs)
    assert alarms.feed_for(first) is alarms.feed_for(first)
    assert alarms.feed_for(first) is not alarms.feed_for(second)


def test_an_update_feeds_at_most_max_beats_and_the_next_ones_catch_up(logs):
    logs.add(lines(VT_LABELS))
    snapshot = read(logs).snapshot()
    bounded = alarms.AlarmFeed(max_beats=10)
    assert bounded.update(snapshot) == 10 and bounded.pending == len(VT_LABELS) - 10
    assert bounded.update(snapshot) == 10 and bounded.update(snapshot) == len(VT_LABELS) - 20
    assert bounded.pending == 0 and bounded.update(snapshot) == 0
    whole = alarms.AlarmFeed()
    whole.update(snapshot)
    assert [a.event for a in bounded.alarms()] == [a.event for a in whole.alarms()]


def test_every_kind_the_detector_reports_has_a_title():
    from hbcore.rhythm.events import KINDS

    assert set(KINDS) <= set(alarms.KIND_TITLES)
    assert alarms.kind_title("vt") == "ventricular tachycardia" and alarms.kind_title("new_kind") == "new_kind"


def test_only_the_latest_alarms_are_kept(logs, monkeypatch):
    logs.add(lines("NNNNVVNNNN" * 4))  # four V couplets
    snapshot = read(logs).snapshot()
    every = alarms.AlarmFeed()
    every.update(snapshot)
    assert [alarm.event.kind for alarm in every.alarms()] == ["v_couplet"] * 4
    monkeypatch.setattr(alarms, "MAX_ALARMS_KEPT", 2)
    bounded = alarms.AlarmFeed()
    bounded.update(snapshot)
    assert [alarm.key for alarm in bounded.alarms()] == [alarm.key for alarm in every.alarms()[:2]]
