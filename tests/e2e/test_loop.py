"""The whole loop, as the demo runs it, with at-least-once delivery as AWS promises it.

Train, register and approve, deploy, traffic, a monitoring run that finds drift but no labels
(no retrain), ground truth, a monitoring run that finds the quality drop and retrains on the
fresh labels, the gate on the same holdout, blue/green update, the monthly batch transform: the
demo's loop (MonitoringBackend=autoloop, the default), with the local EventBridge delivering
every event it routes twice (the copy after later events) and holding a seeded quarter back
behind later events, while the local Lambda runtime runs invocations concurrently. It must end
as without duplicates: each approval deployed once, no execution failed, every training slot
given back, no task token left waiting, one retrain for the quality drop.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoloop.batch import schedule_name as batch_schedule_name
from autoloop.deploy import rollback_alarms
from autoloop_cli import executions
from autoloop_cli.console import Console
from autoloop_cli.demo import lifecycle as demo
from localaws import server
from localaws.awslambda import runtime as lambda_runtime
from localaws.events import delivery as eventbridge
from tests.contract.test_no_model_monitor import model_monitor_operations
from tests.request_rules import PROJECT_CODE, ROOT, Recorder, recording

pytestmark = pytest.mark.e2e

SEED = 15

TRAIN = ["ValidateInput", "AcquireRunSlot", "Preprocess", "Train", "Evaluate", "ReleaseRunSlot", "QualityGate",
         "GateDecision", "RegisterModel", "NotifySuccess", "Succeeded"]
DEPLOY = ["PlanDeployment", "HasWork", "DeployEndpoint", "CleanupOldVersions", "MonitoringBackend", "Baseline",
          "NeedsCalibration", "HasDataCapture", "ScheduleMonitoring", "NotifyDeployed", "Deployed"]
MONITOR = ["PlanMonitoring", "HasTraffic", "Monitor", "Judge", "Monitored"]
NAMES = ["TrainingPipeline", "DeployPipeline", "MonitoringPipeline", "MonitoringPipeline",
         "TrainingPipeline (fresh labels)", "DeployPipeline (update)"]


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorder]:
    """Every AWS request of the Lambda code and the CLI during the module (the loop and the
    stack's deletion)."""
    with recording((*PROJECT_CODE, str(ROOT / "autoloop_cli") + "/")) as recorder:
        yield recorder


@pytest.fixture(scope="module")
def loop(recorded: Recorder) -> Any:
    started = server.start

    def start_with_at_least_once(*args: Any, **kwargs: Any) -> Any:
        running = started(*args, **kwargs)  # a start resets the extensions: set it afterwards
        eventbridge.at_least_once(1.0, delay=0.25, seed=SEED)
        return running

    out = io.StringIO()
    # The local AWS stays up for the module: the stack-deletion test deletes the stack in it.
    patch = pytest.MonkeyPatch()
    patch.setattr(server, "start", start_with_at_least_once)
    lambda_runtime.reset_invocations()
    result = None
    try:
        result = demo.run(rows=1200, seed=7, timeout=240, console=Console(stages=12, out=out), keep_server=True)
        eventbridge.drain(60)
        yield result, out.getvalue(), eventbridge.held_stats(), eventbridge.deliveries()
    finally:
        patch.undo()
        running = server.current()
        if running is not None:
            running.stop()
        if result is not None and result.tracking is not None:
            result.tracking.stop()


def physical(logical: str) -> str:
    from localaws.clients import client

    pages = client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=demo.STACK)
    return next(str(r["PhysicalResourceId"]) for page in pages for r in page["StackResourceSummaries"]
                if r.get("LogicalResourceId") == logical)


def test_every_execution_of_the_loop_succeeds_on_its_expected_path(loop):
    result, log, _, _ = loop
    assert result.status == "SUCCEEDED", log[-3000:]
    assert [r.name for r in result.runs][:6] == NAMES
    assert [r.path for r in result.runs][:6] == [TRAIN, DEPLOY, MONITOR, MONITOR, TRAIN, DEPLOY]
    monthly = result.runs[6]
    assert monthly.name.startswith("BatchTransform") and monthly.status == "SUCCEEDED"
    assert monthly.output["report"]["rows"] > 0 and monthly.output["report"]["files"] > 0
    assert "MonitorInput" in monthly.path, monthly.path  # the month's input checked by monitor.py
    assert "Data quality: not checked" not in monthly.output["report"]["message"], monthly.output["report"]


