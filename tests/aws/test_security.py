"""Security: no credentials in the repository, redacted errors for users, loopback only, bounded uploads."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Shapes of AWS credentials (the redaction module hides the same shapes from users).
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[0-9])"
                          r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
SECRET_ASSIGNED = re.compile(r"(?i)(?:aws_secret_access_key|secret_access_key|aws_session_token|secretaccesskey)"
                             r"[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{8,})")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# AWS's documented example credentials and an obviously made-up id: what the redaction tests feed in.
KNOWN_FAKES = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ASIAABCDEFGHIJKLMNOP"}

# Where errors reach a user: the app's pages and resources, and the two command lines.
USER_FACING = sorted([*REPO.glob("pages/*.py"), REPO / "streamlit_app.py", REPO / "hbcore" / "app" / "resources.py",
                      REPO / "hbcore" / "cli.py", REPO / "deploy" / "__main__.py"])
REDACTORS = {"user_message", "redact", "sdk_error_message"}
SHOWN_ERROR_FIELDS = {"error", "errors", "failure_reason"}
ST_MESSAGES = {"error", "warning", "exception", "toast", "info"}


def _repository_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [REPO / name for name in listed if (REPO / name).is_file()]


def _credential_findings(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []  # binary files (model archives, images) hold no source
    found = [match.group(0) for pattern in (ACCESS_KEY_ID, SECRET_SHAPE, PRIVATE_KEY)
             for match in pattern.finditer(text)]
    found += [match.group(1) for match in SECRET_ASSIGNED.finditer(text)]
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return [f"{name}: {value[:12]}…" for value in found if value not in KNOWN_FAKES]


def test_no_credentials_in_the_repository():
    findings = [finding for path in _repository_files() for finding in _credential_findings(path)]
    assert findings == []


def test_the_credential_scan_finds_a_planted_key(tmp_path):
    planted = tmp_path / "settings.py"
    # Split, so that this file holds no credential of its own.
    key_id, secret = "AKIA" + "2OGYBAH6RZWQX4M7", "q9Vt0n8W1sKc3RrZpL6y" + "H2mB5xJ4eA7uD0fGiN1o"
    planted.write_text(f'AWS_ACCESS_KEY_ID = "{key_id}"\naws_secret_access_key = "{secret}"\n')
    assert sorted(_credential_findings(planted)) == sorted(
        [f"{planted}: {key_id[:12]}…", f"{planted}: {secret[:12]}…", f"{planted}: {secret[:12]}…"])


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _inside_redactor(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in REDACTORS:
            return True
    return False


def _unredacted_uses(path: Path) -> list[str]:
    """Caught exceptions, and error fields in ``st.*`` messages, used outside ``user_message``/``redact``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = _parents(tree)
    problems = []
    for handler in (node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler) and node.name):
        for node in (n for statement in handler.body for n in ast.walk(statement)):
            if isinstance(node, ast.Name) and node.id == handler.name and isinstance(node.ctx, ast.Load) \
                    and not isinstance(parents.get(node), ast.Raise) and not _inside_redactor(node, parents):
                problems.append(f"{path.relative_to(REPO)}:{node.lineno}: exception {handler.name!r} shown unredacted")
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        func = call.func
        is_st_message = (isinstance(func, ast.Attribute) and func.attr in ST_MESSAGES
                         and getattr(func.value, "id", None) == "st")
        if not is_st_message:
            continue
        for node in (n for argument in call.args for n in ast.walk(argument)):
            field = node.attr if isinstance(node, ast.Attribute) else (
                node.slice.value if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) else None)
            if field in SHOWN_ERROR_FIELDS and not _inside_redactor(node, parents):
                problems.append(f"{path.relative_to(REPO)}:{node.lineno}: {field!r} shown unredacted")
    return problems


@pytest.mark.parametrize("path", USER_FACING, ids=lambda path: str(path.relative_to(REPO)))
def test_errors_shown_to_users_go_through_redaction(path):
    assert _unredacted_uses(path) == []


def test_the_redaction_check_catches_a_raw_error(tmp_path, monkeypatch):
    page = tmp_path / "page.py"
    page.write_text("try:\n    go()\nexcept Exception as error:\n    st.error(f'failed: {error}')\n"
                    "st.warning(status['failure_reason'])\nst.error(user_message(problem.error))\n")
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert _unredacted_uses(page) == ["page.py:4: exception 'error' shown unredacted",
                                      "page.py:5: 'failure_reason' shown unredacted"]


def test_the_app_binds_loopback_and_limits_uploads():
    server = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert 0 < server["maxUploadSize"] <= 1024  # MB: the full Kaggle training CSV is ~392 MB


def test_the_data_page_passes_the_upload_limit_to_the_csv_loader():
    tree = ast.parse((REPO / "pages" / "data.py").read_text())
    uploads = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "attr", getattr(node.func, "id", None)) == "load_kaggle_csv"
               and node.args and getattr(node.args[0], "id", None) == "upload"]  # files on disk are read in place
    assert uploads and all("max_bytes" in {keyword.arg for keyword in call.keywords} for call in uploads)


def _listening_addresses(ports: set[int]) -> set[str]:
    """Local addresses of the LISTEN sockets on ``ports`` (from /proc/net/tcp and tcp6)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:
                addresses.add(address)
    return addresses


def test_the_local_cloud_listens_on_loopback_only(cloud):
    ports = {int(url.rsplit(":", 1)[1]) for url in (cloud.url, cloud.runtime_url)}
    assert cloud.url.startswith("http://127.0.0.1:") and cloud.runtime_url.startswith("http://127.0.0.1:")
    assert _listening_addresses(ports) == {"0100007F"}  # 127.0.0.1, little-endian hex; no 0.0.0.0 or ::


def test_ci_audits_the_pinned_dependencies():
    script = (REPO / ".ci" / "run").read_text()
    assert "pip_audit -r requirements.txt" in script
    assert re.search(r"^pip-audit==", (REPO / "requirements.txt").read_text(), re.MULTILINE)
