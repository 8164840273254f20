"""Search with nested property names (localaws.sagemaker.search)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws.sagemaker import search


@pytest.fixture
def sm() -> Iterator[Any]:
    """Plain moto records (the job runner of earlier modules switched off), with the search
    extension (for_handler_tests keeps it on)."""
    from localaws.extensions import for_handler_tests

    with for_handler_tests(), mock_aws():
        assert search.installed()
        client = boto3.client("sagemaker", region_name="us-east-1")
        for name in ("job-a", "job-b"):
            client.create_training_job(
                TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/r",
                AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
                OutputDataConfig={"S3OutputPath": f"s3://b/{name}"}, StoppingCondition={"MaxRuntimeInSeconds": 60},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
        yield client


def names(result: dict[str, Any]) -> list[str]:
    return sorted(r["TrainingJob"]["TrainingJobName"] for r in result["Results"])


def test_a_nested_property_is_matched_as_describe_shows_it(sm: Any) -> None:
    artifacts = sm.describe_training_job(TrainingJobName="job-a")["ModelArtifacts"]["S3ModelArtifacts"]
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "ModelArtifacts.S3ModelArtifacts", "Operator": "Equals", "Value": artifacts}]})
    assert names(found) == ["job-a"]
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "ModelArtifacts.S3ModelArtifacts", "Operator": "Contains", "Value": "s3://b/"}]})
    assert names(found) == ["job-a", "job-b"]
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "ModelArtifacts.S3ModelArtifacts", "Operator": "NotEquals", "Value": artifacts}]})
    assert names(found) == ["job-b"]


def test_moto_s_own_filters_still_apply_beside_a_nested_one(sm: Any) -> None:
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "TrainingJobName", "Operator": "Equals", "Value": "job-b"},
        {"Name": "ModelArtifacts.S3ModelArtifacts", "Operator": "Exists"}]})
    assert names(found) == ["job-b"]


def test_an_operator_it_cannot_evaluate_is_refused_by_name(sm: Any) -> None:
    with pytest.raises(ClientError, match="GreaterThan is not supported for ModelArtifacts.S3ModelArtifacts"):
        sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
            {"Name": "ModelArtifacts.S3ModelArtifacts", "Operator": "GreaterThan", "Value": "x"}]})
