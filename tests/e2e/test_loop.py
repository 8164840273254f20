"""The whole loop, as the demo runs it: train, deploy, traffic, drift, retrain, blue/green."""

from __future__ import annotations

import io

import pytest

from localaws import demo
from localaws.console import Console

pytestmark = pytest.mark.e2e

TRAIN = ["ValidateInput", "Preprocess", "Train", "Evaluate", "QualityGate", "GateDecision", "RegisterModel",
         "NotifySuccess", "Succeeded"]
DEPLOY = ["PlanDeployment", "HasWork", "DeployEndpoint", "CleanupOldVersions", "Baseline", "CalibrateThresholds",
          "ScheduleMonitoring", "NotifyDeployed", "Deployed"]


@pytest.fixture(scope="module")
def loop():
    out = io.StringIO()
    result = demo.run(rows=1200, seed=7, timeout=240, console=Console(stages=9, out=out))
    return result, out.getvalue()


def test_every_execution_of_the_loop_succeeds_on_its_expected_path(loop):
    result, log = loop
    assert result.status == "SUCCEEDED", log[-3000:]
    assert [r.name for r in result.runs][:4] == ["TrainingPipeline", "DeployPipeline", "TrainingPipeline (drift)",
                                                 "DeployPipeline (update)"]
    assert [r.path for r in result.runs][:4] == [TRAIN, DEPLOY, TRAIN, DEPLOY]
    monthly = result.runs[4]
    assert monthly.name.startswith("BatchTransform") and monthly.status == "SUCCEEDED"
    assert monthly.output["report"]["rows"] > 0 and monthly.output["report"]["files"] > 0


def test_drift_is_found_and_starts_a_retrain_with_its_context(loop):
    result, _ = loop
    retrain = result.runs[2].output
    assert retrain["trigger"]["type"] == "drift"
    assert retrain["trigger"]["detail"]["features"], "the drift context names the violated features"
    flagged = [row["feature"] for row in result.drift["table"]
               if row["distance"] is not None and row["distance"] > row["calibrated"]]
    assert set(retrain["trigger"]["detail"]["features"]) <= {r["feature"] for r in result.drift["table"]}
    assert flagged
    assert any(n.startswith("Autoloop: drift detected") for n in result.notifications)


def test_the_retrain_passes_the_champion_gate_and_is_deployed_blue_green_with_no_failed_calls(loop):
    result, _ = loop
    gate = result.runs[2].output["gate"]
    assert gate["champion_metric"] is not None and gate["metric"] >= gate["champion_metric"]
    first, update = result.runs[1].output["plan"], result.runs[3].output["plan"]
    assert first["action"] == "create" and update["action"] == "update"
    assert update["package_version"] == first["package_version"] + 1
    assert result.invocations_during_update > 0
    assert result.failed_invocations == 0
    cleanup = result.runs[3].output["cleanup"]
    assert cleanup["configs"] == [first["config_name"]] and cleanup["models"] == [first["model_name"]]
