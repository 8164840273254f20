"""The whole loop, as the demo runs it: train, deploy, traffic, drift, retrain, blue/green."""

from __future__ import annotations

import io

import pytest

from autoloop_cli.console import Console
from autoloop_cli.demo import lifecycle as demo
from localaws import server

pytestmark = pytest.mark.e2e

TRAIN = ["ValidateInput", "AcquireRunSlot", "Preprocess", "Train", "Evaluate", "ReleaseRunSlot", "QualityGate",
         "GateDecision", "RegisterModel", "NotifySuccess", "Succeeded"]
DEPLOY = ["PlanDeployment", "HasWork", "DeployEndpoint", "CleanupOldVersions", "Baseline", "CalibrateThresholds",
          "HasDataCapture", "ScheduleMonitoring", "NotifyDeployed", "Deployed"]


@pytest.fixture(scope="module")
def loop():
    out = io.StringIO()
    # The local AWS stays up for the module: the last test deletes the stack in it.
    try:
        result = demo.run(rows=1200, seed=7, timeout=240, console=Console(stages=9, out=out), keep_server=True)
        yield result, out.getvalue()
    finally:
        running = server.current()
        if running is not None:
            running.stop()


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


def test_deleting_the_stack_as_sam_delete_does_leaves_nothing_of_it_running(loop):
    """`sam delete` is CloudFormation DeleteStack: the Teardown custom resource's Delete runs
    first, then the stack's own resources go; the buckets and the registry are retained."""
    from localaws.clients import client

    result, _ = loop
    sm, cfn, prefix = client("sagemaker"), client("cloudformation"), f"{demo.STACK}-"
    stack_id = cfn.describe_stacks(StackName=demo.STACK)["Stacks"][0]["StackId"]
    assert sm.describe_endpoint(EndpointName=f"{prefix}churn")["EndpointStatus"] == "InService"
    assert sm.list_monitoring_schedules(NameContains=prefix)["MonitoringScheduleSummaries"]

    cfn.delete_stack(StackName=demo.STACK)

    status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    reasons = [e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName=stack_id)["StackEvents"]]
    assert status == "DELETE_COMPLETE", reasons
    ours = [name for name in (
        [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
        + [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
        + [m["ModelName"] for m in sm.list_models()["Models"]]
        + [s["MonitoringScheduleName"] for s in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]]
    ) if name.startswith(prefix)]
    assert ours == []
    running = [job for kind in ("Processing", "Training", "Transform")
               for job in getattr(sm, f"list_{kind.lower()}_jobs")(StatusEquals="InProgress")[f"{kind}JobSummaries"]]
    assert running == []
    assert client("lambda").list_functions()["Functions"] == []  # the stack itself is gone
    client("s3").head_bucket(Bucket=result.outputs["DataBucketName"])  # raw data is retained
    assert sm.describe_model_package_group(ModelPackageGroupName=f"{prefix}churn")["ModelPackageGroupName"]


def test_the_demo_writes_a_lifecycle_report_that_renders_every_section_with_data_in_chromium(loop):
    """The demo's last line names its report (the retrain run's); Chromium loads it, every
    section has data in the rendered DOM, and a screenshot is kept as a test artifact."""
    from autoloop_cli.report import browser
    from tests.conftest import ROOT

    result, log = loop
    assert result.report is not None and result.report.is_file(), log[-2000:]
    assert log.strip().splitlines()[-1] == f"Report: {result.report.resolve()}"
    if browser.find() is None:
        pytest.skip(f"chromium is not installed: {browser.INSTALL_HINT}")
    counts = browser.section_counts(browser.dump_dom(result.report))
    assert {key: c["empty"] for key, c in counts.items()} == dict.fromkeys(
        ("graph", "timeline", "evaluation", "drift", "deployments"), 0)
    assert counts["graph"]["visited_nodes"] >= len(TRAIN) + len(DEPLOY)  # the retrain and the deploy of its model
    assert counts["graph"]["failed_nodes"] == 0
    assert counts["timeline"]["state_bars"] >= len(TRAIN) and counts["timeline"]["job_bars"] >= 3
    assert counts["evaluation"]["metric_bars"] > 0
    assert counts["drift"]["drift_plots"] == len(result.drift["table"]) > 0
    assert counts["drift"]["baseline_bars"] > 0 and counts["drift"]["current_bars"] > 0
    assert counts["drift"]["thresholds"] > 0
    assert counts["deployments"]["deploy_rows"] >= 2 and counts["deployments"]["serving_bars"] >= 2
    shot = browser.screenshot(result.report, ROOT / ".autoloop" / "artifacts" / "report.png", height=5000)
    assert shot.stat().st_size > 10_000
    print(f"report {result.report} -> screenshot {shot.resolve()}")
