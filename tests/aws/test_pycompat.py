"""Code that runs in the default SageMaker scikit-learn container (1.4-2-py312: Python 3.12, numpy 2.1)
and on the project's own Python (3.11 or later) needs nothing newer than either: the checker itself,
then inference.py, lambda_function.py and the training entry point."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from hbcore.aws import images, pycompat

REPO = Path(__file__).resolve().parents[2]
CONTAINER = images.CONTAINERS[images.DEFAULT_FRAMEWORK_VERSION]
PROJECT_PYTHON = (3, 11)  # pyproject.toml's requires-python: the local cloud loads inference.py here
TARGET_PYTHON = min(CONTAINER.python, PROJECT_PYTHON)
# Third-party packages of the container (its Dockerfiles: scikit-learn with its dependencies,
# pandas, pyarrow).
CONTAINER_PACKAGES = {"numpy", "scipy", "sklearn", "joblib", "threadpoolctl", "pandas", "pyarrow"}
# Imported by the training entry point's modules but never on its path: dataset.build_beats reads raw
# WFDB records, while a training channel holds CSVs or an already built beat set.
NOT_ON_THE_TRAINING_PATH = {"wfdb"}


def reasons(source: str) -> list[str]:
    return pycompat.incompatibilities(source, (3, 10), "f.py")


@pytest.mark.parametrize(("source", "reason"), [
    ("import tomllib\n", "f.py line 1: tomllib needs Python 3.11"),
    ("from typing import Self\n", "f.py line 1: typing.Self needs Python 3.11"),
    ("import datetime\nnow = datetime.datetime.now(datetime.UTC)\n", "f.py line 2: datetime.UTC needs Python 3.11"),
    ("try:\n    pass\nexcept ExceptionGroup:\n    pass\n", "f.py line 3: ExceptionGroup needs Python 3.11"),
    ("import itertools as it\nit.batched([1], 1)\n", "f.py line 2: itertools.batched needs Python 3.12"),
    ("import numpy as np\nnp.concat([[1]])\n", "f.py line 2: numpy.concat needs numpy 2"),
    ("from numpy import trapezoid\n", "f.py line 1: numpy.trapezoid needs numpy 2"),
    ("import numpy\nnumpy.strings.upper('a')\n", "f.py line 2: numpy.strings needs numpy 2"),
])
def test_newer_names_are_found(source, reason):
    assert reasons(source) == [reason]


def test_newer_syntax_is_found():
    [reason] = reasons("try:\n    pass\nexcept* ValueError:\n    pass\n")
    assert reason.startswith("f.py line ")
    assert reason.endswith("Exception groups are only supported in Python 3.11 and greater (Python 3.10 syntax)")


def test_older_names_pass():
    source = ("import numpy as np\nimport typing\nfrom dataclasses import dataclass\n"
              "x: typing.Optional[int] = np.concatenate([[1]]).sum()\nmatch x:\n    case _:\n        pass\n")
    assert reasons(source) == []


def test_numpy_names_are_held_to_the_containers_numpy():
    source = "import numpy as np\nnp.concat([[1]])\nnp.matvec(a, b)\n"
    assert pycompat.incompatibilities(source, (3, 12), "f.py", numpy=(2, 1)) == [
        "f.py line 3: numpy.matvec needs numpy 2.2"]


def test_the_project_requires_the_python_the_targets_assume():
    assert 'requires-python = ">=3.11"' in (REPO / "pyproject.toml").read_text()


@pytest.mark.parametrize("path", ["hbcore/model/inference.py", "lambda_function.py"])
def test_serving_and_handler_sources_run_on_the_containers_python(path):
    assert pycompat.incompatibilities((REPO / path).read_text(), TARGET_PYTHON, path, numpy=CONTAINER.numpy) == []


def hbcore_closure(start: Path) -> set[Path]:
    """``start`` and every hbcore module it imports, directly or not, at the top or in a function."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hbcore":
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("hbcore.")]
            todo += [module for name in names if (module := REPO / (name.replace(".", "/") + ".py")).is_file()]
    return seen


@pytest.fixture(scope="module")
def training_modules() -> set[Path]:
    return hbcore_closure(REPO / "hbcore" / "model" / "train_entry.py")


def test_training_closure_is_found(training_modules):
    names = {path.name for path in training_modules}
    assert {"train_entry.py", "training.py", "inference.py", "dataset.py", "kaggle.py", "splits.py"} <= names
    assert "endpoint.py" not in names


def test_training_sources_run_on_the_containers_python(training_modules):
    found = [reason for path in sorted(training_modules)
             for reason in pycompat.incompatibilities(path.read_text(), TARGET_PYTHON, path.name,
                                                      numpy=CONTAINER.numpy)]
    assert found == []


def test_training_imports_only_the_containers_packages(training_modules):
    imported = set()
    for path in training_modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"hbcore"}
    assert third_party - NOT_ON_THE_TRAINING_PATH <= CONTAINER_PACKAGES
