"""The import directions of docs/ARCHITECTURE.md ("Import directions"), checked on the source.

Every import counts, at module level or inside a function (a lazy import is still a
dependency), read from the source with ``ast`` so nothing is imported to check it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: the project's Python packages and where they live
PACKAGES = {
    "autoloop": ROOT / "src" / "autoloop",
    "autoloop_cli": ROOT / "autoloop_cli",
    "localaws": ROOT / "localaws",
    "bench": ROOT / "bench",
}
#: what each package may import of the others (itself always)
ALLOWED = {
    "autoloop": set(),
    "localaws": {"autoloop"},
    "autoloop_cli": {"autoloop", "localaws"},
    "bench": {"autoloop", "localaws", "autoloop_cli"},
    "functions": {"autoloop"},
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the project module imported
    lazy: bool  # inside a function
    line: int


def _module_name(package: str, path: Path) -> str:
    parts = [package, *path.relative_to(PACKAGES[package]).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {_module_name(package, path): path for package, root in PACKAGES.items() for path in root.rglob("*.py")}
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        found[f"functions.{app.parent.name}.app"] = app
    return found


def _resolve(name: str) -> str | None:
    """The project module that ``import name`` loads (a package's ``__init__`` for a name in it)."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy_lines = {
        inner.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield Import(module, target, node.lineno in lazy_lines, node.lineno)


@cache
def graph() -> tuple[Import, ...]:
    return tuple(imp for module, path in modules().items() for imp in _imports(module, path))


def _top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def test_the_checker_sees_the_project() -> None:
    tops = {_top(imp.source) for imp in graph()}
    assert tops == set(ALLOWED), tops
    assert len(modules()) > 80


def test_each_package_imports_only_what_it_may() -> None:
    broken = [
        f"{imp.source} (line {imp.line}) imports {imp.target}"
        for imp in graph()
        if _top(imp.target) != _top(imp.source) and _top(imp.target) not in ALLOWED[_top(imp.source)]
    ]
    assert not broken, "imports against docs/ARCHITECTURE.md's directions:\n" + "\n".join(broken)


def test_the_command_line_loads_the_local_aws_only_for_local_commands() -> None:
    """Outside the demo, ``autoloop_cli`` imports the emulator only inside the functions of
    ``autoloop local ...`` commands, so publish, report and gen-data work without it."""
    broken = [
        f"{imp.source} (line {imp.line}) imports {imp.target} at module level"
        for imp in graph()
        if _top(imp.source) == "autoloop_cli" and _top(imp.target) == "localaws"
        and not imp.source.startswith("autoloop_cli.demo") and not imp.lazy
    ]
    assert not broken, "\n".join(broken)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package(module: str) -> str:
    return module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_module_imports_itself_through_others() -> None:
    edges: dict[str, set[str]] = {}
    for imp in graph():
        edges.setdefault(imp.source, set()).add(imp.target)
    assert not _cycles(edges), f"import circles between modules: {_cycles(edges)}"


def test_no_import_circles_between_packages() -> None:
    """Sub-packages too: ``localaws.sagemaker.jobs`` and ``localaws.sagemaker.endpoints``
    may share ``localaws.sagemaker.inference``, but never import each other both ways. A
    package and its own sub-packages are one unit here (a parent may import its children)."""
    edges: dict[str, set[str]] = {}
    for imp in graph():
        source, target = _package(imp.source), _package(imp.target)
        if source == target or target.startswith(source + ".") or source.startswith(target + "."):
            continue
        edges.setdefault(source, set()).add(target)
    assert not _cycles(edges), f"import circles between packages: {_cycles(edges)}"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_aliases(tree: ast.AST) -> set[str]:
    """Local names bound to a project module (``import a.b as m``, ``from a import b``)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {alias.asname for alias in node.names if alias.asname and alias.name in modules()}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            bound |= {alias.asname or alias.name for alias in node.names if f"{node.module}.{alias.name}" in modules()}
    return bound


def test_no_private_names_are_used_across_modules() -> None:
    """Neither ``from m import _name`` nor ``m._name`` on another project module."""
    broken = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = _module_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and _resolve(node.module):
                broken += [f"{module} (line {node.lineno}): from {node.module} import {alias.name}"
                           for alias in node.names if _private(alias.name)]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                  and _private(node.attr)):
                broken.append(f"{module} (line {node.lineno}): {node.value.id}.{node.attr}")
    assert not broken, "\n".join(broken)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("code", [
    # what `autoloop publish`, `autoloop report` and `autoloop gen-data` load
    "from autoloop_cli import cli, publish, report, executions, datagen; publish.model_folders()['churn'].bundle(); "
    "cli.parser().parse_args(['publish', '--stack-name', 'x'])",
])
def test_the_command_line_works_without_the_emulator(code: str) -> None:
    """Installed without the ``local`` extra (no moto), the AWS-facing commands still load:
    moto and the emulator are made unimportable in a fresh interpreter."""
    guard = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('moto', 'localaws'):\n"
        "            raise ImportError(f'{name} is blocked: the CLI must not need the emulator')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    result = subprocess.run([sys.executable, "-c", guard + code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
