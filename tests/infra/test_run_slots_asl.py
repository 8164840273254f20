"""The TrainingPipeline's graph keeps the training-run cap: no paid job without a slot, and
no way to end the run while holding one without giving it back."""

from __future__ import annotations

from tests.infra.template_utils import asl_with_dummies
from tests.infra.test_asl import successors

PAID = {"Preprocess", "Train", "Evaluate"}
ACQUIRE = "AcquireRunSlot"
RELEASES = {"ReleaseRunSlot", "ReleaseRunSlotAfterFailure"}


def reachable(states: dict, start: str, removed: set[str]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name in removed:
            continue
        seen.add(name)
        todo.extend(successors(states[name]))
    return seen


def test_no_paid_job_starts_without_a_slot():
    _, asl = asl_with_dummies("TrainingPipeline")
    states = asl["States"]
    assert PAID <= reachable(states, asl["StartAt"], set())
    assert not PAID & reachable(states, asl["StartAt"], {ACQUIRE})


def test_every_way_out_of_a_paid_job_gives_the_slot_back():
    _, asl = asl_with_dummies("TrainingPipeline")
    states = asl["States"]
    for job in PAID:
        ends = {n for n in reachable(states, job, RELEASES) if states[n]["Type"] in {"Succeed", "Fail"}
                or states[n].get("End")}
        assert not ends, f"{job} can end the run at {ends} without releasing its slot"


def test_the_slot_wait_loops_back_to_acquire_and_the_queue_can_step_aside():
    _, asl = asl_with_dummies("TrainingPipeline")
    states = asl["States"]
    acquire = states[ACQUIRE]
    [contended] = [c for c in acquire["Catch"] if c["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]]
    assert contended["Next"] == "QueueForRunSlot"
    assert "WaitForRunSlot" in successors(states[states["QueueForRunSlot"]["Next"]])
    assert states["WaitForRunSlot"]["Next"] == ACQUIRE
    assert states["Superseded"]["Type"] == "Succeed"
    assert acquire["Parameters"]["ConditionExpression"].startswith("attribute_not_exists(#holder)")
