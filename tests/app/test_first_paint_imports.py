"""The home page draws its button before any chart library is imported: altair costs ~0.5 s of a fresh
app's first paint (measured 3 December 2026, paired: first paint 5.68 s -> 4.60 s median of 5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "pages" / "home.py"
NOT_BEFORE_FIRST_PAINT = ("altair",)


def home_page_imports() -> list[str]:
    """The modules pages/home.py imports at its top level (what a fresh app loads before the button)."""
    imported = []
    for node in ast.parse(HOME.read_text()).body:
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            imported += [f"{node.module}.{alias.name}" for alias in node.names]  # a submodule or a name in one
    return imported


def test_the_home_pages_imports_load_no_chart_library():
    modules = home_page_imports()
    assert "hbcore.app.resources" in modules
    script = (f"import importlib, sys\nfor name in {modules!r}:\n"
              "    try:\n        importlib.import_module(name)\n"
              "    except ModuleNotFoundError:\n        importlib.import_module(name.rpartition('.')[0])\n"
              f"print([name for name in {NOT_BEFORE_FIRST_PAINT!r} if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HB_DATA_DIR": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
