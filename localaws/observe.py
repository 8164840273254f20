"""Observers of the local AWS: a callback for each Step Functions execution event and each
SNS notification (what ``autoloop local serve`` prints, one line each).

Execution events come from the execution's logging session
(:mod:`localaws.logs.shipping`, installed with the extensions), every event whatever the
state machine's log level, in the shape Step Functions writes to CloudWatch Logs.

Notifications: moto (5.2.5) has no hook on publishing, so :func:`on_notification` wraps
``moto/sns/models.py: SNSBackend.publish`` (installed by its first call, like
:mod:`localaws.faults`; not in :mod:`localaws.extensions`, since nothing but an observer
needs it). Every publish reaches it: the API, Step Functions' ``sns:publish`` tasks,
EventBridge and Scheduler targets.

A failing callback is logged (DEBUG) and never fails the work it watches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from localaws.patching import Patches

LOG = logging.getLogger(__name__)

PATCHES = Patches("observe_sns")

ExecutionListener = Callable[[dict[str, Any], str], None]
NotificationListener = Callable[[dict[str, Any]], None]

_LOCK = threading.Lock()
_execution_listeners: list[ExecutionListener] = []
_notification_listeners: list[NotificationListener] = []


def on_execution_event(listener: ExecutionListener) -> Callable[[], None]:
    """Call ``listener(record, state_machine_name)`` for every execution event; ``record`` has
    ``id``, ``type``, ``details``, ``previous_event_id``, ``event_timestamp`` and
    ``execution_arn``. Returns a function that removes it."""
    with _LOCK:
        _execution_listeners.append(listener)
    return lambda: _remove(_execution_listeners, listener)


def on_notification(listener: NotificationListener) -> Callable[[], None]:
    """Call ``listener({"topic_arn", "subject", "message", "message_id"})`` for every SNS
    publish to a topic. Returns a function that removes it."""
    PATCHES.apply(_patch)
    with _LOCK:
        _notification_listeners.append(listener)
    return lambda: _remove(_notification_listeners, listener)


def _remove(listeners: list[Any], listener: Any) -> None:
    with _LOCK:
        if listener in listeners:
            listeners.remove(listener)


def execution_event(record: dict[str, Any], state_machine: str) -> None:
    with _LOCK:
        listeners = list(_execution_listeners)
    for listener in listeners:
        try:
            listener(record, state_machine)
        except Exception as exc:
            LOG.debug("execution observer failed: %s", exc)


def _publish(self: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
    from moto.sns.models import SNSBackend

    message_id: str = PATCHES.original(SNSBackend, "publish")(self, message, arn, *args, **kwargs)
    with _LOCK:
        listeners = list(_notification_listeners)
    if arn and listeners:
        subject = kwargs.get("subject")
        if subject is None and len(args) >= 2:  # (phone_number, subject, ...)
            subject = args[1]
        note = {"topic_arn": arn, "subject": subject, "message": message, "message_id": message_id}
        for listener in listeners:
            try:
                listener(dict(note))
            except Exception as exc:
                LOG.debug("notification observer failed: %s", exc)
    return message_id


def _patch(patches: Patches) -> None:
    from moto.sns.models import SNSBackend

    patches.set(SNSBackend, "publish", _publish)


uninstall = PATCHES.restore
installed = PATCHES.active
