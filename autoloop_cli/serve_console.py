"""What `autoloop local serve` prints while it runs: one line per run event and notification.

Pure formatting (no AWS, no emulator): the serve command feeds it the Step Functions
execution events (in the shape Step Functions writes to CloudWatch Logs), the SNS
notifications and the schedules the local clock fired.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

#: execution events worth a line: start, each state entered, and the end
_ENDINGS = {
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED OUT",
}
MAX_REASON = 200


def _clock(millis: Any) -> str:
    try:
        when = dt.datetime.fromtimestamp(int(millis) / 1000, dt.UTC)
    except (TypeError, ValueError):
        when = dt.datetime.now(dt.UTC)
    return when.strftime("%H:%M:%S")


def one_line(text: Any, limit: int = MAX_REASON) -> str:
    """The first non-empty line of ``text``, shortened to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def reason(error: Any, cause: Any) -> str:
    """A failure's one-line reason: the error name and the cause's message (a Lambda error's
    cause is JSON with ``errorMessage``)."""
    message = cause
    if isinstance(cause, str) and cause.lstrip().startswith("{"):
        try:
            parsed = json.loads(cause)
            message = parsed.get("errorMessage") or parsed.get("Cause") or parsed.get("message") or cause
        except (ValueError, AttributeError):
            pass
    text = one_line(message)
    if error and text:
        return f"{error}: {text}"
    return str(error or text or "no reason given")


def execution_line(record: dict[str, Any], state_machine: str) -> str | None:
    """The console line for one execution event, or None for events not worth one."""
    kind = str(record.get("type", ""))
    details = record.get("details") or {}
    execution = str(record.get("execution_arn", "")).rsplit(":", 1)[-1]
    prefix = f"{_clock(record.get('event_timestamp'))} {state_machine} {execution}"
    if kind == "ExecutionStarted":
        return f"{prefix} started"
    if kind.endswith("StateEntered") and details.get("name"):
        return f"{prefix} -> {details['name']}"
    if kind in _ENDINGS:
        if kind == "ExecutionSucceeded":
            return f"{prefix} succeeded"
        return f"{prefix} {_ENDINGS[kind]}: {reason(details.get('error'), details.get('cause'))}"
    return None


def notification_line(note: dict[str, Any]) -> str:
    """The console line for one SNS notification: its topic and its subject, else its first line."""
    topic = str(note.get("topic_arn", "")).rsplit(":", 1)[-1]
    text = note.get("subject") or one_line(note.get("message"))
    return f"{dt.datetime.now(dt.UTC):%H:%M:%S} notification {topic}: {one_line(text)}"


def schedule_line(kind: str, name: str, scheduled_time: dt.datetime, result: str | None, error: str | None) -> str:
    """The console line for a schedule the local clock fired."""
    what = f"{dt.datetime.now(dt.UTC):%H:%M:%S} schedule {name} ({kind}) fired for {scheduled_time:%Y-%m-%dT%H:%M:%SZ}"
    if error:
        return f"{what}: FAILED: {one_line(error)}"
    return f"{what} -> {result}" if result else what
