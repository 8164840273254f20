"""lambda_runtime: functions' real handlers run in this process (server mode unless noted)."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from localaws.awslambda import runtime as lambda_runtime
from localaws.clients import client

pytestmark = pytest.mark.usefixtures("local_aws")

ENV_HANDLER = textwrap.dedent(
    """
    import os

    def handler(event, context):
        return {
            "echo": event,
            "env": {k: os.environ.get(k) for k in (
                "STAGE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_REGION", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_DISABLED")},
            "context": {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
            },
        }
    """
)


def test_invoke_runs_the_real_handler_with_env_and_context(make_function, invoke_fn):
    fn = make_function(ENV_HANDLER, env={"STAGE": "local"}, timeout=7, memory=512)

    result, response = invoke_fn(fn["FunctionName"], {"n": 41})

    assert "FunctionError" not in response
    assert result["echo"] == {"n": 41}
    assert result["env"] == {
        "STAGE": "local",
        "AWS_LAMBDA_FUNCTION_NAME": fn["FunctionName"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    ctx = result["context"]
    assert ctx["function_name"] == fn["FunctionName"]
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == fn["FunctionArn"]
    assert ctx["memory_limit_in_mb"] == 512
    assert len(ctx["aws_request_id"]) == 36
    assert ctx["log_group_name"] == f"/aws/lambda/{fn['FunctionName']}"
    assert "[$LATEST]" in ctx["log_stream_name"]
    assert 6000 < ctx["remaining"] <= 7000
    # the function's environment was applied for the call only
    assert "STAGE" not in os.environ
    assert os.environ.get("AWS_LAMBDA_FUNCTION_NAME") != fn["FunctionName"]


def test_metrics_can_be_enabled_by_the_function(make_function, invoke_fn):
    fn = make_function(ENV_HANDLER, env={"POWERTOOLS_METRICS_DISABLED": "false"})
    result, _ = invoke_fn(fn["FunctionName"])
    assert result["env"]["POWERTOOLS_METRICS_DISABLED"] == "false"


def test_functions_with_the_same_module_names_do_not_collide(make_function, invoke_fn):
    def code(tag: str) -> dict[str, str]:
        return {
            "app.py": "import helpers\n\ndef handler(event, context):\n    return helpers.TAG\n",
            "helpers.py": f"TAG = {tag!r}\n",
        }

    first = make_function(code("first"))
    second = make_function(code("second"))

    for _ in range(2):  # cold, then warm
        assert invoke_fn(first["FunctionName"])[0] == "first"
        assert invoke_fn(second["FunctionName"])[0] == "second"
    assert "helpers" not in sys.modules


def test_module_code_runs_once_per_sandbox(make_function, invoke_fn):
    fn = make_function("import uuid\nSANDBOX = uuid.uuid4().hex\n\ndef handler(event, context):\n    return SANDBOX\n")
    first, _ = invoke_fn(fn["FunctionName"])
    second, _ = invoke_fn(fn["FunctionName"])
    assert first == second

    client("lambda").update_function_configuration(
        FunctionName=fn["FunctionName"], Environment={"Variables": {"NEW": "1"}}
    )
    third, _ = invoke_fn(fn["FunctionName"])
    assert third != first  # a configuration change gets a new sandbox, as on Lambda


def test_dotted_handler_in_the_zip_with_relative_import(make_function, invoke_fn):
    fn = make_function(
        {
            "pkg/__init__.py": "",
            "pkg/util.py": "def double(x):\n    return 2 * x\n",
            "pkg/entry.py": "from . import util\n\ndef run(event, context):\n    return util.double(event['x'])\n",
        },
        handler="pkg.entry.run",
    )
    assert invoke_fn(fn["FunctionName"], {"x": 21})[0] == 42


def test_dotted_handler_importable_from_sys_path(make_function, invoke_fn, tmp_path, monkeypatch):
    package = tmp_path / "layerpkg_local"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handlers.py").write_text(
        "def start(event, context):\n    return {'from': 'layer', 'name': context.function_name}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = make_function({"README.txt": "code lives in the layer"}, handler="layerpkg_local.handlers.start")

    result, response = invoke_fn(fn["FunctionName"])

    assert "FunctionError" not in response
    assert result == {"from": "layer", "name": fn["FunctionName"]}


def test_exception_comes_back_as_errortype_and_marks_the_invocation(make_function, invoke_fn):
    fn = make_function(
        textwrap.dedent(
            """
            class ModelRejected(Exception):
                pass

            def handler(event, context):
                raise ModelRejected(f"auc {event['auc']} below threshold")
            """
        )
    )

    payload, response = invoke_fn(fn["FunctionName"], {"auc": 0.5})

    assert response["FunctionError"]
    assert payload["errorType"] == "ModelRejected"
    assert payload["errorMessage"] == "auc 0.5 below threshold"
    assert any("app.py" in line and "handler" in line for line in payload["stackTrace"])
    assert not any("lambda_runtime" in line for line in payload["stackTrace"])


@pytest.mark.parametrize(
    ("files", "handler", "error_type"),
    [
        ({"app.py": "import no_such_module_xyz\n"}, "app.handler", "Runtime.ImportModuleError"),
        ({"app.py": "def other(e, c):\n    pass\n"}, "app.handler", "Runtime.HandlerNotFound"),
        ({"app.py": "def handler(e, c)\n"}, "app.handler", "Runtime.UserCodeSyntaxError"),
        ({"app.py": "def handler(e, c):\n    return {1, 2}\n"}, "app.handler", "Runtime.MarshalError"),
    ],
)
def test_runtime_errors(make_function, invoke_fn, files, handler, error_type):
    fn = make_function(files, handler=handler)
    payload, response = invoke_fn(fn["FunctionName"])
    assert response["FunctionError"]
    assert payload["errorType"] == error_type


def test_output_goes_to_the_function_log_not_the_console(make_function, invoke_fn, capfd, local_home: Path):
    marker = "marker-" + os.urandom(4).hex()
    fn = make_function(
        textwrap.dedent(
            f"""
            import sys
            from aws_lambda_powertools import Logger

            logger = Logger(service="t")

            def handler(event, context):
                print("{marker} stdout")
                print("{marker} stderr", file=sys.stderr)
                logger.info("{marker} powertools")
                return "ok"
            """
        )
    )

    _, response = invoke_fn(fn["FunctionName"], LogType="Tail")
    invoke_fn(fn["FunctionName"])  # warm: the module-level Logger still writes to the log

    out, err = capfd.readouterr()
    assert marker not in out + err
    log = (local_home / "logs" / f"{fn['FunctionName']}.log").read_text()
    assert log.count(f"{marker} stdout") == 2
    assert f"{marker} stderr" in log
    assert log.count(f"{marker} powertools") == 2
    assert log.count("START RequestId:") == 2 and "REPORT RequestId:" in log
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"{marker} stdout" in tail
    # also in moto's CloudWatch Logs, like on AWS
    events = client("logs").filter_log_events(logGroupName=f"/aws/lambda/{fn['FunctionName']}")
    assert any(marker in e["message"] for e in events["events"])


def test_timeout_returns_sandbox_timedout_and_stops_the_handler(make_function, invoke_fn, tmp_path):
    done, stopped = tmp_path / "finished", tmp_path / "stopped"
    fn = make_function(
        textwrap.dedent(
            f"""
            import time

            def handler(event, context):
                try:
                    end = time.monotonic() + 60
                    while time.monotonic() < end:
                        time.sleep(0.02)
                    open({str(done)!r}, "w").write("ran to the end")
                    return "late"
                except BaseException as stop:
                    open({str(stopped)!r}, "w").write(type(stop).__name__)
                    raise
            """
        ),
        timeout=1,
    )

    started = time.monotonic()
    payload, response = invoke_fn(fn["FunctionName"])

    assert response["FunctionError"]
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "timed out after 1.00 seconds" in payload["errorMessage"]
    assert time.monotonic() - started >= 0.9  # it ran for its Timeout
    # the runaway thread is interrupted: it says so (well before its 60 s loop could end)
    deadline = time.monotonic() + 20
    while not stopped.exists():
        assert time.monotonic() < deadline, "the handler thread was not interrupted"
        time.sleep(0.02)
    assert stopped.read_text() == "SandboxTimedout" and not done.exists()


def test_invocation_counts(make_function, invoke_fn):
    fn = make_function("def handler(e, c):\n    return 1\n")
    before = lambda_runtime.invocations().get(fn["FunctionName"], 0)
    for _ in range(3):
        invoke_fn(fn["FunctionName"])
    assert lambda_runtime.invocations()[fn["FunctionName"]] == before + 3


def test_event_invocation_returns_at_once_and_retries_twice(make_function, tmp_path):
    attempts, go = tmp_path / "attempts", tmp_path / "go"
    fn = make_function(
        textwrap.dedent(
            f"""
            import os
            import time

            def handler(event, context):
                # waits for the caller's go, given only once Invoke has returned
                end = time.monotonic() + 5
                while not os.path.exists({str(go)!r}) and time.monotonic() < end:
                    time.sleep(0.01)
                seen = "go" if os.path.exists({str(go)!r}) else "no-go"
                with open({str(attempts)!r}, "a") as fh:
                    fh.write(event["id"] + ":" + seen + "\\n")
                raise RuntimeError("always fails")
            """
        )
    )
    response = client("lambda").invoke(
        FunctionName=fn["FunctionName"], InvocationType="Event", Payload=json.dumps({"id": "e1"})
    )
    assert response["StatusCode"] == 202
    go.touch()  # had Invoke waited for the handler, its first attempt would have seen no go

    assert lambda_runtime.drain(30)
    assert attempts.read_text().split() == ["e1:go", "e1:go", "e1:go"]  # 1 + 2 retries
    failure = lambda_runtime.async_failures()[-1]
    assert failure["function_name"] == fn["FunctionName"]
    assert failure["attempts"] == 3
    assert "always fails" in failure["error"]


def test_state_machine_catch_matches_the_exception_class_name(make_function, state_machine, run_execution):
    fn = make_function(
        textwrap.dedent(
            """
            class ModelRejected(Exception):
                pass

            def handler(event, context):
                if event["auc"] < 0.8:
                    raise ModelRejected("auc too low")
                return {"approved": True}
            """
        )
    )
    arn = state_machine(
        {
            "StartAt": "Gate",
            "States": {
                "Gate": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": fn["FunctionArn"], "Payload.$": "$"},
                    "ResultSelector": {"result.$": "$.Payload"},
                    "Catch": [
                        {"ErrorEquals": ["ValueError"], "Next": "WrongBranch"},
                        {"ErrorEquals": ["ModelRejected"], "ResultPath": "$.error", "Next": "Rejected"},
                    ],
                    "End": True,
                },
                "WrongBranch": {"Type": "Fail", "Error": "Wrong"},
                "Rejected": {"Type": "Pass", "End": True},
            },
        }
    )

    rejected = run_execution(arn, {"auc": 0.5})
    approved = run_execution(arn, {"auc": 0.9})

    assert rejected["status"] == "SUCCEEDED"
    output = json.loads(rejected["output"])
    assert output["error"]["Error"] == "ModelRejected"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "auc too low"
    assert approved["status"] == "SUCCEEDED"
    assert json.loads(approved["output"]) == {"result": {"approved": True}}


def test_wait_for_task_token_completed_by_the_handler(make_function, state_machine, run_execution):
    fn = make_function(
        textwrap.dedent(
            """
            import json
            import boto3

            sfn = boto3.client("stepfunctions")

            def handler(event, context):
                sfn.send_task_success(
                    taskToken=event["token"],
                    output=json.dumps({"job": event["job"], "status": "Completed"}),
                )
                return "launched"
            """
        )
    )
    arn = state_machine(
        {
            "StartAt": "Launch",
            "States": {
                "Launch": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": fn["FunctionName"],
                        "Payload": {"token.$": "$$.Task.Token", "job.$": "$.job"},
                    },
                    "TimeoutSeconds": 30,
                    "ResultPath": "$.result",
                    "End": True,
                }
            },
        }
    )

    described = run_execution(arn, {"job": "run-1-train"})

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["result"] == {"job": "run-1-train", "status": "Completed"}


def test_in_process_mode_runs_handlers_against_the_mock(mocked_aws, make_function, invoke_fn):
    assert "AWS_ENDPOINT_URL" not in os.environ
    s3 = client("s3")
    s3.create_bucket(Bucket="in-process-bucket")
    fn = make_function(
        textwrap.dedent(
            """
            import os
            import boto3

            def handler(event, context):
                boto3.client("s3").put_object(
                    Bucket=os.environ["BUCKET"], Key=event["key"], Body=b"written by handler"
                )
                return "ok"
            """
        ),
        env={"BUCKET": "in-process-bucket"},
    )

    result, response = invoke_fn(fn["FunctionName"], {"key": "out/x.txt"})

    assert result == "ok", response
    body = s3.get_object(Bucket="in-process-bucket", Key="out/x.txt")["Body"].read()
    assert body == b"written by handler"


def test_install_is_idempotent():
    from moto.awslambda.models import LambdaFunction

    lambda_runtime.install()
    patched = LambdaFunction._invoke_lambda
    lambda_runtime.install()
    assert LambdaFunction._invoke_lambda is patched
    assert patched is lambda_runtime._invoke_lambda
