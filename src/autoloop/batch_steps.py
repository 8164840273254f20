"""The BatchTransform state machine's Lambda steps: plan the month, launch and reconcile its
jobs (waited on through their state-change events, like the TrainingPipeline's), publish.

The pure parts (names, requests, policy, report) are in :mod:`autoloop.batch`.
"""

from __future__ import annotations

import csv
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import adapters, tasks, tracking
from autoloop.adapters import aws_call, client, error_code
from autoloop.batch import (
    BATCH_STEP_KIND,
    MALFORMED_FOLDER,
    MAX_ATTEMPTS,
    PREPARE_SCRIPT,
    REPORT_FILE,
    Attempt,
    BatchLaunchRequest,
    BatchPlan,
    BatchReconcileRequest,
    BatchRequest,
    BatchState,
    Monitoring,
    Package,
    PlanRequest,
    check_header,
    check_malformed,
    choose_attempt,
    columns,
    input_digest,
    input_prefix,
    is_data_key,
    message,
    model_name,
    monitor_request,
    oldest_first,
    output_prefix,
    own_monitor_request,
    prepare_request,
    report,
    resolve_month,
    transform_request,
)
from autoloop.config import BatchLaunchSettings, BatchPlanSettings, BatchPublishSettings, load_model_config
from autoloop.drift import parse_violations, summary
from autoloop.errors import (
    AutoloopError,
    AwsCallFailed,
    BatchAttemptsExhausted,
    BatchOutputMissing,
    BatchSchemaMismatch,
    ConfigError,
    InvalidEvent,
    InvalidViolationsReport,
    JobNotFound,
    MlCodeMissing,
    NoBatchInput,
)
from autoloop.jobs import JobContext, JobSecurity, code_key, config_key, job_result
from autoloop.naming import RUN_ID_KEY, batch_job_name, batch_run_id, is_valid_model_name, run_prefix
from autoloop.observability import logger, metrics
from autoloop.registry import ServablePackage, latest_servable, package_group_name
from autoloop.state import parse

HEADER_BYTES = 64 * 1024


# ----------------------------------------------------------------------------- plan
def _skip(base: dict[str, Any], reason: str) -> dict[str, Any]:
    logger.info("month skipped", extra={"reason": reason})
    metrics.add_metric(name="BatchMonthsSkipped", unit=MetricUnit.Count, value=1)
    return BatchPlan(action="skip", reason=reason, **base).model_dump()


def _same_month_running(settings: BatchPlanSettings, me: str, model: str, month: str,
                        now: datetime) -> str | None:
    """Another running execution for the same model and month that started first, if any.

    The schedule delivers at least once, and a person may start a month by hand while the
    schedule runs it: of the executions for one month, only the oldest scores it.
    """
    sfn = client("stepfunctions")
    mine: tuple[datetime, str] | None = None
    others: list[tuple[datetime, str]] = []
    with aws_call("listing running BatchTransform executions"):
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=settings.state_machine_arn, statusFilter="RUNNING")
        running = [e for page in pages for e in page["executions"]]
        for execution in running:
            started, name = execution["startDate"], execution["name"]
            if execution["executionArn"] == me:
                mine = (started, name)
                continue
            raw = sfn.describe_execution(executionArn=execution["executionArn"]).get("input") or "{}"
            try:
                other = BatchRequest.model_validate_json(raw)
                if other.model == model and resolve_month(other, now) == month:
                    others.append((started, name))
            except (ValueError, AutoloopError):
                continue  # not a month we would score
    if not others:
        return None
    return oldest_first(mine or (now, me.rsplit(":", 1)[-1]), others)


