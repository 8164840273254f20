"""One function per Lambda: parse, decide with the pure modules, act through adapters."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import adapters
from autoloop.adapters import aws_call, client, error_code
from autoloop.config import (
    CallbackSettings,
    GateSettings,
    LaunchSettings,
    ModelConfig,
    RegisterSettings,
    StartSettings,
    ValidateSettings,
    parse_model_config,
)
from autoloop.errors import (
    AutoloopError,
    AwsThrottled,
    ChampionMetricMissing,
    ConfigError,
    InvalidEvent,
    JobFailed,
    JobNotFound,
    JobStillRunning,
    MlCodeMissing,
    ObjectOutsideIncoming,
    TransientAwsError,
    UnknownModel,
)
from autoloop.events import (
    ENDPOINT_STATE_CHANGE,
    TERMINAL_JOB_STATUSES,
    arn_origin,
    parse_job_state_change,
    parse_s3_object_created,
)
from autoloop.gate import gate_inputs, metric_from_evaluation, metric_from_package
from autoloop.jobs import (
    SOURCEDIR,
    STEP_KIND,
    JobContext,
    JobKind,
    code_key,
    config_key,
    evaluate_request,
    job_result,
    preprocess_request,
    training_request,
)
from autoloop.monitoring import baseline_request, calibrate_request
from autoloop.naming import execution_arn, job_name, model_from_key, parse_run_id, run_id
from autoloop.observability import logger, metrics
from autoloop.registry import model_package_request, package_group_name
from autoloop.state import DeployState, LaunchRequest, PipelineState, ReconcileRequest, parse
from autoloop.validation import validate_csv

SCRIPTS = {"preprocess": "preprocess.py", "train": SOURCEDIR, "evaluate": "evaluate.py", "calibrate": "calibrate.py"}


# ----------------------------------------------------------------------------- start
def _reject(settings: StartSettings, reason: AutoloopError, event: Any) -> dict[str, Any]:
    """Nothing is started for a bad event; say why to the operators and in the result."""
    logger.warning("event rejected", extra={"error": type(reason).__name__, "reason": str(reason)})
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
    detail = event.get("detail") if isinstance(event, dict) else None
    with aws_call("notifying the rejection"):
        client("sns").publish(
            TopicArn=settings.notify_topic_arn,
            Subject="Autoloop: upload rejected",
            Message=json.dumps(
                {"error": type(reason).__name__, "reason": str(reason), "detail": detail}, default=str
            )[:200_000],
        )
    return {"started": False, "error": type(reason).__name__, "reason": str(reason)}


def start_pipeline(event: Any, settings: StartSettings) -> dict[str, Any]:
    """S3 Object Created -> one execution per object version, named by the object's identity."""
    try:
        account, region = arn_origin(settings.state_machine_arn)
        created = parse_s3_object_created(event, account=account, region=region)
        bucket, obj = created.detail.bucket.name, created.detail.object
        if bucket != settings.data_bucket:
            raise InvalidEvent(f"the event is for bucket {bucket!r}, not the data bucket {settings.data_bucket!r}.")
        model = model_from_key(obj.key)
        if model is None:
            raise ObjectOutsideIncoming(f"s3://{bucket}/{obj.key} is not under incoming/<model>/.")
        version = obj.version_id or obj.etag
        if not version:
            raise InvalidEvent("the event has neither a version-id nor an etag for the object.")
    except (InvalidEvent, ObjectOutsideIncoming) as exc:
        return _reject(settings, exc, event)

    # One run per object version. A duplicate delivery, even of an object whose run failed,
    # starts nothing: a retry is a new upload, which the versioned bucket makes a new version.
    rid = run_id(model, bucket, obj.key, version)
    source = {"bucket": bucket, "key": obj.key, "version_id": obj.version_id, "etag": obj.etag, "size": obj.size}
    payload = json.dumps({"run_id": rid, "model": model, "source": source, "trigger": {"type": "s3"}})
    sfn = client("stepfunctions")
    with aws_call("starting the TrainingPipeline"):
        try:
            response = sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=rid, input=payload)
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            status = sfn.describe_execution(executionArn=execution_arn(settings.state_machine_arn, rid))["status"]
            logger.info("duplicate event: the run exists", extra={"run_id": rid, "status": status})
            metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
            return {"started": False, "duplicate": True, "run_id": rid, "status": status}
    logger.info("pipeline started", extra={"run_id": rid, "model": model})
    metrics.add_metric(name="PipelinesStarted", unit=MetricUnit.Count, value=1)
    return {"started": True, "run_id": rid, "execution_arn": response["executionArn"]}


