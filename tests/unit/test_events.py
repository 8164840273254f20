import pytest

from autoloop.errors import InvalidEvent
from autoloop.events import parse_job_state_change, parse_s3_object_created
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
