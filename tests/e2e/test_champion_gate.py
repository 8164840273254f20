"""The champion gate on the local AWS: challenger and champion scored on the same held-out rows.

Three uploads of fresh data (different seeds) to one stack, with real training and evaluation:

1. a deliberately weak model (config ``C = 0.0001``: over-regularised) is the first model, so
   it is registered on the threshold alone and becomes the champion;
2. a normal model beats it on its own holdout, where the evaluate job scored the champion too,
   and is registered with both numbers;
3. another weak model loses to that champion on the shared holdout: it ends ``BelowChampion``
   and nothing is registered.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from autoloop_cli import datagen, publish
from tests.e2e.conftest import Local, boot

pytestmark = pytest.mark.e2e

CONFIG_KEY = "config/models/churn.json"
WEAK = {"C": 0.0001, "max-iter": 500}


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    """Its own stack, with deployment off: only the TrainingPipeline is under test here."""
    for local_aws in boot("autoloop-gate"):
        events = local_aws.client("events")
        for rule in events.list_rules()["Rules"]:
            if "PackageApprovalChanged" in rule["Name"]:
                events.disable_rule(Name=rule["Name"])
        yield local_aws


def csv_body(seed: int, rows: int = 2000) -> bytes:
    return datagen.generate(rows, seed=seed).to_csv(index=False).encode()


@contextmanager
def config(local: Local, **changes: Any) -> Iterator[None]:
    """The churn config with these changes published for the runs inside the block."""
    s3, bucket = local.client("s3"), local.outputs["ArtifactsBucketName"]
    raw = json.loads((publish.MODELS_DIR / "churn" / "config.json").read_text())
    s3.put_object(Bucket=bucket, Key=CONFIG_KEY, Body=json.dumps({**raw, **changes}).encode())
    try:
        yield
    finally:
        s3.put_object(Bucket=bucket, Key=CONFIG_KEY, Body=json.dumps(raw).encode())


def packages(local: Local) -> list[dict[str, Any]]:
    group = f"{local.stack.name}-churn"
    return list(local.client("sagemaker").list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])


@pytest.fixture(scope="module")
def runs(local: Local) -> dict[str, Any]:
    with config(local, hyperparameters=WEAK, threshold=0.6):
        weak = local.run(csv_body(seed=31), "incoming/churn/gate-weak-first.csv")
    better = local.run(csv_body(seed=32), "incoming/churn/gate-better.csv")
    count = len(packages(local))
    with config(local, hyperparameters=WEAK, threshold=0.6):
        loser = local.run(csv_body(seed=33), "incoming/churn/gate-weak-again.csv")
    return {"weak": weak, "better": better, "loser": loser, "packages_before_loser": count}


def test_the_first_model_is_judged_on_the_threshold_alone(runs: dict[str, Any]) -> None:
    weak = runs["weak"]
    assert weak.status == "SUCCEEDED", weak.description.get("cause")
    gate = weak.output["gate"]
    assert gate["verdict"] == "Promote" and gate["champion_arn"] is None and gate["champion_metric"] is None
    assert gate["threshold"] == 0.6 and gate["holdout_rows"] > 250
    assert "no champion to beat" in gate["reason"]


def test_a_better_challenger_is_compared_with_the_champion_on_its_own_holdout(local: Local,
                                                                            runs: dict[str, Any]) -> None:
    weak, better = runs["weak"], runs["better"]
    assert better.status == "SUCCEEDED", better.description.get("cause")
    champion = weak.output["model_package"]["arn"]
    gate = better.output["gate"]
    assert gate["verdict"] == "Promote" and gate["champion_arn"] == champion
    assert gate["metric"] > gate["champion_metric"]

    # Both numbers come from this run's evaluate job, on the same rows: its test split.
    folder = gate["evaluation_uri"].rsplit("/", 1)[0]
    comparison = local.s3_json(f"{folder}/comparison.json")
    champion_auc = local.s3_json(f"{folder}/champion_evaluation.json")["binary_classification_metrics"]["auc"]
    assert comparison["champion_arn"] == champion and comparison["champion"] == gate["champion_metric"]
    assert champion_auc["value"] == gate["champion_metric"]
    assert champion_auc["value"] != weak.output["gate"]["metric"]  # not the figure it registered with
    test_uri = better.output["jobs"]["preprocess"]["outputs"]["test"].rstrip("/") + "/test.csv"
    bucket, key = test_uri.removeprefix("s3://").split("/", 1)
    rows = list(csv.reader(io.StringIO(local.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
                                       .decode())))
    assert gate["holdout_rows"] == comparison["holdout_rows"] == len(rows) - 1

    # The evaluate job read the champion's own model artifact as its second input.
    sm = local.client("sagemaker")
    job = sm.describe_processing_job(ProcessingJobName=better.output["jobs"]["evaluate"]["job_name"])
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["champion"] == weak.output["jobs"]["train"]["model_artifacts"]

    # The registered package records both numbers, the rows and the champion it beat.
    props = sm.describe_model_package(ModelPackageName=better.output["model_package"]["arn"])[
        "CustomerMetadataProperties"]
    assert props["autoloop:champion-arn"] == champion
    assert float(props["autoloop:champion-metric-value"]) == gate["champion_metric"]
    assert float(props["autoloop:metric-value"]) == gate["metric"]
    assert props["autoloop:holdout-rows"] == str(gate["holdout_rows"])


def test_a_challenger_that_loses_on_the_shared_holdout_is_not_registered(local: Local,
                                                                         runs: dict[str, Any]) -> None:
    loser, better = runs["loser"], runs["better"]
    assert loser.status == "FAILED"
    assert loser.path[-4:] == ["GateDecision", "BelowChampion", "NotifyFailure", "RunFailed"]
    assert loser.description["error"] == "BelowChampion"
    assert "RegisterModel" not in loser.path
    assert len(packages(local)) == runs["packages_before_loser"]
    gate = loser.gate
    assert gate["verdict"] == "BelowChampion" and gate["champion_arn"] == better.output["model_package"]["arn"]
    assert 0.6 <= gate["metric"] < gate["champion_metric"]
    assert "is no better than the champion's" in loser.description["cause"]
    assert f"on the same {gate['holdout_rows']} holdout rows" in loser.description["cause"]
    [note] = [n for n in loser.notifications if n.get("Subject") == "Autoloop: run failed"]
    assert "BelowChampion" in note["Message"] and "not registered" in note["Message"]
