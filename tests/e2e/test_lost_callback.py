"""A lost job event: the wait times out and the run reconciles by describing the job."""

from __future__ import annotations

import pytest

from autoloop_cli import datagen
from tests.e2e.conftest import boot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def slow_callbacks():
    # Waits time out after 1 s (jobs take longer), and the callback rules are disabled,
    # so no job's state-change event ever completes a task: every step must reconcile.
    yield from boot("autoloop-lost", {"JobWaitTimeoutSeconds": "1", "ReconcileIntervalSeconds": "1"})


def test_lost_callbacks_are_reconciled(slow_callbacks):
    local = slow_callbacks
    events = local.client("events")
    rules = [r for r in events.list_rules()["Rules"] if "JobStateChange" in r["Name"]]
    assert len(rules) == 3  # training, processing and transform jobs
    for rule in rules:
        events.disable_rule(Name=rule["Name"])
    sfn = local.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=local.outputs["TrainingPipelineArn"])["definition"]
    assert '"TimeoutSeconds": 1,' in definition
    body = datagen.generate(800, seed=11).to_csv(index=False).encode()
    run = local.run(body, "incoming/churn/lost.csv", timeout=240)
    assert run.status == "SUCCEEDED", run.description.get("cause")
    for step in ("Preprocess", "Train", "Evaluate"):
        assert f"Reconcile{step}" in run.path
    timeouts = [e for e in run.events if e["type"] == "TaskTimedOut"]
    assert len(timeouts) == 3
