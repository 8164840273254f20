"""template.yaml: lint-clean, secure by default, and consistent with the handlers."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from autoloop import batch, config
from autoloop import config as settings_module
from tests.infra import iam_audit
from tests.infra.template_utils import ROOT, TEMPLATE, resources, template
from tests.support import tool

# Where AWS offers no narrower resource for an action. Each entry says why.
WILDCARD_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken": "the auth token API has no resource type",
    "cloudwatch:PutMetricData": "metrics have no ARN; limited by a cloudwatch:namespace condition",
    "sagemaker:ListModelPackages": "List* actions have no resource-level permissions",
    "sagemaker:ListEndpointConfigs": "as above",
    "sagemaker:ListModels": "as above",
    "sagemaker:ListMonitoringExecutions": "as above",
    "sagemaker:ListEndpoints": "as above (Teardown: finds this stack's endpoints by name and tag)",
    "sagemaker:ListMonitoringSchedules": "as above (Teardown)",
    "scheduler:ListSchedules": "ListSchedules has no resource type (Teardown: finds <stack>-* by NamePrefix)",
    "sagemaker:ListProcessingJobs": "as above (Teardown: this stack's running jobs, by tag)",
    "sagemaker:ListTrainingJobs": "as above (Teardown)",
    "sagemaker:ListTransformJobs": "as above (Teardown)",
    "logs:CreateLogDelivery": "vended log delivery (Step Functions logging) supports only '*'",
    "logs:GetLogDelivery": "as above",
    "logs:UpdateLogDelivery": "as above",
    "logs:DeleteLogDelivery": "as above",
    "logs:ListLogDeliveries": "as above",
    "logs:PutResourcePolicy": "as above",
    "logs:DescribeResourcePolicies": "as above",
    "logs:DescribeLogGroups": "as above",
    # Only with SubnetIds set (Fn::If HasVpc), on the SageMaker execution role.
    "ec2:CreateNetworkInterface": "SageMaker creates the jobs' ENIs in SubnetIds; their ids are not known before",
    "ec2:CreateNetworkInterfacePermission": "as above",
    "ec2:DeleteNetworkInterface": "as above",
    "ec2:DeleteNetworkInterfacePermission": "as above",
    "ec2:DescribeNetworkInterfaces": "EC2 Describe* actions have no resource-level permissions",
    "ec2:DescribeVpcs": "as above",
    "ec2:DescribeDhcpOptions": "as above",
    "ec2:DescribeSubnets": "as above",
    "ec2:DescribeSecurityGroups": "as above",
}
# Each function's handler settings class (its required variables must be in its environment).
FUNCTION_SETTINGS = {
    "StartPipelineFunction": settings_module.StartSettings,
    "ValidateInputFunction": settings_module.ValidateSettings,
    "LaunchJobFunction": settings_module.LaunchSettings,
    "JobCallbackFunction": settings_module.CallbackSettings,
    "QualityGateFunction": settings_module.GateSettings,
    "RegisterModelFunction": settings_module.RegisterSettings,
    "StartDeploymentFunction": settings_module.StartDeploySettings,
    "PlanDeploymentFunction": settings_module.PlanSettings,
    "DeployEndpointFunction": settings_module.EndpointSettings,
    "ScheduleMonitoringFunction": settings_module.MonitorScheduleSettings,
    "DriftHandlerFunction": settings_module.DriftSettings,
    "PlanBatchFunction": settings_module.BatchPlanSettings,
    "LaunchBatchJobFunction": settings_module.BatchLaunchSettings,
    "PublishBatchFunction": settings_module.BatchPublishSettings,
}


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


@pytest.mark.parametrize("bucket", sorted(resources("AWS::S3::Bucket")))
def test_buckets_use_the_kms_key_with_bucket_keys_when_one_is_given(bucket):
    [rule] = resources()[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    condition, with_key, without = rule["Fn::If"]
    assert condition == "HasKmsKey"
    assert with_key == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "KmsKeyArn"}},
        "BucketKeyEnabled": True,
    }
    assert without == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def test_the_topic_uses_the_kms_key_when_one_is_given():
    props = resources()["NotificationTopic"]["Properties"]
    assert props["KmsMasterKeyId"] == {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, "alias/aws/sns"]}


def test_the_security_and_spot_parameters_reach_the_functions_that_launch_sagemaker_work():
    wanted = {"KMS_KEY_ARN": {"Ref": "KmsKeyArn"}, "SUBNET_IDS": {"Ref": "SubnetIds"},
              "SECURITY_GROUP_IDS": {"Ref": "SecurityGroupIds"}}
    functions = resources("AWS::Serverless::Function")
    for name in ("LaunchJobFunction", "DeployEndpointFunction", "ScheduleMonitoringFunction", "PlanBatchFunction",
                 "LaunchBatchJobFunction"):
        env = functions[name]["Properties"]["Environment"]["Variables"]
        assert {k: env.get(k) for k in wanted} == wanted, name
    env = functions["LaunchJobFunction"]["Properties"]["Environment"]["Variables"]
    assert env["USE_SPOT_TRAINING"] == {"Ref": "UseSpotTraining"}
    assert env["SPOT_MAX_WAIT_SECONDS"] == {"Ref": "SpotMaxWaitSeconds"}


def test_data_bucket_sends_events_to_eventbridge():
    props = resources()["DataBucket"]["Properties"]
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_no_wildcard_actions():
    for statement in iam_audit.statements():
        for action in statement.actions:
            assert "*" not in action, f"{statement.owner}: wildcard action {action}"


def test_resource_star_only_where_aws_allows_nothing_narrower(record_property):
    """Prints the audit: statements, actions, and each action on Resource "*" with its reason."""
    all_statements = list(iam_audit.statements())
    star: dict[str, set[str]] = {}
    for statement in all_statements:
        if "*" in statement.resources:
            for action in statement.actions:
                assert action in WILDCARD_RESOURCE_ALLOWED, f"{statement.owner}: {action} on Resource '*'"
                where = statement.owner + (" (conditional)" if statement.conditional else "")
                star.setdefault(action, set()).add(where)
    actions = {a for s in all_statements for a in s.actions}
    owners = {s.owner for s in all_statements}
    lines = [f"IAM audit: {len(all_statements)} Allow statements in {len(owners)} roles/functions/state machines, "
             f"{len(actions)} distinct actions, {len(star)} on Resource '*':"]
    reason = ""
    for action in sorted(star, key=list(WILDCARD_RESOURCE_ALLOWED).index):
        text = WILDCARD_RESOURCE_ALLOWED[action]
        shown = f"{reason} {text.removeprefix('as above').strip()}".strip() if text.startswith("as above") else text
        reason = shown if not text.startswith("as above") else reason
        lines.append(f"  {action:40} {shown}  [{', '.join(sorted(star[action]))}]")
    record_property("figures", "\n".join(lines))  # printed at the end of the run
    unused = sorted(set(WILDCARD_RESOURCE_ALLOWED) - set(star))
    assert not unused, f"WILDCARD_RESOURCE_ALLOWED lists actions no statement has: {unused}"


def test_pass_role_is_limited_to_one_service_and_its_role():
    """SageMaker's execution role goes only to SageMaker; the schedules' roles only to Scheduler."""
    passes = [s for s in iam_audit.statements() if "iam:PassRole" in s.actions]
    assert passes
    expected = {"SageMakerExecutionRole": "sagemaker.amazonaws.com",
                "MonitoringSchedulerRole": "scheduler.amazonaws.com",
                "BatchSchedulerRole": "scheduler.amazonaws.com"}
    for statement in passes:
        role = statement.resources[0]["Fn::GetAtt"][0] if isinstance(statement.resources[0], dict) else None
        assert role in expected, statement
        assert statement.condition["StringEquals"]["iam:PassedToService"] == expected[role], statement


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


def test_the_batch_transform_schedule_is_a_parameter_that_can_be_changed_or_turned_off():
    """Each model's schedule is put by the deploy step (autoloop.deploy_steps.put_batch_schedule)
    with the expression and state of these parameters, which reach it through its environment."""
    params = template()["Parameters"]
    assert params["BatchTransformSchedule"]["Default"] == config.BATCH_MONTHLY
    assert set(params["BatchTransformScheduleState"]["AllowedValues"]) == set(batch.SCHEDULE_STATES)
    env = resources("AWS::Serverless::Function")["DeployEndpointFunction"]["Properties"]["Environment"]["Variables"]
    assert env["BATCH_SCHEDULE"] == {"Ref": "BatchTransformSchedule"}
    assert env["BATCH_SCHEDULE_STATE"] == {"Ref": "BatchTransformScheduleState"}
    assert env["BATCH_TRANSFORM_ARN"] == {"Ref": "BatchTransform"}
    assert "Events" not in resources("AWS::Serverless::StateMachine")["BatchTransform"]["Properties"]


def published_model_names() -> set[str]:
    """The models of the repository: every config ``autoloop publish`` uploads."""
    from autoloop_cli.publish import model_configs

    return set(model_configs())


def test_the_template_names_no_model():
    """Models are data: a model's package group, alarms, schedules and endpoint are created by the
    pipelines, so neither the template, nor what SAM makes of it (state machine definitions
    inlined), mentions a model by name."""
    from localaws.cloudformation.stack import translate

    texts = {"template.yaml": (ROOT / "template.yaml").read_text(),
             "the translated template": json.dumps(translate(ROOT / "template.yaml", project_root=ROOT))}
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "statemachine").glob("*.json")})
    for model in published_model_names():
        word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(model)}(?![A-Za-z0-9])", re.IGNORECASE)
        for where, text in texts.items():
            found = word.search(text)
            context = text[max(0, found.start() - 60):found.end() + 60] if found else ""
            assert found is None, f"{where} names the model {model!r}: ...{context}..."


# ----------------------------------------------------------------------------- operations dashboard
def dashboard() -> dict:
    """The dashboard body with its ${...} substitutions filled with placeholders."""
    import json
    import re

    body = resources()["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{([\w:.]+)\}", lambda m: f"<{m.group(1)}>", body))


def emitted_metrics() -> set[str]:
    import re

    text = "\n".join(p.read_text() for p in (ROOT / "src" / "autoloop").glob("*.py"))
    names = set(re.findall(r'add_metric\(name="(\w+)"', text))
    names |= {n for pair in re.findall(r'add_metric\(name="(\w+)" if \w+ else "(\w+)"', text) for n in pair}
    return names


def test_the_dashboard_shows_runs_of_every_state_machine_and_only_metrics_the_code_emits():
    widgets = dashboard()["widgets"]
    rows = [row for w in widgets for row in w["properties"]["metrics"]]
    plain = [[x for x in row if isinstance(x, str)] for row in rows]
    machines = {row[3] for row in plain if row and row[0] == "AWS/States"}
    assert machines == {f"<{name}>" for name in resources("AWS::Serverless::StateMachine")}
    ours = {row[1] for row in plain if row and row[0] == "Autoloop"}
    assert ours and ours <= emitted_metrics(), f"not emitted by src/autoloop: {ours - emitted_metrics()}"
    assert {"DriftRetrains", "DriftChecksFailed", "Deployments"} <= ours
    searches = [x["expression"] for row in rows for x in row if isinstance(x, dict) and "expression" in x]
    assert any("Invocation5XXErrors" in s for s in searches) and any("feature_baseline_drift" in s for s in searches)
    assert all("<AWS::StackName>" in s for s in searches)  # scoped to this stack's resources


def test_validate_input_is_sized_for_the_largest_file_it_accepts():
    """MemorySize and Timeout of ValidateInput are the ones autoloop.config's arithmetic uses,
    and that arithmetic leaves at least 1.5x margin for the slowest measured rate."""
    from autoloop import config

    props = resources()["ValidateInputFunction"]["Properties"]
    assert props["MemorySize"] == config.VALIDATE_MEMORY_MB >= 1769  # one full vCPU from 1,769 MB
    assert props["Timeout"] == config.VALIDATE_TIMEOUT_SECONDS <= 900
    cpu_seconds = config.MAX_VALIDATED_BYTES / 1e6 / (config.VALIDATION_MB_PER_CPU_SECOND * config.VALIDATE_VCPUS)
    assert 1.5 * (cpu_seconds + config.VALIDATE_IO_SECONDS) <= config.VALIDATE_TIMEOUT_SECONDS
