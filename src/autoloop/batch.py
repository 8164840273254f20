"""The monthly batch transform, as pure functions: months, names, layout, requests, policy, report.

A month's run (``statemachine/batch_transform.asl.json``) scores every CSV under
``s3://<DataBucket>/batch/<model>/<YYYY-MM>/`` with the latest Approved model package and
publishes the results under ``s3://<DataBucket>/predictions/<model>/month=<YYYY-MM>/``.
No endpoint is involved: a SageMaker Transform job runs for the month and ends.

Layout of one attempt (all under ``s3://<ArtifactsBucket>/runs/<model>/<run_id>/``)::

    prepare/clean/<file>          the valid rows, id columns then features, no header (transform input)
    prepare/monitor/<file>        the valid rows' features, with a header (data-quality check input)
    prepare/malformed/malformed.csv   the rows that were skipped: file, line, reason, row
    prepare/summary/summary.json  counts per file
    transform/<file>.out          input row + prediction, filtered (SageMaker's naming)
    monitor/                      statistics.json, constraint_violations.json

Names are deterministic (:func:`autoloop.naming.batch_run_id`, ``batch_job_name``): the run id
of a month is ``<model>-<YYYYMM>-<6 hex of the data bucket>`` (``-r<N>`` for attempt N > 1),
and its jobs are ``<run_id>-prepare``, ``-transform``, ``-monitor``. A rerun of a month whose
results are published does nothing; a rerun after a failure starts the next attempt; a rerun
after a crash between jobs resumes the attempt (its finished jobs are reused, not run again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autoloop.config import BATCH_MONTHLY, ModelConfig
from autoloop.errors import BatchSchemaMismatch, InvalidEvent, NoBatchInput, TooManyMalformedRows
from autoloop.jobs import PROC, JobContext, JobKind, config_key, processing_guards, s3_input, s3_output
from autoloop.monitoring import MAX_SCHEDULE_NAME, MONITOR_OUTPUT, MONITOR_SCRIPT, SCHEDULE_GROUP
from autoloop.naming import BATCH_STEPS, MAX_JOB_NAME, batch_job_name, fit_name, parse_month, parse_time
from autoloop.state import JobResult

INPUT_PREFIX = "batch/"
OUTPUT_PREFIX = "predictions/"
REPORT_FILE = "_report.json"
MALFORMED_FOLDER = "_malformed/"
PREPARE_SCRIPT = "batch_prepare.py"
BATCH_STEP_KIND: dict[str, JobKind] = dict(zip(BATCH_STEPS, ("processing", "transform", "processing"), strict=True))
MAX_ATTEMPTS = 20
SCHEDULE_STATES = ("ENABLED", "DISABLED")
FAILED_STATUSES = frozenset({"Failed", "Stopped"})
CSV = "text/csv"


BatchStep = Literal["prepare", "transform", "monitor"]


# ----------------------------------------------------------------------------- payloads
class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BatchTrigger(_Model):
    type: Literal["schedule", "manual"] = "manual"
    scheduled_time: str | None = None
    schedule: str | None = None


class BatchRequest(_Model):
    """The BatchTransform execution input (the schedule's, or a manual run's)."""

    model: str = Field(min_length=1)
    month: str | None = None
    force: bool = False
    trigger: BatchTrigger = Field(default_factory=BatchTrigger)


class PlanRequest(_Model):
    request: BatchRequest
    execution: str = ""


class Package(_Model):
    arn: str
    version: int
    training_run_id: str | None = None


class Monitoring(_Model):
    constraints_uri: str | None = None
    statistics_uri: str | None = None
    skipped: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.constraints_uri and self.statistics_uri)


class BatchPlan(_Model):
    """What the run does (``$.batch``). ``action`` "skip" carries only the names and the reason."""

    action: Literal["score", "skip"]
    reason: str
    model: str
    month: str
    run_id: str
    attempt: int = 1
    package: Package | None = None
    model_name: str | None = None
    endpoint_name: str = ""
    input_uri: str = ""
    output_uri: str = ""
    files: list[str] = Field(default_factory=list)
    empty_files: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    output_columns: list[str] = Field(default_factory=list)
    input_filter: str | None = None
    output_filter: str | None = None
    max_malformed_fraction: float = 0.01
    #: The config's instance_types.transform (None: the stack's TransformInstanceType).
    instance_type: str | None = None
    input_digest: str = ""
    monitoring: Monitoring = Field(default_factory=Monitoring)


class BatchState(_Model):
    batch: BatchPlan
    jobs: dict[str, JobResult] = Field(default_factory=dict)

    def job(self, step: str) -> JobResult:
        if step not in self.jobs:
            raise InvalidEvent(f"the batch state has no result for step {step!r}")
        return self.jobs[step]


class BatchLaunchRequest(_Model):
    task_token: str = Field(min_length=1)
    execution: str = ""
    step: BatchStep
    state: BatchState


class BatchReconcileRequest(_Model):
    run_id: str
    step: BatchStep


# ----------------------------------------------------------------------------- months
def previous_month(when: datetime) -> str:
    """The calendar month before ``when``'s (in UTC)."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    year, month = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def resolve_month(request: BatchRequest, now: datetime) -> str:
    """The month to score: the request's, else the one before the scheduled time (or now).

    A month that has not ended yet is refused: publishing part of it would mark it done,
    and the schedule would then skip the rest of its data.
    """
    if request.month:
        month = parse_month(request.month)
    else:
        base = parse_time(request.trigger.scheduled_time) if request.trigger.scheduled_time else now
        month = previous_month(base)
    if month >= f"{now.astimezone(UTC).year:04d}-{now.astimezone(UTC).month:02d}":
        raise InvalidEvent(f"month {month} has not ended yet (now is {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC).",
                           "Score a month after it ends; the schedule does so on the 1st of the next month.")
    return month


