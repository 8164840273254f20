import json

from autoloop import jobs
from autoloop.naming import MAX_JOB_NAME

CTX = jobs.JobContext(
    run_id="churn-0123456789", model="churn", artifacts_bucket="art", role_arn="arn:aws:iam::1:role/sm",
    image_uri="img:1", instance_type="ml.m5.large", max_runtime_seconds=900, stack_name="autoloop-dev",
)


def tags(spec):
    return {t["Key"]: t["Value"] for t in spec["Tags"]}


def test_preprocess_request_follows_the_processing_contract():
    spec = jobs.preprocess_request(CTX, "s3://data/incoming/churn/x.csv")
    assert spec["ProcessingJobName"] == "churn-0123456789-preprocess"
    assert spec["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/preprocess.py"]
    inputs = {i["InputName"]: i["S3Input"] for i in spec["ProcessingInputs"]}
    assert inputs["raw"]["S3Uri"] == "s3://data/incoming/churn/x.csv"
    assert inputs["code"]["S3Uri"] == "s3://art/code/ml/"
    assert inputs["config"]["S3Uri"] == "s3://art/config/models/churn.json"
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in spec["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"] == "s3://art/runs/churn/churn-0123456789/preprocess/train"
    assert set(outputs) == {"train", "validation", "test", "baseline"}
    assert spec["StoppingCondition"]["MaxRuntimeInSeconds"] == 900
    assert spec["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert tags(spec) == {"autoloop:run-id": CTX.run_id, "autoloop:model": "churn",
                          "autoloop:step": "preprocess", "autoloop:stack": "autoloop-dev"}
    args = spec["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--config") + 1] == "/opt/ml/processing/input/config/churn.json"


def test_training_request_is_script_mode_with_code_as_a_channel():
    spec = jobs.training_request(CTX, "s3://art/t", "s3://art/v", {"C": 0.5, "max-iter": 100}, "churned")
    hps = {k: json.loads(v) for k, v in spec["HyperParameters"].items()}
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert hps["C"] == 0.5 and hps["max-iter"] == 100 and hps["label"] == "churned"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in spec["InputDataConfig"]}
    assert channels == {"train": "s3://art/t", "validation": "s3://art/v", "code": "s3://art/code/ml/sourcedir.tar.gz"}
    assert spec["EnableNetworkIsolation"] is True
    assert spec["OutputDataConfig"]["S3OutputPath"].startswith("s3://art/runs/churn/churn-0123456789/")
    assert len(spec["TrainingJobName"]) <= MAX_JOB_NAME


def test_evaluate_request_reads_model_and_test_split():
    spec = jobs.evaluate_request(CTX, "s3://art/m/model.tar.gz", "s3://art/test", "churned")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in spec["ProcessingInputs"]}
    assert inputs["model"] == "s3://art/m/model.tar.gz" and inputs["test"] == "s3://art/test"
    assert spec["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] == "evaluation"


def test_job_result_shapes_match_for_both_kinds():
    processing = jobs.job_result("processing", {
        "ProcessingJobName": "p", "ProcessingJobStatus": "Failed", "FailureReason": "boom",
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://x/e"}}]},
    })
    training = jobs.job_result("training", {
        "TrainingJobName": "t", "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://x/model.tar.gz"},
    })
    assert processing == {"job_name": "p", "kind": "processing", "status": "Failed",
                          "outputs": {"evaluation": "s3://x/e"}, "model_artifacts": None, "failure_reason": "boom"}
    assert training["model_artifacts"] == "s3://x/model.tar.gz" and training["failure_reason"] is None
    assert set(processing) == set(training)
