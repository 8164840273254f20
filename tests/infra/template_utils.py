"""Read template.yaml (with its short-form intrinsics) and the ASL files it references."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


@cache
def template() -> dict[str, Any]:
    parsed, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(parsed))  # plain dicts


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    res = template()["Resources"]
    return {k: v for k, v in res.items() if kind is None or v["Type"] == kind}


def state_machines() -> dict[str, dict[str, Any]]:
    return resources("AWS::Serverless::StateMachine")


def asl_with_dummies(logical_id: str) -> tuple[str, dict[str, Any]]:
    """The ASL text with every substitution replaced by a plausible dummy value."""
    props = state_machines()[logical_id]["Properties"]
    text = (ROOT / props["DefinitionUri"]).read_text()

    def dummy(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.endswith("Seconds"):
            return "60"
        if name.endswith("TopicArn"):
            return f"arn:aws:sns:us-east-1:123456789012:{name}"
        return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"

    substituted = PLACEHOLDER.sub(dummy, text)
    return substituted, json.loads(substituted)
