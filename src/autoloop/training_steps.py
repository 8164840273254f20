"""The TrainingPipeline's Lambda steps: start a run, validate its input, launch and reconcile
its jobs (waited on through :mod:`autoloop.tasks`), the quality gate, and registration."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import adapters, registry, tasks, tracking
from autoloop.adapters import aws_call, client, error_code
from autoloop.config import (
    GateSettings,
    LaunchSettings,
    ModelImages,
    RegisterSettings,
    StartSettings,
    ValidateSettings,
    load_model_config,
)
from autoloop.errors import (
    AutoloopError,
    ConfigError,
    EvaluationMissing,
    InvalidEvent,
    JobFailed,
    MlCodeMissing,
    ObjectOutsideIncoming,
)
from autoloop.events import arn_origin, parse_s3_object_created
from autoloop.gate import decide, metric_from_evaluation, read_comparison, task_of_evaluation
from autoloop.jobs import (
    ENTRY_POINT,
    STEP_KIND,
    JobContext,
    JobKind,
    code_key,
    evaluate_request,
    model_code_key,
    preprocess_request,
    training_request,
)
from autoloop.monitoring import MONITOR_SCRIPT, baseline_request, calibrate_request, check_request, own_baseline_request
from autoloop.naming import (
    MAX_S3_URI,
    RETRAIN_PREFIX,
    execution_arn,
    job_name,
    model_from_key,
    run_id,
    run_prefix,
    training_source_model,
)
from autoloop.observability import logger, metrics
from autoloop.state import Dataset, DeployState, LaunchRequest, MonitoringPlan, PipelineState, ReconcileRequest, parse
from autoloop.validation import validate_csv

SCRIPTS = {"preprocess": "preprocess.py", "evaluate": "evaluate.py", "calibrate": "calibrate.py",
           "monitor": MONITOR_SCRIPT}


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
        uri = f"s3://{bucket}/{obj.key}"
        if len(uri.encode("utf-16-le")) // 2 > MAX_S3_URI:
            raise InvalidEvent(
                f"{uri[:120]}... is {len(uri)} characters long; SageMaker takes S3 URIs of at most {MAX_S3_URI}.",
                f"Upload the file again under a shorter key (at most {MAX_S3_URI - len(f's3://{bucket}/')} "
                "characters).",
            )
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
    status = adapters.start_execution_once(settings.state_machine_arn, rid, payload, "starting the TrainingPipeline")
    if status is not None:
        logger.info("duplicate event: the run exists", extra={"run_id": rid, "status": status})
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        return {"started": False, "duplicate": True, "run_id": rid, "status": status}
    logger.info("pipeline started", extra={"run_id": rid, "model": model})
    metrics.add_metric(name="PipelinesStarted", unit=MetricUnit.Count, value=1)
    return {"started": True, "run_id": rid, "execution_arn": execution_arn(settings.state_machine_arn, rid)}


# ----------------------------------------------------------------------------- validate
def validate_input(payload: Any, settings: ValidateSettings) -> dict[str, Any]:
    state = parse(PipelineState, payload, "pipeline input")
    logger.set_correlation_id(state.run_id)
    src = state.source
    _check_source_key(state)
    config = load_model_config(settings.artifacts_bucket, state.model)
    version = {"VersionId": src.version_id} if src.version_id else {}
    with aws_call(f"reading {src.uri}"):
        try:
            body = client("s3").get_object(Bucket=src.bucket, Key=src.key, **version)
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "NoSuchVersion", "404"}:
                raise InvalidEvent(f"{src.uri} (version {src.version_id}) no longer exists.") from exc
            raise
        summary = validate_csv(body["Body"].iter_chunks(1 << 20), int(body["ContentLength"]), config, src.uri)
    images = config.images(settings.framework_image_uri)  # before any job: a non-default one must be published
    input_uri = _freeze_validated_input(state, settings.artifacts_bucket, body.get("VersionId") or src.version_id)
    logger.info("input valid", extra={**summary.as_dict(), "input_uri": input_uri})
    metrics.add_metric(name="InputRows", unit=MetricUnit.Count, value=summary.rows)
    return {
        **summary.as_dict(),
        "input_uri": input_uri,
        "label": config.label,
        "task": config.task,
        "metric": config.metric,
        "threshold": config.threshold,
        "direction": config.direction,
        "min_improvement": config.min_improvement,
        "promote_ties": config.promote_ties,
        "hyperparameters": config.hyperparameters,
        "framework": images.framework,
        "training_image": images.training,
        "inference_image": images.inference,
        "bundle_sha256": config.published.bundle_sha256 if config.published else None,
        "instance_types": {step: kind for step, kind in config.instance_types.chosen().items()
                           if step in ("preprocess", "train", "evaluate")},
    }


def _check_source_key(state: PipelineState) -> None:
    """A run trains on ``incoming/<model>/``; a retrain the drift handler started (on drift or a
    quality drop, not by an S3 event) also on the dataset it built under ``retrain/<model>/``."""
    drift = state.trigger.type in {"drift", "quality"}
    model = training_source_model(state.source.key, drift=drift)
    if model == state.model:
        return
    where = state.source.uri
    if model is None and not drift and training_source_model(state.source.key, drift=True):
        raise ObjectOutsideIncoming(
            f"{where} is under {RETRAIN_PREFIX}, which only retrains on drift or a quality drop read "
            f"(this run's trigger is {state.trigger.type!r}).",
        )
    if model is None:
        raise ObjectOutsideIncoming(
            f"{where} is not under incoming/{state.model}/"
            + (f" or {RETRAIN_PREFIX}{state.model}/." if drift else "."),
        )
    raise ObjectOutsideIncoming(f"{where} is training data of model {model!r}, not of this run's model "
                                f"{state.model!r}.")


def _freeze_validated_input(state: PipelineState, artifacts_bucket: str, version_id: str | None) -> str:
    """Copy the version just validated under the run's prefix; the preprocess job reads that copy.

    A processing input names an S3 prefix, not an object version: reading the upload's key
    would get whatever version is newest when the job starts (a later upload of the same key)
    and every key that starts with it (``data.csv.bak``). The copy, in a folder of its own, is
    exactly the bytes that were validated.
    """
    src = state.source
    name = src.key.rsplit("/", 1)[-1]
    if not name.lower().endswith(".csv"):
        name += ".csv"  # the preprocess script reads *.csv
    folder = f"{run_prefix(state.model, state.run_id)}/input/"
    source = {"Bucket": src.bucket, "Key": src.key, **({"VersionId": version_id} if version_id else {})}
    with aws_call(f"copying the validated {src.uri} to s3://{artifacts_bucket}/{folder}"):
        client("s3").copy_object(Bucket=artifacts_bucket, Key=folder + name, CopySource=source)
    return f"s3://{artifacts_bucket}/{folder}"


# ----------------------------------------------------------------------------- jobs
def _job_spec(step: str, raw_state: dict[str, Any], settings: LaunchSettings) -> tuple[str, JobKind, dict[str, Any]]:
    """(run id, kind, request) of a pipeline step's job."""
    kind = STEP_KIND[step]
    if step == "monitor":
        monitoring = parse(MonitoringPlan, raw_state.get("plan"), "monitoring plan")
        run, model = monitoring.run_id, monitoring.model
    elif step in {"baseline", "calibrate"}:
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
    script = MONITOR_SCRIPT if step == "baseline" and settings.monitoring_backend == "autoloop" else SCRIPTS.get(step)
    key = model_code_key(model) if step == "train" else code_key(script) if script else None
    if key and not adapters.object_exists(settings.artifacts_bucket, key):
        raise MlCodeMissing(f"s3://{settings.artifacts_bucket}/{key} does not exist.")
    if step == "monitor":
        return run, kind, check_request(ctx, monitoring.check_inputs(), settings.monitoring())
    baseline_uri = ctx.uri("preprocess", "baseline")
    if step == "baseline" and settings.monitoring_backend == "autoloop":
        return run, kind, own_baseline_request(ctx, baseline_uri)
    if step == "baseline":
        if not settings.model_monitor_image_uri:
            raise ConfigError("MODEL_MONITOR_IMAGE_URI is not set.")
        return run, kind, baseline_request(ctx, baseline_uri, settings.model_monitor_image_uri)
    if step == "calibrate":
        constraints = deploy.job("baseline").outputs["monitoring_output"].rstrip("/") + "/constraints.json"
        return run, kind, calibrate_request(ctx, baseline_uri, constraints, settings.monitoring())
    dataset = state.need_dataset()
    ctx = replace(ctx, instance_type=dataset.instance_types.get(step, ctx.instance_type))
    if step == "preprocess":
        if not dataset.input_uri:
            raise InvalidEvent("the dataset names no validated input (input_uri); run ValidateInput first.")
        return run, kind, preprocess_request(ctx, dataset.input_uri)
    images = dataset_images(dataset, settings.framework_image_uri)
    if step == "train":
        outputs = state.job("preprocess").outputs
        return run, kind, training_request(replace(ctx, image_uri=images.training), outputs["train"],
                                           outputs["validation"], dataset.hyperparameters, dataset.label, dataset.task)
    artifacts = state.job("train").model_artifacts
    if not artifacts:
        raise JobFailed(f"training job {state.job('train').job_name} reported no model artifacts.")
    # The champion of this moment is scored beside the challenger on the same test rows; its
    # ARN goes to comparison.json, so the gate knows which champion was compared.
    group = registry.package_group_name(settings.package_group_prefix(), model)
    champion = registry.comparable_champion(group, settings.artifacts_bucket)
    return run, kind, evaluate_request(
        replace(ctx, image_uri=images.evaluate_image(settings.framework_image_uri)), artifacts,
        state.job("preprocess").outputs["test"], dataset.label,
        task=dataset.task, metric=dataset.metric, direction=dataset.direction,
        champion_model=champion.model_data_url if champion else None,
        champion_arn=champion.arn if champion else None,
    )


