"""Multiclass and regression through the ml/ scripts, as SageMaker runs them.

For each task, one module-scoped flow: generated data (``autoloop_cli.datagen``) with a few
labels that do not fit the task -> preprocess.py -> train.py (``--task`` from the config,
as the launch step passes it) -> model.tar.gz -> evaluate.py, once alone and once beside a
deliberately weak champion. Then the inference handlers on the trained model, and the
monitoring job reading what they answer.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest

from autoloop import gate
from autoloop.config import parse_model_config
from autoloop_cli import datagen
from tests.ml.test_monitor import capture_line, make_baseline, run_check, truth_line
from tests.ml.test_scripts import ML, failure_reason, load_inference, run, toolkit_args
from tests.support import plan_config

PRICE = json.loads((ML.parent / "models" / "price" / "config.json").read_text())
PLAN = plan_config()
BAD_LABELS = {"regression": ("", "abc", "inf", "1,5"), "multiclass": ("", "gold")}
#: A model no one should promote: for Ridge a huge alpha (predicts about the mean), for the
#: logistic regression a tiny C.
WEAK = {"regression": {"alpha": 1e6}, "multiclass": {"C": 1e-5}}


def tar_model(model_dir: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / "model.tar.gz", "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return into


def train(root: Path, processed: Path, config: dict, name: str, **overrides: object) -> Path:
    model_dir = root / name
    done = run("train.py", *toolkit_args({**config["hyperparameters"], **overrides,
                                          "label": config["label"], "task": config["task"]}),
               env={"SM_CHANNEL_TRAIN": str(processed / "train"), "SM_CHANNEL_VALIDATION": str(processed / "validation"),
                    "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(root / f"out-{name}")})
    assert done.returncode == 0, done.stderr
    return tar_model(model_dir, root / f"{name}-input")


def flow_for(root: Path, config: dict, frame: pd.DataFrame) -> SimpleNamespace:
    parse_model_config(json.dumps(config), f"{config['model']}.json")  # the config is one autoloop accepts
    (root / "config.json").write_text(json.dumps(config))
    bad = BAD_LABELS[config["task"]]
    frame = frame.astype({config["label"]: object})
    for i, value in enumerate(bad):
        frame.iloc[i, 0] = value
    raw = root / "raw"
    raw.mkdir(parents=True)
    frame.to_csv(raw / "data.csv", index=False)
    processed = root / "processed"
    pre = run("preprocess.py", "--input-dir", raw, "--config", root / "config.json", "--output-dir", processed,
              env={"SM_OUTPUT_DIR": str(root / "out-pre")})
    assert pre.returncode == 0, pre.stderr
    model = train(root, processed, config, "model")
    weak = train(root, processed, config, "weak", **WEAK[config["task"]])
    metric = config.get("metric") or gate.DEFAULT_METRIC[config["task"]]
    common = ["--test-dir", processed / "test", "--task", config["task"], "--metric", metric]
    alone = run("evaluate.py", "--model-dir", model, "--output-dir", root / "eval", *common,
                env={"SM_OUTPUT_DIR": str(root / "out-eval")})
    assert alone.returncode == 0, alone.stderr
    versus = run("evaluate.py", "--model-dir", weak, "--output-dir", root / "eval-weak", *common,
                 "--champion-dir", model, "--champion-arn", "arn:champion",
                 env={"SM_OUTPUT_DIR": str(root / "out-eval-weak")})
    assert versus.returncode == 0, versus.stderr
    return SimpleNamespace(root=root, config=config, metric=metric, processed=processed, pre=pre, bad=bad,
                           model=joblib.load(root / "model" / "model.joblib"), model_dir=root / "model",
                           evaluation=json.loads((root / "eval" / "evaluation.json").read_text()),
                           comparison=json.loads((root / "eval-weak" / "comparison.json").read_text()))


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return flow_for(tmp_path_factory.mktemp("price"), PRICE, datagen.generate_price(2000, seed=5))


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return flow_for(tmp_path_factory.mktemp("plan"), PLAN, datagen.generate_plan(2000, seed=5))


def split(flow: SimpleNamespace, name: str) -> pd.DataFrame:
    return pd.read_csv(flow.processed / name / f"{name}.csv")


# ----------------------------------------------------------------------------- preprocess
def test_preprocess_drops_labels_that_do_not_fit_the_task(regression: SimpleNamespace,
                                                          multiclass: SimpleNamespace) -> None:
    for flow in (regression, multiclass):
        sizes = {name: len(split(flow, name)) for name in ("train", "validation", "test")}
        assert sum(sizes.values()) == 2000 - len(flow.bad)
        assert f"dropped {len(flow.bad)} row(s)" in flow.pre.stdout
    assert split(regression, "train")["price"].dtype == np.float64
    assert set(split(multiclass, "test")["plan"]) == set(datagen.PLANS)  # "gold" is not a class


def test_only_classifiers_are_split_per_class(regression: SimpleNamespace, multiclass: SimpleNamespace) -> None:
    # multiclass: each class in proportion in every split; regression: a random split that says so
    shares = {name: split(multiclass, name)["plan"].value_counts(normalize=True) for name in ("train", "test")}
    assert (shares["train"] - shares["test"]).abs().max() < 0.01
    assert "target mean" in regression.pre.stdout and "positive rate" not in regression.pre.stdout


# ----------------------------------------------------------------------------- train + evaluate
def test_train_picks_the_estimator_by_task(regression: SimpleNamespace, multiclass: SimpleNamespace) -> None:
    assert regression.model["task"] == "regression"
    assert type(regression.model["pipeline"].named_steps["model"]).__name__ == "Ridge"
    assert multiclass.model["task"] == "multiclass"
    assert sorted(multiclass.model["pipeline"].classes_) == sorted(datagen.PLANS)


def test_evaluation_has_the_registry_shape_of_each_task(regression: SimpleNamespace,
                                                        multiclass: SimpleNamespace) -> None:
    metrics = regression.evaluation["regression_metrics"]
    assert set(metrics) == set(gate.TASK_METRICS["regression"])
    assert 12 < metrics["rmse"]["value"] < 20  # the generator's noise is 15
    assert metrics["r2"]["value"] > 0.9
    assert gate.task_of_evaluation(regression.evaluation, "e") == "regression"
    metrics = multiclass.evaluation["multiclass_classification_metrics"]
    assert set(metrics) == set(gate.TASK_METRICS["multiclass"]) | {"confusion_matrix"}
    assert metrics["accuracy"]["value"] > 0.65
    assert set(metrics["confusion_matrix"]) == set(datagen.PLANS)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_gate_keeps_the_better_model_in_the_metrics_direction(task: str, request: pytest.FixtureRequest) -> None:
    flow = request.getfixturevalue(task)
    comparison = flow.comparison
    assert comparison["metric"] == flow.metric and comparison["champion_arn"] == "arn:champion"
    assert comparison["direction"] == ("lower" if task == "regression" else "higher")
    threshold = flow.config["threshold"]
    weak_vs_strong = gate.decide(task=task, metric_name=flow.metric, metric=comparison["challenger"],
                                 threshold=1e9 if task == "regression" else 0.0,
                                 champion_metric=comparison["champion"], holdout_rows=comparison["holdout_rows"],
                                 champion_arn="arn:champion")
    assert weak_vs_strong["verdict"] == "BelowChampion", weak_vs_strong["reason"]
    strong_vs_weak = gate.decide(task=task, metric_name=flow.metric, metric=comparison["champion"],
                                 threshold=threshold, champion_metric=comparison["challenger"],
                                 holdout_rows=comparison["holdout_rows"], champion_arn="arn:weak")
    assert strong_vs_weak["verdict"] == "Promote", strong_vs_weak["reason"]


def test_evaluate_refuses_a_model_of_another_task(regression: SimpleNamespace, tmp_path: Path) -> None:
    done = run("evaluate.py", "--model-dir", regression.root / "model-input", "--test-dir",
               regression.processed / "test", "--output-dir", tmp_path / "e", "--task", "binary", "--label", "price",
               env={"SM_OUTPUT_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "trained for task regression, not binary" in failure_reason(tmp_path)


def test_train_refuses_an_unknown_task(tmp_path: Path) -> None:
    done = run("train.py", "--task", "ranking", env={"SM_OUTPUT_DIR": str(tmp_path)})
    assert done.returncode == 1 and "--task must be one of binary, multiclass, regression" in failure_reason(tmp_path)


# ----------------------------------------------------------------------------- inference
def features_csv(flow: SimpleNamespace, rows: int = 20) -> tuple[pd.DataFrame, str]:
    test = split(flow, "test").head(rows)
    body = test.drop(columns=[flow.config["label"]]).to_csv(header=False, index=False)
    return test, body


def test_regression_inference_answers_the_value(regression: SimpleNamespace) -> None:
    handlers = load_inference(regression.model_dir / "code" / "inference.py")
    model = handlers.model_fn(str(regression.model_dir))
    test, body = features_csv(regression)
    prediction = handlers.predict_fn(handlers.input_fn(body, "text/csv"), model)
    expected = model["pipeline"].predict(test[model["features"]])
    assert np.allclose(prediction, expected) and np.isfinite(prediction).all()
    values = json.loads(handlers.output_fn(prediction, "application/json"))["predictions"]
    assert values == pytest.approx(expected.tolist())
    lines = handlers.output_fn(prediction, "text/csv").splitlines()
    assert [float(v) for v in lines] == pytest.approx(expected.tolist())


def test_multiclass_inference_answers_the_class_and_its_probabilities(multiclass: SimpleNamespace) -> None:
    handlers = load_inference(multiclass.model_dir / "code" / "inference.py")
    model = handlers.model_fn(str(multiclass.model_dir))
    test, body = features_csv(multiclass)
    prediction = handlers.predict_fn(handlers.input_fn(body, "text/csv"), model)
    document = json.loads(handlers.output_fn(prediction, "application/json"))
    assert document["predictions"] == model["pipeline"].predict(test[model["features"]]).tolist()
    assert sorted(document["classes"]) == sorted(datagen.PLANS)
    for predicted, probabilities in zip(document["predictions"], document["probabilities"], strict=True):
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        assert document["classes"][int(np.argmax(probabilities))] == predicted
    assert handlers.output_fn(prediction, "text/csv").splitlines() == document["predictions"]


# ----------------------------------------------------------------------------- monitoring
@pytest.mark.parametrize(("task", "accept"), [("multiclass", "application/json"), ("multiclass", "text/csv"),
                                              ("regression", "application/json")])
def test_monitor_scores_what_the_endpoint_answered(task: str, accept: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    """The monitoring job reads the inference handlers' own answers (as data capture holds
    them) and computes the task's metric on the ground truth, in the metric's direction."""
    flow = request.getfixturevalue(task)
    handlers = load_inference(flow.model_dir / "code" / "inference.py")
    model = handlers.model_fn(str(flow.model_dir))
    test, body = features_csv(flow, rows=300)
    rows = body.splitlines()
    capture = tmp_path / "cap" / "a.jsonl"
    capture.parent.mkdir()
    lines, answers = [], []
    for i, row in enumerate(rows):
        answer = handlers.output_fn(handlers.predict_fn(handlers.input_fn(row, "text/csv"), model), accept)
        answers.append(answer)
        lines.append(capture_line(row, answer, f"e{i}", content_type=accept))
    capture.write_text("\n".join(lines) + "\n")
    (tmp_path / "gt").mkdir()
    label = flow.config["label"]
    (tmp_path / "gt" / "g.jsonl").write_text("\n".join(truth_line(str(v), f"e{i}")
                                                       for i, v in enumerate(test[label])) + "\n")
    baseline = make_baseline(tmp_path, split(flow, "train").drop(columns=[label]))
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--threshold", flow.config["threshold"],
                       baseline=baseline, capture=tmp_path / "cap", config=flow.root / "config.json")
    quality = report["quality"]
    predicted = model["pipeline"].predict(test[model["features"]])
    assert quality["labelled_rows"] == len(rows)
    if task == "regression":
        rmse = float(np.sqrt(np.mean((predicted - test[label].to_numpy()) ** 2)))
        assert quality["metric"] == "rmse" and quality["direction"] == "lower"
        assert quality["value"] == pytest.approx(rmse)
        assert not quality["violated"]  # about 15 against the threshold 30
    else:
        assert quality["metric"] == "accuracy" and quality["direction"] == "higher"
        assert quality["value"] == pytest.approx(float(np.mean(predicted == test[label].to_numpy())))


def test_the_monitor_knows_every_metric_the_gate_can_use() -> None:
    from tests.ml.test_monitor import monitor

    assert monitor.TASK_GROUPS == gate.TASK_GROUPS
    for task, metrics in gate.TASK_METRICS.items():
        assert set(metrics) <= set(monitor.METRICS_BY_TASK[task])
    assert set(monitor.LOWER_IS_BETTER) == gate.ERROR_METRICS


def test_the_scripts_and_validation_read_class_labels_alike() -> None:
    """ml/ cannot import src/: its class_text must agree with the one ValidateInput uses."""
    from autoloop.config import class_text
    from tests.ml.test_monitor import load

    common = load("autoloop_ml_common_for_tasks", ML / "autoloop_ml_common.py")
    for text in ("1", "1.0", " 2 ", "-3.00", "1.5", "basic", "", "nan", "inf", "1e3", "007"):
        assert common.class_text(text) == class_text(text), text
