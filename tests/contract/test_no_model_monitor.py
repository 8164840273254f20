"""A stack deployed with defaults (``MonitoringBackend=autoloop``) calls no Model Monitor API.

SageMaker Model Monitor is closed to new customers: on an account that never used it, any of
its APIs may be refused. Three walks prove the default stack never needs one:

- the code: every place in the Lambda code (``src/autoloop``, ``functions/``) and the CLI
  (``autoloop_cli``) that names a Model Monitor operation of boto3, as a method or as a
  string (paginators, ``getattr``), is one of the reviewed places below, each reached only with
  ``MonitoringBackend=model-monitor``;
- the state machines and the template: no Model Monitor task, resource or IAM grant outside
  the ``UsesModelMonitor`` condition, so a default stack is not even allowed to call one;
- the run: ``tests/e2e/test_loop.py`` records every request of the demo's whole loop and the
  stack's deletion with the default backend and asserts none is a Model Monitor operation
  (:func:`model_monitor_operations` is what it checks against).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from tests.infra.template_utils import asl_with_dummies, state_machines, template

ROOT = Path(__file__).resolve().parents[2]
CODE = ("src/autoloop", "functions", "autoloop_cli")
MODEL_MONITOR = re.compile(
    r"Monitoring(Schedule|Execution|Alert)|(DataQuality|ModelQuality|ModelBias|ModelExplainability)JobDefinition")
MODEL_MONITOR_RESOURCES = {"AWS::SageMaker::MonitoringSchedule", "AWS::SageMaker::DataQualityJobDefinition",
                           "AWS::SageMaker::ModelQualityJobDefinition", "AWS::SageMaker::ModelBiasJobDefinition",
                           "AWS::SageMaker::ModelExplainabilityJobDefinition"}

#: Every function that names a Model Monitor operation, and why a default stack never runs it.
REVIEWED = {
    ("src/autoloop/deploy_steps.py", "_schedule_model_monitor"):
        "schedule_monitoring calls it only when monitoring_backend is not autoloop",
    ("src/autoloop/drift_steps.py", "_latest_report"):
        "the drift-alarm path: DriftAlarmRule exists only under UsesModelMonitor",
    ("src/autoloop/teardown.py", "_delete_model_monitor_schedules"):
        "teardown calls it only when monitoring_backend is not autoloop",
    ("src/autoloop/teardown.py", "_wait_model_monitor_schedules_gone"):
        "called with the schedules the function above deleted: none with the autoloop backend",
    ("autoloop_cli/report/collect.py", "_model_monitor_drift"):
        "the report calls it only when the stack's MonitoringBackend output is not autoloop",
}


@cache
def model_monitor_operations() -> dict[str, str]:
    """boto3 method -> API operation, for every Model Monitor operation of SageMaker's model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {xform_name(op): op for op in model.operation_names if MODEL_MONITOR.search(op)}


def _uses(path: Path) -> dict[str, set[str]]:
    """Enclosing function (dotted) -> the Model Monitor operations it names."""
    names = model_monitor_operations()
    known = set(names) | set(names.values())
    found: dict[str, set[str]] = {}

    def visit(node: ast.AST, scope: list[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = [*scope, node.name]
        name = None
        if isinstance(node, ast.Attribute) and node.attr in names:
            name = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            name = node.value
        if name:
            found.setdefault(".".join(scope) or "<module>", set()).add(names.get(name, name))
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(ast.parse(path.read_text(), str(path)), [])
    return found


def code_uses() -> dict[tuple[str, str], set[str]]:
    uses = {}
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for function, operations in _uses(path).items():
                uses[(str(path.relative_to(ROOT)), function)] = operations
    return uses


def test_the_operations_are_the_model_monitor_api():
    operations = set(model_monitor_operations().values())
    assert {"CreateMonitoringSchedule", "ListMonitoringExecutions", "CreateDataQualityJobDefinition",
            "DescribeModelQualityJobDefinition", "ListMonitoringAlerts"} <= operations
    assert not operations & {"CreateProcessingJob", "DescribeProcessingJob", "CreateEndpoint", "CreateSchedule"}


def test_the_walk_finds_a_call_a_string_and_a_method_reference(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from functools import partial\n"
                      "def a(sm):\n    sm.create_monitoring_schedule(Name='x')\n"
                      "def b(sm):\n    return sm.get_paginator('list_monitoring_executions')\n"
                      "class C:\n    def c(self, sm):\n        return partial(sm.delete_monitoring_schedule)\n"
                      "def d(sm):\n    return sm.create_processing_job()\n")
    assert _uses(sample) == {"a": {"CreateMonitoringSchedule"}, "b": {"ListMonitoringExecutions"},
                             "C.c": {"DeleteMonitoringSchedule"}}


def test_only_the_reviewed_model_monitor_paths_name_a_model_monitor_operation():
    uses = code_uses()
    unreviewed = {f"{path}:{function} names {sorted(ops)}" for (path, function), ops in uses.items()
                  if (path, function) not in REVIEWED}
    assert not unreviewed, ("Model Monitor is closed to new customers: call it only where "
                            "MonitoringBackend=model-monitor, and add the place to REVIEWED with why")
    assert set(uses) == set(REVIEWED), "a reviewed place no longer names a Model Monitor operation: remove it"


def test_no_state_machine_calls_model_monitor():
    for logical_id in state_machines():
        text, _ = asl_with_dummies(logical_id)
        resources = re.findall(r'"Resource"\s*:\s*"([^"]+)"', text)
        assert resources, logical_id
        found = [r for r in resources if re.search(MODEL_MONITOR.pattern, r, re.IGNORECASE)]  # aws-sdk:sagemaker:...
        assert not found, f"{logical_id} calls {found}"


def _default_stack(node: Any) -> Any:
    """The template as deployed with defaults: ``UsesModelMonitor`` false (other conditions
    are kept both ways), resources under that condition dropped."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] == "UsesModelMonitor":
            return _default_stack(node["Fn::If"][2])
        return {k: _default_stack(v) for k, v in node.items()
                if not (isinstance(v, dict) and v.get("Condition") == "UsesModelMonitor")}
    if isinstance(node, list):
        return [_default_stack(v) for v in node]
    return node


def _actions(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = node.get("Action") if "Effect" in node else None
        listed = [own] if isinstance(own, str) else list(own or [])
        return listed + [a for v in node.values() for a in _actions(v)]
    if isinstance(node, list):
        return [a for v in node for a in _actions(v)]
    return []


def test_a_default_stack_has_no_model_monitor_resource_and_may_call_no_model_monitor_api():
    assert template()["Parameters"]["MonitoringBackend"]["Default"] == "autoloop"
    resources = _default_stack(template()["Resources"])
    kinds = {r["Type"] for r in resources.values()}
    assert not kinds & MODEL_MONITOR_RESOURCES
    granted = [a for a in _actions(resources) if a.startswith("sagemaker:") and MODEL_MONITOR.search(a)]
    assert not granted, f"granted outside UsesModelMonitor: {granted}"
    # ... and the walk is not vacuous: with model-monitor, they are granted.
    every = [a for a in _actions(template()["Resources"]) if a.startswith("sagemaker:") and MODEL_MONITOR.search(a)]
    assert {"sagemaker:CreateMonitoringSchedule", "sagemaker:DeleteMonitoringSchedule",
            "sagemaker:ListMonitoringExecutions"} <= set(every)
    assert "ModelMonitorExecutionRule" not in resources and "DriftAlarmRule" not in resources
