"""The local cloud's Logs Insights (hbcore.localcloud.insights through motopatches), over boto3 as on AWS:
each command of the subset evaluated, what is outside it failing the query, the row cap, the
ingestion delay, the concurrent-query quota and stop_query."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from kit.cloudkit import unique

from hbcore.localcloud import insights, motopatches

T0_S = 0  # ten minutes before this module's first test (t0_s): inside the local cloud's 15-minute log retention
STREAMS = ("2026/12/02/[$LATEST]aaa", "2026/12/02/[$LATEST]bbb")


@pytest.fixture(scope="module", autouse=True)
def t0_s() -> int:
    """Set T0_S when the module's tests start, not when it is collected: a suite running longer than the log
    retention after collection would otherwise see the trimmer drop these events mid-test."""
    global T0_S
    T0_S = int(time.time()) - 600
    return T0_S


@pytest.fixture
def rules(cloud):
    """Set the local cloud's Logs Insights rules for one test (default: none, queries complete at once)."""
    previous = motopatches.LOGS_RULES

    def use(**values) -> insights.Rules:
        motopatches.set_logs_rules(insights.Rules(**values))
        return motopatches.LOGS_RULES

    use()
    yield use
    motopatches.set_logs_rules(previous)


@pytest.fixture
def group(clients, rules) -> str:
    """A log group of two streams: 12 lines at T0_S + k/4 s, kind summary for k % 3 == 0 else beats."""
    logs = clients("logs")
    name = unique("/aws/lambda/insights")
    logs.create_log_group(logGroupName=name)
    for index, stream in enumerate(STREAMS):
        logs.create_log_stream(logGroupName=name, logStreamName=stream)
        events = [{"timestamp": (T0_S * 1000) + k * 250,
                   "message": json.dumps({"type": "summary" if k % 3 == 0 else "beats", "inv": k,
                                          "nested": {"depth": k % 2}, "tags": ["x", "y"]})}
                  for k in range(12) if k % 2 == index]
        logs.put_log_events(logGroupName=name, logStreamName=stream, logEvents=events)
    return name


def run(clients, group: str, query: str, start_s: int | None = None, end_s: int | None = None) -> dict:
    """Run ``query`` over [start_s, end_s] (default: T0_S - 1 to T0_S + 10) and wait for its result."""
    start_s = T0_S - 1 if start_s is None else start_s
    end_s = T0_S + 10 if end_s is None else end_s
    logs = clients("logs")
    query_id = logs.start_query(logGroupNames=[group], startTime=start_s, endTime=end_s, queryString=query)["queryId"]
    deadline = time.monotonic() + 10
    while (response := logs.get_query_results(queryId=query_id))["status"] != "Complete":
        assert time.monotonic() < deadline, response["status"]
        time.sleep(0.05)
    return response


def rows(response: dict) -> list[dict[str, str]]:
    return [{field["field"]: field["value"] for field in row} for row in response["results"]]


def test_fields_returns_the_named_fields_discovered_in_json(clients, group):
    found = rows(run(clients, group, "fields inv, nested.depth, tags.1, @logStream | sort inv asc | limit 2"))

    assert [{key: row[key] for key in ("inv", "nested.depth", "tags.1", "@logStream")} for row in found] == [
        {"inv": "0", "nested.depth": "0", "tags.1": "y", "@logStream": STREAMS[0]},
        {"inv": "1", "nested.depth": "1", "tags.1": "y", "@logStream": STREAMS[1]}]
    assert all(set(row) == {"inv", "nested.depth", "tags.1", "@logStream", "@ptr"} for row in found)


def test_timestamps_come_back_as_aws_writes_them(clients, group):
    (row,) = rows(run(clients, group, "fields @timestamp | sort @timestamp asc | limit 1"))

    assert row["@timestamp"] == time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(T0_S))


def test_filter_on_a_json_field_keeps_the_equal_events_only(clients, group):
    response = run(clients, group, 'fields inv | filter type = "summary" | sort inv asc')

    assert [row["inv"] for row in rows(response)] == ["0", "3", "6", "9"]
    assert response["statistics"]["recordsMatched"] == 4


def test_filter_on_the_log_stream_and_a_number_joined_by_and_or(clients, group):
    found = rows(run(clients, group, f'filter @logStream = "{STREAMS[1]}" and type != "summary" or inv = 0 '
                                     "| fields inv | sort inv asc"))

    assert [row["inv"] for row in found] == ["0", "1", "5", "7", "11"]


def test_stats_count_by_a_field(clients, group):
    found = rows(run(clients, group, "stats count(*) as events by @logStream | sort @logStream asc"))

    assert found == [{"@logStream": STREAMS[0], "events": "6"}, {"@logStream": STREAMS[1], "events": "6"}]


