"""The `autoloop` command fails with one line that says what is wrong and what to do."""

from __future__ import annotations

import json
import shutil

import pytest

from autoloop_cli import cli, publish


@pytest.fixture
def ml_dir(tmp_path, monkeypatch):
    shutil.copytree(publish.ML_DIR / "models", tmp_path / "models")
    monkeypatch.setattr(publish, "ML_DIR", tmp_path)
    return tmp_path


def run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_a_misspelled_config_key_is_named_before_any_aws_call(ml_dir, capsys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # would fail on AWS if it got that far
    config = json.loads((ml_dir / "models" / "churn.json").read_text())
    config["metrik"] = config.pop("metric")
    (ml_dir / "models" / "churn.json").write_text(json.dumps(config))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2
    assert err.startswith("autoloop publish: model config ") and "unknown key 'metrik' (did you mean 'metric'?)" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_metric_the_evaluation_does_not_report_is_refused(ml_dir, capsys):
    config = json.loads((ml_dir / "models" / "churn.json").read_text())
    (ml_dir / "models" / "churn.json").write_text(json.dumps({**config, "metric": "AUC"}))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "metric 'AUC' is not one that ml/evaluate.py reports; use one of auc" in err


def test_a_regression_metric_without_the_task_is_refused_at_publish_in_one_line(ml_dir, capsys):
    price = json.loads((ml_dir / "models" / "price.json").read_text())
    del price["task"]
    (ml_dir / "models" / "price.json").write_text(json.dumps(price))
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert 'metric \'rmse\' is a regression metric, but the task defaults to binary; set "task": "regression"' in err


def test_a_config_named_for_another_model_is_refused(ml_dir, capsys):
    (ml_dir / "models" / "churn.json").rename(ml_dir / "models" / "churn2.json")
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and "must be named churn.json" in err


def test_no_region_says_how_to_set_one(capsys, monkeypatch):
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, err = run(["publish", "--stack-name", "s"], capsys)
    assert code == 2 and err == ("autoloop publish: no AWS region is set: pass --region, or set AWS_DEFAULT_REGION "
                                 "(or a region in ~/.aws/config).")


def test_a_bug_still_shows_its_traceback():
    assert cli.failure_message(KeyError("x")) is None
