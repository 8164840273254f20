"""The stack name: lower-case and at most ``naming.MAX_STACK_NAME`` characters, or refused.

SageMaker lower-cases the names in its ARNs, while IAM matches this stack's ``<stack>-*``
resources case-sensitively: with a capital letter in the stack name, every SageMaker
permission would be denied. And the endpoint ``<stack>-<model>`` has at most 63 characters.
CloudFormation cannot test ``AWS::StackName`` itself (rules have no pattern function), so the
template takes the name again as the parameter ``StackName``, which has a pattern and a
length, and its rule ``StackNameIsLowerCase`` requires the two to be equal. The local AWS
checks parameters and rules as CloudFormation does; these tests use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from autoloop import naming
from localaws.cloudformation import stack as localstack
from tests.infra.template_utils import TEMPLATE, template

LONGEST = "autoloop-" + "s" * (naming.MAX_STACK_NAME - len("autoloop-"))


def test_the_parameter_and_the_rule_encode_the_limits():
    parameter = template()["Parameters"]["StackName"]
    assert int(parameter["MaxLength"]) == naming.MAX_STACK_NAME
    assert "Default" not in parameter  # a default could only be some other stack's name
    [assertion] = template()["Rules"]["StackNameIsLowerCase"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "StackName"}, {"Ref": "AWS::StackName"}]}
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("autoloop-dev") and pattern.fullmatch(LONGEST)
    for bad in ("Autoloop-Dev", "autoloopDev", "1autoloop", "autoloop_dev"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize(("stack", "parameters", "refusal"), [
    ("Autoloop-Dev", None, "lower-case letters, digits and hyphens"),
    (LONGEST + "x", None, "longer than 38"),
    ("autoloop-dev", {"StackName": "autoloop-prod"}, "rule StackNameIsLowerCase refuses"),
], ids=["capitals", "too-long", "not-this-stack"])
def test_a_stack_name_that_would_break_sagemaker_names_is_refused(stack, parameters, refusal):
    with pytest.raises(localstack.DeployError, match=refusal):
        localstack.translate(TEMPLATE, stack, parameters)


def test_samconfig_passes_each_stack_its_own_name():
    text = (TEMPLATE.parent / "samconfig.toml").read_text()
    for section in re.split(r"\n(?=\[)", text):
        stack = re.search(r'^stack_name = "([^"]+)"', section, re.M)
        overrides = re.search(r'^parameter_overrides = "([^"]+)"', section, re.M)
        if stack and overrides:
            assert f"StackName={stack.group(1)}" in overrides.group(1).split(), section


# --------------------------------------------------------------------------- names at the longest stack name
# The template gives no SageMaker resource a name: per-model resources (package groups, alarms,
# schedules) are created by the pipelines, and tests/contract/test_request_patterns.py checks their
# requests at the longest names.
# Limits stated only in prose: the schema's description ("between 1 and 255 characters") and
# PutDashboard's reference ("can contain only alphanumerics, dash (-), and underscore (_)").
DOCUMENTED = {("AWS::CloudWatch::Dashboard", "DashboardName"): (255, r"^[A-Za-z0-9_-]+$")}


def _limits(kind: str, prop: str) -> tuple[int, Callable[[str], bool]]:
    """(maximum length, pattern check) of a resource's name property."""
    if (kind, prop) in DOCUMENTED:
        limit, documented = DOCUMENTED[kind, prop]
        return limit, lambda name: bool(re.fullmatch(documented, name))
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema["properties"][prop]
    assert "maxLength" in schema, f"no length limit known for {kind}.{prop}: add it to DOCUMENTED"
    pattern = schema.get("pattern")  # a JSON Schema pattern: it matches anywhere unless anchored
    return int(schema["maxLength"]), lambda name: pattern is None or bool(re.search(pattern, name))


def _named(node: Any, path: str) -> list[tuple[str, str]]:
    """(property path, Fn::Sub text) of every name property built from the stack name."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str) \
                    and "${AWS::StackName}" in value["Fn::Sub"] and key.endswith("Name"):
                found.append((f"{path}.{key}", value["Fn::Sub"]))
            else:
                found += _named(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _named(item, f"{path}[{index}]")
    return found


def test_every_name_the_template_derives_from_the_stack_name_fits_at_the_longest_name():
    cfn = localstack.translate(TEMPLATE, LONGEST)
    checked: set[str] = set()
    for logical_id, resource in cfn["Resources"].items():
        for path, text in _named(resource.get("Properties", {}), logical_id):
            prop = path.split(".")[1]
            if path.count(".") != 1:
                continue  # nested (an alarm dimension, a policy): not a resource name
            name = text.replace("${AWS::StackName}", LONGEST)
            assert "${" not in name, (path, text)
            limit, matches = _limits(resource["Type"], prop)
            assert len(name) <= limit, f"{path} = {name!r}: {len(name)} > {limit}"
            assert matches(name), f"{path} = {name!r} does not match its pattern"
            checked.add(resource["Type"])
    # the state machines, the failed-invocation alarm, the dashboard, log groups
    assert checked >= {"AWS::StepFunctions::StateMachine", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard",
                       "AWS::Logs::LogGroup"}, checked
