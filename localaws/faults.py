"""Fault injection for the local AWS: make a given AWS call, Lambda function or SageMaker job fail.

There is no fault injection in moto (5.2.5), and AWS's own (Fault Injection Service) does not
reach the APIs Autoloop calls. The fault-injection matrix (``tests/e2e/test_fault_matrix.py``)
needs three kinds, each injected where the real fault would happen, so that the code under
test (handlers, state machines, retry policies) sees exactly what it would see on AWS:

- :func:`aws_error`: the *service* answers one operation with an error, e.g. S3 ``GetObject``
  with ``InternalError`` (500) or ``SlowDown`` (503), SageMaker ``CreateModelPackage`` with
  ``ThrottlingException`` or ``ValidationException`` (400), EventBridge ``PutEvents`` with
  ``InternalFailure``. It wraps moto's server (``DomainDispatcherApplication.__call__``, the
  WSGI entry of ``ThreadedMotoServer``), so it applies to every client of the server: the
  handlers' boto3 clients, the Step Functions engine's integrations, the local SageMaker
  runner. The error is written in the service's wire protocol (S3 REST-XML, JSON with
  ``__type`` and ``x-amzn-ErrorType``, query XML, REST-JSON), so botocore parses it into the
  same ``ClientError`` (code, message, HTTP status) as from AWS, and applies its own retries
  to it as usual. Server mode only (``localaws.server.start``), not ``mock_aws``.
- :func:`lambda_error` / :func:`lambda_timeout`: a function's invocation raises a named
  error, or runs past the function's configured ``Timeout`` (the invocation then ends as a
  Lambda timeout, ``Sandbox.Timedout``), through ``localaws.awslambda.runtime.set_fault_hook``.
  The handler itself does not run for a faulted invocation.
- :func:`job_failure`: a SageMaker processing, training or transform job ends ``Failed``
  with a given ``FailureReason`` (through ``localaws.sagemaker.jobs.runner.set_fault_hook``), with
  its InProgress and Failed state-change events, as when its container exits non-zero.

Every fault matches a target (service + operation + an optional ``match`` on the request;
a function name; a job name) and fires ``times`` times (``None``: until cleared). A
:class:`Fault` counts its hits and records when it first and last fired, and is a context
manager that clears it on exit. :func:`clear_all` removes every fault.

SDK retry backoff: botocore's standard retry mode sleeps ``random() * 2**attempt`` seconds
between its own attempts. Like Step Functions' Retry intervals (``localaws.stepfunctions.clock``), that
is a pure delay, so :func:`install` scales it by the same factor (``sfn_time.time_scale()``,
patched into ``botocore.retries.standard.ExponentialBackoff.delay_amount``): with the
factor at 0.01 a throttled call still takes its 4 attempts, only without the seconds of
sleep between them. At 1.0 nothing changes.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from localaws.patching import Patches

#: HTTP status AWS uses for an error code (others: 400).
STATUS = {
    "InternalError": 500, "InternalFailure": 500, "InternalServerError": 500, "ServiceUnavailable": 503,
    "SlowDown": 503, "AccessDenied": 403, "NoSuchKey": 404, "TooManyRequestsException": 429,
    "ServiceException": 500,
}
MESSAGES = {
    "InternalError": "We encountered an internal error. Please try again.",
    "SlowDown": "Please reduce your request rate.",
    "ThrottlingException": "Rate exceeded",
    "Throttling": "Rate exceeded",
    "AccessDenied": "Access Denied",
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
    "TooManyRequestsException": "Rate Exceeded.",
}
SLEEP_SLICE = 0.02  # seconds; a faulted handler sleeps in slices so the runtime's timeout interrupts it


@dataclass
class Request:
    """What a fault can match on, from one HTTP request to the local AWS."""

    service: str  # the SigV4 signing name: s3, sagemaker, states, events, lambda, ...
    operation: str  # GetObject, CreateModelPackage, PutEvents, Invoke, ... (else "<METHOD> <path>")
    method: str
    path: str  # URL-decoded, e.g. /bucket/incoming/churn/x.csv
    query: str
    body: str  # as text (JSON and query protocols; empty for S3 bodies)
    protocol: str  # rest-xml | json | query | rest-json


@dataclass(eq=False)
class Fault:
    """One injected fault. ``times`` None: fires until cleared."""

    kind: str  # aws | lambda | job
    target: str
    error: str
    message: str
    times: int | None
    matcher: Callable[..., bool] = field(repr=False)
    status: int = 400
    hits: int = 0
    first_hit: float | None = None  # time.time()
    last_hit: float | None = None
    injected_at: float = field(default_factory=time.time)
    _active: bool = True

    def _claim(self, *args: Any) -> bool:
        with _lock:
            if not self._active or (self.times is not None and self.hits >= self.times):
                return False
            if not self.matcher(*args):
                return False
            self.hits += 1
            now = time.time()
            self.first_hit = self.first_hit or now
            self.last_hit = now
            return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def clear(self) -> None:
        with _lock:
            self._active = False
            if self in _faults:
                _faults.remove(self)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


_lock = threading.RLock()
_faults: list[Fault] = []
PATCHES = Patches("faults")


def _add(fault: Fault) -> Fault:
    install()
    with _lock:
        _faults.append(fault)
    return fault


def active() -> list[Fault]:
    with _lock:
        return list(_faults)


def clear_all() -> None:
    with _lock:
        for fault in list(_faults):
            fault._active = False
        _faults.clear()


# --------------------------------------------------------------------------- AWS API errors


def aws_error(service: str, operation: str, error: str = "InternalError", *, times: int | None = None,
              match: str | Callable[[Request], bool] | None = None, message: str | None = None,
              status: int | None = None) -> Fault:
    """The next ``times`` requests of ``service`` ``operation`` (that ``match``: a substring of
    the path, query or body, or a predicate on :class:`Request`) get the error ``error``."""

    def matcher(request: Request) -> bool:
        if request.service != service or request.operation != operation:
            return False
        if match is None:
            return True
        if callable(match):
            return bool(match(request))
        return match in request.path or match in request.query or match in request.body

    return _add(Fault("aws", f"{service}:{operation}", error, message or MESSAGES.get(error, f"injected {error}"),
                      times, matcher, status or STATUS.get(error, 400)))


_S3_SUBRESOURCES = ("tagging", "acl", "uploads", "uploadId", "attributes", "retention", "legal-hold")


def _s3_operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    parts = path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    if any(sub in query for sub in _S3_SUBRESOURCES):
        return f"{method} {path}"
    if has_key:
        if method == "PUT":
            return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{method} {path}")
    if method == "GET":
        if "versions" in query:
            return "ListObjectVersions"
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, f"{method} {path}")


def _rest_json_operation(service: str, method: str, path: str) -> str:
    if service == "lambda" and method == "POST" and re.fullmatch(r"/[^/]+/functions/[^/]+/invocations", path):
        return "Invoke"
    if service == "sagemaker" and method == "POST" and re.fullmatch(r"/endpoints/[^/]+/invocations", path):
        return "InvokeEndpoint"
    return f"{method} {path}"


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    return bytes(body)


def _request(environ: dict[str, Any]) -> Request | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
    if not found:
        return None
    service = found.group(1).lower()
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = unquote(environ.get("PATH_INFO", "") or "")
    raw_query = environ.get("QUERY_STRING", "") or ""
    query = parse_qs(raw_query, keep_blank_values=True)
    headers = {k[5:].lower().replace("_", "-"): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    target = environ.get("HTTP_X_AMZ_TARGET")
    content_type = environ.get("CONTENT_TYPE", "") or ""
    if service == "s3":
        return Request(service, _s3_operation(method, path, query, headers), method, path, unquote(raw_query), "",
                       "rest-xml")
    body = _read_body(environ).decode("utf-8", errors="replace")
    if target:
        return Request(service, target.split(".", 1)[-1], method, path, raw_query, body, "json")
    if content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body).get("Action", [""])[0]
        return Request(service, action or f"{method} {path}", method, path, raw_query, unquote(body), "query")
    return Request(service, _rest_json_operation(service, method, path), method, path, raw_query, body, "rest-json")


def _error_response(fault: Fault, request: Request) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = uuid.uuid4().hex.upper()[:16]
    status = f"{fault.status} Injected"
    if request.protocol == "rest-xml":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.error}</Code>'
                f"<Message>{fault.message}</Message><RequestId>{request_id}</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        if request.method == "HEAD":
            body = b""
    elif request.protocol == "query":
        kind = "Receiver" if fault.status >= 500 else "Sender"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>{kind}</Type>'
                f"<Code>{fault.error}</Code><Message>{fault.message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        content = "application/x-amz-json-1.1" if request.protocol == "json" else "application/json"
        body = json.dumps({"__type": fault.error, "message": fault.message}).encode()
        headers = [("Content-Type", content), ("x-amzn-ErrorType", fault.error), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    with _lock:
        candidates = [f for f in _faults if f.kind == "aws"]
    if candidates:
        request = _request(environ)
        if request is not None:
            for fault in candidates:
                if fault._claim(request):
                    status, headers, body = _error_response(fault, request)
                    start_response(status, headers)
                    return [body]
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    return PATCHES.original(DomainDispatcherApplication, "__call__")(self, environ, start_response)


# --------------------------------------------------------------------------- Lambda


def lambda_error(function: str, error: str = "InjectedFault", message: str = "injected fault", *,
                 times: int | None = None) -> Fault:
    """The next ``times`` invocations of ``function`` (its exact name) fail with ``error``."""
    return _add(Fault("lambda", function, error, message, times, lambda name: name == function))


def lambda_timeout(function: str, *, times: int | None = None) -> Fault:
    """The next ``times`` invocations of ``function`` run past its configured ``Timeout``."""
    return _add(Fault("lambda", function, "Sandbox.Timedout", "runs past the function's Timeout", times,
                      lambda name: name == function))


class InjectedLambdaError(Exception):
    """Raised in place of a handler; reported under the fault's error name."""


