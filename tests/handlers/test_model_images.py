"""Per-model images and lineage through the handlers, on moto with the real template.

The fixture publishes ``models/`` as ``autoloop publish`` does, so the fraud model's config
carries the XGBoost images the SageMaker SDK resolved for the stack's region. A fraud run then
goes validate -> train -> evaluate -> register -> deploy -> batch, and every SageMaker resource
that runs the model's code must name the model's images; Autoloop's own steps keep the stack's
FrameworkImageUri.
"""

import hashlib
import json

import boto3
import pytest

from autoloop.jobs import config_key, model_code_key
from autoloop.naming import job_name
from autoloop_cli.datagen import generate_fraud as generate
from tests.conftest import load_event, load_handler
from tests.handlers.conftest import STACK

RUN = "fraud-0123456789"


def published(deployed, model):
    body = boto3.client("s3").get_object(Bucket=deployed.artifacts_bucket, Key=config_key(model))["Body"].read()
    return json.loads(body)["published"]


def call(deployed, function, handler, payload, context):
    deployed.use_env(function)
    return load_handler(handler).handler(payload, context)


@pytest.fixture
def fraud_run(deployed, lambda_context):
    """A validated fraud run whose preprocess and train jobs completed."""
    body = generate(600, seed=3).to_csv(index=False).encode()
    put = boto3.client("s3").put_object(Bucket=deployed.data_bucket, Key="incoming/fraud/jan.csv", Body=body)
    state = {"run_id": RUN, "model": "fraud",
             "source": {"bucket": deployed.data_bucket, "key": "incoming/fraud/jan.csv",
                        "version_id": put.get("VersionId"), "etag": put["ETag"].strip('"'), "size": len(body)}}
    state["dataset"] = call(deployed, "ValidateInputFunction", "validate_input", state, lambda_context)
    state["jobs"] = {
        "preprocess": {"job_name": job_name(RUN, "preprocess"), "kind": "processing", "status": "Completed",
                       "outputs": {"train": "s3://a/train", "validation": "s3://a/val", "test": "s3://a/test"}},
        "train": {"job_name": job_name(RUN, "train"), "kind": "training", "status": "Completed",
                  "model_artifacts": f"s3://{deployed.artifacts_bucket}/runs/fraud/{RUN}/train/model.tar.gz"},
    }
    return state


def launch(deployed, step, state, context):
    return call(deployed, "LaunchJobFunction", "launch_job", {"task_token": f"tok-{step}", "step": step,
                                                              "state": state}, context)