def _published(bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return None
        with aws_call(f"reading s3://{bucket}/{key}"):
            raise
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # an unreadable report does not count as published
    return doc if isinstance(doc, dict) else None


def _list_input(bucket: str, prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
    files: list[dict[str, Any]] = []
    empty: list[str] = []
    with aws_call(f"listing s3://{bucket}/{prefix}"):
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not is_data_key(obj["Key"], prefix):
                    continue
                if obj["Size"] == 0:
                    empty.append(obj["Key"][len(prefix):])
                else:
                    files.append(obj)
    if not files:
        detail = f" (only empty files: {', '.join(empty)})" if empty else ""
        raise NoBatchInput(f"s3://{bucket}/{prefix} has no input files{detail}.")
    return files, empty


def _header(bucket: str, key: str) -> list[str]:
    """The first line of an object (gzip or not), read with one ranged GET."""
    uri = f"s3://{bucket}/{key}"
    with aws_call(f"reading the header of {uri}"):
        head = client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=47).decompress(head, HEADER_BYTES)
        except zlib.error as exc:
            raise BatchSchemaMismatch(f"{uri} looks gzipped but cannot be read: {exc}.") from exc
    if b"\n" not in head and len(head) >= HEADER_BYTES:
        raise BatchSchemaMismatch(f"{uri} has no line end in its first {HEADER_BYTES // 1024} KB; is it CSV?")
    try:
        first = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise BatchSchemaMismatch(f"{uri} does not start with a UTF-8 header row ({exc}).") from exc
    if not first.strip():
        raise BatchSchemaMismatch(f"{uri} has no header row (its first line is empty).")
    return next(csv.reader([first]))


def _attempts(model: str, month: str, bucket: str) -> list[Attempt]:
    """The month's attempts that have jobs, in order (jobs are created prepare, transform, monitor)."""
    found: list[Attempt] = []
    for number in range(1, MAX_ATTEMPTS + 2):
        run = batch_run_id(model, month, bucket, number)
        statuses: dict[str, str] = {}
        transform_model = digest = None
        for step, kind in BATCH_STEP_KIND.items():
            try:
                description = tasks.describe_job(kind, batch_job_name(run, step))
            except JobNotFound:
                break
            statuses[step] = str(job_result(kind, description)["status"])
            if step == "prepare":
                digest = (description.get("Environment") or {}).get("AUTOLOOP_INPUT_DIGEST")
            if step == "transform":
                transform_model = description.get("ModelName")
        if not statuses:
            return found
        found.append(Attempt(number, statuses, transform_model, digest))
    return found


def _ensure_model(name: str, package: ServablePackage, role_arn: str, tags: list[dict[str, str]],
                  security: JobSecurity) -> bool:
    """Create the package's SageMaker Model unless it exists; True if it was created."""
    sagemaker = client("sagemaker")
    with aws_call(f"creating SageMaker model {name}"):
        try:
            sagemaker.describe_model(ModelName=name)
            return False
        except ClientError as exc:
            if error_code(exc) != "ValidationException":
                raise
        try:
            sagemaker.create_model(
                ModelName=name, ExecutionRoleArn=role_arn,
                PrimaryContainer={"Image": package.image, "ModelDataUrl": package.model_data_url,
                                  "Environment": dict(package.environment)},
                EnableNetworkIsolation=True, Tags=tags, **security.vpc(),
            )
        except ClientError as exc:
            if "already exist" not in str(exc).lower():
                raise
            return False
    return True


def _monitoring(artifacts_bucket: str, model: str, training_run: str | None, backend: str) -> Monitoring:
    """The baseline of the package's training run, made by the DeployPipeline (calibrated there
    for Model Monitor; Autoloop's own job calibrates at the month's size)."""
    if not training_run:
        return Monitoring(skipped=f"the package was not registered by an Autoloop run (no {RUN_ID_KEY})")
    prefix = run_prefix(model, training_run)
    step = "baseline" if backend == "autoloop" else "calibrate"
    constraints, statistics = f"{prefix}/{step}/constraints.json", f"{prefix}/baseline/statistics.json"
    missing = [k for k in (constraints, statistics) if not adapters.object_exists(artifacts_bucket, k)]
    if missing:
        return Monitoring(skipped=(
            f"no calibrated baseline for training run {training_run} (missing "
            f"{', '.join(f's3://{artifacts_bucket}/{k}' for k in missing)}; the DeployPipeline's baseline "
            "and calibrate steps write it)"))
    return Monitoring(constraints_uri=f"s3://{artifacts_bucket}/{constraints}",
                      statistics_uri=f"s3://{artifacts_bucket}/{statistics}")


def plan_batch(payload: Any, settings: BatchPlanSettings, now: datetime | None = None) -> dict[str, Any]:
    """Decide what this run does for its month: score it (which attempt, with which model), or skip it."""
    now = now or datetime.now(UTC)
    request = parse(PlanRequest, payload, "batch transform input")
    req = request.request
    if not is_valid_model_name(req.model):
        raise InvalidEvent(f"model name {req.model!r} is not valid (lowercase letters, digits, '-').")
    model, month = req.model, resolve_month(req, now)
    data, artifacts = settings.data_bucket, settings.artifacts_bucket
    logger.set_correlation_id(batch_run_id(model, month, data))
    base: dict[str, Any] = {
        "model": model, "month": month, "run_id": batch_run_id(model, month, data),
        "endpoint_name": f"{settings.stack_name}-{model}",
        "input_uri": f"s3://{data}/{input_prefix(model, month)}",
        "output_uri": f"s3://{data}/{output_prefix(model, month)}",
    }
    first = _same_month_running(settings, request.execution, model, month, now)
    if first:
        return _skip(base, f"execution {first} is already scoring {model} {month}; this one writes nothing")
    published = _published(data, output_prefix(model, month) + REPORT_FILE)
    if published and not req.force:
        return _skip(base, (
            f"{model} {month} was already scored by {published.get('transform_job')} "
            f"(published {published.get('published_at')}); nothing was written. "
            'Start the month with "force": true to score it again'))

    config = load_model_config(artifacts, model)
    cols = columns(config)
    approved = latest_servable(package_group_name(settings.model_package_group_prefix, model))
    package = Package(arn=approved.arn, version=approved.version, training_run_id=approved.run_id)
    files, empty = _list_input(data, input_prefix(model, month))
    for obj in files:
        check_header(_header(data, obj["Key"]), config, f"s3://{data}/{obj['Key']}")
    digest = input_digest([(o["Key"], str(o.get("ETag", "")).strip('"'), int(o["Size"])) for o in files], cols.input)

    sm_model = model_name(settings.stack_name, model, package.arn, package.version)
    attempts = _attempts(model, month, data)
    attempt, why = choose_attempt(attempts, model=sm_model, digest=digest, force=req.force)
    if attempt > MAX_ATTEMPTS:
        raise BatchAttemptsExhausted(f"{model} {month} has had {MAX_ATTEMPTS} attempts.")
    tags = [{"Key": "autoloop:model", "Value": model}, {"Key": "autoloop:model-package", "Value": package.arn}]
    if settings.stack_name:
        tags.append({"Key": "autoloop:stack", "Value": settings.stack_name})
    created = _ensure_model(sm_model, approved, settings.sagemaker_role_arn, tags, settings.security())
    prefix = input_prefix(model, month)
    plan = BatchPlan(
        action="score", reason=why, attempt=attempt, package=package, model_name=sm_model,
        files=[o["Key"][len(prefix):] for o in files], empty_files=empty,
        columns=list(cols.input), features=list(cols.features), output_columns=list(cols.output),
        input_filter=cols.input_filter, output_filter=cols.output_filter,
        max_malformed_fraction=config.batch.max_malformed_fraction, input_digest=digest,
        instance_type=config.instance_types.transform,
        monitoring=_monitoring(artifacts, model, package.training_run_id, settings.monitoring_backend),
        **{**base, "run_id": batch_run_id(model, month, data, attempt)},
    )
    logger.info("month planned", extra={"run_id": plan.run_id, "reason": why, "files": len(files),
                                        "model_name": sm_model, "model_created": created})
    metrics.add_metric(name="BatchMonthsPlanned", unit=MetricUnit.Count, value=1)
    return plan.model_dump()


# ----------------------------------------------------------------------------- jobs
def _job_spec(request: BatchLaunchRequest, settings: BatchLaunchSettings) -> dict[str, Any]:
    plan, step = request.state.batch, request.step
    if plan.action != "score":
        raise InvalidEvent(f"the batch plan says {plan.action!r}; no job to launch.")
    ctx = JobContext(
        run_id=plan.run_id, model=plan.model, artifacts_bucket=settings.artifacts_bucket,
        role_arn=settings.sagemaker_role_arn, image_uri=settings.framework_image_uri,
        instance_type=(plan.instance_type or settings.transform_instance_type) if step == "transform"
        else settings.processing_instance_type,
        max_runtime_seconds=settings.job_max_runtime_seconds, stack_name=settings.stack_name,
        security=settings.security(),
    )
    if step == "prepare":
        if not adapters.object_exists(settings.artifacts_bucket, code_key(PREPARE_SCRIPT)):
            raise MlCodeMissing(f"s3://{settings.artifacts_bucket}/{code_key(PREPARE_SCRIPT)} does not exist.")
        return prepare_request(ctx, plan, f"s3://{settings.artifacts_bucket}/{config_key(plan.model)}")
    prepared = request.state.job("prepare").outputs
    if step == "transform":
        summary_uri = prepared["summary"].rstrip("/") + "/summary.json"
        check_malformed(adapters.get_json(*adapters.split_s3_uri(summary_uri)), plan.max_malformed_fraction,
                        prepared["malformed"].rstrip("/") + "/malformed.csv")
        return transform_request(ctx, plan, prepared["clean"], settings.transform_max_payload_mb)
    if settings.monitoring_backend == "autoloop":
        return own_monitor_request(ctx, plan, prepared["monitor"])
    if not settings.model_monitor_image_uri:
        raise ConfigError("MODEL_MONITOR_IMAGE_URI is not set.")
    return monitor_request(ctx, plan, prepared["monitor"], settings.model_monitor_image_uri)


def launch_batch_job(payload: Any, settings: BatchLaunchSettings) -> dict[str, Any]:
    """Create the step's job and park the task token; its state-change event completes the task."""
    request = parse(BatchLaunchRequest, payload, "batch launch request")
    plan, step = request.state.batch, request.step
    logger.set_correlation_id(plan.run_id)
    kind = BATCH_STEP_KIND[step]
    return tasks.start_job_for_task(batch_job_name(plan.run_id, step), kind, _job_spec(request, settings),
                                    task_token=request.task_token, execution=request.execution, step=step,
                                    table=settings.task_token_table)


def reconcile_batch_job(payload: Any) -> dict[str, Any]:
    """After a timed-out wait: the job's result, or JobStillRunning / JobFailed."""
    request = parse(BatchReconcileRequest, payload, "batch reconcile request")
    logger.set_correlation_id(request.run_id)
    return tasks.reconcile_job(BATCH_STEP_KIND[request.step], batch_job_name(request.run_id, request.step))


# ----------------------------------------------------------------------------- publish
def _keys(bucket: str, prefix: str) -> list[str]:
    with aws_call(f"listing s3://{bucket}/{prefix}"):
        pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _data_quality(state: BatchState) -> dict[str, Any]:
    monitoring = state.batch.monitoring
    if not monitoring.enabled or "monitor" not in state.jobs:
        return {"status": f"not checked: {monitoring.skipped or 'no monitoring job ran'}", "report": None}
    uri = state.job("monitor").outputs["monitoring_output"].rstrip("/") + "/constraint_violations.json"
    bucket, key = adapters.split_s3_uri(uri)
    try:
        with aws_call(f"reading {uri}"):
            raw = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        violations = parse_violations(raw, uri)
    except (InvalidViolationsReport, AwsCallFailed) as exc:
        return {"status": f"report unreadable: {exc}", "report": uri}
    if not violations:
        return {"status": "no violations", "report": uri, "violations": []}
    lines = summary(violations).splitlines()
    return {"status": f"{len(violations)} violation(s), sent to the drift handler: {'; '.join(lines)}",
            "report": uri, "violations": lines}


def publish_batch(payload: Any, settings: BatchPublishSettings, now: datetime | None = None) -> dict[str, Any]:
    """Copy the attempt's results into the month's partition, then write ``_report.json`` last.

    The report is the month's "published" marker: it is removed first and written last, so a
    reader (and the next run's plan) never takes a half-copied month for a published one, and a
    crash in between is repaired by running the month again (the attempt is resumed).
    """
    state = parse(BatchState, payload, "batch state")
    plan = state.batch
    logger.set_correlation_id(plan.run_id)
    prepared = state.job("prepare").outputs
    summary_doc = adapters.get_json(*adapters.split_s3_uri(prepared["summary"].rstrip("/") + "/summary.json"))
    staged_bucket, staged_prefix = adapters.split_s3_uri(state.job("transform").outputs["output"].rstrip("/") + "/")
    staged = [k for k in _keys(staged_bucket, staged_prefix) if k.endswith(".out")]
    if not staged:
        raise BatchOutputMissing(f"transform job {state.job('transform').job_name} wrote nothing under "
                                 f"s3://{staged_bucket}/{staged_prefix}.")
    data, final = settings.data_bucket, output_prefix(plan.model, plan.month)
    s3 = client("s3")
    written: list[str] = []
    with aws_call(f"publishing to s3://{data}/{final}"):
        s3.delete_object(Bucket=data, Key=final + REPORT_FILE)
        for key in staged:
            target = final + key[len(staged_prefix):].removesuffix(".out")
            s3.copy({"Bucket": staged_bucket, "Key": key}, data, target)
            written.append(target)
        malformed_uri = None
        malformed_bucket, malformed_key = adapters.split_s3_uri(prepared["malformed"].rstrip("/") + "/malformed.csv")
        if int(summary_doc.get("rows_malformed", 0)) and adapters.object_exists(malformed_bucket, malformed_key):
            target = f"{final}{MALFORMED_FOLDER}malformed.csv"
            s3.copy({"Bucket": malformed_bucket, "Key": malformed_key}, data, target)
            malformed_uri = f"s3://{data}/{target}"
            written.append(target)
        # What an earlier (forced) scoring of the month left and this one did not write.
        for key in set(_keys(data, final)) - set(written) - {final + REPORT_FILE}:
            s3.delete_object(Bucket=data, Key=key)
        outputs = [k[len(final):] for k in written if not k.startswith(final + MALFORMED_FOLDER)]
        doc = report(plan, summary_doc, outputs, malformed_uri, _data_quality(state),
                     state.job("transform").job_name, now or datetime.now(UTC))
        s3.put_object(Bucket=data, Key=final + REPORT_FILE, Body=json.dumps(doc, indent=2).encode(),
                      ContentType="application/json")
    metrics.add_metric(name="BatchRowsScored", unit=MetricUnit.Count, value=doc["rows"]["scored"])
    metrics.add_metric(name="BatchRowsMalformed", unit=MetricUnit.Count, value=doc["rows"]["malformed"])
    logger.info("month published", extra={"rows": doc["rows"], "files": len(outputs)})
    tracking.batch_published(doc, f"s3://{data}/{final}{REPORT_FILE}")
    return {"report_uri": f"s3://{data}/{final}{REPORT_FILE}", "rows": doc["rows"]["scored"],
            "malformed": doc["rows"]["malformed"], "files": len(outputs), "message": message(doc)}
