"""Every ASL file: parses, every state reachable, every Next exists, every Task guarded."""

from __future__ import annotations

import json
import subprocess

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from tests.infra.template_utils import PLACEHOLDER, ROOT, asl_with_dummies, state_machines

MACHINES = sorted(state_machines())


def successors(state: dict) -> set[str]:
    nxt = set()
    if "Next" in state:
        nxt.add(state["Next"])
    if "Default" in state:
        nxt.add(state["Default"])
    nxt |= {c["Next"] for c in state.get("Choices", [])}
    nxt |= {c["Next"] for c in state.get("Catch", [])}
    return nxt


@pytest.mark.parametrize("machine", MACHINES)
def test_substitutions_match_the_template(machine):
    props = state_machines()[machine]["Properties"]
    used = set(PLACEHOLDER.findall((ROOT / props["DefinitionUri"]).read_text()))
    assert used == set(props["DefinitionSubstitutions"])


@pytest.mark.parametrize("machine", MACHINES)
def test_asl_parses_with_the_step_functions_parser(machine):
    text, asl = asl_with_dummies(machine)
    program = AmazonStateLanguageParser.parse(text)[0]  # raises on syntax or type errors
    assert set(program.states.states) == set(asl["States"])
    assert program.start_at.start_at_name == asl["StartAt"]


@pytest.mark.parametrize("machine", MACHINES)
def test_every_next_exists_and_every_state_is_reachable(machine):
    _, asl = asl_with_dummies(machine)
    states = asl["States"]
    assert asl["StartAt"] in states
    for name, state in states.items():
        missing = successors(state) - set(states)
        assert not missing, f"{name} points at missing states {missing}"
        terminal = state["Type"] in {"Succeed", "Fail"} or state.get("End")
        assert terminal or successors(state), f"{name} has no way out"
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(successors(states[name]))
    assert seen == set(states), f"unreachable: {set(states) - seen}"


@pytest.mark.parametrize("machine", MACHINES)
def test_every_task_has_retry_and_a_catch_all(machine):
    _, asl = asl_with_dummies(machine)
    for name, state in asl["States"].items():
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        catches = [e for c in state.get("Catch", []) for e in c["ErrorEquals"]]
        assert "States.ALL" in catches, f"{name} has no catch-all"


@pytest.mark.parametrize("machine", MACHINES)
def test_every_callback_wait_times_out_into_a_reconcile_path(machine):
    _, asl = asl_with_dummies(machine)
    states = asl["States"]
    waits = {n: s for n, s in states.items() if str(s.get("Resource", "")).endswith(".waitForTaskToken")}
    for name, state in waits.items():
        assert "TimeoutSeconds" in state, f"{name} can wait forever"
        timeout = [c for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"]]
        assert timeout, f"{name} does not reconcile on timeout"
        reconcile = states[timeout[0]["Next"]]
        assert reconcile["Type"] == "Task" and reconcile["Next"] == state["Next"]
        still = {"JobStillRunning", "EndpointStillUpdating"}
        assert any(still & set(r["ErrorEquals"]) for r in reconcile["Retry"]), f"{name} reconcile never retries"


def _is_release(state):
    return state["Type"] == "Task" and state["Resource"].endswith(":dynamodb:updateItem") and \
        state["Parameters"]["UpdateExpression"].startswith("REMOVE")


@pytest.mark.parametrize("machine", MACHINES)
def test_failures_are_notified_and_end_in_a_named_fail(machine):
    """Every catch-all leads to a named Pass, then (perhaps through a slot release) to an SNS
    notification and a Fail. Catches of one named error are decisions and go where they say;
    a slot release is best effort and always goes on to its Next."""
    _, asl = asl_with_dummies(machine)
    states = asl["States"]
    for name, state in states.items():
        for catch in state.get("Catch", []):
            target = states[catch["Next"]]
            if state["Type"] == "Task" and "sns:publish" in state["Resource"]:
                continue
            if "States.ALL" not in catch["ErrorEquals"]:
                continue
            if _is_release(state):
                assert catch["Next"] == state["Next"], f"{name}: a failed release must not change the run's path"
                continue
            assert target["Type"] == "Pass" and target["Parameters"]["step"], f"{name} catch is not named"
            notify = states[target["Next"]]
            if _is_release(notify):
                notify = states[notify["Next"]]
            assert "sns:publish" in notify["Resource"], f"{name}: the failure is not notified"
            assert states[notify["Next"]]["Type"] == "Fail"


# ----------------------------------------------------------------------------- asl-validator
ASL_VALIDATOR = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "asl-validator"


def asl_validator(paths: list) -> subprocess.CompletedProcess:
    if not ASL_VALIDATOR.exists():
        pytest.skip("asl-validator is not installed: run `make asl-validator` (needs npm)")
    args = [str(ASL_VALIDATOR)] + [a for p in paths for a in ("--json-path", str(p))]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_asl_validator_accepts_every_state_machine(tmp_path):
    """The npm asl-validator (AWS's States Language spec, JSONPath and ARN checks) on each
    definition with its substitutions filled in."""
    paths = []
    for machine in MACHINES:
        text, _ = asl_with_dummies(machine)
        paths.append(tmp_path / f"{machine}.json")
        paths[-1].write_text(text)
    result = asl_validator(paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("is valid") == len(MACHINES)


def test_asl_validator_rejects_a_broken_definition(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}))
    result = asl_validator([broken])
    assert result.returncode != 0 and "MISSING_TRANSITION_TARGET" in result.stdout + result.stderr