# ----------------------------------------------------------------------------- validate
def load_model_config(artifacts_bucket: str, model: str) -> ModelConfig:
    key = config_key(model)
    try:
        raw = client("s3").get_object(Bucket=artifacts_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            raise UnknownModel(f"no configuration for model {model!r} at s3://{artifacts_bucket}/{key}.") from exc
        with aws_call(f"reading s3://{artifacts_bucket}/{key}"):
            raise
    return parse_model_config(raw, f"s3://{artifacts_bucket}/{key}")


def validate_input(payload: Any, settings: ValidateSettings) -> dict[str, Any]:
    state = parse(PipelineState, payload, "pipeline input")
    logger.set_correlation_id(state.run_id)
    config = load_model_config(settings.artifacts_bucket, state.model)
    src = state.source
    version = {"VersionId": src.version_id} if src.version_id else {}
    with aws_call(f"reading {src.uri}"):
        try:
            body = client("s3").get_object(Bucket=src.bucket, Key=src.key, **version)
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "NoSuchVersion", "404"}:
                raise InvalidEvent(f"{src.uri} (version {src.version_id}) no longer exists.") from exc
            raise
        summary = validate_csv(body["Body"].iter_chunks(1 << 20), int(body["ContentLength"]), config, src.uri)
    logger.info("input valid", extra=summary.as_dict())
    metrics.add_metric(name="InputRows", unit=MetricUnit.Count, value=summary.rows)
    return {
        **summary.as_dict(),
        "label": config.label,
        "metric": config.metric,
        "threshold": config.threshold,
        "hyperparameters": config.hyperparameters,
    }


# ----------------------------------------------------------------------------- jobs
def _describe(kind: JobKind, name: str) -> dict[str, Any]:
    sagemaker = client("sagemaker")
    with aws_call(f"describing {kind} job {name}"):
        try:
            if kind == "processing":
                return dict(sagemaker.describe_processing_job(ProcessingJobName=name))
            if kind == "transform":
                return dict(sagemaker.describe_transform_job(TransformJobName=name))
            return dict(sagemaker.describe_training_job(TrainingJobName=name))
        except ClientError as exc:
            if error_code(exc) in {"ValidationException", "ResourceNotFound"}:
                raise JobNotFound(f"{kind} job {name} does not exist.") from exc
            raise


def _failure_cause(result: dict[str, Any]) -> str:
    return f"{result['job_name']} {result['status']}: {result['failure_reason'] or 'no reason given'}"


def _complete_task(token: str, kind: JobKind, description: dict[str, Any]) -> dict[str, Any]:
    """SendTaskSuccess with the job result, or SendTaskFailure with its FailureReason."""
    result = job_result(kind, description)
    metrics.add_metric(name="JobsSucceeded" if result["status"] == "Completed" else "JobsFailed",
                       unit=MetricUnit.Count, value=1)
    sfn = client("stepfunctions")
    try:
        with aws_call(f"completing the task of {result['job_name']}"):
            try:
                if result["status"] == "Completed":
                    sfn.send_task_success(taskToken=token, output=json.dumps(result, default=str))
                else:
                    sfn.send_task_failure(
                        taskToken=token,
                        error="JobFailed",
                        cause=_failure_cause(result)[:32768],
                    )
            except ClientError as exc:
                if error_code(exc) in {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}:
                    logger.info("task already closed", extra={"job_name": result["job_name"], "code": error_code(exc)})
                    return {**result, "task": "already-closed"}
                raise
    except (AwsThrottled, TransientAwsError):
        raise
    return {**result, "task": "completed"}


def _job_spec(step: str, raw_state: dict[str, Any], settings: LaunchSettings) -> tuple[str, JobKind, dict[str, Any]]:
    """(run id, kind, request) of a pipeline step's job."""
    kind = STEP_KIND[step]
    if step in {"baseline", "calibrate"}:
        deploy = parse(DeployState, raw_state, "deployment state")
        run, model = deploy.run_id, deploy.plan.model
    else:
        state = parse(PipelineState, raw_state, "pipeline state")
        run, model = state.run_id, state.model
    ctx = JobContext(
        run_id=run, model=model, artifacts_bucket=settings.artifacts_bucket,
        role_arn=settings.sagemaker_role_arn, image_uri=settings.framework_image_uri,
        instance_type=settings.training_instance_type if kind == "training" else settings.processing_instance_type,
        max_runtime_seconds=settings.job_max_runtime_seconds, stack_name=settings.stack_name,
        security=settings.security(), spot=settings.spot(),
    )
    script = SCRIPTS.get(step)
    if script and not adapters.object_exists(settings.artifacts_bucket, code_key(script)):
        raise MlCodeMissing(f"s3://{settings.artifacts_bucket}/{code_key(script)} does not exist.")
    baseline_uri = ctx.uri("preprocess", "baseline")
    if step == "baseline":
        if not settings.model_monitor_image_uri:
            raise ConfigError("MODEL_MONITOR_IMAGE_URI is not set.")
        return run, kind, baseline_request(ctx, baseline_uri, settings.model_monitor_image_uri)
    if step == "calibrate":
        constraints = deploy.job("baseline").outputs["monitoring_output"].rstrip("/") + "/constraints.json"
        return run, kind, calibrate_request(ctx, baseline_uri, constraints, settings.monitoring())
    dataset = state.need_dataset()
    if step == "preprocess":
        return run, kind, preprocess_request(ctx, state.source.uri)
    if step == "train":
        outputs = state.job("preprocess").outputs
        return run, kind, training_request(ctx, outputs["train"], outputs["validation"],
                                           dataset.hyperparameters, dataset.label)
    artifacts = state.job("train").model_artifacts
    if not artifacts:
        raise JobFailed(f"training job {state.job('train').job_name} reported no model artifacts.")
    return run, kind, evaluate_request(ctx, artifacts, state.job("preprocess").outputs["test"], dataset.label)


