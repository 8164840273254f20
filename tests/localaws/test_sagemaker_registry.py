"""Model Package State Change events, and approvals that keep the package's metadata."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from localaws.sagemaker import registry as sagemaker_registry


@pytest.fixture
def aws():
    was = sagemaker_registry.installed()
    sagemaker_registry.install()
    with mock_aws():
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name="packages", EventPattern=json.dumps(
            {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"]}))
        events.put_targets(Rule="packages", Targets=[{"Id": "q", "Arn": arn}])
        sm = boto3.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="stack-churn")
        yield sm, sqs, queue
        sagemaker_registry.wait()
    if not was:
        sagemaker_registry.uninstall()


def received(sqs, queue, count, timeout=30.0):
    found, deadline = [], time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        sagemaker_registry.wait()
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(message["Body"]))
    return found


def create(sm, status="PendingManualApproval"):
    return sm.create_model_package(
        ModelPackageGroupName="stack-churn", ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"autoloop:run-id": "churn-0123456789", "autoloop:metric-value": "0.8"},
    )["ModelPackageArn"]


def test_create_and_approval_emit_state_change_events(aws):
    sm, sqs, queue = aws
    arn = create(sm)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    events = received(sqs, queue, 2)
    # each event is put from its own thread, and EventBridge promises no order (nor does SQS)
    assert sorted(e["detail"]["ModelApprovalStatus"] for e in events) == ["Approved", "PendingManualApproval"]
    for event in events:
        assert event["source"] == "aws.sagemaker"
        assert event["detail-type"] == "SageMaker Model Package State Change"
        assert event["detail"]["ModelPackageArn"] == arn and event["resources"] == [arn]
        assert event["detail"]["ModelPackageGroupName"] == "stack-churn"
        assert event["detail"]["ModelPackageVersion"] == 1


def test_approval_keeps_the_metadata_it_does_not_change(aws):
    sm, _, _ = aws
    arn = create(sm)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["CustomerMetadataProperties"]["autoloop:run-id"] == "churn-0123456789"
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": "x"})
    props = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert props == {"autoloop:run-id": "churn-0123456789", "autoloop:metric-value": "0.8", "note": "x"}
