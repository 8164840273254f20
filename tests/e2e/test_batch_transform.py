"""The BatchTransform state machine, executed for real on the local AWS, with a real trained model.

The module trains once (the TrainingPipeline registers an Approved package), then scores
months: started by the template's own schedule, rerun, without input, with wrong columns,
and with drifted data. The transform really runs the model (localaws.sagemaker.jobs.transform) and
the data-quality check really runs the local Model Monitor analyzer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from autoloop.batch import schedule_name as batch_schedule_name
from autoloop_cli import datagen, executions, publish
from autoloop_cli.demo import batch as batch_demo
from localaws.scheduler import schedules as scheduler
from tests.e2e.conftest import Local, Run, boot
from tests.support import wait_until

pytestmark = pytest.mark.e2e

MODEL = "churn"
BATCH = {"id_columns": ["customer_id"], "output_columns": ["customer_id", "contract"],
         "prediction_column": "churn_probability", "max_malformed_fraction": 0.05}
HAPPY = ["PlanBatch", "ScoreOrSkip", "PrepareInput", "Transform", "CheckData", "MonitorInput",
         "PublishResults", "NotifySuccess", "Succeeded"]


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    # This module builds a Model Monitor baseline by hand and checks that backend's monthly check.
    yield from boot("autoloop-bt", {"MonitoringBackend": "model-monitor"})


def customers(rows: int, seed: int, drift: float = 0.0, first_id: int = 1, label: bool = False,
              reverse: bool = False) -> list[str]:
    frame = datagen.generate(rows, seed=seed, drift=drift)
    if not label:
        frame = frame.drop(columns=[datagen.LABEL])
    frame.insert(0, "customer_id", [f"c{first_id + i:06d}" for i in range(rows)])
    if reverse:
        frame = frame[list(reversed(frame.columns))]
    return frame.to_csv(index=False).splitlines()


def body(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def put_month(local: Local, month: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        local.upload(data, f"batch/{MODEL}/{month}/{name}")


def follow(local: Local, arn: str, timeout: float = 120) -> Run:
    sfn = local.client("stepfunctions")
    description = executions.follow(sfn, arn, timeout=timeout)
    events = executions.history(sfn, arn)
    return Run(description, [s.name for s in executions.path(events)], events, local.notifications())


def manual(local: Local, month: str, **extra: object) -> Run:
    arn = batch_demo.start_month(local.outputs["BatchTransformArn"], MODEL, month, force=bool(extra.get("force")))
    return follow(local, arn)


def note(run: Run, subject: str) -> str:
    found = [n["Message"] for n in run.notifications if n.get("Subject") == subject]
    assert len(found) == 1, run.notifications
    return found[0]


def read(local: Local, bucket: str, key: str) -> bytes:
    return local.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(local: Local, bucket: str, prefix: str) -> list[str]:
    listed = local.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def ensure_calibrated_baseline(local: Local, training_run: str, timeout: float = 90) -> None:
    """The baseline the DeployPipeline makes for a package (its Baseline and CalibrateThresholds
    steps), made here if that pipeline, which the approval starts in the background, has not."""
    from autoloop.jobs import JobContext
    from autoloop.monitoring import baseline_request

    s3, sm = local.client("s3"), local.client("sagemaker")
    bucket = local.outputs["ArtifactsBucketName"]
    prefix = f"runs/{MODEL}/{training_run}"
    ctx = JobContext(run_id=training_run, model=MODEL, artifacts_bucket=bucket,
                     role_arn=local.outputs["SageMakerExecutionRoleArn"], image_uri="unused",
                     instance_type="ml.m5.large", max_runtime_seconds=600, stack_name=local.stack.name)
    request = baseline_request(ctx, ctx.uri("preprocess", "baseline"), local.stack.parameters["ModelMonitorImageUri"])
    try:
        sm.create_processing_job(**request)
    except sm.exceptions.ResourceInUse:
        pass  # the DeployPipeline's own Baseline step
    wait_until(lambda: sm.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])[
        "ProcessingJobStatus"] not in {"InProgress", "Stopping"}, timeout, "the baseline job ended", interval=0.2)
    if not keys(local, bucket, f"{prefix}/calibrate/constraints.json"):
        s3.copy_object(Bucket=bucket, Key=f"{prefix}/calibrate/constraints.json",
                       CopySource={"Bucket": bucket, "Key": f"{prefix}/baseline/constraints.json"})


def test_no_approved_model_fails_clearly_and_scores_nothing(local):
    put_month(local, "2026-09", {"a.csv": body(customers(50, seed=1))})
    run = manual(local, "2026-09")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["PlanBatch", "PlanBatchFailed", "NotifyFailure", "RunFailed"]
    assert run.description["error"] == "PlanBatchFailed"
    assert "NoApprovedModel" in run.description["cause"]
    message = note(run, "Autoloop: batch transform failed")
    assert "NoApprovedModel" in message and f"{local.stack.name}-{MODEL}" in message
    assert local.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []


@pytest.fixture(scope="module")
def trained(local):
    """An Approved churn model (one TrainingPipeline run) with its calibrated baseline."""
    config = json.loads((publish.MODELS_DIR / "churn" / "config.json").read_text())
    config["batch"] = BATCH
    local.client("s3").put_object(Bucket=local.outputs["ArtifactsBucketName"], Key="config/models/churn.json",
                                  Body=json.dumps(config).encode())
    frame = datagen.generate(1200, seed=3)
    run = local.run(frame.to_csv(index=False).encode(), "incoming/churn/train.csv")
    assert run.status == "SUCCEEDED", run.description.get("cause")
    ensure_calibrated_baseline(local, run.output["run_id"])
    # The approval's DeployPipeline puts the model's monthly schedule (no template names it).
    name = batch_schedule_name(local.stack.name, MODEL)
    wait_until(lambda: name in {s["Name"] for s in local.client("scheduler").list_schedules()["Schedules"]}, 90,
               f"the DeployPipeline put the schedule {name}", interval=0.2)
    return run


def test_the_schedule_scores_last_month_and_publishes_it(local, trained):
    good = customers(600, seed=11, label=True)  # a label column is allowed, and ignored
    good[5] = "c999999,oops"  # too few fields
    fields = good[9].split(",")
    good[9] = ",".join([*fields[:2], "many", *fields[3:]])  # a non-numeric tenure
    other = customers(400, seed=12, first_id=1000, reverse=True)  # columns in another order
    put_month(local, "2026-10", {"a.csv": body(good), "b.csv": body(other), "empty.csv": b""})

    fired = scheduler.fire(batch_schedule_name(local.stack.name, MODEL), "2026-11-01T03:00:00Z")
    assert fired is not None and fired.execution_arn
    run = follow(local, fired.execution_arn)
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert run.path == HAPPY
    batch = run.output["batch"]
    assert batch["month"] == "2026-10" and batch["attempt"] == 1
    assert batch["run_id"].startswith("churn-202610-")

    data, prefix = local.outputs["DataBucketName"], "predictions/churn/month=2026-10/"
    assert keys(local, data, prefix) == [prefix + k for k in ("_malformed/malformed.csv", "_report.json",
                                                              "a.csv", "b.csv")]
    rows = {}
    for name in ("a.csv", "b.csv"):
        for record in csv.reader(io.StringIO(read(local, data, prefix + name).decode())):
            assert len(record) == 3  # customer_id, contract, churn_probability
            assert 0.0 < float(record[2]) < 1.0
            rows[record[0]] = record
    assert len(rows) == 998 and "c999999" not in rows
    assert rows["c001000"][1] in {"month-to-month", "one-year", "two-year"}

    report = json.loads(read(local, data, prefix + "_report.json"))
    assert report["rows"] == {"scored": 998, "malformed": 2}
    assert report["input"]["files"] == 2 and report["input"]["empty_files_skipped"] == ["empty.csv"]
    assert report["output"]["columns"] == ["customer_id", "contract", "churn_probability"]
    assert report["package"]["arn"] == trained.output["model_package"]["arn"]
    assert report["data_quality"]["report"].endswith("constraint_violations.json")
    malformed = list(csv.reader(io.StringIO(read(local, data, prefix + "_malformed/malformed.csv").decode())))
    assert [r[:2] for r in malformed[1:]] == [["a.csv", "6"], ["a.csv", "10"]]

    message = note(run, "Autoloop: month scored")
    assert "998 rows scored from 2 file(s) into 2 file(s)" in message
    assert "Malformed rows skipped: 2" in message and "Empty files skipped: 1" in message
    job = local.client("sagemaker").describe_transform_job(TransformJobName=f"{batch['run_id']}-transform")
    assert job["TransformInput"]["SplitType"] == "Line" and job["BatchStrategy"] == "MultiRecord"
    assert job["DataProcessing"] == {"JoinSource": "Input", "InputFilter": "$[1:]", "OutputFilter": "$[0,6,-1]"}


def test_a_rerun_of_a_published_month_writes_nothing(local, trained):
    data, prefix = local.outputs["DataBucketName"], "predictions/churn/month=2026-10/"
    versions = local.client("s3").list_object_versions(Bucket=data, Prefix=prefix)["Versions"]
    jobs = local.client("sagemaker").list_transform_jobs()["TransformJobSummaries"]
    run = manual(local, "2026-10")
    assert run.status == "SUCCEEDED"
    assert run.path == ["PlanBatch", "ScoreOrSkip", "NotifySkipped", "Skipped"]
    assert "already scored" in note(run, "Autoloop: batch transform skipped")
    assert local.client("s3").list_object_versions(Bucket=data, Prefix=prefix)["Versions"] == versions
    assert local.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == jobs


def test_without_a_calibrated_baseline_the_month_is_scored_unchecked(local, trained):
    s3, bucket = local.client("s3"), local.outputs["ArtifactsBucketName"]
    key = f"runs/{MODEL}/{trained.output['run_id']}/calibrate/constraints.json"
    saved = read(local, bucket, key)
    s3.delete_object(Bucket=bucket, Key=key)
    try:
        put_month(local, "2026-05", {"a.csv": body(customers(200, seed=21))})
        run = manual(local, "2026-05")
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=saved)
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert "MonitorInput" not in run.path and run.path[-3:] == ["PublishResults", "NotifySuccess", "Succeeded"]
    assert "Data quality: not checked: no calibrated baseline" in note(run, "Autoloop: month scored")


def test_a_month_without_input_fails_clearly(local, trained):
    put_month(local, "2026-08", {"empty.csv": b""})
    run = manual(local, "2026-08")
    assert run.status == "FAILED"
    assert run.path[-3:] == ["PlanBatchFailed", "NotifyFailure", "RunFailed"]
    message = note(run, "Autoloop: batch transform failed")
    assert "NoBatchInput" in message and "batch/churn/2026-08/" in message and "empty.csv" in message


def test_a_file_with_the_wrong_columns_fails_before_any_job(local, trained):
    lines = customers(30, seed=5)
    lines[0] = lines[0].replace("monthly_charges", "monthly_charge")
    put_month(local, "2026-07", {"renamed.csv": body(lines)})
    run = manual(local, "2026-07")
    assert run.status == "FAILED"
    message = note(run, "Autoloop: batch transform failed")
    assert "BatchSchemaMismatch" in message and "renamed.csv" in message
    assert "missing ['monthly_charges']" in message and "unexpected ['monthly_charge']" in message
    names = [j["ProcessingJobName"] for j in local.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]]
    assert not any("-202607-" in n for n in names)


def test_monthly_drift_raises_the_drift_alert(local, trained):
    put_month(local, "2026-06", {"drifted.csv": body(customers(1500, seed=13, drift=2.0))})
    run = manual(local, "2026-06")
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert "violation(s), sent to the drift handler" in note(run, "Autoloop: month scored")
    # The monitor job's state change reaches the drift handler as well as the callback.
    seen = list(run.notifications)

    def drift_alerts() -> list[dict]:
        seen.extend(local.notifications())
        return [n for n in seen if n.get("Subject") == "Autoloop: drift detected"]

    alerts = wait_until(drift_alerts, 60, "the drift handler's alert for the month's violations", interval=0.3)
    assert f"{local.stack.name}-{MODEL}" in alerts[0]["Message"]
