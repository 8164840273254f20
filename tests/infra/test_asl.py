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
