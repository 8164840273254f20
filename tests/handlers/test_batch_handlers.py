"""The BatchTransform handlers (plan, launch, callback, reconcile, publish) against the template in moto.

SageMaker jobs are moto's plain records here (Completed at creation); the e2e module runs them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from autoloop import adapters, batch, errors, naming
from autoloop_cli.publish import publish_config_with
from tests.conftest import load_event, load_handler
from tests.handlers.conftest import STACK
from tests.handlers.test_jobs_handlers import RecordingStepFunctions
from tests.support import seed_package

MONTH = "2026-10"
HEADER = "tenure_months,monthly_charges,support_calls,data_usage_gb,age,contract,payment_method,region"
ROW = "12,70.5,1,8.25,40,one-year,credit_card,north"


def put(key: str, body: bytes, bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def register(deployed, run_id: str = "churn-3f9a1c2b7d", status: str = "Approved") -> str:
    return seed_package(
        boto3.client("sagemaker"), STACK,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://a/model.tar.gz",
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"autoloop:run-id": run_id},
    )


def request(month: str | None = MONTH, force: bool = False, **trigger: str) -> dict:
    return {"request": {"model": "churn", "month": month, "force": force, "trigger": {"type": "manual", **trigger}},
            "execution": ""}


@pytest.fixture
def plan(deployed, lambda_context):
    deployed.use_env("PlanBatchFunction")
    handler = load_handler("plan_batch").handler
    return lambda payload: handler(payload, lambda_context)


def month_input(deployed, files: dict[str, bytes] | None = None) -> None:
    for name, body in (files or {"a.csv": f"{HEADER}\n{ROW}\n".encode(), "empty.csv": b""}).items():
        put(f"batch/churn/{MONTH}/{name}", body, deployed.data_bucket)


def test_plan_scores_a_month_with_the_latest_approved_model(deployed, plan):
    arn = register(deployed)
    month_input(deployed, {"a.csv": f"{HEADER}\n{ROW}\n".encode(), "empty.csv": b"", "_SUCCESS": b"x"})
    result = plan(request())
    assert result["action"] == "score" and result["attempt"] == 1
    assert result["run_id"] == naming.batch_run_id("churn", MONTH, deployed.data_bucket)
    assert result["package"]["arn"] == arn and result["package"]["training_run_id"] == "churn-3f9a1c2b7d"
    assert result["files"] == ["a.csv"] and result["empty_files"] == ["empty.csv"]
    assert result["input_uri"] == f"s3://{deployed.data_bucket}/batch/churn/{MONTH}/"
    assert result["output_uri"] == f"s3://{deployed.data_bucket}/predictions/churn/month={MONTH}/"
    assert result["output_columns"][-1] == "prediction" and result["output_filter"] is None
    model = boto3.client("sagemaker").describe_model(ModelName=result["model_name"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://a/model.tar.gz"
    assert model["ExecutionRoleArn"] == deployed.outputs["SageMakerExecutionRoleArn"]
    assert "no calibrated baseline" in result["monitoring"]["skipped"]
    assert plan(request())["model_name"] == result["model_name"]  # the model is reused, not created again


@pytest.mark.parametrize(("backend", "made_by"), [("autoloop", "baseline"), ("model-monitor", "calibrate")])
def test_plan_uses_the_baseline_the_deploy_pipeline_made(deployed, plan, backend, made_by):
    """autoloop: the baseline job's own constraints (the check calibrates at the month's size);
    model-monitor: the constraints the calibrate step made."""
    deployed.monkeypatch.setenv("MONITORING_BACKEND", backend)
    register(deployed)
    month_input(deployed)
    for key in (f"runs/churn/churn-3f9a1c2b7d/{made_by}/constraints.json",
                "runs/churn/churn-3f9a1c2b7d/baseline/statistics.json"):
        put(key, b"{}", deployed.artifacts_bucket)
    monitoring = plan(request())["monitoring"]
    assert monitoring["constraints_uri"].endswith(f"/{made_by}/constraints.json")
    assert monitoring["statistics_uri"].endswith("/baseline/statistics.json") and monitoring["skipped"] is None


def test_the_schedule_scores_the_month_before_its_time(deployed, plan):
    register(deployed)
    month_input(deployed)
    result = plan(request(month=None, type="schedule", scheduled_time="2026-11-01T03:00:00Z"))
    assert result["month"] == MONTH


def test_plan_fails_clearly_without_an_approved_model(deployed, plan):
    register(deployed, status="PendingManualApproval")
    month_input(deployed)
    with pytest.raises(errors.NoApprovedModel, match=f"{STACK}-churn has no Approved model package"):
        plan(request())


def test_plan_fails_clearly_without_input(deployed, plan):
    register(deployed)
    month_input(deployed, {"empty.csv": b""})
    with pytest.raises(errors.NoBatchInput, match=r"batch/churn/2026-10/ has no input files \(only empty"):
        plan(request())


def test_plan_names_the_file_with_the_wrong_columns(deployed, plan):
    register(deployed)
    month_input(deployed, {"ok.csv": f"{HEADER}\n{ROW}\n".encode(),
                           "bad.csv": b"tenure_months,extra\n1,2\n"})
    with pytest.raises(errors.BatchSchemaMismatch, match=r"bad\.csv has the wrong columns: missing \["):
        plan(request())
    assert boto3.client("sagemaker").list_models()["Models"] == []


def test_plan_refuses_a_month_that_has_not_ended(deployed, plan):
    with pytest.raises(errors.InvalidEvent, match="has not ended"):
        plan(request(month=f"{datetime.now(UTC):%Y-%m}"))


def test_a_published_month_is_skipped_unless_forced(deployed, plan):
    register(deployed)
    month_input(deployed)
    put(f"predictions/churn/month={MONTH}/_report.json",
        json.dumps({"transform_job": "old-job", "published_at": "2026-11-01T03:20:00Z"}).encode(), deployed.data_bucket)
    skipped = plan(request())
    assert skipped["action"] == "skip" and "already scored by old-job" in skipped["reason"]
    assert boto3.client("sagemaker").list_models()["Models"] == []
    assert plan(request(force=True))["action"] == "score"


# ----------------------------------------------------------------------------- launch
def planned(deployed, plan, **jobs) -> dict:
    register(deployed)
    month_input(deployed)
    for key in ("runs/churn/churn-3f9a1c2b7d/calibrate/constraints.json",
                "runs/churn/churn-3f9a1c2b7d/baseline/statistics.json"):
        put(key, b"{}", deployed.artifacts_bucket)
    return {"batch": plan(request()), "jobs": jobs}


@pytest.fixture
def launch(deployed, lambda_context):
    deployed.use_env("LaunchBatchJobFunction")
    handler = load_handler("launch_batch_job").handler
    return lambda step, state, token="tok": handler(
        {"task_token": token, "execution": "arn:exec", "step": step, "state": state}, lambda_context)


def prepared(deployed, run: str, valid: int = 99, malformed: int = 1) -> dict:
    base = f"s3://{deployed.artifacts_bucket}/runs/churn/{run}/prepare"
    put(f"runs/churn/{run}/prepare/summary/summary.json",
        json.dumps({"rows_valid": valid, "rows_malformed": malformed, "files": [{"file": "a.csv"}],
                    "empty_files": ["empty.csv"]}).encode(), deployed.artifacts_bucket)
    outputs = {n: f"{base}/{n}" for n in batch.PREPARE_OUTPUTS}
    return {"job_name": f"{run}-prepare", "kind": "processing", "status": "Completed", "outputs": outputs}


def token(deployed, name):
    table = deployed.resources["TaskTokenTable"]
    return boto3.client("dynamodb").get_item(TableName=table, Key={"job_name": {"S": name}}).get("Item")


def test_launch_prepare_reads_the_month_and_parks_the_token(deployed, plan, launch):
    state = planned(deployed, plan)
    result = launch("prepare", state)
    name = f"{state['batch']['run_id']}-prepare"
    assert result == {"job_name": name, "launched": True}
    job = boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["data"] == state["batch"]["input_uri"]
    assert inputs["config"].endswith("/config/models/churn.json")
    assert job["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/batch_prepare.py")
    assert token(deployed, name)["token"]["S"] == "tok"


def test_launch_transform_applies_the_malformed_rows_policy_first(deployed, plan, launch):
    state = planned(deployed, plan)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"], valid=90, malformed=10)
    with pytest.raises(errors.TooManyMalformedRows, match=r"10 of 100 rows \(10.0%\) are malformed"):
        launch("transform", state)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"], valid=0, malformed=3)
    with pytest.raises(errors.NoBatchInput, match="no valid row"):
        launch("transform", state)
    assert boto3.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []


def test_launch_transform_streams_lines_joined_with_their_prediction(deployed, plan, launch):
    state = planned(deployed, plan)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"])
    launch("transform", state)
    job = boto3.client("sagemaker").describe_transform_job(TransformJobName=f"{state['batch']['run_id']}-transform")
    assert job["ModelName"] == state["batch"]["model_name"]
    assert job["TransformInput"]["SplitType"] == "Line" and job["BatchStrategy"] == "MultiRecord"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/prepare/clean/")
    assert job["DataProcessing"] == {"JoinSource": "Input"}
    assert job["MaxPayloadInMB"] == 6


def test_the_transform_runs_on_the_configs_instance_type_else_the_stacks(deployed, plan, launch):
    state = planned(deployed, plan)
    assert state["batch"]["instance_type"] is None  # churn's config sets none: the stack's
    publish_config_with(boto3.client("s3"), deployed.artifacts_bucket, "churn",
                        {"instance_types": {"transform": "ml.c5.4xlarge"}})
    state = {"batch": plan(request()), "jobs": {}}
    assert state["batch"]["instance_type"] == "ml.c5.4xlarge"
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"])
    launch("transform", state)
    job = boto3.client("sagemaker").describe_transform_job(TransformJobName=f"{state['batch']['run_id']}-transform")
    assert job["TransformResources"]["InstanceType"] == "ml.c5.4xlarge"


def launched_monitor(deployed, plan, launch) -> tuple[dict, dict[str, str]]:
    """The month's monitor job as LaunchBatchJob created it, and its inputs by name."""
    state = planned(deployed, plan)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"])
    launch("monitor", state)
    job = boto3.client("sagemaker").describe_processing_job(ProcessingJobName=f"{state['batch']['run_id']}-monitor")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["month_input"].endswith("/prepare/monitor")
    return job, inputs


