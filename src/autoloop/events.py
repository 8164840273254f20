"""Typed views of the EventBridge events the handlers take, built on Powertools' parser.

Each event is an ``EventBridgeModel`` (Powertools) with a literal ``source`` and
``detail-type`` and a typed ``detail`` that holds what Autoloop reads (unknown fields are
ignored). The detail-type strings are defined here once, by the models' literals.

Every malformed event raises InvalidEvent with one line that names each problem, e.g.
``malformed S3 Object Created event: detail.object.key: Field required.``; an event of a
type a handler does not take names what it takes and what it got.

What the events mean (the drift alarm's feature, the monitoring report's location, a
package event's model) is decided by the modules that use them (``drift``, ``deploy``).
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, cast, get_args

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoloop.errors import InvalidEvent
from autoloop.jobs import JobKind

TERMINAL_JOB_STATUSES = frozenset({"Completed", "Failed", "Stopped"})


# ``defer_build``: a handler validates one or two of these models, so each builds its validator
# on first use rather than all of them at import (a cold start's cost).
class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class _Event(EventBridgeModel):
    """An EventBridge event of one source and detail-type (both literals in the subclass)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    #: How errors name the event; the detail-type unless a subclass says otherwise.
    what: ClassVar[str] = ""

    @classmethod
    def detail_type_value(cls) -> str:
        return str(get_args(cls.model_fields["detail_type"].annotation)[0])

    @classmethod
    def source_value(cls) -> str:
        return str(get_args(cls.model_fields["source"].annotation)[0])

    @classmethod
    def description(cls) -> str:
        return cls.what or cls.detail_type_value()


# ----------------------------------------------------------------------------- S3
class S3Bucket(_Detail):
    name: str = Field(min_length=3)


class S3Object(_Detail):
    key: str = Field(min_length=1)
    size: int = Field(default=0, ge=0)
    etag: str = ""
    version_id: str | None = Field(default=None, alias="version-id")


class S3ObjectCreatedDetail(_Detail):
    bucket: S3Bucket
    object: S3Object


class S3ObjectCreated(_Event):
    what: ClassVar[str] = "S3 Object Created"
    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: S3ObjectCreatedDetail


# ----------------------------------------------------------------------------- SageMaker jobs
class _JobDetail(_Detail):
    """``<Prefix>JobName`` and ``<Prefix>JobStatus`` as ``job_name`` and ``status``."""

    prefix: ClassVar[str] = ""
    job_name: str = Field(min_length=1)
    status: str
    failure_reason: str | None = Field(default=None, alias="FailureReason")

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        name, status = f"{cls.prefix}Name", f"{cls.prefix}Status"
        if isinstance(data, dict):
            if not isinstance(data.get(name), str) or not data.get(name) or not isinstance(data.get(status), str):
                raise ValueError(f"lacks {name}/{status}")
            return {**data, "job_name": data[name], "status": data[status]}
        return data


class S3OutputDetail(_Detail):
    s3_uri: Any = Field(default=None, alias="S3Uri")
    local_path: Any = Field(default="", alias="LocalPath")


class ProcessingOutput(_Detail):
    s3_output: S3OutputDetail | None = Field(default=None, alias="S3Output")


class ProcessingOutputConfig(_Detail):
    outputs: list[ProcessingOutput] | None = Field(default=None, alias="Outputs")


class AppSpecification(_Detail):
    image_uri: str | None = Field(default=None, alias="ImageUri")


class TrainingJobDetail(_JobDetail):
    prefix: ClassVar[str] = "TrainingJob"


class ProcessingJobDetail(_JobDetail):
    prefix: ClassVar[str] = "ProcessingJob"
    environment: dict[str, Any] = Field(default_factory=dict, alias="Environment")
    app_specification: AppSpecification = Field(default_factory=AppSpecification, alias="AppSpecification")
    output_config: ProcessingOutputConfig | None = Field(default=None, alias="ProcessingOutputConfig")
    exit_message: str | None = Field(default=None, alias="ExitMessage")

    @model_validator(mode="before")
    @classmethod
    def _loose(cls, data: Any) -> Any:
        """Environment and AppSpecification are hints; a missing or odd one is empty."""
        if isinstance(data, dict):
            data = dict(data)
            for key in ("Environment", "AppSpecification"):
                if not isinstance(data.get(key), dict):
                    data.pop(key, None)
            if not isinstance(data.get("ExitMessage"), str) or not data.get("ExitMessage"):
                data.pop("ExitMessage", None)
        return data


class TransformJobDetail(_JobDetail):
    prefix: ClassVar[str] = "TransformJob"


class JobStateChange(_Event):
    """A training, processing or transform job's state change (one subclass each)."""

    kind: ClassVar[JobKind]
    source: Literal["aws.sagemaker"]
    detail: _JobDetail

    @property
    def job_name(self) -> str:
        return self.detail.job_name

    @property
    def status(self) -> str:
        return self.detail.status

    @property
    def failure_reason(self) -> str | None:
        return self.detail.failure_reason


class TrainingJobStateChange(JobStateChange):
    kind: ClassVar[JobKind] = "training"
    detail_type: Literal["SageMaker Training Job State Change"] = Field(alias="detail-type")
    detail: TrainingJobDetail


class ProcessingJobStateChange(JobStateChange):
    kind: ClassVar[JobKind] = "processing"
    detail_type: Literal["SageMaker Processing Job State Change"] = Field(alias="detail-type")
    detail: ProcessingJobDetail


class TransformJobStateChange(JobStateChange):
    kind: ClassVar[JobKind] = "transform"
    detail_type: Literal["SageMaker Transform Job State Change"] = Field(alias="detail-type")
    detail: TransformJobDetail