def dataset_images(dataset: Dataset, stack_image: str) -> ModelImages:
    """The run's images, fixed at validation (a state from before per-model images: the stack's)."""
    return ModelImages(dataset.framework, dataset.training_image or stack_image, dataset.inference_image or stack_image)


def _champion_of(spec: dict[str, Any]) -> str | None:
    """The champion ARN an evaluate request passes to the job (None: no champion)."""
    args = list(spec.get("AppSpecification", {}).get("ContainerArguments") or [])
    return args[args.index("--champion-arn") + 1] if "--champion-arn" in args else None


def launch_job(payload: Any, settings: LaunchSettings) -> dict[str, Any]:
    request = parse(LaunchRequest, payload, "launch request")
    run, kind, spec = _job_spec(request.step, request.state, settings)
    logger.set_correlation_id(run)
    result = tasks.start_job_for_task(job_name(run, request.step), kind, spec, task_token=request.task_token,
                                      execution=request.execution, step=request.step,
                                      table=settings.task_token_table)
    if request.step == "evaluate":
        champion = _champion_of(spec)
        logger.info("evaluate job compares with the champion", extra={"champion_arn": champion})
        result = {**result, "champion_arn": champion}
    return result


def reconcile_job(payload: Any) -> dict[str, Any]:
    """After a timed-out wait: the job's result, or JobStillRunning / JobFailed."""
    request = parse(ReconcileRequest, payload, "reconcile request")
    logger.set_correlation_id(request.run_id)
    return tasks.reconcile_job(STEP_KIND[request.step], job_name(request.run_id, request.step))