def test_launch_monitor_checks_the_month_with_autoloops_own_job(deployed, plan, launch):
    put("runs/churn/churn-3f9a1c2b7d/baseline/constraints.json", b"{}", deployed.artifacts_bucket)
    job, inputs = launched_monitor(deployed, plan, launch)
    assert inputs["baseline"].endswith("/runs/churn/churn-3f9a1c2b7d/baseline")
    app = job["AppSpecification"]
    assert app["ContainerEntrypoint"][-1].endswith("/monitor.py") and app["ContainerArguments"][0] == "check"
    assert "--csv-dir" in app["ContainerArguments"] and "model-monitor" not in app["ImageUri"]


def test_launch_monitor_checks_the_month_against_the_calibrated_baseline(deployed, plan, launch):
    deployed.monkeypatch.setenv("MONITORING_BACKEND", "model-monitor")
    job, inputs = launched_monitor(deployed, plan, launch)
    assert inputs["constraints"].endswith("/calibrate/constraints.json")
    assert "sagemaker-model-monitor-analyzer" in job["AppSpecification"]["ImageUri"]


# ----------------------------------------------------------------------------- callback, reconcile
def test_the_transform_job_event_completes_the_waiting_task(deployed, plan, launch, lambda_context):
    state = planned(deployed, plan)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"])
    launch("transform", state, token="tok-t")
    name = f"{state['batch']['run_id']}-transform"
    deployed.use_env("JobCallbackFunction")
    sfn = RecordingStepFunctions()
    adapters.set_client("stepfunctions", sfn)
    event = load_event("sagemaker_transform_job_completed")
    event["detail"]["TransformJobName"] = name
    result = load_handler("job_callback").handler(event, lambda_context)
    assert result["task"] == "completed" and result["kind"] == "transform"
    [(kind, call)] = sfn.calls
    assert kind == "success" and call["taskToken"] == "tok-t"
    assert json.loads(call["output"])["outputs"]["output"].endswith(f"/runs/churn/{state['batch']['run_id']}/transform")
    assert token(deployed, name) is None