CREATE_JOB = {"processing": "create_processing_job", "training": "create_training_job",
              "transform": "create_transform_job"}


def start_job_for_task(name: str, kind: JobKind, spec: dict[str, Any], *, task_token: str, execution: str,
                       step: str, table: str) -> dict[str, Any]:
    """Park the task token under the job's name, then create the job.

    A job that exists already (a retried launch, a resumed month, a redeployed package) is
    not created again. If it has ended, its event may be long gone, so the task is
    completed now; otherwise its event will complete it.
    """
    store = adapters.TokenStore(table)
    store.put(name, task_token, execution, step)
    with aws_call(f"creating {kind} job {name}"):
        try:
            getattr(client("sagemaker"), CREATE_JOB[kind])(**spec)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUse":
                raise
            description = _describe(kind, name)
            status = job_result(kind, description)["status"]
            logger.info("job exists already", extra={"job_name": name, "status": status})
            if status in TERMINAL_JOB_STATUSES:
                store.pop(name)
                _complete_task(task_token, kind, description)
            return {"job_name": name, "launched": False, "status": status}
    logger.info("job launched", extra={"job_name": name, "kind": kind})
    metrics.add_metric(name="JobsLaunched", unit=MetricUnit.Count, value=1)
    return {"job_name": name, "launched": True}


def launch_job(payload: Any, settings: LaunchSettings) -> dict[str, Any]:
    request = parse(LaunchRequest, payload, "launch request")
    run, kind, spec = _job_spec(request.step, request.state, settings)
    logger.set_correlation_id(run)
    return start_job_for_task(job_name(run, request.step), kind, spec, task_token=request.task_token,
                              execution=request.execution, step=request.step, table=settings.task_token_table)


def handle_sagemaker_event(event: Any, settings: CallbackSettings) -> dict[str, Any]:
    """Jobs and endpoints complete their waiting tasks through the same token table."""
    if isinstance(event, dict) and event.get("detail-type") == ENDPOINT_STATE_CHANGE:
        from autoloop.deploy_steps import handle_endpoint_event

        return handle_endpoint_event(event, settings.task_token_table)
    return handle_job_event(event, settings)


def handle_job_event(event: Any, settings: CallbackSettings) -> dict[str, Any]:
    change = parse_job_state_change(event)
    if change.status not in TERMINAL_JOB_STATUSES:
        metrics.add_metric(name="CallbacksIgnored", unit=MetricUnit.Count, value=1)
        return {"job_name": change.job_name, "ignored": f"status {change.status} is not terminal"}
    store = adapters.TokenStore(settings.task_token_table)
    entry = store.pop(change.job_name)
    if entry is None:
        logger.info("no waiting task", extra={"job_name": change.job_name})
        metrics.add_metric(name="CallbacksIgnored", unit=MetricUnit.Count, value=1)
        return {"job_name": change.job_name, "ignored": "no task is waiting (duplicate event, or not an Autoloop job)"}
    try:
        parse_run_id(change.job_name.rsplit("-", 1)[0])
        logger.set_correlation_id(change.job_name.rsplit("-", 1)[0])
    except ValueError:
        pass
    try:
        description = _describe(change.kind, change.job_name)
        return _complete_task(entry["token"], change.kind, description)
    except (AwsThrottled, TransientAwsError):
        # Put the claim back so the retried delivery of this event can complete the task.
        store.put(change.job_name, entry["token"], entry.get("execution_arn", ""), entry.get("step", ""))
        raise


