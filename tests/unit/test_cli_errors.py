"""The `autoloop` command fails with one line that says what is wrong and what to do."""

from __future__ import annotations

import json
import shutil

import pytest

from autoloop_cli import cli, publish


@pytest.fixture
def models(tmp_path, monkeypatch):
    shutil.copytree(publish.MODELS_DIR, tmp_path / "models", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(publish, "MODELS_DIR", tmp_path / "models")
    return tmp_path / "models"


def run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_a_misspelled_config_key_is_named_before_any_aws_call(models, capsys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # would fail on AWS if it got that far
    config = json.loads((models / "churn" / "config.json").read_text())
    config["metrik"] = config.pop("metric")
    (models / "churn" / "config.json").write_text(json.dumps(config))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2
    assert err.startswith("autoloop publish: model config ") and "unknown key 'metrik' (did you mean 'metric'?)" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_metric_the_evaluation_does_not_report_is_refused(models, capsys):
    config = json.loads((models / "churn" / "config.json").read_text())
    (models / "churn" / "config.json").write_text(json.dumps({**config, "metric": "AUC"}))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "metric 'AUC' is not one that ml/evaluate.py reports; use one of auc" in err


def test_a_regression_metric_without_the_task_is_refused_at_publish_in_one_line(models, capsys):
    price = json.loads((models / "price" / "config.json").read_text())
    del price["task"]
    (models / "price" / "config.json").write_text(json.dumps(price))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert 'metric \'rmse\' is a regression metric, but the task defaults to binary; set "task": "regression"' in err


def test_a_config_named_for_another_model_is_refused(models, capsys):
    (models / "churn").rename(models / "churn2")
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "'model' is 'churn', so the folder must be named models/churn/" in err


def test_a_model_without_its_training_script_is_refused(models, capsys):
    (models / "churn" / "train.py").unlink()
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "churn: no train.py, the model's script-mode training script" in err


def test_a_folder_without_a_config_is_refused(models, capsys):
    (models / "scratch").mkdir()
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "scratch: no config.json; a model is a folder with config.json and train.py" in err


@pytest.mark.parametrize(("requirements", "wheels", "problem"), [
    ("lightgbm==4.5.0\n", [], "training runs with network isolation, so pip cannot reach an index"),
    ("--no-index\n--find-links wheels\nlightgbm==4.5.0\n", [], "no wheel for 'lightgbm' in wheels"),
    ("--no-index\n--find-links wheels\nlightgbm==4.5.0\n", ["lightgbm-4.5.0-py3-none-any.whl"], None),
])
def test_requirements_must_be_vendored_because_training_has_no_network(models, capsys, requirements, wheels, problem):
    (models / "churn" / "requirements.txt").write_text(requirements)
    (models / "churn" / "wheels").mkdir()
    for wheel in wheels:
        (models / "churn" / "wheels" / wheel).write_bytes(b"")
    if problem is None:
        assert "churn" in publish.model_folders()
        assert "wheels/lightgbm-4.5.0-py3-none-any.whl" in publish.model_folders()["churn"].files()
        return
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and err.startswith("autoloop publish: churn/requirements.txt: ") and problem in err


def test_no_region_says_how_to_set_one(capsys, monkeypatch):
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and err == ("autoloop publish: no AWS region is set: pass --region, or set AWS_DEFAULT_REGION "
                                 "(or a region in ~/.aws/config).")


def test_a_bug_still_shows_its_traceback():
    assert cli.failure_message(KeyError("x")) is None
