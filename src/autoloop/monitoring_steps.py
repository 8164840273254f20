"""The MonitoringPipeline's plan (autoloop backend): which captured requests and labels a run reads.

A Scheduler schedule per endpoint starts the MonitoringPipeline with the endpoint, its model
and baseline, and the due time. :func:`plan_monitoring` turns that into one monitoring job:

* the window ends at the due time and starts ``MonitoringWindowHours`` earlier, or when the
  endpoint last changed, whichever is later, so a run judges only the model now serving;
* the captured files of the window's hours (``<capture>/<endpoint>/<variant>/yyyy/mm/dd/hh/``)
  and the ground-truth files under ``groundtruth/<model>/yyyy/mm/dd/hh/`` in the data bucket
  (Model Monitor's layout) go into two manifests beside the run's report, which the job reads
  as ``ManifestFile`` inputs; the job itself keeps only records whose inference time is in the
  window;
* the model's metric, direction, threshold and quality margin come from its published config
  (the margin, for a metric in [0, 1], by default from the stack's QualityMargin), and the
  champion's registered metric is the quality baseline;
* the newest label file's time travels on, so the drift handler can tell whether anything was
  labelled since the champion was trained.

No traffic in the window: no job (nothing to pay for); the execution says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autoloop import adapters, registry, tasks
from autoloop.adapters import aws_call, client
from autoloop.config import MonitorPlanSettings, load_model_config
from autoloop.errors import InvalidEvent
from autoloop.gate import resolve_direction
from autoloop.monitoring import monitoring_run_id, report_uri
from autoloop.naming import GROUND_TRUTH_PREFIX, parse_time
from autoloop.observability import logger
from autoloop.state import MonitoringPlan

#: Scheduler's placeholder, left as is when the state machine is started by hand.
_DUE_PLACEHOLDER = "<aws.scheduler.scheduled-time>"


class MonitoringRequest(BaseModel):
    """The MonitoringPipeline's input: what the endpoint's schedule sends."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=1)
    model: str = Field(min_length=1)
    schedule: str = ""
    statistics_uri: str = Field(pattern=r"^s3://")
    constraints_uri: str = Field(pattern=r"^s3://")
    scheduled_time: str = _DUE_PLACEHOLDER


def _due(text: str, now: datetime) -> datetime:
    return now if not text or text == _DUE_PLACEHOLDER else parse_time(text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours(start: datetime, end: datetime) -> Iterator[str]:
    """``yyyy/mm/dd/hh`` of every hour that overlaps [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield f"{hour:%Y/%m/%d/%H}"
        hour += timedelta(hours=1)


def _list(bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with aws_call(f"listing s3://{bucket}/{prefix}"):
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(page.get("Contents", []))
    return found


def _manifest(bucket: str, prefix: str, objects: list[dict[str, Any]], where: str) -> str:
    """A SageMaker manifest (``[{"prefix": ...}, relative keys...]``) written to ``where``."""
    body = [{"prefix": f"s3://{bucket}/{prefix}"}, *sorted(o["Key"][len(prefix):] for o in objects)]
    out_bucket, key = adapters.split_s3_uri(where)
    with aws_call(f"writing {where}"):
        client("s3").put_object(Bucket=out_bucket, Key=key, Body=json.dumps(body).encode(),
                                ContentType="application/json")
    return where


def plan_monitoring(payload: Any, settings: MonitorPlanSettings, now: datetime | None = None) -> dict[str, Any]:
    try:
        request = MonitoringRequest.model_validate(payload)
    except ValueError as exc:
        raise InvalidEvent(f"malformed monitoring request: {exc}",
                           "The endpoint's Scheduler schedule sends it; recreate the schedule by redeploying.") from exc
    due = _due(request.scheduled_time, now or datetime.now(UTC))
    run = monitoring_run_id(request.model, request.endpoint, due)
    logger.set_correlation_id(run)
    report = report_uri(settings.artifacts_bucket, request.endpoint, due)
    base: dict[str, Any] = {"run_id": run, "model": request.model, "endpoint": request.endpoint,
                            "report_uri": report, "window_end": _iso(due),
                            "ground_truth_prefix": f"s3://{settings.data_bucket}/{GROUND_TRUTH_PREFIX}{request.model}/"}
    endpoint = tasks.describe_endpoint(request.endpoint)
    if endpoint is None:
        return _skip(base, due, f"endpoint {request.endpoint} does not exist (deleted?); nothing to monitor")
    start = max(due - timedelta(hours=settings.monitoring_window_hours),
                endpoint.get("LastModifiedTime") or endpoint.get("CreationTime") or due)
    base["window_start"] = _iso(start)
    capture = (endpoint.get("DataCaptureConfig") or {}).get("DestinationS3Uri")
    if not capture:
        return _skip(base, start, f"endpoint {request.endpoint} captures no data")
    cap_bucket, cap_root = adapters.split_s3_uri(str(capture).rstrip("/") + f"/{request.endpoint}/")
    captured = [obj for variant in endpoint.get("ProductionVariants", []) for hour in hours(start, due)
                for obj in _list(cap_bucket, f"{cap_root}{variant['VariantName']}/{hour}/")]
    if not captured:
        return _skip(base, start, f"no captured requests on {request.endpoint} between {_iso(start)} and {_iso(due)}")

    gt_root = f"{GROUND_TRUTH_PREFIX}{request.model}/"
    labels = [obj for hour in hours(start, due) for obj in _list(settings.data_bucket, f"{gt_root}{hour}/")]
    config = load_model_config(settings.artifacts_bucket, request.model)
    metric = config.metric
    direction = resolve_direction(metric, config.direction)  # the config validated it already
    threshold = config.threshold if config.threshold is not None else settings.metric_threshold
    group = registry.package_group_name(settings.model_package_group_prefix, request.model)
    champion = registry.latest_approved_package(group)
    champion_arn = str(champion["ModelPackageArn"]) if champion else None
    # The quality baseline: the champion's metric as registered (on the holdout it was judged on).
    champion_metric = registry.metric_from_package(champion, metric) if champion else None
    plan = MonitoringPlan(
        **base, action="monitor",
        reason=f"{len(captured)} capture file(s), {len(labels)} ground-truth file(s)",
        baseline_uri=request.statistics_uri.rsplit("/", 1)[0] + "/",
        capture_manifest_uri=_manifest(cap_bucket, cap_root, captured, f"{report}/input/capture.manifest"),
        capture_files=len(captured),
        ground_truth_manifest_uri=(
            _manifest(settings.data_bucket, gt_root, labels, f"{report}/input/ground_truth.manifest")
            if labels else None),
        ground_truth_files=len(labels),
        latest_label_at=_iso(max(o["LastModified"] for o in labels)) if labels else None,
        metric=metric, direction=direction, threshold=threshold,
        quality_margin=config.quality_margin if config.quality_margin is not None else settings.quality_margin,
        champion_arn=champion_arn, champion_metric=champion_metric,
        champion_created_at=_iso(champion["CreationTime"]) if champion else None,
    )
    logger.info("monitoring plan", extra={"run": run, "capture_files": plan.capture_files,
                                          "ground_truth_files": plan.ground_truth_files})
    return plan.model_dump()


def _skip(base: dict[str, Any], start: datetime, reason: str) -> dict[str, Any]:
    logger.info("monitoring skipped", extra={"reason": reason})
    return MonitoringPlan(**{"window_start": _iso(start), **base}, action="skip", reason=reason).model_dump()
