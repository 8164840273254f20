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
  per-job sandbox folder, see :mod:`localaws.sagemaker_sandbox`): processing and training
  in :mod:`localaws.sagemaker_containers`, batch transform in
  :mod:`localaws.sagemaker_transform`;
- ``StoppingCondition.MaxRuntimeInSeconds`` is enforced by killing the subprocess;
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
import datetime as dt
import inspect
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from localaws.sagemaker_sandbox import JobFailure, aws_client, fresh_dir, truncate

log = logging.getLogger(__name__)

ENV_WORK_ROOT = "AUTOLOOP_LOCAL_HOME"
DEFAULT_MAX_RUNTIME = 86400  # SageMaker's default MaxRuntimeInSeconds
EVENT_SOURCE = "aws.sagemaker"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


# --- configuration -----------------------------------------------------------------------


@dataclass
class _Settings:
    work_root: Path | None = None
    emit_in_progress: bool = True
    max_concurrent_jobs: int = max(2, os.cpu_count() or 2)
    stop_grace_seconds: float = 2.0
    event_bus: str = "default"


_SETTINGS = _Settings()
_SLOTS = threading.BoundedSemaphore(_SETTINGS.max_concurrent_jobs)


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
        _SETTINGS.work_root = Path(work_root).resolve()
    if emit_in_progress_events is not None:
        _SETTINGS.emit_in_progress = emit_in_progress_events
    if max_concurrent_jobs is not None:
        _SETTINGS.max_concurrent_jobs = max(1, max_concurrent_jobs)
        _SLOTS = threading.BoundedSemaphore(_SETTINGS.max_concurrent_jobs)
    if stop_grace_seconds is not None:
        _SETTINGS.stop_grace_seconds = max(0.0, stop_grace_seconds)
    if event_bus is not None:
        _SETTINGS.event_bus = event_bus


def work_root() -> Path:
    if _SETTINGS.work_root is not None:
        return _SETTINGS.work_root
    env = os.environ.get(ENV_WORK_ROOT)
    return Path(env).resolve() if env else (Path.cwd() / ".autoloop").resolve()


def sandbox_for(job_name: str) -> Path:
    """``<work_root>/jobs/<job-name>``: the folder that stands in for the job's container."""
    return work_root() / "jobs" / re.sub(r"[^A-Za-z0-9._-]", "_", job_name)


# --- job kinds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    kind: str
    label: str  # for messages: "Processing job"
    jobs_attr: str  # backend dict attribute
    name_arg: str  # backend create argument holding the name
    name_param: str  # API parameter
    status_attr: str
    start_attr: str
    end_attr: str
    describe: str  # boto3 method
    detail_type: str


KINDS: dict[str, _Kind] = {
    "processing": _Kind(
        "processing", "Processing job", "processing_jobs", "processing_job_name",
        "ProcessingJobName", "processing_job_status", "processing_start_time",
        "processing_end_time", "describe_processing_job",
        "SageMaker Processing Job State Change",
    ),
    "training": _Kind(
        "training", "Training job", "training_jobs", "training_job_name",
        "TrainingJobName", "training_job_status", "training_start_time",
        "training_end_time", "describe_training_job",
        "SageMaker Training Job State Change",
    ),
    "transform": _Kind(
        "transform", "Transform job", "transform_jobs", "transform_job_name",
        "TransformJobName", "transform_job_status", "transform_start_time",
        "transform_end_time", "describe_transform_job",
        "SageMaker Transform Job State Change",
    ),
}  # fmt: skip


