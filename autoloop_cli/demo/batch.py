"""One monthly batch transform on the local AWS, as a user (and the schedule) would run it.

:func:`run_month` is the demo's monthly run: it uploads a month of generated customers under
``batch/<model>/<YYYY-MM>/`` (two files, one of them with a few malformed rows, and an empty
file), fires the template's real schedule as EventBridge Scheduler would on the 1st of the
next month, follows the BatchTransform execution and prints what it published.
:func:`start_month` and :func:`follow_month` are the manual run (``autoloop local transform``).
Everything goes through the local AWS's API, so it works against a running server.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from autoloop.batch import schedule_name as batch_schedule_name
from autoloop_cli import executions
from autoloop_cli.console import Console
from localaws import clients

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class MonthlyRun(executions.RunSummary):
    """A BatchTransform run (the demo lists it with its other runs), with what was uploaded."""

    uploaded: dict[str, int] = field(default_factory=dict)
    @property
    def report(self) -> dict[str, Any]:
        """The PublishResults step's result (rows, files, report_uri, message), if it ran."""
        return dict(self.output.get("report") or {})

    def text(self) -> str:
        lines = [f"{self.name}: {self.status} in {self.seconds:.2f} s", "  " + " -> ".join(self.path)]
        if self.report:
            lines += ["  " + line for line in str(self.report.get("message", "")).splitlines()]
        elif self.status == "SUCCEEDED":
            lines.append(f"  {self.output.get('batch', {}).get('reason', '')}")
        else:
            lines.append(f"  error: {self.description.get('error')}: {_readable(self.description.get('cause'))}")
        return "\n".join(lines)


def _readable(cause: object) -> str:
    """A failed task's cause is "<Error>: <Lambda's error JSON>"; keep its message."""
    text = str(cause or "")
    error, _, rest = text.partition(": ")
    try:
        message = json.loads(rest).get("errorMessage")
    except (ValueError, AttributeError):
        return text
    return f"{error}: {message}" if message else text


def previous_month(now: datetime | None = None) -> str:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now.year - 1:04d}-12" if now.month == 1 else f"{now.year:04d}-{now.month - 1:02d}"


def due_time(month: str) -> str:
    """When the default schedule (03:00 UTC on the 1st) fires for ``month``."""
    year, number = (int(p) for p in month.split("-"))
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return f"{year:04d}-{number:02d}-01T03:00:00Z"


def month_files(frame: pd.DataFrame, malformed: int = 2) -> dict[str, bytes]:
    """A month of rows to score (``frame``, no label), in two files, plus an empty file; the
    second file carries ``malformed`` rows that the policy skips and counts."""
    half = len(frame) // 2
    first = frame.iloc[:half].to_csv(index=False)
    # The second file lists the same columns in another order: columns are matched by name.
    second_frame = frame.iloc[half:][list(reversed(frame.columns))]
    lines = second_frame.to_csv(index=False).splitlines()
    bad = ["not,a,row", ",".join(["oops"] * len(frame.columns))]
    for k in range(malformed):
        lines.insert(2 + 7 * k, bad[k % len(bad)])
    return {"part-1.csv": first.encode(), "part-2.csv": ("\n".join(lines) + "\n").encode(), "empty.csv": b""}


def upload_month(bucket: str, model: str, month: str, files: dict[str, bytes]) -> dict[str, int]:
    s3 = clients.client("s3")
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"batch/{model}/{month}/{name}", Body=body)
    return {name: len(body) for name, body in files.items()}


def start_month(state_machine_arn: str, model: str, month: str, force: bool = False) -> str:
    """A manual run, as ``events/batch_transform_manual.json`` starts one."""
    request = {"model": model, "month": month, "force": force, "trigger": {"type": "manual"}}
    response = clients.client("stepfunctions").start_execution(
        stateMachineArn=state_machine_arn, name=f"{model}-{month}-manual-{uuid.uuid4().hex[:8]}",
        input=json.dumps(request))
    return str(response["executionArn"])


def follow_month(sfn: Any, arn: str, timeout: float, on_step: Callable[[str], None] | None = None,
                 name: str = "BatchTransform") -> MonthlyRun:
    started = time.perf_counter()
    description = executions.follow(sfn, arn, timeout=timeout,
                                    on_step=(lambda s: on_step(s.name)) if on_step else None)
    events = executions.history(sfn, arn)
    steps = executions.path(events)
    return MonthlyRun(name, arn, description["status"], [s.name for s in steps], steps,
                      executions.transitions(events), time.perf_counter() - started, dict(description))


def _wait_for_execution(state_machine_arn: str, known: set[str], timeout: float) -> str:
    sfn, deadline = clients.client("stepfunctions"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {e["executionArn"] for e in executions.executions(sfn, state_machine_arn)} - known
        if new:
            return sorted(new)[0]
        time.sleep(0.1)
    raise TimeoutError(f"no BatchTransform execution started within {timeout:.0f} s")


def run_month(outputs: dict[str, str], *, stack: str, model: str = "churn", month: str | None = None, rows: int = 4000,
              seed: int = 21, drift: float = 0.0, console: Console | None = None,
              timeout: float = 300.0, frame: pd.DataFrame | None = None) -> MonthlyRun:
    """The demo's monthly run: upload the month, fire the real schedule, follow, print.

    ``outputs`` are the deployed stack's outputs (``DataBucketName``, ``BatchTransformArn``). Call
    it after the model is deployed: the DeployPipeline puts the model's monthly schedule
    (``<stack>-<model>-batch``), which this fires; with its calibrated baseline in place the run
    also checks the month's data quality.
    """
    from localaws.scheduler import schedules as scheduler

    console = console or Console(stages=1)
    month = month or previous_month()
    machine = outputs["BatchTransformArn"]
    sfn = clients.client("stepfunctions")
    if frame is None:  # the model's example data, without its label
        from autoloop_cli import datagen

        example = datagen.GENERATORS[model](rows, seed=seed, drift=drift)
        frame = example.drop(columns=[example.columns[0]])
    with console.stage(f"Monthly batch transform: {len(frame):,} rows of {model} for {month}, no endpoint"):
        uploaded = upload_month(outputs["DataBucketName"], model, month, month_files(frame))
        console.say(f"      uploaded {len(uploaded)} files to s3://{outputs['DataBucketName']}/batch/{model}/{month}/ "
                    "(one with 2 malformed rows, one empty)")
        known = {e["executionArn"] for e in executions.executions(sfn, machine)}
        fired = scheduler.fire(batch_schedule_name(stack, model), due_time(month), force=True)
        console.say(f"      fired schedule {fired.schedule if fired else '?'} as at {due_time(month)}")
        arn = fired.execution_arn if fired and fired.execution_arn else _wait_for_execution(machine, known, 30)
        console.say(f"      BatchTransform execution {arn.rsplit(':', 1)[-1]}")
        run = follow_month(sfn, arn, timeout, on_step=lambda name: console.say(f"        -> {name}"),
                           name=f"BatchTransform ({month})")
        run.uploaded = uploaded
        for line in run.text().splitlines()[2:]:
            console.say(f"      {line.strip()}")
    return run
