"""EventBridge Scheduler schedules, fired on demand: the clock local mode does not have.

Gap in moto (5.2.5): ``moto.scheduler`` stores schedules (``CreateSchedule``, ``GetSchedule``;
``AWS::Scheduler::Schedule`` through :mod:`localaws.cloudformation.types`, which SAM's ``ScheduleV2``
events become) but never fires them. On AWS, when a schedule comes due, Scheduler calls its
target's API with the target's ``Input`` after replacing the context attributes
``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>`` (ISO 8601, UTC),
``<aws.scheduler.execution-id>`` and ``<aws.scheduler.attempt-number>``.

:func:`fire` does the same, now, for one schedule. It goes through the API only
(``GetSchedule``, then the target's call), with :func:`localaws.clients.client`, so it works
in-process (``moto.mock_aws``) and from another process against a running local AWS
(``autoloop local fire-schedule``) alike. Templated targets: Step Functions
(``StartExecution``, with a generated execution name, as Scheduler does), Lambda (``Invoke``,
asynchronous), SNS (``Publish``) and SQS (``SendMessage``). Universal targets
(``arn:aws:scheduler:::aws-sdk:...``) and ``SqsParameters`` are not supported (``ValueError``).

Not modelled: flexible time windows (the call is made at once), retries, dead-letter
queues, the target role (IAM is not enforced locally), one-time ``at(...)`` expressions
completing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localaws.clients import client

CONTEXT_ATTRIBUTES = ("schedule-arn", "scheduled-time", "execution-id", "attempt-number")


@dataclass(frozen=True)
class Fired:
    schedule: str
    target: str
    input: str | None
    result: dict[str, Any]

    @property
    def execution_arn(self) -> str | None:
        value = self.result.get("executionArn")
        return str(value) if value else None


def _split(name_or_arn: str, group: str | None) -> tuple[str, str]:
    """``arn:...:schedule/<group>/<name>`` or a plain name (group ``default`` unless given)."""
    if name_or_arn.startswith("arn:"):
        resource = name_or_arn.split(":", 5)[-1]
        parts = resource.split("/")
        if len(parts) != 3 or parts[0] != "schedule":
            raise ValueError(f"not a schedule ARN: {name_or_arn}")
        return parts[1], parts[2]
    return group or "default", name_or_arn


def _stamp(time: datetime | str | None) -> str:
    if isinstance(time, str):
        return time
    when = time or datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def render(text: str | None, context: dict[str, str]) -> str | None:
    """Replace Scheduler's context attributes in a target's ``Input``."""
    if text is None:
        return None
    for attribute in CONTEXT_ATTRIBUTES:
        text = text.replace(f"<aws.scheduler.{attribute}>", context[attribute])
    return text


def get(name_or_arn: str, group: str | None = None) -> dict[str, Any] | None:
    """The schedule (GetSchedule), or None if there is no such schedule."""
    from botocore.exceptions import ClientError

    group_name, name = _split(name_or_arn, group)
    try:
        return dict(client("scheduler").get_schedule(Name=name, GroupName=group_name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"ResourceNotFoundException", "ResourceNotFound"}:
            return None
        raise


def fire(name_or_arn: str, time: datetime | str | None = None, *, group: str | None = None,
         force: bool = False) -> Fired | None:
    """Call the schedule's target as Scheduler does when the schedule comes due at ``time``
    (default now). Returns None for a DISABLED schedule (unless ``force``); raises
    ``KeyError`` for an unknown schedule."""
    schedule = get(name_or_arn, group)
    if schedule is None:
        raise KeyError(f"no schedule {name_or_arn!r} (group {group or 'default'!r})")
    if schedule.get("State") == "DISABLED" and not force:
        return None
    target = dict(schedule["Target"])
    arn = str(target["Arn"])
    context = {
        "schedule-arn": str(schedule["Arn"]),
        "scheduled-time": _stamp(time),
        "execution-id": str(uuid.uuid4()),
        "attempt-number": "1",
    }
    payload = render(target.get("Input"), context)
    service = arn.split(":")[2] if arn.count(":") >= 2 else ""
    if service == "states":
        result = client("stepfunctions").start_execution(
            stateMachineArn=arn, name=context["execution-id"], input=payload if payload is not None else "{}")
    elif service == "lambda":
        result = client("lambda").invoke(FunctionName=arn, InvocationType="Event",
                                         Payload=(payload or "{}").encode("utf-8"))
        result.pop("Payload", None)
    elif service == "sns":
        result = client("sns").publish(TopicArn=arn, Message=payload or "{}")
    elif service == "sqs":
        url = client("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        result = client("sqs").send_message(QueueUrl=url, MessageBody=payload or "{}")
    else:
        raise ValueError(f"schedule {schedule['Name']}: target {arn} is not supported locally "
                         "(Step Functions, Lambda, SNS and SQS are)")
    result.pop("ResponseMetadata", None)
    return Fired(str(schedule["Name"]), arn, payload, json.loads(json.dumps(result, default=str)))
