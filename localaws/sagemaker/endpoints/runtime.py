"""The live side of the local SageMaker endpoints: one :class:`EndpointRuntime` per moto endpoint.

A runtime holds the endpoint's fleets (blue, and green during an update), routes each
invocation to one of them, runs the lifecycle (create, blue/green update with alarm-driven
rollback, delete) in a thread per operation, emits the "SageMaker Endpoint State Change"
events, and buffers data capture and metrics, which one background thread flushes.
:data:`RUNTIMES` is the registry (by account, region and endpoint name), guarded with moto's
endpoint objects by :data:`LOCK`, which is never held over an AWS call. The moto patches that
create and delete runtimes are in :mod:`localaws.sagemaker.endpoints.service`.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from localaws.sagemaker.endpoints import capture
from localaws.sagemaker.endpoints.fleet import Fleet, FleetError, Variant, WorkerGone, WorkerTimeout
from localaws.sagemaker.endpoints.metrics import NAMESPACE, Accumulator
from localaws.sagemaker.endpoints.plan import traffic_plan
from localaws.sagemaker.endpoints.replies import Reply, error_reply, status_of, validation_error
from localaws.sagemaker.endpoints.settings import SETTINGS, time_scale, work_root, workers
from localaws.sagemaker.sandbox import epoch_ms, jsonable, put_state_change, truncate

log = logging.getLogger(__name__)

DETAIL_TYPE = "SageMaker Endpoint State Change"
#: statuses in which an endpoint answers invocations (from its blue fleet)
SERVING = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
MAX_PAYLOAD = 6 * 1024 * 1024
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the "
    "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


# --- AWS clients for the extension's own calls ---------------------------------------------------

_CLIENTS: dict[tuple[str, str, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"})


def reachable() -> bool:
    """Whether an AWS call would reach moto: a server URL is set, or ``mock_aws`` is active.
    Background work never calls real AWS."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    try:
        from moto.core.models import botocore_stubber
    except ImportError:  # pragma: no cover - moto is a dependency of local mode
        return False
    return bool(botocore_stubber.enabled)


def aws_client(service: str, region: str) -> Any | None:
    """A cached boto3 client for the local AWS, or None when no local AWS is reachable."""
    if not reachable():
        return None
    url = os.environ.get("AWS_ENDPOINT_URL") or None
    key = (service, region, url)
    with _CLIENTS_LOCK:  # boto3's default session is not thread-safe
        found = _CLIENTS.get(key)
        if found is None:
            found = boto3.client(service, region_name=region, endpoint_url=url, config=_CLIENT_CONFIG)  # type: ignore[call-overload]
            _CLIENTS[key] = found
        return found


def forget_clients() -> None:
    """Drop the cached clients (their endpoint may be gone)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


def utcnow() -> dt.datetime:
    """Now, as moto stamps its own records."""
    from moto.core.utils import utcnow  # naive UTC, as moto's own records

    return utcnow()


def _epoch_ms(value: Any) -> Any:
    """Endpoint events carry times as floats of epoch milliseconds."""
    return float(epoch_ms(value)) if isinstance(value, dt.datetime) else value




def event_status(status: str) -> str:
    """``InService`` -> ``IN_SERVICE``: the spelling of AWS's documented sample event."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", status).upper()


# --- the endpoint runtime ------------------------------------------------------------------------------

LOCK = threading.RLock()  # moto endpoint objects and the registry; never held over AWS calls
RUNTIMES: dict[tuple[str, str, str], EndpointRuntime] = {}
RETIRED: dict[tuple[str, str, str], dict[str, Any]] = {}  # stats of deleted endpoints
_TICK = threading.Event()
_TICKER: threading.Thread | None = None


class _Deleted(Exception):
    """The endpoint was deleted while an operation ran."""


