import pytest

from autoloop import gate, registry
from autoloop.errors import ChampionNotComparable, EvaluationMissing
from tests.request_rules import violations

CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/autoloop-dev-churn/3"


def request(**kw):
    return registry.model_package_request(**{
        "group": "stack-churn", "run_id": "churn-0123456789", "image_uri": "img",
        "model_artifacts": "s3://a/model.tar.gz", "evaluation_uri": "s3://a/evaluation.json", "metric_name": "auc",
        "metric": 0.8123, "approval_status": "Approved", "source_uri": "s3://d/incoming/churn/x (1).csv",
        "trigger": {"type": "drift"}, **kw})


def test_metric_is_read_from_the_model_registry_shape():
    doc = {"binary_classification_metrics": {"auc": {"value": 0.91, "standard_deviation": "NaN"}}}
    assert gate.metric_from_evaluation(doc, "auc", "e.json") == 0.91
    with pytest.raises(EvaluationMissing, match="'f1'"):
        gate.metric_from_evaluation(doc, "f1", "e.json")
    with pytest.raises(EvaluationMissing, match="finite"):
        gate.metric_from_evaluation({"binary_classification_metrics": {"auc": {"value": "NaN"}}}, "auc", "e")
    assert gate.metric_from_evaluation({"regression_metrics": {"rmse": {"value": 2}}}, "rmse", "e") == 2.0


def test_package_request_round_trips_the_metric_for_the_next_gate():
    first = request()
    assert first["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://a/evaluation.json"
    assert first["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert first["CustomerMetadataProperties"]["autoloop:trigger"] == "drift"
    assert registry.metric_from_package(first, "auc") == 0.8123
    assert registry.metric_from_package(first, "f1") is None
    with pytest.raises(ValueError, match="approval status"):
        request(approval_status="Maybe")


def test_package_records_challenger_and_champion_on_the_same_holdout():
    package = request(direction="higher", champion_arn=CHAMPION, champion_metric=0.8021, holdout_rows=300)
    props = package["CustomerMetadataProperties"]
    assert props["autoloop:metric-value"] == "0.8123" and props["autoloop:champion-metric-value"] == "0.8021"
    assert props["autoloop:champion-arn"] == CHAMPION and props["autoloop:holdout-rows"] == "300"
    assert registry.gate_comparison(package) == {"champion_arn": CHAMPION, "champion_metric": 0.8021,
                                                 "holdout_rows": 300, "direction": "higher"}
    assert violations("sagemaker", "CreateModelPackage", package) == []
    # a first model: nothing compared
    first = request(holdout_rows=250)
    assert registry.gate_comparison(first) == {"champion_arn": None, "champion_metric": None,
                                               "holdout_rows": 250, "direction": None}
    assert violations("sagemaker", "CreateModelPackage", first) == []
    # tiny and huge values stay in the metadata pattern (no "inf", no "nan")
    assert violations("sagemaker", "CreateModelPackage",
                      request(metric=1e-300, champion_arn=CHAMPION, champion_metric=-2.5e17)) == []
    with pytest.raises(ValueError, match="not a finite number"):
        request(metric=float("nan"))
    with pytest.raises(ValueError, match="go together"):
        request(champion_arn=CHAMPION)


def described(url, metric="0.81"):
    return {"ModelPackageArn": CHAMPION,
            "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": url}]},
            "CustomerMetadataProperties": {"autoloop:metric-name": "auc", "autoloop:metric-value": metric}}


def test_the_champion_to_compare_is_an_autoloop_training_artifact(monkeypatch):
    url = "s3://art/runs/churn/churn-0123456789/train/output/j/output/model.tar.gz"
    monkeypatch.setattr(registry, "latest_approved_package", lambda group: described(url))
    found = registry.comparable_champion("s-churn", "art")
    assert found == registry.Champion(arn=CHAMPION, model_data_url=url, metric_name="auc", metric=0.81)
    for elsewhere in ("s3://other/runs/model.tar.gz", "s3://art/models/model.tar.gz", "https://x/model.tar.gz"):
        monkeypatch.setattr(registry, "latest_approved_package", lambda group, u=elsewhere: described(u))
        with pytest.raises(ChampionNotComparable, match="not an Autoloop training artifact"):
            registry.comparable_champion("s-churn", "art")
    two = described(url)
    two["InferenceSpecification"]["Containers"].append({"Image": "img", "ModelDataUrl": url})
    monkeypatch.setattr(registry, "latest_approved_package", lambda group: two)
    with pytest.raises(ChampionNotComparable, match="no single container"):
        registry.comparable_champion("s-churn", "art")
    monkeypatch.setattr(registry, "latest_approved_package", lambda group: None)
    assert registry.comparable_champion("s-churn", "art") is None


def test_the_longest_champion_arn_fits_the_metadata_and_the_job_arguments():
    from autoloop import jobs, naming
    from tests.contract.test_request_patterns import ARTIFACTS, LONG_MODEL, LONG_STACK

    group = registry.package_group_name(LONG_STACK, LONG_MODEL)
    arn = f"arn:aws:sagemaker:eu-central-1:123456789012:model-package/{group}/999999"
    package = request(group=group, champion_arn=arn, champion_metric=0.5, holdout_rows=10**7, direction="higher")
    assert violations("sagemaker", "CreateModelPackage", package) == []
    ctx = jobs.JobContext(run_id=naming.run_id(LONG_MODEL, "b", "incoming/k.csv", "v"), model=LONG_MODEL,
                          artifacts_bucket=ARTIFACTS, role_arn="arn:aws:iam::123456789012:role/r", image_uri="img",
                          instance_type="ml.m5.large", max_runtime_seconds=3600)
    spec = jobs.evaluate_request(ctx, ctx.uri("train", "model.tar.gz"), ctx.uri("preprocess", "test"), "churned",
                                 metric="auc", champion_model=f"s3://{ARTIFACTS}/runs/x/model.tar.gz", champion_arn=arn)
    assert violations("sagemaker", "CreateProcessingJob", spec) == []


def test_the_rollback_alarms_watch_the_endpoint_and_are_tagged_with_the_stack():
    from autoloop.deploy import rollback_alarm_requests, rollback_alarms

    requests = rollback_alarm_requests("s-churn", stack="s", model="churn")
    assert [r["AlarmName"] for r in requests] == rollback_alarms("s-churn") == [
        "s-churn-5xx", "s-churn-model-errors", "s-churn-latency"]
    for request in requests:
        assert {"Name": "EndpointName", "Value": "s-churn"} in request["Dimensions"]
        assert {"Key": "autoloop:stack", "Value": "s"} in request["Tags"]
        assert ("Statistic" in request) != ("ExtendedStatistic" in request)
    assert requests[2]["ExtendedStatistic"] == "p99" and requests[2]["Threshold"] == 500000.0


def test_a_models_group_request_is_tagged_with_the_stack_and_the_model():
    request = registry.package_group_request("s-fraud", "s", "fraud")
    assert request["ModelPackageGroupName"] == "s-fraud"
    assert {t["Key"]: t["Value"] for t in request["Tags"]} == {"autoloop:stack": "s", "autoloop:model": "fraud"}
