"""ServerlessMemoryMB > 0: train, auto-approve (dev), deploy a serverless endpoint that serves,
with no data capture and no monitoring schedule, and a notification that says so."""

from __future__ import annotations

import json

import pytest

from autoloop_cli import datagen, executions
from tests.e2e.conftest import boot
from tests.support import find_execution

pytestmark = pytest.mark.e2e

DEPLOY = ["PlanDeployment", "HasWork", "DeployEndpoint", "CleanupOldVersions", "MonitoringBackend", "Baseline",
          "NeedsCalibration", "HasDataCapture", "NoMonitoringSchedule", "NotifyDeployed", "Deployed"]


@pytest.fixture(scope="module")
def serverless():
    yield from boot("autoloop-sls", {"ServerlessMemoryMB": "2048"})


def test_a_serverless_stack_deploys_without_capture_or_a_schedule_and_says_so(serverless):
    local = serverless
    run = local.run(datagen.generate(1200, seed=5).to_csv(index=False).encode(), "incoming/churn/sls.csv")
    assert run.status == "SUCCEEDED", run.description.get("cause")
    sfn = local.client("stepfunctions")
    arn = find_execution(local.outputs["DeployPipelineArn"], lambda e: True, 60, sfn)
    description = executions.follow(sfn, arn, timeout=180)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert [s.name for s in executions.path(executions.history(sfn, arn))] == DEPLOY

    sm, endpoint = local.client("sagemaker"), f"{local.stack.name}-churn"
    config = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(
        EndpointName=endpoint)["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] == 2048
    assert not config.get("DataCaptureConfig")
    assert not sm.list_monitoring_schedules(NameContains=endpoint)["MonitoringScheduleSummaries"]
    body = datagen.generate(3, seed=6).drop(columns=["churned"]).to_csv(index=False, header=False)
    answer = local.client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                               Body=body.encode())
    assert len(json.loads(answer["Body"].read())["predictions"]) == 3
    [note] = [n for n in local.notifications() if n.get("Subject") == "Autoloop: model deployed"]
    assert "no data capture" in note["Message"], note
    assert json.loads(description["output"])["monitoring"]["schedule_name"].startswith("none")