def _lambda_hook(function_name: str, event: Any, context: Any) -> None:
    with _lock:
        candidates = [f for f in _faults if f.kind == "lambda"]
    for fault in candidates:
        if not fault._claim(function_name):
            continue
        if fault.error == "Sandbox.Timedout":
            # Sleep in slices: the runtime interrupts the thread at its Timeout.
            deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 + 30
            while time.monotonic() < deadline:
                time.sleep(SLEEP_SLICE)
            return
        error = type(fault.error.replace(".", "_"), (InjectedLambdaError,), {})
        error.__name__ = fault.error  # Step Functions matches on the class name
        raise error(fault.message)


# --------------------------------------------------------------------------- SageMaker jobs


def job_failure(match: str, reason: str = "AlgorithmError: injected fault: the script exited with code 1",
                *, kind: str | None = None, times: int | None = None) -> Fault:
    """The next ``times`` jobs whose name contains ``match`` (of ``kind``, if given) fail."""
    return _add(Fault("job", match, "Failed", reason, times,
                      lambda job_kind, name: match in name and (kind is None or job_kind == kind)))


def _job_hook(kind: str, name: str) -> str | None:
    with _lock:
        candidates = [f for f in _faults if f.kind == "job"]
    for fault in candidates:
        if fault._claim(kind, name):
            return fault.message
    return None


