"""The training-run cap's queue: reclaiming dead slots and the newest-upload-wins policy (moto)."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from autoloop import adapters, run_slots
from autoloop.errors import InvalidEvent
from autoloop.run_slots import Waiter

TABLE = "run-slots"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_waiters_order_by_start_then_name():
    me = Waiter(10.0, "churn-aaaaaaaaaa")
    assert Waiter(9.0, "churn-bbbbbbbbbb") < me < Waiter(11.0, "churn-0000000000")
    # Same start time: the name breaks the tie, so exactly one of two twins steps aside.
    assert me < Waiter(10.0, "churn-bbbbbbbbbb")


class Slots:
    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        self.ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        self.sfn = boto3.client("stepfunctions")
        self.machine = self.sfn.create_state_machine(
            name="stack-training-pipeline", roleArn="arn:aws:iam::123456789012:role/sfn",
            definition='{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}',
        )["stateMachineArn"]

    def start(self, name: str) -> str:
        return self.sfn.start_execution(stateMachineArn=self.machine, name=name, input="{}")["executionArn"]

    def hold(self, *names: str) -> None:
        """What AcquireRunSlot's UpdateItem leaves behind for each holder."""
        for name in names:
            self.ddb.update_item(TableName=TABLE, Key={"pk": {"S": "training"}},
                                 UpdateExpression="SET #h = :now ADD running :one",
                                 ExpressionAttributeNames={"#h": name},
                                 ExpressionAttributeValues={":now": {"S": "t"}, ":one": {"N": "1"}})

    def item(self, key: str) -> dict:
        return self.ddb.get_item(TableName=TABLE, Key={"pk": {"S": key}}).get("Item", {})

    def queue(self, name: str, started: datetime, model: str = "churn") -> dict:
        payload = {"execution": name, "started": started.isoformat(), "state_machine": self.machine, "model": model}
        return run_slots.queue_for_slot(payload, TABLE)


@pytest.fixture
def slots():
    with mock_aws():
        adapters.reset_clients()
        yield Slots()
        adapters.reset_clients()


def test_a_slot_held_by_an_ended_execution_is_reclaimed(slots):
    dead, alive, me = "churn-0000000001", "churn-0000000002", "churn-0000000003"
    for name in (dead, alive, me):
        slots.start(name)
    slots.hold(dead, alive)
    slots.sfn.stop_execution(executionArn=f"{slots.machine.replace(':stateMachine:', ':execution:')}:{dead}")

    result = slots.queue(me, T0)

    assert result == {"holds_slot": False, "superseded": False, "superseded_by": None, "reclaimed": [dead]}
    item = slots.item("training")
    assert dead not in item and alive in item
    assert item["running"] == {"N": "1"}


def test_an_older_queued_upload_steps_aside_for_a_newer_one_of_the_same_model(slots):
    older, newer, other_model = "churn-00000000aa", "churn-00000000bb", "fraud-00000000cc"
    for name in (older, newer, other_model):
        slots.start(name)

    assert slots.queue(older, T0)["superseded"] is False  # alone in the queue: waits
    assert slots.queue(other_model, T0 + timedelta(seconds=5), model="fraud")["superseded"] is False
    assert slots.queue(newer, T0 + timedelta(seconds=1))["superseded"] is False  # the newest waits

    again = slots.queue(older, T0)  # the older run's next turn in the queue
    assert again["superseded"] is True and again["superseded_by"] == newer
    waiting = slots.item("waiting#churn")
    assert older not in waiting and newer in waiting
    assert other_model in slots.item("waiting#fraud")


def test_a_queued_run_is_not_superseded_by_a_newer_run_that_has_ended(slots):
    older, newer = "churn-00000000aa", "churn-00000000bb"
    slots.start(older)
    newer_arn = slots.start(newer)
    slots.queue(newer, T0 + timedelta(seconds=1))
    slots.sfn.stop_execution(executionArn=newer_arn)

    assert slots.queue(older, T0)["superseded"] is False
    assert newer not in slots.item("waiting#churn")


def test_a_run_that_already_holds_a_slot_goes_on(slots):
    """AcquireRunSlot retried after its UpdateItem had succeeded finds its own name there."""
    me = "churn-00000000aa"
    slots.start(me)
    slots.hold(me)
    assert slots.queue(me, T0)["holds_slot"] is True
    assert slots.item("training")["running"] == {"N": "1"}


@pytest.mark.parametrize("payload", [
    {},
    {"execution": "not a run id", "started": T0.isoformat(), "state_machine": "arn", "model": "churn"},
    {"execution": "churn-00000000aa", "started": "yesterday", "state_machine": "arn", "model": "churn"},
])
def test_a_malformed_queue_request_is_a_named_error(slots, payload):
    with pytest.raises(InvalidEvent, match="QueueForRunSlot needs"):
        run_slots.queue_for_slot(payload, TABLE)
