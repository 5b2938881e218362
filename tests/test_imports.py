"""The package's import graph: no cycles, none hidden by a function-level import,
and the layers of README's architecture (helper -> core -> native)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "squidguard_bloom"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, top: bool) -> set[str]:
    """Package modules path imports at module level (top; not under ``if TYPE_CHECKING``),
    or inside functions (not top)."""
    tree = ast.parse(path.read_text())
    if top:
        nodes: list[ast.AST] = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    else:
        nodes = [n for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
            out.update(p for p in (".".join(parts[:i]) for i in range(2, len(parts) + 1))
                       if p in MODULES)
    return out


TOP = {name: _imports(path, top=True) for name, path in MODULES.items()}


def _reach(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in TOP[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_cycle_even_through_a_function_level_import() -> None:
    """No module reaches itself through module-level imports, nor through one made
    inside a function (which would only hide the cycle)."""
    cycles = [(name, name) for name in MODULES if name in _reach(name)]
    hidden = [(name, dep) for name, path in MODULES.items()
              for dep in _imports(path, top=False) if name in _reach(dep) | {dep}]
    assert cycles == [] and hidden == []


def test_layers_point_down() -> None:
    """native imports neither core nor a program; core imports no program; the monitor
    and the shipper never import the helper."""
    def deps(prefix: str) -> set[str]:
        return {d for n in MODULES if n.startswith(prefix) for d in TOP[n] | _reach(n)}

    programs = ("squidguard_bloom.helper", "squidguard_bloom.shipper",
                "squidguard_bloom.monitor", "squidguard_bloom.bench")
    assert {d for d in deps("squidguard_bloom.native") if d.startswith(
        ("squidguard_bloom.core", *programs))} == set()
    assert {d for d in deps("squidguard_bloom.core") if d.startswith(programs)} == set()
    for program in ("squidguard_bloom.shipper", "squidguard_bloom.monitor"):
        assert {d for d in deps(program) if d.startswith("squidguard_bloom.helper")} == set()
