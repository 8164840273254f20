"""The evaluate launch (champion as a second input), the quality gate and registration, on moto.

The evaluate job's outputs are written here as ml/evaluate.py writes them: evaluation.json, and
comparison.json with, when a champion was compared, champion_evaluation.json beside them.
"""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from autoloop import adapters, errors
from autoloop.naming import job_name
from tests.conftest import load_handler
from tests.handlers.conftest import STACK
from tests.support import seed_package

RUN = "churn-0123456789"
LATER = "churn-9876543210"
GROUPS = {"auc": "binary_classification_metrics", "rmse": "regression_metrics"}


def put_evaluation(deployed, value, run=RUN, metric="auc", champion=None, champion_arn=None, rows=300):
    """The evaluate job's output folder: the challenger's report, the champion's (if any), the comparison."""
    prefix = f"runs/churn/{run}/evaluate/evaluation"
    s3 = boto3.client("s3")

    def report(v):
        return json.dumps({GROUPS[metric]: {metric: {"value": v, "standard_deviation": "NaN"}}})

    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{prefix}/evaluation.json", Body=report(value))
    if champion is not None:
        s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{prefix}/champion_evaluation.json", Body=report(champion))
    comparison = {"metric": metric, "direction": "lower" if metric == "rmse" else "higher", "holdout_rows": rows,
                  "challenger": value, "champion": champion, "champion_arn": champion_arn}
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=f"{prefix}/comparison.json", Body=json.dumps(comparison))
    return f"s3://{deployed.artifacts_bucket}/{prefix}"


def state(deployed, value, run=RUN, threshold=None, metric="auc", champion=None, champion_arn=None, **dataset):
    return {
        "run_id": run, "model": "churn",
        "source": {"bucket": deployed.data_bucket, "key": "incoming/churn/x.csv"},
        "dataset": {"rows": 1, "columns": 9, "bytes": 1, "missing_labels": 0, "label": "churned", "metric": metric,
                    "threshold": threshold, **dataset},
        "jobs": {
            "evaluate": {"job_name": "e", "kind": "processing", "status": "Completed",
                         "outputs": {"evaluation": put_evaluation(deployed, value, run, metric, champion,
                                                                  champion_arn)}},
            "train": {"job_name": "t", "kind": "training", "status": "Completed",
                      "model_artifacts": f"s3://{deployed.artifacts_bucket}/runs/churn/{run}/train/model.tar.gz"},
            "preprocess": {"job_name": "p", "kind": "processing", "status": "Completed",
                           "outputs": {"test": f"s3://{deployed.artifacts_bucket}/runs/churn/{run}/preprocess/test"}},
        },
    }


@pytest.fixture
def gate(deployed):
    def run(payload, context):
        deployed.use_env("QualityGateFunction")
        return load_handler("quality_gate").handler(payload, context)

    return run


@pytest.fixture
def register(deployed):
    def run(payload, context):
        deployed.use_env("RegisterModelFunction")
        return load_handler("register_model").handler(payload, context)

    return run


@pytest.fixture
def launch(deployed):
    def run(payload, context):
        deployed.use_env("LaunchJobFunction")
        return load_handler("launch_job").handler(payload, context)

    return run


def promoted(deployed, gate, register, context, value=0.81, run=RUN):
    """A first model through the gate and registration: the group's champion (Approved in dev)."""
    payload = state(deployed, value, run=run)
    payload["gate"] = gate(payload, context)
    assert payload["gate"]["verdict"] == "Promote"
    return register(payload, context)["arn"]


# ----------------------------------------------------------------------------- the evaluate launch
def launch_evaluate(deployed, launch, context, run=LATER):
    payload = state(deployed, 0.0, run=run)
    del payload["jobs"]["evaluate"]
    return launch({"task_token": "tok", "step": "evaluate", "execution": "arn:exec", "state": payload}, context)


def evaluate_job(run=LATER):
    return boto3.client("sagemaker").describe_processing_job(ProcessingJobName=job_name(run, "evaluate"))


def test_first_evaluation_has_no_champion_input(deployed, launch, lambda_context):
    result = launch_evaluate(deployed, launch, lambda_context)
    assert result == {"job_name": job_name(LATER, "evaluate"), "launched": True, "champion_arn": None}
    job = evaluate_job()
    assert [i["InputName"] for i in job["ProcessingInputs"]] == ["model", "test", "code"]
    args = job["AppSpecification"]["ContainerArguments"]
    assert "--champion-dir" not in args and args[args.index("--metric") + 1] == "auc"


def test_evaluation_scores_the_approved_champion_on_the_same_rows(deployed, gate, register, launch, lambda_context):
    champion = promoted(deployed, gate, register, lambda_context)
    result = launch_evaluate(deployed, launch, lambda_context)
    assert result["champion_arn"] == champion
    job = evaluate_job()
    inputs = {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=champion)
    assert inputs["champion"]["S3Uri"] == described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert inputs["champion"]["LocalPath"] == "/opt/ml/processing/input/champion"
    args = job["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--champion-arn") + 1] == champion
    assert args[args.index("--champion-dir") + 1] == "/opt/ml/processing/input/champion"


