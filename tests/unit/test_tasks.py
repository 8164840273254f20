"""Binary, multiclass and regression models: the config, ValidateInput's label rules, the job
requests, the drift handler's quality violation and the registry's metrics, per task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoloop import errors, gate, jobs, registry
from autoloop.config import ModelConfig, parse_model_config
from autoloop.drift import MODEL_QUALITY_CHECK, quality_violation
from autoloop.validation import MAX_CLASSES, MIN_CLASS_ROWS, validate_csv
from autoloop_cli import datagen, publish

ROOT = Path(__file__).resolve().parents[2]
PRICE = json.loads((ROOT / "models/price/config.json").read_text())
BASE = {"model": "m", "label": "y", "columns": ["y", "x", "c"], "numeric_features": ["x"],
        "categorical_features": ["c"]}


def config(**changes: object) -> ModelConfig:
    return parse_model_config(json.dumps({**BASE, **changes}), "m.json")


def assert_refused(match: str, **changes: object) -> None:
    with pytest.raises(errors.InvalidModelConfig, match=match) as raised:
        config(**changes)
    assert "\n" not in str(raised.value)


# ----------------------------------------------------------------------------- config
def test_the_task_defaults_to_binary_and_each_task_has_its_default_metric() -> None:
    assert (config().task, config().metric) == ("binary", "auc")
    assert config(task="multiclass").metric == "accuracy"
    regression = config(task="regression", threshold=3.0, quality_margin=0.5)
    assert (regression.metric, gate.resolve_direction(regression.metric, regression.direction)) == ("rmse", "lower")


def test_a_regression_metric_without_a_task_says_to_set_the_task() -> None:
    assert_refused(r'metric \'rmse\' is a regression metric, but the task defaults to binary; set "task": "regression"',
            metric="rmse", threshold=3.0)


@pytest.mark.parametrize(("changes", "match"), [
    ({"task": "ranking"}, "task: Input should be 'binary', 'multiclass' or 'regression'"),
    ({"task": "multiclass", "metric": "auc"}, "metric 'auc' is not a multiclass metric .* it is a binary one"),
    ({"task": "regression", "metric": "accuracy"}, "metric 'accuracy' is not a regression metric"),
    ({"task": "multiclass", "metric": "f1"}, "use one of accuracy, weighted_precision, weighted_recall, weighted_f1"),
    ({"task": "regression", "metric": "RMSE"}, "lower case"),
    ({"task": "regression"}, "set 'threshold' for rmse"),
    ({"task": "regression", "metric": "r2", "threshold": 1.5}, "r2 is at most 1"),
    ({"task": "regression", "threshold": -1.0}, "must be >= 0"),
    ({"task": "regression", "threshold": 3.0}, "set 'quality_margin' for rmse"),
    ({"task": "regression", "threshold": 3.0, "quality_margin": -1}, "quality_margin -1.0 must be a finite number"),
    ({"task": "regression", "threshold": 3.0, "quality_margin": 1, "direction": "higher"},
     "direction 'higher' contradicts rmse, which is better lower"),
    ({"task": "multiclass", "threshold": 1.2}, r"must be in \[0, 1\]"),
    ({"classes": ["a", "b"]}, "'classes' is for a multiclass model; this one's task is binary"),
    ({"task": "multiclass", "classes": ["a"]}, "at least 2 distinct"),
    ({"task": "multiclass", "classes": ["1", "1.0"]}, "at least 2 distinct"),
    ({"hyperparameters": {"task": "regression"}}, r"hyperparameters \['task'\] are set from the config's own"),
])
def test_a_config_that_does_not_fit_its_task_is_refused_naming_the_field(changes: dict, match: str) -> None:
    assert_refused(match, **changes)


def test_the_price_example_is_a_valid_regression_config() -> None:
    price = parse_model_config(json.dumps(PRICE), "price.json")
    assert (price.task, price.metric, price.threshold) == ("regression", "rmse", 30.0)
    assert "price" in publish.model_configs()
    assert list(price.columns) == list(datagen.PRICE_COLUMNS)
    assert set(price.numeric_features) == set(datagen.PRICE_NUMERIC)


# ----------------------------------------------------------------------------- validation
def csv(labels: list[str]) -> bytes:
    return ("y,x,c\n" + "".join(f"{label},{i % 7},k{i % 3}\n" for i, label in enumerate(labels))).encode()


def validate(labels: list[str], **changes: object):
    body = csv(labels)
    return validate_csv([body[i : i + 11] for i in range(0, len(body), 11)], len(body),
                        config(min_rows=3, **changes), "s3://b/incoming/m/x.csv")


REGRESSION = {"task": "regression", "threshold": 3.0, "quality_margin": 1.0}


@pytest.mark.parametrize(("labels", "changes"), [
    (["0", "1"] * 3 + ["1.0", ""], {}),
    (["1.5", "-2", "3e2", "", ".5"], REGRESSION),
    (["a", "b", "c"] * 3 + [""], {"task": "multiclass"}),
    (["1", "2.0", "3"] * 3, {"task": "multiclass", "classes": ["1", "2", "3"]}),
])
def test_labels_valid_for_the_task_pass(labels: list[str], changes: dict) -> None:
    summary = validate(labels, **changes)
    assert summary.rows == len(labels) and summary.missing_labels == labels.count("")


@pytest.mark.parametrize(("labels", "changes", "match"), [
    (["1"] * 6, {}, r"has a single class \('1'\) in every labelled row; a binary model needs at least 2"),
    (["0", "1", "2"] * 3, {}, "label 'y' is '2'; expected 0 or 1 .task binary"),
    (["1", "0"] + ["1"] * 5, {}, rf"class\(es\) '0' \(1\) .* fewer than {MIN_CLASS_ROWS} rows"),
    (["1.5", "high", "2"], REGRESSION, "line 3: label 'y' is 'high'; a regression model needs a finite number"),
    (["1.5", "inf", "2"], REGRESSION, "'inf'; a regression model needs a finite number"),
    (["1.5", "1e200", "2"], REGRESSION, "within ±1e150"),
    (["4", "4.0", "4"], REGRESSION, "every labelled row has the same 'y'"),
    (["a"] * 5, {"task": "multiclass"}, "single class .* a multiclass model needs at least 2 classes"),
    (["a", "b", "b", "c"] * 3 + ["d"], {"task": "multiclass"}, r"class\(es\) 'd' \(1\)"),
    (["a", "b", "gold"] * 3, {"task": "multiclass", "classes": ["a", "b"]}, "'gold', not one of the config's classes"),
    ([str(i) for i in range(MAX_CLASSES + 2)], {"task": "multiclass"}, "more than 1,000 distinct values"),
])
def test_labels_that_do_not_fit_the_task_are_refused_before_any_job(labels: list[str], changes: dict,
                                                                    match: str) -> None:
    with pytest.raises(errors.InvalidLabels, match=match) as raised:
        validate(labels, **changes)
    assert raised.value.hint and "\n" not in str(raised.value)


def test_many_distinct_regression_targets_are_not_held_in_memory() -> None:
    labels = [f"{i}.25" for i in range(5000)]
    assert validate(labels, **REGRESSION).rows == 5000


# ----------------------------------------------------------------------------- job requests
CTX = jobs.JobContext(run_id="price-0123456789", model="price", artifacts_bucket="art", role_arn="arn:role",
                      image_uri="img", instance_type="ml.m5.large", max_runtime_seconds=3600)


def test_the_training_job_gets_the_task_and_label_from_the_config() -> None:
    spec = jobs.training_request(CTX, "s3://art/t", "s3://art/v", {"alpha": 2.0}, "price", "regression")
    hps = {k: json.loads(v) for k, v in spec["HyperParameters"].items()}
    assert (hps["task"], hps["label"], hps["alpha"]) == ("regression", "price", 2.0)


def test_the_evaluate_job_gets_the_task_metric_and_direction() -> None:
    spec = jobs.evaluate_request(CTX, "s3://art/m.tar.gz", "s3://art/test/", "price", task="regression",
                                 metric="rmse", direction="lower")
    args = spec["AppSpecification"]["ContainerArguments"]
    for flag, value in (("--task", "regression"), ("--metric", "rmse"), ("--direction", "lower")):
        assert args[args.index(flag) + 1] == value


# ----------------------------------------------------------------------------- drift and registry
def test_a_quality_violation_in_either_direction_names_the_metric() -> None:
    rising = quality_violation({"metric": "rmse", "direction": "lower", "value": 21.0, "violated": True,
                                "reason": "rmse 21 is above the threshold 20"})
    assert rising is not None and rising.check == MODEL_QUALITY_CHECK and rising.value == 21.0
    assert "above the threshold" in rising.description
    fallback = quality_violation({"metric": "rmse", "direction": "lower", "value": 21.0, "violated": True})
    assert fallback is not None and "is above what the model must reach" in fallback.description
    assert quality_violation({"metric": "rmse", "direction": "lower", "value": 14.0, "violated": False}) is None


def test_a_regression_package_records_its_metric_and_direction() -> None:
    request = registry.model_package_request(
        group="s-price", run_id="price-0123456789", image_uri="img", model_artifacts="s3://art/runs/m.tar.gz",
        evaluation_uri="s3://art/runs/evaluation.json", metric_name="rmse", metric=15.2, approval_status="Approved",
        source_uri="s3://data/incoming/price/x.csv", direction="lower", champion_arn="arn:champion",
        champion_metric=16.0, holdout_rows=300)
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://art/runs/evaluation.json"
    described = {**request, "ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/s-price/2"}
    assert registry.metric_from_package(described, "rmse") == 15.2
    assert registry.gate_comparison(described) == {"champion_arn": "arn:champion", "champion_metric": 16.0,
                                                   "holdout_rows": 300, "direction": "lower"}


# ----------------------------------------------------------------------------- generators
@pytest.mark.parametrize("name", ["price", "plan"])
def test_the_example_generators_are_deterministic_by_seed(name: str) -> None:
    generate = datagen.GENERATORS[name]
    assert generate(300, seed=3).equals(generate(300, seed=3))
    assert not generate(300, seed=3).equals(generate(300, seed=4))


def test_the_cli_offers_every_generator() -> None:
    from autoloop_cli import cli

    for name in datagen.GENERATORS:
        assert cli.parser().parse_args(["gen-data", "--model", name, "--out", "x.csv"]).model == name
