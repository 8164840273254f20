"""The server fast path: invocations answered before moto's dispatch.

moto's stock route for ``POST /endpoints/<name>/invocations`` does a per-request service
lookup and a Flask dispatch (about 270 requests/s on this machine even for its static body),
and werkzeug closes every connection after one response. For an endpoint served locally,
:func:`wrap_dispatcher` (``DomainDispatcherApplication.__call__``) answers the invocation
before that lookup, and :func:`wrap_run_wsgi` (``MotoRequestHandler.run_wsgi``) answers it
in the server's request handler itself, on a kept-alive connection. Anything else, and
every request when ``configure(server_fast_path=False)``, goes to moto as before.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from localaws.sagemaker.endpoints.replies import Reply
from localaws.sagemaker.endpoints.runtime import lookup
from localaws.sagemaker.endpoints.settings import SETTINGS

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
    runtime = lookup(_account_for(headers, scope.group(1)), scope.group(2), unquote(name))
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


def wrap_dispatcher(original: Callable[..., Any]) -> Callable[..., Any]:
    """``DomainDispatcherApplication.__call__`` answering served invocations first."""
    def dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if SETTINGS.server_fast_path and environ.get("REQUEST_METHOD") == "POST":
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


def wrap_run_wsgi(original: Callable[..., Any]) -> Callable[..., Any]:
    """The server's request handler answers invocations itself, on a kept-alive connection.

    werkzeug's handler (moto's server) ends every response with ``Connection: close``, so each
    call of a client costs a TCP connect, a new server thread and a teardown: about half of
    what a single-row invocation costs the server here. An invocation has a ``Content-Length``
    body that is read whole, so the connection is safe to reuse (werkzeug closes because it
    cannot drain an unread body). Everything else still goes through werkzeug and moto."""

    def run_wsgi(self: Any) -> Any:
        if SETTINGS.server_fast_path and self.command == "POST" and self.request_version == "HTTP/1.1":
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