def test_a_champion_that_cannot_be_scored_fails_the_launch_by_name(deployed, launch, lambda_context):
    seed_package(
        boto3.client("sagemaker"), STACK, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://elsewhere/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )
    with pytest.raises(errors.ChampionNotComparable, match="s3://elsewhere/model.tar.gz"):
        launch_evaluate(deployed, launch, lambda_context)
    assert boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"] == []


# ----------------------------------------------------------------------------- the gate
def test_first_model_has_no_champion(deployed, gate, lambda_context):
    result = gate(state(deployed, 0.9), lambda_context)
    assert result["verdict"] == "Promote" and result["metric"] == 0.9 and result["metric_name"] == "auc"
    assert result["threshold"] == 0.75  # template default MetricThreshold
    assert result["champion_arn"] is None and result["champion_metric"] is None
    assert result["holdout_rows"] == 300 and result["direction"] == "higher"
    assert result["evaluation_uri"].endswith("/evaluate/evaluation/evaluation.json")


def test_model_config_threshold_overrides_the_template(deployed, gate, lambda_context):
    result = gate(state(deployed, 0.9, threshold=0.95), lambda_context)
    assert result["threshold"] == 0.95 and result["verdict"] == "BelowThreshold"
    assert result["reason"] == "auc 0.9 is below the threshold 0.95 (higher is better)"


def test_the_champion_is_judged_on_the_same_holdout_not_its_registered_metric(deployed, gate, register,
                                                                             lambda_context):
    champion = promoted(deployed, gate, register, lambda_context, value=0.81)
    # On the challenger's holdout the champion scores 0.79, not the 0.81 it registered with.
    second = state(deployed, 0.80, run=LATER, champion=0.79, champion_arn=champion)
    second["gate"] = gate(second, lambda_context)
    assert second["gate"]["verdict"] == "Promote"
    assert second["gate"]["champion_arn"] == champion and second["gate"]["champion_metric"] == 0.79
    package = register(second, lambda_context)
    props = boto3.client("sagemaker").describe_model_package(
        ModelPackageName=package["arn"])["CustomerMetadataProperties"]
    assert props["autoloop:metric-value"] == "0.8" and props["autoloop:champion-metric-value"] == "0.79"
    assert props["autoloop:champion-arn"] == champion and props["autoloop:holdout-rows"] == "300"
    assert props["autoloop:metric-direction"] == "higher"


@pytest.mark.parametrize(("challenger", "champion_value", "words"), [
    (0.78, 0.79, "is no better than the champion's 0.79 on the same 300 holdout rows"),
    (0.79, 0.79, "ties the champion's 0.79 on the same 300 holdout rows: ties do not promote"),
])
def test_a_challenger_that_does_not_beat_the_champion_is_refused(deployed, gate, register, lambda_context,
                                                                 challenger, champion_value, words):
    champion = promoted(deployed, gate, register, lambda_context)
    result = gate(state(deployed, challenger, run=LATER, champion=champion_value, champion_arn=champion),
                  lambda_context)
    assert result["verdict"] == "BelowChampion" and words in result["reason"] and champion in result["reason"]


def test_min_improvement_and_promote_ties_come_from_the_model_config(deployed, gate, register, lambda_context):
    champion = promoted(deployed, gate, register, lambda_context)
    small = state(deployed, 0.795, run=LATER, champion=0.79, champion_arn=champion, min_improvement=0.01)
    assert gate(small, lambda_context)["verdict"] == "BelowChampion"
    tie = state(deployed, 0.79, run=LATER, champion=0.79, champion_arn=champion, promote_ties=True)
    result = gate(tie, lambda_context)
    assert result["verdict"] == "Promote" and result["promote_ties"] is True


def test_a_regression_gate_wants_lower_rmse(deployed, gate, register, lambda_context):
    champion = promoted(deployed, gate, register, lambda_context)
    worse = gate(state(deployed, 2.6, run=LATER, metric="rmse", threshold=5.0, champion=2.4, champion_arn=champion),
                 lambda_context)
    assert worse["verdict"] == "BelowChampion" and worse["direction"] == "lower"
    better = gate(state(deployed, 2.2, run=LATER, metric="rmse", threshold=5.0, champion=2.4,
                        champion_arn=champion), lambda_context)
    assert better["verdict"] == "Promote"


def test_a_champion_approved_after_the_evaluation_was_not_beaten(deployed, gate, register, lambda_context):
    first = promoted(deployed, gate, register, lambda_context)
    # This challenger was evaluated while `first` was the champion; then another model was approved.
    stale = state(deployed, 0.85, run=LATER, champion=0.80, champion_arn=first)
    beats_first = state(deployed, 0.83, run="churn-5555555555", champion=0.80, champion_arn=first)
    beats_first["gate"] = gate(beats_first, lambda_context)
    newer = register(beats_first, lambda_context)["arn"]
    result = gate(stale, lambda_context)
    assert result["verdict"] == "BelowChampion" and f"the champion changed to {newer}" in result["reason"]


def test_champion_files_that_disagree_are_named(deployed, gate, register, lambda_context):
    champion = promoted(deployed, gate, register, lambda_context)
    payload = state(deployed, 0.8, run=LATER, champion=0.79, champion_arn=champion)
    folder = payload["jobs"]["evaluate"]["outputs"]["evaluation"]
    bucket, prefix = folder[5:].split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/champion_evaluation.json", Body=json.dumps(
        {"binary_classification_metrics": {"auc": {"value": 0.5, "standard_deviation": "NaN"}}}))
    with pytest.raises(errors.EvaluationMissing, match="disagrees with"):
        gate(payload, lambda_context)


