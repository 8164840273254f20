"""Least privilege, checked: each function and state machine holds exactly the IAM actions
its code (or its ASL) needs. See tests/infra/iam_audit.py for how both sides are found."""

from __future__ import annotations

import pytest

from tests.infra import iam_audit
from tests.infra.template_utils import resources, state_machines, template

# Calls the static walk reaches but the function never makes: a shared helper dispatches on
# the job kind (tasks.describe_job, tasks.CREATE_JOB), and the callers' kinds are fixed.
DISPATCH_NOT_REACHED = {
    ("LaunchJobFunction", "sagemaker:CreateTransformJob"):
        "launch_job's steps (STEP_KIND) are processing or training",
    ("LaunchJobFunction", "sagemaker:DescribeTransformJob"): "as above",
    ("ReconcileJobFunction", "sagemaker:DescribeTransformJob"): "as above (reconcile_job uses STEP_KIND)",
    ("PlanBatchFunction", "sagemaker:DescribeTrainingJob"):
        "a month's jobs (batch.BATCH_STEP_KIND) are processing or transform",
    ("LaunchBatchJobFunction", "sagemaker:CreateTrainingJob"): "as above",
    ("LaunchBatchJobFunction", "sagemaker:DescribeTrainingJob"): "as above",
    ("ReconcileBatchJobFunction", "sagemaker:DescribeTrainingJob"): "as above",
}
KMS_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"}
FUNCTIONS = resources("AWS::Serverless::Function")


def folder(function: str) -> str:
    return str(FUNCTIONS[function]["Properties"]["CodeUri"]).strip("/").split("/")[-1]


def difference(owner: str, granted: set[str], needed: dict[str, set[str]]) -> str:
    missing = sorted(set(needed) - granted)
    extra = sorted(granted - set(needed))
    lines = [f"{owner}: the template and the code disagree"]
    lines += [f"  missing {a}: needed by {', '.join(sorted(needed[a]))}" for a in missing]
    lines += [f"  extra   {a}: granted, but nothing calls it" for a in extra]
    return "\n".join(lines)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_holds_exactly_the_actions_its_code_calls(function: str) -> None:
    need = iam_audit.needed_by_code(folder(function))
    needed = {a: set(w) for a, w in need.actions.items()}
    for (owner, action), _reason in DISPATCH_NOT_REACHED.items():
        if owner == function:
            assert action in needed, f"stale DISPATCH_NOT_REACHED entry {(owner, action)}"
            del needed[action]
    for action, calls in need.kms.items():  # only with KmsKeyArn set (checked below)
        needed.setdefault(action, set()).update(f"{c} with KmsKeyArn" for c in calls)
    granted = iam_audit.granted(function)
    assert granted == set(needed), difference(function, granted, needed)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_key_use_is_granted_only_with_a_key_and_only_on_that_key(function: str) -> None:
    for statement in iam_audit.statements():
        if statement.owner == function and set(statement.actions) & KMS_ACTIONS:
            assert statement.conditional, f"{function}: {statement.actions} outside an Fn::If [HasKmsKey, ...]"
            assert statement.resources == ({"Ref": "KmsKeyArn"},), statement


@pytest.mark.parametrize("machine", sorted(state_machines()))
def test_each_state_machine_holds_exactly_what_its_asl_integrations_need(machine: str) -> None:
    props = state_machines()[machine]["Properties"]
    needed, invoked = iam_audit.needed_by_state_machine(machine)
    if props.get("Logging"):
        for action in iam_audit.SFN_LOG_DELIVERY:
            needed.setdefault(action, set()).add("Logging (CloudWatch Logs delivery)")
    if "sns:Publish" in needed:
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            needed.setdefault(action, set()).add("sns:publish to the topic, with KmsKeyArn")
    granted = iam_audit.granted(machine)
    assert granted == set(needed), difference(machine, granted, needed)

    substitutions = props["DefinitionSubstitutions"]
    invoked_functions = {substitutions[name]["Fn::GetAtt"][0] for name in invoked}
    allowed = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in props["Policies"] if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    }
    assert allowed == invoked_functions, (
        f"{machine}: may invoke {sorted(allowed - invoked_functions)} without invoking them; "
        f"invokes {sorted(invoked_functions - allowed)} without the permission"
    )


def test_the_key_and_vpc_statements_are_conditional_on_their_parameters() -> None:
    conditions = template()["Conditions"]
    assert conditions["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    assert conditions["HasVpc"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SubnetIds"}, ""]}]}
    ec2 = [s for s in iam_audit.statements() if any(a.startswith("ec2:") for a in s.actions)]
    assert ec2 and all(s.conditional and s.owner == "SageMakerExecutionRole" for s in ec2)