def test_reconcile_describes_the_transform_job(deployed, plan, launch, lambda_context):
    handler = load_handler("reconcile_batch_job").handler
    state = planned(deployed, plan)
    run = state["batch"]["run_id"]
    with pytest.raises(errors.JobNotFound):
        handler({"run_id": run, "step": "transform"}, lambda_context)
    state["jobs"]["prepare"] = prepared(deployed, run)
    launch("transform", state)
    assert handler({"run_id": run, "step": "transform"}, lambda_context)["status"] == "Completed"


# ----------------------------------------------------------------------------- publish
def staged(deployed, run: str, outputs: dict[str, bytes], malformed: bytes | None = None) -> dict:
    art = deployed.artifacts_bucket
    for name, body in outputs.items():
        put(f"runs/churn/{run}/transform/{name}.out", body, art)
    if malformed:
        put(f"runs/churn/{run}/prepare/malformed/malformed.csv", malformed, art)
    return {"job_name": f"{run}-transform", "kind": "transform", "status": "Completed",
            "outputs": {"output": f"s3://{art}/runs/churn/{run}/transform"}}


@pytest.fixture
def publish(deployed, lambda_context):
    deployed.use_env("PublishBatchFunction")
    handler = load_handler("publish_batch").handler
    return lambda state: handler(state, lambda_context)


