"""launch_job, job_callback and reconcile_job against moto's SageMaker and DynamoDB."""

import json

import boto3
import pytest

from autoloop import adapters, errors, tasks, training_steps
from autoloop.config import LaunchSettings, load_settings
from autoloop.naming import job_name
from tests.conftest import load_event, load_handler

RUN = "churn-0123456789"


class RecordingStepFunctions:
    """Stands in for SendTaskSuccess/Failure: moto has no waiting task for these tokens."""

    def __init__(self, closed=False):
        self.calls = []
        self.closed = closed

    def send_task_success(self, **kwargs):
        self._call("success", kwargs)

    def send_task_failure(self, **kwargs):
        self._call("failure", kwargs)

    def _call(self, kind, kwargs):
        if self.closed:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "closed"}}, "SendTask")
        self.calls.append((kind, kwargs))


def state(deployed, **jobs):
    return {
        "run_id": RUN, "model": "churn",
        "source": {"bucket": deployed.data_bucket, "key": "incoming/churn/x.csv", "version_id": "v1"},
        "dataset": {"rows": 400, "columns": 9, "bytes": 1000, "missing_labels": 0, "label": "churned",
                    "metric": "auc", "threshold": None, "hyperparameters": {"C": 1.0},
                    "input_uri": f"s3://{deployed.artifacts_bucket}/runs/churn/{RUN}/input/"},
        "jobs": jobs,
    }


@pytest.fixture
def launch(deployed):
    deployed.use_env("LaunchJobFunction")
    return load_handler("launch_job").handler


def token_item(deployed, name):
    table = deployed.resources["TaskTokenTable"]
    return boto3.client("dynamodb").get_item(TableName=table, Key={"job_name": {"S": name}}).get("Item")


def test_launch_preprocess_creates_the_job_and_parks_the_token(deployed, launch, lambda_context):
    result = launch({"task_token": "tok-1", "step": "preprocess", "execution": "arn:exec", "state": state(deployed)},
                    lambda_context)
    name = job_name(RUN, "preprocess")
    assert result == {"job_name": name, "launched": True}
    job = boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)
    assert job["RoleArn"] == deployed.outputs["SageMakerExecutionRoleArn"]
    # The copy of the validated version (ValidateInput), never the upload's key as a prefix.
    assert job["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"s3://{deployed.artifacts_bucket}/runs/churn/{RUN}/input/"
    item = token_item(deployed, name)
    assert item["token"]["S"] == "tok-1" and item["execution_arn"]["S"] == "arn:exec"
    assert int(item["expires_at"]["N"]) > 0


def test_launch_train_uses_preprocess_outputs_and_config_hyperparameters(deployed, launch, lambda_context):
    pre = {"job_name": "x", "kind": "processing", "status": "Completed",
           "outputs": {"train": "s3://a/train", "validation": "s3://a/val", "test": "s3://a/test"}}
    launch({"task_token": "tok-2", "step": "train", "state": state(deployed, preprocess=pre)}, lambda_context)
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name(RUN, "train"))
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels["train"] == "s3://a/train" and channels["validation"] == "s3://a/val"
    assert json.loads(job["HyperParameters"]["C"]) == 1.0


def test_launch_without_published_code_fails_before_creating_a_job(deployed, launch, lambda_context):
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=deployed.artifacts_bucket, Key="code/ml/preprocess.py")
    with pytest.raises(errors.MlCodeMissing, match="autoloop publish"):
        launch({"task_token": "t", "step": "preprocess", "state": state(deployed)}, lambda_context)
    assert boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"] == []


def test_launch_requires_the_previous_step(deployed, launch, lambda_context):
    with pytest.raises(errors.InvalidEvent, match="'preprocess'"):
        launch({"task_token": "t", "step": "train", "state": state(deployed)}, lambda_context)


@pytest.fixture
def callback(deployed):
    deployed.use_env("JobCallbackFunction")
    sfn = RecordingStepFunctions()
    adapters.set_client("stepfunctions", sfn)
    return load_handler("job_callback").handler, sfn


def park(deployed, name, token="tok"):
    tasks.TokenStore(deployed.resources["TaskTokenTable"]).put(name, token, "arn:exec", "preprocess")


def make_processing_job(deployed, name):
    boto3.client("sagemaker").create_processing_job(
        ProcessingJobName=name, RoleArn=deployed.outputs["SageMakerExecutionRoleArn"],
        AppSpecification={"ImageUri": "img"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "train", "S3Output": {
            "S3Uri": "s3://a/train", "LocalPath": "/opt/ml/processing/output/train", "S3UploadMode": "EndOfJob"}}]},
    )