def test_publish_resolves_each_models_images_for_the_stacks_region(deployed):
    fraud, churn = published(deployed, "fraud"), published(deployed, "churn")
    assert fraud["region"] == boto3.client("s3").meta.region_name == "us-east-1"
    assert fraud["training_image"].endswith(".dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert fraud["inference_image"] == fraud["training_image"]
    # scikit-learn 1.2-1 resolves to the image the stack's FrameworkImageUri names by default.
    stack_image = deployed.function_environment("LaunchJobFunction")["FRAMEWORK_IMAGE_URI"]
    assert churn["training_image"] == churn["inference_image"] == stack_image
    bundle = boto3.client("s3").get_object(Bucket=deployed.artifacts_bucket, Key=model_code_key("fraud"))
    assert fraud["bundle_sha256"] == hashlib.sha256(bundle["Body"].read()).hexdigest()


def test_training_and_evaluation_run_in_the_models_image_preprocessing_in_the_stacks(deployed, fraud_run,
                                                                                     lambda_context):
    xgboost = published(deployed, "fraud")["training_image"]
    stack_image = deployed.function_environment("LaunchJobFunction")["FRAMEWORK_IMAGE_URI"]
    assert fraud_run["dataset"]["training_image"] == xgboost and fraud_run["dataset"]["framework"] == "xgboost"
    sm = boto3.client("sagemaker")
    launch(deployed, "preprocess", fraud_run, lambda_context)
    launch(deployed, "train", fraud_run, lambda_context)
    launch(deployed, "evaluate", fraud_run, lambda_context)
    preprocess = sm.describe_processing_job(ProcessingJobName=job_name(RUN, "preprocess"))
    train = sm.describe_training_job(TrainingJobName=job_name(RUN, "train"))
    evaluate = sm.describe_processing_job(ProcessingJobName=job_name(RUN, "evaluate"))
    assert preprocess["AppSpecification"]["ImageUri"] == stack_image != xgboost
    assert train["AlgorithmSpecification"]["TrainingImage"] == xgboost
    # evaluate.py unpickles an XGBoost pipeline: only the XGBoost image has xgboost installed.
    assert evaluate["AppSpecification"]["ImageUri"] == xgboost


def test_a_scikit_learn_models_evaluation_stays_in_the_stacks_image(deployed, fraud_run, lambda_context):
    churn = {**fraud_run, "run_id": "churn-0123456789", "model": "churn"}
    churn["dataset"] = {**fraud_run["dataset"], "framework": "sklearn", **{
        k: published(deployed, "churn")[k] for k in ("training_image", "inference_image")}}
    launch(deployed, "evaluate", churn, lambda_context)
    evaluate = boto3.client("sagemaker").describe_processing_job(
        ProcessingJobName=job_name("churn-0123456789", "evaluate"))
    assert evaluate["AppSpecification"]["ImageUri"] == deployed.function_environment(
        "LaunchJobFunction")["FRAMEWORK_IMAGE_URI"]


def test_the_package_the_endpoint_and_the_batch_model_serve_from_the_models_image_with_lineage(
        deployed, fraud_run, lambda_context):
    fraud = published(deployed, "fraud")
    evaluation = f"s3://{deployed.artifacts_bucket}/runs/fraud/{RUN}/evaluate/evaluation/evaluation.json"
    fraud_run["gate"] = {"verdict": "Promote", "evaluation_uri": evaluation, "metric_name": "auc", "metric": 0.91,
                         "direction": "higher", "champion_arn": None, "champion_metric": None, "holdout_rows": 120}
    registered = call(deployed, "RegisterModelFunction", "register_model", fraud_run, lambda_context)
    sm = boto3.client("sagemaker")
    package = sm.describe_model_package(ModelPackageName=registered["arn"])
    assert package["InferenceSpecification"]["Containers"][0]["Image"] == fraud["inference_image"]
    props = package["CustomerMetadataProperties"]
    source = fraud_run["source"]
    assert {k: props.get(k) for k in (
        "autoloop:task", "autoloop:framework", "autoloop:training-image", "autoloop:entry-point",
        "autoloop:bundle-sha256", "autoloop:training-job", "autoloop:source-version", "autoloop:source",
        "autoloop:metric-name", "autoloop:metric-value", "autoloop:holdout-rows")} == {
        "autoloop:task": "binary", "autoloop:framework": "xgboost", "autoloop:training-image": fraud["training_image"],
        "autoloop:entry-point": "train.py", "autoloop:bundle-sha256": fraud["bundle_sha256"],
        "autoloop:training-job": job_name(RUN, "train"), "autoloop:source-version": source["version_id"],
        "autoloop:source": f"s3://{source['bucket']}/{source['key']}",
        "autoloop:metric-name": "auc", "autoloop:metric-value": "0.91", "autoloop:holdout-rows": "120"}
    assert props["autoloop:hyperparameters"] == "n-estimators=150 max-depth=3 learning-rate=0.05"

    event = load_event("sagemaker_model_package_approved")
    event["detail"].update({"ModelPackageArn": registered["arn"], "ModelApprovalStatus": "Approved",
                            "ModelPackageGroupName": f"{STACK}-fraud", "ModelPackageVersion": 1})
    plan = call(deployed, "PlanDeploymentFunction", "plan_deployment", event, lambda_context)
    call(deployed, "DeployEndpointFunction", "deploy_endpoint", {"task_token": "tok", "plan": plan}, lambda_context)
    assert sm.describe_model(ModelName=plan["model_name"])["PrimaryContainer"]["Image"] == fraud["inference_image"]

    rows = generate(5, seed=4).drop(columns=["is_fraud"]).to_csv(index=False).encode()
    boto3.client("s3").put_object(Bucket=deployed.data_bucket, Key="batch/fraud/2026-01/a.csv", Body=rows)
    batch = call(deployed, "PlanBatchFunction", "plan_batch", {
        "request": {"model": "fraud", "month": "2026-01", "force": False, "trigger": {"type": "manual"}},
        "execution": ""}, lambda_context)
    assert batch["action"] == "score"
    assert sm.describe_model(ModelName=batch["model_name"])["PrimaryContainer"]["Image"] == fraud["inference_image"]


def test_validation_fixes_the_configs_job_instance_types_for_the_run(deployed, lambda_context):
    """instance_types for preprocess, train and evaluate travel in the run's dataset, so a config
    published during the run does not change the run's jobs; transform and endpoint are read
    by their own steps."""
    from autoloop_cli.publish import publish_config_with

    publish_config_with(boto3.client("s3"), deployed.artifacts_bucket, "fraud",
                        {"instance_types": {"train": "ml.c5.2xlarge", "endpoint": "ml.c5.large"}})
    body = generate(600, seed=3).to_csv(index=False).encode()
    put = boto3.client("s3").put_object(Bucket=deployed.data_bucket, Key="incoming/fraud/feb.csv", Body=body)
    state = {"run_id": RUN, "model": "fraud",
             "source": {"bucket": deployed.data_bucket, "key": "incoming/fraud/feb.csv",
                        "version_id": put.get("VersionId"), "etag": put["ETag"].strip('"'), "size": len(body)}}
    dataset = call(deployed, "ValidateInputFunction", "validate_input", state, lambda_context)
    assert dataset["instance_types"] == {"train": "ml.c5.2xlarge"}
