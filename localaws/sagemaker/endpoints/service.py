"""SageMaker real-time endpoints that really serve, on top of moto.

Gaps in moto (5.2.5) this fills, and why Autoloop needs each:

- ``CreateEndpoint`` stores a record that is ``InService`` at once; no model is loaded. The
  deploy pipeline waits for the endpoint's state-change events and must see a broken model
  fail. Here a created endpoint is ``Creating`` while a serving fleet starts (per production
  variant, instance-based or serverless: the Model's ``model.tar.gz`` fetched and extracted to
  a sandbox, its inference module loaded once per worker process, see
  :mod:`localaws.sagemaker.endpoints.fleet`), then ``InService``, or ``Failed`` with a
  ``FailureReason`` that quotes the model's error.
- ``InvokeEndpoint`` returns a static body. Here it is routed to the endpoint's live fleet and
  answered by the model's ``input_fn``/``predict_fn``/``output_fn`` with the request's
  ``ContentType``/``Accept``; an exception in the inference code is a ``ModelError`` (HTTP 424,
  with the model's message and ``OriginalStatusCode`` 500, or 415 for an
  ``UnsupportedFormatError``), an unknown endpoint or one not serving is a ``ValidationError``.
  ``InferenceId`` and ``TargetVariant`` are honoured; the payload limit is 6 MB. It works
  in-process (``moto.mock_aws``) and in server mode, where a fast path answers invocations
  before moto's per-request service lookup and Flask dispatch (moto's stock route does about
  270 requests/s on this machine even for its static body), in the server's request handler,
  on a kept-alive connection (werkzeug closes every connection after one response).
- ``DataCaptureConfig`` is stored and ignored. Here sampled invocations are written in Model
  Monitor's capture format and S3 layout (:mod:`localaws.sagemaker.endpoints.capture`), which
  the drift steps read. Records are buffered and flushed every ``capture_flush_records``
  records or ``capture_flush_seconds`` seconds, on update, delete and :func:`stop_all`, and by
  :func:`flush_capture`.
- ``UpdateEndpoint`` is missing (``NotImplementedError``). The deploy pipeline rolls models
  out with it, blue/green under CloudWatch alarms. Here it is added: ``Updating``; a green
  fleet starts beside the blue one, which keeps serving; once green is healthy, traffic
  shifts by ``DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration``
  (``ALL_AT_ONCE``, ``CANARY`` with ``CanarySize``, ``LINEAR`` with ``LinearStepSize``; each
  step bakes ``WaitIntervalInSeconds``), then ``TerminationWaitInSeconds`` bakes, then blue is
  drained and stopped, and the endpoint is ``InService`` on the new ``EndpointConfigName``.
  While baking, the ``AutoRollbackConfiguration.Alarms`` are polled (``DescribeAlarms``
  ``StateValue``); one in ``ALARM``, a green fleet that fails to start, or
  ``MaximumExecutionTimeoutInSeconds`` passing rolls back: ``RollingBack``, traffic back to
  blue, green stopped, then ``InService`` on the OLD config with a ``FailureReason`` saying
  why (AWS keeps the old config after an auto-rollback). A request is counted on the fleet it
  was routed to and a fleet is stopped only once drained, so invocations during an update
  never fail. ``RollingUpdatePolicy`` is approximated as linear steps of
  ``MaximumBatchSize``. ``RetainAllVariantProperties`` (with
  ``ExcludeRetainedVariantProperties``) and ``RetainDeploymentConfig`` are honoured. Waits are
  multiplied by a time scale (``configure(time_scale=...)`` or env
  ``AUTOLOOP_ENDPOINT_TIME_SCALE``, default 1.0) so tests are fast.
- No CloudWatch metrics: rollback alarms could never see anything. Here per-variant metrics
  go to namespace ``AWS/SageMaker`` with dimensions ``EndpointName`` and ``VariantName``:
  ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (sums) and
  ``ModelLatency``, ``OverheadLatency`` (statistic sets, microseconds), aggregated and put
  every ``metrics_interval`` seconds (default 1; AWS uses 1 minute). moto does not evaluate
  alarms: tests and the demo set alarm states themselves.
- No ``SageMaker Endpoint State Change`` events. Here each status change puts one on the
  default bus: source ``aws.sagemaker``, resources ``[endpoint ARN]``, detail with
  ``EndpointName``, ``EndpointArn``, ``EndpointConfigName``, ``ProductionVariants``,
  ``EndpointStatus``, ``CreationTime``/``LastModifiedTime`` (epoch millis), ``Tags``, and
  ``FailureReason`` when set. The status is spelled as in AWS's documented sample event,
  upper snake case (``CREATING``, ``IN_SERVICE``, ``UPDATING``, ``ROLLING_BACK``, ``FAILED``,
  ``DELETING``), while ``DescribeEndpoint`` keeps the API enum (``Creating``, ``InService``,
  ``Updating``, ``RollingBack``, ``Failed``); rules should match both spellings, as
  template.yaml's do.
- ``DeleteEndpoint`` forgets the record only. Here it also drains and stops the workers and
  flushes capture and metrics.

Thread safety: invocations arrive concurrently from the server's threads. Moto's endpoint
objects and the registry are changed under one lock (``_LOCK``, never held over an AWS call);
routing and in-flight counts under each endpoint's lock; a worker process serves one request
at a time (idle-worker queue). Lifecycle work (create, update, bake, rollback) runs in one
thread per operation; capture flushes, metric puts and orphan clean-up in one background
thread. If moto's state is reset under a live endpoint (a ``mock_aws`` context ended), the
endpoint's workers are stopped without further AWS calls.

Use: ``install()`` (idempotent; :func:`localaws.server.install_extensions` does it),
``configure(...)``, then the ordinary boto3 calls. Helpers for tests and the demo:
:func:`wait_for_endpoint`, :func:`invocation_stats`, :func:`flush_capture`,
:func:`flush_metrics`, :func:`fleet_pids`, :func:`stop_all`.

Patched in moto: ``moto/sagemaker/models.py`` ``SageMakerModelBackend.create_endpoint``,
``delete_endpoint``, ``update_endpoint_weights_and_capacities`` (wrapped),
``describe_endpoint``, ``list_endpoints`` (wrapped in the lock), ``update_endpoint`` (added);
``moto/sagemaker/responses.py`` ``SageMakerResponse.update_endpoint`` (added);
``moto/sagemakerruntime/responses.py`` ``SageMakerRuntimeResponse.invoke_endpoint``
(replaced for served endpoints) and ``use_raw_body`` (set, so binary payloads stay bytes);
``moto/moto_server/werkzeug_app.py`` ``DomainDispatcherApplication.__call__`` and
``MotoRequestHandler.run_wsgi`` (the server fast path for ``POST /endpoints/<name>/invocations``,
the latter with keep-alive).
"""

from __future__ import annotations

