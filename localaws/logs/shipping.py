"""CloudWatch Logs for the local services, in the log groups and streams AWS uses.

Gaps in moto (5.2.5) this fills:

- SageMaker jobs and endpoints run nothing in moto, so nothing reaches CloudWatch Logs. The
  local runners write their containers' output to files; :func:`follow` copies a file into a
  log stream as it grows (a background thread reads every :data:`FOLLOW_INTERVAL` seconds,
  and :func:`unfollow` copies the rest at once), so ``aws logs tail --follow``, ``aws logs
  filter-log-events`` and the SageMaker SDK's ``logs=True`` see what the container printed.
  Names, as SageMaker's: ``/aws/sagemaker/TrainingJobs`` ``<job>/algo-1-<epoch>``,
  ``/aws/sagemaker/ProcessingJobs`` ``<job>/algo-1-<epoch>``, ``/aws/sagemaker/TransformJobs``
  ``<job>/<instance-id>-<epoch>``, ``/aws/sagemaker/Endpoints/<endpoint>``
  ``<variant>/<instance-id>`` (:func:`job_stream`, :func:`endpoint_group`).
- ``moto/awslambda/models.py: LambdaFunction`` ignores ``LoggingConfig``: every function
  logs to ``/aws/lambda/<name>`` and GetFunctionConfiguration returns no ``LoggingConfig``.
  Patched: ``LambdaFunction.__init__`` and ``update_configuration`` keep ``LoggingConfig``
  (its ``LogGroup`` becomes the function's ``logs_group_name``, the group the local Lambda
  runtime writes to) and ``get_configuration`` returns it, as Lambda does (``LogFormat``
  ``Text``, ``LogGroup`` defaulting to ``/aws/lambda/<name>``).
- ``moto/stepfunctions/parser/models.py: StepFunctionBackend.start_execution`` creates every
  execution with ``cloud_watch_logging_session=None``, so a state machine's
  ``LoggingConfiguration`` logs nothing (and moto's own session would fail: its ``LogEvent``
  has no timestamp). Patched: ``parser/backend/execution.py: Execution.__init__`` gives each
  execution a session that writes the events its level selects (``ALL``, ``ERROR``,
  ``FATAL``) to the configured group, as Step Functions does: one JSON object a line with
  ``id``, ``type``, ``details``, ``previous_event_id``, ``event_timestamp`` (epoch millis, a
  string) and ``execution_arn``; ``input``/``output`` only with ``IncludeExecutionData``.
  Stream: ``states/<state machine>/<YYYY-MM-DD-HH-MM of the start>/<8 hex>``, one an execution.
  The same session tells :mod:`localaws.observe` of every event (the ``serve`` console).

Writes go straight to moto's logs backend (``moto.logs.models.logs_backends``), under one
lock (moto's ``LogStream.put_log_events`` is not thread-safe), creating the group and stream
when missing as the services do. Shipping never fails the work it describes: an error is
logged at DEBUG and dropped.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localaws.patching import Patches

LOG = logging.getLogger(__name__)

PATCHES = Patches("cloudwatch_logs")

JOB_GROUPS = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
    "transform": "/aws/sagemaker/TransformJobs",
}
#: seconds between two reads of a followed file
FOLLOW_INTERVAL = 1.0
#: CloudWatch Logs' largest event is 256 KiB including 26 bytes of overhead
MAX_EVENT_BYTES = 256 * 1024 - 26

_LOCK = threading.RLock()


# --------------------------------------------------------------------------- names


def instance_id(seed: str) -> str:
    """A stable EC2-style instance id (``i-`` and 17 hex digits) for a local "instance"."""
    return "i-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:17]


def job_stream(kind: str, job_name: str, started: float) -> str:
    """The log stream SageMaker names for a job's (first) instance started at ``started``
    (epoch seconds)."""
    epoch = int(started)
    if kind == "transform":
        return f"{job_name}/{instance_id(job_name)}-{epoch}"
    if kind not in JOB_GROUPS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(JOB_GROUPS)}")
    return f"{job_name}/algo-1-{epoch}"


def endpoint_group(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def execution_stream(state_machine_name: str, execution_arn: str, started: dt.datetime) -> str:
    stamp = started.astimezone(dt.UTC).strftime("%Y-%m-%d-%H-%M")
    digest = hashlib.sha256(execution_arn.encode("utf-8")).hexdigest()[:8]
    return f"states/{state_machine_name}/{stamp}/{digest}"


# --------------------------------------------------------------------------- writing


def _backend(account_id: str | None, region: str | None) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.logs.models import logs_backends

    from localaws.clients import region as default_region

    return logs_backends[account_id or DEFAULT_ACCOUNT_ID][region or default_region()]


def _clip(message: str) -> str:
    data = message.encode("utf-8")
    if len(data) <= MAX_EVENT_BYTES:
        return message
    return data[:MAX_EVENT_BYTES].decode("utf-8", errors="ignore")


def put(
    group: str,
    stream: str,
    messages: Iterable[str],
    *,
    account_id: str | None = None,
    region: str | None = None,
    timestamp_ms: int | None = None,
) -> int:
    """Append ``messages`` (one event each; empty ones skipped) to ``group``/``stream``,
    creating both when missing. Returns the number of events written. :func:`put_quietly`
    is the same, but logs an error (DEBUG) instead of raising it."""
    events = [m.rstrip("\r\n") for m in messages]
    stamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    batch = [{"timestamp": stamp, "message": _clip(m)} for m in events if m]
    with _LOCK:
        backend = _backend(account_id, region)
        backend.ensure_log_group(group)
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        if batch:
            backend.put_log_events(group, stream, batch)
    return len(batch)


def put_quietly(group: str, stream: str, messages: Iterable[str], **kwargs: Any) -> int:
    try:
        return put(group, stream, messages, **kwargs)
    except Exception as exc:  # logs describe the work; they never fail it
        LOG.debug("could not write to CloudWatch Logs %s %s: %s", group, stream, exc)
        return 0


# --------------------------------------------------------------------------- following files


@dataclass
class _Follow:
    path: Path
    group: str
    stream: str
    account_id: str | None
    region: str | None
    offset: int = 0
    partial: bytes = b""


_FOLLOWS: dict[Path, _Follow] = {}
_follow_thread: threading.Thread | None = None
_stop = threading.Event()


def follow(path: Path, group: str, stream: str, *, account_id: str | None = None, region: str | None = None) -> None:
    """Copy ``path`` into ``group``/``stream`` as it grows (from its current start), until
    :func:`unfollow`. The stream is created now, as the service creates it when the
    container starts."""
    global _follow_thread
    put_quietly(group, stream, [], account_id=account_id, region=region)
    with _LOCK:
        _FOLLOWS[Path(path)] = _Follow(Path(path), group, stream, account_id, region)
        if _follow_thread is None or not _follow_thread.is_alive():
            _stop.clear()
            _follow_thread = threading.Thread(target=_follow_loop, name="cloudwatch-logs-follow", daemon=True)
            _follow_thread.start()


def unfollow(path: Path) -> int:
    """Copy what is left of ``path`` (a last line without a newline too) and stop following
    it. Returns the number of events written by this call."""
    with _LOCK:
        entry = _FOLLOWS.pop(Path(path), None)
    return _ship(entry, final=True) if entry is not None else 0


def following() -> list[Path]:
    with _LOCK:
        return list(_FOLLOWS)


def _ship(entry: _Follow, final: bool) -> int:
    try:
        with entry.path.open("rb") as fh:
            fh.seek(entry.offset)
            data = fh.read()
    except FileNotFoundError:
        data = b""
    entry.offset += len(data)
    data = entry.partial + data
    lines = data.split(b"\n")
    entry.partial = b"" if final else lines.pop()
    messages = [line.decode("utf-8", errors="replace") for line in lines]
    return put_quietly(entry.group, entry.stream, messages, account_id=entry.account_id, region=entry.region)


def _follow_loop() -> None:
    global _follow_thread
    while not _stop.wait(FOLLOW_INTERVAL):
        with _LOCK:
            entries = list(_FOLLOWS.values())
            if not entries:
                _follow_thread = None
                return
        for entry in entries:
            with _LOCK:
                if _FOLLOWS.get(entry.path) is not entry:
                    continue  # unfollowed meanwhile: unfollow shipped the rest
                _ship(entry, final=False)


def reset() -> None:
    """Stop following every file (the state they belong to is being reset)."""
    with _LOCK:
        _FOLLOWS.clear()
    _stop.set()


# --------------------------------------------------------------------------- Lambda LoggingConfig


def _apply_logging_config(fn: Any, config: dict[str, Any] | None) -> None:
    config = dict(config or {})
    group = str(config.get("LogGroup") or f"/aws/lambda/{fn.function_name}")
    fn.logs_group_name = group
    fn.logging_config = {**config, "LogFormat": config.get("LogFormat", "Text"), "LogGroup": group}


def _lambda_init(self: Any, account_id: str, spec: dict[str, Any], region: str, *args: Any, **kwargs: Any) -> None:
    from moto.awslambda.models import LambdaFunction

    PATCHES.original(LambdaFunction, "__init__")(self, account_id, spec, region, *args, **kwargs)
    _apply_logging_config(self, spec.get("LoggingConfig"))


def _lambda_get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    from moto.awslambda.models import LambdaFunction

    config: dict[str, Any] = PATCHES.original(LambdaFunction, "get_configuration")(self, *args, **kwargs)
    if not hasattr(self, "logging_config"):  # created before install
        _apply_logging_config(self, None)
    config["LoggingConfig"] = copy.deepcopy(self.logging_config)
    return config


def _lambda_update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
    from moto.awslambda.models import LambdaFunction

    if "LoggingConfig" in config_updates:
        _apply_logging_config(self, config_updates["LoggingConfig"])
    result: dict[str, Any] = PATCHES.original(LambdaFunction, "update_configuration")(self, config_updates)
    return result


# --------------------------------------------------------------------------- Step Functions


def _execution_session(execution: Any) -> Any:
    """The logging session of one execution: logs (when configured) and observers."""
    from moto.stepfunctions.parser.asl.eval.event.logging import (
        CloudWatchLoggingConfiguration,
        CloudWatchLoggingSession,
        is_logging_enabled_for,
    )

    machine = execution.state_machine
    raw = getattr(machine, "loggingConfiguration", None) or {}
    configured = None
    if raw.get("level", "OFF") != "OFF":
        configured = CloudWatchLoggingConfiguration.from_logging_configuration(
            state_machine_arn=execution.state_machine_arn,
            logging_configuration={"includeExecutionData": False, **raw},  # type: ignore[typeddict-item]
        )
    level = configured.log_level if configured else "OFF"
    include_data = bool(configured.include_execution_data) if configured else False
    started = execution.start_date or dt.datetime.now(dt.UTC)
    stream = execution_stream(str(machine.name), execution.exec_arn, started)

    class _Session(CloudWatchLoggingSession):
        def __init__(self) -> None:
            # moto's __init__ binds its backend from the configuration; ours may have none
            self.execution_arn = execution.exec_arn  # type: ignore[misc]
            self.configuration = CloudWatchLoggingConfiguration(  # type: ignore[misc]
                state_machine_arn=execution.state_machine_arn,
                log_account_id=configured.log_account_id if configured else execution.account_id,
                log_region=configured.log_region if configured else execution.region_name,
                log_group_name=configured.log_group_name if configured else "",
                log_level="ALL",  # type: ignore[arg-type]  # every event reaches the observers
                include_execution_data=include_data,
            )

        def log_level_filter(self, history_event_type: Any) -> bool:
            return True

        def publish_history_log(self, history_log: Any) -> None:
            try:
                self._publish(history_log)
            except Exception as exc:  # logging never fails the execution
                LOG.debug("could not log an event of %s: %s", execution.exec_arn, exc)

        def _publish(self, history_log: Any) -> None:
            record = _history_record(history_log)
            from localaws import observe

            observe.execution_event(record, state_machine=str(machine.name))
            if configured is None or not is_logging_enabled_for(level, history_log["type"]):  # type: ignore[arg-type]
                return
            put_quietly(configured.log_group_name, stream, [json.dumps(record, separators=(",", ":"))],
                      account_id=configured.log_account_id, region=configured.log_region,
                      timestamp_ms=int(record["event_timestamp"]))

    return _Session()


def _history_record(history_log: Any) -> dict[str, Any]:
    stamp = history_log["event_timestamp"]
    if isinstance(stamp, str):  # moto gives ISO 8601 strings ("...T16:47:09.203Z")
        stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    millis = int(stamp.timestamp() * 1000) if isinstance(stamp, dt.datetime) else int(stamp)
    kind = history_log["type"]
    record: dict[str, Any] = {
        "id": str(history_log["id"]),
        "type": str(getattr(kind, "value", kind)),
        "details": json.loads(json.dumps(history_log.get("details") or {}, default=str)),
        "previous_event_id": str(history_log["previous_event_id"]),
        "event_timestamp": str(millis),
        "execution_arn": str(history_log["execution_arn"]),
    }
    return record


def _execution_init(self: Any, *args: Any, **kwargs: Any) -> None:
    from moto.stepfunctions.parser.backend.execution import Execution

    PATCHES.original(Execution, "__init__")(self, *args, **kwargs)
    if getattr(self, "_cloud_watch_logging_session", None) is None:
        try:
            self._cloud_watch_logging_session = _execution_session(self)
        except Exception as exc:  # an execution runs without logs rather than not at all
            LOG.debug("no logging session for %s: %s", getattr(self, "exec_arn", "?"), exc)


# --------------------------------------------------------------------------- install


def install() -> None:
    """Patch moto's Lambda functions and Step Functions executions. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.backend.execution import Execution

    patches.set(LambdaFunction, "__init__", _lambda_init)
    patches.set(LambdaFunction, "get_configuration", _lambda_get_configuration)
    patches.set(LambdaFunction, "update_configuration", _lambda_update_configuration)
    patches.set(Execution, "__init__", _execution_init)


uninstall = PATCHES.restore
installed = PATCHES.active
