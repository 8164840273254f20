"""The report's evaluation section: challenger and champion on the same holdout, from the run's
own evaluate job (champion_evaluation.json), not from the champion's registration."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from autoloop_cli.report import collect, page
from autoloop_cli.report.collect import ExecutionRun, Report, StateRun

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/s-churn/1"
FOLDER = "s3://art/runs/churn/churn-0123456789/evaluate/evaluation"


def report_doc(auc: float, f1: float) -> dict[str, Any]:
    return {"binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": "NaN"},
                                              "f1": {"value": f1, "standard_deviation": "NaN"}}}


class FakeS3:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        uri = f"s3://{Bucket}/{Key}"
        if uri not in self.objects:
            raise KeyError(f"NoSuchKey: {uri}")
        return {"Body": io.BytesIO(json.dumps(self.objects[uri]).encode())}


class FakeSageMaker:
    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
        return {"ModelPackageArn": ModelPackageName,
                "CustomerMetadataProperties": {"autoloop:metric-name": "auc", "autoloop:metric-value": "0.9"}}


def run_with(gate: dict[str, Any], last: str) -> ExecutionRun:
    names = ["Evaluate", "QualityGate", "GateDecision", last]
    states = [StateRun(n, "Task", T0 + timedelta(seconds=i), T0 + timedelta(seconds=i + 1)) for i, n in
              enumerate(names)]
    return ExecutionRun("arn:aws:states:us-east-1:1:execution:tp:churn-0123456789", "churn-0123456789", "tp",
                        "FAILED" if last.startswith("Below") else "SUCCEEDED", T0, T0 + timedelta(seconds=5),
                        {"States": {"QualityGate": {}}}, states, [], input={"run_id": "churn-0123456789"},
                        state_outputs={"QualityGate": {"gate": gate}})


GATE = {"verdict": "BelowChampion", "metric_name": "auc", "metric": 0.81, "direction": "higher", "threshold": 0.75,
        "champion_arn": CHAMPION, "champion_metric": 0.83, "holdout_rows": 300, "min_improvement": 0.0,
        "promote_ties": False, "evaluation_uri": f"{FOLDER}/evaluation.json",
        "reason": "auc 0.81 is no better than the champion's 0.83 on the same 300 holdout rows"}


def clients(objects: dict[str, dict[str, Any]]):
    services = {"s3": FakeS3(objects), "sagemaker": FakeSageMaker()}
    return lambda name: services[name]


def test_the_champion_is_shown_as_scored_on_the_challengers_holdout():
    objects = {f"{FOLDER}/evaluation.json": report_doc(0.81, 0.6),
               f"{FOLDER}/champion_evaluation.json": report_doc(0.83, 0.64)}
    notes: dict[str, str] = {}
    ev = collect.evaluation(clients(objects), run_with(GATE, "BelowChampion"), notes)
    assert ev is not None and notes == {}
    assert ev.same_holdout and ev.holdout_rows == 300 and ev.verdict == "BelowChampion" and ev.passed is False
    assert ev.champion_metrics == {"auc": 0.83, "f1": 0.64}  # not the 0.9 it registered with
    text = page.render(Report(run_with(GATE, "BelowChampion"), evaluation=ev, generated=T0))
    assert "challenger 0.8100 vs champion 0.8300 on the same 300 holdout rows" in text
    assert "(higher is better)" in text and "rejected: BelowChampion" in text
    assert "no better than the champion&#x27;s 0.83 on the same 300 holdout rows" in text  # the gate's reason


def test_without_the_champions_evaluation_the_registered_figures_are_labelled_as_such():
    objects = {f"{FOLDER}/evaluation.json": report_doc(0.81, 0.6)}
    notes: dict[str, str] = {}
    ev = collect.evaluation(clients(objects), run_with(GATE, "BelowChampion"), notes)
    assert ev is not None and not ev.same_holdout
    assert ev.champion_metrics == {"auc": 0.9}
    assert "measured on other rows" in notes["champion"]
    text = page.render(Report(run_with(GATE, "BelowChampion"), evaluation=ev, notes=notes, generated=T0))
    assert "vs champion 0.9000 (as registered, on other rows)" in text


def test_a_first_model_shows_its_holdout_and_no_champion():
    first = {**GATE, "verdict": "Promote", "champion_arn": None, "champion_metric": None,
             "reason": "auc 0.81 meets the threshold 0.75 (higher is better); no champion to beat"}
    ev = collect.evaluation(clients({f"{FOLDER}/evaluation.json": report_doc(0.81, 0.6)}),
                            run_with(first, "RegisterModel"), {})
    assert ev is not None and ev.passed is True and ev.champion is None
    text = page.render(Report(run_with(first, "RegisterModel"), evaluation=ev, generated=T0))
    assert "challenger 0.8100 on 300 holdout rows" in text and "no champion yet (first model)" in text