import atexit
import copy
import datetime as dt
import inspect
import itertools
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.config import Config

from localaws import local_home
from localaws.patching import Patches, locked
from localaws.sagemaker.endpoints import capture
from localaws.sagemaker.endpoints.fleet import (
    Fleet,
    FleetError,
    Variant,
    WorkerGone,
    WorkerTimeout,
    default_workers,
)
from localaws.sagemaker.sandbox import truncate

log = logging.getLogger(__name__)

ENV_TIME_SCALE = "AUTOLOOP_ENDPOINT_TIME_SCALE"
EVENT_SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Endpoint State Change"
NAMESPACE = "AWS/SageMaker"
#: statuses in which an endpoint answers invocations (from its blue fleet)
SERVING = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
MAX_PAYLOAD = 6 * 1024 * 1024
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the "
    "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


# --- configuration ---------------------------------------------------------------------------


@dataclass
class _Settings:
    work_root: Path | None = None
    workers_per_variant: int | None = None
    time_scale: float | None = None
    invocation_timeout: float = 60.0
    drain_timeout: float = 30.0
    capture_flush_records: int = 1000
    capture_flush_seconds: float = 5.0
    metrics_interval: float = 1.0
    alarm_poll_seconds: float = 1.0
    server_fast_path: bool = True
    event_bus: str = "default"


_SETTINGS = _Settings()
_UNSET: Any = object()


def configure(
    *,
    work_root: str | os.PathLike[str] | None = _UNSET,
    workers_per_variant: int | None = _UNSET,
    time_scale: float | None = _UNSET,
    invocation_timeout: float | None = None,
    drain_timeout: float | None = None,
    capture_flush_records: int | None = None,
    capture_flush_seconds: float | None = None,
    metrics_interval: float | None = None,
    alarm_poll_seconds: float | None = None,
    server_fast_path: bool | None = None,
    event_bus: str | None = None,
) -> None:
    """Set options; an omitted one is unchanged, and for the first three None restores the default.

    ``work_root``: where ``endpoints/<endpoint>/...`` sandboxes go (else
    ``$AUTOLOOP_LOCAL_HOME``, else ``./.autoloop``). ``workers_per_variant``: model-server
    processes per variant unless the Model sets ``SAGEMAKER_MODEL_SERVER_WORKERS`` (default:
    CPU count, at most 4). ``time_scale``: factor for deployment waits (else
    ``$AUTOLOOP_ENDPOINT_TIME_SCALE``, else 1). ``invocation_timeout``: seconds a request may
    wait for and on a worker (AWS: 60). ``drain_timeout``: how long a stopping fleet waits
    for its requests in flight. ``capture_flush_records`` / ``capture_flush_seconds``: when
    buffered capture records are written. ``metrics_interval``: seconds between metric puts.
    ``alarm_poll_seconds``: alarm polling period while baking (scaled, at least 0.02 s).
    ``server_fast_path``: answer invocations before moto's dispatch in server mode.
    """
    if work_root is not _UNSET:
        _SETTINGS.work_root = None if work_root is None else Path(work_root).resolve()
    if workers_per_variant is not _UNSET:
        _SETTINGS.workers_per_variant = None if workers_per_variant is None else max(1, int(workers_per_variant))
    if time_scale is not _UNSET:
        _SETTINGS.time_scale = None if time_scale is None else max(0.0, float(time_scale))
    if invocation_timeout is not None:
        _SETTINGS.invocation_timeout = float(invocation_timeout)
    if drain_timeout is not None:
        _SETTINGS.drain_timeout = float(drain_timeout)
    if capture_flush_records is not None:
        _SETTINGS.capture_flush_records = max(1, int(capture_flush_records))
    if capture_flush_seconds is not None:
        _SETTINGS.capture_flush_seconds = max(0.0, float(capture_flush_seconds))
    if metrics_interval is not None:
        _SETTINGS.metrics_interval = max(0.05, float(metrics_interval))
    if alarm_poll_seconds is not None:
        _SETTINGS.alarm_poll_seconds = max(0.0, float(alarm_poll_seconds))
    if server_fast_path is not None:
        _SETTINGS.server_fast_path = bool(server_fast_path)
    if event_bus is not None:
        _SETTINGS.event_bus = event_bus


def work_root() -> Path:
    if _SETTINGS.work_root is not None:
        return _SETTINGS.work_root
    return local_home()


def time_scale() -> float:
    if _SETTINGS.time_scale is not None:
        return _SETTINGS.time_scale
    try:
        return max(0.0, float(os.environ.get(ENV_TIME_SCALE) or 1.0))
    except ValueError:
        return 1.0


def _workers() -> int:
    return _SETTINGS.workers_per_variant or default_workers()


# --- AWS clients for the extension's own calls ---------------------------------------------------

