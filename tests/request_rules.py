"""AWS's own constraints on request values, checked before AWS sees the request.

botocore validates a request's types, required members and minimum lengths on the client,
but not its string patterns, maximum lengths or enums; moto checks almost none of them. AWS
does, on the server, and says so only when the request is made: after the paid jobs before
it. :func:`violations` checks a request against everything the service model states about
it: every string against its shape's ``pattern`` (a Java regular expression, translated
here), its ``min``/``max`` length (in UTF-16 units, as Java counts) and its enum; every list
and map against its ``min``/``max`` size; every number against its ``min``/``max``; recursively,
map keys included. :data:`DOCUMENTED_RULES` adds the few constraints the documentation states
and the model does not.

:func:`recording` records the requests that the project's own code (``src/autoloop``,
``functions/``) sends through any botocore client, whatever created the client.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.client
import botocore.handlers
import botocore.session
import regex
from botocore.model import OperationModel, Shape

ROOT = Path(__file__).resolve().parents[1]
PROJECT_CODE = (str(ROOT / "src" / "autoloop") + "/", str(ROOT / "functions") + "/")

# Java's ASCII-only classes (Pattern without UNICODE_CHARACTER_CLASS), as explicit sets:
# Python's \d, \w, \s and the regex module's \p{Alnum} etc. are Unicode-wide.
_JAVA_CLASSES = {
    r"\d": "0-9", r"\w": "a-zA-Z0-9_", r"\s": " \\t\\n\\x0B\\f\\r",
    r"\p{Alnum}": "a-zA-Z0-9", r"\p{Alpha}": "a-zA-Z", r"\p{Digit}": "0-9", r"\p{Lower}": "a-z",
    r"\p{Upper}": "A-Z", r"\p{ASCII}": "\\x00-\\x7F", r"\p{Print}": "\\x20-\\x7E", r"\p{Graph}": "\\x21-\\x7E",
    r"\p{Punct}": "!-/:-@\\[-`{-~", r"\p{Space}": " \\t\\n\\x0B\\f\\r",
}
_NEGATED = {r"\D": r"\d", r"\W": r"\w", r"\S": r"\s"}
# Java writes a supplementary code point as its UTF-16 surrogate pair.
_SURROGATE_RANGE = (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")


def translate(pattern: str) -> str:
    """A Java regular expression of a service model as a pattern of the ``regex`` module
    (version 1, which has Java's nested and intersected character classes)."""
    text = pattern.replace(*_SURROGATE_RANGE)
    out: list[str] = []
    depth = 0  # inside [...]
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            token = text[i:i + 2]
            if token == r"\p" and text[i + 2:i + 3] == "{":
                token = text[i:text.index("}", i) + 1]
            if token in _JAVA_CLASSES:
                body = _JAVA_CLASSES[token]
                out.append(body if depth else f"[{body}]")
            elif token in _NEGATED:
                out.append(f"[^{_JAVA_CLASSES[_NEGATED[token]]}]")  # a nested set inside [...] (V1)
            else:
                out.append(token)
            i += len(token)
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        out.append(char)
        i += 1
    return "".join(out)


@functools.cache
def compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(translate(pattern), flags=regex.V1)


def java_length(value: str) -> int:
    """String length as AWS (Java) counts it: UTF-16 code units."""
    return len(value.encode("utf-16-le")) // 2


@functools.cache
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True)
class DocumentedRule:
    """A constraint the API reference states for a member and the service model does not encode."""

    why: str
    check: Callable[[Any], bool]


# (service, operation, member) -> rule. Each names the documentation sentence it encodes.
DOCUMENTED_RULES: dict[tuple[str, str, str], DocumentedRule] = {
    ("stepfunctions", "StartExecution", "name"): DocumentedRule(
        "StartExecution: 'To enable logging with CloudWatch Logs, the name should only contain 0-9, A-Z, a-z, - "
        "and _' (the state machines log)",
        lambda v: isinstance(v, str) and bool(regex.fullmatch(r"[0-9A-Za-z_-]{1,80}", v)),
    ),
}


def violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Every constraint of the service model (and :data:`DOCUMENTED_RULES`) that ``params``
    breaks, one line each: ``Operation.Path.To[2].Member: what is wrong``."""
    op: OperationModel = service_model(service).operation_model(operation)
    found: list[str] = []
    if op.input_shape is not None:
        _check(op.input_shape, params, operation, found)
    for (svc, name, member), rule in DOCUMENTED_RULES.items():
        if (svc, name) == (service, operation) and member in params and not rule.check(params[member]):
            found.append(f"{operation}.{member}: {params[member]!r} breaks a documented rule: {rule.why}")
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _bounds(shape: Shape, size: int | float, what: str, where: str, found: list[str], value: Any) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        found.append(f"{where}: {what} {size} is below the minimum {low} ({_short(value)})")
    if high is not None and size > high:
        found.append(f"{where}: {what} {size} is above the maximum {high} ({_short(value)})")


def _check(shape: Shape, value: Any, where: str, found: list[str]) -> None:
    kind = shape.type_name
    if value is None:
        return
    if kind == "structure":
        if not isinstance(value, dict):
            found.append(f"{where}: expected a structure, got {_short(value)}")
            return
        members = shape.members  # type: ignore[attr-defined]
        for name, member_value in value.items():
            if name in members:
                _check(members[name], member_value, f"{where}.{name}", found)
            else:
                found.append(f"{where}: {name!r} is not a member of {shape.name}")
    elif kind == "list":
        if not isinstance(value, list | tuple):
            found.append(f"{where}: expected a list, got {_short(value)}")
            return
        _bounds(shape, len(value), "list length", where, found, value)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{where}[{index}]", found)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            found.append(f"{where}: expected a map, got {_short(value)}")
            return
        _bounds(shape, len(value), "map size", where, found, value)
        for key, item in value.items():
            _check(shape.key, key, f"{where} key {key!r}", found)  # type: ignore[attr-defined]
            _check(shape.value, item, f"{where}[{key!r}]", found)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{where}: expected a string, got {_short(value)}")
            return
        _bounds(shape, java_length(value), "length", where, found, value)
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not compiled(pattern).fullmatch(value):
            found.append(f"{where}: {_short(value)} does not match the pattern {pattern}")
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum:
            found.append(f"{where}: {_short(value)} is not one of {sorted(enum)}")
    elif kind in {"integer", "long", "float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            found.append(f"{where}: expected a number, got {_short(value)}")
            return
        _bounds(shape, value, "value", where, found, value)
    elif kind == "blob" and isinstance(value, bytes | str):
        _bounds(shape, len(value), "size", where, found, value)


# --------------------------------------------------------------------------- recording
@dataclass(frozen=True)
class Request:
    service: str  # botocore's name: "sagemaker", "s3", "stepfunctions", "dynamodb", ...
    operation: str  # the API's name: "CreateProcessingJob"
    method: str  # boto3's: "create_processing_job"
    params: dict[str, Any]
    caller: str  # the project's innermost frame that led to it: "src/autoloop/jobs.py:120"

    def violations(self) -> list[str]:
        return violations(self.service, self.operation, self.params)


@dataclass
class Recorder:
    requests: list[Request] = field(default_factory=list)

    def calls(self) -> set[tuple[str, str]]:
        """(service, boto3 method) of every request recorded."""
        return {(r.service, r.method) for r in self.requests}

    def violations(self) -> list[str]:
        return [f"{r.service}.{r.method} from {r.caller}: {v}" for r in self.requests for v in r.violations()]


def _project_caller(code: tuple[str, ...] = PROJECT_CODE) -> str | None:
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(code):
            return f"{Path(filename).relative_to(ROOT)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


@contextmanager
def recording(code: tuple[str, ...] = PROJECT_CODE) -> Iterator[Recorder]:
    """Record every request that code in ``src/autoloop`` or ``functions/`` (or the folders of
    ``code``) sends (directly or through helpers it calls), in any thread, through any botocore
    client. The request is recorded before it is sent, so one that AWS (or moto) then refuses is
    recorded too."""
    recorder = Recorder()
    original = botocore.client.BaseClient._make_api_call
    methods: dict[tuple[str, str], str] = {}

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        caller = _project_caller(code)
        if caller is not None:
            service = self.meta.service_model.service_name
            key = (service, operation_name)
            if key not in methods:
                methods[key] = next(m for m, op in self.meta.method_to_api_mapping.items() if op == operation_name)
            params = dict(api_params)
            if service == "s3" and isinstance(params.get("CopySource"), dict):
                # boto3 takes CopySource as a dict and writes it as the header string itself
                # (a before-parameter-build handler, after this point): check what it sends.
                botocore.handlers.handle_copy_source_param(params)
            recorder.requests.append(Request(service, operation_name, methods[key], params, caller))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
