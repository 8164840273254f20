"""The domain package's import order (see ``src/autoloop/__init__.py``), checked statically.

Between packages, circles and private names: tests/infra/test_architecture.py."""

from __future__ import annotations

import ast
from pathlib import Path

import autoloop
from tests.conftest import ROOT

SRC = ROOT / "src" / "autoloop"
ORDER = (*autoloop.MODULES, *autoloop.PIPELINES)


def imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from autoloop[.module] import name``, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "autoloop":
            for alias in node.names:
                if node.module == "autoloop":
                    found.append((alias.name, ""))
                else:
                    found.append((node.module.split(".")[1], alias.name))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], "") for a in node.names if a.name.startswith("autoloop.")]
    return found


def test_every_module_has_its_place_in_the_order():
    assert {p.stem for p in SRC.glob("*.py")} - {"__init__"} == set(ORDER)


def test_modules_import_only_modules_before_them_and_pipelines_import_no_pipeline():
    wrong = []
    for module in ORDER:
        for target, _ in imports(SRC / f"{module}.py"):
            if target == module:
                continue
            if target in autoloop.PIPELINES or ORDER.index(target) > ORDER.index(module):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_handlers_import_only_the_package_and_powertools():
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        for node in ast.walk(ast.parse(app.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] in {"__future__", "typing", "autoloop", "aws_lambda_powertools"}, app