# --------------------------------------------------------------------------- install


def _scaled_delay(self: Any, context: Any) -> float:
    from botocore.retries import standard

    from localaws.stepfunctions import clock as sfn_time

    delay = PATCHES.original(standard.ExponentialBackoff, "delay_amount")(self, context)
    return float(delay) * sfn_time.time_scale()


def install() -> None:
    """Install the hooks (idempotent). :func:`aws_error` and friends call it.

    If another extension's uninstall put back a ``__call__`` from before ours, the hook is
    gone although it was installed once: :meth:`PATCHES.active() <localaws.patching.Patches.active>`
    checks the classes, not a flag, so this installs it again."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from botocore.retries import standard
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from localaws.awslambda import runtime as lambda_runtime
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    patches.set(DomainDispatcherApplication, "__call__", _call)
    patches.set(standard.ExponentialBackoff, "delay_amount", _scaled_delay)
    lambda_runtime.set_fault_hook(_lambda_hook)
    sagemaker_jobs.set_fault_hook(_job_hook)


def uninstall() -> None:
    with _lock:
        if not PATCHES.restore():
            return
        from localaws.awslambda import runtime as lambda_runtime
        from localaws.sagemaker.jobs import runner as sagemaker_jobs

        clear_all()
        lambda_runtime.set_fault_hook(None)
        sagemaker_jobs.set_fault_hook(None)


installed = PATCHES.active


def wait_for_hits(fault: Fault, hits: int = 1, timeout: float = 30.0) -> bool:
    """Wait until ``fault`` has fired ``hits`` times (bounded)."""
    deadline = time.monotonic() + timeout
    while fault.hits < hits:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