# ----------------------------------------------------------------------------- names and layout
def model_name(stack: str, model: str, package_arn: str, version: int) -> str:
    """The SageMaker Model a package is scored with: ``<stack>-<model>-v<N>-<hash>-bt``.

    The ``-bt`` ending keeps it apart from the endpoint's models (``...-v<N>-<hash>``), which
    the DeployPipeline's cleanup deletes when another package serves.
    """
    suffix = f"-v{version}-{hashlib.sha256(package_arn.encode()).hexdigest()[:6]}-bt"
    return f"{stack}-{model}"[: MAX_JOB_NAME - len(suffix)] + suffix


def input_prefix(model: str, month: str) -> str:
    return f"{INPUT_PREFIX}{model}/{parse_month(month)}/"


def output_prefix(model: str, month: str) -> str:
    """Hive-style partition, so query engines see ``month`` as a column."""
    return f"{OUTPUT_PREFIX}{model}/month={parse_month(month)}/"


def is_data_key(key: str, prefix: str) -> bool:
    """Objects under the month's prefix that are data: not folders, not hidden or marker files."""
    name = key[len(prefix):].rsplit("/", 1)[-1]
    return key.startswith(prefix) and bool(name) and not name.startswith((".", "_"))


# ----------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class Columns:
    """The prepared input row is ``id columns + features``; the output is ``kept + prediction``."""

    id_columns: tuple[str, ...]
    features: tuple[str, ...]
    kept: tuple[str, ...]
    prediction: str

    @property
    def input(self) -> tuple[str, ...]:
        return (*self.id_columns, *self.features)

    @property
    def output(self) -> tuple[str, ...]:
        return (*self.kept, self.prediction)

    @property
    def input_filter(self) -> str | None:
        """The model sees the features only."""
        return f"$[{len(self.id_columns)}:]" if self.id_columns else None

    @property
    def output_filter(self) -> str | None:
        """JoinSource=Input appends the prediction to the input row; keep what was asked for."""
        if self.kept == self.input:
            return None
        indices = [self.input.index(c) for c in self.kept]
        return "$[" + ",".join(str(i) for i in [*indices, -1]) + "]"


