"""EventBridge delivery to Lambda, Step Functions and SNS targets, and schedules on demand.

The gaps in moto (5.2.5), ``moto/events/models.py: Rule.send_to_targets``:

- it delivers only to log groups, archives, SQS queues, event buses and API destinations;
  a Lambda or state machine target raises ``NotImplementedError`` (``put_events`` fails,
  and S3's EventBridge notifications swallow the error, so nothing happens);
- it delivers for DISABLED rules too;
- a rule with only a ``ScheduleExpression`` has an empty pattern, which matches every event;
- moto has no clock, so schedules never fire;
- only ``InputTransformer`` is applied (not ``Input``/``InputPath``), and not at all for S3
  events.

:func:`install` (idempotent) replaces ``Rule.send_to_targets``. For a rule that is ENABLED,
has an event pattern (schedule-only rules never match ordinary events) and matches:

- Lambda targets are invoked asynchronously, as EventBridge does: ``Invoke`` with
  ``InvocationType=Event``. With ``localaws.awslambda.runtime`` installed that queues the
  invocation onto its background worker, which applies Lambda's asynchronous retry
  semantics (simplified: invoke, on error retry up to 2 times, then log). :func:`drain`
  waits for that queue (bounded).
- Step Functions targets: ``StartExecution`` with the event (or the target's ``Input`` /
  ``InputPath`` / ``InputTransformer``), during the delivery (the execution itself runs on
  moto's own thread).
- SNS targets: ``Publish`` with the event (or the transformed input) as the message.
- Every other target type goes to moto's own delivery unchanged (with only those targets);
  a type moto does not support either is logged and skipped, so ``PutEvents`` never fails
  because of a target, as on AWS.

Deliveries use ``localaws.clients.client`` (the local endpoint in server mode, moto's
interception in-process). A delivery error is logged (logger ``localaws.events.delivery``) and
recorded in :func:`failures`; it never fails the event's producer.

:func:`fire_schedule` sends a real-shaped "Scheduled Event" to one schedule rule's targets
(only that rule's, as AWS does).

moto's S3 also emits "Object Tags Added" on every PutObject (tags or not), so a rule meant
for new objects should match ``detail-type`` "Object Created", as it should on AWS anyway.

Limitations: no DLQ, no retry policy per target, no ``RoleArn`` checks; moto's S3
notification sends to the rules of every bus, not only the default one; the ``time`` field
is rendered at second resolution.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time as _time
import uuid
from datetime import UTC, datetime
from typing import Any

from localaws.clients import client
from localaws.patching import Patches

LOG = logging.getLogger(__name__)

PATCHES = Patches("eventbridge")
_failures: list[dict[str, Any]] = []
_failures_lock = threading.Lock()
_delivered: list[dict[str, Any]] = []

_OURS = ("lambda", "states", "sns")
# moto.events.utils._BASE_EVENT_MESSAGE["id"], which S3 notifications keep
_MOTO_PLACEHOLDER_ID = "17793124-05d4-b198-2fde-7ededc63b103"


# --------------------------------------------------------------------------- public API


def install() -> None:
    """Patch ``Rule.send_to_targets``. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.events.models import Rule

    patches.set(Rule, "send_to_targets", _send_to_targets)


uninstall = PATCHES.restore
installed = PATCHES.active


def drain(timeout: float = 30.0) -> bool:
    """Wait (at most ``timeout`` seconds) until asynchronous deliveries (Lambda targets) have
    run. Returns False if some are still pending."""
    try:
        from localaws.awslambda import runtime as lambda_runtime
    except ImportError:  # pragma: no cover - same package
        return True
    return lambda_runtime.drain(timeout)


def failures() -> list[dict[str, Any]]:
    """Deliveries that raised (target, error), most recent last."""
    with _failures_lock:
        return list(_failures)


def deliveries() -> list[dict[str, Any]]:
    """Deliveries made by this module (rule, target arn, kind), most recent last."""
    with _failures_lock:
        return list(_delivered)


def reset() -> None:
    with _failures_lock:
        _failures.clear()
        _delivered.clear()


