"""The autoloop monitoring backend's handlers against moto: the schedule, the plan, the judgement."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from autoloop import monitoring_steps
from autoloop.config import DriftSettings, MonitorPlanSettings, MonitorScheduleSettings, load_settings
from autoloop.deploy_steps import schedule_monitoring
from autoloop.drift_steps import handle_drift
from autoloop_cli.datagen import generate
from tests.handlers.conftest import STACK

ENDPOINT = f"{STACK}-churn"
DUE = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def _deploy_state(deployed) -> dict:
    baseline = f"s3://{deployed.artifacts_bucket}/runs/churn/churn-abc/baseline"
    return {"plan": {"action": "create", "reason": "first", "model": "churn", "endpoint_name": ENDPOINT,
                     "run_id": "churn-abc"},
            "jobs": {"baseline": {"job_name": "churn-abc-baseline", "kind": "processing", "status": "Completed",
                                  "outputs": {"monitoring_output": baseline}}}}


def test_the_endpoint_gets_an_hourly_scheduler_schedule_that_starts_the_monitoring_pipeline(deployed):
    deployed.use_env("ScheduleMonitoringFunction")
    settings = load_settings(MonitorScheduleSettings)
    first = schedule_monitoring(_deploy_state(deployed), settings)
    again = schedule_monitoring(_deploy_state(deployed), settings)
    assert (first["updated"], again["updated"]) == (False, True)
    schedule = boto3.client("scheduler").get_schedule(Name=first["schedule_name"])
    assert schedule["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert schedule["Target"]["Arn"] == deployed.outputs["MonitoringPipelineArn"]
    payload = json.loads(schedule["Target"]["Input"])
    assert payload["endpoint"] == ENDPOINT and payload["model"] == "churn"
    assert payload["statistics_uri"].endswith("/baseline/statistics.json")
    assert payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"
    assert len(first["schedule_name"]) <= 64


@pytest.fixture
def planner(deployed, monkeypatch):
    deployed.use_env("PlanMonitoringFunction")
    capture = f"s3://{deployed.artifacts_bucket}/datacapture"
    endpoint = {"EndpointName": ENDPOINT, "EndpointStatus": "InService",
                "LastModifiedTime": DUE - timedelta(hours=3),
                "DataCaptureConfig": {"DestinationS3Uri": capture},
                "ProductionVariants": [{"VariantName": "AllTraffic"}]}
    monkeypatch.setattr(monitoring_steps.tasks, "describe_endpoint",
                        lambda name: endpoint if name == ENDPOINT else None)
    return load_settings(MonitorPlanSettings)


def _request(deployed, endpoint=ENDPOINT):
    baseline = f"s3://{deployed.artifacts_bucket}/runs/churn/churn-abc/baseline"
    return {"endpoint": endpoint, "model": "churn", "statistics_uri": f"{baseline}/statistics.json",
            "constraints_uri": f"{baseline}/constraints.json", "scheduled_time": DUE.isoformat()}


def test_the_plan_lists_the_windows_captures_and_labels_into_manifests(deployed, planner):
    s3 = boto3.client("s3")
    for hour in ("2026/11/01/00", "2026/11/01/02", "2026/11/01/03", "2026/11/01/04"):
        s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"datacapture/{ENDPOINT}/AllTraffic/{hour}/a.jsonl",
                      Body=b"{}\n")
    s3.put_object(Bucket=deployed.data_bucket, Key="groundtruth/churn/2026/11/01/03/labels.jsonl", Body=b"{}\n")
    plan = monitoring_steps.plan_monitoring(_request(deployed), planner)
    assert plan["action"] == "monitor"
    # The endpoint changed 3 hours before the due time: hours 01..03 (04 is the due hour, excluded).
    assert plan["window_start"] == "2026-11-01T01:00:00Z" and plan["window_end"] == "2026-11-01T04:00:00Z"
    bucket, key = plan["capture_manifest_uri"][5:].split("/", 1)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest == [{"prefix": f"s3://{deployed.artifacts_bucket}/datacapture/{ENDPOINT}/"},
                        "AllTraffic/2026/11/01/02/a.jsonl", "AllTraffic/2026/11/01/03/a.jsonl"]
    assert plan["ground_truth_files"] == 1 and plan["latest_label_at"]
    assert (plan["metric"], plan["direction"], plan["champion_metric"]) == ("auc", "higher", None)
    assert plan["run_id"].startswith("churn-") and plan["run_id"].endswith("-m20261101040000")


def test_a_regression_model_is_monitored_on_its_rmse_with_its_own_margin(deployed, monkeypatch):
    """models/price: rmse, lower is better; the margin is the config's (in the target's units),
    not the stack's QualityMargin, which is a fraction."""
    deployed.use_env("PlanMonitoringFunction")
    endpoint = f"{STACK}-price"
    described = {"EndpointName": endpoint, "EndpointStatus": "InService", "LastModifiedTime": DUE - timedelta(hours=2),
                 "DataCaptureConfig": {"DestinationS3Uri": f"s3://{deployed.artifacts_bucket}/datacapture"},
                 "ProductionVariants": [{"VariantName": "AllTraffic"}]}
    monkeypatch.setattr(monitoring_steps.tasks, "describe_endpoint", lambda name: described)
    monkeypatch.setattr(monitoring_steps.registry, "latest_approved_package", lambda group: None)
    boto3.client("s3").put_object(Bucket=deployed.artifacts_bucket, Body=b"{}\n",
                                  Key=f"datacapture/{endpoint}/AllTraffic/2026/11/01/03/a.jsonl")
    baseline = f"s3://{deployed.artifacts_bucket}/runs/price/price-abc/baseline"
    plan = monitoring_steps.plan_monitoring(
        {"endpoint": endpoint, "model": "price", "statistics_uri": f"{baseline}/statistics.json",
         "constraints_uri": f"{baseline}/constraints.json", "scheduled_time": DUE.isoformat()},
        load_settings(MonitorPlanSettings))
    assert plan["action"] == "monitor"
    assert (plan["metric"], plan["direction"], plan["threshold"], plan["quality_margin"]) == ("rmse", "lower", 30.0,
                                                                                                 3.0)


