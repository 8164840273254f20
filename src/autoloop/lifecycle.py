"""The stack's own lifecycle: the marker the Teardown writes when the stack is being deleted.

The marker is an item of the task-token table (key ``job_name`` = :data:`TEARDOWN_MARKER`, no
TTL). The Teardown writes it before it stops anything; PlanDeployment reads it and plans
nothing once it is there, so a package approved while (or after) the stack goes never starts
an endpoint that nothing would delete. The table is deleted with the stack, and the marker
with it.
"""

from __future__ import annotations

import time

from autoloop.adapters import aws_call, client

#: Key (``job_name``) of the marker item in the task-token table.
TEARDOWN_MARKER = "stack:teardown"


def mark_teardown(table: str) -> None:
    """Record that the stack is being deleted (idempotent: a retried Delete rewrites it)."""
    item = {"job_name": {"S": TEARDOWN_MARKER}, "started_at": {"N": str(int(time.time()))}}
    with aws_call("writing the teardown marker"):
        client("dynamodb").put_item(TableName=table, Item=item)


def teardown_started(table: str) -> bool:
    """Whether the stack's Teardown has begun (then nothing new may be deployed)."""
    with aws_call("reading the teardown marker"):
        response = client("dynamodb").get_item(TableName=table, Key={"job_name": {"S": TEARDOWN_MARKER}},
                                               ConsistentRead=True)
    return "Item" in response
