"""sfn_time: Wait states and Retry intervals scaled without editing the ASL (server mode)."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from localaws.clients import client
from localaws.stepfunctions import clock as sfn_time

pytestmark = pytest.mark.usefixtures("local_aws")


def flaky_handler(counter: str, failures: int) -> str:
    """Fails ``failures`` times with errorType Flaky, then succeeds."""
    return textwrap.dedent(
        f"""
        class Flaky(Exception):
            pass

        def handler(event, context):
            with open({counter!r}, "a") as fh:
                fh.write("x")
            with open({counter!r}) as fh:
                attempt = len(fh.read())
            if attempt <= {failures}:
                raise Flaky(f"attempt {{attempt}}")
            return {{"attempt": attempt}}
        """
    )


def test_wait_60s_and_retry_interval_30s_finish_quickly_when_scaled(
    make_function, state_machine, run_execution, tmp_path
):
    fn = make_function(flaky_handler(str(tmp_path / "count"), failures=2))
    arn = state_machine(
        {
            "StartAt": "Hold",
            "States": {
                "Hold": {"Type": "Wait", "Seconds": 60, "Next": "Work"},
                "Work": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": fn["FunctionArn"], "Payload": {}},
                    "OutputPath": "$.Payload",
                    "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2.0}],
                    "End": True,
                },
            },
        }
    )
    sfn_time.set_time_scale(0.01)

    started = time.monotonic()
    # 0.6 s wait + 0.3 s + 0.6 s between attempts; unscaled, 150 s would outlast this guard
    described = run_execution(arn, timeout=60)
    elapsed = time.monotonic() - started

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"attempt": 3}  # two retries happened
    assert elapsed > 1.3, elapsed  # really waited, scaled
    history = client("stepfunctions").get_execution_history(executionArn=described["executionArn"])
    types = [e["type"] for e in history["events"]]
    assert "WaitStateExited" in types
    assert types.count("TaskFailed") == 2, types


def test_scale_from_the_environment(monkeypatch, state_machine, run_execution):
    arn = state_machine(
        {
            "StartAt": "Hold",
            "States": {"Hold": {"Type": "Wait", "SecondsPath": "$.seconds", "End": True}},
        }
    )
    monkeypatch.setenv(sfn_time.ENV_VAR, "0.005")
    assert sfn_time.time_scale() == 0.005

    started = time.monotonic()
    described = run_execution(arn, {"seconds": 300}, timeout=60)  # 1.5 s scaled; 300 s would outlast the guard

    assert described["status"] == "SUCCEEDED"
    assert time.monotonic() - started > 1.2


def test_unscaled_by_default(state_machine, run_execution):
    assert sfn_time.time_scale() == 1.0
    arn = state_machine({"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 1, "End": True}}})
    started = time.monotonic()
    assert run_execution(arn)["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 1.0


def test_task_timeout_is_not_scaled(make_function, state_machine, run_execution):
    # the handler never sends the token: the task times out after TimeoutSeconds, unscaled
    fn = make_function("def handler(event, context):\n    return 'launched, no callback'\n")
    arn = state_machine(
        {
            "StartAt": "Launch",
            "States": {
                "Launch": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": fn["FunctionName"], "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 2,
                    "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}],
                    "End": True,
                },
                "TimedOut": {"Type": "Pass", "Result": {"timed_out": True}, "End": True},
            },
        }
    )
    sfn_time.set_time_scale(0.01)

    started = time.monotonic()
    described = run_execution(arn, timeout=60)
    elapsed = time.monotonic() - started

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"timed_out": True}
    assert elapsed > 1.9, elapsed  # 2 s, not 0.02 s


def test_stopping_an_execution_interrupts_a_scaled_wait(state_machine, wait_execution, uid):
    arn = state_machine({"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 100000, "End": True}}})
    sfn_time.set_time_scale(0.01)  # still 1000 s
    sfn = client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn, name=uid("e"))["executionArn"]
    deadline = time.monotonic() + 30
    while "WaitStateEntered" not in [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]:
        assert time.monotonic() < deadline, "the execution never entered its Wait state"
        time.sleep(0.02)

    sfn.stop_execution(executionArn=execution)

    assert wait_execution(execution, timeout=30)["status"] == "ABORTED"


def test_scale_validation(monkeypatch):
    with pytest.raises(ValueError):
        sfn_time.set_time_scale(-1)
    monkeypatch.setenv(sfn_time.ENV_VAR, "fast")
    with pytest.raises(ValueError):
        sfn_time.time_scale()
    sfn_time.set_time_scale(0.5)
    assert sfn_time.time_scale() == 0.5  # the explicit setting wins over the environment
    sfn_time.set_time_scale(None)
    monkeypatch.setenv(sfn_time.ENV_VAR, "0.25")
    assert sfn_time.time_scale() == 0.25


def test_install_is_idempotent():
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    sfn_time.install()
    sfn_time.install()
    assert WaitFunction._wait_interval is sfn_time._wait_interval
    assert isinstance(retrier_decl.time, sfn_time._ScaledTime)
    assert retrier_decl.time.monotonic is time.monotonic  # everything else is the real module
