"""Manual approval (Environment=prod), rejection rollback, and a blue/green update that rolls back."""

from __future__ import annotations

import time

import pytest

from autoloop_cli import datagen, executions
from tests.e2e.conftest import boot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prod():
    yield from boot("autoloop-prod", {"Environment": "prod", "BlueGreenBakeSeconds": "4",
                                      "TerminationWaitSeconds": "1", "MonitoringSampleSize": "400"})


def deploys(local) -> list[dict]:
    sfn = local.client("stepfunctions")
    return list(executions.executions(sfn, local.outputs["DeployPipelineArn"]))


def follow_new_deploy(local, known: set[str], timeout: float = 120) -> dict:
    sfn, deadline = local.client("stepfunctions"), time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [e for e in deploys(local) if e["executionArn"] not in known]
        if new:
            known.add(new[0]["executionArn"])
            return executions.follow(sfn, new[0]["executionArn"], timeout=timeout)
        time.sleep(0.1)
    raise AssertionError("no DeployPipeline execution started")


def serving_version(local) -> int:
    config = local.client("sagemaker").describe_endpoint(
        EndpointName=f"{local.stack.name}-churn")["EndpointConfigName"]
    return int(config.split("-v")[-1].split("-")[0])


def test_prod_registers_pending_and_deploys_only_on_approval(prod):
    sm, known = prod.client("sagemaker"), set()
    run = prod.run(datagen.generate(1200, seed=21).to_csv(index=False).encode(), "incoming/churn/prod-1.csv")
    assert run.status == "SUCCEEDED"
    arn = run.output["model_package"]["arn"]
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    # The PendingManualApproval event is filtered out by the rule: nothing deploys.
    time.sleep(1.0)
    assert deploys(prod) == []
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    description = follow_new_deploy(prod, known)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert serving_version(prod) == 1

    # A second approved model, then a failed update: the rollback alarm fires during the bake.
    run = prod.run(datagen.generate(1200, seed=21).to_csv(index=False).encode(), "incoming/churn/prod-2.csv")
    second = run.output["model_package"]["arn"]
    cw = prod.client("cloudwatch")
    alarm = f"{prod.stack.name}-churn-5xx"
    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # raise the alarm once the update is under way
        if sm.describe_endpoint(EndpointName=f"{prod.stack.name}-churn")["EndpointStatus"] == "Updating":
            cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test: 5xx during the bake")
            break
        time.sleep(0.05)
    description = follow_new_deploy(prod, known)
    cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test over")
    assert description["status"] == "FAILED"
    assert description["error"] == "DeployEndpointFailed"
    assert "DeploymentRolledBack" in description["cause"]
    assert serving_version(prod) == 1, "the old model keeps serving after a rollback"
    prediction = prod.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=f"{prod.stack.name}-churn", ContentType="text/csv", Accept="text/csv",
        Body=b"12,70.5,2,3.4,41,month-to-month,card,north")["Body"].read()
    assert 0.0 <= float(prediction) <= 1.0

    # Rejecting a package that is not serving changes nothing; rejecting the serving one rolls
    # production back to the latest Approved package (here: the second one).
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    description = follow_new_deploy(prod, known)
    assert description["status"] == "SUCCEEDED"
    assert '"action": "update"' in description["output"] or '"action":"update"' in description["output"]
    assert serving_version(prod) == 2
