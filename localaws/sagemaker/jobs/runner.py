"""SageMaker Processing, Training and Transform jobs that really run, on top of moto.

Gap in moto (5.2.5): ``SageMakerModelBackend.create_processing_job``,
``create_training_job`` and ``create_transform_job`` only store a record that is
``Completed`` at creation; no script runs, nothing is downloaded or written to S3, no
``SageMaker ... Job State Change`` event is emitted, and ``StopTrainingJob`` /
``StopTransformJob`` are not implemented. Autoloop's pipeline is driven by those events and
by the artifacts the jobs write, so local mode needs jobs that behave like SageMaker's:

- a created job is ``InProgress`` and runs in a background thread, then ends
  ``Completed``, ``Failed`` (with ``FailureReason``) or ``Stopped``, with start and end times;
- the job's scripts run in a subprocess under the container contract (``/opt/ml`` is a
  per-job sandbox folder, see :mod:`localaws.sagemaker.sandbox`): processing and training
  in :mod:`localaws.sagemaker.jobs.containers`, batch transform in
  :mod:`localaws.sagemaker.jobs.transform`;
- ``StoppingCondition.MaxRuntimeInSeconds`` is enforced by killing the subprocess;
- the job's log (its containers' stdout and stderr, ``<sandbox>/logs.txt``) is copied into
  CloudWatch Logs as it grows, in SageMaker's group and stream
  (:mod:`localaws.logs.shipping`), all of it before the job's final event;
- every status change puts a real-shaped ``aws.sagemaker`` event on the default
  EventBridge bus, whose detail is the job's Describe response (times in epoch millis);
- a fault switch (:func:`set_fault_hook`, used by :mod:`localaws.faults`) fails chosen
  jobs with a given ``FailureReason``, for fault-injection tests;
- each job's compute time (its subprocesses' wall time) and total time are recorded
  (:func:`job_timings`), so benchmarks can separate ML compute from orchestration.

Use: ``install()`` once (idempotent) before or after ``mock_aws``/``ThreadedMotoServer``
starts; ``configure(work_root=...)`` (or env ``AUTOLOOP_LOCAL_HOME``; default
``./.autoloop``); ``wait_for_jobs(timeout)`` in tests. Every AWS call the runner makes goes
through :func:`localaws.clients.client`, so it works in-process and in server mode.

Patched in ``moto/sagemaker/models.py`` (class ``SageMakerModelBackend``):
``create_processing_job``, ``create_training_job``, ``create_transform_job`` (wrapped),
``describe_*_job`` and ``list_*_jobs`` for those three kinds (wrapped in a lock),
``stop_processing_job`` (replaced), ``stop_training_job`` and ``stop_transform_job`` (added).
In ``moto/sagemaker/responses.py`` (class ``SageMakerResponse``): ``create_processing_job``
and ``create_training_job`` (wrapped to keep ``Environment`` and ``ProcessingResources``,
which moto drops), ``stop_training_job`` and ``stop_transform_job`` (added).
"""

from __future__ import annotations

import atexit
import contextvars
import copy
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localaws.clients import client
from localaws.logs import shipping
from localaws.patching import Patches, locked
from localaws.sagemaker.jobs.job import (
    DEFAULT_MAX_RUNTIME,
    KINDS,
    LOCK,
    SETTINGS,
    Job,
    JobStopped,
    sandbox_for,
    utcnow,
)
from localaws.sagemaker.sandbox import (
    JobFailure,
    fresh_dir,
    jsonable,
    kill_process_group,
    put_state_change,
    truncate,
)

log = logging.getLogger(__name__)

_SLOTS = threading.BoundedSemaphore(SETTINGS.max_concurrent_jobs)

_JOBS: dict[str, Job] = {}  # by ARN
_TIMINGS: dict[str, dict[str, Any]] = {}  # by job name