#: What AWS recommends retrying on every Lambda task ("Handle transient Lambda service exceptions").
LAMBDA_TRANSIENT = {"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                    "Lambda.AWSLambdaException", "Lambda.SdkClientException"}


@pytest.mark.parametrize("machine", MACHINES)
def test_every_lambda_task_retries_the_transient_lambda_errors(machine):
    _, asl = asl_with_dummies(machine)
    for name, state in asl["States"].items():
        resource = str(state.get("Resource", ""))
        if state["Type"] != "Task" or not (":lambda:" in resource or resource.startswith("arn:aws:states:::lambda")):
            continue
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        assert LAMBDA_TRANSIENT <= retried, f"{name} does not retry {sorted(LAMBDA_TRANSIENT - retried)}"


def test_a_transform_job_that_outlives_its_wait_is_stopped_and_the_run_fails_named():
    """Transform jobs have no MaxRuntimeInSeconds: when the reconcile gives up on a job still
    running, the machine stops it (tagged to this stack) before failing the month."""
    _, asl = asl_with_dummies("BatchTransform")
    states = asl["States"]
    reconcile = states[next(c["Next"] for c in states["Transform"]["Catch"] if "States.Timeout" in c["ErrorEquals"])]
    still = [c for c in reconcile["Catch"] if c["ErrorEquals"] == ["JobStillRunning"]]
    assert still, "a job still running after the reconcile is not stopped"
    stop = states[still[0]["Next"]]
    assert stop["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:stopTransformJob"
    assert stop["Parameters"] == {"TransformJobName.$": "States.Format('{}-transform', $.batch.run_id)"}
    assert stop["Next"] == stop["Catch"][0]["Next"], "a failed stop must still fail the run, named"
    failed = states[stop["Next"]]
    assert failed["Parameters"]["name"] == "TransformTimedOut" and states[failed["Next"]]["Type"] == "Task"
    from autoloop.naming import batch_job_name

    assert batch_job_name("churn-202610-abcdef", "transform") == "churn-202610-abcdef-transform"
    # The state machine may stop exactly the jobs of its own stack.
    [statement] = [s for p in state_machines()["BatchTransform"]["Properties"]["Policies"]
                   for s in (p.get("Statement") or []) if isinstance(s, dict)
                   and s.get("Action") == "sagemaker:StopTransformJob"]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/autoloop:stack": {"Ref": "AWS::StackName"}}}


STOP_PATH = ["ReconcileTransform", "StopTransform", "TransformTimedOut", "NotifyFailure", "RunFailed"]


@pytest.mark.parametrize("stop", ["StopOk", "StopDenied"])
def test_the_stop_path_runs_on_the_engine_and_fails_the_month_as_timed_out(stop, monkeypatch):
    """The real states from ReconcileTransform on, run by moto's engine with Step Functions
    Local's mocks: the reconcile keeps answering JobStillRunning, the stop succeeds (or is
    denied), and either way the month fails as TransformTimedOut, notified."""
    import json

    import boto3
    from moto import mock_aws

    from localaws.stepfunctions import mock as sfn_mock
    from tests.support import wait_for_execution

    text = (ROOT / "statemachine" / "batch_transform.asl.json").read_text()
    states = json.loads(PLACEHOLDER.sub(lambda m: "1" if m.group(1).endswith("Seconds") else "x", text))["States"]
    definition = {"StartAt": "ReconcileTransform",
                  "States": {n: states[n] for n in STOP_PATH + ["TransformFailed", "CheckData", "PublishResults",
                                                                 "MonitorInput", "ReconcileMonitorInput",
                                                                 "MonitorInputFailed", "PublishResultsFailed",
                                                                 "NotifySuccess", "Succeeded"]}}
    for state in definition["States"].values():  # mocked states never call these
        if state.get("Resource") == "x":
            state["Resource"] = "arn:aws:lambda:us-east-1:123456789012:function:x"
    config = {
        "StateMachines": {"Stop": {"TestCases": {"Case": {"ReconcileTransform": "Still", "StopTransform": stop,
                                                          "NotifyFailure": "Published"}}}},
        "MockedResponses": {
            "Still": {"0-2": {"Throw": {"Error": "JobStillRunning", "Cause": "transform job j is still InProgress."}}},
            "StopOk": {"0": {"Return": {}}},
            "StopDenied": {"0": {"Throw": {"Error": "SageMaker.AccessDeniedException", "Cause": "denied"}}},
            "Published": {"0": {"Return": {"MessageId": "m"}}},
        },
    }
    was_installed = sfn_mock.installed()
    sfn_mock.install(config)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            sfn = boto3.client("stepfunctions", region_name="us-east-1")
            arn = sfn.create_state_machine(name="Stop", definition=json.dumps(definition),
                                           roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
            execution = sfn.start_execution(stateMachineArn=f"{arn}#Case", input=json.dumps(
                {"batch": {"run_id": "churn-202610-abcdef"}}))["executionArn"]
            described = wait_for_execution(execution, timeout=60, sfn=sfn)
            events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    finally:
        sfn_mock.clear()
        if not was_installed:
            sfn_mock.uninstall()
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == STOP_PATH
    assert described["status"] == "FAILED" and described["error"] == "TransformTimedOut"
    assert "churn-202610-abcdef-transform" in described["cause"] and "stopped" in described["cause"]