_CLIENTS: dict[tuple[str, str, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"})


def _reachable() -> bool:
    """Whether an AWS call would reach moto: a server URL is set, or ``mock_aws`` is active.
    Background work never calls real AWS."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    try:
        from moto.core.models import botocore_stubber
    except ImportError:  # pragma: no cover - moto is a dependency of local mode
        return False
    return bool(botocore_stubber.enabled)


def _client(service: str, region: str) -> Any | None:
    """A cached boto3 client for the local AWS, or None when no local AWS is reachable."""
    if not _reachable():
        return None
    url = os.environ.get("AWS_ENDPOINT_URL") or None
    key = (service, region, url)
    with _CLIENTS_LOCK:  # boto3's default session is not thread-safe
        found = _CLIENTS.get(key)
        if found is None:
            found = boto3.client(service, region_name=region, endpoint_url=url, config=_CLIENT_CONFIG)  # type: ignore[call-overload]
            _CLIENTS[key] = found
        return found


def _utcnow() -> dt.datetime:
    from moto.core.utils import utcnow  # naive UTC, as moto's own records

    return utcnow()


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return float(int(value.timestamp() * 1000))
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _epoch_ms(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def event_status(status: str) -> str:
    """``InService`` -> ``IN_SERVICE``: the spelling of AWS's documented sample event."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", status).upper()


# --- deployment plans ------------------------------------------------------------------------------


def _fraction(size: dict[str, Any] | None, instances: int) -> float:
    if not size:
        return 1.0
    value = float(size.get("Value") or 0)
    if size.get("Type") == "INSTANCE_COUNT":
        share = value / max(1, instances)
    else:  # CAPACITY_PERCENT
        share = value / 100.0
    return min(1.0, max(share, 0.0))


def _linear(step: float, wait: float) -> list[tuple[float, float]]:
    if step <= 0:
        return [(1.0, wait)]
    steps = []
    k = 1
    while k * step < 1.0 - 1e-9:
        steps.append((k * step, wait))
        k += 1
    steps.append((1.0, 0.0))
    return steps


def traffic_plan(
    deployment: dict[str, Any] | None, instances: int = 1
) -> tuple[list[tuple[float, float]], float, float | None]:
    """(steps of (green traffic share, bake seconds), termination wait, max execution seconds).

    ``ALL_AT_ONCE`` shifts everything, then bakes ``WaitIntervalInSeconds``; ``CANARY`` shifts
    ``CanarySize``, bakes, then shifts the rest; ``LINEAR`` shifts ``LinearStepSize`` at a time,
    baking after each step but the last. ``INSTANCE_COUNT`` sizes are taken against the new
    fleet's instance count. Without a deployment config: blue/green all at once, no waits.
    """
    deployment = deployment or {}
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if rolling and not blue_green:
        wait = float(rolling.get("WaitIntervalInSeconds") or 0)
        steps = _linear(_fraction(rolling.get("MaximumBatchSize"), instances), wait)
        return steps, 0.0, rolling.get("MaximumExecutionTimeoutInSeconds")
    policy = blue_green or {}
    routing = policy.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE"}
    kind = routing.get("Type") or "ALL_AT_ONCE"
    wait = float(routing.get("WaitIntervalInSeconds") or 0)
    if kind == "CANARY":
        share = _fraction(routing.get("CanarySize"), instances)
        steps = [(1.0, wait)] if share >= 1.0 else [(share, wait), (1.0, 0.0)]
    elif kind == "LINEAR":
        steps = _linear(_fraction(routing.get("LinearStepSize"), instances), wait)
    else:
        steps = [(1.0, wait)]
    return steps, float(policy.get("TerminationWaitInSeconds") or 0), policy.get(
        "MaximumExecutionTimeoutInSeconds"
    )


def _validate_deployment(deployment: dict[str, Any] | None) -> None:
    from moto.sagemaker.exceptions import ValidationError

    if not deployment:
        return
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise ValidationError(message="Specify either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.")
    if blue_green:
        routing = blue_green.get("TrafficRoutingConfiguration") or {}
        kind = routing.get("Type")
        if kind not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
            raise ValidationError(
                message=f"Value '{kind}' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
                ".type' failed to satisfy constraint: Member must satisfy enum value set: "
                "[ALL_AT_ONCE, CANARY, LINEAR]"
            )
        if kind == "CANARY" and not routing.get("CanarySize"):
            raise ValidationError(message="CanarySize must be specified for CANARY traffic routing.")
        if kind == "LINEAR" and not routing.get("LinearStepSize"):
            raise ValidationError(message="LinearStepSize must be specified for LINEAR traffic routing.")
        for name, value in (
            ("WaitIntervalInSeconds", routing.get("WaitIntervalInSeconds")),
            ("TerminationWaitInSeconds", blue_green.get("TerminationWaitInSeconds")),
        ):
            if value is not None and not 0 <= int(value) <= 3600:
                raise ValidationError(message=f"{name} must be between 0 and 3600 seconds.")
    if rolling and not rolling.get("MaximumBatchSize"):
        raise ValidationError(message="MaximumBatchSize must be specified for a RollingUpdatePolicy.")


# --- replies ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    """An InvokeEndpoint HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def _error(status: int, code: str, body: dict[str, Any]) -> Reply:
    return Reply(
        status,
        {"Content-Type": "application/json", "x-amzn-ErrorType": code},
        json.dumps(body).encode("utf-8"),
    )


def validation_error(message: str) -> Reply:
    return _error(400, "ValidationError", {"message": message})


def not_found(name: str, account: str) -> Reply:
    return validation_error(f"Endpoint {name} of account {account} not found.")


def _status_of(error_line: str) -> int:
    kind = error_line.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    return 415 if kind == "UnsupportedFormatError" else 500


# --- metrics accumulation ----------------------------------------------------------------------------


class _Acc:
    """One variant's counts and latency statistic sets since the last put."""

    __slots__ = ("e4", "e5", "mmax", "mmin", "mn", "msum", "n", "omax", "omin", "osum")

    def __init__(self) -> None:
        self.n = self.e4 = self.e5 = self.mn = 0
        self.msum = self.osum = 0.0
        self.mmin = self.omin = float("inf")
        self.mmax = self.omax = 0.0

    def add(self, status: int, model_us: float | None, overhead_us: float) -> None:
        self.n += 1
        if 400 <= status < 500:
            self.e4 += 1
        elif status >= 500 or status == 0:
            self.e5 += 1
        if model_us is not None:
            self.mn += 1
            self.msum += model_us
            self.mmin = min(self.mmin, model_us)
            self.mmax = max(self.mmax, model_us)
        self.osum += overhead_us
        self.omin = min(self.omin, overhead_us)
        self.omax = max(self.omax, overhead_us)

    def metric_data(self, endpoint: str, variant: str, when: dt.datetime) -> list[dict[str, Any]]:
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        data: list[dict[str, Any]] = [
            {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": "None"}
            for name, value in (
                ("Invocations", self.n),
                ("Invocation4XXErrors", self.e4),
                ("Invocation5XXErrors", self.e5),
            )
        ]
        if self.mn:
            data.append(
                {
                    "MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": when, "Unit": "Microseconds",
                    "StatisticValues": {"SampleCount": float(self.mn), "Sum": self.msum,
                                        "Minimum": self.mmin, "Maximum": self.mmax},
                }
            )  # fmt: skip
        data.append(
            {
                "MetricName": "OverheadLatency", "Dimensions": dims, "Timestamp": when, "Unit": "Microseconds",
                "StatisticValues": {"SampleCount": float(self.n), "Sum": self.osum,
                                    "Minimum": self.omin, "Maximum": self.omax},
            }
        )  # fmt: skip
        return data


# --- the endpoint runtime ------------------------------------------------------------------------------

_LOCK = threading.RLock()  # moto endpoint objects and the registry; never held over AWS calls
_RUNTIMES: dict[tuple[str, str, str], EndpointRuntime] = {}
_RETIRED: dict[tuple[str, str, str], dict[str, Any]] = {}  # stats of deleted endpoints
_TICK = threading.Event()
_TICKER: threading.Thread | None = None


class _Deleted(Exception):
    """The endpoint was deleted while an operation ran."""


def _new_stats() -> dict[str, Any]:
    return {"ok": 0, "failed": 0, "rejected": 0, "variants": {}, "configs": {}}


class EndpointRuntime:
    """The live side of one moto endpoint: fleets, routing, lifecycle, capture, metrics."""

    def __init__(self, backend: Any, obj: Any) -> None:
        self.backend = backend
        self.obj = obj
        self.account: str = backend.account_id
        self.region: str = backend.region_name
        self.name: str = obj.endpoint_name
        self.arn: str = obj.arn
        self.key = (self.account, self.region, self.name)
        self.lock = threading.Lock()  # routing: fleets, traffic share, in-flight counts
        self.cond = threading.Condition(self.lock)
        self.emit_lock = threading.Lock()  # status changes and their events stay in order
        self.status = "Creating"  # mirrors obj.endpoint_status for the invocation path
        self.blue: Fleet | None = None
        self.green: Fleet | None = None
        self.green_share = 0.0
        self.deleted = False
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.serial = itertools.count(1)
        self.capture = capture.CaptureBuffer(self.name)
        self.acc_lock = threading.Lock()
        self.acc: dict[str, _Acc] = {}
        self.stats = _new_stats()
        self.metrics_due = time.monotonic()
        self.deployment_config: dict[str, Any] | None = None
        self.operation: threading.Thread | None = None

    # --- moto record and events
    def _detail(self) -> dict[str, Any]:
        obj = self.obj
        detail: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": obj.endpoint_config_name,
            "ProductionVariants": _jsonable(copy.deepcopy(obj.production_variants or [])),
            "EndpointStatus": event_status(obj.endpoint_status),
            "CreationTime": _epoch_ms(obj.creation_time),
            "LastModifiedTime": _epoch_ms(obj.last_modified_time),
            "Tags": {t.get("Key"): t.get("Value") for t in (obj.tags or []) if isinstance(t, dict)},
        }
        if obj.failure_reason:
            detail["FailureReason"] = obj.failure_reason
        return detail

    def _apply(self, status: str | None, fields: dict[str, Any]) -> dict[str, Any]:
        with _LOCK:
            obj = self.obj
            for key, value in fields.items():
                setattr(obj, key, value)
            if status is not None:
                obj.endpoint_status = status
                self.status = status
            obj.last_modified_time = _utcnow()
            return self._detail()

    def transition(self, status: str, **fields: Any) -> None:
        """Set the status (and moto fields), then emit the state-change event."""
        with self.emit_lock:
            detail = self._apply(status, fields)
            self._emit(detail)

    def _emit(self, detail: dict[str, Any]) -> None:
        events = _client("events", self.region)
        if events is None:
            return
        try:
            result = events.put_events(
                Entries=[
                    {
                        "Time": dt.datetime.now(dt.UTC),
                        "Source": EVENT_SOURCE,
                        "Resources": [self.arn],
                        "DetailType": DETAIL_TYPE,
                        "Detail": json.dumps(detail),
                        "EventBusName": _SETTINGS.event_bus,
                    }
                ]
            )
            if result.get("FailedEntryCount"):
                log.warning("state-change event of endpoint %s rejected: %s", self.name, result["Entries"])
        except Exception:
            log.exception("could not emit the state-change event of endpoint %s", self.name)

    def _config(self, name: str) -> dict[str, Any]:
        with _LOCK:
            cfg = self.backend.endpoint_configs.get(name)
            if cfg is None:
                raise FleetError(f"Could not find endpoint configuration {name}.")
            return {
                "EndpointConfigName": cfg.endpoint_config_name,
                "ProductionVariants": copy.deepcopy(cfg.production_variants or []),
                "DataCaptureConfig": copy.deepcopy(cfg.data_capture_config or None),
            }

    def _new_fleet(self, config: dict[str, Any]) -> Fleet:
        return Fleet(self.name, config, work_root() / "endpoints", next(self.serial), _workers())

    def launch(self, target: Callable[..., None], *args: Any) -> None:
        self.idle.clear()

        def run() -> None:
            try:
                target(*args)
            except _Deleted:
                pass
            except Exception as exc:  # never leave the endpoint in progress
                log.exception("local endpoint %s: operation crashed", self.name)
                if not self.deleted:
                    self.transition("Failed", failure_reason=f"InternalFailure: local endpoint runner error: {exc!r}")
            finally:
                self.idle.set()

        self.operation = threading.Thread(target=run, name=f"endpoint-{self.name}", daemon=True)
        self.operation.start()

    # --- create
    def _check_alive(self) -> None:
        """Stop an operation whose endpoint is gone or whose local AWS is no longer reachable
        (a ``mock_aws`` context ended): its model fetch would otherwise go to real AWS."""
        if self.deleted or self.orphaned() or not _reachable():
            raise _Deleted

    def run_create(self, config_name: str) -> None:
        self.transition("Creating")
        self._check_alive()
        try:
            fleet = self._new_fleet(self._config(config_name))
            fleet.start()
        except FleetError as error:
            if not self.deleted:
                self.transition("Failed", failure_reason=truncate(error.reason))
            return
        with self.lock:
            keep = not self.deleted
            if keep:
                self.blue = fleet
        if not keep:
            fleet.stop(0.5)
            return
        self.transition(
            "InService",
            production_variants=fleet.summaries(_utcnow()),
            data_capture_config=capture.summary(fleet.capture_config, started=True),
            failure_reason=None,
        )

    # --- update (blue/green)
    def run_update(
        self, config_name: str, deployment: dict[str, Any] | None, retain: bool, excluded: set[str]
    ) -> None:
        old_config = self.obj.endpoint_config_name
        self.transition("Updating")
        started = time.monotonic()
        try:
            green = self._new_fleet(self._config(config_name))
        except FleetError as error:
            self._roll_back(old_config, f"the new endpoint config failed: {error.reason}", None)
            return
        blue = self.blue
        if retain and blue is not None:
            self._retain(green, blue, excluded)
        self._check_alive()
        steps, termination_wait, max_seconds = traffic_plan(deployment, green.instance_total())
        alarms = [
            str(a.get("AlarmName"))
            for a in ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []
            if a.get("AlarmName")
        ]
        deadline = started + float(max_seconds) * time_scale() if max_seconds else None
        try:
            green.start()
        except FleetError as error:
            if self.deleted:
                raise _Deleted from None
            self._roll_back(old_config, f"the new fleet ({config_name}) failed to start: {error.reason}", None)
            return
        with self.lock:
            if self.deleted:
                green.stop(0.5)
                raise _Deleted
            self.green, self.green_share = green, 0.0
        try:
            for share, wait in steps:
                with self.lock:
                    self.green_share = share
                reason = self._bake(wait, alarms, deadline)
                if reason:
                    self._roll_back(old_config, reason, green)
                    return
            reason = self._bake(termination_wait, alarms, deadline)
            if reason:
                self._roll_back(old_config, reason, green)
                return
        except _Deleted:
            green.stop(0.5)
            raise
        with self.lock:
            old, self.blue, self.green, self.green_share = self.blue, green, None, 0.0
        if old is not None:
            self._retire(old)
        self.flush_capture()
        self.publish_metrics()
        self.transition(
            "InService",
            endpoint_config_name=config_name,
            production_variants=green.summaries(_utcnow()),
            data_capture_config=capture.summary(green.capture_config, started=True),
            failure_reason=None,
            pending_deployment_summary=None,
        )

    @staticmethod
    def _retain(green: Fleet, blue: Fleet, excluded: set[str]) -> None:
        for variant in green.variants:
            old: Variant | None = blue.by_name.get(variant.name)
            if old is None:
                continue
            if "DesiredWeight" not in excluded:
                variant.weight = old.weight
            if "DesiredInstanceCount" not in excluded:
                variant.instance_count = old.instance_count
        if "DataCaptureConfig" not in excluded:
            green.capture, green.capture_config = blue.capture, blue.capture_config
        green.set_weights({})

    def _bake(self, seconds: float, alarms: list[str], deadline: float | None) -> str | None:
        """Wait ``seconds`` (scaled) while polling the alarms; a rollback reason, or None."""
        scale = time_scale()
        end = time.monotonic() + max(0.0, seconds) * scale
        poll = max(0.02, _SETTINGS.alarm_poll_seconds * scale)
        while True:
            if self.deleted:
                raise _Deleted
            reason = self._alarm_reason(alarms)
            if reason:
                return reason
            now = time.monotonic()
            if deadline is not None and now > deadline:
                return "the update did not finish within MaximumExecutionTimeoutInSeconds"
            if now >= end:
                return None
            self.wake.wait(min(poll, end - now))

    def _alarm_reason(self, alarms: list[str]) -> str | None:
        if not alarms:
            return None
        cloudwatch = _client("cloudwatch", self.region)
        if cloudwatch is None:
            return None
        try:
            response = cloudwatch.describe_alarms(AlarmNames=alarms)
        except Exception:
            log.warning("endpoint %s: could not read the rollback alarms", self.name, exc_info=True)
            return None
        for alarm in [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]:
            if alarm.get("StateValue") == "ALARM":
                why = alarm.get("StateReason") or "no reason given"
                return f"CloudWatch alarm {alarm.get('AlarmName')} went into ALARM ({why})"
        return None

    def _roll_back(self, old_config: str, reason: str, green: Fleet | None) -> None:
        failure = truncate(f"Update rolled back to endpoint config {old_config}: {reason}")
        self.transition("RollingBack", failure_reason=failure)
        with self.lock:
            self.green_share = 0.0
        if green is not None:
            self._retire(green)
        with self.lock:
            self.green = None
        if self.deleted:
            raise _Deleted
        self.flush_capture()
        self.transition("InService", failure_reason=failure, pending_deployment_summary=None)

    def _retire(self, fleet: Fleet) -> None:
        """Stop routing to ``fleet``, wait (bounded) for its requests in flight, stop it."""
        deadline = time.monotonic() + _SETTINGS.drain_timeout
        with self.cond:
            fleet.closing = True
            while fleet.inflight > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("endpoint %s: %d request(s) still in flight on a stopping fleet",
                                self.name, fleet.inflight)
                    break
                self.cond.wait(remaining)
        fleet.stop()

    # --- deletion
    def shutdown(self, *, flush: bool, emit: bool) -> None:
        """Delete: stop routing, drain and stop the fleets, flush capture and metrics."""
        with self.lock:
            self.deleted = True
            fleets = [f for f in (self.green, self.blue) if f is not None]
            self.green_share = 0.0
        self.wake.set()
        if emit:
            self.transition("Deleting")
        else:
            self._apply("Deleting", {})
        for fleet in fleets:
            self._retire(fleet)
        with self.lock:
            self.blue = self.green = None
        if flush:
            self.flush_capture()
            self.publish_metrics()
        with self.acc_lock:
            _RETIRED[self.key] = copy.deepcopy(self.stats)

    def orphaned(self) -> bool:
        """moto's state was reset (or the record replaced) under this runtime."""
        return self.backend.endpoints.get(self.name) is not self.obj

    # --- invocations
    def invoke(
        self,
        body: bytes,
        *,
        content_type: str | None,
        accept: str | None,
        inference_id: str | None = None,
        target_variant: str | None = None,
    ) -> Reply:
        started = time.perf_counter()
        if len(body) > MAX_PAYLOAD:
            self._reject()
            return validation_error(
                f"Request payload is {len(body)} bytes, more than the maximum of {MAX_PAYLOAD} bytes."
            )
        with self.lock:
            status = self.status
            fleet = self.blue if status in SERVING else None
            green, share = self.green, self.green_share
            if fleet is not None and green is not None and share > 0 and (
                share >= 1.0 or random.random() < share  # noqa: S311
            ):
                fleet = green
            if fleet is not None and fleet.closing:
                fleet = None
            if fleet is not None:
                fleet.inflight += 1
        if fleet is None:
            self._reject()
            if status == "Creating":
                return validation_error(
                    f"Endpoint {self.name} of account {self.account} is not in service yet "
                    f"(EndpointStatus Creating)."
                )
            return validation_error(
                f"Endpoint {self.name} of account {self.account} is not in service (EndpointStatus {status})."
            )
        model_us: float | None = None
        try:
            variant = fleet.pick(target_variant)
            if variant is None:
                self._reject()
                return validation_error(
                    f"TargetVariant {target_variant} is not a production variant of endpoint {self.name}."
                )
            if not accept or accept.strip() == "*/*":
                accept = variant.default_accept
            when = dt.datetime.now(dt.UTC) if fleet.capture is not None else None
            timeout = _SETTINGS.invocation_timeout
            header: dict[str, Any]
            out = b""
            try:
                worker = variant.acquire(timeout)
            except WorkerTimeout:
                header = {"ok": False, "status": 0, "error": TIMEOUT_MESSAGE}
            except WorkerGone as gone:
                header = {"ok": False, "status": 500, "error": f"Worker died: {gone}"}
            else:
                call_start = time.perf_counter()
                try:
                    header, out = worker.call(body, content_type, accept, timeout)
                except WorkerTimeout:
                    variant.discard(worker)
                    header = {"ok": False, "status": 0, "error": TIMEOUT_MESSAGE}
                except WorkerGone as gone:
                    variant.discard(worker)
                    header = {"ok": False, "status": 500, "error": f"Worker died: {gone}"}
                else:
                    variant.release(worker)
                model_us = (time.perf_counter() - call_start) * 1e6
        finally:
            with self.cond:
                fleet.inflight -= 1
                if fleet.closing and fleet.inflight <= 0:
                    self.cond.notify_all()
        if header.get("ok"):
            response_type = str(header.get("content_type") or accept)
            reply = Reply(200, {"Content-Type": response_type, "x-Amzn-Invoked-Production-Variant": variant.name}, out)
            settings = fleet.capture
            if settings is not None and when is not None and settings.sampled():
                record = capture.Record(
                    when=when,
                    inference_id=inference_id,
                    input=body if settings.capture_input else None,
                    input_type=content_type,
                    output=out if settings.capture_output else None,
                    output_type=response_type,
                )
                if self.capture.add(settings, variant.name, record) >= _SETTINGS.capture_flush_records:
                    _TICK.set()
        else:
            message = str(header.get("error") or "unknown error")
            code = int(header["status"]) if "status" in header else _status_of(message)
            reply = self._model_error(code, message)
        total_us = (time.perf_counter() - started) * 1e6
        self._record(fleet.config_name, variant.name, reply.status, header, model_us, total_us)
        return reply

    def _model_error(self, code: int, message: str) -> Reply:
        kind = "client" if 400 <= code < 500 else "server"
        group = f"/aws/sagemaker/Endpoints/{self.name}"
        region = self.region
        text = (
            f'Received {kind} error ({code}) from primary with message "{message}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
            f"group={group} in account {self.account} for more information."
        )
        return _error(
            424,
            "ModelError",
            {
                "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
                "LogStreamArn": f"arn:aws:logs:{region}:{self.account}:log-group:{group}",
                "Message": text,
                "OriginalMessage": message,
                "OriginalStatusCode": code,
            },
        )

    def _reject(self) -> None:
        with self.acc_lock:
            self.stats["rejected"] += 1

    def _record(
        self, config: str, variant: str, status: int, header: dict[str, Any], model_us: float | None, total_us: float
    ) -> None:
        ok = status == 200
        code = 200 if ok else int(header.get("status", _status_of(str(header.get("error") or ""))))
        overhead = max(0.0, total_us - (model_us or 0.0))
        outcome = "ok" if ok else "failed"
        with self.acc_lock:
            acc = self.acc.get(variant)
            if acc is None:
                acc = self.acc[variant] = _Acc()
            acc.add(code, model_us, overhead)
            stats = self.stats
            stats[outcome] += 1
            for group, name in (("variants", variant), ("configs", config)):
                entry = stats[group].get(name)
                if entry is None:
                    entry = stats[group][name] = {"ok": 0, "failed": 0}
                entry[outcome] += 1

    # --- capture and metrics
    def flush_capture(self) -> list[str]:
        batches = self.capture.drain()
        if not batches:
            return []
        s3 = _client("s3", self.region)
        if s3 is None:
            self.capture.count(0, sum(len(b.records) for b in batches))
            return []
        uris, dropped = capture.write(s3, batches)
        self.capture.count(sum(len(b.records) for b in batches) - dropped, dropped)
        if dropped:
            log.warning("endpoint %s: %d capture record(s) could not be written", self.name, dropped)
        return uris

    def publish_metrics(self) -> int:
        with self.acc_lock:
            acc, self.acc = self.acc, {}
        when = dt.datetime.now(dt.UTC)
        data = [d for variant, a in acc.items() if a.n for d in a.metric_data(self.name, variant, when)]
        if not data:
            return 0
        cloudwatch = _client("cloudwatch", self.region)
        if cloudwatch is None:
            return 0
        try:
            for start in range(0, len(data), 1000):
                cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 1000])
        except Exception:
            log.warning("endpoint %s: could not put metrics", self.name, exc_info=True)
            return 0
        return len(data)

    def stats_snapshot(self) -> dict[str, Any]:
        with self.acc_lock:
            out = copy.deepcopy(self.stats)
        out["status"] = self.status
        out["endpoint_config_name"] = self.obj.endpoint_config_name
        out["capture_written"] = self.capture.written
        out["capture_pending"] = self.capture.pending
        return out


