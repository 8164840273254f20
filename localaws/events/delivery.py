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

At-least-once delivery (:func:`at_least_once`, off by default): EventBridge promises neither
exactly-once nor order, and SageMaker documents that it may send more than one event per state
change. With the setting on, a seeded share of the matching deliveries is *duplicated* (the
same event, same ``id``, delivered again after a random number of later deliveries) and a
share is *delayed* (held back behind later deliveries, so consumers see a newer event first),
the two drawn independently. "Later deliveries" are matching events of any rule arriving
after it. A held delivery never waits more than ``max_hold_seconds``: a background thread releases it
if no later event comes, and :func:`drain` releases every held one first. :func:`held_stats`
counts what was duplicated and delayed.

Limitations: no DLQ, no retry policy per target, no ``RoleArn`` checks; moto's S3
notification sends to the rules of every bus, not only the default one; the ``time`` field
is rendered at second resolution.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
import threading
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
    run. Deliveries held back by :func:`at_least_once` are released first. Returns False if
    some are still pending."""
    release_held()
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
    """Forget recorded deliveries and failures; turn :func:`at_least_once` off, dropping what
    it holds (the state they were for is being reset)."""
    global _setting
    with _held_cond:
        _setting = None
        _held.clear()
        for key in _stats:
            _stats[key] = 0
    with _failures_lock:
        _failures.clear()
        _delivered.clear()


# --------------------------------------------------------------------------- at-least-once


@dataclass
class AtLeastOnce:
    """How deliveries are duplicated and reordered (see :func:`at_least_once`)."""

    duplicate: float  # share of matching deliveries delivered twice
    delay: float  # share of matching deliveries held back behind later ones
    seed: int
    match: Callable[[dict[str, Any]], bool] | None = None
    max_later: int = 3  # a held delivery goes after 1..max_later later deliveries
    max_hold_seconds: float = 2.0  # ... or after this long, whichever comes first
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("duplicate", "delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"at_least_once: {name}={value!r} is a share; give a number from 0 to 1")
        if self.max_later < 1 or self.max_hold_seconds <= 0:
            raise ValueError("at_least_once: max_later must be at least 1 and max_hold_seconds above 0")
        self.rng = random.Random(self.seed)


@dataclass
class _Held:
    rule: Any
    original: dict[str, Any]  # as moto passed it (for moto's own targets)
    event: dict[str, Any]  # as our targets see it (the copy keeps the first delivery's id)
    transform_input: bool
    later: int  # deliveries still to go before this one
    deadline: float  # time.monotonic()
    kind: str  # duplicate | delayed


_setting: AtLeastOnce | None = None
_held: list[_Held] = []
_held_cond = threading.Condition()
_stats: dict[str, int] = {"duplicated": 0, "delayed": 0, "released": 0}
_flusher: threading.Thread | None = None


def at_least_once(duplicate: float | None = 0.0, *, delay: float = 0.0, seed: int = 0,
                  match: Callable[[dict[str, Any]], bool] | None = None, max_later: int = 3,
                  max_hold_seconds: float = 2.0) -> AtLeastOnce | None:
    """Deliver a ``duplicate`` share of matching events twice and hold a ``delay`` share back
    behind later events, seeded by ``seed`` (same seed, same choices for the same sequence of
    events). ``match(event)`` picks the events it applies to (default: all). ``None`` turns
    it off, releasing what is held. Returns the setting in force."""
    global _setting
    setting = None if duplicate is None else AtLeastOnce(duplicate, delay, seed, match, max_later, max_hold_seconds)
    if setting is not None and setting.duplicate == 0.0 and setting.delay == 0.0:
        setting = None
    release_held()
    with _held_cond:
        _setting = setting
        for key in _stats:
            _stats[key] = 0
    return setting


def held_stats() -> dict[str, int]:
    """Deliveries duplicated and delayed since :func:`at_least_once` was last set, how many
    held ones have gone out, and how many are held now."""
    with _held_cond:
        return {**_stats, "held": len(_held)}


def release_held() -> int:
    """Deliver every held delivery now (oldest first). Returns how many."""
    with _held_cond:
        due = list(_held)
        _held.clear()
    for item in due:
        _deliver_held(item)
    return len(due)


def _choose(rule: Any, original: dict[str, Any], event: dict[str, Any],
            transform_input: bool) -> tuple[bool, list[_Held]]:
    """(deliver now?, what to hold) for one matching delivery. Delaying and duplicating are
    drawn independently: a delivery can be both (then neither copy goes out now)."""
    setting = _setting
    if setting is None or (setting.match is not None and not setting.match(event)):
        return True, []
    held: list[_Held] = []
    with _held_cond:
        delayed = setting.rng.random() < setting.delay
        duplicated = setting.rng.random() < setting.duplicate
        for kind, chosen in (("delayed", delayed), ("duplicate", duplicated)):
            if not chosen:
                continue
            _stats["duplicated" if kind == "duplicate" else "delayed"] += 1
            deadline = _time.monotonic() + setting.max_hold_seconds
            held.append(_Held(rule, copy.deepcopy(original), event, transform_input,
                              setting.rng.randint(1, setting.max_later), deadline, kind))
    return not delayed, held


def _hold(item: _Held) -> None:
    global _flusher
    with _held_cond:
        _held.append(item)
        if _flusher is None or not _flusher.is_alive():
            _flusher = threading.Thread(target=_flush_expired, name="eventbridge-held", daemon=True)
            _flusher.start()
        _held_cond.notify_all()


def _one_later_delivery() -> None:
    """A delivery went out: held ones whose turn it is go next."""
    with _held_cond:
        due = []
        for item in list(_held):
            item.later -= 1
            if item.later <= 0:
                _held.remove(item)
                due.append(item)
    for item in due:
        _deliver_held(item)


def _flush_expired() -> None:
    while True:
        with _held_cond:
            if not _held:
                _held_cond.wait(5.0)
                if not _held:
                    continue
            now = _time.monotonic()
            due = [item for item in _held if item.deadline <= now]
            for item in due:
                _held.remove(item)
            if not due:
                _held_cond.wait(max(0.01, min(item.deadline for item in _held) - now))
                continue
        for item in due:
            _deliver_held(item)


def _deliver_held(item: _Held) -> None:
    with _held_cond:
        _stats["released"] += 1
    try:
        _deliver(item.rule, item.original, item.transform_input, public=item.event,
                 duplicate=item.kind == "duplicate")
    except Exception as exc:  # never let a held delivery kill the flusher
        _record(item.rule, {"Arn": "(held delivery)"}, exc)


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
    event = _public_event(original_event)
    now, held = _choose(self, original_event, event, transform_input)
    if now:
        _deliver(self, original_event, transform_input, public=event)
    _one_later_delivery()
    for item in held:
        _hold(item)


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""


def _deliver(rule: Any, original_event: dict[str, Any], transform_input: bool, *,
             public: dict[str, Any] | None = None, duplicate: bool = False) -> int:
    """Deliver to the rule's targets. ``public``: the event as targets see it, if already made
    (a held delivery keeps its id); ``duplicate``: it is a copy (recorded as such)."""
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
    event = public if public is not None else _public_event(original_event)
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
                _delivered.append({"rule": rule.arn, "target": target["Arn"], "kind": kind, "id": event.get("id"),
                                   "duplicate": duplicate})
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