def configure(
    *,
    work_root: str | os.PathLike[str] | None = None,
    emit_in_progress_events: bool | None = None,
    max_concurrent_jobs: int | None = None,
    stop_grace_seconds: float | None = None,
    event_bus: str | None = None,
) -> None:
    """Set runner options (each None leaves the option unchanged).

    ``work_root``: where ``jobs/<job-name>/`` sandboxes go (else ``$AUTOLOOP_LOCAL_HOME``,
    else ``./.autoloop``). ``max_concurrent_jobs``: jobs beyond it wait ``InProgress``, as
    SageMaker jobs wait for instances. ``stop_grace_seconds``: SIGTERM-to-SIGKILL delay
    (SageMaker gives 120 s). ``emit_in_progress_events``: also emit the InProgress event.
    """
    global _SLOTS  # noqa: PLW0603 - the semaphore is replaced, running jobs keep theirs
    if work_root is not None:
        SETTINGS.work_root = Path(work_root).resolve()
    if emit_in_progress_events is not None:
        SETTINGS.emit_in_progress = emit_in_progress_events
    if max_concurrent_jobs is not None:
        SETTINGS.max_concurrent_jobs = max(1, max_concurrent_jobs)
        _SLOTS = threading.BoundedSemaphore(SETTINGS.max_concurrent_jobs)
    if stop_grace_seconds is not None:
        SETTINGS.stop_grace_seconds = max(0.0, stop_grace_seconds)
    if event_bus is not None:
        SETTINGS.event_bus = event_bus


def _kill_all_children() -> None:
    with LOCK:
        jobs = list(_JOBS.values())
    for job in jobs:
        with job.lock:
            child = job._child
        if child is not None and child.proc.poll() is None:
            kill_process_group(child.proc, 0.5)




# --- lifecycle ------------------------------------------------------------------------------


_fault_hook: Callable[[str, str], str | None] | None = None


def set_fault_hook(hook: Callable[[str, str], str | None] | None) -> None:
    """Fault switch for tests (:mod:`localaws.faults`); ``None`` removes it.

    ``hook(kind, job_name)`` is called when a job gets its slot, before its scripts run. A
    string return fails the job with that string as its ``FailureReason`` (``Failed``, with
    the usual state-change events, as when the container exits non-zero); ``None`` lets it
    run. Nothing is downloaded or uploaded for a job failed this way.
    """
    global _fault_hook  # noqa: PLW0603 - one switch per process, like the runner settings
    _fault_hook = hook


def _runner(kind: str) -> Callable[[Job], dict[str, Any]]:
    if kind == "transform":
        from localaws.sagemaker.jobs.transform import run_transform

        return run_transform
    from localaws.sagemaker.jobs.containers import run_processing, run_training

    return run_processing if kind == "processing" else run_training


def _execute(job: Job) -> None:
    spec = job.spec
    fields: dict[str, Any] = {}
    reason: str | None = None
    slots = _SLOTS
    with slots:
        started_wall = utcnow()
        job.started = time.monotonic()
        if job.max_runtime:
            job.deadline = job.started + job.max_runtime
        job.sandbox = fresh_dir(sandbox_for(job.name))
        _follow_logs(job, started_wall.timestamp())
        job.set(**{spec.start_attr: started_wall})
        job.secondary("Downloading", "Downloading input data")
        if SETTINGS.emit_in_progress:
            _emit(job)
        try:
            job.check_stop()  # stopped while it waited for a slot
            injected = _fault_hook(job.kind, job.name) if _fault_hook is not None else None
            if injected:  # localaws.faults: the container "exits non-zero" before its script runs
                raise JobFailure(injected)
            fields = _runner(job.kind)(job) or {}
            job.check_stop()
            final = "Completed"
        except JobStopped as stopped:
            if stopped.reason == "timeout":
                final = "Failed"
                reason = (
                    f"MaxRuntimeExceeded: {spec.label} exceeded MaxRuntimeInSeconds "
                    f"({job.max_runtime} s) and was stopped. Logs: {job.log_path}"
                )
            else:
                final = "Stopped"
        except JobFailure as failure:
            final, reason = "Failed", failure.reason
        except Exception as exc:  # a runner bug must still end the job
            log.exception("local %s job %s crashed", job.kind, job.name)
            final = "Failed"
            reason = f"InternalServerError: local job runner error: {exc!r}. Logs: {job.log_path}"
        finally:
            job.kill_child()
    _finish(job, final, reason, fields)


def _finish(job: Job, final: str, reason: str | None, fields: dict[str, Any]) -> None:
    spec = job.spec
    now = utcnow()
    if job.kind == "training":
        seconds = int(time.monotonic() - (job.started or job.created))
        fields.setdefault("training_time_in_seconds", seconds)
        fields.setdefault("billable_time_in_seconds", seconds)
        secondary = {"Completed": "Completed", "Stopped": "Stopped"}.get(final, "Failed")
        if reason and reason.startswith("MaxRuntimeExceeded"):
            secondary = "MaxRuntimeExceeded"
        job.secondary(secondary, reason or f"Training job {final.lower()}")
    if final != "Completed" and job.kind == "training":
        fields["model_artifacts"] = None
    job.set(
        **fields,
        **{spec.status_attr: final, spec.end_attr: now},
        failure_reason=truncate(reason) if reason else None,
    )
    job.status = final
    total = time.monotonic() - job.created
    with LOCK:
        _TIMINGS[job.name] = {
            "kind": job.kind,
            "status": final,
            "compute_seconds": round(job.compute_seconds, 6),
            "total_seconds": round(total, 6),
            "queued_seconds": round((job.started or job.created) - job.created, 6),
            "sandbox": str(job.sandbox),
        }
    shipping.unfollow(job.log_path)  # the whole log is in CloudWatch before the event says it ended
    _emit(job)
    job.done.set()


