"""The sagemaker_models extension (localaws.sagemaker.models): DescribeModel without empty
members, and CreateModelPackageGroup refusing a name that exists, as AWS does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws.sagemaker import models


@pytest.fixture
def sm() -> Iterator[Any]:
    from localaws.extensions import for_handler_tests

    with for_handler_tests(), mock_aws():
        assert models.installed()
        yield boto3.client("sagemaker", region_name="us-east-1")


def test_a_group_is_created_once_and_a_second_create_is_refused_as_on_aws(sm: Any) -> None:
    arn = sm.create_model_package_group(ModelPackageGroupName="g", ModelPackageGroupDescription="first",
                                        Tags=[{"Key": "autoloop:stack", "Value": "s"}])["ModelPackageGroupArn"]
    with pytest.raises(ClientError, match="Model Package Group already exists") as refused:
        sm.create_model_package_group(ModelPackageGroupName="g", ModelPackageGroupDescription="second")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert arn in str(refused.value)
    described = sm.describe_model_package_group(ModelPackageGroupName="g")
    assert described["ModelPackageGroupDescription"] == "first"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "autoloop:stack", "Value": "s"}]


def test_a_model_without_a_vpc_is_described_without_one(sm: Any) -> None:
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img"})
    described = sm.describe_model(ModelName="m")
    assert "VpcConfig" not in described and "Containers" not in described


def test_uninstalled_moto_replaces_the_group(sm: Any) -> None:
    """The gap itself, so the extension is known to be needed (and is put back afterwards)."""
    models.uninstall()
    try:
        sm.create_model_package_group(ModelPackageGroupName="g", ModelPackageGroupDescription="first")
        sm.create_model_package_group(ModelPackageGroupName="g", ModelPackageGroupDescription="second")
        assert sm.describe_model_package_group(ModelPackageGroupName="g")["ModelPackageGroupDescription"] == "second"
    finally:
        models.install()
