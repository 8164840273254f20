"""Manual approval (Environment=prod), rejection rollback, and a blue/green update that rolls back."""

from __future__ import annotations

import json

import pytest

from autoloop_cli import datagen, executions
from tests.e2e.conftest import boot
from tests.support import find_execution, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prod():
    # The second upload repeats the first one's rows: ties must promote here (approvals, not the gate).
    yield from boot("autoloop-prod", {"Environment": "prod", "BlueGreenBakeSeconds": "4",
                                      "TerminationWaitSeconds": "1", "MonitoringSampleSize": "400"},
                    churn_config={"promote_ties": True})


def deploys(local) -> list[dict]:
    sfn = local.client("stepfunctions")
    return list(executions.executions(sfn, local.outputs["DeployPipelineArn"]))


def follow_new_deploy(local, known: set[str], timeout: float = 120) -> dict:
    sfn = local.client("stepfunctions")
    arn = find_execution(local.outputs["DeployPipelineArn"], lambda e: e["executionArn"] not in known, 60, sfn)
    known.add(arn)
    return executions.follow(sfn, arn, timeout=timeout)


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
    # The PendingManualApproval event is filtered out by the rule: nothing deploys. The
    # approval's event comes after it, and its deployment is the only one there is.
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    description = follow_new_deploy(prod, known)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert [e["executionArn"] for e in deploys(prod)] == [description["executionArn"]]
    assert json.loads(description["input"])["detail"]["ModelApprovalStatus"] == "Approved"
    assert serving_version(prod) == 1

    # A second approved model, then a failed update: the rollback alarm fires during the bake.
    run = prod.run(datagen.generate(1200, seed=21).to_csv(index=False).encode(), "incoming/churn/prod-2.csv")
    second = run.output["model_package"]["arn"]
    cw = prod.client("cloudwatch")
    alarm = f"{prod.stack.name}-churn-5xx"
    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved")
    # raise the alarm once the update is under way
    wait_until(lambda: sm.describe_endpoint(EndpointName=f"{prod.stack.name}-churn")["EndpointStatus"] == "Updating",
               60, "the endpoint update started")
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test: 5xx during the bake")
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
