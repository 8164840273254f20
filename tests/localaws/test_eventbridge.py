"""eventbridge: rules deliver to Lambda (async) and Step Functions targets (server mode)."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from localaws.awslambda import runtime as lambda_runtime
from localaws.clients import client
from localaws.events import delivery as eventbridge

pytestmark = pytest.mark.usefixtures("local_aws")


def recorder(path: Path, fail: bool = False) -> str:
    """Handler source that appends each event it receives to ``path`` (JSON lines)."""
    return textwrap.dedent(
        f"""
        import json

        def handler(event, context):
            with open({str(path)!r}, "a") as fh:
                fh.write(json.dumps(event) + "\\n")
            if {fail!r}:
                raise RuntimeError("target failed")
            return "ok"
        """
    )


def received(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def put_rule(name: str, targets: list[dict], pattern: dict | None = None, **kwargs) -> str:
    events = client("events")
    if pattern is not None:
        kwargs["EventPattern"] = json.dumps(pattern)
    arn = events.put_rule(Name=name, **kwargs)["RuleArn"]
    events.put_targets(Rule=name, Targets=targets)
    return arn


def put_event(source: str, detail: dict, detail_type: str = "Test Event") -> None:
    response = client("events").put_events(
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    assert response["FailedEntryCount"] == 0


def test_rule_invokes_lambda_target_asynchronously(make_function, uid, tmp_path):
    log = tmp_path / "events.jsonl"
    fn = make_function(recorder(log))
    source = uid("autoloop.test")
    rule_arn = put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [source]})

    put_event(source, {"model": "churn"})
    put_event("someone.else", {"model": "other"})
    assert eventbridge.drain(30)

    events = received(log)
    assert [e["detail"] for e in events] == [{"model": "churn"}]
    event = events[0]
    assert event["source"] == source and event["detail-type"] == "Test Event"
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")  # ISO, as on AWS
    assert "ingestion-time" not in event
    assert any(d["rule"] == rule_arn for d in eventbridge.deliveries())


def test_s3_object_created_reaches_a_prefix_rule_and_its_lambda(make_function, uid, tmp_path):
    log = tmp_path / "s3.jsonl"
    fn = make_function(recorder(log))
    s3 = client("s3")
    bucket = uid("data")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    put_rule(
        uid("incoming"),
        [{"Id": "fn", "Arn": fn["FunctionArn"]}],
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "incoming/"}]}},
        },
    )

    s3.put_object(Bucket=bucket, Key="incoming/churn/a.csv", Body=b"x,y\n")
    s3.put_object(Bucket=bucket, Key="other/b.csv", Body=b"x,y\n")
    assert eventbridge.drain(30)

    events = received(log)
    assert [e["detail"]["object"]["key"] for e in events] == ["incoming/churn/a.csv"]
    assert events[0]["detail-type"] == "Object Created"
    assert events[0]["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert events[0]["id"] != "17793124-05d4-b198-2fde-7ededc63b103"  # moto's fixed id


def test_s3_event_starts_a_state_machine_target(state_machine, uid, wait_execution):
    s3 = client("s3")
    sfn = client("stepfunctions")
    bucket = uid("data")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    plain = state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    shaped = state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    put_rule(
        uid("incoming"),
        [
            {"Id": "plain", "Arn": plain},
            {
                "Id": "shaped",
                "Arn": shaped,
                "InputTransformer": {
                    "InputPathsMap": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
                    "InputTemplate": '{"source": {"bucket": <bucket>, "key": "<key>"}, "note": "s3://<bucket>/<key>"}',
                },
            },
        ],
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"object": {"key": [{"prefix": "incoming/"}]}},
        },
    )

    s3.put_object(Bucket=bucket, Key="incoming/churn/a.csv", Body=b"x,y\n")

    # delivered during the put: the executions exist already
    [plain_run] = sfn.list_executions(stateMachineArn=plain)["executions"]
    [shaped_run] = sfn.list_executions(stateMachineArn=shaped)["executions"]
    plain_done = wait_execution(plain_run["executionArn"])
    shaped_done = wait_execution(shaped_run["executionArn"])
    assert plain_done["status"] == "SUCCEEDED"
    assert json.loads(plain_done["input"])["detail"]["object"]["key"] == "incoming/churn/a.csv"
    assert json.loads(shaped_done["input"]) == {
        "source": {"bucket": bucket, "key": "incoming/churn/a.csv"},
        "note": f"s3://{bucket}/incoming/churn/a.csv",
    }


def test_disabled_and_schedule_only_rules_do_not_fire(make_function, uid, tmp_path):
    log = tmp_path / "never.jsonl"
    fn = make_function(recorder(log))
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName=uid("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = uid("autoloop.test")
    targets = [{"Id": "fn", "Arn": fn["FunctionArn"]}, {"Id": "q", "Arn": queue_arn}]
    put_rule(uid("disabled"), targets, {"source": [source]}, State="DISABLED")
    put_rule(uid("nightly"), targets, ScheduleExpression="rate(1 day)")

    put_event(source, {"n": 1})
    assert eventbridge.drain(30)

    assert received(log) == []
    assert lambda_runtime.invocations().get(fn["FunctionName"], 0) == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)


def test_native_targets_still_delivered_next_to_lambda(make_function, uid, tmp_path):
    log = tmp_path / "both.jsonl"
    fn = make_function(recorder(log))
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName=uid("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = uid("autoloop.test")
    put_rule(
        uid("both"),
        [{"Id": "q", "Arn": queue_arn}, {"Id": "fn", "Arn": fn["FunctionArn"]}],
        {"source": [source]},
    )

    put_event(source, {"n": 2})
    assert eventbridge.drain(30)

    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    assert json.loads(messages[0]["Body"])["detail"] == {"n": 2}
    assert [e["detail"] for e in received(log)] == [{"n": 2}]


def test_fire_schedule_sends_a_scheduled_event(make_function, uid, tmp_path):
    log = tmp_path / "schedule.jsonl"
    fn = make_function(recorder(log))
    name = uid("nightly")
    rule_arn = put_rule(name, [{"Id": "fn", "Arn": fn["FunctionArn"]}], ScheduleExpression="rate(1 day)")
    off = uid("off")
    put_rule(off, [{"Id": "fn", "Arn": fn["FunctionArn"]}], ScheduleExpression="rate(1 day)", State="DISABLED")

    assert eventbridge.fire_schedule(name, time="2026-01-02T03:04:05Z") == 1
    assert eventbridge.fire_schedule(rule_arn) == 1
    assert eventbridge.fire_schedule(off) == 0
    assert eventbridge.drain(30)

    events = received(log)
    assert len(events) == 2
    first = events[0]
    assert first["source"] == "aws.events"
    assert first["detail-type"] == "Scheduled Event"
    assert first["resources"] == [rule_arn]
    assert first["detail"] == {}
    assert first["time"] == "2026-01-02T03:04:05Z"
    assert events[0]["id"] != events[1]["id"]
    with pytest.raises(KeyError):
        eventbridge.fire_schedule(uid("missing"))


def test_failing_lambda_target_is_retried_twice_then_logged(make_function, uid, tmp_path):
    log = tmp_path / "fail.jsonl"
    fn = make_function(recorder(log, fail=True))
    source = uid("autoloop.test")
    put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [source]})

    put_event(source, {"n": 3})  # PutEvents itself succeeds
    assert eventbridge.drain(30)

    assert len(received(log)) == 3
    assert lambda_runtime.async_failures()[-1]["function_name"] == fn["FunctionName"]


def test_input_and_input_path(make_function, uid, tmp_path):
    log = tmp_path / "inputs.jsonl"
    fn = make_function(recorder(log))
    source = uid("autoloop.test")
    put_rule(
        uid("rule"),
        [
            {"Id": "const", "Arn": fn["FunctionArn"], "Input": json.dumps({"fixed": True})},
            {"Id": "path", "Arn": fn["FunctionArn"], "InputPath": "$.detail.job"},
        ],
        {"source": [source]},
    )

    put_event(source, {"job": {"name": "run-1-train"}})
    assert eventbridge.drain(30)

    assert sorted(received(log), key=json.dumps) == sorted([{"fixed": True}, {"name": "run-1-train"}], key=json.dumps)


def test_transform_substitution_rules():
    event = {"detail": {"name": 'a "quoted" name', "size": 3, "obj": {"k": [1]}}}
    transformer = {
        "InputPathsMap": {"name": "$.detail.name", "size": "$.detail.size", "obj": "$.detail.obj", "none": "$.nope"},
        "InputTemplate": '{"n": <name>, "s": "<name> has <size>", "size": <size>, "obj": <obj>, "missing": <none>}',
    }

    assert eventbridge._transform(transformer, event, rule=None) == {
        "n": 'a "quoted" name',
        "s": 'a "quoted" name has 3',
        "size": 3,
        "obj": {"k": [1]},
        "missing": None,
    }
    plain = {"InputPathsMap": {"name": "$.detail.name"}, "InputTemplate": "Job <name> failed"}
    assert eventbridge._transform(plain, event, rule=None) == 'Job a "quoted" name failed'