# --- the invocation entry points -----------------------------------------------------------------------


def _runtime(account: str, region: str, name: str) -> EndpointRuntime | None:
    return _RUNTIMES.get((account, region, name))


def invoke(
    account: str,
    region: str,
    name: str,
    body: bytes,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    inference_id: str | None = None,
    target_variant: str | None = None,
) -> Reply | None:
    """Answer an invocation of a served endpoint; None if this extension does not serve it."""
    runtime = _runtime(account, region, name)
    if runtime is None:
        return None
    return runtime.invoke(
        body, content_type=content_type, accept=accept, inference_id=inference_id, target_variant=target_variant
    )


PATCHES = Patches("sagemaker_endpoints")


def _response_invoke_endpoint(self: Any) -> Any:
    """``SageMakerRuntimeResponse.invoke_endpoint`` for served endpoints (in-process and the
    stock server route)."""
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    name = unquote(self.path.split("/")[2])
    raw = self.raw_body
    body = raw if isinstance(raw, bytes) else (raw or "").encode("utf-8")
    headers = self.headers
    reply = invoke(
        self.current_account,
        self.region,
        name,
        body,
        content_type=headers.get("Content-Type"),
        accept=headers.get("Accept"),
        inference_id=headers.get("X-Amzn-SageMaker-Inference-Id"),
        target_variant=headers.get("X-Amzn-SageMaker-Target-Variant"),
    )
    if reply is None:
        backend = sagemaker_backends[self.current_account][self.region]
        if name in backend.endpoints:  # created before the extension was installed: moto's answer
            self.body = body.decode("utf-8", errors="replace")
            return PATCHES.original(SageMakerRuntimeResponse, "invoke_endpoint")(self)
        reply = not_found(name, self.current_account)
    out_headers: dict[str, Any] = dict(reply.headers)
    out_headers["status"] = reply.status
    return reply.status, out_headers, reply.body


_INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")


def _account_for(headers: Callable[[str], str | None], access_key: str) -> str:
    """The account moto would use for this request (``BaseResponse.get_current_account``)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = headers("X-Moto-Account-Id")
    if header:
        return str(header)
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _fast_reply(headers: Callable[[str], str | None], read: Callable[[int], bytes], name: str) -> Reply | None:
    """Answer ``POST /endpoints/<name>/invocations`` for a served endpoint, before moto's
    dispatch; None (nothing read) for anything else. ``headers(name)`` gives a request header."""
    scope = _SCOPE.search(headers("Authorization") or "")
    if scope is None or scope.group(3) != "sagemaker":
        return None
    length = headers("Content-Length")
    if not length or not length.isdigit() or headers("Content-Encoding") or headers("Transfer-Encoding"):
        return None  # unusual framing: moto's own route handles it
    runtime = _runtime(_account_for(headers, scope.group(1)), scope.group(2), unquote(name))
    if runtime is None:
        return None
    body = read(int(length))
    return runtime.invoke(
        body,
        content_type=headers("Content-Type"),
        accept=headers("Accept"),
        inference_id=headers("X-Amzn-SageMaker-Inference-Id"),
        target_variant=headers("X-Amzn-SageMaker-Target-Variant"),
    )


def _fast_invoke(environ: dict[str, Any], name: str) -> Reply | None:
    def header(key: str) -> str | None:
        if key in ("Content-Type", "Content-Length"):
            return environ.get(key.upper().replace("-", "_"))
        return environ.get("HTTP_" + key.upper().replace("-", "_"))

    return _fast_reply(header, environ["wsgi.input"].read, name)


def _wrap_dispatcher(original: Callable[..., Any]) -> Callable[..., Any]:
    def dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if _SETTINGS.server_fast_path and environ.get("REQUEST_METHOD") == "POST":
            match = _INVOKE_PATH.match(environ.get("PATH_INFO") or "")
            if match is not None:
                reply = _fast_invoke(environ, match.group(1))
                if reply is not None:
                    headers = list(reply.headers.items())
                    headers.append(("Content-Length", str(len(reply.body))))
                    headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
                    start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
                    return [reply.body]
        return original(self, environ, start_response)

    dispatch.__wrapped__ = original  # type: ignore[attr-defined]
    return dispatch


def _wrap_run_wsgi(original: Callable[..., Any]) -> Callable[..., Any]:
    """The server's request handler answers invocations itself, on a kept-alive connection.

    werkzeug's handler (moto's server) ends every response with ``Connection: close``, so each
    call of a client costs a TCP connect, a new server thread and a teardown: about half of
    what a single-row invocation costs the server here. An invocation has a ``Content-Length``
    body that is read whole, so the connection is safe to reuse (werkzeug closes because it
    cannot drain an unread body). Everything else still goes through werkzeug and moto."""

    def run_wsgi(self: Any) -> Any:
        if _SETTINGS.server_fast_path and self.command == "POST" and self.request_version == "HTTP/1.1":
            match = _INVOKE_PATH.match(self.path)
            if match is not None:
                reply = _fast_reply(self.headers.get, self.rfile.read, match.group(1))
                if reply is not None:
                    head = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
                    head += [f"{key}: {value}" for key, value in reply.headers.items()]
                    head.append(f"Content-Length: {len(reply.body)}")
                    head.append(f"x-amzn-RequestId: {uuid.uuid4()}")
                    head.append(f"Date: {self.date_time_string()}")
                    if (self.headers.get("Connection") or "").lower() == "close":
                        head.append("Connection: close")
                        self.close_connection = True
                    self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
                    self.wfile.flush()
                    return None
        return original(self)

    run_wsgi.__wrapped__ = original  # type: ignore[attr-defined]
    return run_wsgi


# --- moto backend patches --------------------------------------------------------------------------------


def _endpoint_arn(backend: Any, name: str) -> str:
    from moto.sagemaker.models import FakeEndpoint

    return str(FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name))


def _wrap_create(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def create_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.sagemaker.exceptions import ValidationError

        bound = signature.bind(self, *args, **kwargs)
        name = bound.arguments["endpoint_name"]
        config_name = bound.arguments["endpoint_config_name"]
        with _LOCK:
            if name in self.endpoints:
                raise ValidationError(message=f'Cannot create already existing endpoint "{_endpoint_arn(self, name)}".')
            obj = original(*bound.args, **bound.kwargs)
            config = self.endpoint_configs.get(config_name)
            obj.endpoint_status = "Creating"
            obj.failure_reason = None
            obj.last_modified_time = obj.creation_time
            obj.data_capture_config = capture.summary(getattr(config, "data_capture_config", None), started=False)
            obj.pending_deployment_summary = None
            runtime = EndpointRuntime(self, obj)
            _RUNTIMES[runtime.key] = runtime
            _RETIRED.pop(runtime.key, None)
        runtime.launch(runtime.run_create, config_name)
        _ensure_ticker()
        return obj

    create_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return create_endpoint


def _wrap_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        with _LOCK:
            original(self, endpoint_name)  # raises when it does not exist
            runtime = _RUNTIMES.pop((self.account_id, self.region_name, endpoint_name), None)
        if runtime is not None:
            runtime.shutdown(flush=True, emit=True)

    delete_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return delete_endpoint


def _wrap_weights(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_weights(self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]) -> str:
        with _LOCK:
            arn = original(self, endpoint_name, desired_weights_and_capacities)
            runtime = _RUNTIMES.get((self.account_id, self.region_name, endpoint_name))
        if runtime is not None:
            weights = {d["VariantName"]: d.get("DesiredWeight") for d in desired_weights_and_capacities}
            with runtime.lock:
                if runtime.blue is not None:
                    runtime.blue.set_weights({k: v for k, v in weights.items() if v is not None})
                with _LOCK:
                    runtime.obj.endpoint_status = runtime.status  # moto sets InService at once
        return str(arn)

    update_weights.__wrapped__ = original  # type: ignore[attr-defined]
    return update_weights


def _backend_update_endpoint(
    self: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool = False,
    exclude_retained_variant_properties: list[dict[str, str]] | None = None,
    deployment_config: dict[str, Any] | None = None,
    retain_deployment_config: bool = False,
) -> str:
    """``UpdateEndpoint`` (moto lacks it): validate, mark ``Updating``, run the deployment."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig

    _validate_deployment(deployment_config)
    with _LOCK:
        obj = self.endpoints.get(endpoint_name)
        arn = _endpoint_arn(self, endpoint_name)
        if obj is None:
            raise ValidationError(message=f'Could not find endpoint "{arn}".')
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            config_arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Could not find endpoint configuration "{config_arn}".')
        runtime = _RUNTIMES.get((self.account_id, self.region_name, endpoint_name))
        status = obj.endpoint_status
        if status in IN_PROGRESS:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{arn}".')
        if status != "InService":
            raise ValidationError(
                message=f'Cannot update endpoint "{arn}" in status {status}; delete it and create it again.'
            )
        if runtime is None:  # created before the extension was installed: moto-style, at once
            obj.endpoint_config_name = endpoint_config_name
            obj.production_variants = obj._process_production_variants(config.production_variants)
            obj.last_modified_time = _utcnow()
            return str(obj.arn)
        if deployment_config is None and retain_deployment_config:
            deployment_config = runtime.deployment_config
        runtime.deployment_config = copy.deepcopy(deployment_config)
        obj.endpoint_status = runtime.status = "Updating"
        obj.failure_reason = None
        now = _utcnow()
        obj.last_modified_time = now
        obj.pending_deployment_summary = {
            "EndpointConfigName": endpoint_config_name,
            "ProductionVariants": [
                {
                    "VariantName": v["VariantName"],
                    **({"DesiredWeight": v["InitialVariantWeight"]} if "InitialVariantWeight" in v else {}),
                    **({"DesiredInstanceCount": v["InitialInstanceCount"]} if "InitialInstanceCount" in v else {}),
                    **({"DesiredServerlessConfig": v["ServerlessConfig"]} if "ServerlessConfig" in v else {}),
                }
                for v in config.production_variants or []
            ],
            "StartTime": now,
        }
        runtime.idle.clear()
    excluded = {
        str(item.get("VariantPropertyType"))
        for item in exclude_retained_variant_properties or []
        if isinstance(item, dict)
    }
    runtime.launch(
        runtime.run_update, endpoint_config_name, copy.deepcopy(deployment_config),
        bool(retain_all_variant_properties), excluded,
    )  # fmt: skip
    return str(obj.arn)


