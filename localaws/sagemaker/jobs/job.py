"""The record of a local SageMaker job: its kind, settings, sandbox and subprocesses.

Shared by the runner (:mod:`localaws.sagemaker.jobs.runner`, which drives the lifecycle
and patches moto) and the container contracts it runs (:mod:`.containers` for processing
and training, :mod:`.transform` for batch transform), which import only this module.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from localaws import local_home
from localaws.sagemaker.optml import Root, root_for
from localaws.sagemaker.sandbox import kill_process_group

DEFAULT_MAX_RUNTIME = 86400  # SageMaker's default MaxRuntimeInSeconds
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


# --- configuration -----------------------------------------------------------------------


@dataclass
class Settings:
    work_root: Path | None = None
    emit_in_progress: bool = True
    max_concurrent_jobs: int = max(2, os.cpu_count() or 2)
    stop_grace_seconds: float = 2.0
    event_bus: str = "default"


SETTINGS = Settings()


def work_root() -> Path:
    if SETTINGS.work_root is not None:
        return SETTINGS.work_root
    return local_home()


def sandbox_for(job_name: str) -> Path:
    """``<work_root>/jobs/<job-name>``: the folder that stands in for the job's container."""
    return work_root() / "jobs" / re.sub(r"[^A-Za-z0-9._-]", "_", job_name)


# --- job kinds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
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


KINDS: dict[str, Kind] = {
    "processing": Kind(
        "processing", "Processing job", "processing_jobs", "processing_job_name",
        "ProcessingJobName", "processing_job_status", "processing_start_time",
        "processing_end_time", "describe_processing_job",
        "SageMaker Processing Job State Change",
    ),
    "training": Kind(
        "training", "Training job", "training_jobs", "training_job_name",
        "TrainingJobName", "training_job_status", "training_start_time",
        "training_end_time", "describe_training_job",
        "SageMaker Training Job State Change",
    ),
    "transform": Kind(
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
class Child:
    proc: subprocess.Popen[bytes]
    started: float
    tail: deque[str]
    drainer: threading.Thread
    count_lifetime: bool = True  # else the caller accounts compute time (add_compute)


# --- the job record ------------------------------------------------------------------------

LOCK = threading.RLock()  # guards moto job objects and the registry; never held over AWS calls


def utcnow() -> dt.datetime:
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
    _root: Root | None = None
    _child: Child | None = None
    _thread: threading.Thread | None = None

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def arn(self) -> str:
        return str(self.obj.arn)

    @property
    def log_path(self) -> Path:
        return self.sandbox / "logs.txt"

    @property
    def root(self) -> Root:
        """How the job's processes see ``/opt/ml`` (decided once per job; raises
        ``JobFailure`` when ``AUTOLOOP_OPT_ML`` asks for what this host cannot do)."""
        if self._root is None or self._root.sandbox != self.sandbox:
            self._root = root_for(self.sandbox)
        return self._root

    # record updates (what Describe returns)
    def set(self, **attrs: Any) -> None:
        with LOCK:
            for key, value in attrs.items():
                setattr(self.obj, key, value)
            self.obj.last_modified_time = utcnow()

    def get(self, attr: str, default: Any = None) -> Any:
        with LOCK:
            return copy.deepcopy(getattr(self.obj, attr, default))

    def secondary(self, status: str, message: str) -> None:
        """Training only: SecondaryStatus and its transitions, as DescribeTrainingJob shows."""
        if self.kind != "training":
            return
        now = utcnow()
        with LOCK:
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
                    target=kill_process_group, args=(child.proc, SETTINGS.stop_grace_seconds), daemon=True
                ).start()
            else:
                kill_process_group(child.proc, SETTINGS.stop_grace_seconds)

    def note(self, line: str) -> None:
        """Append one line of the platform's own to the job's log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log_file:
            log_file.write(line.rstrip("\n") + "\n")

    # subprocesses
    def spawn(
        self, cmd: Sequence[str], *, env: dict[str, str], cwd: Path, pipes: bool = False
    ) -> Child:
        """Start ``cmd`` in ``cwd`` (a host path), with the job's ``/opt/ml`` (:attr:`root`);
        stdout (unless ``pipes``) and stderr are appended to ``logs.txt``.

        With ``pipes`` the child's stdin/stdout are pipes for a request protocol, and the
        caller accounts its compute time with :meth:`add_compute` (the child's lifetime
        includes the platform's own work between requests).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv, start_dir = self.root.command(cmd, cwd)
        with self.lock:
            self.check_stop()
            with self.log_path.open("ab") as log_file:
                log_file.write(f"$ {' '.join(cmd)}\n".encode())
                log_file.flush()
                proc = subprocess.Popen(  # noqa: S603 - the job's own command, by contract
                    argv,
                    env=env,
                    cwd=str(start_dir),
                    stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if pipes else log_file,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            tail: deque[str] = deque(maxlen=30)
            assert proc.stderr is not None
            drainer = threading.Thread(
                target=drain_to_log, args=(proc.stderr, self.log_path, tail), daemon=True
            )
            drainer.start()
            child = Child(proc, time.monotonic(), tail, drainer, count_lifetime=not pipes)
            self._child = child
        return child

    def reap(self, child: Child) -> None:
        """Account a finished child's wall time as compute time."""
        if child.proc.poll() is None:
            kill_process_group(child.proc, SETTINGS.stop_grace_seconds)
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


def drain_to_log(stream: IO[bytes], log_path: Path, tail: deque[str]) -> None:
    with stream, log_path.open("ab") as log_file:
        for line in iter(stream.readline, b""):
            log_file.write(line)
            log_file.flush()
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                tail.append(text)




