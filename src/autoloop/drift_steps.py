"""The drift handler: a Model Monitor report with violations -> notify -> maybe retrain.

Two triggers reach it: a monitoring execution's processing job completing (the report in
S3 is the source of truth), and a CloudWatch alarm on a ``feature_baseline_drift_*``
metric (the handler then reads the schedule's latest report). Either way the same
policy decides, so a flapping alarm and a report for the same drift give one retrain.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from autoloop import adapters, retrain_data, tracking
from autoloop.adapters import aws_call, client, error_code
from autoloop.config import DriftSettings, load_model_config
from autoloop.drift import (
    REPORT_FILE,
    Decision,
    DriftPolicy,
    FreshLabels,
    Violation,
    alarm_drift,
    decide,
    is_monitoring,
    monitoring_run,
    parse_violations,
    quality_violation,
    summary,
)
from autoloop.errors import AutoloopError, InvalidEvent, InvalidViolationsReport
from autoloop.events import AlarmStateChange, ProcessingJobDetail, ProcessingJobStateChange, parse_one_of
from autoloop.monitoring import MONITORING_REPORT
from autoloop.naming import INCOMING_PREFIX, parse_time, retrain_key, run_id
from autoloop.observability import logger, metrics
from autoloop.state import MonitoringPlan, MonitoringState


def _latest_report(schedule: str) -> str:
    """The report of the schedule's most recent monitoring execution."""
    sagemaker = client("sagemaker")
    with aws_call(f"finding the latest monitoring execution of {schedule}"):
        runs = sagemaker.list_monitoring_executions(
            MonitoringScheduleName=schedule, SortBy="ScheduledTime", SortOrder="Descending", MaxResults=1,
        )["MonitoringExecutionSummaries"]
        if not runs or not runs[0].get("ProcessingJobArn"):
            raise InvalidViolationsReport(f"schedule {schedule} has no monitoring execution with a report yet.")
        job = sagemaker.describe_processing_job(ProcessingJobName=runs[0]["ProcessingJobArn"].rsplit("/", 1)[-1])
    outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
    if not outputs:
        raise InvalidViolationsReport(f"monitoring job {job['ProcessingJobName']} has no output.")
    return str(outputs[0]["S3Output"]["S3Uri"]).rstrip("/") + "/constraint_violations.json"


def _looked_up(change: ProcessingJobStateChange, event: Any) -> ProcessingJobStateChange:
    """The event with the job's DescribeProcessingJob response over its detail.

    The rule matches every completed processing job on source, detail-type and status
    alone: AWS's sample of the event has no ``Environment``, and the endpoint, schedule and
    report location of a monitoring execution are read from it. What the event carries and
    Describe does not is kept."""
    name = change.detail.job_name
    with aws_call(f"describing processing job {name}"):
        described = client("sagemaker").describe_processing_job(ProcessingJobName=name)
    described.pop("ResponseMetadata", None)
    detail = ProcessingJobDetail.model_validate({**event["detail"], **described})
    return change.model_copy(update={"detail": detail})