class JobStopped(Exception):
    """Raised inside a runner when the job was stopped (``stop``) or timed out (``timeout``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ProcessResult:
    returncode: int
    stderr_tail: list[str]
    seconds: float


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    started: float
    tail: deque[str]
    drainer: threading.Thread
    count_lifetime: bool = True  # else the caller accounts compute time (add_compute)


# --- the job record ------------------------------------------------------------------------

_LOCK = threading.RLock()  # guards moto job objects and the registry; never held over AWS calls
_JOBS: dict[str, Job] = {}  # by ARN
_TIMINGS: dict[str, dict[str, Any]] = {}  # by job name


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class Job:
    """One running job: its moto record, sandbox, subprocess and timings."""

    kind: str
    name: str
    obj: Any  # moto's FakeProcessingJob / FakeTrainingJob / FakeTransformJob
    backend: Any
    created: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None
    deadline: float | None = None
    max_runtime: int | None = None
    compute_seconds: float = 0.0
    started: float | None = None
    status: str = "InProgress"
    sandbox: Path = field(default_factory=Path)
    _child: _Child | None = None
    _thread: threading.Thread | None = None

    @property
    def spec(self) -> _Kind:
        return KINDS[self.kind]

    @property
    def arn(self) -> str:
        return str(self.obj.arn)

    @property
    def log_path(self) -> Path:
        return self.sandbox / "logs.txt"

    # record updates (what Describe returns)
    def set(self, **attrs: Any) -> None:
        with _LOCK:
            for key, value in attrs.items():
                setattr(self.obj, key, value)
            self.obj.last_modified_time = _utcnow()

    def get(self, attr: str, default: Any = None) -> Any:
        with _LOCK:
            return copy.deepcopy(getattr(self.obj, attr, default))

    def secondary(self, status: str, message: str) -> None:
        """Training only: SecondaryStatus and its transitions, as DescribeTrainingJob shows."""
        if self.kind != "training":
            return
        now = _utcnow()
        with _LOCK:
            transitions = list(getattr(self.obj, "secondary_status_transitions", None) or [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1] = {**transitions[-1], "EndTime": now}
            entry = {"Status": status, "StartTime": now, "StatusMessage": message}
            if status in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
                entry["EndTime"] = now
            transitions.append(entry)
            self.obj.secondary_status_transitions = transitions
            self.obj.secondary_status = status
            self.obj.last_modified_time = now

    # stop / timeout
    def check_stop(self) -> None:
        if self.stop_reason is None and self.deadline is not None:
            if time.monotonic() > self.deadline:
                self.stop_reason = "timeout"
        if self.stop_reason is not None:
            raise JobStopped(self.stop_reason)

    def request_stop(self, reason: str, *, background: bool) -> None:
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            child = self._child
        if child is not None:
            if background:
                threading.Thread(
                    target=_kill, args=(child.proc, _SETTINGS.stop_grace_seconds), daemon=True
                ).start()
            else:
                _kill(child.proc, _SETTINGS.stop_grace_seconds)

    # subprocesses
    def spawn(
        self, cmd: Sequence[str], *, env: dict[str, str], cwd: Path, pipes: bool = False
    ) -> _Child:
        """Start ``cmd``; stdout (unless ``pipes``) and stderr are appended to ``logs.txt``.

        With ``pipes`` the child's stdin/stdout are pipes for a request protocol, and the
        caller accounts its compute time with :meth:`add_compute` (the child's lifetime
        includes the platform's own work between requests).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.check_stop()
            with self.log_path.open("ab") as log_file:
                log_file.write(f"$ {' '.join(cmd)}\n".encode())
                log_file.flush()
                proc = subprocess.Popen(  # noqa: S603 - the job's own command, by contract
                    list(cmd),
                    env=env,
                    cwd=str(cwd),
                    stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if pipes else log_file,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            tail: deque[str] = deque(maxlen=30)
            assert proc.stderr is not None
            drainer = threading.Thread(
                target=_drain, args=(proc.stderr, self.log_path, tail), daemon=True
            )
            drainer.start()
            child = _Child(proc, time.monotonic(), tail, drainer, count_lifetime=not pipes)
            self._child = child
        return child

    def reap(self, child: _Child) -> None:
        """Account a finished child's wall time as compute time."""
        if child.proc.poll() is None:
            _kill(child.proc, _SETTINGS.stop_grace_seconds)
        child.drainer.join(timeout=5)
        with self.lock:
            if child.count_lifetime:
                self.compute_seconds += time.monotonic() - child.started
            if self._child is child:
                self._child = None

    def add_compute(self, seconds: float) -> None:
        with self.lock:
            self.compute_seconds += seconds

    def run(self, cmd: Sequence[str], *, env: dict[str, str], cwd: Path) -> ProcessResult:
        """Run ``cmd`` to completion within the job's deadline (killed when it passes)."""
        child = self.spawn(cmd, env=env, cwd=cwd)
        try:
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
            try:
                returncode = child.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.request_stop("timeout", background=False)
                returncode = child.proc.wait()
        finally:
            self.reap(child)
        self.check_stop()
        return ProcessResult(returncode, list(child.tail), time.monotonic() - child.started)

    def kill_child(self) -> None:
        with self.lock:
            child = self._child
        if child is not None:
            self.reap(child)


def _drain(stream: IO[bytes], log_path: Path, tail: deque[str]) -> None:
    with stream, log_path.open("ab") as log_file:
        for line in iter(stream.readline, b""):
            log_file.write(line)
            log_file.flush()
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                tail.append(text)


def _kill(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _kill_all_children() -> None:
    with _LOCK:
        jobs = list(_JOBS.values())
    for job in jobs:
        with job.lock:
            child = job._child
        if child is not None and child.proc.poll() is None:
            _kill(child.proc, 0.5)


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
        from localaws.sagemaker_transform import run_transform

        return run_transform
    from localaws.sagemaker_containers import run_processing, run_training

    return run_processing if kind == "processing" else run_training


def _execute(job: Job) -> None:
    spec = job.spec
    fields: dict[str, Any] = {}
    reason: str | None = None
    slots = _SLOTS
    with slots:
        started_wall = _utcnow()
        job.started = time.monotonic()
        if job.max_runtime:
            job.deadline = job.started + job.max_runtime
        job.sandbox = fresh_dir(sandbox_for(job.name))
        job.set(**{spec.start_attr: started_wall})
        job.secondary("Downloading", "Downloading input data")
        if _SETTINGS.emit_in_progress:
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
    now = _utcnow()
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
    with _LOCK:
        _TIMINGS[job.name] = {
            "kind": job.kind,
            "status": final,
            "compute_seconds": round(job.compute_seconds, 6),
            "total_seconds": round(total, 6),
            "queued_seconds": round((job.started or job.created) - job.created, 6),
            "sandbox": str(job.sandbox),
        }
    _emit(job)
    job.done.set()


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def describe_detail(job: Job) -> dict[str, Any]:
    """The job's Describe response as EventBridge detail (datetimes as epoch millis)."""
    spec = job.spec
    try:
        response = getattr(aws_client("sagemaker"), spec.describe)(**{spec.name_param: job.name})
        response.pop("ResponseMetadata", None)
    except Exception:  # e.g. the job was created in another region than the clients use
        with _LOCK:
            response = dict(job.obj.response_object)
    return dict(_jsonable(response))


def _emit(job: Job) -> None:
    spec = job.spec
    try:
        detail = describe_detail(job)
        result = aws_client("events").put_events(
            Entries=[
                {
                    "Time": _utcnow(),
                    "Source": EVENT_SOURCE,
                    "Resources": [job.arn],
                    "DetailType": spec.detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": _SETTINGS.event_bus,
                }
            ]
        )
        if result.get("FailedEntryCount"):
            log.warning("state-change event for %s rejected: %s", job.name, result["Entries"])
    except Exception:
        log.exception("could not emit the state-change event of %s", job.name)


# --- moto patches ---------------------------------------------------------------------------

_EXTRA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sagemaker_jobs_extra", default=None
)
_ORIGINALS: dict[tuple[type, str], Any] = {}
_MISSING = object()


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
        with _LOCK:
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
            now = _utcnow()
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


def _wrap_locked(original: Callable[..., Any]) -> Callable[..., Any]:
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(*args, **kwargs)

    locked.__wrapped__ = original  # type: ignore[attr-defined]
    return locked


def _make_stop(kind: str) -> Callable[[Any, str], None]:
    spec = KINDS[kind]

    def stop(self: Any, name: str) -> None:
        from moto.sagemaker.exceptions import ValidationError

        with _LOCK:
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
            obj.last_modified_time = _utcnow()
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


def _patch(cls: type, name: str, value: Any) -> None:
    key = (cls, name)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = cls.__dict__.get(name, _MISSING)
    setattr(cls, name, value)


def installed() -> bool:
    return bool(_ORIGINALS)


def install() -> None:
    """Patch moto's SageMaker so jobs run (idempotent)."""
    from moto.sagemaker.models import SageMakerModelBackend as Backend
    from moto.sagemaker.responses import SageMakerResponse as Response

    with _LOCK:
        if _ORIGINALS:
            return
        for kind in KINDS:
            create = f"create_{kind}_job"
            _patch(Backend, create, _wrap_create(kind, getattr(Backend, create)))
            for name in (f"describe_{kind}_job", f"list_{kind}_jobs"):
                _patch(Backend, name, _wrap_locked(getattr(Backend, name)))
            _patch(Backend, f"stop_{kind}_job", _make_stop(kind))
        _patch(
            Response,
            "create_processing_job",
            _response_capture(
                Response.create_processing_job, ("Environment", "ProcessingResources")
            ),
        )
        _patch(
            Response,
            "create_training_job",
            _response_capture(Response.create_training_job, ("Environment",)),
        )
        _patch(Response, "stop_training_job", _response_stop("training"))
        _patch(Response, "stop_transform_job", _response_stop("transform"))
        # stop_processing_job exists in moto's responses and calls the backend method


def uninstall() -> None:
    """Undo :func:`install` (running jobs finish on their own)."""
    with _LOCK:
        for (cls, name), original in _ORIGINALS.items():
            if original is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _ORIGINALS.clear()


# --- test and benchmark helpers ---------------------------------------------------------------


def wait_for_jobs(timeout: float = 60.0, names: Sequence[str] | None = None) -> bool:
    """Wait until every job (or the named ones) has ended; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    with _LOCK:
        jobs = [j for j in _JOBS.values() if names is None or j.name in names]
    for job in jobs:
        if not job.done.wait(timeout=max(0.0, deadline - time.monotonic())):
            return False
    return True


def stop_all_jobs(timeout: float = 10.0) -> bool:
    """Stop every running job and wait for them (teardown safety net)."""
    with _LOCK:
        jobs = [j for j in _JOBS.values() if not j.done.is_set()]
    for job in jobs:
        job.request_stop("stop", background=True)
    return wait_for_jobs(timeout, [j.name for j in jobs])


def job_timings() -> dict[str, dict[str, Any]]:
    """Per finished job: kind, status, compute_seconds (its subprocesses' wall time),
    total_seconds (creation to end), queued_seconds and sandbox."""
    with _LOCK:
        return copy.deepcopy(_TIMINGS)


def reset_timings() -> None:
    with _LOCK:
        _TIMINGS.clear()
        for arn in [a for a, j in _JOBS.items() if j.done.is_set()]:
            del _JOBS[arn]


def job_sandbox(job_name: str) -> Path:
    return sandbox_for(job_name)


atexit.register(_kill_all_children)