def fire_schedule(
    rule_name_or_arn: str,
    time: datetime | str | None = None,
    *,
    event_bus_name: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
) -> int:
    """Send a "Scheduled Event" to the targets of one schedule rule, as EventBridge does when
    the schedule comes due. Returns the number of targets delivered to (0 if the rule is
    DISABLED). Raises ``KeyError`` for an unknown rule."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.events.models import events_backends

    from localaws.clients import region as default_region

    name = rule_name_or_arn
    bus = event_bus_name or "default"
    match = re.match(r"arn:[^:]+:events:([^:]+):(\d+):rule/(.+)$", rule_name_or_arn)
    if match:
        region, account_id = match.group(1), match.group(2)
        rest = match.group(3)
        bus, name = rest.rsplit("/", 1) if "/" in rest else ("default", rest)
    account_id = account_id or DEFAULT_ACCOUNT_ID
    region = region or default_region()
    backend = events_backends[account_id][region]
    event_bus = backend.event_buses.get(bus) or backend.describe_event_bus(bus)
    rule = event_bus.rules.get(name)
    if rule is None:
        raise KeyError(f"no rule {name!r} on event bus {bus!r} ({account_id}, {region})")
    if rule.state != "ENABLED":
        LOG.info("schedule rule %s is %s: not fired", rule.name, rule.state)
        return 0
    when = time or datetime.now(UTC)
    stamp = when if isinstance(when, str) else _iso(when)
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": stamp,
        "region": region,
        "resources": [rule.arn],
        "detail": {},
    }
    return _deliver(rule, event, transform_input=True)


# --------------------------------------------------------------------------- delivery


def _send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    """Replacement for ``Rule.send_to_targets``."""
    if self.state != "ENABLED":
        return
    if self.scheduled_expression and not self.event_pattern.get_pattern():
        return  # schedule-only: fires from fire_schedule, never on ordinary events
    if not self.event_pattern.matches_event(original_event):
        return
    _deliver(self, original_event, transform_input)


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""


def _deliver(rule: Any, original_event: dict[str, Any], transform_input: bool) -> int:
    native = [t for t in rule.targets if _service(t.get("Arn", "")) not in _OURS]
    ours = [t for t in rule.targets if _service(t.get("Arn", "")) in _OURS]
    delivered = 0
    if native:
        shallow = copy.copy(rule)
        shallow.targets = native
        # moto's own delivery mutates "time"; give it its own copy
        event_copy = copy.deepcopy(original_event)
        event_copy.setdefault("ingestion-time", _time.time())
        try:
            from moto.events.models import Rule

            PATCHES.original(Rule, "send_to_targets")(shallow, event_copy, transform_input)
            delivered += len(native)
        except Exception as exc:
            _record(rule, {"Arn": ",".join(t.get("Arn", "") for t in native)}, exc)
    if not ours:
        return delivered
    event = _public_event(original_event)
    for target in ours:
        try:
            payload = _target_input(target, event, rule)
            kind = _service(target["Arn"])
            if kind == "lambda":
                client("lambda").invoke(
                    FunctionName=target["Arn"],
                    InvocationType="Event",
                    Payload=json.dumps(payload).encode("utf-8"),
                )
            elif kind == "states":
                # a name of our own: moto's engine does not generate one (all would be "None")
                client("stepfunctions").start_execution(
                    stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=json.dumps(payload)
                )
            elif kind == "sns":
                message = payload if isinstance(payload, str) else json.dumps(payload)
                client("sns").publish(TopicArn=target["Arn"], Message=message)
            delivered += 1
            with _failures_lock:
                _delivered.append({"rule": rule.arn, "target": target["Arn"], "kind": kind, "id": event.get("id")})
        except Exception as exc:
            _record(rule, target, exc)
    return delivered


def _record(rule: Any, target: dict[str, Any], exc: Exception) -> None:
    LOG.warning("EventBridge rule %s -> %s: delivery failed: %s", rule.name, target.get("Arn"), exc)
    with _failures_lock:
        _failures.append(
            {
                "rule": getattr(rule, "arn", str(rule)),
                "target": target.get("Arn"),
                "error": f"{type(exc).__name__}: {exc}",
            }
        )


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as targets see it on AWS: ISO time, no moto-internal fields."""
    public = copy.deepcopy(event)
    public.pop("ingestion-time", None)
    if public.get("id") in (None, "", _MOTO_PLACEHOLDER_ID):
        public["id"] = str(uuid.uuid4())  # moto gives every S3 event the same id
    stamp = public.get("time")
    if isinstance(stamp, int | float):
        public["time"] = _iso(datetime.fromtimestamp(float(stamp), UTC))
    elif isinstance(stamp, datetime):
        public["time"] = _iso(stamp)
    elif not stamp:
        public["time"] = _iso(datetime.now(UTC))
    return public


def _json_path(event: Any, path: str) -> Any:
    from jsonpath_ng.ext import parse  # type: ignore[attr-defined]

    matches = parse(path).find(event)
    if not matches:
        return None
    return matches[0].value


def _target_input(target: dict[str, Any], event: dict[str, Any], rule: Any) -> Any:
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        return _json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer:
        return _transform(transformer, event, rule)
    return event


def _transform(transformer: dict[str, Any], event: dict[str, Any], rule: Any) -> Any:
    values: dict[str, Any] = {
        name: _json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.setdefault("aws.events.event.json", event)
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.rule-arn", getattr(rule, "arn", ""))
    values.setdefault("aws.events.rule-name", getattr(rule, "name", ""))
    values.setdefault("aws.events.event.ingestion-time", event.get("time"))
    template: str = transformer.get("InputTemplate") or "<aws.events.event.json>"
    text = _substitute(template, values)
    try:
        return json.loads(text)
    except ValueError:
        # a plain-text template: placeholders take their raw string values
        return _PLACEHOLDER.sub(
            lambda m: (
                str(values[m.group(1)])
                if isinstance(values.get(m.group(1)), str)
                else json.dumps(values.get(m.group(1)))
            ),
            template,
        )


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def _substitute(template: str, values: dict[str, Any]) -> str:
    """Replace ``<name>`` in a JSON template: inside a string literal by the value's string
    content (escaped), elsewhere by the value as JSON (``null`` if the path matched nothing)."""
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and in_string:
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif char == "<":
            match = _PLACEHOLDER.match(template, i)
            if match and match.group(1) in values:
                value = values[match.group(1)]
                if in_string:
                    text = value if isinstance(value, str) else json.dumps(value)
                    out.append(json.dumps("" if value is None else text)[1:-1])
                else:
                    out.append(json.dumps(value))
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)
