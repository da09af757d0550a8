"""pyproject.toml and CI: the console script, one home for each tool's configuration, checks that fail CI."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import hbcore
from hbcore import cli

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_console_script_runs_the_cli():
    module, _, function = PYPROJECT["project"]["scripts"]["hbcore"].partition(":")
    assert getattr(importlib.import_module(module), function) is cli.main


def test_the_version_is_the_packages_own():
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hbcore.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", hbcore.__version__)


def test_pytest_is_configured_in_pyproject_only():
    assert "testpaths" in PYPROJECT["tool"]["pytest"]["ini_options"]
    assert [name for name in ("pytest.ini", "setup.cfg", "tox.ini") if (REPO / name).exists()] == []


def test_ci_fails_on_lint_and_type_findings_with_pinned_tools():
    script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    checks, tests = script.index("python -m ruff check ."), script.index("python -m pytest")
    assert checks < script.index("python -m mypy") < tests
    pinned = (REPO / "requirements.txt").read_text()
    assert re.search(r"^ruff==\S+$", pinned, re.MULTILINE) and re.search(r"^mypy==\S+$", pinned, re.MULTILINE)


def test_mypy_checks_the_package_and_the_handler():
    assert PYPROJECT["tool"]["mypy"]["files"] == ["hbcore", "lambda_function.py"]