def _response_update_endpoint(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=bool(self._get_param("RetainAllVariantProperties", False)),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
        deployment_config=self._get_param("DeploymentConfig"),
        retain_deployment_config=bool(self._get_param("RetainDeploymentConfig", False)),
    )
    return ActionResult({"EndpointArn": arn})


# --- the background thread -------------------------------------------------------------------------------


def _tick() -> None:
    with _LOCK:
        runtimes = list(_RUNTIMES.items())
    now = time.monotonic()
    for key, runtime in runtimes:
        try:
            if runtime.orphaned():
                with _LOCK:
                    if _RUNTIMES.get(key) is runtime:
                        del _RUNTIMES[key]
                log.info("endpoint %s: moto's state was reset; stopping its workers", runtime.name)
                runtime.shutdown(flush=False, emit=False)
                continue
            if runtime.capture.pending and runtime.capture.due(
                _SETTINGS.capture_flush_records, _SETTINGS.capture_flush_seconds
            ):
                runtime.flush_capture()
            if now >= runtime.metrics_due:
                runtime.metrics_due = now + _SETTINGS.metrics_interval
                runtime.publish_metrics()
        except Exception:
            log.exception("endpoint %s: background work failed", runtime.name)


def _tick_loop() -> None:
    while True:
        _TICK.wait(0.25)
        _TICK.clear()
        _tick()