def event_for(name, status, reason=None):
    event = load_event("sagemaker_processing_job_completed")
    event["detail"]["ProcessingJobName"] = name
    event["detail"]["ProcessingJobStatus"] = status
    if reason:
        event["detail"]["FailureReason"] = reason
    return event


def test_completed_job_event_sends_task_success_once(deployed, callback, lambda_context):
    handler, sfn = callback
    name = job_name(RUN, "preprocess")
    make_processing_job(deployed, name)
    park(deployed, name, "tok-9")
    first = handler(event_for(name, "Completed"), lambda_context)
    second = handler(event_for(name, "Completed"), lambda_context)
    assert first["task"] == "completed" and first["outputs"] == {"train": "s3://a/train"}
    assert "ignored" in second
    [(kind, call)] = sfn.calls
    assert kind == "success" and call["taskToken"] == "tok-9"
    assert json.loads(call["output"])["job_name"] == name
    assert token_item(deployed, name) is None


def test_failed_job_event_sends_task_failure_with_the_reason(deployed, callback, lambda_context):
    handler, sfn = callback
    name = job_name(RUN, "preprocess")
    make_processing_job(deployed, name)
    sm = boto3.client("sagemaker")
    sm.stop_processing_job(ProcessingJobName=name)
    park(deployed, name)
    handler(event_for(name, "Stopped"), lambda_context)
    [(kind, call)] = sfn.calls
    assert kind == "failure" and call["error"] == "JobFailed" and name in call["cause"]


def test_non_terminal_events_leave_the_token_waiting(deployed, callback, lambda_context):
    handler, sfn = callback
    name = job_name(RUN, "preprocess")
    park(deployed, name)
    result = handler(event_for(name, "InProgress"), lambda_context)
    assert "not terminal" in result["ignored"]
    assert sfn.calls == [] and token_item(deployed, name) is not None


def test_events_for_jobs_nobody_waits_for_are_ignored(deployed, callback, lambda_context):
    handler, sfn = callback
    result = handler(event_for("someone-elses-job", "Completed"), lambda_context)
    assert "no task is waiting" in result["ignored"] and sfn.calls == []


def test_a_task_that_already_closed_is_harmless(deployed, lambda_context):
    deployed.use_env("JobCallbackFunction")
    adapters.set_client("stepfunctions", RecordingStepFunctions(closed=True))
    name = job_name(RUN, "preprocess")
    make_processing_job(deployed, name)
    park(deployed, name)
    result = load_handler("job_callback").handler(event_for(name, "Completed"), lambda_context)
    assert result["task"] == "already-closed"


def test_malformed_job_event_raises(deployed, callback, lambda_context):
    handler, _ = callback
    with pytest.raises(errors.InvalidEvent):
        handler({"source": "aws.sagemaker", "detail-type": "SageMaker Processing Job State Change"}, lambda_context)


def test_reconcile_returns_the_result_or_raises_by_status(deployed, lambda_context):
    handler = load_handler("reconcile_job").handler
    name = job_name(RUN, "preprocess")
    with pytest.raises(errors.JobNotFound):
        handler({"run_id": RUN, "step": "preprocess"}, lambda_context)
    make_processing_job(deployed, name)
    assert handler({"run_id": RUN, "step": "preprocess"}, lambda_context)["status"] == "Completed"
    boto3.client("sagemaker").stop_processing_job(ProcessingJobName=name)
    with pytest.raises(errors.JobFailed, match="Stopped"):
        handler({"run_id": RUN, "step": "preprocess"}, lambda_context)


def test_launch_uses_the_configs_instance_type_for_its_step_and_the_stacks_otherwise(deployed, launch,
                                                                                    lambda_context):
    """instance_types in models/<model>/config.json, carried by the dataset from ValidateInput."""
    pre = {"job_name": "x", "kind": "processing", "status": "Completed",
           "outputs": {"train": "s3://a/train", "validation": "s3://a/val", "test": "s3://a/test"}}
    chosen = state(deployed, preprocess=pre)
    chosen["dataset"]["instance_types"] = {"train": "ml.g5.xlarge"}
    launch({"task_token": "tok-3", "step": "train", "state": chosen}, lambda_context)
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name(RUN, "train"))
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    # moto's DescribeProcessingJob leaves out ProcessingResources: read the request the launcher builds
    environment = deployed.function_environment("LaunchJobFunction")
    _, _, request = training_steps._job_spec("preprocess", chosen, load_settings(LaunchSettings, environment))
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == environment["PROCESSING_INSTANCE_TYPE"]
