import json

import boto3
import pytest

from autoloop import errors
from tests.conftest import load_handler
from tests.handlers.conftest import STACK

RUN = "churn-0123456789"


def put_evaluation(deployed, auc, run=RUN):
    prefix = f"runs/churn/{run}/evaluate/evaluation"
    doc = {"binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": "NaN"}}}
    key = f"{prefix}/evaluation.json"
    boto3.client("s3").put_object(Bucket=deployed.artifacts_bucket, Key=key, Body=json.dumps(doc))
    return f"s3://{deployed.artifacts_bucket}/{prefix}"


def state(deployed, auc, run=RUN, threshold=None):
    return {
        "run_id": run, "model": "churn",
        "source": {"bucket": deployed.data_bucket, "key": "incoming/churn/x.csv"},
        "dataset": {"rows": 1, "columns": 9, "bytes": 1, "missing_labels": 0, "label": "churned", "metric": "auc",
                    "threshold": threshold},
        "jobs": {
            "evaluate": {"job_name": "e", "kind": "processing", "status": "Completed",
                         "outputs": {"evaluation": put_evaluation(deployed, auc, run)}},
            "train": {"job_name": "t", "kind": "training", "status": "Completed",
                      "model_artifacts": f"s3://{deployed.artifacts_bucket}/runs/churn/{run}/model.tar.gz"},
        },
    }


@pytest.fixture
def gate(deployed):
    deployed.use_env("QualityGateFunction")
    return load_handler("quality_gate").handler


@pytest.fixture
def register(deployed, monkeypatch):
    def run(payload, context):
        deployed.use_env("RegisterModelFunction")
        return load_handler("register_model").handler(payload, context)

    return run


def test_first_model_has_no_champion(deployed, gate, lambda_context):
    result = gate(state(deployed, 0.9), lambda_context)
    assert result["metric"] == 0.9 and result["metric_name"] == "auc"
    assert result["threshold"] == 0.75  # template default MetricThreshold
    assert result["champion_arn"] is None and result["champion_metric"] is None


def test_model_config_threshold_overrides_the_template(deployed, gate, lambda_context):
    assert gate(state(deployed, 0.9, threshold=0.95), lambda_context)["threshold"] == 0.95


def test_registered_model_becomes_the_champion_of_the_next_gate(deployed, gate, register, lambda_context):
    first = state(deployed, 0.81)
    first["gate"] = gate(first, lambda_context)
    package = register(first, lambda_context)
    assert package["approval_status"] == "Approved"  # Environment=dev
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["arn"])
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("evaluation.json")
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("model.tar.gz")
    second = gate(state(deployed, 0.85, run="churn-9876543210"), lambda_context)
    assert second["champion_arn"] == package["arn"] and second["champion_metric"] == 0.81


def test_missing_evaluation_is_named(deployed, gate, lambda_context):
    payload = state(deployed, 0.9)
    payload["jobs"]["evaluate"]["outputs"]["evaluation"] = f"s3://{deployed.artifacts_bucket}/nowhere"
    with pytest.raises(errors.AwsCallFailed, match="NoSuchKey"):
        gate(payload, lambda_context)


def test_unknown_model_group_is_named_at_registration(deployed, gate, register, lambda_context):
    payload = state(deployed, 0.9)
    payload["gate"] = gate(payload, lambda_context)
    payload["model"] = "fraud"
    with pytest.raises(errors.UnknownModel, match=f"{STACK}-fraud"):
        register(payload, lambda_context)
