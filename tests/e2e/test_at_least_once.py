"""The whole loop with at-least-once delivery, as AWS promises it: every event twice, some out
of order, and Lambda invocations running concurrently.

The demo's loop (train, register and approve, deploy, traffic, drift, retrain, blue/green
update, the monthly batch transform) runs with the local EventBridge delivering every event
it routes twice (the copy after later events) and holding a seeded quarter back behind later
events, while the local Lambda runtime runs invocations concurrently. It must end as without
duplicates: each approval deployed once, no execution failed, every training slot given back,
no task token left waiting, one retrain for the drift report.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest

from autoloop_cli import executions
from autoloop_cli.console import Console
from autoloop_cli.demo import lifecycle as demo
from localaws import server
from localaws.awslambda import runtime as lambda_runtime
from localaws.events import delivery as eventbridge

pytestmark = pytest.mark.e2e

SEED = 15


@pytest.fixture(scope="module")
def loop() -> Any:
    started = server.start

    def start_with_at_least_once(*args: Any, **kwargs: Any) -> Any:
        running = started(*args, **kwargs)  # a start resets the extensions: set it afterwards
        eventbridge.at_least_once(1.0, delay=0.25, seed=SEED)
        return running

    out = io.StringIO()
    patch = pytest.MonkeyPatch()
    patch.setattr(server, "start", start_with_at_least_once)
    lambda_runtime.reset_invocations()
    try:
        result = demo.run(rows=1200, seed=7, timeout=240, console=Console(stages=9, out=out), keep_server=True)
        eventbridge.drain(60)
        yield result, out.getvalue(), eventbridge.held_stats(), eventbridge.deliveries()
    finally:
        patch.undo()
        running = server.current()
        if running is not None:
            running.stop()


def physical(logical: str) -> str:
    from localaws.clients import client

    pages = client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=demo.STACK)
    return next(str(r["PhysicalResourceId"]) for page in pages for r in page["StackResourceSummaries"]
                if r.get("LogicalResourceId") == logical)


def test_duplicates_and_reordering_really_happened(loop, record_property):
    result, log, stats, deliveries = loop
    assert stats["duplicated"] > 0 and stats["delayed"] > 0 and stats["held"] == 0
    copies = Counter(d["kind"] for d in deliveries if d["duplicate"])
    assert copies["lambda"] > 0
    start_deploy = physical("StartDeploymentFunction")
    invoked = lambda_runtime.invocations()
    assert invoked.get(start_deploy, 0) >= 4, invoked  # two approvals, each event twice (at least)
    record_property("figures", f"at-least-once loop: {len(deliveries)} deliveries, {stats['duplicated']} duplicated, "
                               f"{stats['delayed']} delayed behind later events (seed {SEED}); "
                               f"{sum(invoked.values())} Lambda invocations, concurrent")


def test_the_loop_succeeds_with_one_deployment_per_approval(loop):
    result, log, _, _ = loop
    assert result.status == "SUCCEEDED", log[-3000:]
    assert [r.name for r in result.runs][:4] == ["TrainingPipeline", "DeployPipeline", "TrainingPipeline (drift)",
                                                 "DeployPipeline (update)"]
    from localaws.clients import client

    sfn = client("stepfunctions")
    deploys = list(executions.executions(sfn, result.outputs["DeployPipelineArn"]))
    assert len(deploys) == 2, [d["name"] for d in deploys]  # one per approval, duplicates started nothing
    assert {d["status"] for d in deploys} == {"SUCCEEDED"}
    plans = [result.runs[1].output["plan"], result.runs[3].output["plan"]]
    assert [p["action"] for p in plans] == ["create", "update"]
    assert lambda_runtime.invocations().get(physical("DeployEndpointFunction")) == 2  # no second UpdateEndpoint


def test_no_execution_failed_because_of_a_duplicate(loop):
    result, _, _, _ = loop
    from localaws.clients import client

    sfn = client("stepfunctions")
    statuses = {}
    for key in ("TrainingPipelineArn", "DeployPipelineArn", "BatchTransformArn"):
        for execution in executions.executions(sfn, result.outputs[key]):
            statuses[execution["name"]] = execution["status"]
    assert statuses and set(statuses.values()) == {"SUCCEEDED"}, statuses


def test_training_slots_are_all_given_back(loop):
    from localaws.clients import client

    table = physical("RunSlotsTable")
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "training"}}, ConsistentRead=True).get("Item")
    assert item is not None and item["running"]["N"] == "0"
    assert set(item) == {"pk", "running"}, item  # no holder left


def test_no_task_token_is_left_waiting(loop):
    from localaws.clients import client

    items = client("dynamodb").scan(TableName=physical("TaskTokenTable"), ConsistentRead=True)["Items"]
    assert items == []


def test_the_drift_report_retrains_once_under_the_cooldown(loop):
    result, _, _, _ = loop
    from localaws.clients import client

    sfn = client("stepfunctions")
    runs = list(executions.executions(sfn, result.outputs["TrainingPipelineArn"]))
    drift = [r for r in runs if '"type": "drift"' in (sfn.describe_execution(executionArn=r["executionArn"])
                                                      .get("input") or "")]
    assert len(drift) == 1  # the report's event came twice; one retrain
    state = client("dynamodb").scan(TableName=physical("DriftStateTable"), ConsistentRead=True)["Items"]
    assert [i["model"]["S"] for i in state] == ["churn"]
    # The report's second delivery was turned away (a retrain in flight, or the cooldown), and said why.
    reasons = [n for n in result.notifications if n.startswith("Autoloop: drift detected")]
    assert len(reasons) >= 2 and any("No retrain" in n for n in reasons), reasons
