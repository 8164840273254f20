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


@pytest.mark.parametrize(
    ("key", "drift", "model"),
    [
        ("incoming/churn/a.csv", False, "churn"),
        ("incoming/churn/a.csv", True, "churn"),
        ("retrain/churn/0123456789abcdef.csv", True, "churn"),
        ("retrain/churn/0123456789abcdef.csv", False, None),  # only the drift handler's own runs
        ("retrain/churn/", True, None),
        ("retrain/Churn/a.csv", True, None),
        ("groundtruth/churn/2026/11/01/03/a.jsonl", True, None),
        ("exports/churn/a.csv", True, None),
    ],
)
def test_training_source_model(key, drift, model):
    assert naming.training_source_model(key, drift=drift) == model


def test_retrain_key_is_one_object_per_report_under_the_retrain_prefix():
    digest = naming.report_digest("s3://artifacts/monitoring/e/s/2026/11/01/03/constraint_violations.json")
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    key = naming.retrain_key("churn", digest)
    assert key == f"retrain/churn/{digest}.csv"
    assert naming.training_source_model(key, drift=True) == "churn"
    assert naming.retrain_key("churn", "churn-dq-2026-11-01-03") == "retrain/churn/churn-dq-2026-11-01-03.csv"
    for bad in ("", "../x", "a/b", "-x", "x" * 129, "a b"):
        with pytest.raises(ValueError, match="report id"):
            naming.retrain_key("churn", bad)
    with pytest.raises(ValueError, match="model"):
        naming.retrain_key("Churn", digest)


def test_ground_truth_keys_use_the_utc_hour_folder():
    from datetime import UTC, datetime, timedelta, timezone

    when = datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC)
    assert naming.ground_truth_key("churn", when, "labels-1.jsonl") == "groundtruth/churn/2026/11/01/03/labels-1.jsonl"
    cet = when.astimezone(timezone(timedelta(hours=1)))  # 04:59 in UTC+1 is still hour 03 in UTC
    assert naming.ground_truth_key("churn", cet, "x.jsonl") == "groundtruth/churn/2026/11/01/03/x.jsonl"
    with pytest.raises(ValueError, match="time zone"):
        naming.ground_truth_key("churn", when.replace(tzinfo=None), "x.jsonl")
    with pytest.raises(ValueError, match="file name"):
        naming.ground_truth_key("churn", when, "a/b.jsonl")
