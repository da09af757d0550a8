"""lambda_function.lambda_handler: Kinesis events from tests/kit/events/ against a loopback SageMaker runtime.

The runtime here is a tiny HTTP server that answers as the inference contract says (or fails as
SageMaker does); the handler reaches it through plain boto3 and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hbcore.contracts import log_lines

REPO = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).resolve().parents[1] / "kit" / "events"
CLASS_NAMES = ("N", "S", "V", "F", "Q")


@dataclass
class LambdaContext:
    """The part of Lambda's context object a handler may read."""

    function_name: str = "hb-classifier"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:hb-classifier"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class FakeRuntime(ThreadingHTTPServer):
    """``POST /endpoints/{name}/invocations`` on 127.0.0.1: predicts class ``int(beat[0] * 5)``.

    A beat whose first value is above 1 makes the "container" refuse the request (a ModelError whose
    original status is ``refusal_status``, with the model's message), as the real inference module
    refuses values outside [0, 1]; the SageMaker scikit-learn container answers 500 for it.
    ``broken`` (a message) makes it refuse every request so, as a model that cannot load does.

    ``failures`` holds what the next calls do (``"ok"``, ``"internal"``, ``"throttle"``,
    ``"model_error"``, ``"refuse500"``, ``"slow"``, ``"garbage"``), one entry per call; once empty, calls succeed.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeRuntimeHandler)
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self.failures: list[str] = []
        self.refusal_status = 400
        self.broken: str | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _FakeRuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, error_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if error_type:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/com.amazonaws.sagemaker/")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        server: FakeRuntime = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with server.lock:
            server.bodies.append(body)
            server.content_types.append(self.headers.get("Content-Type", ""))
            mode = server.failures.pop(0) if server.failures else "ok"
        errors = {
            "internal": (500, "InternalFailure"),
            "throttle": (400, "ThrottlingException"),
            "model_error": (424, "ModelError"),
            "not_found": (400, "ValidationError"),
        }
        if mode == "refuse500":  # a passing 500 of the container, with its message
            self._reply(424, json.dumps({"message": "Received server error (500)", "OriginalStatusCode": 500,
                                         "OriginalMessage": "the model container failed"}).encode(), "ModelError")
            return
        if mode in errors:
            status, code = errors[mode]
            self._reply(status, json.dumps({"message": f"injected {code}"}).encode(), code)
            return
        if mode == "slow":
            time.sleep(2.0)
        if mode == "garbage":
            self._reply(200, b'{"predictions": "not a list"}')
            return
        instances = json.loads(body)["instances"]
        refused = [index for index, instance in enumerate(instances) if instance["beat"][0] > 1]
        if refused or server.broken:
            message = server.broken or f"instance {refused[0]}: value 1 is outside [0, 1]"
            status = server.refusal_status
            self._reply(424, json.dumps({"message": f"Received error ({status}) from primary with message {message}",
                                         "OriginalStatusCode": status, "OriginalMessage": message}).encode(),
                        "ModelError")
            return
        predictions = []
        for instance in instances:
            index = min(4, int(instance["beat"][0] * 5))
            probabilities = [0.1] * 5
            probabilities[index] = 0.6
            predictions.append({"class_index": index, "class_name": CLASS_NAMES[index], "probabilities": probabilities})
        self._reply(200, json.dumps({"model_version": "test-v1", "predictions": predictions}).encode())


@pytest.fixture
def runtime():
    server = FakeRuntime()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def load_handler(monkeypatch, runtime_url: str, **env: str):
    """A fresh ``lambda_function`` module, imported with this test's environment (as Lambda does)."""
    monkeypatch.setenv("ENDPOINT_NAME", "hb-endpoint")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_url)
    # Generous: building 500 predictions in the fake runtime took over 1 s on a loaded CI box.
    monkeypatch.setenv("ENDPOINT_TIMEOUT_S", "10")
    monkeypatch.setenv("ENDPOINT_MAX_ATTEMPTS", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"lambda_function_{uuid.uuid4().hex}", REPO / "lambda_function.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(monkeypatch, runtime):
    return load_handler(monkeypatch, runtime.url)


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def with_payloads(payloads: list[bytes], first_seq: int = 1000) -> dict:
    """An event shaped as tests/kit/events/kinesis_beats.json carrying ``payloads``, in sequence order."""
    template = load_event("kinesis_beats.json")["Records"][0]
    records = []
    for offset, payload in enumerate(payloads):
        record = copy.deepcopy(template)
        seq = str(first_seq + offset)
        record["kinesis"]["sequenceNumber"] = seq
        record["kinesis"]["data"] = base64.b64encode(payload).decode()
        record["eventID"] = f"shardId-000000000000:{seq}"
        records.append(record)
    return {"Records": records}


def beat_payload(sample: int, first_value: float = 0.05) -> bytes:
    """A stream record as the replay writes it (one beat of 187 values with 4 decimals)."""
    beat = [first_value] + [round(0.1 + (index * 7919 % 8000) / 10000, 4) for index in range(1, 187)]
    return json.dumps({"id": f"run9:100:{sample}", "run": "run9", "record": "100", "sample": sample,
                       "t": sample / 360, "beat": beat, "label": 0, "rr_prev_s": 0.8, "rr_next_s": 0.8,
                       "rr_local_s": 0.8, "sent_at": time.time()}, separators=(",", ":")).encode()


def invoke(handler, event: dict, capsys) -> tuple[dict, list[dict]]:
    """Run the handler; return its response and the JSON lines it printed."""
    response = handler.lambda_handler(event, LambdaContext())
    return response, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def of_type(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line.get("type") == kind]


def predictions_of(lines: list[dict]) -> list[dict]:
    """Every classified beat, as the fields of a prediction line: the prediction lines and the rows of
    the beats lines (read through the contract, so ``pred_name`` and ``seq`` are None for those)."""
    beats = []
    for line in lines:
        if line.get("type") == "prediction":
            beats.append(line)
        elif line.get("type") == "beats":
            decoded = log_lines.decode_line(json.dumps(line))
            assert decoded is not None, line
            beats.extend({"type": "prediction", **row._asdict()} for row in log_lines.beats_predictions(decoded))
    return beats


def test_json_records_give_one_beats_line_holding_every_beat(handler, capsys):
    response, lines = invoke(handler, load_event("kinesis_beats.json"), capsys)

    predictions = {line["id"]: line for line in predictions_of(lines)}
    assert response == {"batchItemFailures": []}
    assert len(of_type(lines, "beats")) == 1
    assert predictions["run1:100:662"] | {"latency_ms": None, "endpoint_ms": None} == {
        "type": "prediction", "id": "run1:100:662", "run": "run1", "record": "100", "sample": 662,
        "t": 1.8389, "label": 2, "pred": 2, "pred_name": None, "prob": 0.6, "model_version": "test-v1",
        "latency_ms": None, "endpoint_ms": None, "rr_local_s": 0.8, "seq": None, "shard": "shardId-000000000000",
        "inv": 1,
    }
    assert predictions["run1:201:1204"]["pred"] == CLASS_NAMES.index("S")
    assert predictions["run1:201:1204"]["rr_local_s"] == 0.65


def test_every_line_of_an_invocation_carries_its_number_and_the_summary_counts_them(handler, capsys):
    invoke(handler, load_event("kinesis_beats.json"), capsys)
    _, lines = invoke(handler, with_payloads([beat_payload(1), b"not a beat"]), capsys)

    (summary,) = of_type(lines, "summary")
    assert {line.get("inv") for line in lines} == {2}
    assert summary["lines"] == len(lines) - 1 == 2  # a beats line and a rejected line


def test_a_rejected_record_keeps_its_bytes_to_be_replayed(handler, capsys):
    _, lines = invoke(handler, with_payloads([b"not a beat", beat_payload(2)]), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert base64.b64decode(rejected["data"]) == b"not a beat"


def test_a_refused_beat_keeps_its_bytes_to_be_replayed(handler, runtime, capsys):
    runtime.refusal_status = 500  # the FakeRuntime refuses instances whose first value is above 1
    payloads = [beat_payload(sample, first_value=2.0 if sample == 1 else 0.05) for sample in range(3)]

    _, lines = invoke(handler, with_payloads(payloads), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert base64.b64decode(rejected["data"]) == payloads[1]


def test_csv_lines_are_predicted_with_the_label_when_given(handler, capsys):
    _, lines = invoke(handler, load_event("kinesis_beats.json"), capsys)

    predictions = {line["seq"]: line for line in predictions_of(lines)}
    assert {key: predictions["104"][key] for key in ("id", "record", "label", "pred")} == {
        "id": "shardId-000000000000:104", "record": "kaggle", "label": None, "pred": 4}
    assert {key: predictions["105"][key] for key in ("id", "label", "pred")} == {
        "id": "shardId-000000000000:105", "label": 3, "pred": 3}


def test_csv_lines_with_plain_decimals_keep_their_values(handler, runtime, capsys):
    values = [round(0.25 + index / 1000, 4) for index in range(187)]
    line = ",".join(map(str, values)).encode()

    _, lines = invoke(handler, with_payloads([line, line + b",2", line + b",2.0\r\n"]), capsys)

    assert [line["label"] for line in predictions_of(lines)] == [None, 2, 2]
    assert [instance["beat"] for instance in json.loads(runtime.bodies[0])["instances"]] == [values] * 3


def test_summary_line_counts_the_batch(handler, capsys):
    _, lines = invoke(handler, load_event("kinesis_beats.json"), capsys)

    (summary,) = of_type(lines, "summary")
    assert {key: summary[key] for key in ("records", "predicted", "rejected", "failed", "endpoint_calls", "error")} == {
        "records": 5, "predicted": 5, "rejected": 0, "failed": 0, "endpoint_calls": 1, "error": None}


def test_request_follows_the_inference_contract(handler, runtime, capsys):
    invoke(handler, load_event("kinesis_beats.json"), capsys)

    body = json.loads(runtime.bodies[0])
    assert runtime.content_types == ["application/json"]
    assert len(body["instances"]) == 5
    assert body["instances"][2] == {"beat": body["instances"][2]["beat"], "rr_prev_s": 0.65, "rr_next_s": 0.65,
                                    "rr_local_s": 0.65}
    assert len(body["instances"][2]["beat"]) == 187
    assert set(body["instances"][3]) == {"beat"}


def test_a_batch_of_500_records_is_one_endpoint_call(handler, runtime, capsys):
    response, lines = invoke(handler, with_payloads([beat_payload(sample) for sample in range(500)]), capsys)

    assert len(runtime.bodies) == 1
    assert len(json.loads(runtime.bodies[0])["instances"]) == 500
    assert len(predictions_of(lines)) == 500
    assert response == {"batchItemFailures": []}


def test_a_batch_over_the_payload_limit_is_split_into_calls_under_it(monkeypatch, runtime, capsys):
    # Posting ~6 MB can take over the fixture's 10 s timeout on a loaded 2-core machine.
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_TIMEOUT_S="30")
    payloads = [beat_payload(sample) for sample in range(6000)]  # ~7 MB of instances

    response, lines = invoke(handler, with_payloads(payloads), capsys)

    sizes = [len(body) for body in runtime.bodies]
    assert len(sizes) == 2
    assert max(sizes) <= 6_000_000
    assert sum(len(json.loads(body)["instances"]) for body in runtime.bodies) == 6000
    assert len({line["id"] for line in predictions_of(lines)}) == 6000
    assert response == {"batchItemFailures": []}


MALFORMED = {
    "empty": "empty record",
    "whitespace": "empty record",
    "not-utf8": "not UTF-8",
    "neither": "neither a JSON object nor a CSV line of numbers",
    "values-0": "'beat' has 0 values, expected 187",
    "values-186": "186 values, expected 187 (or 188 with a label)",
    "values-188-bad-label": "label 7.0 is not one of 0..4",
    "values-10000": "10,000 values, expected 187",
    "nan": "'beat'[186] is NaN or infinite",
    "infinity": "value 101 is 'inf', expected a finite number",
    "string-in-beat": "'beat'[10] is str, expected a finite number",
    "nested-junk": "'beat'[0] is list, expected a finite number",
    "missing-beat": "missing 'beat'",
    "json-array": "JSON list, expected an object",
    "bad-label": "label 9 is not one of 0..4",
    "bad-id": "'id' is dict, expected a string",
    "not-base64": "data is not base64",
}


@pytest.fixture
def malformed_run(handler, capsys):
    return invoke(handler, load_event("kinesis_malformed.json"), capsys)


def rejected_lines_of(lines: list[dict], kind: str) -> list[dict]:
    """The rejected lines of the record of tests/kit/events/kinesis_malformed.json with partition key ``kind``."""
    (seq,) = [record["kinesis"]["sequenceNumber"] for record in load_event("kinesis_malformed.json")["Records"]
              if record["kinesis"]["partitionKey"] == kind]
    return [line for line in of_type(lines, "rejected") if line["seq"] == seq]


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_record_gets_one_rejected_line_with_its_reason(malformed_run, kind):
    _, lines = malformed_run

    rejected = rejected_lines_of(lines, kind)
    assert len(rejected) == 1
    assert MALFORMED[kind] in rejected[0]["reason"]


def test_malformed_records_are_not_retried_and_the_good_ones_go_through(malformed_run):
    response, lines = malformed_run

    assert response == {"batchItemFailures": []}
    assert len(of_type(lines, "rejected")) == len(MALFORMED)
    assert len(predictions_of(lines)) == len(MALFORMED) + 1


def test_a_rejected_line_keeps_the_id_when_it_could_be_read(malformed_run):
    _, lines = malformed_run

    (missing,) = rejected_lines_of(lines, "missing-beat")
    assert (missing["id"], missing["record"]) == ("run2:100:9004", "100")


def test_a_record_of_one_mebibyte_is_rejected_by_size(handler, capsys):
    huge = b'{"id":"run9:100:1","beat":[' + b"0.5," * (1024 * 1024 // 4) + b"0.5]}"

    response, lines = invoke(handler, with_payloads([beat_payload(1), huge, beat_payload(2)]), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert "over the 65,536-byte limit" in rejected["reason"]
    assert [line["sample"] for line in predictions_of(lines)] == [1, 2]
    assert response == {"batchItemFailures": []}


def test_an_rr_the_endpoint_would_refuse_is_rejected_alone(handler, runtime, capsys):
    """One such record used to fail its whole batch at the endpoint until the batch was given up."""
    bad = json.loads(beat_payload(2))
    bad["rr_next_s"] = 800.0
    payloads = [beat_payload(1), json.dumps(bad).encode(), beat_payload(3)]

    response, lines = invoke(handler, with_payloads(payloads), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert (rejected["id"], rejected["reason"]) == ("run9:100:2", "'rr_next_s' is 800.0, expected seconds in (0, 200]")
    assert [line["sample"] for line in predictions_of(lines)] == [1, 3]
    assert response == {"batchItemFailures": []}


def test_the_handler_and_the_endpoint_share_the_rr_limit(handler):
    from hbcore.model import inference

    assert handler.RR_MAX_S == inference.RR_MAX_S


def test_beats_the_model_refuses_are_found_by_halving_and_rejected_alone(handler, runtime, capsys):
    first_values = [0.05, 0.25, 3.0, 0.45, 0.65, 0.05, 7.0, 0.25]
    response, lines = invoke(handler, with_payloads([beat_payload(i, v) for i, v in enumerate(first_values)]), capsys)

    assert response == {"batchItemFailures": []}
    assert [line["sample"] for line in predictions_of(lines)] == [0, 1, 3, 4, 5, 7]
    rejected = of_type(lines, "rejected")
    assert [(line["id"], line["seq"]) for line in rejected] == [("run9:100:2", "1002"), ("run9:100:6", "1006")]
    assert rejected[0]["reason"] == "the endpoint refused this beat: instance 0: value 1 is outside [0, 1]"
    (summary,) = of_type(lines, "summary")
    assert (summary["predicted"], summary["rejected"], summary["failed"]) == (6, 2, 0)
    assert len(runtime.bodies) == 11  # 8 beats, 2 refused: halves (in order) down to each refused one


def test_a_model_error_of_the_server_kind_is_retried_not_isolated(handler, runtime, capsys):
    runtime.failures = ["model_error"]  # no OriginalStatusCode: not the container refusing its input
    response, lines = invoke(handler, with_payloads([beat_payload(i) for i in range(4)]), capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": str(seq)} for seq in range(1000, 1004)]}
    assert of_type(lines, "rejected") == [] and len(runtime.bodies) == 1


def test_a_duplicate_id_in_a_batch_is_rejected_after_its_first_prediction(handler, capsys):
    _, lines = invoke(handler, with_payloads([beat_payload(7), beat_payload(8), beat_payload(7)]), capsys)

    assert [line["id"] for line in predictions_of(lines)] == ["run9:100:7", "run9:100:8"]
    (rejected,) = of_type(lines, "rejected")
    assert rejected["id"] == "run9:100:7"
    assert rejected["reason"] == "duplicate id in this batch (first at sequence number 1000)"


@pytest.mark.parametrize("failure", ["internal", "throttle", "model_error", "not_found", "slow", "garbage"])
def test_an_endpoint_failure_reports_every_good_record_for_retry(monkeypatch, runtime, capsys, failure):
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_TIMEOUT_S="1")  # under the "slow" call's 2 s
    runtime.failures.append(failure)

    response, lines = invoke(handler, load_event("kinesis_malformed.json"), capsys)

    good = list(of_type(lines, "rejected"))
    expected = [record["kinesis"]["sequenceNumber"] for record in load_event("kinesis_malformed.json")["Records"]
                if record["kinesis"]["partitionKey"] == "100"]
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == expected
    assert predictions_of(lines) == []
    assert len(good) == len(MALFORMED)
    assert of_type(lines, "summary")[0]["failed"] == len(expected)


def test_an_endpoint_failure_is_named_in_the_summary(handler, runtime, capsys):
    runtime.failures.append("model_error")

    _, lines = invoke(handler, load_event("kinesis_beats.json"), capsys)

    assert of_type(lines, "summary")[0]["error"] == "ModelError: injected ModelError"


def test_a_refused_connection_reports_every_record_for_retry(monkeypatch, capsys):
    closed = FakeRuntime()
    url = closed.url
    closed.server_close()  # nothing listens on this port any more
    handler = load_handler(monkeypatch, url)

    response, lines = invoke(handler, load_event("kinesis_beats.json"), capsys)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["101", "102", "103", "104", "105"]
    assert "EndpointConnectionError" in of_type(lines, "summary")[0]["error"]


def test_a_failure_in_a_later_call_keeps_the_earlier_predictions_and_retries_the_rest(monkeypatch, runtime, capsys):
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_MAX_REQUEST_BYTES="20000")  # ~15 beats per call
    event = with_payloads([beat_payload(sample) for sample in range(40)])
    runtime.failures.extend(["ok", "internal"])

    response, lines = invoke(handler, event, capsys)

    first = [line["sample"] for line in predictions_of(lines)]
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert first == list(range(len(first))) and 0 < len(first) < 40
    assert failed == [str(1000 + sample) for sample in range(len(first), 40)]


def test_retrying_from_the_lowest_failed_record_logs_each_beat_once(monkeypatch, runtime, capsys):
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_MAX_REQUEST_BYTES="20000")
    event = with_payloads([beat_payload(sample) for sample in range(40)])
    runtime.failures.extend(["ok", "internal"])
    response, first_lines = invoke(handler, event, capsys)
    lowest = min(int(item["itemIdentifier"]) for item in response["batchItemFailures"])
    retry = {"Records": [record for record in event["Records"] if int(record["kinesis"]["sequenceNumber"]) >= lowest]}

    response, retry_lines = invoke(handler, retry, capsys)

    ids = [line["id"] for line in predictions_of(first_lines + retry_lines)]
    assert sorted(ids) == sorted(f"run9:100:{sample}" for sample in range(40))
    assert response == {"batchItemFailures": []}


def test_an_empty_event_prints_only_a_summary(handler, runtime, capsys):
    response, lines = invoke(handler, {"Records": []}, capsys)

    assert response == {"batchItemFailures": []}
    assert [line["type"] for line in lines] == ["summary"]
    assert runtime.bodies == []


def test_a_missing_endpoint_name_fails_the_whole_invocation(monkeypatch, runtime):
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_NAME="")

    with pytest.raises(RuntimeError, match="ENDPOINT_NAME is not set"):
        handler.lambda_handler(load_event("kinesis_beats.json"), LambdaContext())


FAST_PATH_CASES = {
    "replay format": (b'{"id":"a","beat":[0.1234,1.0,0.0,0]}', [0.1234, 1.0, 0.0, 0.0]),
    "long decimals": (b'{"beat":[0.12345678901234567,0.5,0.5,0.5]}', [0.12345678901234567, 0.5, 0.5, 0.5]),
    "leading zero": (b'{"beat":[01,0.5,0.5,0.5]}', None),
    "two integer digits": (b'{"beat":[12.5,0.5,0.5,0.5]}', [12.5, 0.5, 0.5, 0.5]),
    "negative": (b'{"beat":[-0.5,0.5,0.5,0.5]}', [-0.5, 0.5, 0.5, 0.5]),
    "exponent": (b'{"beat":[1e999,0.5,0.5,0.5]}', None),
    "dot first": (b'{"beat":[.5,0.5,0.5,0.5]}', None),
    "dot last": (b'{"beat":[5.,0.5,0.5,0.5]}', None),
    "two dots": (b'{"beat":[0.5.5,0.5,0.5]}', None),
    "empty value": (b'{"beat":[0.5,,0.5,0.5]}', None),
    "spaces": (b'{"beat":[0.5, 0.5, 0.5, 0.5]}', [0.5, 0.5, 0.5, 0.5]),
    "nested beat first": (b'{"x":{"beat":[0.5,0.5,0.5,0.5]},"beat":[0.1,0.1,0.1,0.1]}', [0.1, 0.1, 0.1, 0.1]),
    "escaped top-level key": (b'{"beat":[0.5,0.5,0.5,0.5],"\\u0062eat":[0.1,0.1,0.1,0.1]}', [0.1, 0.1, 0.1, 0.1]),
    "beat inside a nested object only": (b'{"x":{"beat":[0.5,0.5,0.5,0.5]}}', None),
}


@pytest.mark.parametrize("case", sorted(FAST_PATH_CASES))
def test_the_beat_sent_to_the_endpoint_is_the_one_json_decodes(handler, monkeypatch, case):
    data, expected = FAST_PATH_CASES[case]
    monkeypatch.setattr(handler, "BEAT_LENGTH", 4)

    try:
        _, beat = handler._json_payload(data)
    except handler.BadRecord:
        beat = None

    assert (None if beat is None else json.loads(beat)) == expected


def test_the_local_endpoint_server_classifies_the_batch_as_the_model_does(monkeypatch, clients, capsys,
                                                                          synthetic_model_tar):
    import numpy as np
    from kit.cloudkit import unique

    from hbcore.model.training import load_model, predict

    model = load_model(synthetic_model_tar)
    endpoint = unique("ep")
    clients.deploy(endpoint, synthetic_model_tar.read_bytes())
    handler = load_handler(monkeypatch, clients.runtime_url, ENDPOINT_NAME=endpoint, ENDPOINT_TIMEOUT_S="30")
    event = load_event("kinesis_beats.json")

    response, lines = invoke(handler, event, capsys)

    beats, rr = [], []
    for record in event["Records"]:
        data = base64.b64decode(record["kinesis"]["data"])
        if data.startswith(b"{"):
            fields = json.loads(data)
            beats.append(fields["beat"])
            rr.append([fields["rr_prev_s"], fields["rr_next_s"], fields["rr_local_s"]])
        else:
            beats.append([float(value) for value in data.decode().split(",")[:187]])
            rr.append([np.nan] * 3)
    expected = predict(model, np.array(beats, dtype=np.float32), np.array(rr, dtype=np.float32))
    predictions = predictions_of(lines)  # the beats line's rows (records 1-3), then the CSV lines' prediction lines
    assert response == {"batchItemFailures": []}
    assert [line["pred"] for line in predictions] == expected.tolist()
    assert {line["model_version"] for line in predictions} == {model.version}


# --- records Lambda may deliver broken (missing fields, not objects) --------------------------------

def _drop(path: tuple[str, ...]):
    def mutate(record: dict) -> Any:
        target = record
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return record
    return mutate


def _set(path: tuple[str, ...], value: Any):
    def mutate(record: dict) -> Any:
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return record
    return mutate


BROKEN_RECORDS = {
    "no data": (_drop(("kinesis", "data")), "'kinesis.data' is missing"),
    "null data": (_set(("kinesis", "data"), None), "'kinesis.data' is missing"),
    "data a number": (_set(("kinesis", "data"), 12), "'kinesis.data' is int"),
    "no kinesis": (_drop(("kinesis",)), "no 'kinesis.sequenceNumber'"),
    "kinesis a list": (_set(("kinesis",), []), "no 'kinesis.sequenceNumber'"),
    "no sequence number": (_drop(("kinesis", "sequenceNumber")), "no 'kinesis.sequenceNumber'"),
    "sequence number a number": (_set(("kinesis", "sequenceNumber"), 1001), "no 'kinesis.sequenceNumber'"),
    "a string": (lambda record: "shardId-000000000000:1001", "record is str, expected an object"),
    "null": (lambda record: None, "record is null, expected an object"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_RECORDS))
def test_a_record_missing_fields_is_rejected_alone_and_never_fails_the_batch(handler, capsys, case):
    mutate, reason = BROKEN_RECORDS[case]
    event = with_payloads([beat_payload(sample) for sample in range(3)])
    event["Records"][1] = mutate(event["Records"][1])

    response, lines = invoke(handler, event, capsys)

    (rejected,) = of_type(lines, "rejected")
    assert reason in rejected["reason"]
    assert [line["sample"] for line in predictions_of(lines)] == [0, 2]
    assert response == {"batchItemFailures": []}


def test_a_record_without_sequence_number_is_never_listed_for_retry(handler, runtime, capsys):
    event = with_payloads([beat_payload(sample) for sample in range(3)])
    del event["Records"][0]["kinesis"]["sequenceNumber"]
    runtime.failures.append("internal")

    response, lines = invoke(handler, event, capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": "1001"}, {"itemIdentifier": "1002"}]}
    (rejected,) = of_type(lines, "rejected")
    assert rejected["seq"] is None and "cannot be retried" in rejected["reason"]


@pytest.mark.parametrize("event", [{}, {"Records": None}, {"Records": "x"}, {"Records": {"a": 1}}, [], None],
                         ids=["absent", "null", "a string", "an object", "event a list", "event null"])
def test_an_event_without_a_list_of_records_is_an_empty_batch(handler, runtime, capsys, event):
    response, lines = invoke(handler, event, capsys)

    assert response == {"batchItemFailures": []}
    (summary,) = lines
    assert (summary["type"], summary["records"], summary["error"]) == ("summary", 0, None)
    assert runtime.bodies == []


# --- gzip-compressed records -----------------------------------------------------------------------

def _logs_subscription_payload() -> bytes:
    """What a CloudWatch Logs subscription puts into Kinesis: gzip of a DATA_MESSAGE document."""
    import gzip

    return gzip.compress(json.dumps({"messageType": "DATA_MESSAGE", "owner": "123456789012",
                                     "logGroup": "/aws/lambda/x", "logStream": "s", "subscriptionFilters": ["f"],
                                     "logEvents": [{"id": "1", "timestamp": 0, "message": "hi"}]}).encode())


@pytest.mark.parametrize("payload", ["subscription", "gzipped beat"])
def test_a_gzip_compressed_record_is_rejected_naming_gzip(handler, capsys, payload):
    import gzip

    data = _logs_subscription_payload() if payload == "subscription" else gzip.compress(beat_payload(1))
    response, lines = invoke(handler, with_payloads([beat_payload(0), data]), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert rejected["reason"].startswith("gzip-compressed: not supported")
    assert [line["sample"] for line in predictions_of(lines)] == [0]
    assert response == {"batchItemFailures": []}


# --- KPL-aggregated records ------------------------------------------------------------------------

def aggregate(payloads: list[bytes], key: str = "100") -> bytes:
    from hbcore.contracts.kpl import encode_aggregate

    return encode_aggregate([(key, payload) for payload in payloads])


def test_each_user_record_of_an_aggregate_is_predicted_once(handler, capsys):
    event = with_payloads([beat_payload(0), aggregate([beat_payload(s) for s in (1, 2, 3)]), beat_payload(4)])

    response, lines = invoke(handler, event, capsys)

    predictions = predictions_of(lines)
    assert [line["id"] for line in predictions] == [f"run9:100:{sample}" for sample in range(5)]
    (summary,) = of_type(lines, "summary")
    assert (summary["records"], summary["predicted"]) == (5, 5)
    assert response == {"batchItemFailures": []}


def test_a_user_record_without_id_gets_its_subsequence_in_its_id(handler, capsys):
    csv_line = ",".join(["0.5"] * 187).encode()
    _, lines = invoke(handler, with_payloads([aggregate([csv_line, csv_line], key="207")]), capsys)

    predictions = predictions_of(lines)
    assert [(line["id"], line["record"]) for line in predictions] == [
        ("shardId-000000000000:1000:0", "207"), ("shardId-000000000000:1000:1", "207")]


def test_a_bad_user_record_is_rejected_alone_with_its_position(handler, capsys):
    event = with_payloads([aggregate([beat_payload(1), b"not a beat", beat_payload(3)])])

    response, lines = invoke(handler, event, capsys)

    (rejected,) = of_type(lines, "rejected")
    assert (rejected["id"], rejected["seq"]) == ("shardId-000000000000:1000:1", "1000")
    assert "neither a JSON object nor a CSV line" in rejected["reason"]
    assert [line["sample"] for line in predictions_of(lines)] == [1, 3]
    assert response == {"batchItemFailures": []}


def _bad_md5() -> bytes:
    data = bytearray(aggregate([beat_payload(1)]))
    data[-1] ^= 0xFF
    return bytes(data)


def _bad_protobuf() -> bytes:
    import hashlib

    message = b"\x1a\xff\x01"  # field 3, length 255, nothing after it
    return b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()


CORRUPT_AGGREGATES = {
    "bad md5": (_bad_md5, "KPL aggregate: the MD5 does not match"),
    "truncated": (lambda: aggregate([beat_payload(1)])[:40], "KPL aggregate: the MD5 does not match"),
    "too short": (lambda: b"\xf3\x89\x9a\xc2\x00", "KPL aggregate: 5 bytes, too short"),
    "bad protobuf": (_bad_protobuf, "KPL aggregate: field 3 of 255 bytes runs past the end"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_AGGREGATES))
def test_a_corrupt_aggregate_is_rejected_naming_kpl(handler, capsys, case):
    make, reason = CORRUPT_AGGREGATES[case]
    response, lines = invoke(handler, with_payloads([beat_payload(0), make()]), capsys)

    (rejected,) = of_type(lines, "rejected")
    assert rejected["seq"] == "1001" and reason in rejected["reason"]
    assert response == {"batchItemFailures": []}


def test_an_endpoint_failure_lists_an_aggregate_once_by_its_sequence_number(handler, runtime, capsys):
    runtime.failures.append("internal")
    event = with_payloads([aggregate([beat_payload(s) for s in range(4)]), beat_payload(9)])

    response, lines = invoke(handler, event, capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": "1000"}, {"itemIdentifier": "1001"}]}
    (summary,) = of_type(lines, "summary")
    assert (summary["records"], summary["failed"]) == (5, 5)


def test_a_partly_predicted_aggregate_is_retried_and_every_beat_is_logged(monkeypatch, runtime, capsys):
    """The retry logs the aggregate's already predicted beats again (the reader keeps one per beat id)."""
    handler = load_handler(monkeypatch, runtime.url, ENDPOINT_MAX_REQUEST_BYTES="20000")  # ~15 beats per call
    event = with_payloads([aggregate([beat_payload(10 * r + s) for s in range(10)]) for r in range(4)])
    runtime.failures.extend(["ok", "internal"])
    response, first_lines = invoke(handler, event, capsys)
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed == ["1001", "1002", "1003"]  # the failure fell inside the second aggregate
    retry = {"Records": [record for record in event["Records"] if record["kinesis"]["sequenceNumber"] in failed]}

    response, retry_lines = invoke(handler, retry, capsys)

    ids = [line["id"] for line in predictions_of(first_lines + retry_lines)]
    assert set(ids) == {f"run9:100:{sample}" for sample in range(40)}
    in_second_aggregate = {f"run9:100:{sample}" for sample in range(10, 20)}
    assert len(ids) == 40 + sum(1 for line in predictions_of(first_lines) if line["id"] in in_second_aggregate)
    assert response == {"batchItemFailures": []}


# --- refusals as the scikit-learn container sends them (500 with the model's message) ---------------

def test_a_refused_beat_is_isolated_when_the_refusal_is_a_500(handler, runtime, capsys):
    runtime.refusal_status = 500
    first_values = [0.05, 0.25, 3.0, 0.45, 0.65, 0.05, 7.0, 0.25]

    response, lines = invoke(handler, with_payloads([beat_payload(i, v) for i, v in enumerate(first_values)]), capsys)

    assert response == {"batchItemFailures": []}
    assert [line["sample"] for line in predictions_of(lines)] == [0, 1, 3, 4, 5, 7]
    assert [line["id"] for line in of_type(lines, "rejected")] == ["run9:100:2", "run9:100:6"]


@pytest.mark.parametrize("status", [400, 500])
def test_a_model_refusing_every_request_fails_the_batch_for_retry(handler, runtime, capsys, status):
    runtime.refusal_status, runtime.broken = status, "model could not be loaded: no model.npz"

    response, lines = invoke(handler, with_payloads([beat_payload(sample) for sample in range(100)]), capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": str(1000 + s)} for s in range(100)]}
    assert of_type(lines, "rejected") == []
    (summary,) = of_type(lines, "summary")
    assert (summary["predicted"], summary["rejected"], summary["failed"]) == (0, 0, 100)
    assert "refused every beat" in summary["error"] and "model could not be loaded" in summary["error"]
    assert len(runtime.bodies) <= 7 + 2 * 8  # halving stops after 8 lone refusals: no call per beat


@pytest.mark.parametrize("status", [400, 500])
def test_a_batch_whose_every_beat_is_refused_is_retried_not_rejected(handler, runtime, capsys, status):
    runtime.refusal_status = status

    response, lines = invoke(handler, with_payloads([beat_payload(s, 3.0) for s in range(3)]), capsys)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == ["1000", "1001", "1002"]
    assert of_type(lines, "rejected") == []


@pytest.mark.parametrize(("status", "retried"), [(500, True), (400, False)])
def test_the_only_beat_of_a_batch_refused_is_retried_on_a_500_rejected_on_a_400(handler, runtime, capsys,
                                                                                 status, retried):
    runtime.refusal_status = status

    response, lines = invoke(handler, with_payloads([beat_payload(0, 3.0)]), capsys)

    assert response == {"batchItemFailures": [{"itemIdentifier": "1000"}] if retried else []}
    assert len(of_type(lines, "rejected")) == (0 if retried else 1)


def test_a_beat_refused_alone_by_a_passing_500_is_asked_again_and_predicted(handler, runtime, capsys):
    runtime.failures.extend(["refuse500"] * 3)  # [0..4], [0, 1], [0]: beat 0 refused alone, then the fault ends

    response, lines = invoke(handler, with_payloads([beat_payload(sample) for sample in range(5)]), capsys)

    assert sorted(line["sample"] for line in predictions_of(lines)) == [0, 1, 2, 3, 4]
    assert of_type(lines, "rejected") == []
    assert response == {"batchItemFailures": []}


def test_a_beat_refused_alone_by_a_500_while_the_endpoint_fails_is_retried(handler, runtime, capsys):
    runtime.failures.extend(["refuse500", "refuse500", "refuse500", "ok", "internal"])

    response, lines = invoke(handler, with_payloads([beat_payload(sample) for sample in range(5)]), capsys)

    assert [line["sample"] for line in predictions_of(lines)] == [1]
    assert of_type(lines, "rejected") == []
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["1000", "1002", "1003", "1004"]


def test_the_first_invocation_prints_each_patients_counts_as_emf(handler, capsys):
    payloads = [json.dumps({"id": f"run9:{record}:{sample}", "run": "run9", "record": record, "sample": sample,
                            "beat": [value] + [0.05] * 186}).encode()
                for record, sample, value in (("100", 1, 0.45), ("100", 2, 0.05), ("201", 3, 0.25))]

    _, lines = invoke(handler, with_payloads(payloads), capsys)
    _, later = invoke(handler, with_payloads(payloads[:1], first_seq=2000), capsys)

    metrics = {line["Patient"]: (line["Beats"], line["VBeats"], line["SBeats"], line["AbnormalBeats"])
               for line in lines if "_aws" in line}
    assert metrics == {"100": (2, 1, 0, 1), "201": (1, 0, 1, 1)}  # the FakeRuntime's class: int(first value * 5)
    assert [line for line in later if "_aws" in line] == []  # the next ones wait for EMF_INTERVAL_S