def test_stats_count_by_bin(clients, group):
    found = rows(run(clients, group, 'filter type = "beats" | stats count(*) by bin(1s) | sort bin(1s) asc'))

    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0_S))
    nxt = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0_S + 1))
    assert found[:2] == [{"bin(1s)": f"{start}.000", "count(*)": "2"}, {"bin(1s)": f"{nxt}.000", "count(*)": "3"}]
    assert sum(int(row["count(*)"]) for row in found) == 8


def test_sort_descending_and_limit(clients, group):
    response = run(clients, group, "fields inv | sort inv desc | limit 3")

    assert [row["inv"] for row in rows(response)] == ["11", "10", "9"]
    assert response["statistics"]["recordsMatched"] == 12  # every event matched; the limit cut the rows


@pytest.mark.parametrize(("query", "reason"), [
    ("fields @message | parse @message '\"inv\":*,' as n", "parse"),
    ("fields @message | dedup inv", "dedup"),
    ("fields @message | nonsense 3", "not a Logs Insights command"),
    ("filter inv > 3", "unexpected symbol"),
    ("stats avg(inv)", "count"),
    ("fields @message | limit 20000", "limit"),
])
def test_a_query_outside_the_subset_fails_as_aws_fails_a_query_it_cannot_compile(clients, group, query, reason):
    with pytest.raises(ClientError) as raised:
        clients("logs").start_query(logGroupNames=[group], startTime=T0_S, endTime=T0_S + 10, queryString=query)

    assert raised.value.response["Error"]["Code"] == "MalformedQueryException"
    assert reason in raised.value.response["Error"]["Message"]


def test_a_result_holds_at_most_the_row_cap_and_says_how_many_matched(clients, group, rules):
    rules(max_rows=5)

    response = run(clients, group, "fields @message | sort @timestamp asc | limit 10000")

    assert len(response["results"]) == 5
    assert response["statistics"]["recordsMatched"] == 12


def test_an_event_is_visible_to_queries_only_after_its_ingestion_delay(clients, group, rules):
    rules(delay_min_s=1.5, delay_max_s=1.5)
    logs = clients("logs")
    logs.put_log_events(logGroupName=group, logStreamName=STREAMS[0],
                        logEvents=[{"timestamp": T0_S * 1000 + 5000, "message": '{"type": "late"}'}])
    query = 'filter type = "late" | fields @message'

    assert rows(run(clients, group, query)) == []
    time.sleep(1.6)
    assert len(rows(run(clients, group, query))) == 1


def test_rules_come_from_the_environment():
    rules = insights.Rules.from_environment({"HB_LOGS_INGESTION_DELAY_S": "12,20", "HB_LOGS_QUERY_MAX_ROWS": "1000"})

    assert (rules.delay_min_s, rules.delay_max_s, rules.delay_tail_s, rules.max_rows) == (12.0, 20.0, 0.0, 1000)
    assert insights.Rules.from_environment({}).delay_max_s == insights.DEFAULT_INGESTION_DELAY_S[1]


@pytest.mark.parametrize("setting", [{"HB_LOGS_INGESTION_DELAY_S": "5"}, {"HB_LOGS_INGESTION_DELAY_S": "5,1"},
                                     {"HB_LOGS_QUERY_MAX_ROWS": "0"}, {"HB_LOGS_QUERY_MAX_ROWS": "many"}])
def test_a_bad_rule_setting_is_refused_naming_the_variable(setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        insights.Rules.from_environment(setting)


def test_the_concurrent_query_quota_refuses_the_query_beyond_it(clients, group, rules):
    rules(run_s=30.0, max_concurrent=insights.AWS_MAX_CONCURRENT_QUERIES)
    logs = clients("logs")
    started = [logs.start_query(logGroupNames=[group], startTime=T0_S, endTime=T0_S + 10,
                                queryString="fields @message")["queryId"]
               for _ in range(insights.AWS_MAX_CONCURRENT_QUERIES)]
    try:
        assert logs.get_query_results(queryId=started[0])["status"] == "Running"
        with pytest.raises(ClientError) as raised:
            logs.start_query(logGroupNames=[group], startTime=T0_S, endTime=T0_S + 10, queryString="fields @message")
        assert raised.value.response["Error"]["Code"] == "LimitExceededException"

        assert logs.stop_query(queryId=started[0])["success"] is True
        assert logs.get_query_results(queryId=started[0])["status"] == "Cancelled"
        started.append(logs.start_query(logGroupNames=[group], startTime=T0_S, endTime=T0_S + 10,
                                        queryString="fields @message")["queryId"])
    finally:
        for query_id in started:
            logs.stop_query(queryId=query_id)
