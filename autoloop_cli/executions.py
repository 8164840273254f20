"""Read Step Functions executions as people want to see them: the path, with timings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    entered: datetime
    exited: datetime | None

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def path(events: list[dict[str, Any]]) -> list[Step]:
    """The states the execution went through, in order, with entry and exit times."""
    steps: list[Step] = []
    open_steps: dict[str, int] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            open_steps[name] = len(steps)
            steps.append(Step(name, kind[: -len("StateEntered")], event["timestamp"], None))
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_steps:
                i = open_steps.pop(name)
                steps[i] = Step(steps[i].name, steps[i].type, steps[i].entered, event["timestamp"])
    return steps


def transitions(events: list[dict[str, Any]]) -> int:
    """State transitions as Step Functions bills them: one per state entered."""
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def follow(sfn: Any, execution_arn: str, timeout: float, poll: float = 0.2,
           on_step: Callable[[Step], None] | None = None) -> dict[str, Any]:
    """Wait (bounded) for the execution to end, reporting each state as it is entered.
    The history is read at each poll only for ``on_step`` (else on a timeout, to name the
    last state): a long history costs the service each time."""
    deadline = time.monotonic() + timeout
    reported = 0
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if on_step:
            steps = path(history(sfn, execution_arn))
            for step in steps[reported:]:
                on_step(step)
            reported = len(steps)
        if description["status"] in TERMINAL:
            return dict(description)
        if time.monotonic() > deadline:
            steps = path(history(sfn, execution_arn))
            raise TimeoutError(
                f"execution {execution_arn} still {description['status']} after {timeout:.0f} s; "
                f"last state: {steps[-1].name if steps else 'none'}"
            )
        time.sleep(poll)


def follow_run(sfn: Any, execution_arn: str, timeout: float, say: Callable[[str], None], poll: float = 0.2,
               start_within: float = 30.0) -> dict[str, Any]:
    """Follow the run that an upload starts, as `autoloop local put --wait` and `autoloop smoke`
    show it: wait (bounded by ``start_within``) for the StartPipeline Lambda to start it, say
    ``run <name>`` and then each state as it is entered, and return its final description.
    TimeoutError, with a one-line reason, if it does not start or does not end in time."""
    name = execution_arn.rsplit(":", 1)[-1]
    deadline = time.monotonic() + start_within
    while True:
        try:
            sfn.describe_execution(executionArn=execution_arn)
            break
        except sfn.exceptions.ExecutionDoesNotExist:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no run started for this upload within {start_within:.0f} s ({name}): "
                                   "StartPipeline refused it or has not run; its notification says why") from None
            time.sleep(poll)
    say(f"run {name}")
    return follow(sfn, execution_arn, timeout, poll=poll, on_step=lambda step: say(f"  {step.name}"))


def executions(sfn: Any, state_machine_arn: str) -> Iterator[dict[str, Any]]:
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn):
        yield from page["executions"]


@dataclass
class RunSummary:
    """A finished execution as the demo reports it: its path, timing and description."""

    name: str
    execution_arn: str
    status: str
    path: list[str]
    steps: list[Step]
    transitions: int
    seconds: float
    description: dict[str, Any]

    @property
    def output(self) -> dict[str, Any]:
        return json.loads(self.description.get("output") or "{}")


def outcome(description: dict[str, Any]) -> str:
    """One readable line on how an execution ended (or that it has not)."""
    status = description["status"]
    if status == "RUNNING":
        return "running"
    if status in {"FAILED", "TIMED_OUT", "ABORTED"}:
        error, cause = description.get("error") or status, (description.get("cause") or "").strip()
        first = cause.splitlines()[0] if cause else ""
        # The pipeline's failures start their cause with their own name ("BelowThreshold: ...").
        return first if first.startswith(f"{error}:") else f"{error}: {first}".rstrip(": ")
    output = json.loads(description.get("output") or "{}")
    package = output.get("model_package") if isinstance(output, dict) else None
    if isinstance(package, dict) and package.get("arn"):
        gate = output.get("gate") or {}
        metric = f" ({gate['metric_name']} {gate['metric']:.4f})" if "metric" in gate and "metric_name" in gate else ""
        return f"registered {package['arn']}{metric}"
    queue = output.get("queue") if isinstance(output, dict) else None
    if isinstance(queue, dict) and queue.get("superseded"):
        return f"superseded by the newer upload {queue.get('superseded_by') or ''}".rstrip()
    return "succeeded"