def test_publish_writes_the_partition_then_the_report(deployed, plan, publish):
    state = planned(deployed, plan)
    run = state["batch"]["run_id"]
    state["jobs"]["prepare"] = prepared(deployed, run, valid=2, malformed=1)
    state["jobs"]["transform"] = staged(deployed, run, {"a.csv": b"1,x,0.5\n2,y,0.25\n"},
                                        malformed=b"file,line,reason,row\na.csv,3,bad,zz\n")
    result = publish(state)
    prefix = f"predictions/churn/month={MONTH}/"
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=deployed.data_bucket, Key=prefix + "a.csv")["Body"].read() == b"1,x,0.5\n2,y,0.25\n"
    report = json.loads(s3.get_object(Bucket=deployed.data_bucket, Key=prefix + "_report.json")["Body"].read())
    assert report["rows"] == {"scored": 2, "malformed": 1}
    assert report["malformed"]["uri"] == f"s3://{deployed.data_bucket}/{prefix}_malformed/malformed.csv"
    assert report["transform_job"] == f"{run}-transform" and report["output"]["files"] == ["a.csv"]
    assert "not checked" in report["data_quality"]["status"]
    assert result["rows"] == 2 and result["files"] == 1
    assert "2 rows scored from 1 file(s) into 1 file(s)" in result["message"]
    assert "Malformed rows skipped: 1" in result["message"]


def test_publishing_again_replaces_what_an_earlier_scoring_left(deployed, plan, publish):
    state = planned(deployed, plan)
    run = state["batch"]["run_id"]
    state["jobs"]["prepare"] = prepared(deployed, run, valid=2, malformed=0)
    prefix = f"predictions/churn/month={MONTH}/"
    put(prefix + "stale.csv", b"old\n", deployed.data_bucket)
    put(prefix + "_malformed/malformed.csv", b"old\n", deployed.data_bucket)
    state["jobs"]["transform"] = staged(deployed, run, {"a.csv": b"1\n", "b.csv": b"2\n"})
    publish(state)
    listed = boto3.client("s3").list_objects_v2(Bucket=deployed.data_bucket, Prefix=prefix)["Contents"]
    assert sorted(o["Key"][len(prefix):] for o in listed) == ["_report.json", "a.csv", "b.csv"]


def test_publish_without_output_fails(deployed, plan, publish):
    state = planned(deployed, plan)
    run = state["batch"]["run_id"]
    state["jobs"]["prepare"] = prepared(deployed, run)
    state["jobs"]["transform"] = staged(deployed, run, {})
    with pytest.raises(errors.BatchOutputMissing):
        publish(state)


def test_of_two_running_executions_for_a_month_only_the_oldest_scores_it(deployed, plan):
    register(deployed)
    month_input(deployed)
    sfn = boto3.client("stepfunctions")
    machine = deployed.outputs["BatchTransformArn"]
    body = json.dumps({"model": "churn", "trigger": {"type": "schedule", "scheduled_time": "2026-11-01T03:00:00Z"}})
    first = sfn.start_execution(stateMachineArn=machine, name="first", input=body)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine, name="second", input=body)["executionArn"]
    # a name that sorts first, but another month: it does not hold this one up
    sfn.start_execution(stateMachineArn=machine, name="0-other-month",
                        input=json.dumps({"model": "churn", "month": "2026-09"}))
    skipped = plan({**request(), "execution": second})
    assert skipped["action"] == "skip" and "execution first is already scoring churn 2026-10" in skipped["reason"]
    assert plan({**request(), "execution": first})["action"] == "score"


def test_a_resumed_attempt_whose_job_has_ended_completes_its_task_at_once(deployed, plan, launch, monkeypatch):
    from botocore.exceptions import ClientError

    from autoloop.adapters import client

    state = planned(deployed, plan)
    state["jobs"]["prepare"] = prepared(deployed, state["batch"]["run_id"])
    launch("transform", state)  # the earlier attempt's job (moto: Completed at once)
    sfn = RecordingStepFunctions()
    adapters.set_client("stepfunctions", sfn)
    sagemaker = client("sagemaker")

    def in_use(**kwargs):
        raise ClientError({"Error": {"Code": "ResourceInUse", "Message": "exists"}}, "CreateTransformJob")

    monkeypatch.setattr(sagemaker, "create_transform_job", in_use)
    name = f"{state['batch']['run_id']}-transform"
    assert launch("transform", state, token="tok-2") == {"job_name": name, "launched": False, "status": "Completed"}
    [(kind, call)] = sfn.calls
    assert kind == "success" and call["taskToken"] == "tok-2"
    assert token(deployed, name) is None
