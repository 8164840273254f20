import pytest

from autoloop.errors import InvalidEvent
from autoloop.events import (
    arn_origin,
    parse_job_state_change,
    parse_s3_object_created,
)
from tests.conftest import load_event


def test_s3_object_created_sample_parses():
    event = parse_s3_object_created(load_event("s3_object_created"))
    assert event.detail.object.key.startswith("incoming/churn/")
    assert event.detail.object.version_id


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("detail"),
        lambda e: e["detail"].pop("object"),
        lambda e: e.__setitem__("detail-type", "Object Deleted"),
        lambda e: e.__setitem__("source", "aws.sqs"),
        lambda e: e["detail"]["object"].__setitem__("key", ""),
    ],
)
def test_malformed_s3_events_raise_invalid_event(mutate):
    event = load_event("s3_object_created")
    mutate(event)
    with pytest.raises(InvalidEvent, match="malformed S3 Object Created"):
        parse_s3_object_created(event)


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("sagemaker_training_job_completed", "training", "Completed"),
        ("sagemaker_training_job_failed", "training", "Failed"),
        ("sagemaker_training_job_in_progress", "training", "InProgress"),
        ("sagemaker_processing_job_completed", "processing", "Completed"),
        ("sagemaker_processing_job_failed", "processing", "Failed"),
    ],
)
def test_job_state_change_samples_parse(name, kind, status):
    change = parse_job_state_change(load_event(name))
    assert (change.kind, change.status) == (kind, status)
    assert change.job_name.startswith("churn-3f9a1c2b7d-")
    assert (change.failure_reason is not None) == (status == "Failed")


def test_wrong_detail_type_is_rejected():
    event = load_event("sagemaker_training_job_completed")
    event["detail-type"] = "SageMaker Endpoint State Change"
    with pytest.raises(InvalidEvent):
        parse_job_state_change(event)
    with pytest.raises(InvalidEvent):
        parse_job_state_change(["not", "a", "dict"])


def test_malformed_event_messages_name_each_problem_in_one_line():
    event = load_event("s3_object_created")
    event["detail-type"] = "Object Deleted"
    del event["detail"]["object"]["key"]
    with pytest.raises(InvalidEvent) as caught:
        parse_s3_object_created(event)
    message = caught.value.message
    assert "detail-type: Input should be 'Object Created' (got 'Object Deleted')" in message
    assert "detail.object.key: Field required" in message
    assert "\n" not in message and "errors.pydantic.dev" not in message


def test_events_from_another_account_or_region_are_refused_when_the_stack_says_where_it_runs():
    event = load_event("s3_object_created")  # account 111122223333, us-east-1
    assert parse_s3_object_created(event, account="111122223333", region="us-east-1").account == "111122223333"
    assert parse_s3_object_created(event).region == "us-east-1"  # no expectation, no check
    with pytest.raises(InvalidEvent, match="from account '111122223333', but this stack runs in account '999"):
        parse_s3_object_created(event, account="999988887777")
    with pytest.raises(InvalidEvent, match="from region 'us-east-1', but this stack runs in region 'eu-west-1'") as c:
        parse_s3_object_created(event, region="eu-west-1")
    assert "forwarding" in c.value.hint


def test_arn_origin_is_account_and_region():
    assert arn_origin("arn:aws:states:eu-west-1:123456789012:stateMachine:Training") == ("123456789012", "eu-west-1")
    with pytest.raises(ValueError, match="not a regional ARN"):
        arn_origin("arn:aws:s3:::bucket")