def _follow_logs(job: Job, started: float) -> None:
    """Copy the job's log into CloudWatch Logs as it grows, in SageMaker's group and stream."""
    stream = shipping.job_stream(job.kind, job.name, started)
    shipping.follow(job.log_path, shipping.JOB_GROUPS[job.kind], stream,
                    account_id=getattr(job.backend, "account_id", None),
                    region=getattr(job.backend, "region_name", None))


def _launch(job: Job) -> None:
    def target() -> None:
        try:
            _execute(job)
        except Exception:  # never leave a job InProgress
            log.exception("local %s job %s crashed outside the runner", job.kind, job.name)
            if not job.done.is_set():
                _finish(job, "Failed", "InternalServerError: local job runner crashed", {})

    job._thread = threading.Thread(target=target, name=f"sagemaker-{job.name}", daemon=True)
    job._thread.start()


# --- events ---------------------------------------------------------------------------------




def describe_detail(job: Job) -> dict[str, Any]:
    """The job's Describe response as EventBridge detail (datetimes as epoch millis)."""
    spec = job.spec
    try:
        response = getattr(client("sagemaker"), spec.describe)(**{spec.name_param: job.name})
        response.pop("ResponseMetadata", None)
    except Exception:  # e.g. the job was created in another region than the clients use
        with LOCK:
            response = dict(job.obj.response_object)
    return dict(jsonable(response))


def _emit(job: Job) -> None:
    detail = describe_detail(job)
    # AWS's samples of these events carry no Environment; consumers must describe the job.
    detail.pop("Environment", None)
    put_state_change(client("events"), arn=job.arn, detail_type=job.spec.detail_type, detail=detail,
                     bus=SETTINGS.event_bus)


# --- moto patches ---------------------------------------------------------------------------

_EXTRA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sagemaker_jobs_extra", default=None
)
PATCHES = Patches("sagemaker_jobs")


def _max_runtime(stopping_condition: dict[str, Any] | None) -> int:
    value = (stopping_condition or {}).get("MaxRuntimeInSeconds")
    return int(value) if value else DEFAULT_MAX_RUNTIME


