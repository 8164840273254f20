"""localaws.scheduler.schedules: an EventBridge Scheduler schedule fired on demand calls its target."""

from __future__ import annotations

import json

import pytest

from localaws.clients import client
from localaws.scheduler import schedules as scheduler

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/scheduler"
INPUT = ('{"model": "churn", "trigger": {"type": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>", '
         '"schedule": "<aws.scheduler.schedule-arn>", "attempt": "<aws.scheduler.attempt-number>"}}')


def make_schedule(name: str, target_arn: str, state: str = "ENABLED", group: str | None = None) -> str:
    kwargs = {"GroupName": group} if group else {}
    return str(client("scheduler").create_schedule(
        Name=name, ScheduleExpression="cron(0 3 1 * ? *)", FlexibleTimeWindow={"Mode": "OFF"}, State=state,
        Target={"Arn": target_arn, "RoleArn": ROLE, "Input": INPUT}, **kwargs)["ScheduleArn"])


@pytest.mark.usefixtures("mocked_aws")
def test_a_fired_schedule_starts_its_state_machine_with_the_context_filled_in():
    machine = client("stepfunctions").create_state_machine(name="m", definition=DEFINITION, roleArn=ROLE)
    arn = make_schedule("monthly", machine["stateMachineArn"])
    fired = scheduler.fire("monthly", "2026-11-01T03:00:00Z")
    assert fired is not None and fired.execution_arn
    sent = json.loads(client("stepfunctions").describe_execution(executionArn=fired.execution_arn)["input"])
    assert sent == {"model": "churn", "trigger": {"type": "schedule", "scheduled_time": "2026-11-01T03:00:00Z",
                                                  "schedule": arn, "attempt": "1"}}
    again = scheduler.fire(arn)  # by ARN; each firing is its own execution
    assert again is not None and again.execution_arn != fired.execution_arn


@pytest.mark.usefixtures("mocked_aws")
def test_disabled_unknown_and_grouped_schedules():
    topic = client("sns").create_topic(Name="t")["TopicArn"]
    make_schedule("off", topic, state="DISABLED")
    assert scheduler.fire("off") is None
    assert scheduler.fire("off", force=True) is not None
    with pytest.raises(KeyError):
        scheduler.fire("missing")
    assert scheduler.get("missing") is None
    client("scheduler").create_schedule_group(Name="team")
    arn = make_schedule("grouped", topic, group="team")
    assert scheduler.get("grouped") is None
    assert scheduler.fire(arn) is not None and scheduler.fire("grouped", group="team") is not None


def test_render_replaces_every_context_attribute():
    context = {"schedule-arn": "a", "scheduled-time": "t", "execution-id": "e", "attempt-number": "1"}
    text = "<aws.scheduler.schedule-arn>|<aws.scheduler.scheduled-time>|<aws.scheduler.execution-id>|" \
           "<aws.scheduler.attempt-number>"
    assert scheduler.render(text, context) == "a|t|e|1"
    assert scheduler.render(None, context) is None
