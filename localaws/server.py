"""Start the local AWS: moto with Step Functions execution and the local extensions.

moto alone (5.2.5) does not execute state machines unless configured to, runs Lambda code
only in Docker, does not deliver EventBridge events to Lambda or Step Functions, sleeps
through Wait states in real time, and (in server mode) its Step Functions engine calls
``http://localhost:${MOTO_PORT:-5000}``. This module puts the pieces together:

- :func:`start` runs moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port by default)
  in this process, so the extensions patched into moto's classes apply to it; turns on
  Step Functions execution and keeps moto's Docker-backed Lambda backend selected (the
  one ``lambda_runtime`` hooks; ``awslambda_simple`` runs no code); installs every
  extension of :mod:`localaws.extensions` (:func:`install_extensions`); and points clients
  at it through the environment (``AWS_ENDPOINT_URL``, ``MOTO_PORT``, fake credentials,
  region ``us-east-1`` unless set).
  :meth:`LocalAws.stop` undoes the environment and configuration changes.
- :func:`in_process` is the same for tests without a server: ``moto.mock_aws`` with the
  same configuration, and the extensions installed.

moto's backends are process-global: a server and a ``mock_aws`` context in one process
share (and reset) the same state. :func:`start` resets it by default.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
#: moto configuration local mode needs (the same keys as ``mock_aws(config=...)``).
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": True},  # the Docker-backed backend is the one we hook
}

_start_lock = threading.Lock()
_current: LocalAws | None = None


def current() -> LocalAws | None:
    """The running server started by :func:`start`, if any."""
    return _current


def install_extensions() -> list[str]:
    """Install every local extension of :mod:`localaws.extensions`, in order (idempotent).
    Returns the names installed."""
    from localaws import extensions

    return extensions.install_all()


def _reset_extensions() -> None:
    from localaws.awslambda import runtime as lambda_runtime
    from localaws.events import delivery as eventbridge
    from localaws.logs import shipping as cloudwatch_logs
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    lambda_runtime.reset()
    eventbridge.reset()
    # Serving workers and running jobs belong to the state being reset: stop them now, not
    # at interpreter exit (where no thread can be started to stop them).
    sagemaker_endpoints.stop_all()
    sagemaker_jobs.stop_all_jobs(5.0)
    cloudwatch_logs.reset()


def _finish_async(timeout: float) -> None:
    from localaws.awslambda import runtime as lambda_runtime

    if not lambda_runtime.drain(timeout):
        dropped = lambda_runtime.discard_pending()
        LOG.warning("local AWS stopping: %d asynchronous invocation(s) dropped", dropped)


def _reset_default_boto3_session() -> None:
    # boto3's default session caches credentials and region; start from the new environment
    import boto3

    boto3.DEFAULT_SESSION = None


@dataclass
class LocalAws:
    """A running local AWS (server mode)."""

    endpoint_url: str
    host: str
    port: int
    _server: Any = field(repr=False)
    _saved_env: dict[str, str | None] = field(repr=False, default_factory=dict)
    _saved_config: dict[str, Any] = field(repr=False, default_factory=dict)
    _stopped: bool = field(repr=False, default=False)

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Finish pending asynchronous deliveries (bounded), stop the server, restore the
        environment and moto configuration. Idempotent."""
        global _current
        if self._stopped:
            return
        self._stopped = True
        if _current is self:
            _current = None
        try:
            _finish_async(drain_timeout)
        finally:
            try:
                self._server.stop()
            finally:
                _restore_env(self._saved_env)
                _restore_config(self._saved_config)
                _reset_default_boto3_session()
                _reset_extensions()

    def __enter__(self) -> LocalAws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _apply_env(values: dict[str, str]) -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, old in saved.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _apply_config(config: dict[str, Any]) -> dict[str, Any]:
    from moto.core.config import default_user_config

    saved = {key: default_user_config.get(key) for key in config}
    for key, value in config.items():
        default_user_config[key] = dict(value)  # type: ignore[literal-required]
    return saved


def _restore_config(saved: dict[str, Any]) -> None:
    from moto.core.config import default_user_config

    for key, value in saved.items():
        if value is None:
            default_user_config.pop(key, None)  # type: ignore[misc]
        else:
            default_user_config[key] = value  # type: ignore[literal-required]


def client_environment(endpoint_url: str, port: int) -> dict[str, str]:
    """The environment variables clients (and moto's engine) need for the server."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "MOTO_PORT": str(port),
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or region,
        "AWS_REGION": region,
    }


class PortInUse(OSError):
    """The port asked for is taken."""


def check_port(port: int, host: str = HOST) -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound (``port`` 0 always can).
    moto's server binds in its own thread and, when that fails, never reports ready, so a
    taken port is caught here, before it starts."""
    import errno
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(exc.errno, f"port {port} on {host} is in use") from None
            raise


def set_time_scale(scale: float | None) -> None:
    """One factor for the emulator's delays (None: back to each one's default): Step Functions
    Wait states and Retry intervals (:mod:`localaws.stepfunctions.clock`) and the endpoints'
    deployment waits (bake, termination wait and deployment timeout,
    :mod:`localaws.sagemaker.endpoints.settings`). Schedules take the same factor through
    :class:`localaws.scheduler.clock.ScheduleClock`. Timeouts of real work (task, job and
    invocation timeouts) are not scaled."""
    from localaws.sagemaker.endpoints import settings as endpoint_settings
    from localaws.stepfunctions import clock as sfn_clock

    if scale is not None and not scale >= 0:
        raise ValueError(f"the time scale must be a number >= 0, got {scale}")
    sfn_clock.set_time_scale(scale)
    endpoint_settings.configure(time_scale=scale)


def start(port: int = 0, *, reset: bool = True, quiet: bool = True) -> LocalAws:
    """Start moto's server on 127.0.0.1 (``port=0``: a free port), configured and extended
    for local mode, with this process's environment pointing at it. Raises
    :class:`PortInUse` when ``port`` is taken."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    global _current
    check_port(port)
    with _start_lock:
        if quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        install_extensions()
        saved_config = _apply_config(MOTO_CONFIG)
        if reset:
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
            _reset_extensions()
        server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=not quiet)
        server.start()
        host, bound = server.get_host_and_port()
        endpoint = f"http://{HOST}:{bound}"
        saved_env = _apply_env(client_environment(endpoint, bound))
        _reset_default_boto3_session()
        _current = LocalAws(
            endpoint_url=endpoint,
            host=host,
            port=bound,
            _server=server,
            _saved_env=saved_env,
            _saved_config=saved_config,
        )
        return _current


@contextmanager
def in_process(drain_timeout: float = 5.0) -> Iterator[None]:
    """``moto.mock_aws`` with Step Functions execution on, and the extensions installed
    (for tests). Pending asynchronous deliveries are finished (bounded) or dropped before
    the mock stops, so none reaches a reset backend or real AWS."""
    from moto import mock_aws

    install_extensions()
    _reset_extensions()
    # requests must be intercepted, not sent to a server some earlier code pointed at
    saved_env = {key: os.environ.pop(key, None) for key in ("AWS_ENDPOINT_URL",)}
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        saved_env["AWS_DEFAULT_REGION"] = None
        os.environ["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    try:
        with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
            try:
                yield
            finally:
                _finish_async(drain_timeout)
                _reset_extensions()
    finally:
        _restore_env(saved_env)