JOB_EVENTS: tuple[type[JobStateChange], ...] = (
    TrainingJobStateChange, ProcessingJobStateChange, TransformJobStateChange,
)


# ----------------------------------------------------------------------------- SageMaker endpoints, registry
class EndpointDetail(_Detail):
    endpoint_name: str = Field(alias="EndpointName", min_length=1)
    status: str | None = Field(default=None, alias="EndpointStatus")


class EndpointStateChange(_Event):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Endpoint State Change"] = Field(alias="detail-type")
    detail: EndpointDetail


class ModelPackageDetail(_Detail):
    group: str = Field(alias="ModelPackageGroupName")
    arn: str = Field(alias="ModelPackageArn")
    version: Any = Field(default=None, alias="ModelPackageVersion")
    status: str = Field(alias="ModelApprovalStatus")
    # Names one state change: SageMaker's duplicate events of a change carry the same time.
    last_modified: Any = Field(default=None, alias="LastModifiedTime")


class ModelPackageStateChange(_Event):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    detail: ModelPackageDetail


# ----------------------------------------------------------------------------- CloudWatch alarms
class AlarmState(_Detail):
    value: str = Field(min_length=1)
    reason_data: str | None = Field(default=None, alias="reasonData")


class AlarmMetric(_Detail):
    name: str | None = None
    dimensions: dict[str, Any] | None = None


class AlarmMetricStat(_Detail):
    metric: AlarmMetric | None = None


class AlarmMetricEntry(_Detail):
    metric_stat: AlarmMetricStat | None = Field(default=None, alias="metricStat")


class AlarmConfiguration(_Detail):
    metrics: list[AlarmMetricEntry | None]


class AlarmDetail(_Detail):
    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: AlarmState
    previous_state: AlarmState = Field(alias="previousState")
    configuration: AlarmConfiguration


class AlarmStateChange(_Event):
    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmDetail


# ----------------------------------------------------------------------------- detail-type names
OBJECT_CREATED = S3ObjectCreated.detail_type_value()
TRAINING_JOB_STATE_CHANGE = TrainingJobStateChange.detail_type_value()
PROCESSING_JOB_STATE_CHANGE = ProcessingJobStateChange.detail_type_value()
TRANSFORM_JOB_STATE_CHANGE = TransformJobStateChange.detail_type_value()
ENDPOINT_STATE_CHANGE = EndpointStateChange.detail_type_value()
MODEL_PACKAGE_STATE_CHANGE = ModelPackageStateChange.detail_type_value()
ALARM_STATE_CHANGE = AlarmStateChange.detail_type_value()


# ----------------------------------------------------------------------------- parsing
def problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``detail.object.key: Field required; ...``.

    A validator's own message follows its location (``detail lacks TrainingJobName/...``).
    """
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "event"
        if error["type"] == "value_error":
            parts.append(f"{where} {error['ctx']['error']}")
            continue
        if error["type"] in {"model_type", "dict_type"}:
            parts.append(f"{where}: not a JSON object (got {type(error.get('input')).__name__})")
            continue
        got = "" if error["type"] == "missing" else f" (got {str(error.get('input'))[:60]!r})"
        parts.append(f"{where}: {error['msg']}{got}")
    return "; ".join(parts)


def malformed(what: str, reason: str) -> InvalidEvent:
    return InvalidEvent(f"malformed {what} event: {reason}.")


def parse_event[E: _Event](model: type[E], event: Any) -> E:
    """``event`` as ``model``, or InvalidEvent naming each problem."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise malformed(model.description(), problems(exc)) from exc


def parse_one_of(event: Any, models: Sequence[type[_Event]], who: str) -> _Event:
    """The event as whichever of ``models`` has its source and detail-type (narrow it with isinstance)."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"{who} got {type(event).__name__}, not a JSON object (an EventBridge event).")
    for model in models:
        if event.get("source") == model.source_value() and event.get("detail-type") == model.detail_type_value():
            return parse_event(model, event)
    kinds = " or ".join(repr(m.detail_type_value()) for m in models)
    raise InvalidEvent(
        f"{who} takes {kinds} events, not source={event.get('source')!r} detail-type={event.get('detail-type')!r}."
    )


def arn_origin(arn: str) -> tuple[str, str]:
    """(account, region) of an ARN such as a state machine's; raise ValueError otherwise."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3] or not parts[4]:
        raise ValueError(f"not a regional ARN: {arn!r}")
    return parts[4], parts[3]


def parse_s3_object_created(
    event: Any, *, account: str | None = None, region: str | None = None
) -> S3ObjectCreated:
    """Parse an EventBridge "Object Created" event; with ``account``/``region`` (the stack's,
    e.g. from :func:`arn_origin` of the state machine), an event from anywhere else is refused.

    On a default bus, events come from the stack's own account and region, unless someone
    forwards or replays events from another one; a run must never start on those.
    """
    created = parse_event(S3ObjectCreated, event)
    for field, expected in (("account", account), ("region", region)):
        got = getattr(created, field)
        if expected is not None and got != expected:
            raise InvalidEvent(
                f"the event comes from {field} {got!r}, but this stack runs in {field} {expected!r}.",
                "Only uploads to this stack's own data bucket start a run; check the EventBridge rules "
                "and any cross-account or cross-region event forwarding.",
            )
    return created


def parse_job_state_change(event: Any) -> JobStateChange:
    """A SageMaker training, processing or transform job state change."""
    return cast(JobStateChange, parse_one_of(event, JOB_EVENTS, "the job callback"))


def parse_callback_event(event: Any) -> JobStateChange | EndpointStateChange:
    """What the callback handler takes: a job or an endpoint state change."""
    return cast(JobStateChange | EndpointStateChange,
                parse_one_of(event, (*JOB_EVENTS, EndpointStateChange), "the job callback"))
