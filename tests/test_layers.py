"""The layer rule, read from the imports: every module imports only its own layer and the layers below.

foundation (``hbcore`` itself: paths, background, contracts) ← data ← model ← aws ← localcloud | stream
← app ← bench ← cli ← deploy, pages. localcloud and stream are peers that never import each other.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package → layer; a module may import its own layer and lower ones. Peers share a layer number only
# when they may import each other, so localcloud and stream get their own rule below.
LAYERS = {
    "hbcore": 0, "hbcore.contracts": 0,
    "hbcore.data": 1,
    "hbcore.model": 2, "hbcore.rhythm": 2,
    "hbcore.aws": 3,
    "hbcore.localcloud": 4, "hbcore.stream": 4,
    "hbcore.app": 5,
    "hbcore.bench": 6,
    "hbcore.cli": 7, "hbcore.__main__": 7,
    "deploy": 8, "pages": 8, "streamlit_app": 8,
}
PEERS_APART = {frozenset({"hbcore.localcloud", "hbcore.stream"})}
# Shipped or loaded on their own (model.tar.gz, the Lambda console, the poller's function code):
# they import nothing of the project.
SELF_CONTAINED = ("lambda_function.py", "hbcore/model/inference.py", "hbcore/bench/faultkit/crashing_handler.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The entry of LAYERS a module belongs to (the longest matching prefix)."""
    candidates = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    if not candidates:
        raise KeyError(f"{module}: not in any layer; add its package to LAYERS")
    return max(candidates, key=len)


def project_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in ("hbcore", "deploy", "pages")
                  and _exists(name)}
    return found


def _exists(module: str) -> bool:
    base = REPO / Path(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


SOURCES = sorted([*REPO.glob("hbcore/**/*.py"), *REPO.glob("deploy/*.py"), *REPO.glob("pages/*.py"),
                  REPO / "streamlit_app.py"])


def test_every_package_has_a_layer():
    assert [module_name(path) for path in SOURCES if not _has_layer(module_name(path))] == []


def _has_layer(module: str) -> bool:
    try:
        package_of(module)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_imports_only_go_down(path):
    own = package_of(module_name(path))
    upward = []
    for imported in sorted(project_imports(path)):
        target = package_of(imported)
        if LAYERS[target] > LAYERS[own] or frozenset({own, target}) in PEERS_APART:
            upward.append(f"{imported} ({target}, layer {LAYERS[target]})")
    assert upward == [], f"{module_name(path)} (layer {LAYERS[own]}) imports upward or sideways"


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_self_contained_sources_import_nothing_of_the_project(name):
    assert project_imports(REPO / name) == set()


def test_the_rule_catches_an_upward_import(tmp_path):
    """The check itself: a data module importing the app is reported."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from hbcore.app import pipeline\n")
    assert project_imports(source) == {"hbcore.app", "hbcore.app.pipeline"}
    assert LAYERS[package_of("hbcore.app.pipeline")] > LAYERS[package_of("hbcore.data.dataset")]
