"""Per-model configuration (``models/<model>/config.json``, published to the artifacts bucket) and
typed Lambda settings."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from autoloop.adapters import aws_call, client, error_code
from autoloop.errors import ConfigError, InvalidModelConfig, UnknownModel
from autoloop.gate import (
    DEFAULT_METRIC,
    PROBABILITY_METRICS,
    Direction,
    Task,
    check_metric,
    check_min_improvement,
    check_threshold,
    resolve_direction,
)
from autoloop.jobs import JobSecurity, SpotTraining, config_key
from autoloop.monitoring import MonitoringSettings
from autoloop.naming import is_valid_model_name

# How large a file ValidateInput can check: the limit on max_bytes.
# ValidateInput reads the whole object in one Lambda invocation, on one thread, so its ceiling
# is CPU time. The arithmetic (tests/infra/test_template.py checks template.yaml against it):
#   - the check costs CPU: `python -m bench validate` measures it in MB per CPU-second: 4.4 on
#     the slowest shape (20 short numeric fields a row) and 11.5 on churn's, on the bench machine
#     (December 2026); 2.8 MB/CPU-s is the slowest rate seen anywhere (issue 14): the sizing uses
#     it, not the bench machine's figures;
#   - Lambda gives one full vCPU at 1,769 MB (less below; more memory adds vCPUs this single
#     thread cannot use), and at most 900 s;
#   - 1 GiB / (2.8 MB/s x 1 vCPU) = 383 s of checking, plus at most 120 s to stream the object
#     from S3 and copy the validated version for the job (>= 9 MB/s), is 503 s: 1.8x under 900 s.
#   - 2 GiB would need ~887 s at that rate: no margin left, so the limit is 1 GiB (max_bytes
#     may lower it, not raise it). A training set over 1 GiB has to be sampled down.
VALIDATION_MB_PER_CPU_SECOND = 2.8
VALIDATE_MEMORY_MB = 1769  # one vCPU
VALIDATE_VCPUS = 1.0
VALIDATE_TIMEOUT_SECONDS = 900
VALIDATE_IO_SECONDS = 120
MAX_VALIDATED_BYTES = 1024**3
#: The monthly batch schedule's default expression (template parameter BatchTransformSchedule):
#: 03:00 UTC on the 1st scores the month before.
BATCH_MONTHLY = "cron(0 3 1 * ? *)"


class ModelConfig(BaseModel):
    """What a model expects of its data, and how it is judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    label: str
    columns: tuple[str, ...]
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    #: What the model predicts: a 0/1 label (binary), one of several classes (multiclass) or a number.
    task: Task = "binary"
    #: One of gate.TASK_METRICS[task] (what ml/evaluate.py reports); default gate.DEFAULT_METRIC[task].
    metric: str = "auc"
    #: multiclass only, optional: every class the label may take (labels outside it are refused).
    classes: tuple[str, ...] | None = None
    #: The worst acceptable value of the metric, in its own units (default: the stack's MetricThreshold).
    threshold: float | None = None
    #: Which way the metric is better (default: the metric's own, e.g. higher for auc, lower for rmse).
    direction: Direction | None = None
    #: How much a challenger must beat the champion by, on the same holdout, in the metric's units.
    min_improvement: float = 0.0
    #: Whether an improvement of exactly min_improvement (a tie, by default) promotes.
    promote_ties: StrictBool = False
    #: Monitoring: how much worse than the champion's registered value the metric may get on
    #: labelled traffic, in the metric's units (default: the stack's QualityMargin, a fraction).
    quality_margin: float | None = None
    min_rows: int = Field(default=100, ge=1)
    max_bytes: int = Field(default=MAX_VALIDATED_BYTES, ge=1, le=MAX_VALIDATED_BYTES)
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    # BatchConfig is defined at the end of the module (the lambda defers the lookup).
    batch: BatchConfig = Field(default_factory=lambda: BatchConfig())  # noqa: PLW0108
    #: Instance types per step, where the stack's defaults do not fit this model (a GPU to train).
    instance_types: InstanceTypes = Field(default_factory=lambda: InstanceTypes())  # noqa: PLW0108
    #: The SageMaker framework image the model's training script and serving code run in.
    framework: FrameworkConfig = Field(default_factory=lambda: FrameworkConfig())  # noqa: PLW0108
    #: Written by ``autoloop publish``, never by hand: the image URIs it resolved for the stack's
    #: region and the source bundle's digest. Absent: the config was put without publish.
    published: PublishedBuild | None = None

    @model_validator(mode="before")
    @classmethod
    def _task_default_metric(cls, data: Any) -> Any:
        """Without a metric, the task's own (auc, accuracy or rmse)."""
        if isinstance(data, dict) and "metric" not in data and data.get("task") in DEFAULT_METRIC:
            return {**data, "metric": DEFAULT_METRIC[data["task"]]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        check_metric(self.task, self.metric, task_given="task" in self.model_fields_set)
        if self.classes is not None:
            if self.task != "multiclass":
                raise ValueError(f"'classes' is for a multiclass model; this one's task is {self.task}")
            canonical = [class_text(c) for c in self.classes]
            if len(canonical) < 2 or len(set(canonical)) != len(canonical) or "" in canonical:
                raise ValueError("'classes' must list at least 2 distinct, non-empty class labels")
        resolve_direction(self.metric, self.direction)  # ValueError: contradicts the metric
        if self.threshold is not None:
            check_threshold(self.metric, self.threshold)
        elif self.metric not in PROBABILITY_METRICS:
            raise ValueError(f"set 'threshold' for {self.metric} (in its own units): the stack's "
                             "MetricThreshold is a fraction in [0, 1]")
        check_min_improvement(self.min_improvement)
        if self.quality_margin is not None and not (math.isfinite(self.quality_margin) and self.quality_margin >= 0):
            raise ValueError(f"quality_margin {self.quality_margin!r} must be a finite number >= 0 (in {self.metric}'s "
                             "units)")
        if self.quality_margin is None and self.metric not in PROBABILITY_METRICS:
            raise ValueError(f"set 'quality_margin' for {self.metric} (in its own units): the stack's QualityMargin "
                             "is a fraction, for metrics in [0, 1]")
        reserved = sorted(set(self.hyperparameters) & {"label", "task"})
        if reserved:
            raise ValueError(f"hyperparameters {reserved} are set from the config's own 'label' and 'task'; "
                             "remove them from 'hyperparameters'")
        if not is_valid_model_name(self.model):
            raise ValueError(f"model name {self.model!r} must be lowercase letters, digits, '-'")
        if not self.columns or self.columns[0] != self.label:
            raise ValueError("the label must be the first of 'columns'")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("'columns' has duplicates")
        features = set(self.numeric_features) | set(self.categorical_features)
        if features != set(self.columns[1:]):
            raise ValueError("numeric_features + categorical_features must be exactly the non-label columns")
        self.batch.check(self.columns)
        return self

    @property
    def features(self) -> tuple[str, ...]:
        return self.columns[1:]

    def images(self, stack_image: str) -> ModelImages:
        """The images the model's jobs run in: those ``autoloop publish`` resolved; for a config put
        without publish, its own ``framework.image_uri``, or the stack's FrameworkImageUri
        (``stack_image``) if that is the image the config names (the default scikit-learn 1.2-1),
        else InvalidModelConfig."""
        if self.published is not None:
            return ModelImages(self.framework.name, self.published.training_image, self.published.inference_image)
        if self.framework.image_uri:  # your own container needs no lookup
            return ModelImages(self.framework.name, self.framework.image_uri,
                               self.framework.inference_image_uri or self.framework.image_uri)
        if self.framework.is_stack_default():
            return ModelImages(self.framework.name, stack_image, stack_image)
        raise InvalidModelConfig(
            f"model {self.model!r}'s config names framework {self.framework.describe()} but carries no "
            "'published' images: publish it with `autoloop publish`, which resolves them.")


def class_text(value: str) -> str:
    """A class label's canonical text, as ml/ reads it: "1.0" and "1" are the same class."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text


def _config_problems(exc: ValidationError) -> str:
    """One line per problem, naming the field; a misspelled key gets the nearest known one."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "config"
        if error["type"] == "extra_forbidden":
            nested: dict[str, type[BaseModel]] = {"batch": BatchConfig, "framework": FrameworkConfig,
                                                  "published": PublishedBuild}
            known = ModelConfig.model_fields if len(error["loc"]) == 1 else nested[str(error["loc"][0])].model_fields
            close = difflib.get_close_matches(str(error["loc"][-1]), list(known), n=1)
            parts.append(f"unknown key {where!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif error["type"] == "value_error":
            parts.append(str(error["ctx"]["error"]) if where == "config" else f"{where}: {error['ctx']['error']}")
        else:
            got = "" if error["type"] == "missing" else f" (got {str(error.get('input'))[:60]!r})"
            parts.append(f"{where}: {error['msg']}{got}")
    return "; ".join(parts)


def parse_model_config(raw: bytes | str, source: str) -> ModelConfig:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidModelConfig(f"model config {source} is not valid JSON: {exc}.") from exc
    if not isinstance(doc, dict):
        raise InvalidModelConfig(f"model config {source} is not a JSON object.")
    try:
        return ModelConfig.model_validate(doc)
    except ValidationError as exc:
        raise InvalidModelConfig(f"model config {source} is invalid: {_config_problems(exc)}.") from exc


def load_model_config(artifacts_bucket: str, model: str) -> ModelConfig:
    """The model's published config; UnknownModel if there is none."""
    key = config_key(model)
    try:
        raw = client("s3").get_object(Bucket=artifacts_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            raise UnknownModel(f"no configuration for model {model!r} at s3://{artifacts_bucket}/{key}.") from exc
        with aws_call(f"reading s3://{artifacts_bucket}/{key}"):
            raise
    return parse_model_config(raw, f"s3://{artifacts_bucket}/{key}")


class Settings(BaseModel):
    """Base for handler settings read from the environment (field name = VARIABLE name, lowercased).

    ``defer_build``: a handler validates one settings class, so each builds its validator on
    first use rather than every one of them at import (about 2 ms a class).
    """

    model_config = ConfigDict(frozen=True, defer_build=True)


def load_settings[S: Settings](cls: type[S], environ: dict[str, str] | None = None) -> S:
    """Read ``cls``'s fields from environment variables; name every missing or bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    missing = []
    for name, field in cls.model_fields.items():
        var = name.upper()
        if var in env and env[var] != "":
            values[name] = env[var]
        elif field.is_required():
            missing.append(var)
    if missing:
        raise ConfigError(f"missing environment variable(s): {', '.join(missing)}.")
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"bad environment for {cls.__name__}: {exc}") from exc


class StartSettings(Settings):
    state_machine_arn: str
    notify_topic_arn: str
    data_bucket: str


class ValidateSettings(Settings):
    artifacts_bucket: str
    #: The stack's FrameworkImageUri: the images of a config put without ``autoloop publish``.
    framework_image_uri: str


class MonitoringKnobs(Settings):
    #: Template parameter MonitoringBackend: Autoloop's own jobs, or SageMaker Model Monitor.
    monitoring_backend: Literal["autoloop", "model-monitor"] = "autoloop"
    model_monitor_image_uri: str = ""
    monitoring_sample_size: int = Field(default=500, ge=50)
    monitoring_quantile: float = Field(default=0.99, gt=0.5, lt=1)
    monitoring_margin: float = Field(default=1.2, ge=1)
    monitoring_floor: float = Field(default=0.02, ge=0, le=1)

    def monitoring(self) -> MonitoringSettings:
        return MonitoringSettings(
            image_uri=self.model_monitor_image_uri, sample_size=self.monitoring_sample_size,
            quantile=self.monitoring_quantile, margin=self.monitoring_margin, floor=self.monitoring_floor,
        )


class SecurityKnobs(Settings):
    """Template parameters KmsKeyArn, SubnetIds and SecurityGroupIds (empty: not used)."""

    kms_key_arn: str = ""
    subnet_ids: str = ""  # comma-separated
    security_group_ids: str = ""

    @model_validator(mode="after")
    def _valid_security(self) -> SecurityKnobs:
        self.security()  # raises ValueError for a half-configured VPC
        return self

    def security(self) -> JobSecurity:
        return JobSecurity.parse(self.kms_key_arn, self.subnet_ids, self.security_group_ids)


class LaunchSettings(MonitoringKnobs, SecurityKnobs):
    artifacts_bucket: str
    task_token_table: str
    sagemaker_role_arn: str
    framework_image_uri: str
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    job_max_runtime_seconds: int = Field(default=3600, ge=60)
    environment: str = "dev"
    stack_name: str = ""
    use_spot_training: bool = False
    spot_max_wait_seconds: int = Field(default=0, ge=0)
    #: Where the evaluate launch finds the champion (``<prefix>-<model>``). The template names
    #: every group after the stack, so without MODEL_PACKAGE_GROUP_PREFIX it is STACK_NAME.
    model_package_group_prefix: str = ""

    def spot(self) -> SpotTraining:
        return SpotTraining(self.use_spot_training, self.spot_max_wait_seconds)

    def package_group_prefix(self) -> str:
        prefix = self.model_package_group_prefix or self.stack_name
        if not prefix:
            raise ConfigError("neither MODEL_PACKAGE_GROUP_PREFIX nor STACK_NAME is set: the evaluate job "
                              "cannot find the champion to compare with.")
        return prefix


class StartDeploySettings(Settings):
    state_machine_arn: str
    model_package_group_prefix: str


class PlanSettings(SecurityKnobs):
    stack_name: str
    model_package_group_prefix: str
    #: Template parameter ServerlessMemoryMB: 0 serves from instances, otherwise serverless.
    serverless_memory_mb: int = Field(default=0, ge=0)
    #: Holds the Teardown's marker (autoloop.teardown): a stack being deleted deploys nothing.
    task_token_table: str


class EndpointSettings(SecurityKnobs):
    stack_name: str
    artifacts_bucket: str
    task_token_table: str
    sagemaker_role_arn: str
    endpoint_instance_type: str = "ml.m5.large"
    data_capture_percentage: int = Field(default=100, ge=0, le=100)
    bake_seconds: int = Field(default=300, ge=0)
    termination_wait_seconds: int = Field(default=120, ge=0)
    #: The model's monthly batch schedule (put by the deploy step): the BatchTransform machine,
    #: the role Scheduler assumes to start it, and the template's BatchTransformSchedule(State).
    batch_transform_arn: str
    batch_scheduler_role_arn: str
    batch_schedule: str = BATCH_MONTHLY
    batch_schedule_state: Literal["ENABLED", "DISABLED"] = "ENABLED"


class MonitorScheduleSettings(MonitoringKnobs, SecurityKnobs):
    artifacts_bucket: str
    sagemaker_role_arn: str
    processing_instance_type: str = "ml.m5.large"
    job_max_runtime_seconds: int = Field(default=3600, ge=60)
    stack_name: str = ""
    #: autoloop backend: the state machine each endpoint's Scheduler schedule starts, and the
    #: role Scheduler assumes to start it.
    monitoring_pipeline_arn: str = ""
    scheduler_role_arn: str = ""

    @model_validator(mode="after")
    def _scheduler_known(self) -> MonitorScheduleSettings:
        if self.monitoring_backend == "autoloop" and not (self.monitoring_pipeline_arn and self.scheduler_role_arn):
            raise ValueError("the autoloop monitoring backend needs MONITORING_PIPELINE_ARN and SCHEDULER_ROLE_ARN")
        return self


class MonitorPlanSettings(Settings):
    """The MonitoringPipeline's plan (autoloop backend)."""

    artifacts_bucket: str
    data_bucket: str
    model_package_group_prefix: str
    metric_threshold: float
    monitoring_window_hours: int = Field(default=24, ge=1, le=24 * 14)
    #: A drop of the model's metric below the champion's registered value by more than this is a violation.
    quality_margin: float = Field(default=0.05, ge=0)


class DriftSettings(Settings):
    stack_name: str
    data_bucket: str
    artifacts_bucket: str
    state_machine_arn: str
    notify_topic_arn: str
    drift_state_table: str
    drift_cooldown_seconds: int = Field(default=86400, ge=0)
    drift_min_severity: float = Field(default=1.0, ge=0)
    #: autoloop backend: a retrain needs this many freshly labelled captured rows.
    min_labelled_rows: int = Field(default=200, ge=1)
    #: The latest upload joins the labelled rows in a retrain when it is at most this old.
    retrain_window_days: int = Field(default=90, ge=0)


class CallbackSettings(Settings):
    task_token_table: str


class GateSettings(Settings):
    artifacts_bucket: str
    model_package_group_prefix: str
    metric_threshold: float = Field(ge=0, le=1)


class RegisterSettings(Settings):
    model_package_group_prefix: str
    approval_status: str = "PendingManualApproval"
    framework_image_uri: str


# ----------------------------------------------------------------------------- framework and images
Framework = Literal["sklearn", "xgboost", "pytorch"]
#: Today's image, and the stack's FrameworkImageUri: Autoloop's own steps run in it.
DEFAULT_FRAMEWORK: Framework = "sklearn"
DEFAULT_FRAMEWORK_VERSION = "1.2-1"
_IMAGE_URI = re.compile(r"^[^\s/]+(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")


INSTANCE_TYPE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"


class InstanceTypes(BaseModel):
    """``instance_types`` in ``models/<model>/config.json``: an instance type per step of this
    model, each optional; a step without one uses the stack's (ProcessingInstanceType,
    TrainingInstanceType, TransformInstanceType, EndpointInstanceType). ``endpoint`` is unused
    while the stack serves serverless (ServerlessMemoryMB)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preprocess: str | None = None
    train: str | None = None
    evaluate: str | None = None
    transform: str | None = None
    endpoint: str | None = None

    @field_validator("*")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(INSTANCE_TYPE, value):
            raise ValueError(f"{value!r} is not a SageMaker instance type (such as ml.m5.xlarge or ml.g5.xlarge)")
        return value

    def chosen(self) -> dict[str, str]:
        """The steps this model sets, {step: instance type}."""
        return {step: value for step, value in self.model_dump().items() if value}


class FrameworkConfig(BaseModel):
    """``framework`` in ``models/<model>/config.json``: the SageMaker prebuilt framework image the
    model's ``train.py`` and its serving code run in, resolved by ``autoloop publish`` with the
    SageMaker SDK's image URI lookup for the stack's region. ``image_uri`` (bring your own
    container) skips the lookup: that image trains and serves (``inference_image_uri``, if
    given, serves instead)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Framework = DEFAULT_FRAMEWORK
    version: str = Field(default=DEFAULT_FRAMEWORK_VERSION, min_length=1)
    #: The image's Python (e.g. ``py3`` for scikit-learn, ``py311`` for PyTorch); default: the SDK's choice.
    py_version: str | None = Field(default=None, min_length=1)
    image_uri: str | None = None
    inference_image_uri: str | None = None

    @model_validator(mode="after")
    def _images_valid(self) -> FrameworkConfig:
        for field in ("image_uri", "inference_image_uri"):
            value = getattr(self, field)
            if value is not None and not _IMAGE_URI.match(value):
                raise ValueError(f"{field} {value!r} is not an image URI "
                                 "(<registry>/<repository>:<tag> or @sha256:<digest>)")
        if self.inference_image_uri is not None and self.image_uri is None:
            raise ValueError("inference_image_uri needs image_uri (the training image) beside it")
        return self

    def is_stack_default(self) -> bool:
        return (self.name, self.version, self.image_uri) == (DEFAULT_FRAMEWORK, DEFAULT_FRAMEWORK_VERSION, None)

    def describe(self) -> str:
        if self.image_uri:
            return f"image {self.image_uri}"
        return f"{self.name} {self.version}" + (f" ({self.py_version})" if self.py_version else "")


class PublishedBuild(BaseModel):
    """``published`` in a published config: what ``autoloop publish`` resolved and uploaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    training_image: str = Field(min_length=1)
    inference_image: str = Field(min_length=1)
    #: The region the images were resolved for (an image is pulled from its region's registry).
    region: str = Field(min_length=1)
    #: sha256 of the uploaded ``sourcedir.tar.gz`` (hex).
    bundle_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelImages:
    """The images a model's jobs use: ``training`` for its training job (and the evaluate job of
    a framework other than scikit-learn), ``inference`` for its package, endpoint and batch."""

    framework: str
    training: str
    inference: str

    def evaluate_image(self, stack_image: str) -> str:
        """Autoloop's evaluate.py loads the model: a scikit-learn model loads in the stack's image,
        any other framework's only where that framework is installed, its own training image."""
        return stack_image if self.framework == DEFAULT_FRAMEWORK else self.training


# ----------------------------------------------------------------------------- batch transform
class BatchConfig(BaseModel):
    """``batch`` in ``models/<model>/config.json``: how the monthly batch transform reads and writes.

    ``id_columns`` are input columns passed through beside the features (never fed to the
    model). ``output_columns`` are the input columns kept in the results, before the
    prediction (default: every id column and feature). Malformed rows are skipped and
    counted; a month with more than ``max_malformed_fraction`` of them fails instead.
    ``schedule`` turns the model's monthly schedule on (the default) or off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_columns: tuple[str, ...] = ()
    output_columns: tuple[str, ...] | None = None
    prediction_column: str = Field(default="prediction", min_length=1)
    max_malformed_fraction: float = Field(default=0.01, ge=0, le=1)
    #: Whether the DeployPipeline keeps a monthly schedule for the model (false: months are
    #: scored by hand only, and the next deployment deletes a schedule that exists).
    schedule: StrictBool = True

    def check(self, columns: tuple[str, ...]) -> None:
        """Raise ValueError unless consistent with the model's ``columns`` (label first)."""
        clash = sorted(set(self.id_columns) & set(columns))
        if clash:
            raise ValueError(f"batch.id_columns {clash} are already model columns")
        if len(set(self.id_columns)) != len(self.id_columns):
            raise ValueError("batch.id_columns has duplicates")
        kept = (*self.id_columns, *columns[1:])
        if self.output_columns is not None:
            unknown = sorted(set(self.output_columns) - set(kept))
            if unknown:
                raise ValueError(f"batch.output_columns {unknown} are neither id columns nor features")
            if len(set(self.output_columns)) != len(self.output_columns):
                raise ValueError("batch.output_columns has duplicates")
        if self.prediction_column in kept:
            raise ValueError(f"batch.prediction_column {self.prediction_column!r} is already an input column")


ModelConfig.model_rebuild()


class BatchPlanSettings(SecurityKnobs):
    monitoring_backend: Literal["autoloop", "model-monitor"] = "autoloop"
    stack_name: str
    data_bucket: str
    artifacts_bucket: str
    model_package_group_prefix: str
    sagemaker_role_arn: str
    state_machine_arn: str


class BatchLaunchSettings(SecurityKnobs):
    monitoring_backend: Literal["autoloop", "model-monitor"] = "autoloop"
    stack_name: str
    artifacts_bucket: str
    task_token_table: str
    sagemaker_role_arn: str
    framework_image_uri: str
    model_monitor_image_uri: str = ""
    processing_instance_type: str = "ml.m5.large"
    transform_instance_type: str = "ml.m5.large"
    job_max_runtime_seconds: int = Field(default=3600, ge=60)
    transform_max_payload_mb: int = Field(default=6, ge=1, le=100)


class BatchPublishSettings(Settings):
    data_bucket: str
    artifacts_bucket: str


class RunSlotSettings(Settings):
    run_slots_table: str
