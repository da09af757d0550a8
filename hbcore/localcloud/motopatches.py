"""Fixes to moto, applied in the local cloud's process before any backend exists.

Each patch names the moto version it was written against and the problem it solves, measured on
moto 5.2.5 (the version pinned in requirements.txt). ``apply()`` is idempotent and warns when moto
is not the pinned version, because every patch reaches into moto internals; tests/localcloud/test_motopatches.py
holds one test per patch.

``KINESIS_LOCK`` is also taken by ``hbcore.localcloud.motostate``, the poller's direct access to the shards, so
puts arriving over HTTP, the poller's reads and retention trimming never interleave. ``LOGS_LOCK``
does the same for log events: appends and the retention trim (``MotoLogs.trim``).

Logs Insights is replaced whole by ``hbcore.localcloud.insights`` (the query subset evaluated as AWS
does, with AWS's ingestion delay, row cap, run time and concurrency quota). The rules in force are
:data:`LOGS_RULES`: none of them at first (no delay, queries complete at once), so a plain moto
server in the same process behaves as before; the local cloud (``hbcore.localcloud.server``) sets
AWS's, from the environment, with :func:`set_logs_rules`.
"""

from __future__ import annotations

import binascii
import functools
import json
import random
import threading
import time
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

import boto3.session
import botocore.session
import moto
from moto import backends as moto_backends
from moto.cloudwatch import models as cloudwatch_models
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import unix_time_millis, utcnow
from moto.kinesis import models as kinesis_models
from moto.kinesis.exceptions import InvalidArgumentError
from moto.logs import models as logs_models
from moto.logs import responses as logs_responses
from moto.logs.exceptions import ResourceNotFoundException
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.exceptions import ValidationError

from hbcore.localcloud import insights

PINNED_MOTO_VERSION = "5.2.5"

KINESIS_LOCK = threading.RLock()
LOGS_LOCK = threading.RLock()
# Finished Logs Insights queries whose results are kept (AWS keeps them 7 days; the reader reads each once).
QUERIES_KEPT = 20
LOGS_RULES = insights.Rules()  # what Logs Insights is held to in this process (see set_logs_rules)
_ingestion_random = random.Random()

# KinesisBackend methods that read or write shards; wrapped so that only one runs at a time.
LOCKED_KINESIS_METHODS = (
    "create_stream", "delete_stream", "describe_stream", "describe_stream_summary", "list_streams",
    "list_shards", "get_shard_iterator", "get_records", "put_record", "put_records",
    "split_shard", "merge_shards", "update_shard_count",
)

_applied = False


def last_sequence_number(shard: kinesis_models.Shard) -> int:
    """The highest sequence number ever given in ``shard`` (0 if none), even after trimming."""
    high_water = getattr(shard, "hb_last_sequence_number", 0)
    if high_water:
        return high_water
    return next(reversed(shard.records)) if shard.records else 0


