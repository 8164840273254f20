"""A model's own train.py logs with plain mlflow calls: run as Autoloop's training request asks
(autoloop.jobs.training_request, its environment included) in the local SageMaker, those metrics
and params reach the job's output.tar.gz, where the gate reads them (autoloop.tracking)."""

from __future__ import annotations

import io
import tarfile
from typing import Any

from autoloop import tracking
from autoloop.jobs import JobContext, model_code_key, training_request
from tests.localaws import test_sagemaker_jobs as local_jobs
from tests.localaws.test_sagemaker_jobs import BUCKET, IMAGE, ROLE, finished, get, put, tar_gz

aws = local_jobs.aws  # the fixture: in-process moto with the local SageMaker jobs, sandboxes in tmp_path

TRAIN = """
import os, pathlib
import mlflow

mlflow.log_param("estimator", "stub")
for epoch, loss in enumerate([0.8, 0.4, 0.2]):
    mlflow.log_metric("loss", loss, step=epoch)
mlflow.log_metric("val_accuracy", 0.75)
(pathlib.Path(os.environ["SM_MODEL_DIR"]) / "model.txt").write_text("ok")
"""


def test_a_training_scripts_mlflow_calls_reach_the_run(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    ctx = JobContext(run_id="churn-0123456789", model="churn", artifacts_bucket=BUCKET, role_arn=ROLE,
                     image_uri=IMAGE,
                     instance_type="ml.m5.large", max_runtime_seconds=120)
    put(s3, model_code_key("churn"), tar_gz({"train.py": TRAIN}))
    train = put(s3, "data/train/train.csv", "label,x\n1,0.1\n")
    validation = put(s3, "data/validation/validation.csv", "label,x\n1,0.2\n")
    request = training_request(ctx, train, validation, {}, "label")
    sm.create_training_job(**{k: v for k, v in request.items() if k != "Tags"})
    finished(request["TrainingJobName"])
    job = sm.describe_training_job(TrainingJobName=request["TrainingJobName"])
    logs = aws["home"] / "jobs" / request["TrainingJobName"] / "logs.txt"
    assert job["TrainingJobStatus"] == "Completed", (job.get("FailureReason"), logs.read_text())

    output = job["ModelArtifacts"]["S3ModelArtifacts"].rsplit("/", 1)[0] + "/output.tar.gz"
    archive = get(s3, output.removeprefix(f"s3://{BUCKET}/"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert any("mlruns/" in name for name in tar.getnames())
    metrics, params = tracking.read_job_store(archive)
    assert metrics == {"loss": 0.2, "val_accuracy": 0.75}
    assert params == {"estimator": "stub"}