def _read_report(uri: str) -> bytes:
    bucket, key = adapters.split_s3_uri(uri)
    try:
        return bytes(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            raise InvalidViolationsReport(f"the violations report {uri} does not exist.") from exc
        with aws_call(f"reading {uri}"):
            raise


def _model_of(endpoint: str | None, stack: str) -> str:
    if not endpoint or not endpoint.startswith(f"{stack}-"):
        raise InvalidEvent(f"the drift event is for endpoint {endpoint!r}, which this stack ({stack}) does not serve.",
                           "Only endpoints named <stack>-<model> are monitored by this stack.")
    return endpoint[len(stack) + 1 :]


def _last_retrain(table: str, model: str) -> datetime | None:
    with aws_call("reading the drift state"):
        item = client("dynamodb").get_item(TableName=table, Key={"model": {"S": model}}).get("Item")
    return datetime.fromtimestamp(int(item["last_retrain_at"]["N"]), UTC) if item else None


def _claim_retrain(table: str, model: str, now: datetime, cooldown: int) -> bool:
    """Record the retrain, unless a concurrent handler has just done so (one retrain per cooldown)."""
    with aws_call("recording the retrain"):
        try:
            client("dynamodb").put_item(
                TableName=table,
                Item={"model": {"S": model}, "last_retrain_at": {"N": str(int(now.timestamp()))}},
                ConditionExpression="attribute_not_exists(model) OR last_retrain_at < :since",
                ExpressionAttributeValues={":since": {"N": str(int(now.timestamp()) - cooldown)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
    return True


def _retrain_in_flight(state_machine_arn: str, model: str) -> bool:
    with aws_call("listing running TrainingPipeline executions"):
        pages = client("stepfunctions").get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn, statusFilter="RUNNING")
        return any(e["name"].startswith(f"{model}-") for page in pages for e in page["executions"])


def _latest_training_object(bucket: str, model: str) -> dict[str, Any] | None:
    latest: dict[str, Any] | None = None
    with aws_call(f"listing s3://{bucket}/{INCOMING_PREFIX}{model}/"):
        for page in client("s3").get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{INCOMING_PREFIX}{model}/"):
            for obj in page.get("Contents", []):
                if latest is None or obj["LastModified"] > latest["LastModified"]:
                    latest = obj
        if latest is not None:
            head = client("s3").head_object(Bucket=bucket, Key=latest["Key"])
            latest = {**latest, "VersionId": head.get("VersionId"), "ETag": head["ETag"].strip('"')}
    return latest


def _decide(settings: DriftSettings, model: str, signals: list[Violation], now: datetime,
            labels: FreshLabels | None = None) -> Decision:
    """The policy's verdict with the retrain history; a yes is claimed in the drift state first,
    so concurrent handlers for the same drift start one retrain."""
    policy = DriftPolicy(min_severity=settings.drift_min_severity, cooldown_seconds=settings.drift_cooldown_seconds)
    decision = decide(
        signals, policy, now=now, last_retrain_at=_last_retrain(settings.drift_state_table, model),
        retrain_in_flight=_retrain_in_flight(settings.state_machine_arn, model), labels=labels,
    )
    if decision.retrain and not _claim_retrain(settings.drift_state_table, model, now, policy.cooldown_seconds):
        decision = decide(signals, policy, now=now, last_retrain_at=now, retrain_in_flight=False, labels=labels)
    return decision


def handle_drift(event: Any, settings: DriftSettings, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if isinstance(event, dict) and "monitoring" in event:
        return judge_monitoring_run(event["monitoring"], settings, now)
    change = parse_one_of(event, (AlarmStateChange, ProcessingJobStateChange), "the drift handler")
    schedule: str | None
    if isinstance(change, AlarmStateChange):
        alarm = alarm_drift(change)
        if not alarm.is_alarm:
            return {"ignored": f"alarm {alarm.alarm_name} is {alarm.state}"}
        endpoint, schedule = alarm.endpoint, alarm.schedule
        report_uri = _latest_report(schedule)
    else:
        assert isinstance(change, ProcessingJobStateChange)  # parse_one_of returns one of the two
        if change.detail.status != "Completed":
            return {"ignored": f"processing job {change.detail.job_name} is {change.detail.status}"}
        change = _looked_up(change, event)
        if not is_monitoring(change.detail):
            return {"ignored": "not a monitoring job"}
        run = monitoring_run(change)
        endpoint, schedule, report_uri = run.endpoint, run.schedule, run.report_uri
    model = _model_of(endpoint, settings.stack_name)
    try:
        violations = parse_violations(_read_report(report_uri), report_uri)
    except AutoloopError as exc:
        # Nothing else would tell anyone: the invocation fails (and Lambda retries it), but a
        # drift check that cannot read its report must not go unnoticed.
        _notify_failure(settings, endpoint or "", report_uri, exc)
        raise
    decision = _decide(settings, model, violations, now)
    started = None
    if decision.retrain:
        started = _start_retrain(settings, model, report_uri, schedule, decision.severity,
                                 [v.feature for v in decision.counted])
    if violations:
        _notify(settings, endpoint or "", report_uri, summary(violations), decision.reason, started)
    metrics.add_metric(name="DriftRetrains" if started else "DriftReportsWithoutRetrain",
                       unit=MetricUnit.Count, value=1)
    logger.info("drift decision", extra={"model": model, "retrain": decision.retrain, "reason": decision.reason})
    result = {"model": model, "report": report_uri, "violations": len(violations), "retrain": decision.retrain,
              "reason": decision.reason, "run_id": started}
    tracking.violations_checked(model, endpoint or "", report_uri, violations, result)
    return result


def _start_retrain(settings: DriftSettings, model: str, report_uri: str, schedule: str | None,
                   severity: float, features: list[str]) -> str | None:
    latest = _latest_training_object(settings.data_bucket, model)
    if latest is None:
        logger.warning("no training data to retrain on", extra={"model": model})
        return None
    source = {"bucket": settings.data_bucket, "key": latest["Key"], "version_id": latest.get("VersionId"),
              "etag": latest["ETag"], "size": latest["Size"]}
    return _start_training(settings, model, source, report_uri, {
        "type": "drift", "detail": {"report": report_uri, "schedule": schedule, "severity": round(severity, 4),
                                    "features": features}})


def _retrain_on_fresh_labels(settings: DriftSettings, model: str, plan: MonitoringPlan, report: dict[str, Any],
                             decision: Decision, quality: bool) -> str:
    """Write the retrain's dataset once (the window's labelled captured rows, after the latest upload
    when that is recent enough) and start the TrainingPipeline on it."""
    folder = plan.report_uri.rstrip("/")
    dataset = retrain_data.build_retrain_dataset(
        data_bucket=settings.data_bucket, model=model, labelled_uris=[f"{folder}/labelled/labelled.csv"],
        latest_upload=_latest_training_object(settings.data_bucket, model),
        columns=list(load_model_config(settings.artifacts_bucket, model).columns),
        key=retrain_key(model, plan.run_id),
        window_start=datetime.now(UTC) - timedelta(days=settings.retrain_window_days),
        metadata={"autoloop-report": folder[:1024]},
    )
    detail = {"report": folder, "baseline": plan.baseline_uri.rstrip("/"),
              "features": [v.feature for v in decision.counted],
              "severity": round(decision.severity, 4) if math.isfinite(decision.severity) else None,
              "labelled_rows": dataset["labelled_rows"], "upload_included": dataset["upload_rows_included"],
              "window": [plan.window_start, plan.window_end]}
    if plan.champion_metric is not None:
        detail["champion"] = {"arn": plan.champion_arn, plan.metric: plan.champion_metric}
    if report.get("quality"):
        detail["quality"] = {k: report["quality"].get(k) for k in ("metric", "value", "threshold", "labelled_rows")}
    source = {k: dataset[k] for k in ("bucket", "key", "version_id", "etag", "size")}
    return _start_training(settings, model, source, folder, {"type": "quality" if quality else "drift",
                                                              "detail": detail})


def _start_training(settings: DriftSettings, model: str, source: dict[str, Any], report_uri: str,
                    trigger: dict[str, Any]) -> str:
    version = source.get("version_id") or source["etag"]
    # One run per report: a duplicate event for the same report starts nothing new.
    rid = run_id(model, settings.data_bucket, source["key"], f"{version}|{trigger['type']}|{report_uri}")
    payload = {"run_id": rid, "model": model, "source": source, "trigger": trigger}
    with aws_call("starting the retrain"):
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=settings.state_machine_arn, name=rid, input=json.dumps(payload))
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
    return rid


def _notify(settings: DriftSettings, endpoint: str, report_uri: str, text: str, reason: str,
            started: str | None, what: str = "drift", by: str = "Model Monitor") -> None:
    action = f"Retraining: run {started} ({reason})." if started else f"No retrain: {reason}."
    with aws_call("notifying drift"):
        client("sns").publish(
            TopicArn=settings.notify_topic_arn,
            Subject=f"Autoloop: {what} detected",
            Message=f"{by} found {what} on {endpoint}.\n{text}\n{action}\nReport: {report_uri}",
        )


def _notify_failure(settings: DriftSettings, endpoint: str, report_uri: str, exc: AutoloopError) -> None:
    """Say why the drift check failed; a failed notification must not hide the original error."""
    metrics.add_metric(name="DriftChecksFailed", unit=MetricUnit.Count, value=1)
    try:
        with aws_call("notifying the failed drift check"):
            client("sns").publish(
                TopicArn=settings.notify_topic_arn,
                Subject="Autoloop: drift check failed",
                Message=(f"The drift check of {endpoint} failed: {type(exc).__name__}: {exc}\n"
                         f"Nothing was retrained.\nReport: {report_uri}")[:200_000],
            )
    except AutoloopError as notify_error:
        logger.warning("could not notify the failed drift check", extra={"error": str(notify_error)})


# ----------------------------------------------------------------------------- autoloop backend
def _report(uri: str) -> dict[str, Any]:
    try:
        doc = json.loads(_read_report(uri))
    except json.JSONDecodeError as exc:
        raise InvalidViolationsReport(f"{uri} is not valid JSON (truncated?): {exc.msg}.") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise InvalidViolationsReport(f"{uri} is not a version 1 monitoring report.")
    return doc


def _moment(text: str | None) -> datetime | None:
    return parse_time(text, "a monitoring plan's time") if text else None


def judge_monitoring_run(payload: Any, settings: DriftSettings, now: datetime) -> dict[str, Any]:
    """The MonitoringPipeline's last step: read the run's report, decide, notify, maybe retrain
    on the window's freshly labelled rows."""
    try:
        state = MonitoringState.model_validate(payload)
    except ValueError as exc:
        raise InvalidEvent(f"malformed monitoring state: {exc}") from exc
    plan = state.plan
    logger.set_correlation_id(plan.run_id)
    model = _model_of(plan.endpoint, settings.stack_name)
    folder = plan.report_uri.rstrip("/")
    try:
        report = _report(f"{folder}/{MONITORING_REPORT}")
        violations = [] if report.get("empty_window") else parse_violations(
            _read_report(f"{folder}/{REPORT_FILE}"), f"{folder}/{REPORT_FILE}")
    except AutoloopError as exc:
        _notify_failure(settings, plan.endpoint, folder, exc)
        raise
    quality = quality_violation(report.get("quality"))
    signals = [*violations, *([quality] if quality else [])]
    labels = FreshLabels(
        labelled_rows=int(report.get("labelled_rows") or 0), latest_label_at=_moment(plan.latest_label_at),
        champion_created_at=_moment(plan.champion_created_at), min_rows=settings.min_labelled_rows,
        prefix=plan.ground_truth_prefix,
    )
    decision = _decide(settings, model, signals, now, labels)
    started = None
    if decision.retrain:
        started = _retrain_on_fresh_labels(settings, model, plan, report, decision, quality is not None)
    if signals:
        _notify(settings, plan.endpoint, folder, summary(signals), decision.reason, started,
                what="a quality drop" if quality else "drift", by="Autoloop's monitoring")
    metrics.add_metric(name="DriftRetrains" if started else "DriftReportsWithoutRetrain",
                       unit=MetricUnit.Count, value=1 if signals else 0)
    logger.info("monitoring decision", extra={"model": model, "retrain": decision.retrain, "reason": decision.reason})
    result = {"model": model, "report": folder, "violations": len(violations), "quality_violation": quality is not None,
              "labelled_rows": labels.labelled_rows, "retrain": decision.retrain, "reason": decision.reason,
              "run_id": started}
    tracking.monitored(model, plan, report, result)
    return result
