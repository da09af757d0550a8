"""Fixtures of the deploy tests (stack, deploy CLI)."""

import pytest

from hbcore.aws import stack


@pytest.fixture
def handler(tmp_path, monkeypatch):
    """A stand-in lambda_function.py (the real one is tested by its owner), as the default source."""
    path = tmp_path / "lambda_function.py"
    path.write_text("def lambda_handler(event, context):\n    return {'batchItemFailures': []}\n")
    monkeypatch.setattr(stack, "LAMBDA_SOURCE", path)
    return path