def test_drift_without_labels_notifies_and_does_not_retrain(loop):
    result, _, _, _ = loop
    decision = result.runs[2].output["decision"]
    assert decision["retrain"] is False and decision["violations"] > 0
    assert "no new labelled data since" in decision["reason"] and "upload labels to s3://" in decision["reason"]


def test_the_quality_drop_on_fresh_labels_retrains_on_them_with_its_context(loop):
    result, _, _, _ = loop
    decision = result.runs[3].output["decision"]
    assert decision["retrain"] is True
    quality = result.drift["quality"]
    assert quality["labelled_rows"] >= 1000 and quality["value"] < quality["champion"]  # the model got worse
    retrain = result.runs[4].output
    assert retrain["trigger"]["type"] == ("quality" if decision["quality_violation"] else "drift")
    detail = retrain["trigger"]["detail"]
    assert detail["labelled_rows"] == decision["labelled_rows"] >= 1000 and detail["upload_included"] is True
    assert retrain["source"]["key"].startswith("retrain/churn/") and retrain["source"]["version_id"]
    flagged = {row["name"] for row in result.drift["features"] if row["violated"]}
    assert flagged and set(detail["features"]) - {"auc"} <= flagged
    thresholds = {row["threshold"] for row in result.drift["features"]}
    assert len(thresholds) > 1, "calibrated per feature, not one number"
    what = "a quality drop" if decision["quality_violation"] else "drift"
    assert any(n.startswith(f"Autoloop: {what} detected") and "Retraining: run" in n for n in result.notifications)


def test_the_retrain_beats_the_champion_on_the_same_holdout_and_is_deployed_blue_green(loop):
    result, _, _, _ = loop
    gate = result.runs[4].output["gate"]
    assert gate["verdict"] == "Promote" and gate["holdout_rows"] > 0
    assert gate["metric"] > gate["champion_metric"]
    first, update = result.runs[1].output["plan"], result.runs[5].output["plan"]
    assert first["action"] == "create" and update["action"] == "update"
    assert update["package_version"] == first["package_version"] + 1
    assert result.invocations_during_update > 0
    assert result.failed_invocations == 0
    cleanup = result.runs[5].output["cleanup"]
    assert cleanup["configs"] == [first["config_name"]] and cleanup["models"] == [first["model_name"]]


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
    assert [r.name for r in result.runs][:6] == NAMES
    from localaws.clients import client

    sfn = client("stepfunctions")
    deploys = list(executions.executions(sfn, result.outputs["DeployPipelineArn"]))
    assert len(deploys) == 2, [d["name"] for d in deploys]  # one per approval, duplicates started nothing
    assert {d["status"] for d in deploys} == {"SUCCEEDED"}
    plans = [result.runs[1].output["plan"], result.runs[5].output["plan"]]
    assert [p["action"] for p in plans] == ["create", "update"]
    assert lambda_runtime.invocations().get(physical("DeployEndpointFunction")) == 2  # no second UpdateEndpoint


def test_no_execution_failed_because_of_a_duplicate(loop):
    result, _, _, _ = loop
    from localaws.clients import client

    sfn = client("stepfunctions")
    statuses = {}
    for key in ("TrainingPipelineArn", "DeployPipelineArn", "BatchTransformArn", "MonitoringPipelineArn"):
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


def test_the_monitoring_run_retrains_once(loop):
    result, _, _, _ = loop
    from localaws.clients import client

    sfn = client("stepfunctions")
    runs = list(executions.executions(sfn, result.outputs["TrainingPipelineArn"]))
    retrains = [r for r in runs if "retrain/churn/" in (sfn.describe_execution(executionArn=r["executionArn"])
                                                         .get("input") or "")]
    assert len(retrains) == 1
    state = client("dynamodb").scan(TableName=physical("DriftStateTable"), ConsistentRead=True)["Items"]
    assert [i["model"]["S"] for i in state] == ["churn"]


def test_the_report_of_the_first_upload_shows_the_endpoints_latest_monitoring_run(loop):
    """A run not started by drift: the report reads the endpoint's newest MonitoringPipeline run
    with traffic (the default backend has no Model Monitor schedule to ask)."""
    from autoloop_cli.report import collect
    from localaws.clients import client

    result, _, _, _ = loop
    report = collect.gather(client, result.runs[0].execution_arn, demo.STACK)
    assert report.drift is not None, report.notes
    assert report.drift.endpoint == f"{demo.STACK}-churn" and report.drift.features
    assert report.drift.distance_source.startswith("monitoring_report.json")
    newest = [r for r in result.runs if r.name == "MonitoringPipeline"][-1]
    assert report.drift.report_uri == newest.output["plan"]["report_uri"].rstrip("/")


