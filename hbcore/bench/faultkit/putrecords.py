"""PutRecords failures injected on one boto3 Kinesis client (moto never fails a put by itself).

Used by the fault bench and by the replay's tests: partial failures, whole-call throttling and
answers lost after the records were stored, each the way Kinesis produces them.
"""

from __future__ import annotations

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

PUT_FAULT_EVERY = 5  # partial failure: every 5th entry of a call fails
THROTTLED = "Rate exceeded for shard shardId-000000000000"


class PutRecordsFaults:
    """Failures of PutRecords calls, made with botocore event hooks on one Kinesis client.

    Parameters
    ----------
    mode : {"partial", "throttle", "lost_response"}
        ``partial``: every ``every``-th entry is kept out of the request and answered
        ``ProvisionedThroughputExceededException``, as Kinesis answers for a hot shard;
        ``throttle``: the whole call is answered ``ProvisionedThroughputExceededException`` (HTTP 400)
        without reaching the stream; ``lost_response``: the call reaches the stream and is stored,
        then the connection breaks before the answer (the sender cannot know it was stored).
    calls : int
        How many calls fail.
    skip_calls : int, default=0
        Calls that go through before the first failure.
    every : int, default=PUT_FAULT_EVERY
    code : str, default="ProvisionedThroughputExceededException"
        The ``ErrorCode`` of a partially failed entry (a retryable one, or one the stream refuses for good).
    """

    MODES = ("partial", "throttle", "lost_response")

    def __init__(self, mode: str, calls: int, skip_calls: int = 0, every: int = PUT_FAULT_EVERY,
                 code: str = "ProvisionedThroughputExceededException"):
        if mode not in self.MODES:
            raise ValueError(f"PutRecords fault {mode!r} is not one of {', '.join(self.MODES)}")
        self.mode = mode
        self.calls = calls
        self.skip_calls = skip_calls
        self.every = every
        self.code = code
        self.seen_calls = 0
        self.injected = 0  # entries (partial) or calls (throttle, lost_response) made to fail

    def attach(self, client) -> None:
        """Register the hooks on ``client`` (a boto3 Kinesis client)."""
        events = client.meta.events
        events.register("before-parameter-build.kinesis.PutRecords", self._before_parameters)
        events.register("before-call.kinesis.PutRecords", self._before_call)
        events.register("after-call.kinesis.PutRecords", self._after_call)

    def _hit(self) -> bool:
        """Whether the call being made fails (counts calls; decided once per call)."""
        self.seen_calls += 1
        return self.skip_calls < self.seen_calls <= self.skip_calls + self.calls

    def _before_parameters(self, params: dict, context: dict, **_) -> None:
        context["hb_fault"] = self._hit()
        if self.mode == "partial" and context["hb_fault"]:
            records = params["Records"]
            held = set(range(0, len(records), self.every))
            context["hb_held"] = held
            kept = [record for index, record in enumerate(records) if index not in held]
            context["hb_unsent"] = not kept  # a call of one record fails whole, answered without reaching the stream
            if kept:
                params["Records"] = kept

    def _before_call(self, context: dict, **_):
        if not context.get("hb_fault"):
            return None
        if self.mode == "throttle":
            self.injected += 1
            error = {"Code": "ProvisionedThroughputExceededException", "Message": f"{THROTTLED} (injected fault)"}
            return AWSResponse("", 400, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        if self.mode == "partial" and context["hb_unsent"]:
            return AWSResponse("", 200, {}, None), {"FailedRecordCount": 0, "Records": [],
                                                    "ResponseMetadata": {"HTTPStatusCode": 200}}
        return None

    def _after_call(self, http_response, parsed: dict, context: dict, **_) -> None:
        if not context.get("hb_fault") or http_response.status_code >= 300:
            return
        if self.mode == "lost_response":
            self.injected += 1
            raise ConnectionClosedError(endpoint_url="kinesis PutRecords (injected fault: answer lost)")
        if self.mode == "partial":
            message = THROTTLED if self.code == "ProvisionedThroughputExceededException" else self.code
            failed = {"ErrorCode": self.code, "ErrorMessage": f"{message} (injected fault)"}
            answered = iter(parsed["Records"])
            held = context["hb_held"]
            total = len(parsed["Records"]) + len(held)
            parsed["Records"] = [dict(failed) if index in held else next(answered) for index in range(total)]
            parsed["FailedRecordCount"] = parsed.get("FailedRecordCount", 0) + len(held)
            self.injected += len(held)
