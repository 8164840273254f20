"""Typed views of the state machine's payloads (execution input and task inputs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoloop.errors import InvalidEvent
from autoloop.monitoring import CheckInputs
from autoloop.naming import JOB_STEPS


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Source(_Model):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str = ""
    size: int = 0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Trigger(_Model):
    type: Literal["s3", "drift", "quality", "manual"] = "s3"
    detail: dict[str, Any] = Field(default_factory=dict)


class Dataset(_Model):
    rows: int
    columns: int
    bytes: int
    missing_labels: int
    label: str
    metric: str
    threshold: float | None = None
    #: The quality gate's settings from the model config (see autoloop.gate).
    direction: str | None = None
    min_improvement: float = 0.0
    promote_ties: bool = False
    task: str = "binary"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    #: The folder holding the copy of the validated object version (the preprocess job's input).
    input_uri: str | None = None
    #: The model's framework and images, as published (config.ModelImages), fixed for the run at
    #: validation; None in a state from before images were per model: the stack's FrameworkImageUri.
    framework: str = "sklearn"
    training_image: str | None = None
    inference_image: str | None = None
    #: sha256 of the model's published sourcedir.tar.gz (None: the config was put without publish).
    bundle_sha256: str | None = None
    #: The config's instance types for preprocess, train and evaluate (config.InstanceTypes).
    instance_types: dict[str, str] = Field(default_factory=dict)


class JobResult(_Model):
    job_name: str
    kind: Literal["processing", "training", "transform"]
    status: str
    outputs: dict[str, str] = Field(default_factory=dict)
    model_artifacts: str | None = None
    failure_reason: str | None = None


class PipelineState(_Model):
    run_id: str
    model: str
    source: Source
    trigger: Trigger = Field(default_factory=Trigger)
    dataset: Dataset | None = None
    jobs: dict[str, JobResult] = Field(default_factory=dict)
    gate: dict[str, Any] | None = None

    def job(self, step: str) -> JobResult:
        if step not in self.jobs:
            raise InvalidEvent(f"the pipeline state has no result for step {step!r}")
        return self.jobs[step]

    def need_dataset(self) -> Dataset:
        if self.dataset is None:
            raise InvalidEvent("the pipeline state has no dataset (ValidateInput did not run)")
        return self.dataset


Step = Literal["preprocess", "train", "evaluate", "baseline", "calibrate", "monitor"]


class DeployPlan(_Model):
    action: Literal["create", "update", "none"]
    reason: str
    model: str
    endpoint_name: str
    package_arn: str | None = None
    package_version: int | None = None
    run_id: str | None = None
    model_name: str | None = None
    config_name: str | None = None
    previous_config: str | None = None
    image: str | None = None
    model_data_url: str | None = None
    environment: dict[str, str] | None = None
    metric: float | None = None
    #: > 0: a serverless endpoint with this memory (no network isolation, VPC or data capture).
    serverless_memory_mb: int = 0
    #: False for serverless: no captured data, so the DeployPipeline schedules no monitoring.
    data_capture: bool = True


class DeployState(_Model):
    plan: DeployPlan
    jobs: dict[str, JobResult] = Field(default_factory=dict)

    @property
    def run_id(self) -> str:
        if not self.plan.run_id:
            raise InvalidEvent("the deployment plan names no training run")
        return self.plan.run_id

    def job(self, step: str) -> JobResult:
        if step not in self.jobs:
            raise InvalidEvent(f"the deployment state has no result for step {step!r}")
        return self.jobs[step]


class MonitoringPlan(_Model):
    """A MonitoringPipeline run's plan (``autoloop.monitoring_steps.plan_monitoring``)."""

    action: str  # "monitor" | "skip"
    reason: str
    run_id: str
    model: str
    endpoint: str
    window_start: str
    window_end: str
    report_uri: str
    baseline_uri: str = ""
    capture_manifest_uri: str | None = None
    capture_files: int = 0
    ground_truth_manifest_uri: str | None = None
    ground_truth_files: int = 0
    latest_label_at: str | None = None
    ground_truth_prefix: str = ""
    metric: str = "auc"
    direction: str = "higher"
    threshold: float = 0.0
    quality_margin: float = 0.0
    champion_arn: str | None = None
    champion_metric: float | None = None
    champion_created_at: str | None = None

    def check_inputs(self) -> CheckInputs:
        """The monitoring job's inputs (LaunchJob builds its request from them)."""
        if self.action != "monitor" or not self.capture_manifest_uri:
            raise InvalidEvent(f"monitoring run {self.run_id} has nothing to check: {self.reason}")
        return CheckInputs(
            model=self.model, baseline_uri=self.baseline_uri, capture_manifest_uri=self.capture_manifest_uri,
            ground_truth_manifest_uri=self.ground_truth_manifest_uri, output_uri=self.report_uri,
            window_start=self.window_start, window_end=self.window_end, metric=self.metric,
            direction=self.direction, threshold=self.threshold, champion_metric=self.champion_metric,
            quality_margin=self.quality_margin,
        )


class MonitoringState(_Model):
    """The MonitoringPipeline's state after its job: the plan and the job's result."""


    plan: MonitoringPlan
    jobs: dict[str, JobResult] = Field(default_factory=dict)


class LaunchRequest(_Model):
    task_token: str = Field(min_length=1)
    step: Step
    execution: str = ""
    state: dict[str, Any]


class ReconcileRequest(_Model):
    run_id: str
    step: Step


class EndpointRequest(_Model):
    task_token: str = ""
    execution: str = ""
    plan: DeployPlan


def parse[T: BaseModel](cls: type[T], payload: Any, what: str) -> T:
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent(f"malformed {what}: {exc}") from exc


__all__ = ["JOB_STEPS", "DeployPlan", "DeployState", "EndpointRequest", "LaunchRequest", "MonitoringPlan",
           "MonitoringState", "PipelineState",
           "ReconcileRequest", "parse"]
