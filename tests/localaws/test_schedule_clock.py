"""localaws.scheduler.clock: schedule expressions, and schedules that fire on their own (sped up)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from localaws import server
from localaws.clients import client
from localaws.sagemaker.endpoints import settings as endpoint_settings
from localaws.scheduler.clock import ExpressionError, ScheduleClock, parse
from localaws.stepfunctions import clock as sfn_clock

ROLE = "arn:aws:iam::123456789012:role/scheduler"
T0 = dt.datetime(2026, 12, 4, 16, 50, tzinfo=dt.UTC)  # a Friday


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(("expression", "zone", "expected"), [
    ("cron(0 * ? * * *)", None, "2026-12-04T17:00"),  # Model Monitor's hourly schedule
    ("cron(0 3 1 * ? *)", None, "2027-01-01T03:00"),  # the monthly batch transform
    ("cron(0/15 8-17 ? * MON-FRI *)", None, "2026-12-04T17:00"),
    ("cron(30 2 ? * SUN *)", None, "2026-12-06T02:30"),
    ("cron(0 12 29 FEB ? 2028)", None, "2028-02-29T12:00"),
    ("cron(0 9 * * ? *)", "Europe/Paris", "2026-12-05T08:00"),  # 09:00 in Paris is 08:00 UTC in winter
    ("rate(5 minutes)", None, "2026-12-04T16:55"),
    ("rate(1 day)", None, "2026-12-05T16:50"),
    ("at(2027-01-01T00:00:00)", None, "2027-01-01T00:00"),
])
def test_next_occurrence(expression: str, zone: str | None, expected: str):
    assert parse(expression, zone).next_after(T0) == at(expected)


def test_a_past_one_time_schedule_never_comes_due():
    assert parse("at(2020-01-01T00:00:00)").next_after(T0) is None


@pytest.mark.parametrize(("expression", "says"), [
    ("cron(0 3 L * ? *)", "L, W and # are not supported"),
    ("cron(0 3 * *)", "6 fields"),
    ("cron(61 * ? * * *)", "within 0-59"),
    ("rate(0 hours)", "must be positive"),
    ("every hour", "not a schedule expression"),
])
def test_bad_expressions_say_what_is_wrong(expression: str, says: str):
    with pytest.raises(ExpressionError, match=says):
        parse(expression)


class FakeTime:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def queue() -> tuple[str, str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="fired")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def received(url: str) -> list[str]:
    messages = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


@pytest.mark.usefixtures("mocked_aws")
def test_schedules_fire_on_the_clock_sped_up_by_the_scale():
    url, arn = queue()
    scheduler = client("scheduler")
    scheduler.create_schedule(Name="hourly", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": arn, "RoleArn": ROLE, "Input": "<aws.scheduler.scheduled-time>"})
    scheduler.create_schedule(Name="monthly", ScheduleExpression="cron(0 3 1 * ? *)",
                              FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": arn, "RoleArn": ROLE, "Input": "monthly <aws.scheduler.scheduled-time>"})
    scheduler.create_schedule(Name="off", ScheduleExpression="rate(1 minute)", FlexibleTimeWindow={"Mode": "OFF"},
                              State="DISABLED", Target={"Arn": arn, "RoleArn": ROLE, "Input": "off"})
    scheduler.create_schedule(Name="last-day", ScheduleExpression="cron(0 3 L * ? *)",
                              FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": arn, "RoleArn": ROLE, "Input": "L"})
    fake = FakeTime()
    clock = ScheduleClock(0.001, now=fake)  # an hour of schedule time every 3.6 s

    assert clock.check() == []  # first seen: due at the next occurrence, nothing back-filled
    assert "L, W and # are not supported" in next(iter(clock.errors.values()))
    fake.advance(3.0)  # 50 min of schedule time
    assert clock.check() == [] and received(url) == []
    fake.advance(0.7)  # past 17:50 on the clock
    fired = clock.check()
    assert [(f.kind, f.name, f.scheduled_time) for f in fired] == [("scheduler", "hourly", at("2026-12-04T17:50"))]
    assert fired[0].error is None and received(url) == ["2026-12-04T17:50:00Z"]

    fake.advance(36.0)  # ten hours: the missed occurrences fire once, and the rate keeps its phase
    assert [f.scheduled_time for f in clock.check()] == [at("2026-12-04T18:50")]
    assert received(url) == ["2026-12-04T18:50:00Z"]
    fake.advance(3.6)
    assert [f.scheduled_time for f in clock.check()] == [at("2026-12-05T04:50")]
    received(url)

    fake.advance(27 * 86.4)  # 27 days of schedule time: the first of the month at 03:00
    names = {f.name: f.scheduled_time for f in clock.check()}
    assert names["monthly"] == at("2027-01-01T03:00") and "off" not in names
    assert "monthly 2027-01-01T03:00:00Z" in received(url)


@pytest.mark.usefixtures("mocked_aws")
def test_schedule_rules_fire_a_scheduled_event_and_deleted_schedules_stop(state_machine, wait_execution):
    machine = state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    events = client("events")
    events.put_rule(Name="every-5", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="every-5", Targets=[{"Id": "sm", "Arn": machine, "RoleArn": ROLE}])
    fake = FakeTime()
    seen: list[Any] = []
    clock = ScheduleClock(0.01, now=fake, on_fire=seen.append)
    clock.check()
    fake.advance(3.0)  # five minutes of schedule time
    assert [f.name for f in clock.check()] == ["every-5"] and seen[0].name == "every-5"
    [execution] = client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    sent = json.loads(wait_execution(execution["executionArn"], 15, sfn=client("stepfunctions"))["input"])
    assert sent["detail-type"] == "Scheduled Event" and sent["time"] == "2026-12-04T16:55:00Z"
    events.remove_targets(Rule="every-5", Ids=["sm"])
    events.delete_rule(Name="every-5")
    fake.advance(30.0)
    assert clock.check() == []


def test_the_clock_needs_a_positive_scale():
    with pytest.raises(ValueError, match="> 0"):
        ScheduleClock(0)


def test_one_time_scale_sets_the_step_functions_and_endpoint_waits():
    try:
        server.set_time_scale(0.01)
        assert sfn_clock.time_scale() == 0.01 and endpoint_settings.time_scale() == 0.01
    finally:
        server.set_time_scale(None)
    assert sfn_clock.time_scale() == 1.0 and endpoint_settings.SETTINGS.time_scale is None
    with pytest.raises(ValueError, match=">= 0"):
        server.set_time_scale(-1)


@pytest.mark.usefixtures("mocked_aws")
def test_the_time_scale_shortens_a_wait_state(state_machine, run_execution):
    machine = state_machine({"StartAt": "Bake", "States": {"Bake": {"Type": "Wait", "Seconds": 300, "End": True}}})
    server.set_time_scale(0.001)  # 300 s become 0.3 s; at 1.0 this execution could not end within the timeout
    try:
        assert run_execution(machine, timeout=30)["status"] == "SUCCEEDED"
    finally:
        server.set_time_scale(None)
