"""What a Python source file needs beyond a given Python release and numpy release.

``code/inference.py`` and the training entry point run in the SageMaker scikit-learn container
(``hbcore.aws.images.CONTAINERS``: 1.4-2-py312 has Python 3.12 and numpy 2.1), and also here, on
the project's own Python (3.11 or later) and numpy; anything newer than where they run fails only
there, minutes into an endpoint's start-up or a training job. ``ast.parse(feature_version=...)``
refuses newer syntax (``except*``,
``type`` statements, ...); the tables below name the newer standard-library modules, names and
numpy functions, which parse fine and fail at import or call time. The tables hold what a project
like this one might plausibly use, not every addition: a check, not a proof.
"""

from __future__ import annotations

import ast
import functools

# Standard-library modules and names by the Python release that added them.
NEWER_STDLIB: dict[str, tuple[int, int]] = {
    **dict.fromkeys([
        "tomllib", "wsgiref.types", "ExceptionGroup", "BaseExceptionGroup",
        "typing.Self", "typing.Never", "typing.LiteralString", "typing.NotRequired", "typing.Required",
        "typing.TypeVarTuple", "typing.Unpack", "typing.assert_never", "typing.assert_type",
        "typing.reveal_type", "typing.dataclass_transform", "typing.get_overloads",
        "enum.StrEnum", "enum.ReprEnum", "enum.verify", "enum.member", "enum.nonmember", "enum.EnumCheck",
        "datetime.UTC", "asyncio.TaskGroup", "asyncio.timeout", "asyncio.Runner", "asyncio.Barrier",
        "hashlib.file_digest", "contextlib.chdir", "operator.call", "math.cbrt", "math.exp2",
        "logging.getLevelNamesMapping",
    ], (3, 11)),
    **dict.fromkeys([
        "itertools.batched", "typing.override", "typing.TypeAliasType", "math.sumprod", "os.path.splitroot",
        "calendar.Month", "calendar.Day",
    ], (3, 12)),
    **dict.fromkeys(["warnings.deprecated", "copy.replace", "typing.ReadOnly", "typing.TypeIs"], (3, 13)),
}
# numpy functions and aliases by the numpy release that added them (np.bool and np.long were
# removed in 1.24 and came back in 2.0).
NUMPY_ADDED: dict[str, tuple[int, int]] = {
    **dict.fromkeys([
        "concat", "astype", "unique_values", "unique_counts", "unique_inverse", "unique_all", "permute_dims",
        "matrix_transpose", "vecdot", "isdtype", "bitwise_count", "trapezoid", "strings", "acos", "acosh",
        "asin", "asinh", "atan", "atan2", "atanh", "pow", "bitwise_left_shift", "bitwise_right_shift",
        "bitwise_invert", "bool", "long", "ulong",
    ], (2, 0)),
    **dict.fromkeys(["cumulative_sum", "cumulative_prod", "unstack"], (2, 1)),
    **dict.fromkeys(["vecmat", "matvec"], (2, 2)),
}
OLDEST_NUMPY = (1, 26)


def _dotted(node: ast.AST, modules: dict[str, str]) -> str | None:
    """``numpy.concat`` for ``np.concat`` when ``np`` names the imported module numpy."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in modules and parts:
        return ".".join([modules[node.id], *reversed(parts)])
    return None


def _used_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every imported module, imported name and module attribute used."""
    modules: dict[str, str] = {}
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]  # "import os.path" binds os
                modules[bound] = alias.name if alias.asname else bound
                used.append((node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            used += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (name := _dotted(node, modules)):
            used.append((node.lineno, name))
        elif isinstance(node, ast.Name) and node.id in NEWER_STDLIB:
            used.append((node.lineno, node.id))
    return used


def incompatibilities(source: str, python: tuple[int, int], name: str = "<source>",
                      numpy: tuple[int, int] = OLDEST_NUMPY) -> list[str]:
    """Why ``source`` would fail on Python ``python`` with numpy ``numpy``; empty when nothing is known to.

    Each reason names the file, the line and what it needs, e.g.
    ``inference.py line 12: tomllib needs Python 3.11``. A source is parsed once (every deploy of a
    model checks the same ``inference.py``: ~0.06 s of the demo's click otherwise).
    """
    return list(_reasons(source, python, name, numpy))


@functools.lru_cache(maxsize=16)
def _reasons(source: str, python: tuple[int, int], name: str, numpy: tuple[int, int]) -> tuple[str, ...]:
    try:
        tree = ast.parse(source, filename=name, feature_version=python)
    except SyntaxError as error:
        return (f"{name} line {error.lineno}: {error.msg} (Python {python[0]}.{python[1]} syntax)",)
    reasons: dict[str, None] = {}  # ordered and without repeats: np.strings.upper also uses np.strings
    for line, dotted in sorted(set(_used_names(tree))):
        needs = NEWER_STDLIB.get(dotted)
        if needs and needs > python:
            reasons[f"{name} line {line}: {dotted} needs Python {needs[0]}.{needs[1]}"] = None
        module, _, attribute = dotted.partition(".")
        added = NUMPY_ADDED.get(attribute.split(".")[0]) if module == "numpy" else None
        if added and added > numpy:
            needs_numpy = "2" if added == (2, 0) else f"{added[0]}.{added[1]}"
            reasons[f"{name} line {line}: numpy.{attribute.split('.')[0]} needs numpy {needs_numpy}"] = None
    return tuple(reasons)
