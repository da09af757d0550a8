"""Lambda handlers for the poller tests (imported by the poller from tests/, as from a code root).

Behaviour comes from the function's environment variables, so each test configures its own
function; counters are module state, which the poller keeps per execution environment.
"""

import base64
import json
import os
import time

calls = {"count": 0}


def _seqs(event):
    return [record["kinesis"]["sequenceNumber"] for record in event["Records"]]


def echo(event, context):
    """Print the whole event on one line and the context's fields on another."""
    print(json.dumps(event))
    print(json.dumps({
        "function_name": context.function_name, "aws_request_id": context.aws_request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb, "remaining_ms": context.get_remaining_time_in_millis(),
        "log_group_name": context.log_group_name, "log_stream_name": context.log_stream_name,
        "invoked_function_arn": context.invoked_function_arn, "greeting": os.environ.get("GREETING"),
    }))


def batches(event, context):
    """Print the batch's sequence numbers and decoded payloads; sleep SLEEP_S if set."""
    time.sleep(float(os.environ.get("SLEEP_S", "0")))
    print(json.dumps({"request": context.aws_request_id, "seqs": _seqs(event),
                      "data": [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]}))


def report_failure(event, context):
    """Report FAIL_SEQ (if in the batch) as failed for the first FAIL_TIMES invocations."""
    calls["count"] += 1
    seqs = _seqs(event)
    print(json.dumps({"seqs": seqs}))
    if os.environ["FAIL_SEQ"] in seqs and calls["count"] <= int(os.environ["FAIL_TIMES"]):
        return {"batchItemFailures": [{"itemIdentifier": os.environ["FAIL_SEQ"]}]}
    return {"batchItemFailures": []}


def raise_first(event, context):
    """Raise on the first RAISE_TIMES invocations."""
    calls["count"] += 1
    print(json.dumps({"seqs": _seqs(event)}))
    if calls["count"] <= int(os.environ["RAISE_TIMES"]):
        raise RuntimeError(f"boom {calls['count']}")


def poison(event, context):
    """Raise whenever the batch holds POISON_SEQ."""
    seqs = _seqs(event)
    print(json.dumps({"seqs": seqs}))
    if os.environ["POISON_SEQ"] in seqs:
        raise ValueError(f"poisoned record {os.environ['POISON_SEQ']}")


def interleaved(event, context):
    """Print the request id several times with pauses, so concurrent shards interleave."""
    for _ in range(5):
        print(context.aws_request_id)
        time.sleep(0.01)


def print_then_sleep(event, context):
    """Print a line, then sleep SLEEP_S before returning."""
    print(json.dumps({"seqs": _seqs(event)}), flush=True)
    time.sleep(float(os.environ["SLEEP_S"]))
