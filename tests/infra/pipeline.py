"""Read the CI/CD side: the workflows' run commands and the bootstrap template's policies.

Shared by tests/infra/test_pipeline.py (offline checks) and tests/e2e/test_smoke.py (the smoke
check's real AWS calls, against the deploy role's policy)."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode

from tests.infra.template_utils import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BOOTSTRAP = ROOT / "pipeline" / "bootstrap.yaml"
README = ROOT / "README.md"

#: The commands whose drift from the README matters: the project's own tools.
TOOLS = re.compile(r"^(?:\.venv/bin/)?(?:make|sam|autoloop)(?:\s|$)")
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


# ----------------------------------------------------------------------------- workflows
def placeholder(match: re.Match[str]) -> str:
    """``${{ inputs.stack-name }}`` -> ``<stack-name>``: the README names what goes there."""
    return f"<{match.group(1).rsplit('.', 1)[-1]}>"


def normalize(command: str) -> str:
    return " ".join(EXPRESSION.sub(placeholder, command).split())


def run_commands(workflow_text: str) -> list[str]:
    """Every make, sam and autoloop command in the ``run:`` steps of one workflow."""
    workflow = yaml.safe_load(workflow_text)
    commands = []
    for job in (workflow.get("jobs") or {}).values():
        for step in job.get("steps") or []:
            for line in str(step.get("run", "")).splitlines():
                for command in re.split(r"\s*(?:&&|\|\||;)\s*", line.strip()):
                    if TOOLS.match(command):
                        commands.append(normalize(command))
    return commands


def readme_commands(readme_text: str) -> set[str]:
    """The lines of the README's code blocks (its command lists, the CI/CD section's included),
    comments after ``#`` removed, normalized."""
    lines = set()
    for block in re.findall(r"```[a-z]*\n(.*?)```", readme_text, flags=re.DOTALL):
        for line in block.splitlines():
            lines.add(normalize(re.sub(r"\s+#\s.*$", "", line)))
    return lines


def undocumented(workflow_texts: Iterable[str], readme_text: str) -> list[str]:
    """The workflows' commands that the README does not show verbatim."""
    documented = readme_commands(readme_text)
    return [c for text in workflow_texts for c in run_commands(text) if c not in documented]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


# ----------------------------------------------------------------------------- bootstrap
@cache
def bootstrap() -> dict[str, Any]:
    parsed, matches = decode(str(BOOTSTRAP))
    assert not matches, matches
    return dict(json.loads(json.dumps(parsed)))


def statements(role: str) -> list[dict[str, Any]]:
    """The role's inline policy statements; a statement under a condition (``Fn::If``) counts as
    granted, as it is when the condition holds."""
    found = []
    for policy in bootstrap()["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            found.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resolve(value: Any, names: dict[str, str]) -> str:
    """A resource of the template as a pattern: ``Fn::Sub`` with ``names``; ``Fn::GetAtt`` and
    ``Ref`` of one of its own resources as ``<Logical.Attribute>``."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([\w:.]+)\}", lambda m: names.get(m.group(1), f"<{m.group(1)}>"), value["Fn::Sub"])
    if "Fn::GetAtt" in value:
        return "<" + ".".join(as_list(value["Fn::GetAtt"])) + ">"
    return f"<{value.get('Ref')}>"


def allows(role: str, action: str, resource: str, names: dict[str, str]) -> bool:
    """Whether an Allow statement of ``role`` grants ``action`` on ``resource`` (conditions aside)."""
    for statement in statements(role):
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["Action"])):
            continue
        if any(fnmatch.fnmatchcase(resource, resolve(r, names)) for r in as_list(statement["Resource"])):
            return True
    return False
