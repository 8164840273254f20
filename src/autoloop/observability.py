"""Powertools singletons. Creating them makes no AWS client; X-Ray patches boto lazily.

Powertools' ``Tracer()`` imports the X-Ray SDK (``aws_xray_sdk.core``, about 150 ms of a cold
start) when it is constructed, even when tracing is disabled. So when Powertools' own rule says
tracing is off (``POWERTOOLS_TRACE_DISABLED``, outside Lambda, under SAM local or Chalice),
``tracer`` is a stand-in with the same decorators that imports nothing and adds nothing; a
disabled Tracer records nothing either. In Lambda with tracing on it is the real ``Tracer``,
built at import as before, so traces are unchanged: the ``## handler`` subsegment with its
``ColdStart`` and ``Service`` annotations and error metadata, and the patched boto calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer


class _DisabledTracer:
    """The part of ``Tracer``'s interface Autoloop uses, as no-ops (tracing is off)."""

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler

    def capture_method(
        self,
        method: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        if method is None:
            return lambda function: function
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None


def _tracer() -> Tracer:
    if Tracer._is_tracer_disabled():
        return cast(Tracer, _DisabledTracer())
    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()