def reconcile_job(payload: Any) -> dict[str, Any]:
    request = parse(ReconcileRequest, payload, "reconcile request")
    logger.set_correlation_id(request.run_id)
    kind = STEP_KIND[request.step]
    name = job_name(request.run_id, request.step)
    result = job_result(kind, _describe(kind, name))
    metrics.add_metric(name="JobsReconciled", unit=MetricUnit.Count, value=1)
    if result["status"] in {"InProgress", "Stopping"}:
        raise JobStillRunning(f"{kind} job {name} is still {result['status']}.")
    if result["status"] != "Completed":
        raise JobFailed(_failure_cause(result))
    return result


# ----------------------------------------------------------------------------- gate / register
def _unknown_group(group: str, exc: ClientError) -> UnknownModel | None:
    if "does not exist" not in str(exc):
        return None
    return UnknownModel(f"model package group {group} does not exist.",
                        "Add an AWS::SageMaker::ModelPackageGroup for the model to template.yaml.")


def latest_approved_package(group: str) -> dict[str, Any] | None:
    """The Describe response of the group's most recent Approved package (the champion)."""
    sagemaker = client("sagemaker")
    with aws_call(f"finding the latest Approved package of {group}"):
        try:
            listed = sagemaker.list_model_packages(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
            )["ModelPackageSummaryList"]
        except ClientError as exc:
            unknown = _unknown_group(group, exc)
            if unknown:
                raise unknown from exc
            raise
        if not listed:
            return None
        return dict(sagemaker.describe_model_package(ModelPackageName=listed[0]["ModelPackageArn"]))


def _champion(group: str, metric: str, artifacts_bucket: str) -> tuple[str | None, float | None]:
    description = latest_approved_package(group)
    if description is None:
        return None, None
    arn = str(description["ModelPackageArn"])
    value = metric_from_package(description, metric)
    if value is None:
        uri = (description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri"))
        bucket, key = adapters.split_s3_uri(uri) if uri else ("", "")
        if bucket != artifacts_bucket:
            raise ChampionMetricMissing(f"champion {arn} has no {metric!r} metric Autoloop can read.")
        value = metric_from_evaluation(adapters.get_json(bucket, key), metric, uri)
    return arn, value


def quality_gate(payload: Any, settings: GateSettings) -> dict[str, Any]:
    state = parse(PipelineState, payload, "pipeline state")
    logger.set_correlation_id(state.run_id)
    dataset = state.need_dataset()
    evaluation_uri = state.job("evaluate").outputs.get("evaluation", "").rstrip("/") + "/evaluation.json"
    bucket, key = adapters.split_s3_uri(evaluation_uri)
    metric = metric_from_evaluation(adapters.get_json(bucket, key), dataset.metric, evaluation_uri)
    threshold = dataset.threshold if dataset.threshold is not None else settings.metric_threshold
    group = package_group_name(settings.model_package_group_prefix, state.model)
    champion_arn, champion_metric = _champion(group, dataset.metric, settings.artifacts_bucket)
    result = gate_inputs(dataset.metric, metric, threshold, evaluation_uri, champion_arn, champion_metric)
    logger.info("gate inputs", extra=result)
    metrics.add_metric(name="ChallengerMetric", unit=MetricUnit.NoUnit, value=metric)
    return result


def register_model(payload: Any, settings: RegisterSettings) -> dict[str, Any]:
    state = parse(PipelineState, payload, "pipeline state")
    logger.set_correlation_id(state.run_id)
    if state.gate is None:
        raise InvalidEvent("the pipeline state has no gate result")
    artifacts = state.job("train").model_artifacts
    if not artifacts:
        raise JobFailed("the training job reported no model artifacts")
    group = package_group_name(settings.model_package_group_prefix, state.model)
    request = model_package_request(
        group=group, run_id=state.run_id, image_uri=settings.framework_image_uri,
        model_artifacts=artifacts, evaluation_uri=state.gate["evaluation_uri"],
        metric_name=state.gate["metric_name"], metric=state.gate["metric"],
        approval_status=settings.approval_status, source_uri=state.source.uri,
        trigger=state.trigger.model_dump(),
    )
    with aws_call(f"registering the model in {group}"):
        try:
            # ClientToken makes a retried registration return the same package.
            response = client("sagemaker").create_model_package(ClientToken=state.run_id, **request)
        except ClientError as exc:
            unknown = _unknown_group(group, exc)
            if unknown:
                raise unknown from exc
            raise
    arn = response["ModelPackageArn"]
    logger.info("model registered", extra={"arn": arn, "approval_status": settings.approval_status})
    metrics.add_metric(name="ModelsRegistered", unit=MetricUnit.Count, value=1)
    return {"arn": arn, "group": group, "approval_status": settings.approval_status}
