"""template.yaml: lint-clean, secure by default, and consistent with the handlers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoloop import config as settings_module
from tests.infra.template_utils import ROOT, TEMPLATE, resources, template

# Where AWS offers no narrower resource for an action. Each entry says why.
WILDCARD_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken": "the auth token API has no resource type",
    "cloudwatch:PutMetricData": "metrics have no ARN; limited by a cloudwatch:namespace condition",
    "sagemaker:ListModelPackages": "List* actions have no resource-level permissions",
    "sagemaker:ListEndpointConfigs": "as above",
    "sagemaker:ListModels": "as above",
    "sagemaker:ListMonitoringExecutions": "as above",
    "logs:CreateLogDelivery": "vended log delivery (Step Functions logging) supports only '*'",
    "logs:GetLogDelivery": "as above",
    "logs:UpdateLogDelivery": "as above",
    "logs:DeleteLogDelivery": "as above",
    "logs:ListLogDeliveries": "as above",
    "logs:PutResourcePolicy": "as above",
    "logs:DescribeResourcePolicies": "as above",
    "logs:DescribeLogGroups": "as above",
}
# Each function's handler settings class (its required variables must be in its environment).
FUNCTION_SETTINGS = {
    "StartPipelineFunction": settings_module.StartSettings,
    "ValidateInputFunction": settings_module.ValidateSettings,
    "LaunchJobFunction": settings_module.LaunchSettings,
    "JobCallbackFunction": settings_module.CallbackSettings,
    "QualityGateFunction": settings_module.GateSettings,
    "RegisterModelFunction": settings_module.RegisterSettings,
    "PlanDeploymentFunction": settings_module.PlanSettings,
    "DeployEndpointFunction": settings_module.EndpointSettings,
    "ScheduleMonitoringFunction": settings_module.MonitorScheduleSettings,
    "DriftHandlerFunction": settings_module.DriftSettings,
    "PlanBatchFunction": settings_module.BatchPlanSettings,
    "LaunchBatchJobFunction": settings_module.BatchLaunchSettings,
    "PublishBatchFunction": settings_module.BatchPublishSettings,
}


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed; run `make setup`"
    return found


def test_cfn_lint_is_clean():
    result = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes():
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [tool("sam"), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lambda_runtime_is_python312_for_every_function():
    globals_ = template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    for name, res in resources("AWS::Serverless::Function").items():
        assert res["Properties"].get("Runtime", "python3.12") == "python3.12", name
    for res in resources("AWS::Serverless::LayerVersion").values():
        assert res["Metadata"]["BuildMethod"] == "python3.12"


@pytest.mark.parametrize("bucket", sorted(resources("AWS::S3::Bucket")))
def test_buckets_are_encrypted_private_versioned_and_tls_only(bucket):
    props = resources()[bucket]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    policies = [
        r["Properties"]["PolicyDocument"] for r in resources("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    denies = [
        s for p in policies for s in p["Statement"]
        if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    ]
    assert denies, f"{bucket} allows plain HTTP"


def test_data_bucket_sends_events_to_eventbridge():
    props = resources()["DataBucket"]["Properties"]
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def _statements():
    """Every IAM Allow statement in the template, with where it is."""
    for name, res in resources().items():
        props = res.get("Properties", {})
        docs = []
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            docs = [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        for doc in docs:
            for statement in doc["Statement"]:
                if statement["Effect"] == "Allow":
                    yield name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions():
    for name, statement in _statements():
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"


def test_resource_star_only_where_aws_allows_nothing_narrower():
    for name, statement in _statements():
        if "*" in _as_list(statement["Resource"]):
            for action in _as_list(statement["Action"]):
                assert action in WILDCARD_RESOURCE_ALLOWED, f"{name}: {action} on Resource '*'"


def test_pass_role_is_limited_to_sagemaker():
    passes = [(n, s) for n, s in _statements() if "iam:PassRole" in _as_list(s["Action"])]
    assert passes
    for name, statement in passes:
        assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com", name


def test_every_function_has_its_own_log_group_with_retention():
    log_groups = resources("AWS::Logs::LogGroup")
    for name, res in resources("AWS::Serverless::Function").items():
        ref = res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert ref in log_groups, name
        assert log_groups[ref]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_state_machines_log_and_trace():
    for name, res in resources("AWS::Serverless::StateMachine").items():
        assert res["Properties"]["Tracing"]["Enabled"] is True, name
        assert res["Properties"]["Logging"]["Level"] in {"ALL", "ERROR"}, name


def test_handler_settings_are_satisfied_by_the_template_environment():
    global_env = set(template()["Globals"]["Function"]["Environment"]["Variables"])
    functions = resources("AWS::Serverless::Function")
    for name, cls in FUNCTION_SETTINGS.items():
        env = global_env | set(functions[name]["Properties"].get("Environment", {}).get("Variables", {}))
        required = {f.upper() for f, info in cls.model_fields.items() if info.is_required()}
        assert required <= env, f"{name} lacks {required - env}"


def test_every_function_folder_is_deployed_and_vice_versa():
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    functions = resources("AWS::Serverless::Function").values()
    code_uris = {res["Properties"]["CodeUri"].strip("/").split("/")[-1] for res in functions}
    assert folders == code_uris


def test_no_secrets_in_environment_variables():
    suspicious = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "ACCESS_KEY")
    env = dict(template()["Globals"]["Function"]["Environment"]["Variables"])
    for res in resources("AWS::Serverless::Function").values():
        env.update(res["Properties"].get("Environment", {}).get("Variables", {}))
    for var in env:
        allowed = var == "TASK_TOKEN_TABLE"  # a table name, not a token
        assert allowed or not any(s in var for s in suspicious), var


def test_the_batch_transform_schedule_is_a_parameter_that_can_be_changed_or_turned_off():
    params = template()["Parameters"]
    assert params["BatchTransformSchedule"]["Default"] == "cron(0 3 1 * ? *)"
    assert set(params["BatchTransformScheduleState"]["AllowedValues"]) == {"ENABLED", "DISABLED"}
    machine = resources("AWS::Serverless::StateMachine")["BatchTransform"]["Properties"]
    [schedule] = [e["Properties"] for e in machine["Events"].values() if e["Type"] == "ScheduleV2"]
    assert schedule["ScheduleExpression"] == {"Ref": "BatchTransformSchedule"}
    assert schedule["State"] == {"Ref": "BatchTransformScheduleState"}
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
