"""localaws.logs.shipping: Lambda, Step Functions and followed files in CloudWatch Logs, read
back through the Logs API of the local server, as `aws logs` and `sam logs` read them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from localaws.clients import client
from localaws.logs import shipping
from tests.support import wait_until

pytestmark = pytest.mark.usefixtures("local_aws")

VENDED = "arn:aws:logs:us-east-1:123456789012:log-group:{}:*"


def messages(group: str, **filters: Any) -> list[str]:
    return [e["message"] for e in client("logs").filter_log_events(logGroupName=group, **filters)["events"]]


def streams(group: str) -> list[str]:
    return [s["logStreamName"] for s in client("logs").describe_log_streams(logGroupName=group)["logStreams"]]


def test_a_function_logs_to_its_configured_group(make_function, invoke_fn, uid):
    group = f"/autoloop/{uid('custom')}"
    name = uid("fn")
    config = client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Handler="app.handler",
        Role=make_function("def handler(e, c):\n    return 0\n")["Role"],
        Code={"ZipFile": _zip("def handler(event, context):\n    print('hello from', context.log_group_name)\n")},
        LoggingConfig={"LogGroup": group, "LogFormat": "Text"},
    )
    assert config["LoggingConfig"] == {"LogGroup": group, "LogFormat": "Text"}
    invoke_fn(name)
    lines = messages(group)
    assert f"hello from {group}" in lines
    assert lines[0].startswith("START RequestId:") and lines[-1].startswith("REPORT RequestId:")
    [stream] = streams(group)
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream)
    assert messages(group, filterPattern="hello") == [f"hello from {group}"]  # `sam logs --filter`

    moved = f"{group}-2"
    lam = client("lambda")
    assert lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogGroup": moved})[
        "LoggingConfig"]["LogGroup"] == moved
    invoke_fn(name)
    assert f"hello from {moved}" in messages(moved)


def test_without_a_logging_config_the_group_is_aws_lambda(make_function, invoke_fn):
    config = make_function("def handler(event, context):\n    print('plain')\n")
    name = config["FunctionName"]
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    invoke_fn(name)
    assert "plain" in messages(f"/aws/lambda/{name}")


def _zip(source: str) -> bytes:
    from tests.localaws.conftest import zip_files

    return zip_files({"app.py": source})


def machine(definition: dict[str, Any], uid: Any, level: str, include_data: bool) -> tuple[str, str, str]:
    name = uid("sm")
    group = f"/aws/vendedlogs/states/{name}"
    client("logs").create_log_group(logGroupName=group)
    arn = client("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn",
        loggingConfiguration={"level": level, "includeExecutionData": include_data,
                              "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": VENDED.format(group)}}]},
    )["stateMachineArn"]
    return name, arn, group


def run(arn: str, uid: Any, wait_execution: Any) -> dict[str, Any]:
    started = client("stepfunctions").start_execution(stateMachineArn=arn, name=uid("run"), input='{"secret": 1}')
    return dict(wait_execution(started["executionArn"], 15, sfn=client("stepfunctions")))


PASS = {"StartAt": "Step", "States": {"Step": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "Step", "States": {"Step": {"Type": "Pass", "Next": "Boom"},
                                      "Boom": {"Type": "Fail", "Error": "Bad", "Cause": "it broke"}}}


def test_executions_log_every_event_to_the_vended_group(uid, wait_execution):
    name, arn, group = machine(PASS, uid, "ALL", include_data=False)
    execution = run(arn, uid, wait_execution)
    [stream] = streams(group)
    assert re.fullmatch(rf"states/{name}/\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}/[0-9a-f]{{8}}", stream)
    records = [json.loads(m) for m in messages(group)]
    assert [r["type"] for r in records] == ["ExecutionStarted", "PassStateEntered", "PassStateExited",
                                            "ExecutionSucceeded"]
    first = records[0]
    assert set(first) == {"id", "type", "details", "previous_event_id", "event_timestamp", "execution_arn"}
    assert first["execution_arn"] == execution["executionArn"] and first["event_timestamp"].isdigit()
    assert "input" not in first["details"]  # IncludeExecutionData false
    assert records[1]["details"]["name"] == "Step"


def test_execution_data_only_when_asked_for(uid, wait_execution):
    _, arn, group = machine(PASS, uid, "ALL", include_data=True)
    run(arn, uid, wait_execution)
    started = json.loads(messages(group)[0])
    assert json.loads(started["details"]["input"]) == {"secret": 1}


def test_level_error_logs_only_the_failure_events(uid, wait_execution):
    _, arn, group = machine(FAIL, uid, "ERROR", include_data=False)
    assert run(arn, uid, wait_execution)["status"] == "FAILED"
    records = [json.loads(m) for m in messages(group)]
    assert [r["type"] for r in records] == ["FailStateEntered", "ExecutionFailed"]
    assert records[-1]["details"] == {"error": "Bad", "cause": "it broke"}


def test_logging_off_writes_nothing(uid, wait_execution):
    _, arn, group = machine(PASS, uid, "OFF", include_data=False)
    run(arn, uid, wait_execution)
    assert streams(group) == []


def test_a_followed_file_reaches_its_stream_as_it_grows(tmp_path: Path, uid):
    group, stream = "/aws/sagemaker/ProcessingJobs", shipping.job_stream("processing", uid("job"), 1796400000)
    log = tmp_path / "logs.txt"
    log.write_text("first line\n")
    shipping.follow(log, group, stream)
    try:
        assert stream in streams(group)  # created when the container starts, as SageMaker does
        wait_until(lambda: messages(group, logStreamNames=[stream]) == ["first line"], 10, "the first line")
        with log.open("a") as fh:
            fh.write("second line\npartial")
        wait_until(lambda: "second line" in messages(group, logStreamNames=[stream]), 10, "the second line")
        assert "partial" not in messages(group, logStreamNames=[stream])  # a line is shipped once it ends
    finally:
        shipping.unfollow(log)
    assert messages(group, logStreamNames=[stream]) == ["first line", "second line", "partial"]
    assert log not in shipping.following()


def test_sagemaker_stream_names():
    assert shipping.job_stream("training", "run-train", 1796403139.7) == "run-train/algo-1-1796403139"
    assert shipping.job_stream("processing", "run-evaluate", 5) == "run-evaluate/algo-1-5"
    assert re.fullmatch(r"run-transform/i-[0-9a-f]{17}-5", shipping.job_stream("transform", "run-transform", 5))
    assert shipping.endpoint_group("ep") == "/aws/sagemaker/Endpoints/ep"
    with pytest.raises(ValueError, match="unknown job kind"):
        shipping.job_stream("tuning", "x", 1)
