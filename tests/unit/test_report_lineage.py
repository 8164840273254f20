"""The report's lineage: what produced the challenger and the champion, side by side, from
the packages' recorded metadata (autoloop.registry.Lineage), with the rows that differ marked."""

from __future__ import annotations

from typing import Any

from autoloop import registry
from autoloop_cli.report import collect, page
from autoloop_cli.report.collect import Report
from tests.unit.test_report_gate import CHAMPION, FOLDER, GATE, T0, FakeS3, report_doc, run_with

CHALLENGER = "arn:aws:sagemaker:us-east-1:123456789012:model-package/s-churn/2"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def package(framework: str, image: str, digest: str, hps: dict[str, Any]) -> dict[str, Any]:
    lineage = registry.Lineage(task="binary", framework=framework, training_image=image, entry_point="train.py",
                               hyperparameters=hps, training_job="churn-x-train", source_version="v7",
                               bundle_sha256=digest)
    request = registry.model_package_request(
        group="s-churn", run_id="churn-x", image_uri=image, model_artifacts="s3://art/runs/m.tar.gz",
        evaluation_uri=f"{FOLDER}/evaluation.json", metric_name="auc", metric=0.9, approval_status="Approved",
        source_uri="s3://data/incoming/churn/jan.csv", lineage=lineage)
    return {"ModelPackageArn": "x", **request}


class Packages:
    def __init__(self, described: dict[str, dict[str, Any]]) -> None:
        self.described = described

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return self.described[ModelPackageName]


def test_the_report_shows_both_packages_lineage_and_marks_what_differs():
    described = {CHAMPION: package("sklearn", SKLEARN, "a" * 64, {"C": 1.0}),
                 CHALLENGER: package("xgboost", XGBOOST, "b" * 64, {"max-depth": 3})}
    services = {"s3": FakeS3({f"{FOLDER}/evaluation.json": report_doc(0.86, 0.6),
                              f"{FOLDER}/champion_evaluation.json": report_doc(0.83, 0.64)}),
                "sagemaker": Packages(described)}
    run = run_with({**GATE, "verdict": "Promote"}, "RegisterModel")
    run.state_outputs["RegisterModel"] = {"model_package": {"arn": CHALLENGER}}
    notes: dict[str, str] = {}
    ev = collect.evaluation(lambda name: services[name], run, notes)
    assert ev is not None and notes == {}
    assert ev.lineage["framework"] == "xgboost" and ev.champion_lineage["framework"] == "sklearn"
    assert ev.lineage["inference_image"] == XGBOOST and ev.lineage["bundle_sha256"] == "b" * 64
    assert ev.lineage["hyperparameters"] == "max-depth=3" and ev.lineage["source_version"] == "v7"
    text = page.render(Report(run, evaluation=ev, generated=T0))
    assert '<table class="lineage">' in text
    assert "framework ≠" in text and "training image ≠" in text and "script bundle sha256 ≠" in text
    assert "task ≠" not in text and "entry point ≠" not in text  # the same on both sides
    assert f"<code>{XGBOOST}</code>" in text and "<code>s3://data/incoming/churn/jan.csv</code>" in text


def test_a_package_without_lineage_shows_no_table_and_an_undescribable_one_a_note():
    class Failing:
        def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
            raise RuntimeError("AccessDenied")

    services = {"s3": FakeS3({f"{FOLDER}/evaluation.json": report_doc(0.81, 0.6),
                              f"{FOLDER}/champion_evaluation.json": report_doc(0.83, 0.64)}), "sagemaker": Failing()}
    notes: dict[str, str] = {}
    ev = collect.evaluation(lambda name: services[name], run_with(GATE, "BelowChampion"), notes)
    assert ev is not None and ev.lineage == {} and ev.champion_lineage == {}
    assert "could not be described for its lineage: AccessDenied" in notes["lineage-champion"]
    assert '<table class="lineage">' not in page.render(Report(run_with(GATE, "BelowChampion"), evaluation=ev,
                                                               generated=T0))
