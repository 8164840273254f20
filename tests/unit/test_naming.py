import re

import pytest

from autoloop import naming


def test_run_id_is_deterministic_and_depends_on_object_identity():
    a = naming.run_id("churn", "bucket", "incoming/churn/a.csv", "v1")
    assert a == naming.run_id("churn", "bucket", "incoming/churn/a.csv", "v1")
    assert a != naming.run_id("churn", "bucket", "incoming/churn/a.csv", "v2")
    assert a != naming.run_id("churn", "bucket", "incoming/churn/b.csv", "v1")
    assert re.fullmatch(r"churn-[0-9a-f]{10}", a)


def test_retry_attempts_get_distinct_ids_that_parse_back():
    first = naming.run_id("churn", "b", "k", "v")
    second = naming.run_id("churn", "b", "k", "v", attempt=2)
    assert second == f"{first}-r2"
    assert naming.parse_run_id(second) == ("churn", 2)
    assert naming.parse_run_id(first) == ("churn", 1)
    with pytest.raises(ValueError):
        naming.parse_run_id("not a run")


@pytest.mark.parametrize(
    ("key", "model"),
    [
        ("incoming/churn/a.csv", "churn"),
        ("incoming/churn/2026/11/a.csv", "churn"),
        ("incoming/a.csv", None),
        ("incoming/churn/", None),
        ("other/churn/a.csv", None),
        ("incoming/Churn/a.csv", None),
        ("incoming/ch urn/a.csv", None),
    ],
)
def test_model_from_key(key, model):
    assert naming.model_from_key(key) == model


def test_job_names_are_valid_for_the_longest_model_and_retry():
    model = "m" * 24
    rid = naming.run_id(model, "b", "k", "v", attempt=99)
    for step in naming.JOB_STEPS:
        name = naming.job_name(rid, step)
        assert len(name) <= naming.MAX_JOB_NAME
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
    assert len(rid) <= naming.MAX_EXECUTION_NAME


def test_job_name_rejects_unknown_steps():
    with pytest.raises(ValueError, match="unknown job step"):
        naming.job_name("churn-0123456789", "deploy")


def test_execution_arn_follows_the_state_machine_arn():
    machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:stack-training-pipeline"
    assert naming.execution_arn(machine, "churn-0123456789") == \
        "arn:aws:states:eu-west-1:123456789012:execution:stack-training-pipeline:churn-0123456789"
    with pytest.raises(ValueError, match="not a state machine ARN"):
        naming.execution_arn("arn:aws:sns:eu-west-1:123456789012:topic", "x")