# ----------------------------------------------------------------------------- gate / register
def quality_gate(payload: Any, settings: GateSettings) -> dict[str, Any]:
    """The verdict on the challenger: its metric against the threshold, and against the champion's
    value on the same held-out rows (champion_evaluation.json of the same evaluate job)."""
    state = parse(PipelineState, payload, "pipeline state")
    logger.set_correlation_id(state.run_id)
    dataset = state.need_dataset()
    folder = state.job("evaluate").outputs.get("evaluation", "").rstrip("/")
    evaluation_uri = f"{folder}/evaluation.json"
    bucket, key = adapters.split_s3_uri(evaluation_uri)
    evaluation = adapters.get_json(bucket, key)
    metric = metric_from_evaluation(evaluation, dataset.metric, evaluation_uri)
    comparison_uri = f"{folder}/comparison.json"
    holdout_rows, champion_arn, compared_value = read_comparison(
        adapters.get_json(*adapters.split_s3_uri(comparison_uri)), comparison_uri, dataset.metric, metric)
    champion_metric = None
    if champion_arn is not None:
        champion_uri = f"{folder}/champion_evaluation.json"
        champion_metric = metric_from_evaluation(adapters.get_json(*adapters.split_s3_uri(champion_uri)),
                                                 dataset.metric, champion_uri)
        if compared_value is None or not math.isclose(champion_metric, compared_value, rel_tol=1e-9, abs_tol=1e-12):
            raise EvaluationMissing(f"{champion_uri} ({dataset.metric} {champion_metric!r}) disagrees with "
                                    f"{comparison_uri} ({compared_value!r}).")
    threshold = dataset.threshold if dataset.threshold is not None else settings.metric_threshold
    group = registry.package_group_name(settings.model_package_group_prefix, state.model)
    current = registry.champion(group)
    result = decide(
        task=task_of_evaluation(evaluation, evaluation_uri), metric_name=dataset.metric, metric=metric,
        threshold=threshold, champion_metric=champion_metric, holdout_rows=holdout_rows,
        direction=dataset.direction, min_improvement=dataset.min_improvement, promote_ties=dataset.promote_ties,
        champion_arn=champion_arn, evaluation_uri=evaluation_uri,
        current_champion_arn=current.arn if current else None, check_current=True,
    )
    logger.info("gate verdict", extra=result)
    metrics.add_metric(name="ChallengerMetric", unit=MetricUnit.NoUnit, value=metric)
    tracking.gate(state, result, folder)
    return result