def test_no_traffic_means_no_job_and_says_so(deployed, planner):
    plan = monitoring_steps.plan_monitoring(_request(deployed), planner)
    assert plan["action"] == "skip" and "no captured requests" in plan["reason"]
    gone = monitoring_steps.plan_monitoring(_request(deployed, endpoint=f"{STACK}-other"), planner)
    assert gone["action"] == "skip" and "does not exist" in gone["reason"]


# ----------------------------------------------------------------------------- the judgement
DRIFT = {"violations": [{"feature_name": "monthly_charges", "constraint_check_type": "baseline_drift_check",
                         "description": "Baseline drift distance: 0.21 exceeds threshold: 0.05"}]}


def _run(deployed, *, labelled_rows: int, latest_label_at: str | None, champion_created_at: str | None,
         quality_violated: bool = True) -> dict:
    """A finished monitoring run as the MonitoringPipeline hands it to the drift handler."""
    s3 = boto3.client("s3")
    folder = f"monitoring/{ENDPOINT}/{ENDPOINT}-monitor/2026/11/01/04/0000"
    quality = {"metric": "auc", "direction": "higher", "value": 0.71, "threshold": 0.75, "champion": 0.83,
               "margin": 0.05, "labelled_rows": labelled_rows, "violated": quality_violated,
               "reason": "auc 0.7100 is below the champion's 0.8300 by more than 0.05"}
    report = {"version": 1, "window": {"start": "a", "end": "b"}, "rows": 1300, "empty_window": False,
              "features": [], "data_quality_violations": 1, "quality": quality, "ground_truth": {},
              "labelled_rows": labelled_rows, "labelled_uri_hint": "labelled/labelled.csv"}
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{folder}/monitoring_report.json",
                  Body=json.dumps(report).encode())
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{folder}/constraint_violations.json",
                  Body=json.dumps(DRIFT).encode())
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{folder}/labelled/labelled.csv",
                  Body=generate(labelled_rows, seed=3, drift=1.0).to_csv(index=False).encode())
    s3.put_object(Bucket=deployed.data_bucket, Key="incoming/churn/latest.csv",
                  Body=generate(400, seed=1).to_csv(index=False).encode())
    plan = {"action": "monitor", "reason": "", "run_id": "churn-0a1b2c-m20261101040000", "model": "churn",
            "endpoint": ENDPOINT, "window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-01T04:00:00Z",
            "report_uri": f"s3://{deployed.artifacts_bucket}/{folder}", "latest_label_at": latest_label_at,
            "champion_created_at": champion_created_at, "metric": "auc", "champion_metric": 0.83,
            "ground_truth_prefix": f"s3://{deployed.data_bucket}/groundtruth/churn/"}
    return {"monitoring": {"plan": plan, "jobs": {"monitor": {"job_name": "x-monitor", "kind": "processing",
                                                              "status": "Completed"}}}}


def _started(deployed) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in sfn.list_executions(stateMachineArn=deployed.outputs["TrainingPipelineArn"])["executions"]]


def test_drift_without_labels_since_the_champion_notifies_and_does_not_retrain(deployed):
    deployed.use_env("DriftHandlerFunction")
    result = handle_drift(_run(deployed, labelled_rows=500, latest_label_at="2026-10-01T00:00:00Z",
                               champion_created_at="2026-10-02T00:00:00Z"), load_settings(DriftSettings))
    assert result["retrain"] is False and _started(deployed) == []
    assert "no new labelled data since 2026-10-02 00:00 UTC" in result["reason"]
    assert f"upload labels to s3://{deployed.data_bucket}/groundtruth/churn/" in result["reason"]
    [note] = deployed.notifications()
    assert note["Subject"] == "Autoloop: a quality drop detected" and "No retrain" in note["Message"]


def test_too_few_labelled_rows_do_not_retrain(deployed):
    deployed.use_env("DriftHandlerFunction")
    result = handle_drift(_run(deployed, labelled_rows=20, latest_label_at="2026-11-01T03:00:00Z",
                               champion_created_at="2026-10-02T00:00:00Z"), load_settings(DriftSettings))
    assert result["retrain"] is False and "only 20 labelled captured rows (at least 200 needed)" in result["reason"]


def test_a_quality_drop_with_fresh_labels_retrains_on_them_once(deployed):
    deployed.use_env("DriftHandlerFunction")
    run = _run(deployed, labelled_rows=300, latest_label_at="2026-11-01T03:00:00Z",
               champion_created_at="2026-10-02T00:00:00Z")
    result = handle_drift(run, load_settings(DriftSettings))
    again = handle_drift(run, load_settings(DriftSettings))  # a retried Judge step
    assert result["retrain"] is True and again["retrain"] is False
    [payload] = _started(deployed)
    assert payload["trigger"]["type"] == "quality"
    assert payload["trigger"]["detail"]["labelled_rows"] == 300
    assert payload["source"]["key"] == "retrain/churn/churn-0a1b2c-m20261101040000.csv"
    body = boto3.client("s3").get_object(Bucket=deployed.data_bucket, Key=payload["source"]["key"])["Body"].read()
    assert body.decode().count("\n") == 1 + 400 + 300  # header, the upload's rows, the labelled rows
