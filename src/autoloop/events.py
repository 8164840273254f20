"""Typed views of the events the handlers consume. Malformed events raise InvalidEvent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoloop.errors import InvalidEvent

JOB_DETAIL_TYPES: dict[str, Literal["training", "processing", "transform"]] = {
    "SageMaker Training Job State Change": "training",
    "SageMaker Processing Job State Change": "processing",
    "SageMaker Transform Job State Change": "transform",
}
_DETAIL_PREFIX = {"training": "TrainingJob", "processing": "ProcessingJob", "transform": "TransformJob"}
TERMINAL_JOB_STATUSES = frozenset({"Completed", "Failed", "Stopped"})


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class S3Bucket(_Loose):
    name: str = Field(min_length=3)


class S3Object(_Loose):
    key: str = Field(min_length=1)
    size: int = Field(default=0, ge=0)
    etag: str = ""
    version_id: str | None = Field(default=None, alias="version-id")


class S3ObjectCreatedDetail(_Loose):
    bucket: S3Bucket
    object: S3Object


class S3ObjectCreated(_Loose):
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    source: Literal["aws.s3"]
    detail: S3ObjectCreatedDetail


class JobStateChange(_Loose):
    kind: Literal["training", "processing", "transform"]
    job_name: str
    status: str
    failure_reason: str | None = None


def _fail(what: str, exc: ValidationError | str) -> InvalidEvent:
    return InvalidEvent(f"malformed {what} event: {exc}")


def parse_s3_object_created(event: dict[str, Any]) -> S3ObjectCreated:
    try:
        return S3ObjectCreated.model_validate(event)
    except ValidationError as exc:
        raise _fail("S3 Object Created", exc) from exc


def parse_job_state_change(event: dict[str, Any]) -> JobStateChange:
    if not isinstance(event, dict):
        raise _fail("SageMaker job state change", "not a JSON object")
    kind = JOB_DETAIL_TYPES.get(str(event.get("detail-type")))
    detail = event.get("detail")
    if event.get("source") != "aws.sagemaker" or kind is None or not isinstance(detail, dict):
        raise _fail(
            "SageMaker job state change",
            f"source={event.get('source')!r} detail-type={event.get('detail-type')!r}",
        )
    prefix = _DETAIL_PREFIX[kind]
    name = detail.get(f"{prefix}Name")
    status = detail.get(f"{prefix}Status")
    if not isinstance(name, str) or not name or not isinstance(status, str):
        raise _fail("SageMaker job state change", f"detail lacks {prefix}Name/{prefix}Status")
    reason = detail.get("FailureReason")
    return JobStateChange(kind=kind, job_name=name, status=status, failure_reason=reason)