def register_model(payload: Any, settings: RegisterSettings) -> dict[str, Any]:
    state = parse(PipelineState, payload, "pipeline state")
    logger.set_correlation_id(state.run_id)
    if state.gate is None:
        raise InvalidEvent("the pipeline state has no gate result")
    if state.gate.get("verdict") != "Promote":
        raise InvalidEvent(f"the gate's verdict is {state.gate.get('verdict')!r}, not 'Promote': nothing to register")
    artifacts = state.job("train").model_artifacts
    if not artifacts:
        raise JobFailed("the training job reported no model artifacts")
    group = registry.package_group_name(settings.model_package_group_prefix, state.model)
    dataset = state.need_dataset()
    images = dataset_images(dataset, settings.framework_image_uri)
    lineage = registry.Lineage(
        task=dataset.task, framework=images.framework, training_image=images.training, entry_point=ENTRY_POINT,
        hyperparameters=dataset.hyperparameters, training_job=state.job("train").job_name,
        source_version=state.source.version_id or state.source.etag, bundle_sha256=dataset.bundle_sha256,
    )
    request = registry.model_package_request(
        group=group, run_id=state.run_id, image_uri=images.inference, lineage=lineage,
        model_artifacts=artifacts, evaluation_uri=state.gate["evaluation_uri"],
        metric_name=state.gate["metric_name"], metric=state.gate["metric"],
        approval_status=settings.approval_status, source_uri=state.source.uri,
        trigger=state.trigger.model_dump(), direction=state.gate.get("direction"),
        champion_arn=state.gate.get("champion_arn"), champion_metric=state.gate.get("champion_metric"),
        holdout_rows=state.gate.get("holdout_rows"),
    )
    # The model's first registration creates its group (the stack's prefix is the stack's name).
    group_request = registry.package_group_request(group, settings.model_package_group_prefix, state.model)
    arn = registry.register(request, client_token=state.run_id,  # a retry returns the same package
                            group_request=group_request)
    logger.info("model registered", extra={"arn": arn, "approval_status": settings.approval_status})
    metrics.add_metric(name="ModelsRegistered", unit=MetricUnit.Count, value=1)
    tracking.registered(state.model, state.run_id, arn, settings.approval_status)
    return {"arn": arn, "group": group, "approval_status": settings.approval_status}
