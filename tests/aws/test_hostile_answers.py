"""Endpoints that do not answer like AWS (a proxy's HTML page, plain text, XML of another shape): both
command lines print one redacted line, never a traceback nor the body (which may echo the request).

A tiny HTTP server on 127.0.0.1 gives each answer, with the request's headers in its body as a
misconfigured proxy would; boto3 clients reach it through ``Backend`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

import pytest

import deploy.__main__ as deploy_cli
from hbcore import cli
from hbcore.aws.backend import Backend
from hbcore.data import physionet

FAKE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# (status, content type, body template): {headers} is replaced by the request's headers.
ANSWERS = {
    "html 200": (200, "text/html", "<html><body><h1>Welcome</h1><pre>{headers}</pre></body></html>"),
    "html 403": (403, "text/html; charset=utf-8", "<!DOCTYPE html><html><pre>Forbidden\n{headers}</pre></html>"),
    "html 502": (502, "text/html", "<html><h1>502 Bad Gateway</h1><pre>{headers}</pre></html>"),
    "html as text 200": (200, "text/plain", "  <!doctype html><title>portal</title>{headers}"),
    "plain text 200": (200, "text/plain", "OK\n{headers}"),
    "other xml 200": (200, "text/xml", "<Proxy><Echo>{headers}</Echo></Proxy>"),
    "json garbage 200": (200, "application/x-amz-json-1.1", '{{"echo": "{headers}"'),
}


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, str, str] = ANSWERS["html 200"]

    def _reply(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content_type, template = self.answer
        echoed = "\n".join(f"{name}: {value}" for name, value in self.headers.items())
        body = template.replace("{headers}", echoed).replace("{{", "{").encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _reply

    def log_message(self, *args: object) -> None:
        """Quiet: the tests read what the clients print, not the server."""


@contextlib.contextmanager
def serving(answer: tuple[int, str, str]) -> Iterator[str]:
    """A loopback server giving ``answer`` to every request; its URL."""
    handler = type("Handler", (_HostileHandler,), {"answer": answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _real_looking_credentials(monkeypatch):
    """Credentials shaped like real ones, so that a leak of the signed headers would show; one attempt a call."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.fixture(params=sorted(ANSWERS))
def hostile_url(request) -> Iterator[str]:
    with serving(ANSWERS[request.param]) as url:
        yield url


def _assert_one_safe_line(err: str) -> None:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1
    assert "Traceback" not in err
    for leaked in (FAKE_KEY_ID, FAKE_SECRET, "Authorization", "X-Amz-Date", "Signature=", "<html", "<pre>"):
        assert leaked not in err


def test_deploy_status_prints_one_redacted_line(hostile_url, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", hostile_url)

    assert deploy_cli.main(["status", "--region", "us-east-1"]) == 1

    captured = capsys.readouterr()
    _assert_one_safe_line(captured.err)
    assert captured.out == ""


@pytest.mark.parametrize("service", ["cloudformation", "kinesis", "logs", "s3"])
def test_hbcore_commands_print_one_redacted_line(hostile_url, service, monkeypatch, capsys):
    def call_aws(**options):
        client = Backend(kind="aws", endpoint_url=hostile_url).client(service)
        {"cloudformation": client.describe_stacks, "kinesis": client.list_streams, "logs": client.describe_log_groups,
         "s3": client.list_buckets}[service]()

    monkeypatch.setattr(physionet, "run_download", call_aws)

    assert cli.main(["data", "download"]) == cli.AWS_ERROR_EXIT

    _assert_one_safe_line(capsys.readouterr().err)


def test_an_html_page_is_named_as_such(monkeypatch, capsys):
    with serving(ANSWERS["html 403"]) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        assert deploy_cli.main(["status", "--region", "us-east-1"]) == 1

    assert capsys.readouterr().err == (
        "error: NotAnAwsResponse: DescribeStacks: the endpoint answered HTTP 403 with an HTML page, not an AWS "
        "response (a proxy or a captive portal in the way, or a wrong endpoint URL?)\n")
