"""sfn_mock: Step Functions Local's mock config (``SFN_MOCK_CONFIG``, ``arn#TestCase``) on moto.

In-process (``moto.mock_aws`` with the execution engine on), plus one test through moto's
HTTP server in this process. The Lambda functions named in the state machine do not exist:
mocked states never call them, unmocked ones fail with a not-found error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws.stepfunctions import mock as sfn_mock
from tests.support import wait_for_execution

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sfn-mock-test"
PREPARE_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:prepare-missing"
TRAIN_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:train-missing"
SFN_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}

# Prepare: optimised integration (lambda:invoke), retried on Transient (1 s, 2 retries).
# Train: plain Lambda ARN task, ModelError caught into HandleFailure.
DEFINITION = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": PREPARE_FN, "Payload.$": "$"},
            "ResultSelector": {"data.$": "$.Payload"},
            "ResultPath": "$.prepared",
            "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0}],
            "Next": "Train",
        },
        "Train": {
            "Type": "Task",
            "Resource": TRAIN_FN,
            "ResultPath": "$.trained",
            "Catch": [{"ErrorEquals": ["ModelError"], "ResultPath": "$.error", "Next": "HandleFailure"}],
            "End": True,
        },
        "HandleFailure": {"Type": "Pass", "Result": True, "ResultPath": "$.handled", "End": True},
    },
}

TEST_CASES = {
    "HappyPath": {"Prepare": "PrepareOk", "Train": "TrainOk"},
    "RetryThenSucceed": {"Prepare": "PrepareTransientOnce", "Train": "TrainOk"},
    "RetriesExhausted": {"Prepare": "PrepareAlwaysTransient"},
    "CaughtFailure": {"Prepare": "PrepareOk", "Train": "TrainModelError"},
    "OnlyTrainMocked": {"Train": "TrainOk"},
}
MOCK_CONFIG: dict[str, Any] = {
    "StateMachines": {
        "Pipeline": {"TestCases": TEST_CASES},
        "PipelineOverHttp": {"TestCases": TEST_CASES},
    },
    "MockedResponses": {
        "PrepareOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"rows": 100}}}},
        "PrepareTransientOnce": {
            "0": {"Throw": {"Error": "Transient", "Cause": "throttled on attempt 0"}},
            "1": {"Return": {"StatusCode": 200, "Payload": {"rows": 42}}},
        },
        "PrepareAlwaysTransient": {"0-2": {"Throw": {"Error": "Transient", "Cause": "still throttled"}}},
        "TrainOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"model": "m-1", "auc": 0.91}}}},
        "TrainModelError": {"0": {"Throw": {"Error": "ModelError", "Cause": "loss is NaN"}}},
    },
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def mock_installed() -> Iterator[None]:
    """Patch moto and load MOCK_CONFIG; afterwards restore moto unless it was patched before."""
    was_installed = sfn_mock.installed()
    sfn_mock.install(MOCK_CONFIG)
    try:
        yield
    finally:
        sfn_mock.clear()
        if not was_installed:
            sfn_mock.uninstall()


@pytest.fixture
def sfn(mock_installed: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # requests must be intercepted
    monkeypatch.delenv(sfn_mock.ENV_VAR, raising=False)
    with mock_aws(config=SFN_CONFIG):
        yield boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def pipeline(sfn: Any) -> str:
    return create_pipeline(sfn, "Pipeline")


def create_pipeline(sfn: Any, name: str) -> str:
    return sfn.create_state_machine(name=name, definition=json.dumps(DEFINITION), roleArn=ROLE_ARN)[  # type: ignore[no-any-return]
        "stateMachineArn"
    ]


_counter = iter(range(1_000_000))


def start(sfn: Any, arn: str, payload: Any = None) -> str:
    return sfn.start_execution(  # type: ignore[no-any-return]
        stateMachineArn=arn, name=f"exec-{next(_counter)}-{time.monotonic_ns()}", input=json.dumps(payload or {})
    )["executionArn"]


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]  # type: ignore[no-any-return]


def run(sfn: Any, arn: str, payload: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    execution_arn = start(sfn, arn, payload)
    return wait_for_execution(execution_arn, sfn=sfn), history(sfn, execution_arn)


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


# --------------------------------------------------------------------------- tests


def test_mocked_return_flows_into_the_output(sfn: Any, pipeline: str) -> None:
    described, events = run(sfn, f"{pipeline}#HappyPath", {"run": "r1"})

    assert described["status"] == "SUCCEEDED", described
    assert described["stateMachineArn"] == pipeline
    assert json.loads(described["output"]) == {
        "run": "r1",
        "prepared": {"data": {"rows": 100}},  # lambda:invoke: Return is the API response
        "trained": {"model": "m-1", "auc": 0.91},  # Lambda ARN task: Return's Payload
    }
    assert entered(events) == ["Prepare", "Train"]
    assert not [e for e in events if e["type"].endswith("Failed")]


def test_attempt_0_throws_then_attempt_1_returns_after_a_retry(sfn: Any, pipeline: str) -> None:
    t0 = time.monotonic()
    described, events = run(sfn, f"{pipeline}#RetryThenSucceed")
    elapsed = time.monotonic() - t0

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["prepared"] == {"data": {"rows": 42}}  # attempt 1's Return
    types = [e["type"] for e in events]
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [(f["error"], f["cause"]) for f in failed] == [("Transient", "throttled on attempt 0")]
    # Prepare was scheduled twice (attempt 0 failed, attempt 1 succeeded), entered once
    assert types.count("TaskScheduled") == 2
    assert types.index("TaskFailed") < types.index("TaskSucceeded")
    assert entered(events) == ["Prepare", "Train"]
    assert elapsed >= 0.9  # the Retry's IntervalSeconds really passed


def test_range_throws_on_every_attempt_until_retries_are_exhausted(sfn: Any, pipeline: str) -> None:
    described, events = run(sfn, f"{pipeline}#RetriesExhausted")

    assert described["status"] == "FAILED", described
    assert (described.get("error"), described.get("cause")) == ("Transient", "still throttled")
    assert [e["type"] for e in events].count("TaskFailed") == 3  # attempts 0, 1, 2 ("0-2")
    assert entered(events) == ["Prepare"]


def test_mocked_throw_is_caught(sfn: Any, pipeline: str) -> None:
    described, events = run(sfn, f"{pipeline}#CaughtFailure")

    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["error"] == {"Error": "ModelError", "Cause": "loss is NaN"}
    assert output["handled"] is True
    assert "trained" not in output
    assert entered(events) == ["Prepare", "Train", "HandleFailure"]


@pytest.mark.parametrize("suffix", ["", "#OnlyTrainMocked"], ids=["no-test-case", "state-not-in-test-case"])
def test_unmocked_state_calls_the_real_lambda(sfn: Any, pipeline: str, suffix: str) -> None:
    described, events = run(sfn, pipeline + suffix)

    assert described["status"] == "FAILED", described
    assert "not found" in (described.get("cause") or "").lower(), described
    assert PREPARE_FN.rsplit(":", 1)[1] in described["cause"]
    assert entered(events) == ["Prepare"]


def test_pass_only_machine_runs_for_real_without_a_test_case(sfn: Any) -> None:
    arn = sfn.create_state_machine(
        name="PassOnly",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x": 1}, "End": True}}}),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]
    described, _ = run(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"x": 1}


def test_unknown_test_case_is_rejected(sfn: Any, pipeline: str) -> None:
    with pytest.raises(ClientError) as raised:
        start(sfn, f"{pipeline}#NoSuchCase")
    assert raised.value.response["Error"]["Code"] == "InvalidName"
    assert "NoSuchCase" in raised.value.response["Error"]["Message"]
    assert sfn.list_executions(stateMachineArn=pipeline)["executions"] == []


def test_without_install_moto_rejects_the_test_case_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    was_installed = sfn_mock.installed()
    sfn_mock.uninstall()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    try:
        with mock_aws(config=SFN_CONFIG):
            client = boto3.client("stepfunctions", region_name=REGION)
            arn = create_pipeline(client, "Pipeline")
            with pytest.raises(ClientError) as raised:
                start(client, f"{arn}#HappyPath")
    finally:
        if was_installed:
            sfn_mock.install()
    assert raised.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


def test_config_from_env_and_python_helper(
    sfn: Any, pipeline: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "MockConfigFile.json"
    path.write_text(json.dumps(MOCK_CONFIG))
    sfn_mock.clear()
    assert sfn_mock.set_config_from_env() is None  # unset: nothing loaded
    monkeypatch.setenv(sfn_mock.ENV_VAR, str(path))

    # nothing loaded: the lookup reads $SFN_MOCK_CONFIG itself
    started = sfn_mock.start_execution_with_test_case(sfn, pipeline, "CaughtFailure", {"k": 1}, name="via-env")
    described = wait_for_execution(started["executionArn"], sfn=sfn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["error"]["Error"] == "ModelError"

    config = sfn_mock.set_config_from_env()
    assert config is not None and config.source == str(path)
    assert config.test_case("Pipeline", "HappyPath") is not None
    assert config.test_case("Pipeline", "Nope") is None
    started = sfn_mock.start_execution_with_test_case(sfn, pipeline, "HappyPath")
    assert json.loads(wait_for_execution(started["executionArn"], sfn=sfn)["output"])["trained"]["model"] == "m-1"


def test_over_http_moto_server_in_this_process(mock_installed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        monkeypatch.setenv("MOTO_PORT", str(port))  # the engine's inner clients
        client = boto3.client("stepfunctions", region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}")
        arn = create_pipeline(client, "PipelineOverHttp")
        described, events = run(client, f"{arn}#CaughtFailure")
        assert described["status"] == "SUCCEEDED", described
        assert entered(events) == ["Prepare", "Train", "HandleFailure"]
        with pytest.raises(ClientError) as raised:
            start(client, f"{arn}#NoSuchCase")
        assert raised.value.response["Error"]["Code"] == "InvalidName"
        client.delete_state_machine(stateMachineArn=arn)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["MockedResponses"]["PrepareTransientOnce"].pop("0"), "consecutively"),
        (lambda c: c["StateMachines"]["Pipeline"]["TestCases"]["HappyPath"].update(Train="Missing"), "Missing"),
        (lambda c: c["MockedResponses"]["PrepareOk"]["0"].update(Throw={"Error": "E"}), "exactly one"),
        (lambda c: c["MockedResponses"]["PrepareOk"].update({"x-y": {"Return": {}}}), "x-y"),
        (lambda c: c["MockedResponses"]["TrainModelError"]["0"]["Throw"].pop("Error"), "Error"),
        (lambda c: c["MockedResponses"]["PrepareOk"]["0"].update(Return=[1]), "JSON object"),
    ],
    ids=[
        "gap-in-attempts",
        "unknown-response",
        "return-and-throw",
        "bad-range",
        "throw-without-error",
        "return-not-object",
    ],
)
def test_malformed_config_is_rejected_at_load(mutate: Any, message: str) -> None:
    broken = json.loads(json.dumps(MOCK_CONFIG))
    mutate(broken)
    with pytest.raises(sfn_mock.MockConfigError, match=message):
        sfn_mock.parse(broken)
    sfn_mock.parse(MOCK_CONFIG)  # the original is fine