def new_stats() -> dict[str, Any]:
    """An endpoint's invocation counts before its first invocation."""
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
        self.acc: dict[str, Accumulator] = {}
        self.stats = new_stats()
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
            "ProductionVariants": jsonable(copy.deepcopy(obj.production_variants or []), _epoch_ms),
            "EndpointStatus": event_status(obj.endpoint_status),
            "CreationTime": _epoch_ms(obj.creation_time),
            "LastModifiedTime": _epoch_ms(obj.last_modified_time),
            "Tags": {t.get("Key"): t.get("Value") for t in (obj.tags or []) if isinstance(t, dict)},
        }
        if obj.failure_reason:
            detail["FailureReason"] = obj.failure_reason
        return detail

    def _apply(self, status: str | None, fields: dict[str, Any]) -> dict[str, Any]:
        with LOCK:
            obj = self.obj
            for key, value in fields.items():
                setattr(obj, key, value)
            if status is not None:
                obj.endpoint_status = status
                self.status = status
            obj.last_modified_time = utcnow()
            return self._detail()

    def transition(self, status: str, **fields: Any) -> None:
        """Set the status (and moto fields), then emit the state-change event."""
        with self.emit_lock:
            detail = self._apply(status, fields)
            self._emit(detail)

    def _emit(self, detail: dict[str, Any]) -> None:
        events = aws_client("events", self.region)
        if events is not None:
            put_state_change(events, arn=self.arn, detail_type=DETAIL_TYPE, detail=detail, bus=SETTINGS.event_bus)

    def _config(self, name: str) -> dict[str, Any]:
        with LOCK:
            cfg = self.backend.endpoint_configs.get(name)
            if cfg is None:
                raise FleetError(f"Could not find endpoint configuration {name}.")
            return {
                "EndpointConfigName": cfg.endpoint_config_name,
                "ProductionVariants": copy.deepcopy(cfg.production_variants or []),
                "DataCaptureConfig": copy.deepcopy(cfg.data_capture_config or None),
            }

    def _new_fleet(self, config: dict[str, Any]) -> Fleet:
        return Fleet(self.name, config, work_root() / "endpoints", next(self.serial), workers(),
                     account_id=self.account, region=self.region)

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
        if self.deleted or self.orphaned() or not reachable():
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
            production_variants=fleet.summaries(utcnow()),
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
            production_variants=green.summaries(utcnow()),
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
        poll = max(0.02, SETTINGS.alarm_poll_seconds * scale)
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
        cloudwatch = aws_client("cloudwatch", self.region)
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
        deadline = time.monotonic() + SETTINGS.drain_timeout
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
            RETIRED[self.key] = copy.deepcopy(self.stats)

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
            timeout = SETTINGS.invocation_timeout
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
                if self.capture.add(settings, variant.name, record) >= SETTINGS.capture_flush_records:
                    _TICK.set()
        else:
            message = str(header.get("error") or "unknown error")
            code = int(header["status"]) if "status" in header else status_of(message)
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
        return error_reply(
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
        code = 200 if ok else int(header.get("status", status_of(str(header.get("error") or ""))))
        overhead = max(0.0, total_us - (model_us or 0.0))
        outcome = "ok" if ok else "failed"
        with self.acc_lock:
            acc = self.acc.get(variant)
            if acc is None:
                acc = self.acc[variant] = Accumulator()
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
        s3 = aws_client("s3", self.region)
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
        cloudwatch = aws_client("cloudwatch", self.region)
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


def lookup(account: str, region: str, name: str) -> EndpointRuntime | None:
    """The runtime of a served endpoint, if any."""
    return RUNTIMES.get((account, region, name))


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
    runtime = lookup(account, region, name)
    if runtime is None:
        return None
    return runtime.invoke(
        body, content_type=content_type, accept=accept, inference_id=inference_id, target_variant=target_variant
    )


# --- the background thread: capture flushes, metric puts, clean-up of orphans ----------------------------


def _tick() -> None:
    with LOCK:
        runtimes = list(RUNTIMES.items())
    now = time.monotonic()
    for key, runtime in runtimes:
        try:
            if runtime.orphaned():
                with LOCK:
                    if RUNTIMES.get(key) is runtime:
                        del RUNTIMES[key]
                log.info("endpoint %s: moto's state was reset; stopping its workers", runtime.name)
                runtime.shutdown(flush=False, emit=False)
                continue
            if runtime.capture.pending and runtime.capture.due(
                SETTINGS.capture_flush_records, SETTINGS.capture_flush_seconds
            ):
                runtime.flush_capture()
            if now >= runtime.metrics_due:
                runtime.metrics_due = now + SETTINGS.metrics_interval
                runtime.publish_metrics()
        except Exception:
            log.exception("endpoint %s: background work failed", runtime.name)


def _tick_loop() -> None:
    while True:
        _TICK.wait(0.25)
        _TICK.clear()
        _tick()


def ensure_ticker() -> None:
    """Start the background thread unless it runs."""
    global _TICKER  # noqa: PLW0603
    with LOCK:
        if _TICKER is None or not _TICKER.is_alive():
            _TICKER = threading.Thread(target=_tick_loop, name="sagemaker-endpoints-ticker", daemon=True)
            _TICKER.start()