def test_deleting_the_stack_as_sam_delete_does_leaves_nothing_of_it_running(loop):
    """`sam delete` is CloudFormation DeleteStack: the Teardown custom resource's Delete runs
    first, then the stack's own resources go; the buckets and the registry are retained."""
    from localaws.clients import client

    result, _, _, _ = loop
    sm, cfn, prefix = client("sagemaker"), client("cloudformation"), f"{demo.STACK}-"
    stack_id = cfn.describe_stacks(StackName=demo.STACK)["Stacks"][0]["StackId"]
    assert sm.describe_endpoint(EndpointName=f"{prefix}churn")["EndpointStatus"] == "InService"
    scheduler = client("scheduler")
    assert [s["Name"] for s in scheduler.list_schedules()["Schedules"] if s["Name"].endswith("-monitor")]
    # What the system made for the model, which no template names: its batch schedule and alarms.
    scheduler.get_schedule(Name=batch_schedule_name(demo.STACK, "churn"))
    cloudwatch, alarms = client("cloudwatch"), rollback_alarms(f"{prefix}churn")
    assert len(cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]) == 3

    cfn.delete_stack(StackName=demo.STACK)

    status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    reasons = [e.get("ResourceStatusReason") for e in cfn.describe_stack_events(StackName=stack_id)["StackEvents"]]
    assert status == "DELETE_COMPLETE", reasons
    ours = [name for name in (
        [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
        + [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
        + [m["ModelName"] for m in sm.list_models()["Models"]]
        + [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    ) if name.startswith(prefix)]
    assert ours == []
    assert cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"] == []
    running = [job for kind in ("Processing", "Training", "Transform")
               for job in getattr(sm, f"list_{kind.lower()}_jobs")(StatusEquals="InProgress")[f"{kind}JobSummaries"]]
    assert running == []
    assert client("lambda").list_functions()["Functions"] == []  # the stack itself is gone
    client("s3").head_bucket(Bucket=result.outputs["DataBucketName"])  # raw data is retained
    # The registry is retained (README, "Deploy to AWS"): the group its first registration made.
    assert sm.describe_model_package_group(ModelPackageGroupName=f"{prefix}churn")["ModelPackageGroupName"]


def test_the_demo_writes_a_lifecycle_report_that_renders_every_section_with_data_in_chromium(loop):
    """The demo's last line names its report (the retrain run's); Chromium loads it, every
    section has data in the rendered DOM, and a screenshot is kept as a test artifact."""
    from autoloop_cli.report import browser
    from tests.conftest import ROOT

    result, log, _, _ = loop
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
    assert counts["drift"]["drift_plots"] == len(result.drift["features"]) > 0
    assert counts["drift"]["baseline_bars"] > 0 and counts["drift"]["current_bars"] > 0
    assert counts["drift"]["thresholds"] > 0
    assert counts["deployments"]["deploy_rows"] >= 2 and counts["deployments"]["serving_bars"] >= 2
    shot = browser.screenshot(result.report, ROOT / ".autoloop" / "artifacts" / "report.png", height=5000)
    assert shot.stat().st_size > 10_000
    print(f"report {result.report} -> screenshot {shot.resolve()}")


def test_the_default_stack_called_no_model_monitor_api_through_the_whole_loop(loop, recorded):
    """MonitoringBackend=autoloop (the demo's default): across the loop and the stack's deletion,
    every request the Lambda code and the CLI made, and none of them Model Monitor's. Runs after
    the deletion test (module order)."""
    calls = recorded.calls()
    assert {("sagemaker", "create_processing_job"), ("scheduler", "create_schedule"),
            ("scheduler", "delete_schedule"), ("sagemaker", "update_endpoint")} <= calls  # not vacuous
    used = sorted(f"{r.method} from {r.caller}" for r in recorded.requests
                  if r.service == "sagemaker" and r.method in model_monitor_operations())
    assert not used


def test_the_local_mlflow_store_holds_the_models_history(loop, tmp_path):
    """The demo's tracking (the stack's MlflowTrackingUri: its local MLflow server), read with
    MLflow's own client: each training run with its params, challenger and champion metrics on the
    same holdout, artifacts, gate, registration and deployment; the monitoring runs' drift and
    quality; the monthly batch, all in the model's one experiment."""
    from mlflow.tracking import MlflowClient

    result, log, _, _ = loop
    assert result.tracking is not None
    assert f"MLflow: experiment {demo.STACK}/<model> in {result.tracking.store_uri}" in log
    client = MlflowClient(tracking_uri=result.tracking.url)
    experiment = client.get_experiment_by_name(f"{demo.STACK}/churn")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    kinds = [r.data.tags["autoloop.kind"] for r in runs]
    assert sorted(kinds) == ["batch", "monitoring", "monitoring", "training", "training"], kinds
    training = {r.data.tags["autoloop.run_id"]: r for r in runs if r.data.tags["autoloop.kind"] == "training"}
    first_out, retrain_out = result.runs[0].output, result.runs[4].output
    assert set(training) == {first_out["run_id"], retrain_out["run_id"]}
    first, retrain = training[first_out["run_id"]], training[retrain_out["run_id"]]

    # The first model: its data, settings and code, its metric, its registration and deployment.
    source = first_out["source"]
    assert first.data.tags["autoloop.trigger"] == "s3" and first.data.tags["autoloop.model"] == "churn"
    assert first.data.params["dataset.uri"] == f"s3://{source['bucket']}/{source['key']}"
    assert first.data.params["dataset.version"] == source["version_id"]
    assert first.data.params["dataset.rows"] == str(first_out["dataset"]["rows"])
    for name, value in first_out["dataset"]["hyperparameters"].items():
        assert first.data.params[f"hp.{name}"] == str(value)
    assert first.data.params["bundle_sha256"] == first_out["dataset"]["bundle_sha256"]
    assert first.data.params["training_job"] == first_out["jobs"]["train"]["job_name"]
    assert first.data.metrics["challenger.auc"] == pytest.approx(first_out["gate"]["metric"])
    assert "champion.auc" not in first.data.metrics  # no champion yet
    assert first.data.tags["autoloop.gate.verdict"] == "Promote" and first.data.metrics["gate.promote"] == 1
    assert first.data.tags["autoloop.package_arn"] == first_out["model_package"]["arn"]
    assert first.data.tags["autoloop.deploy.action"] == "create"
    plan = result.runs[1].output["plan"]
    assert first.data.tags["autoloop.deploy.config"] == plan["config_name"]
    assert first.data.tags["autoloop.deploy.status"] == "InService" and first.data.metrics["deployed"] == 1
    evaluation = client.download_artifacts(first.info.run_id, "evaluation/evaluation.json", str(tmp_path))
    auc = json.loads(Path(evaluation).read_text())["binary_classification_metrics"]["auc"]["value"]
    assert auc == pytest.approx(first_out["gate"]["metric"])
    assert {a.path for a in client.list_artifacts(first.info.run_id, "model")} == {"model/model.tar.gz"}

    # The retrain: challenger and champion on the same holdout, and its blue/green deployment.
    gate = retrain_out["gate"]
    assert retrain.data.tags["autoloop.trigger"] == retrain_out["trigger"]["type"]
    assert retrain.data.metrics["challenger.auc"] == pytest.approx(gate["metric"])
    assert retrain.data.metrics["champion.auc"] == pytest.approx(gate["champion_metric"])
    assert retrain.data.metrics["holdout_rows"] == gate["holdout_rows"]
    assert retrain.data.tags["autoloop.champion_arn"] == first_out["model_package"]["arn"]
    assert retrain.data.metrics["package_version"] == result.runs[5].output["plan"]["package_version"]
    assert retrain.data.tags["autoloop.deploy.action"] == "update"
    assert retrain.data.tags["autoloop.deploy.status"] == "InService"

    # Monitoring: per-feature drift distances and the quality drop that retrained.
    monitoring = [r for r in runs if r.data.tags["autoloop.kind"] == "monitoring"]
    assert [r.data.metrics["retrain"] for r in monitoring] == [0, 1]
    second = monitoring[1].data.metrics
    for feature in result.drift["features"]:
        assert second[f"drift.{feature['name']}"] == pytest.approx(feature["distance"])
        assert second[f"drift_threshold.{feature['name']}"] == pytest.approx(feature["threshold"])
    assert second["quality.auc"] == pytest.approx(result.drift["quality"]["value"])
    assert monitoring[1].data.tags["autoloop.retrain_run_id"] == retrain_out["run_id"]

    # The monthly batch, with the package that scored it.
    batch = next(r for r in runs if r.data.tags["autoloop.kind"] == "batch")
    report = result.runs[6].output["report"]
    assert batch.data.metrics["rows_scored"] == report["rows"]
    assert batch.data.tags["autoloop.package_arn"] == result.runs[5].output["plan"]["package_arn"]
