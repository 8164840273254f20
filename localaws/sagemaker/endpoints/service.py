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
objects and the registry are changed under one lock (``runtime.LOCK``, never held over an AWS call);
routing and in-flight counts under each endpoint's lock; a worker process serves one request
at a time (idle-worker queue). Lifecycle work (create, update, bake, rollback) runs in one
thread per operation; capture flushes, metric puts and orphan clean-up in one background
thread. If moto's state is reset under a live endpoint (a ``mock_aws`` context ended), the
endpoint's workers are stopped without further AWS calls.

Use: ``install()`` (idempotent; :func:`localaws.server.install_extensions` does it),
``configure(...)``, then the ordinary boto3 calls. Helpers for tests and the demo:
:func:`wait_for_endpoint`, :func:`invocation_stats`, :func:`flush_capture`,
:func:`flush_metrics`, :func:`fleet_pids`, :func:`stop_all`.

The package, module by module: this one holds the moto patches, :func:`install` and the
helpers; :mod:`~localaws.sagemaker.endpoints.settings` the options (:func:`configure`);
:mod:`~localaws.sagemaker.endpoints.runtime` the live endpoints (:class:`EndpointRuntime`:
routing, lifecycle, events; the registry and its background thread);
:mod:`~localaws.sagemaker.endpoints.plan` the deployment plans of UpdateEndpoint;
:mod:`~localaws.sagemaker.endpoints.replies` InvokeEndpoint's answers and errors;
:mod:`~localaws.sagemaker.endpoints.metrics` the CloudWatch metrics;
:mod:`~localaws.sagemaker.endpoints.fastpath` the server fast path;
:mod:`~localaws.sagemaker.endpoints.fleet` the worker processes and
:mod:`~localaws.sagemaker.endpoints.capture` data capture.

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
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from localaws.patching import Patches, locked
from localaws.sagemaker.endpoints import capture
from localaws.sagemaker.endpoints.fastpath import wrap_dispatcher, wrap_run_wsgi
from localaws.sagemaker.endpoints.plan import validate_deployment
from localaws.sagemaker.endpoints.replies import not_found
from localaws.sagemaker.endpoints.runtime import (
    IN_PROGRESS,
    LOCK,
    RETIRED,
    RUNTIMES,
    EndpointRuntime,
    ensure_ticker,
    forget_clients,
    invoke,
    new_stats,
    reachable,
    utcnow,
)
from localaws.sagemaker.endpoints.settings import ENV_TIME_SCALE, configure

__all__ = [
    "ENV_TIME_SCALE",
    "PATCHES",
    "configure",
    "fleet_pids",
    "flush_capture",
    "flush_metrics",
    "install",
    "installed",
    "invocation_stats",
    "stop_all",
    "uninstall",
    "wait_for_endpoint",
]

log = logging.getLogger(__name__)

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
        with LOCK:
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
            RUNTIMES[runtime.key] = runtime
            RETIRED.pop(runtime.key, None)
        runtime.launch(runtime.run_create, config_name)
        ensure_ticker()
        return obj

    create_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return create_endpoint


def _wrap_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        with LOCK:
            original(self, endpoint_name)  # raises when it does not exist
            runtime = RUNTIMES.pop((self.account_id, self.region_name, endpoint_name), None)
        if runtime is not None:
            runtime.shutdown(flush=True, emit=True)

    delete_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return delete_endpoint


def _wrap_weights(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_weights(self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]) -> str:
        with LOCK:
            arn = original(self, endpoint_name, desired_weights_and_capacities)
            runtime = RUNTIMES.get((self.account_id, self.region_name, endpoint_name))
        if runtime is not None:
            weights = {d["VariantName"]: d.get("DesiredWeight") for d in desired_weights_and_capacities}
            with runtime.lock:
                if runtime.blue is not None:
                    runtime.blue.set_weights({k: v for k, v in weights.items() if v is not None})
                with LOCK:
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

    validate_deployment(deployment_config)
    with LOCK:
        obj = self.endpoints.get(endpoint_name)
        arn = _endpoint_arn(self, endpoint_name)
        if obj is None:
            raise ValidationError(message=f'Could not find endpoint "{arn}".')
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            config_arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Could not find endpoint configuration "{config_arn}".')
        runtime = RUNTIMES.get((self.account_id, self.region_name, endpoint_name))
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
            obj.last_modified_time = utcnow()
            return str(obj.arn)
        if deployment_config is None and retain_deployment_config:
            deployment_config = runtime.deployment_config
        runtime.deployment_config = copy.deepcopy(deployment_config)
        obj.endpoint_status = runtime.status = "Updating"
        obj.failure_reason = None
        now = utcnow()
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
    patches.set(Backend, "describe_endpoint", locked(Backend.describe_endpoint, LOCK))
    patches.set(Backend, "list_endpoints", locked(Backend.list_endpoints, LOCK))
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
    patches.set(DomainDispatcherApplication, "__call__", wrap_dispatcher(dispatcher))
    patches.set(MotoRequestHandler, "run_wsgi", wrap_run_wsgi(MotoRequestHandler.run_wsgi))


def uninstall() -> None:
    """Stop every endpoint and undo :func:`install`."""
    stop_all()
    PATCHES.restore()


# --- helpers for tests, the demo and teardown -----------------------------------------------------------------


def _find(name: str, region: str | None = None, account: str | None = None) -> EndpointRuntime | None:
    with LOCK:
        for (acct, reg, ep), runtime in RUNTIMES.items():
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
    with LOCK:
        for (_acct, reg, ep), stats in RETIRED.items():
            if ep == name and (region is None or reg == region):
                return {**copy.deepcopy(stats), "status": "Deleted"}
    return {**new_stats(), "status": "Unknown"}


def flush_capture(name: str | None = None) -> list[str]:
    """Write every buffered capture record now (of one endpoint, or all); returns the S3 URIs."""
    with LOCK:
        runtimes = [r for r in RUNTIMES.values() if name is None or r.name == name]
    uris: list[str] = []
    for runtime in runtimes:
        uris += runtime.flush_capture()
    return uris


def flush_metrics(name: str | None = None) -> int:
    """Put the pending CloudWatch metrics now; returns how many metric data were put."""
    with LOCK:
        runtimes = [r for r in RUNTIMES.values() if name is None or r.name == name]
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
    with LOCK:
        runtimes = list(RUNTIMES.values())
        RUNTIMES.clear()
    alive = reachable()
    for runtime in runtimes:
        try:
            runtime.shutdown(flush=alive and not runtime.orphaned(), emit=False)
        except Exception:
            log.exception("endpoint %s: shutdown failed", runtime.name)
    deadline = time.monotonic() + timeout
    for runtime in runtimes:
        thread = runtime.operation
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
    forget_clients()
    return len(runtimes)


def _kill_all_workers() -> None:
    with LOCK:
        runtimes = list(RUNTIMES.values())
    for runtime in runtimes:
        for fleet in (runtime.green, runtime.blue):
            if fleet is not None:
                fleet.stop(0.2)


atexit.register(_kill_all_workers)
