"""Operations the local AWS does not implement answer as AWS answers errors, naming the operation.

The gap in moto (5.2.5), server mode: an operation moto lacks raises ``NotImplementedError``
(``moto/core/responses.py: BaseResponse.call_action``, or a backend method), which moto's
Flask app (``moto/moto_server/werkzeug_app.py``, ``debug = True``) lets through to Werkzeug:
an HTML "500 Internal Server Error" page. botocore cannot parse it, and retries it as a
server error (four requests with the standard retry mode) before raising a ``ClientError``
whose code is ``500``. A REST path no route matches gets Flask's HTML 404 page.

:func:`install` wraps ``DomainDispatcherApplication.get_application`` so that each service's
Flask app gets two error handlers (once per app):

- ``NotImplementedError`` -> HTTP 501, code ``NotImplemented``;
- a path no route of the service matches -> HTTP 501 ``NotImplemented`` when botocore's model
  of the service names an operation for it, else HTTP 404 ``UnknownOperationException``,

in the error format of the service's protocol, so botocore (and the AWS CLI and the SDKs)
parse the code and message and raise at once, without retrying (501 and 404 are not retried):

- ``json`` (``X-Amz-Target``) and ``rest-json``: ``{"__type": code, "message": ...}`` with the
  ``x-amzn-ErrorType`` header;
- ``query``: ``<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/>``;
- ``ec2``: ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>``;
- ``rest-xml`` (S3): ``<Error><Code/><Message/><RequestId/></Error>``.

The message names the service and operation, says that it is the local AWS that lacks it,
and what to do. In-process (``moto.mock_aws``) the ``NotImplementedError`` reaches the
caller as it is: there is no wire format to honour.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from xml.sax.saxutils import escape

from localaws.patching import Patches

LOG = logging.getLogger(__name__)

PATCHES = Patches("unsupported_api")
_MARK = "_autoloop_aws_errors"

HINT = "It works on AWS; the README section 'What differs locally' lists what local mode lacks."


#: moto's backend names that are not botocore's service names
BOTOCORE_NAMES = {
    "awslambda": "lambda",
    "sagemakerruntime": "sagemaker-runtime",
    "sagemakermetrics": "sagemaker-metrics",
}


def _action(request: Any) -> str | None:
    action = request.args.get("Action") or (request.form.get("Action") if request.form else None)
    return str(action) if action else None


def _protocol(service: str, request: Any) -> str:
    """The protocol the client used: the request says it for json and query (a service may
    offer several); the service's model for the REST ones."""
    model_protocol = None
    try:
        import botocore.session

        model_protocol = str(botocore.session.get_session().get_service_model(service).protocol)
    except Exception:  # not a botocore service name
        pass
    if request.headers.get("X-Amz-Target"):
        return "json"
    if _action(request):
        return "ec2" if model_protocol == "ec2" else "query"
    return model_protocol if model_protocol in ("rest-json", "rest-xml") else "rest-json"


def _operation(service: str, protocol: str, request: Any) -> str | None:
    target = request.headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    action = _action(request)
    if action:
        return action
    try:
        from moto.core.routing import get_service_router
        from moto.core.utils import normalize_request  # type: ignore[attr-defined]

        operation, _ = get_service_router(service).match(normalize_request(request))
        return str(operation.name)
    except Exception:
        return None


def error_response(
    protocol: str, status: int, code: str, message: str, json_content_type: str | None = None
) -> tuple[str, int, dict[str, str]]:
    """(body, status, headers) of an AWS error in ``protocol``'s format (``json_content_type``:
    the ``application/x-amz-json-1.x`` version the client sent)."""
    request_id = str(uuid.uuid4())
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        content_type = (json_content_type or "application/x-amz-json-1.1") if protocol == "json" else "application/json"
        return body, status, {"Content-Type": content_type, "x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}
    code_x, message_x = escape(code), escape(message)
    if protocol == "ec2":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code_x}</Code>"
                f"<Message>{message_x}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    elif protocol == "rest-xml":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code_x}</Code>"
                f"<Message>{message_x}</Message><RequestId>{request_id}</RequestId></Error>")
    else:  # query
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code_x}</Code><Message>{message_x}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return body, status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}


def _answer(error: Exception, unrouted: bool) -> Any:
    from flask import Response, current_app, request

    moto_name = str(getattr(current_app, "service", "") or "unknown")
    service = BOTOCORE_NAMES.get(moto_name, moto_name)
    protocol = _protocol(service, request)
    operation = _operation(service, protocol, request)
    if operation is None:
        status, code = 404, "UnknownOperationException"
        message = (f"{service}: no operation matches {request.method} {request.path} on the local AWS "
                   "(moto 5.2.5 with Autoloop's extensions). Check the endpoint URL and the client's service.")
    else:
        status, code = 501, "NotImplemented"
        detail = "" if unrouted else f" ({error})" if str(error) else ""
        message = (f"{service} {operation} is not implemented by the local AWS (moto 5.2.5 with Autoloop's "
                   f"extensions){detail}. {HINT}")
    LOG.warning("%s %s answered %d %s", service, operation or request.path, status, code)
    body, status, headers = error_response(protocol, status, code, message, request.headers.get("Content-Type"))
    return Response(body, status=status, headers=headers)


def _not_implemented(error: Exception) -> Any:
    if not PATCHES.active():  # uninstalled after this app got its handlers: moto's own answer
        raise error
    return _answer(error, unrouted=False)


def _not_found(error: Exception) -> Any:
    if not PATCHES.active():
        return error  # Flask's own 404 page
    return _answer(error, unrouted=True)


def _get_application(self: Any, environ: dict[str, Any]) -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    app = PATCHES.original(DomainDispatcherApplication, "get_application")(self, environ)
    if not getattr(app, _MARK, False) and getattr(app, "service", None) not in (None, "moto_api", "instance_metadata"):
        app.register_error_handler(NotImplementedError, _not_implemented)
        app.register_error_handler(404, _not_found)
        setattr(app, _MARK, True)
    return app


def install() -> None:
    """Patch moto's server. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    patches.set(DomainDispatcherApplication, "get_application", _get_application)


uninstall = PATCHES.restore
installed = PATCHES.active