def _put_record_o1(self: kinesis_models.Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
    """Patch ``Shard.put_record`` (moto 5.2.5): O(1) instead of a scan of the shard.

    moto finds the next sequence number with ``list(self.records.keys())[-1]``, a copy of the
    whole shard on every record: put_records of 100 records fell from ~260 calls/s on an empty
    shard to ~35 at 20k records and ~9 at 50k. The high-water mark also keeps sequence numbers
    increasing after retention trimming empties a shard (moto would restart at 1).
    """
    sequence_number = last_sequence_number(self) + 1
    self.records[sequence_number] = kinesis_models.Record(partition_key, data, sequence_number, explicit_hash_key)
    self.hb_last_sequence_number = sequence_number  # type: ignore[attr-defined]  # ours, on moto's Shard
    return str(sequence_number)


def _get_max_sequence_number_o1(self: kinesis_models.Shard) -> int:
    """Patch ``Shard.get_max_sequence_number`` (moto 5.2.5): O(1), survives trimming (LATEST iterators)."""
    return last_sequence_number(self)


def _get_min_sequence_number_o1(self: kinesis_models.Shard) -> int:
    """Patch ``Shard.get_min_sequence_number`` (moto 5.2.5): O(1) instead of copying every key."""
    return next(iter(self.records)) if self.records else 0


def _get_records_from_position(
    self: kinesis_models.Shard, last_sequence_id: str, limit: int | None
) -> tuple[list[kinesis_models.Record], int, int]:
    """Patch ``Shard.get_records`` (moto 5.2.5): read from the iterator's position, O(limit).

    moto walks the shard from its first record to the iterator's position on every GetRecords,
    so a reader near the end of a 100k-record shard paid for 100k dict items per call. Sequence
    numbers in a shard are consecutive integers (puts add 1, trimming removes from the front), so
    the records after ``last_sequence_id`` are looked up directly. A position before the oldest
    retained record reads from the oldest, as Kinesis does after its retention period.
    """
    last = int(last_sequence_id)
    records = self.records
    if not records:
        return [], last, 0
    newest = next(reversed(records))
    start = max(last + 1, next(iter(records)))
    stop = newest if limit is None else min(newest, start + int(limit) - 1)
    results = [records[number] for number in range(start, stop + 1) if number in records]
    if not results:
        return [], last, 0
    millis_behind_latest = int((records[newest].created_at - results[-1].created_at) * 1000)
    return results, results[-1].sequence_number, millis_behind_latest


def _decompose_shard_iterator_checked(shard_iterator: str) -> list[str]:
    """Patch ``moto.kinesis.models.decompose_shard_iterator`` (moto 5.2.5): a bad iterator is a 400.

    moto base64-decodes the iterator unchecked, so a malformed one raised ``binascii.Error`` and
    the server answered HTTP 500; AWS answers ``InvalidArgumentException``.
    """
    try:
        parts = _ORIGINAL_DECOMPOSE(shard_iterator)
        _, _, sequence = parts
        int(sequence)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, AttributeError):
        raise InvalidArgumentError(f"Invalid ShardIterator: {str(shard_iterator)[:64]!r}") from None
    return parts


