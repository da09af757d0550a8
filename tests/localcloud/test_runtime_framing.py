"""The local SageMaker runtime's request framing: malformed Content-Length, clients that hang up.

Raw sockets on 127.0.0.1 against an ``EndpointServer`` with no endpoints: framing is checked before
any endpoint is looked up, so no moto is needed.
"""

from __future__ import annotations

import json
import socket
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbcore.localcloud.sagemaker_runtime import EndpointServer, content_length

SOCKET_TIMEOUT_S = 5.0
MALFORMED_LENGTHS = ["abc", "1e3", "0x10", "", " ", "5, 5", "5,5", "5, 6", "-1", "-0x1", "+5", "1_0", "٣"]


class NoEndpoints:
    """A control plane that knows no endpoint."""

    def locate(self, endpoint_name: str, region: str, variant: str | None = None):
        raise LookupError(f"Could not find endpoint {endpoint_name!r}")

    def etag(self, url: str) -> str:
        raise LookupError(url)

    def read(self, url: str) -> bytes:
        raise LookupError(url)


@pytest.fixture(scope="module")
def runtime():
    with EndpointServer(NoEndpoints()) as server:
        yield server


def exchange(server: EndpointServer, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes, read until the server closes (or answers and the timeout passes)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(head + body)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def post_with_length(value: str) -> bytes:
    return (f"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {value}\r\n\r\n").encode()


def parse(response: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("value", MALFORMED_LENGTHS)
def test_malformed_content_length_is_a_validation_error_and_closes(runtime, value, capfd):
    status, headers, body = parse(exchange(runtime, post_with_length(value), b"1,2,3"))
    assert status == 400
    assert headers["x-amzn-ErrorType"].startswith("ValidationError:")
    assert "Content-Length" in body["message"]
    assert "Traceback" not in capfd.readouterr().err


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=12))
def test_content_length_takes_only_one_plain_decimal_number(text):
    stripped = text.strip()
    expected = int(stripped) if stripped and all(c in string.digits for c in stripped) else None
    assert content_length([text]) == expected


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=2, max_value=3))
def test_repeated_lengths_are_refused(size, copies):
    assert content_length([str(size)]) == size
    assert content_length([", ".join([str(size)] * copies)]) is None
    assert content_length([str(size)] * copies) is None


def test_a_well_framed_request_still_reaches_the_endpoint_lookup(runtime):
    head = post_with_length("5").replace(b"Host: x", b"Host: x\r\nConnection: close")
    status, _, body = parse(exchange(runtime, head, b"1,2,3"))
    assert status == 400
    assert "Could not find endpoint 'ep'" in body["message"]


@pytest.mark.parametrize("sent", [0, 1, 4096])
def test_a_client_hanging_up_mid_body_logs_no_traceback(runtime, sent, capfd):
    host, port = runtime.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(post_with_length("100000") + b"x" * sent)
    # a request after it proves the server still serves, and that the aborted one has been handled
    status, _, _ = parse(exchange(runtime, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert status == 404
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_gone_before_the_answer_logs_no_traceback(runtime, capfd):
    host, port = runtime.url.removeprefix("http://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.sendall(post_with_length("3") + b"1,2")
    status, _, _ = parse(exchange(runtime, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert status == 404
    assert "Traceback" not in capfd.readouterr().err
