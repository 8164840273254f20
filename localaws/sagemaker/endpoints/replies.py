"""InvokeEndpoint answers: a reply, and the errors in SageMaker Runtime's wire format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """An InvokeEndpoint HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def error_reply(status: int, code: str, body: dict[str, Any]) -> Reply:
    """A JSON error with its ``x-amzn-ErrorType``."""
    return Reply(
        status,
        {"Content-Type": "application/json", "x-amzn-ErrorType": code},
        json.dumps(body).encode("utf-8"),
    )


def validation_error(message: str) -> Reply:
    return error_reply(400, "ValidationError", {"message": message})


def not_found(name: str, account: str) -> Reply:
    return validation_error(f"Endpoint {name} of account {account} not found.")


def status_of(error_line: str) -> int:
    """The status a model error reports: 415 for ``UnsupportedFormatError``, else 500."""
    kind = error_line.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    return 415 if kind == "UnsupportedFormatError" else 500