_ORIGINAL_DECOMPOSE = kinesis_models.decompose_shard_iterator


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` under ``KINESIS_LOCK``.

    Patch for ``KinesisBackend`` (moto 5.2.5), whose shards are plain OrderedDicts: a GetRecords
    iterating a shard while a PutRecords appends to it failed with ``RuntimeError: OrderedDict
    mutated during iteration`` in ~20% of reads (HTTP 500 through the server).
    """

    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with KINESIS_LOCK:
            return method(*args, **kwargs)

    locked.hb_locked = True  # type: ignore[attr-defined]  # a marker on the wrapper functools.wraps made
    return locked


class SnapshotDict(dict):
    """A dict whose iteration works on a snapshot of its keys, so it can grow while being read.

    Patch for moto 5.2.5's Logs backend: ``LogsBackend.groups`` and ``LogGroup.streams`` are plain
    dicts iterated by queries (Logs Insights, filter_log_events, describe_log_streams). Creating a
    log stream while a query runs raised ``RuntimeError: dictionary changed size during iteration``
    (266 of 300 queries in a stress test). ``list(dict)`` copies in C without releasing the GIL,
    so the snapshot itself is atomic.
    """

    def __iter__(self):
        return iter(list(super().keys()))

    def keys(self):
        return list(super().keys())

    def values(self):
        return list(super().values())

    def items(self):
        return list(super().items())


def _with_snapshot_attribute(init: Callable[..., None], attribute: str) -> Callable[..., None]:
    """Wrap ``__init__`` so that ``self.<attribute>`` becomes a ``SnapshotDict``."""

    @functools.wraps(init)
    def snapshot_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        setattr(self, attribute, SnapshotDict(getattr(self, attribute)))

    return snapshot_init


def _event_time(event: logs_models.LogEvent) -> int:
    return event.timestamp


def _put_log_events_ordered(self: logs_models.LogStream, log_events: list[dict[str, Any]]) -> str:
    """Patch ``LogStream.put_log_events`` (moto 5.2.5): under ``LOGS_LOCK``, noting whether the stream stays in order,
    and when each event becomes visible to Logs Insights (``LOGS_RULES``' ingestion delay).

    moto appends with no lock ("TODO: to be thread safe this would need a lock"), and the
    retention trim replaces a stream's event list: an append racing it would be lost. A stream
    whose events are in time order (every stream the poller writes: one execution environment
    writes its events in order) is searched by bisection in queries and trimmed from the front.
    """
    with LOGS_LOCK:
        in_order = getattr(self, "hb_in_order", True) and (
            not self.events or not log_events or log_events[0]["timestamp"] >= self.events[-1].timestamp)
        token = _ORIGINAL_PUT_LOG_EVENTS(self, log_events)
        self.hb_in_order = in_order  # type: ignore[attr-defined]  # ours, on moto's LogStream
        rules = LOGS_RULES
        if rules.delay_max_s > 0 and log_events:
            for event in self.events[-len(log_events):]:
                # ours, on moto's LogEvent: when Logs Insights may see it
                event.hb_visible_ms = (  # type: ignore[attr-defined]
                    event.ingestion_time + rules.ingestion_delay_ms(_ingestion_random))
        return token


_ORIGINAL_PUT_LOG_EVENTS = logs_models.LogStream.put_log_events


def events_between(stream: logs_models.LogStream, start_ms: int | None,
                   end_ms: int | None) -> list[logs_models.LogEvent]:
    """The events of ``stream`` with ``start_ms <= timestamp <= end_ms`` (None: unbounded), oldest first.

    Reads ``stream.events`` once: the retention trim swaps the list, it never edits it in place.
    """
    events = stream.events
    if in_time_order(stream):
        low = bisect_left(events, start_ms, key=_event_time) if start_ms else 0
        high = bisect_right(events, end_ms, key=_event_time) if end_ms else len(events)
        return events[low:high]
    return [event for event in events
            if (not start_ms or event.timestamp >= start_ms) and (not end_ms or event.timestamp <= end_ms)]


class MalformedQueryException(JsonRESTError):
    """AWS's answer to a query it cannot compile (StartQuery)."""

    code = 400

    def __init__(self, message: str):
        super().__init__("MalformedQueryException", message)


class QueryLimitExceeded(JsonRESTError):
    """AWS's answer to a StartQuery beyond the concurrent-query quota."""

    code = 400

    def __init__(self, running: int):
        super().__init__("LimitExceededException",
                         f"{running} Logs Insights queries are already running: the account's limit is "
                         f"{LOGS_RULES.max_concurrent} concurrent queries")


def _visible_events(log_groups: list[logs_models.LogGroup], start_time: int, end_time: int,
                    now_ms: int) -> list[insights.Event]:
    """The events of the window that queries can see at ``now_ms`` (past their ingestion delay)."""
    start_ms = start_time * 1000 if start_time else None
    end_ms = end_time * 1000 if end_time else None
    found = []
    for group in log_groups:
        where = f"{group.account_id}:{group.name}"
        for stream in group.streams.values():
            name = stream.log_stream_name
            for event in events_between(stream, start_ms, end_ms):
                if getattr(event, "hb_visible_ms", 0) <= now_ms:
                    found.append(insights.Event(event.timestamp, event.message, name, where, str(event.event_id),
                                                event.ingestion_time))
    return found


class InsightsQuery:
    """A Logs Insights query evaluated by ``hbcore.localcloud.insights`` (in place of moto's ``LogQuery``).

    It is evaluated when started, over the events visible then, and reports ``Running`` for
    ``LOGS_RULES.run_s`` (no rows yet), then ``Complete``; ``stop_query`` makes it ``Cancelled``.
    Raises :class:`MalformedQueryException` for what AWS would not compile (or this module does not evaluate).
    """

    def __init__(self, query_id: str, start_time: int, end_time: int, query: str,
                 log_groups: list[logs_models.LogGroup]):
        try:
            parsed = insights.parse_query(query)
        except insights.MalformedQuery as error:
            raise MalformedQueryException(str(error)) from None
        rules = LOGS_RULES
        self.query_id = query_id
        self.start_time = start_time
        self.end_time = end_time
        self.query = query
        self.log_group_names = [group.name for group in log_groups]
        self.create_time = utcnow()
        self.cancelled = False
        self._done_at = time.monotonic() + rules.run_s
        now_ms = int(time.time() * 1000)
        self.result = insights.evaluate(parsed, _visible_events(log_groups, start_time, end_time, now_ms),
                                        rules.max_rows)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "Cancelled"
        return "Complete" if time.monotonic() >= self._done_at else "Running"

    @property
    def results(self) -> list[dict[str, str]]:
        """The rows as field → value (none until Complete)."""
        if self.status != "Complete":
            return []
        return [{field["field"]: field["value"] for field in row} for row in self.result.rows]

    def to_json(self, log_group_name: str) -> dict[str, Any]:
        return {"queryId": self.query_id, "queryString": self.query, "status": self.status,
                "createTime": int(unix_time_millis(self.create_time)), "logGroupName": log_group_name}

    def to_result_json(self) -> dict[str, Any]:
        status = self.status
        complete = status == "Complete"
        result = self.result
        return {
            "results": result.rows if complete else [],
            "status": status,
            "statistics": {"recordsMatched": float(result.records_matched if complete else 0),
                           "recordsScanned": float(result.records_scanned if complete else 0),
                           "bytesScanned": float(result.bytes_scanned if complete else 0)},
        }


def _start_insights_query(self: logs_models.LogsBackend, log_group_names: list[str], start_time: int,
                          end_time: int, query_string: str) -> str:
    """Patch ``LogsBackend.start_query`` (moto 5.2.5): Logs Insights as AWS evaluates it (``InsightsQuery``).

    moto evaluated only fields, sort and limit, and kept every query's results for ever (~2 MB per
    10,000-row query: a reader polling every 2 s grew the local cloud by gigabytes an hour). Now
    the finished queries beyond the last QUERIES_KEPT are dropped, and a start beyond the
    concurrent-query quota is refused with LimitExceededException, as AWS does.
    """
    for name in log_group_names:
        if name not in self.groups:
            raise ResourceNotFoundException
    running = sum(1 for query in list(self.queries.values()) if query.status in ("Scheduled", "Running"))
    if running >= LOGS_RULES.max_concurrent:
        raise QueryLimitExceeded(running)
    query_id = str(logs_models.mock_random.uuid1())
    # moto's queries dict is typed for its LogQuery; ours has the same interface (to_json, to_result_json)
    self.queries[query_id] = InsightsQuery(  # type: ignore[assignment]
        query_id, start_time, end_time, query_string, [self.groups[name] for name in log_group_names])
    finished = [key for key, query in list(self.queries.items()) if query.status not in ("Scheduled", "Running")]
    for key in finished[:max(0, len(finished) - QUERIES_KEPT)]:
        del self.queries[key]
    return query_id


def _get_query_results_or_expired(self: logs_models.LogsBackend, query_id: str) -> Any:
    """Patch ``LogsBackend.get_query_results`` (moto 5.2.5): an unknown or expired query is a 400, not a 500."""
    query = self.queries.get(query_id)
    if query is None:
        raise ResourceNotFoundException(f"Query {query_id} does not exist or its results have expired")
    return query


def _stop_query_backend(self: logs_models.LogsBackend, query_id: str) -> bool:
    """Add ``LogsBackend.stop_query`` (missing in moto 5.2.5): a running query is Cancelled; False if it had ended."""
    query = _get_query_results_or_expired(self, query_id)
    if query.status != "Running":
        return False
    query.cancelled = True
    return True


def _stop_query_response(self: logs_responses.LogsResponse) -> str:
    """The HTTP side of ``stop_query`` (see ``_stop_query_backend``)."""
    return json.dumps({"success": _stop_query_backend(self.logs_backend, self._get_param("queryId"))})


def set_logs_rules(rules: insights.Rules) -> insights.Rules:
    """Hold Logs Insights to ``rules`` in this process from now on; returns the rules replaced."""
    global LOGS_RULES
    previous, LOGS_RULES = LOGS_RULES, rules
    return previous


def _enrich_response_without_scan(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    """Patch ``BaseResponse._enrich_response`` (moto 5.2.5): no XML request-id regex when there is no ``<RequestId>``.

    moto ran ``re.sub(r"(?<=<RequestId>).*(?=</RequestId>)", ...)`` over every response body: 70 ms
    for a 10,000-row Logs Insights result (4 MB of JSON, with no ``<RequestId>`` to replace), ~5 % of
    the local cloud's CPU while the results reader polls at 2,500 beats/s.
    """
    if isinstance(body, str) and "<RequestId>" not in body:
        headers, _ = _ORIGINAL_ENRICH_RESPONSE(headers, "")
        return headers, body
    return _ORIGINAL_ENRICH_RESPONSE(headers, body)


_ORIGINAL_ENRICH_RESPONSE = BaseResponse._enrich_response


# moto's classes whose instances come by the thousand a second in the local cloud (metric data
# points: two per PutRecords call, moto's Kinesis metrics).
UNTRACKED_MODELS = (kinesis_models.Record, logs_models.LogEvent, logs_models.LogQuery,
                    cloudwatch_models.MetricDatum, cloudwatch_models.MetricAggregatedDatum)


def _new_untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
    """Patch ``BaseModel.__new__`` of UNTRACKED_MODELS (moto 5.2.5): do not keep every instance for ever.

    moto appends every model object it creates to ``<class>.instances_tracked`` (for its web
    dashboard), so each Kinesis record, log event, Logs Insights result and metric data point stayed
    in memory after retention trimming or query pruning dropped it: a 20-minute soak at 500 beats/s
    reached 1.6 GB.
    These objects no longer appear on moto's dashboard; nothing else reads that list.
    """
    return object.__new__(cls)


@functools.cache
def _moto_modules_once() -> tuple[str, ...]:
    """Patch ``moto.backends.list_of_moto_modules`` (moto 5.2.5): list moto's package folder once.

    moto's server listed its package directory (``listdir`` + ~150 ``isdir`` calls) on every
    request to find the service of the Host header; the folder never changes while it runs.
    """
    return tuple(_ORIGINAL_LIST_OF_MOTO_MODULES())


_ORIGINAL_LIST_OF_MOTO_MODULES = moto_backends.list_of_moto_modules


@functools.cache
def _region_session() -> botocore.session.Session:
    return botocore.session.get_session()


def _available_regions_shared(self: boto3.session.Session, service_name: str, partition_name: str = "aws",
                              allow_non_regional: bool = False) -> list[str]:
    """Patch ``boto3.session.Session.get_available_regions`` (moto 5.2.5): one botocore session for every lookup.

    The class body of moto's EC2 ``RegionsAndZonesBackend``, which CloudFormation's backend imports,
    makes three new sessions, one per partition, and each parses EC2's service model again
    (0.1-0.24 s apiece), on the first stack's path: with one session moto's backends are made in
    0.76 s instead of 1.02 s (medians of three, headless). The regions come from botocore's bundled
    data, the same whatever session reads them.
    """
    return _region_session().get_available_regions(service_name, partition_name, allow_non_regional)


def in_time_order(stream: logs_models.LogStream) -> bool:
    """Whether every append to ``stream`` so far came after its latest event (see ``_put_log_events_ordered``)."""
    return getattr(stream, "hb_in_order", False)


def _update_endpoint_backend(
    self: sagemaker_models.SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
) -> sagemaker_models.FakeEndpoint:
    """Add ``SageMakerModelBackend.update_endpoint`` (missing in moto 5.2.5).

    A redeploy on AWS is ``create_endpoint_config`` + ``update_endpoint``; moto answered the
    second with "not yet implemented", so the same deploy code could not run locally. The endpoint
    moves to the new configuration at once and stays ``InService`` (moto has no Updating phase).
    """
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = sagemaker_models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.data_capture_config = config["DataCaptureConfig"]
    endpoint.last_modified_time = sagemaker_models.utcnow()
    endpoint.endpoint_status = "InService"
    return endpoint


def _update_endpoint_response(self: sagemaker_responses.SageMakerResponse) -> ActionResult:
    """The HTTP side of ``update_endpoint`` (see ``_update_endpoint_backend``)."""
    endpoint = _update_endpoint_backend(
        self.sagemaker_backend,
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def apply() -> None:
    """Apply every patch once per process (call before any moto backend is created)."""
    global _applied
    if _applied:
        return
    if moto.__version__ != PINNED_MOTO_VERSION:
        warnings.warn(
            f"hbcore.localcloud.motopatches was written for moto {PINNED_MOTO_VERSION}, found {moto.__version__}: "
            "run tests/localcloud/test_motopatches.py",
            stacklevel=2,
        )
    # Replacing moto's methods is the point of this module: each assignment below is checked
    # against moto's signature; only mypy's refusal to assign to a method at all is ignored.
    shard = kinesis_models.Shard
    shard.put_record = _put_record_o1  # type: ignore[method-assign]
    shard.get_max_sequence_number = _get_max_sequence_number_o1  # type: ignore[method-assign]
    shard.get_min_sequence_number = _get_min_sequence_number_o1  # type: ignore[method-assign]
    shard.get_records = _get_records_from_position  # type: ignore[method-assign]
    kinesis_models.decompose_shard_iterator = _decompose_shard_iterator_checked
    for name in LOCKED_KINESIS_METHODS:
        setattr(kinesis_models.KinesisBackend, name, _locked(getattr(kinesis_models.KinesisBackend, name)))
    logs_models.LogsBackend.__init__ = _with_snapshot_attribute(  # type: ignore[method-assign]
        logs_models.LogsBackend.__init__, "groups")
    logs_models.LogGroup.__init__ = _with_snapshot_attribute(  # type: ignore[method-assign]
        logs_models.LogGroup.__init__, "streams")
    BaseResponse._enrich_response = staticmethod(_enrich_response_without_scan)  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = _moto_modules_once
    boto3.session.Session.get_available_regions = _available_regions_shared
    for model in UNTRACKED_MODELS:
        model.__new__ = staticmethod(_new_untracked)  # type: ignore[method-assign]
        # moto's InstanceTrackerMeta gives every model class this list when it creates the class,
        # untyped (moto itself ignores the assignment), so mypy does not know it.
        model.instances_tracked.clear()  # type: ignore[union-attr]
    logs_models.LogStream.put_log_events = _put_log_events_ordered  # type: ignore[method-assign]
    logs_models.LogsBackend.start_query = _start_insights_query  # type: ignore[method-assign]
    logs_models.LogsBackend.get_query_results = _get_query_results_or_expired  # type: ignore[method-assign]
    # Additions, not replacements: moto 5.2.5 has no stop_query to type them.
    logs_models.LogsBackend.stop_query = _stop_query_backend  # type: ignore[attr-defined]
    logs_responses.LogsResponse.stop_query = _stop_query_response  # type: ignore[attr-defined]
    # Additions, not replacements: moto 5.2.5 has no update_endpoint to type them.
    sagemaker_models.SageMakerModelBackend.update_endpoint = _update_endpoint_backend  # type: ignore[attr-defined]
    sagemaker_responses.SageMakerResponse.update_endpoint = _update_endpoint_response  # type: ignore[attr-defined]
    _applied = True