def _wrap_create(kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    spec = KINDS[kind]
    signature = inspect.signature(original)

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.sagemaker.exceptions import ResourceInUseException

        bound = signature.bind(self, *args, **kwargs)
        name = bound.arguments[spec.name_arg]
        extra = _EXTRA.get() or {}
        with LOCK:
            existing = getattr(self, spec.jobs_attr)
            if name in existing:
                raise ResourceInUseException(
                    f"{spec.label} names must be unique within an AWS account and region, "
                    f"and a {spec.label.lower()} with this name already exists "
                    f"({existing[name].arn})"
                )
            algorithm = bound.arguments.get("algorithm_specification")
            saved_algorithm = copy.deepcopy(algorithm)
            obj = original(*bound.args, **bound.kwargs)
            now = utcnow()
            obj.creation_time = obj.last_modified_time = now
            setattr(obj, spec.status_attr, "InProgress")
            setattr(obj, spec.start_attr, None)
            setattr(obj, spec.end_attr, None)
            obj.failure_reason = None
            job = Job(kind=kind, name=name, obj=obj, backend=self)
            if kind == "processing":
                obj.exit_message = None
                obj.environment = extra.get("Environment")
                obj.processing_resources = extra.get("ProcessingResources")
                job.max_runtime = _max_runtime(obj.stopping_condition)
            elif kind == "training":
                obj.algorithm_specification = saved_algorithm  # moto adds a fake metric
                obj.environment = extra.get("Environment")
                obj.model_artifacts = None
                obj.secondary_status = "Starting"
                obj.secondary_status_transitions = [
                    {
                        "Status": "Starting",
                        "StartTime": now,
                        "StatusMessage": "Preparing the instances for training",
                    }
                ]
                obj.final_metric_data_list = None
                obj.training_time_in_seconds = None
                obj.billable_time_in_seconds = None
                job.max_runtime = _max_runtime(obj.stopping_condition)
            else:  # transform: moto's empty strings would show up in Describe
                obj.labeling_job_arn = None
                obj.auto_ml_job_arn = None
            _JOBS[obj.arn] = job
        _launch(job)
        return obj

    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create


def _make_stop(kind: str) -> Callable[[Any, str], None]:
    spec = KINDS[kind]

    def stop(self: Any, name: str) -> None:
        from moto.sagemaker.exceptions import ValidationError

        with LOCK:
            obj = getattr(self, spec.jobs_attr).get(name)
            if obj is None:
                arn = f"arn:aws:sagemaker:{self.region_name}:{self.account_id}:"
                arn += f"{kind}-job/{name}"
                raise ValidationError(message=f"Could not find {spec.label.lower()} '{arn}'.")
            status = getattr(obj, spec.status_attr)
            job = _JOBS.get(obj.arn)
            if status != "InProgress" or job is None:
                raise ValidationError(
                    message=f"The request was rejected because the {spec.label.lower()} "
                    f"is in status {status}."
                )
            setattr(obj, spec.status_attr, "Stopping")
            obj.last_modified_time = utcnow()
        job.secondary("Stopping", "Stopping the job")
        job.request_stop("stop", background=True)

    return stop


def _response_capture(original: Callable[..., Any], params: Sequence[str]) -> Callable[..., Any]:
    def capture(self: Any) -> Any:
        token = _EXTRA.set({p: self._get_param(p) for p in params})
        try:
            return original(self)
        finally:
            _EXTRA.reset(token)

    capture.__wrapped__ = original  # type: ignore[attr-defined]
    return capture


def _response_stop(kind: str) -> Callable[[Any], Any]:
    spec = KINDS[kind]

    def stop(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        getattr(self.sagemaker_backend, f"stop_{kind}_job")(self._get_param(spec.name_param))
        return EmptyResult()

    return stop


installed = PATCHES.active


def install() -> None:
    """Patch moto's SageMaker so jobs run (idempotent)."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.sagemaker.models import SageMakerModelBackend as Backend
    from moto.sagemaker.responses import SageMakerResponse as Response

    for kind in KINDS:
        create = f"create_{kind}_job"
        patches.set(Backend, create, _wrap_create(kind, getattr(Backend, create)))
        for name in (f"describe_{kind}_job", f"list_{kind}_jobs"):
            patches.set(Backend, name, locked(getattr(Backend, name), LOCK))
        patches.set(Backend, f"stop_{kind}_job", _make_stop(kind))
    patches.set(
        Response,
        "create_processing_job",
        _response_capture(Response.create_processing_job, ("Environment", "ProcessingResources")),
    )
    patches.set(Response, "create_training_job", _response_capture(Response.create_training_job, ("Environment",)))
    patches.set(Response, "stop_training_job", _response_stop("training"))
    patches.set(Response, "stop_transform_job", _response_stop("transform"))
    # stop_processing_job exists in moto's responses and calls the backend method


#: undo :func:`install` (running jobs finish on their own)
uninstall = PATCHES.restore


# --- test and benchmark helpers ---------------------------------------------------------------


def wait_for_jobs(timeout: float = 60.0, names: Sequence[str] | None = None) -> bool:
    """Wait until every job (or the named ones) has ended; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    with LOCK:
        jobs = [j for j in _JOBS.values() if names is None or j.name in names]
    for job in jobs:
        if not job.done.wait(timeout=max(0.0, deadline - time.monotonic())):
            return False
    return True


def stop_all_jobs(timeout: float = 10.0) -> bool:
    """Stop every running job and wait for them (teardown safety net)."""
    with LOCK:
        jobs = [j for j in _JOBS.values() if not j.done.is_set()]
    for job in jobs:
        job.request_stop("stop", background=True)
    return wait_for_jobs(timeout, [j.name for j in jobs])


def job_timings() -> dict[str, dict[str, Any]]:
    """Per finished job: kind, status, compute_seconds (its subprocesses' wall time),
    total_seconds (creation to end), queued_seconds and sandbox."""
    with LOCK:
        return copy.deepcopy(_TIMINGS)


def reset_timings() -> None:
    with LOCK:
        _TIMINGS.clear()
        for arn in [a for a, j in _JOBS.items() if j.done.is_set()]:
            del _JOBS[arn]


def job_sandbox(job_name: str) -> Path:
    return sandbox_for(job_name)


atexit.register(_kill_all_children)
