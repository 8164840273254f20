"""train.py checkpoints (managed spot training) and resumes to exactly the same model.

A spot interruption is simulated in-process: the run is stopped right after its third
checkpoint, then run again on the same folder, as SageMaker restarts a job with the folder
restored. The local training job then shows the CheckpointConfig contract end to end.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import joblib
import numpy as np
import pytest

from autoloop import jobs
from autoloop_cli import datagen, publish
from localaws import server
from localaws.sagemaker.jobs import runner as sagemaker_jobs

REPO = Path(__file__).resolve().parents[2]
ML = REPO / "ml"
LABEL = json.loads((ML.parent / "models" / "churn" / "config.json").read_text())["label"]
EVERY = 2  # solver iterations a round: many rounds, so an interruption lands mid-fit


def load_train() -> ModuleType:
    """The churn model's train.py from its bundle, as the job has it (autoloop_ml_common and
    inference.py beside it)."""
    code = str(publish.model_folders()["churn"].unpack(Path(tempfile.mkdtemp(prefix="churn-code-"))))
    spec = importlib.util.spec_from_file_location("train_under_test", f"{code}/train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, code)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(code)
    return module


class Interrupted(Exception):
    """Stands in for the spot instance being taken back."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train-data")
    (folder / "train").mkdir()
    datagen.write_csv(folder / "train" / "train.csv", 600, seed=7)  # header = columns, label first
    return folder


def train_args(data: Path, model_dir: Path, checkpoint_dir: Path | None, **extra: object) -> list[str]:
    args = ["--train", str(data / "train"), "--validation", str(data / "none"), "--label", LABEL,
            "--model-dir", str(model_dir), "--checkpoint-every", str(EVERY)]
    if checkpoint_dir is not None:
        args += ["--checkpoint-dir", str(checkpoint_dir)]
    for key, value in extra.items():
        args += [f"--{key}", str(value)]
    return args


def coefficients(model_dir: Path) -> np.ndarray:
    model = joblib.load(model_dir / "model.joblib")["pipeline"].named_steps["model"]
    return np.concatenate([model.coef_.ravel(), model.intercept_])


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_model(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train = load_train()
    train.main(train_args(data, tmp_path / "whole", tmp_path / "whole-ckpt"))
    whole = coefficients(tmp_path / "whole")
    rounds = joblib.load(tmp_path / "whole-ckpt" / "checkpoint.joblib")["iterations"] // EVERY
    assert rounds > 3, "the fit must take several rounds for an interruption to land mid-fit"

    saves = []
    original = train.save_checkpoint

    def save_then_die(directory: Any, state: dict[str, Any]) -> None:
        original(directory, state)
        saves.append(state["iterations"])
        if len(saves) == 3:
            raise Interrupted

    monkeypatch.setattr(train, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        train.main(train_args(data, tmp_path / "spot", tmp_path / "spot-ckpt"))
    assert not (tmp_path / "spot" / "model.joblib").exists()
    assert joblib.load(tmp_path / "spot-ckpt" / "checkpoint.joblib")["iterations"] == 3 * EVERY

    monkeypatch.setattr(train, "save_checkpoint", original)
    capsys.readouterr()
    train.main(train_args(data, tmp_path / "spot", tmp_path / "spot-ckpt"))
    assert f"resuming from checkpoint: {3 * EVERY} iteration(s) done" in capsys.readouterr().out
    np.testing.assert_array_equal(coefficients(tmp_path / "spot"), whole)

    # Checkpointing changes nothing about the model: the rounds are the same without it.
    train.main(train_args(data, tmp_path / "plain", None))
    np.testing.assert_array_equal(coefficients(tmp_path / "plain"), whole)


def test_a_checkpoint_of_other_hyperparameters_or_a_torn_file_is_ignored(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = load_train()
    ckpt = tmp_path / "ckpt"
    train.main(train_args(data, tmp_path / "a", ckpt, C=0.5))
    capsys.readouterr()
    train.main(train_args(data, tmp_path / "b", ckpt, C=2.0))
    out = capsys.readouterr().out
    assert "ignoring checkpoint" in out and "resuming" not in out
    (ckpt / "checkpoint.joblib").write_bytes(b"torn")
    train.main(train_args(data, tmp_path / "c", ckpt, C=2.0))
    assert "ignoring unreadable checkpoint" in capsys.readouterr().out
    np.testing.assert_array_equal(coefficients(tmp_path / "c"), coefficients(tmp_path / "b"))


# ------------------------------------------------------------------ local SageMaker training job
def test_a_spot_training_job_checkpoints_to_s3_and_a_restart_resumes(data: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    ctx = jobs.JobContext(
        run_id="churn-0123456789", model="churn", artifacts_bucket="art",
        role_arn="arn:aws:iam::123456789012:role/sm",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        instance_type="ml.m5.large", max_runtime_seconds=600, spot=jobs.SpotTraining(enabled=True),
        security=jobs.JobSecurity(kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k"),
    )
    spec = jobs.training_request(ctx, "s3://art/data/train/", "s3://art/data/train/",
                                 {"max-iter": 200, "checkpoint-every": EVERY}, LABEL)
    assert spec["CheckpointConfig"] == {"S3Uri": ctx.uri("train", "checkpoints"), "LocalPath": "/opt/ml/checkpoints"}
    with server.in_process():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="art")
        s3.put_object(Bucket="art", Key="code/models/churn/sourcedir.tar.gz",
                      Body=publish.model_folders()["churn"].bundle())
        s3.put_object(Bucket="art", Key="data/train/train.csv", Body=(data / "train" / "train.csv").read_bytes())
        sm = boto3.client("sagemaker")
        for name in ("first", "restart"):
            sm.create_training_job(**{**spec, "TrainingJobName": f"ckpt-{name}"})
            assert sagemaker_jobs.wait_for_jobs(120, [f"ckpt-{name}"])
            job = sm.describe_training_job(TrainingJobName=f"ckpt-{name}")
            log = (tmp_path / "home" / "jobs" / f"ckpt-{name}" / "logs.txt").read_text()
            assert job["TrainingJobStatus"] == "Completed", (job.get("FailureReason"), log)
        key = f"runs/churn/{ctx.run_id}/train/checkpoints/checkpoint.joblib"
        assert s3.head_object(Bucket="art", Key=key)["ContentLength"] > 0
    assert "resuming from checkpoint" not in (tmp_path / "home" / "jobs" / "ckpt-first" / "logs.txt").read_text()
    assert "resuming from checkpoint" in log  # the restart found the first job's checkpoint