def test_missing_evaluation_is_named(deployed, gate, lambda_context):
    payload = state(deployed, 0.9)
    payload["jobs"]["evaluate"]["outputs"]["evaluation"] = f"s3://{deployed.artifacts_bucket}/nowhere"
    with pytest.raises(errors.AwsCallFailed, match="NoSuchKey"):
        gate(payload, lambda_context)


# ----------------------------------------------------------------------------- registration
def test_only_a_promoted_challenger_is_registered(deployed, gate, register, lambda_context):
    payload = state(deployed, 0.7)
    payload["gate"] = gate(payload, lambda_context)
    assert payload["gate"]["verdict"] == "BelowThreshold"
    with pytest.raises(errors.InvalidEvent, match="not 'Promote'"):
        register(payload, lambda_context)
    assert boto3.client("sagemaker").list_model_packages(ModelPackageGroupName=f"{STACK}-churn")[
        "ModelPackageSummaryList"] == []


def test_registered_model_records_its_evaluation(deployed, gate, register, lambda_context):
    arn = promoted(deployed, gate, register, lambda_context)
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"  # Environment=dev
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("model.tar.gz")
    props = described["CustomerMetadataProperties"]
    assert props["autoloop:holdout-rows"] == "300" and "autoloop:champion-arn" not in props


def test_a_models_first_registration_creates_its_group_tagged_with_the_stack(deployed, gate, register,
                                                                           lambda_context):
    """No template resource names a model: the group <stack>-<model> comes with its first package."""
    sm = boto3.client("sagemaker")
    group = f"{STACK}-fraud"
    with pytest.raises(ClientError, match="does not exist"):
        sm.describe_model_package_group(ModelPackageGroupName=group)
    payload = state(deployed, 0.9)
    payload["gate"] = gate(payload, lambda_context)  # no group yet: no champion
    assert payload["gate"]["verdict"] == "Promote" and payload["gate"]["champion_arn"] is None
    payload["model"] = "fraud"
    result = register(payload, lambda_context)
    assert result["group"] == group and result["arn"].split("/")[-2] == group
    described = sm.describe_model_package_group(ModelPackageGroupName=group)
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=described["ModelPackageGroupArn"])["Tags"]}
    assert tags == {"autoloop:stack": STACK, "autoloop:model": "fraud"}
    assert [p["ModelPackageArn"] for p in sm.list_model_packages(ModelPackageGroupName=group)[
        "ModelPackageSummaryList"]] == [result["arn"]]


def test_concurrent_first_registrations_of_a_model_both_succeed(deployed, gate, register, lambda_context):
    """Two runs of a new model register at once: both find no group; the one that creates it second
    gets AWS's "already exists", which is the group it wanted."""
    sm = adapters.client("sagemaker")
    first = state(deployed, 0.9)
    first["gate"] = gate(first, lambda_context)
    second = state(deployed, 0.91, run=LATER)
    second["gate"] = gate(second, lambda_context)
    for payload in (first, second):
        payload["model"] = "fraud"
    raced: list[str] = []

    def the_other_run_registers_first(**_: object) -> None:
        if not raced:  # the first run's CreateModelPackageGroup: the second run gets there before it
            raced.append("racing")
            raced[0] = register(second, lambda_context)["arn"]

    sm.meta.events.register("before-call.sagemaker.CreateModelPackageGroup", the_other_run_registers_first)
    try:
        arn = register(first, lambda_context)["arn"]
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateModelPackageGroup", the_other_run_registers_first)
    assert raced and raced[0] != arn
    listed = sm.list_model_packages(ModelPackageGroupName=f"{STACK}-fraud")["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageArn"] for p in listed) == sorted([arn, raced[0]])


def test_a_group_made_by_hand_is_used_as_it_is(deployed, gate, register, lambda_context):
    sm = boto3.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=f"{STACK}-fraud", ModelPackageGroupDescription="by hand")
    payload = state(deployed, 0.9)
    payload["gate"] = gate(payload, lambda_context)
    payload["model"] = "fraud"
    register(payload, lambda_context)
    described = sm.describe_model_package_group(ModelPackageGroupName=f"{STACK}-fraud")
    assert described["ModelPackageGroupDescription"] == "by hand"
