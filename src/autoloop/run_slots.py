"""A cap on concurrent training runs, and what a run does while it waits for a slot.

The cap is a counting semaphore in DynamoDB that the TrainingPipeline takes and gives back
itself, with no Lambda on the uncontended path (see ``statemachine/training_pipeline.asl.json``):

- ``AcquireRunSlot`` is an ``UpdateItem`` on the item ``pk = "training"`` that adds the
  execution's name as an attribute and increments ``running``, on condition that the name is
  not there yet and ``running`` is below ``MaxConcurrentTrainingRuns``.
- ``ReleaseRunSlot`` removes the name and decrements ``running``, on condition that the name
  is there, so releasing twice is harmless. It runs after the evaluation job, and on the
  failure path of each of the three paid jobs.

A run that finds every slot taken calls :func:`queue_for_slot` (the ``QueueForRunSlot`` task),
then waits and tries again. That call does two things:

1. **Reclaim.** A holder whose execution is no longer RUNNING (aborted, timed out, or ended
   without releasing) gives its slot back, so a lost release can never shrink the cap for
   good.
2. **Coalesce (newest upload wins).** Each upload of ``incoming/<model>/`` is a full dataset.
   The waiting run records itself under ``waiting#<model>``. If a newer run of the same model
   (a later execution start) is also queued, this run ends as ``Superseded``, naming that run,
   and launches nothing: the newer dataset is the one worth training. A run is only ever
   superseded by a newer run that has passed validation (it only queues after
   ``ValidateInput``), and the newest run of a burst always trains. Raw data is untouched.
   A run that took a slot at once is never superseded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from autoloop.adapters import aws_call, client, error_code
from autoloop.errors import InvalidEvent
from autoloop.naming import execution_arn, parse_run_id
from autoloop.observability import logger

SLOTS_ITEM = "training"
KEY_ATTRIBUTE = "pk"
COUNT_ATTRIBUTE = "running"
CLEANUP_PER_CALL = 5


def waiting_item(model: str) -> str:
    return f"waiting#{model}"


@dataclass(frozen=True, order=True)
class Waiter:
    """A queued run, ordered by (start time, name): later is newer."""

    started: float
    name: str


class QueueRequest(BaseModel):
    """The ``QueueForRunSlot`` task's input (built from the context object in the ASL)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    execution: str
    started: datetime
    state_machine: str
    model: str


def _holders(item: dict[str, Any]) -> list[str]:
    return [name for name in item if name not in {KEY_ATTRIBUTE, COUNT_ATTRIBUTE}]


def _running(state_machine_arn: str, name: str) -> bool:
    with aws_call(f"describing execution {name}"):
        try:
            status = client("stepfunctions").describe_execution(
                executionArn=execution_arn(state_machine_arn, name))["status"]
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return False
            raise
    return bool(status == "RUNNING")


def _get(table: str, key: str) -> dict[str, Any]:
    with aws_call(f"reading {key} in {table}"):
        item = client("dynamodb").get_item(TableName=table, Key={KEY_ATTRIBUTE: {"S": key}}, ConsistentRead=True)
    return dict(item.get("Item", {}))


def _remove(table: str, key: str, name: str, *, decrement: bool) -> bool:
    """Remove attribute ``name`` (and give its slot back); False if it was already gone."""
    update = "REMOVE #name ADD #running :minus_one" if decrement else "REMOVE #name"
    names = {"#name": name, **({"#running": COUNT_ATTRIBUTE} if decrement else {})}
    values = {":minus_one": {"N": "-1"}} if decrement else None
    request: dict[str, Any] = {
        "TableName": table, "Key": {KEY_ATTRIBUTE: {"S": key}}, "UpdateExpression": update,
        "ConditionExpression": "attribute_exists(#name)", "ExpressionAttributeNames": names,
    }
    if values:
        request["ExpressionAttributeValues"] = values
    with aws_call(f"removing {name} from {key} in {table}"):
        try:
            client("dynamodb").update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
    return True


def reclaim(table: str, state_machine_arn: str, holders: list[str]) -> list[str]:
    """Give back the slots of holders whose executions have ended; return their names."""
    return [name for name in holders
            if not _running(state_machine_arn, name) and _remove(table, SLOTS_ITEM, name, decrement=True)]


def queue_for_slot(payload: Any, table: str) -> dict[str, Any]:
    """Called when every slot is taken: reclaim dead holders, then wait or step aside."""
    try:
        request = QueueRequest.model_validate(payload)
        parse_run_id(request.execution)
        execution_arn(request.state_machine, request.execution)
    except (ValidationError, ValueError) as exc:
        raise InvalidEvent(f"QueueForRunSlot needs execution, started, state_machine and model: {exc}") from exc
    me = Waiter(request.started.timestamp(), request.execution)
    holders = _holders(_get(table, SLOTS_ITEM))
    if me.name in holders:
        # An AcquireRunSlot whose response was lost and then retried: the slot is already ours.
        return {"holds_slot": True, "superseded": False, "superseded_by": None, "reclaimed": []}
    key = waiting_item(request.model)
    with aws_call(f"queueing {me.name} for a training slot"):
        client("dynamodb").update_item(
            TableName=table, Key={KEY_ATTRIBUTE: {"S": key}}, UpdateExpression="SET #name = :started",
            ExpressionAttributeNames={"#name": me.name}, ExpressionAttributeValues={":started": {"N": str(me.started)}},
        )
    reclaimed = reclaim(table, request.state_machine, holders)

    newer: list[Waiter] = []
    older: list[Waiter] = []
    for name, value in _get(table, key).items():
        if name not in {KEY_ATTRIBUTE, me.name}:
            waiter = Waiter(float(value["N"]), name)
            (newer if waiter > me else older).append(waiter)
    # Newest first: the first newer run still going supersedes this one (usually one lookup).
    for waiter in sorted(newer, reverse=True):
        if _running(request.state_machine, waiter.name):
            _remove(table, key, me.name, decrement=False)
            logger.info("superseded by a newer upload", extra={"run_id": me.name, "superseded_by": waiter.name})
            return {"holds_slot": False, "superseded": True, "superseded_by": waiter.name, "reclaimed": reclaimed}
        _remove(table, key, waiter.name, decrement=False)
    # Entries of runs that queued, then trained and ended, are cleared a few at a time.
    for waiter in sorted(older)[:CLEANUP_PER_CALL]:
        if not _running(request.state_machine, waiter.name):
            _remove(table, key, waiter.name, decrement=False)
    logger.info("waiting for a training slot", extra={"run_id": me.name, "reclaimed": reclaimed})
    return {"holds_slot": False, "superseded": False, "superseded_by": None, "reclaimed": reclaimed}
