"""The package's import layering, read from the source (no import is executed).

Rules (see the issue "One home per concern"):

- the ground floor (``exceptions``, ``_version``, ``_dims``, ``_json``, ``_dask``, ``_progress``,
  ``points``) imports nothing above itself;
- ``io`` and ``grid`` import only the ground floor (and themselves);
- ``models`` never imports the package face (``xprospect`` itself), ``train``, ``score``,
  ``evaluate``, ``cli`` or the accessor;
- nothing imports ``cli``; only ``xprospect/__init__.py`` imports the accessor module;
- subpackages form no cycle (evaluate and evidence in particular);
- package-internal imports sit at module level: an import of ``xprospect...`` inside a
  function is an upward import hidden from readers and is refused.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "xprospect"
GROUND = {"exceptions", "_version", "_dims", "_json", "_dask", "_progress", "points", "_figures"}


def _unit(mod: str) -> str:
    """The layering unit of a dotted module name: a subpackage or a top-level module."""
    parts = mod.split(".")
    if parts[0] != "xprospect":
        raise ValueError(mod)
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, here: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = here.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports():
    """Yield (importer module, imported module, line, inside a function)."""
    for path in sorted(PKG.rglob("*.py")):
        here = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        funcs = [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        inner = {id(m) for f in funcs for m in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(node, here, path.name == "__init__.py")
                targets = [mod]
                # ``from xprospect import io`` imports the subpackage io
                if mod == "xprospect":
                    targets = [f"xprospect.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t == "xprospect" or t.startswith("xprospect."):
                    yield here, t, node.lineno, id(node) in inner


def _lazy(module: str, line: int) -> bool:
    path = PKG.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    lines = path.read_text().splitlines()
    near = lines[max(line - 2, 0) : line]
    return any("#" in t for t in near)


EDGES = list(_imports())


def _units(edges):
    out = {}
    for src, dst, line, _inner in edges:
        out.setdefault((_unit(src), _unit(dst)), []).append(f"{src}:{line} -> {dst}")
    return out


def test_no_package_imports_inside_functions():
    # the one exception: an import that loads torch (or another heavy optional
    # dependency) late on purpose, with a comment saying why on its line or the line above
    hidden = [f"{s}:{n} -> {d}" for s, d, n, inner in EDGES if inner and not _lazy(s, n)]
    assert not hidden, "package-internal imports inside functions:\n" + "\n".join(hidden)


def test_ground_floor_imports_only_ground_floor():
    bad = [
        w
        for (a, b), where in _units(EDGES).items()
        if a in GROUND and b not in GROUND
        for w in where
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("unit", ["io", "grid"])
def test_io_and_grid_import_only_the_ground_floor(unit):
    bad = [
        w
        for (a, b), where in _units(EDGES).items()
        if a == unit and b not in GROUND | {unit}
        for w in where
    ]
    assert not bad, "\n".join(bad)


def test_models_never_import_the_face_or_upper_packages():
    banned = {"__init__", "train", "score", "evaluate", "cli", "accessor"}
    bad = [
        w for (a, b), where in _units(EDGES).items() if a == "models" and b in banned for w in where
    ]
    assert not bad, "\n".join(bad)


def test_nothing_imports_cli_or_the_accessor():
    bad = [
        w
        for (a, b), where in _units(EDGES).items()
        if (b == "cli" and a != "cli") or (b == "accessor" and a not in {"__init__", "accessor"})
        for w in where
    ]
    assert not bad, "\n".join(bad)


def test_no_cycles_between_packages():
    names = sorted({u for pair in _units(EDGES) for u in pair} - {"__init__"})
    reach = {a: set() for a in names}
    for a, b in _units(EDGES):
        if a != b and a != "__init__" and b != "__init__":
            reach[a].add(b)
    for k in names:  # transitive closure (Warshall)
        for a in names:
            if k in reach[a]:
                reach[a] |= reach[k]
    cycles = sorted(
        {" <-> ".join(sorted((a, b))) for a in names for b in reach[a] if a != b and a in reach[b]}
    )
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_checker_sees_a_planted_upward_import(tmp_path):
    # the rules above must fail when an upward import is added: parse a planted module
    src = "def f():\n    from xprospect.evaluate import metrics\n"
    tree = ast.parse(src)
    imp = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _resolve(imp, "xprospect.grid.idw", False) == "xprospect.evaluate"
    edges = [("xprospect.grid.idw", "xprospect.evaluate", 2, True)]
    units = _units(edges)
    assert ("grid", "evaluate") in units