def _ensure_ticker() -> None:
    global _TICKER  # noqa: PLW0603
    with _LOCK:
        if _TICKER is None or not _TICKER.is_alive():
            _TICKER = threading.Thread(target=_tick_loop, name="sagemaker-endpoints-ticker", daemon=True)
            _TICKER.start()


# --- install ----------------------------------------------------------------------------------------------


installed = PATCHES.active


def install() -> None:
    """Patch moto so endpoints really serve (idempotent)."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
    from moto.sagemaker.models import SageMakerModelBackend as Backend
    from moto.sagemaker.responses import SageMakerResponse as Response
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse as Runtime

    patches.set(Backend, "create_endpoint", _wrap_create(Backend.create_endpoint))
    patches.set(Backend, "delete_endpoint", _wrap_delete(Backend.delete_endpoint))
    patches.set(Backend, "describe_endpoint", locked(Backend.describe_endpoint, _LOCK))
    patches.set(Backend, "list_endpoints", locked(Backend.list_endpoints, _LOCK))
    patches.set(
        Backend,
        "update_endpoint_weights_and_capacities",
        _wrap_weights(Backend.update_endpoint_weights_and_capacities),
    )
    patches.set(Backend, "update_endpoint", _backend_update_endpoint)
    patches.set(Response, "update_endpoint", _response_update_endpoint)
    patches.set(Runtime, "invoke_endpoint", _response_invoke_endpoint)
    patches.set(Runtime, "use_raw_body", True)
    # the fault injector (localaws.faults) may wrap the dispatcher too: call through at call time
    dispatcher = patches.calls_original(DomainDispatcherApplication, "__call__")
    patches.set(DomainDispatcherApplication, "__call__", _wrap_dispatcher(dispatcher))
    patches.set(MotoRequestHandler, "run_wsgi", _wrap_run_wsgi(MotoRequestHandler.run_wsgi))


def uninstall() -> None:
    """Stop every endpoint and undo :func:`install`."""
    stop_all()
    PATCHES.restore()


# --- helpers for tests, the demo and teardown -----------------------------------------------------------------


def _find(name: str, region: str | None = None, account: str | None = None) -> EndpointRuntime | None:
    with _LOCK:
        for (acct, reg, ep), runtime in _RUNTIMES.items():
            if ep == name and (region is None or reg == region) and (account is None or acct == account):
                return runtime
    return None


def wait_for_endpoint(name: str, timeout: float = 60.0, *, region: str | None = None) -> str:
    """Wait until no create/update/rollback runs on the endpoint; returns its status.
    Raises TimeoutError when ``timeout`` passes first, LookupError for an unknown endpoint."""
    runtime = _find(name, region)
    if runtime is None:
        raise LookupError(f"endpoint {name} is not served locally")
    if not runtime.idle.wait(timeout):
        raise TimeoutError(f"endpoint {name} still {runtime.status} after {timeout} s")
    return runtime.status


def invocation_stats(name: str, *, region: str | None = None) -> dict[str, Any]:
    """Counts for an endpoint (also after deletion): ``ok``, ``failed`` (model errors),
    ``rejected`` (validation), per ``variants`` and per ``configs`` (``{"ok", "failed"}``),
    plus ``status``, ``endpoint_config_name`` and capture counters while it exists."""
    runtime = _find(name, region)
    if runtime is not None:
        return runtime.stats_snapshot()
    with _LOCK:
        for (_acct, reg, ep), stats in _RETIRED.items():
            if ep == name and (region is None or reg == region):
                return {**copy.deepcopy(stats), "status": "Deleted"}
    return {**_new_stats(), "status": "Unknown"}


def flush_capture(name: str | None = None) -> list[str]:
    """Write every buffered capture record now (of one endpoint, or all); returns the S3 URIs."""
    with _LOCK:
        runtimes = [r for r in _RUNTIMES.values() if name is None or r.name == name]
    uris: list[str] = []
    for runtime in runtimes:
        uris += runtime.flush_capture()
    return uris


def flush_metrics(name: str | None = None) -> int:
    """Put the pending CloudWatch metrics now; returns how many metric data were put."""
    with _LOCK:
        runtimes = [r for r in _RUNTIMES.values() if name is None or r.name == name]
    return sum(runtime.publish_metrics() for runtime in runtimes)


def fleet_pids(name: str) -> dict[str, list[int]]:
    """Worker process ids of the endpoint's blue and green fleets."""
    runtime = _find(name)
    if runtime is None:
        return {"blue": [], "green": []}
    with runtime.lock:
        blue, green = runtime.blue, runtime.green
    return {"blue": blue.pids() if blue else [], "green": green.pids() if green else []}


def stop_all(timeout: float = 30.0) -> int:
    """Stop every endpoint's workers (flushing capture and metrics while the local AWS is
    reachable) and forget them; returns how many were stopped. For teardown."""
    with _LOCK:
        runtimes = list(_RUNTIMES.values())
        _RUNTIMES.clear()
    reachable = _reachable()
    for runtime in runtimes:
        try:
            runtime.shutdown(flush=reachable and not runtime.orphaned(), emit=False)
        except Exception:
            log.exception("endpoint %s: shutdown failed", runtime.name)
    deadline = time.monotonic() + timeout
    for runtime in runtimes:
        thread = runtime.operation
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
    with _CLIENTS_LOCK:
        _CLIENTS.clear()
    return len(runtimes)


def _kill_all_workers() -> None:
    with _LOCK:
        runtimes = list(_RUNTIMES.values())
    for runtime in runtimes:
        for fleet in (runtime.green, runtime.blue):
            if fleet is not None:
                fleet.stop(0.2)


atexit.register(_kill_all_workers)