def columns(config: ModelConfig) -> Columns:
    batch = config.batch
    kept = batch.output_columns if batch.output_columns is not None else (*batch.id_columns, *config.features)
    return Columns(tuple(batch.id_columns), tuple(config.features), tuple(kept), batch.prediction_column)


def check_header(header: Sequence[str], config: ModelConfig, where: str) -> None:
    """A file's header must name the id columns and features (any order); the label may be there too."""
    expected = set(columns(config).input)
    names = [h.strip() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    missing = [c for c in columns(config).input if c not in names]
    unexpected = [n for n in names if n not in expected and n != config.label]
    if duplicates or missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unexpected:
            parts.append(f"unexpected {unexpected}")
        if duplicates:
            parts.append(f"duplicated {duplicates}")
        raise BatchSchemaMismatch(
            f"{where} has the wrong columns: {'; '.join(parts)}. Expected (any order): "
            f"{', '.join(columns(config).input)}, optionally {config.label}."
        )


# ----------------------------------------------------------------------------- attempts
@dataclass(frozen=True)
class Attempt:
    """The jobs of one attempt that exist: step -> status; the transform job's model."""

    number: int
    statuses: Mapping[str, str]
    transform_model: str | None = None
    input_digest: str | None = None


def input_digest(files: Sequence[tuple[str, str, int]], input_columns: Sequence[str]) -> str:
    """What the prepare job's output depends on: each file (key, ETag, size) and the columns."""
    text = json.dumps([sorted(files), list(input_columns)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def choose_attempt(attempts: Sequence[Attempt], *, model: str, digest: str, force: bool) -> tuple[int, str]:
    """Which attempt a run uses. ``attempts`` are the consecutive attempts that have jobs.

    Resume the last one unless it failed, read other input files, scored with another model,
    or ``force`` asks for a fresh one: its finished jobs are then reused (a retried launch
    finds the job and returns its result) and nothing is computed twice.
    """
    fresh = len(attempts) + 1
    if not attempts:
        return 1, "first attempt"
    last = attempts[-1]
    if force:
        return fresh, f"forced: attempt {fresh} scores the month again"
    failed = sorted(step for step, status in last.statuses.items() if status in FAILED_STATUSES)
    if failed:
        return fresh, f"attempt {last.number} failed ({', '.join(failed)}): attempt {fresh}"
    if last.input_digest != digest:
        return fresh, f"the month's input changed since attempt {last.number}: attempt {fresh}"
    if last.transform_model and last.transform_model != model:
        return fresh, f"attempt {last.number} scored with {last.transform_model}: attempt {fresh} uses {model}"
    return last.number, f"resuming attempt {last.number}: its finished jobs are reused"


def oldest_first(mine: tuple[datetime, str], others: Sequence[tuple[datetime, str]]) -> str | None:
    """Of several running executions for one month, the oldest (then lowest name) goes on; the
    name of the one that goes on if it is not ``mine``."""
    first = min([mine, *others])
    return None if first == mine else first[1]


# ----------------------------------------------------------------------------- job requests
def _processing_job(ctx: JobContext, step: str, app: dict[str, Any], inputs: list[dict[str, Any]],
                    outputs: list[dict[str, Any]], environment: dict[str, str]) -> dict[str, Any]:
    return {
        "ProcessingJobName": batch_job_name(ctx.run_id, step),
        "RoleArn": ctx.role_arn,
        "AppSpecification": app,
        "ProcessingInputs": inputs,
        **processing_guards(ctx, outputs, volume_gb=30),
        "Environment": environment,
        "Tags": ctx.tags(step),
    }


PREPARE_OUTPUTS = ("clean", "monitor", "malformed", "summary")
INPUT_DIGEST_ENV = "AUTOLOOP_INPUT_DIGEST"


def prepare_request(ctx: JobContext, plan: BatchPlan, config_uri: str) -> dict[str, Any]:
    """Validate the month's files and split them into the transform's input and the monitor's."""
    config_name = config_uri.rsplit("/", 1)[-1]
    return _processing_job(
        ctx, "prepare",
        {
            "ImageUri": ctx.image_uri,
            "ContainerEntrypoint": ["python3", f"{PROC}/input/code/{PREPARE_SCRIPT}"],
            "ContainerArguments": [
                "--input-dir", f"{PROC}/input/data",
                "--config", f"{PROC}/input/config/{config_name}",
                "--output-dir", f"{PROC}/output",
            ],
        },
        [
            s3_input("data", plan.input_uri, f"{PROC}/input/data"),
            s3_input("config", config_uri, f"{PROC}/input/config"),
            s3_input("code", ctx.code_uri, f"{PROC}/input/code"),
        ],
        [s3_output(n, ctx.uri("prepare", n), f"{PROC}/output/{n}") for n in PREPARE_OUTPUTS],
        {"AUTOLOOP_RUN_ID": ctx.run_id, INPUT_DIGEST_ENV: plan.input_digest},
    )


def transform_request(ctx: JobContext, plan: BatchPlan, clean_uri: str, max_payload_mb: int) -> dict[str, Any]:
    """SplitType Line + MultiRecord: mini-batches of whole rows up to ``max_payload_mb``; each
    row is joined with its prediction (JoinSource=Input) and filtered to the asked columns.

    CreateTransformJob has no StoppingCondition. What bounds the job: each request to the model
    times out after ``InvocationsTimeoutInSeconds`` and is retried at most
    ``InvocationsMaxRetries`` times, and the input is one month's prepared files. The step gives
    up after its wait and the reconcile retries, but that does not stop the job itself. Network
    isolation and the VPC come from the model (``EnableNetworkIsolation``, ``VpcConfig``)."""
    if not plan.model_name:
        raise InvalidEvent("the batch plan names no SageMaker model")
    processing: dict[str, str] = {"JoinSource": "Input"}
    if plan.input_filter:
        processing["InputFilter"] = plan.input_filter
    if plan.output_filter:
        processing["OutputFilter"] = plan.output_filter
    return {
        "TransformJobName": batch_job_name(ctx.run_id, "transform"),
        "ModelName": plan.model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": max_payload_mb,
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": clean_uri.rstrip("/") + "/"}},
            "ContentType": CSV,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": ctx.uri("transform"), "Accept": CSV, "AssembleWith": "Line",
                            **ctx.security.key()},
        "TransformResources": {"InstanceType": ctx.instance_type, "InstanceCount": 1,
                               **ctx.security.key("VolumeKmsKeyId")},
        "DataProcessing": processing,
        "Environment": {"AUTOLOOP_RUN_ID": ctx.run_id},
        "Tags": ctx.tags("transform"),
    }


MONITOR_DATA = f"{PROC}/input/data"
MONITOR_BASELINE = f"{PROC}/baseline"


def own_monitor_request(ctx: JobContext, plan: BatchPlan, monitor_data_uri: str) -> dict[str, Any]:
    """The autoloop backend's check of the month's input: ``monitor.py check --csv-dir`` in the
    framework image, against the training run's baseline, calibrated at the month's size. Its
    report lands where the Model Monitor image's would; the batch reads it the same way."""
    if not plan.monitoring.enabled:
        raise InvalidEvent(f"monitoring is off for this run: {plan.monitoring.skipped}")
    baseline = str(plan.monitoring.statistics_uri).rsplit("/", 1)[0]
    config = f"s3://{ctx.artifacts_bucket}/{config_key(plan.model)}"
    return _processing_job(
        ctx, "monitor",
        {"ImageUri": ctx.image_uri, "ContainerEntrypoint": ["python3", f"{PROC}/input/code/{MONITOR_SCRIPT}"],
         "ContainerArguments": ["check", "--config", f"{PROC}/input/config/{plan.model}.json",
                                "--baseline-dir", MONITOR_BASELINE, "--csv-dir", MONITOR_DATA,
                                "--output-dir", MONITOR_OUTPUT]},
        [s3_input("month_input", monitor_data_uri, MONITOR_DATA),
         s3_input("baseline", baseline, MONITOR_BASELINE),
         s3_input("config", config, f"{PROC}/input/config"),
         s3_input("code", ctx.code_uri, f"{PROC}/input/code")],
        [s3_output("monitoring_output", ctx.uri("monitor"), MONITOR_OUTPUT)],
        {"AUTOLOOP_RUN_ID": ctx.run_id},
    )


def monitor_request(ctx: JobContext, plan: BatchPlan, monitor_data_uri: str, monitor_image: str) -> dict[str, Any]:
    """A data-quality check of the month's input against the model's calibrated baseline.

    It runs the Model Monitor analyzer image exactly as a monitoring execution does (the BYOC
    environment contract), once, on the prepared features. ``sagemaker_endpoint_name`` names
    the model's endpoint (``<stack>-<model>``) even though no endpoint serves: that is how the
    drift handler maps a report to its model, so monthly drift raises the same alert, under
    the same policy, as endpoint drift. There is no ``sagemaker_monitoring_schedule_name``, so
    the job's state change also reaches the callback that completes this step.
    """
    if not plan.monitoring.enabled:
        raise InvalidEvent(f"monitoring is off for this run: {plan.monitoring.skipped}")
    constraints, statistics = str(plan.monitoring.constraints_uri), str(plan.monitoring.statistics_uri)
    return _processing_job(
        ctx, "monitor",
        {"ImageUri": monitor_image},
        [
            s3_input("month_input", monitor_data_uri, MONITOR_DATA),
            s3_input("constraints", constraints, f"{MONITOR_BASELINE}/constraints", "S3Prefix"),
            s3_input("statistics", statistics, f"{MONITOR_BASELINE}/stats", "S3Prefix"),
        ],
        [s3_output("monitoring_output", ctx.uri("monitor"), MONITOR_OUTPUT)],
        {
            "dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
            "dataset_source": MONITOR_DATA,
            "output_path": MONITOR_OUTPUT,
            "baseline_constraints": f"{MONITOR_BASELINE}/constraints/{constraints.rsplit('/', 1)[-1]}",
            "baseline_statistics": f"{MONITOR_BASELINE}/stats/{statistics.rsplit('/', 1)[-1]}",
            "publish_cloudwatch_metrics": "Disabled",
            "sagemaker_endpoint_name": plan.endpoint_name,
            "AUTOLOOP_RUN_ID": ctx.run_id,
        },
    )


# ----------------------------------------------------------------------------- malformed rows
def check_malformed(summary: Mapping[str, Any], max_fraction: float, where: str) -> None:
    """The policy: malformed rows are skipped and counted; the month fails when no row is
    valid, or when more than ``max_fraction`` of its rows are malformed."""
    valid, malformed = int(summary.get("rows_valid", 0)), int(summary.get("rows_malformed", 0))
    total = valid + malformed
    if valid == 0:
        raise NoBatchInput(
            f"the month's files have no valid row ({malformed} malformed, "
            f"{len(summary.get('empty_files', []))} empty file(s)); see {where}."
        )
    if malformed / total > max_fraction:
        raise TooManyMalformedRows(
            f"{malformed} of {total} rows ({malformed / total:.1%}) are malformed, above the limit of "
            f"{max_fraction:.1%} (batch.max_malformed_fraction); they are listed in {where}."
        )


# ----------------------------------------------------------------------------- report
def report(plan: BatchPlan, summary: Mapping[str, Any], outputs: Sequence[str], malformed_uri: str | None,
           data_quality: Mapping[str, Any], transform_job: str, published_at: datetime) -> dict[str, Any]:
    """``_report.json``: what was scored, with what, where the results and the skipped rows are."""
    valid, malformed = int(summary.get("rows_valid", 0)), int(summary.get("rows_malformed", 0))
    return {
        "model": plan.model,
        "month": plan.month,
        "run_id": plan.run_id,
        "attempt": plan.attempt,
        "transform_job": transform_job,
        "package": plan.package.model_dump() if plan.package else None,
        "sagemaker_model": plan.model_name,
        "input": {
            "uri": plan.input_uri,
            "files": len(summary.get("files", [])),
            "empty_files_skipped": list(summary.get("empty_files", [])),
            "rows": valid + malformed,
        },
        "rows": {"scored": valid, "malformed": malformed},
        "malformed": {
            "count": malformed,
            "policy": f"skipped and counted; the month fails above {plan.max_malformed_fraction:.1%}",
            "uri": malformed_uri,
            "examples": list(summary.get("malformed_examples", []))[:10],
        },
        "output": {
            "uri": plan.output_uri,
            "files": sorted(outputs),
            "columns": list(plan.output_columns),
            "format": "text/csv without a header; columns as listed",
        },
        "data_quality": dict(data_quality),
        "published_at": published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def message(doc: Mapping[str, Any]) -> str:
    """The success notification: row and file counts first, then where everything is."""
    rows, inp, out, bad, dq = doc["rows"], doc["input"], doc["output"], doc["malformed"], doc["data_quality"]
    package = doc.get("package") or {}
    lines = [
        f"Batch transform of {doc['model']} for {doc['month']}: {rows['scored']:,} rows scored from "
        f"{inp['files']} file(s) into {len(out['files'])} file(s) with model package v{package.get('version')}.",
        f"Results: {out['uri']} (columns: {', '.join(out['columns'])}).",
    ]
    if skipped := inp["empty_files_skipped"]:
        lines.append(f"Empty files skipped: {len(skipped)} ({', '.join(skipped)}).")
    if bad["count"]:
        lines.append(f"Malformed rows skipped: {bad['count']:,} (listed in {bad['uri']}).")
    else:
        lines.append("Malformed rows: none.")
    lines.append(f"Data quality: {dq.get('status')}" + (f" (report {dq['report']})" if dq.get("report") else ""))
    lines.append(f"Run {doc['run_id']}, transform job {doc['transform_job']}.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the monthly schedule
def schedule_name(stack: str, model: str) -> str:
    """The model's monthly EventBridge Scheduler schedule: ``<stack>-<model>-batch`` (at most 64)."""
    return fit_name(f"{stack}-{model}", "-batch", MAX_SCHEDULE_NAME)


def schedule_request(*, stack: str, model: str, target_arn: str, role_arn: str, expression: str = BATCH_MONTHLY,
                     state: str = "ENABLED", kms_key_arn: str = "") -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule request of a model's monthly batch transform, which the
    DeployPipeline puts for every model whose config has ``batch.schedule`` on (the default).

    Scheduler replaces ``<aws.scheduler.scheduled-time>`` with the due time: the month scored is
    the one before it, so a late or repeated delivery scores the same month."""
    if state not in SCHEDULE_STATES:
        raise ValueError(f"schedule state {state!r} is not one of {SCHEDULE_STATES}")
    payload = {"model": model, "trigger": {"type": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>",
                                           "schedule": "<aws.scheduler.schedule-arn>"}}
    return {
        "Name": schedule_name(stack, model),
        "GroupName": SCHEDULE_GROUP,
        "Description": f"Autoloop: score the month before with the latest Approved {model} model"[:512],
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": state,
        "Target": {
            "Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600},
        },
        **({"KmsKeyArn": kms_key_arn} if kms_key_arn else {}),
    }
