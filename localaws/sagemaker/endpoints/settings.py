"""Options of the local SageMaker endpoints (:func:`configure`), and where their values come from.

``work_root``, ``time_scale`` and the workers per variant have defaults from the environment
(``$AUTOLOOP_LOCAL_HOME``, ``$AUTOLOOP_ENDPOINT_TIME_SCALE``) or the machine (CPU count);
the rest are plain numbers. :data:`SETTINGS` holds them for the other modules of the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localaws import local_home
from localaws.sagemaker.endpoints.fleet import default_workers

ENV_TIME_SCALE = "AUTOLOOP_ENDPOINT_TIME_SCALE"


@dataclass
class Settings:
    """The options; see :func:`configure`."""

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


SETTINGS = Settings()
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
        SETTINGS.work_root = None if work_root is None else Path(work_root).resolve()
    if workers_per_variant is not _UNSET:
        SETTINGS.workers_per_variant = None if workers_per_variant is None else max(1, int(workers_per_variant))
    if time_scale is not _UNSET:
        SETTINGS.time_scale = None if time_scale is None else max(0.0, float(time_scale))
    if invocation_timeout is not None:
        SETTINGS.invocation_timeout = float(invocation_timeout)
    if drain_timeout is not None:
        SETTINGS.drain_timeout = float(drain_timeout)
    if capture_flush_records is not None:
        SETTINGS.capture_flush_records = max(1, int(capture_flush_records))
    if capture_flush_seconds is not None:
        SETTINGS.capture_flush_seconds = max(0.0, float(capture_flush_seconds))
    if metrics_interval is not None:
        SETTINGS.metrics_interval = max(0.05, float(metrics_interval))
    if alarm_poll_seconds is not None:
        SETTINGS.alarm_poll_seconds = max(0.0, float(alarm_poll_seconds))
    if server_fast_path is not None:
        SETTINGS.server_fast_path = bool(server_fast_path)
    if event_bus is not None:
        SETTINGS.event_bus = event_bus


def work_root() -> Path:
    """Where ``endpoints/<endpoint>/...`` sandboxes go."""
    if SETTINGS.work_root is not None:
        return SETTINGS.work_root
    return local_home()


def time_scale() -> float:
    """The factor for deployment waits."""
    if SETTINGS.time_scale is not None:
        return SETTINGS.time_scale
    try:
        return max(0.0, float(os.environ.get(ENV_TIME_SCALE) or 1.0))
    except ValueError:
        return 1.0


def workers() -> int:
    """Model-server processes per variant, unless the Model sets its own."""
    return SETTINGS.workers_per_variant or default_workers()
