"""Typed views of the events the handlers consume. Malformed events raise InvalidEvent."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote_plus

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
    account: str | None = None
    region: str | None = None
    detail: S3ObjectCreatedDetail


class JobStateChange(_Loose):
    kind: Literal["training", "processing", "transform"]
    job_name: str
    status: str
    failure_reason: str | None = None


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``detail.object.key: Field required; ...``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "event"
        got = "" if error["type"] == "missing" else f" (got {str(error.get('input'))[:60]!r})"
        parts.append(f"{where}: {error['msg']}{got}")
    return "; ".join(parts)


def _fail(what: str, exc: ValidationError | str) -> InvalidEvent:
    reason = _problems(exc) if isinstance(exc, ValidationError) else exc
    return InvalidEvent(f"malformed {what} event: {reason}.")


def arn_origin(arn: str) -> tuple[str, str]:
    """(account, region) of an ARN such as a state machine's; raise ValueError otherwise."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3] or not parts[4]:
        raise ValueError(f"not a regional ARN: {arn!r}")
    return parts[4], parts[3]


def parse_s3_object_created(
    event: dict[str, Any], *, account: str | None = None, region: str | None = None
) -> S3ObjectCreated:
    """Parse an EventBridge "Object Created" event; with ``account``/``region`` (the stack's,
    e.g. from :func:`arn_origin` of the state machine), an event from anywhere else is refused.

    On a default bus, events come from the stack's own account and region, unless someone
    forwards or replays events from another one; a run must never start on those.
    """
    try:
        created = S3ObjectCreated.model_validate(event)
    except ValidationError as exc:
        raise _fail("S3 Object Created", exc) from exc
    for field, expected in (("account", account), ("region", region)):
        got = getattr(created, field)
        if expected is not None and got != expected:
            raise InvalidEvent(
                f"the event comes from {field} {got!r}, but this stack runs in {field} {expected!r}.",
                "Only uploads to this stack's own data bucket start a run; check the EventBridge rules "
                "and any cross-account or cross-region event forwarding.",
            )
    return created


def object_key_candidates(key: str) -> list[str]:
    """The keys an event's ``object.key`` may stand for: as given, then URL-decoded.

    S3's notification records URL-encode keys ("red flower.csv" -> "red+flower.csv"); the
    EventBridge "Object Created" documentation shows no encoding and its samples have none.
    A reader tries the key as given first (a real key may contain "+" or "%"), then the
    decoded form, so either way the object is found and nothing is read from the wrong key.
    """
    decoded = unquote_plus(key)
    return [key] if decoded == key else [key, decoded]


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
