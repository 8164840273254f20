import pytest

from autoloop import gate, registry
from autoloop.errors import EvaluationMissing


def test_metric_is_read_from_the_model_registry_shape():
    doc = {"binary_classification_metrics": {"auc": {"value": 0.91, "standard_deviation": "NaN"}}}
    assert gate.metric_from_evaluation(doc, "auc", "e.json") == 0.91
    with pytest.raises(EvaluationMissing, match="'f1'"):
        gate.metric_from_evaluation(doc, "f1", "e.json")
    with pytest.raises(EvaluationMissing, match="finite"):
        gate.metric_from_evaluation({"binary_classification_metrics": {"auc": {"value": "NaN"}}}, "auc", "e")


def test_package_request_round_trips_the_metric_for_the_next_gate():
    request = registry.model_package_request(
        group="stack-churn", run_id="churn-0123456789", image_uri="img", model_artifacts="s3://a/model.tar.gz",
        evaluation_uri="s3://a/evaluation.json", metric_name="auc", metric=0.8123, approval_status="Approved",
        source_uri="s3://d/incoming/churn/x.csv", trigger={"type": "drift"},
    )
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://a/evaluation.json"
    assert request["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert request["CustomerMetadataProperties"]["autoloop:trigger"] == "drift"
    assert registry.metric_from_package(request, "auc") == 0.8123
    assert registry.metric_from_package(request, "f1") is None
    with pytest.raises(ValueError, match="approval status"):
        registry.model_package_request(
            group="g", run_id="r", image_uri="i", model_artifacts="m", evaluation_uri="e", metric_name="auc",
            metric=0.5, approval_status="Maybe", source_uri="s",
        )
