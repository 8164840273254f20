"""autoloop.tracking without a server: configuration, "off means nothing is called", failures
that only warn, the SigV4 request for SageMaker's managed MLflow, and reading a training
script's own mlflow file store. Against a real `mlflow server`: tests/tracking/."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from autoloop import tracking
from autoloop.jobs import JOB_TRACKING_DIR, JOB_TRACKING_ENV
from autoloop.state import MonitoringPlan, PipelineState

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"


@pytest.fixture
def no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_SERVER_ARN", raising=False)


class Http:
    """Stands in for urllib.request.urlopen: records every request; answers with ``answer``'s bytes,
    or refuses the connection when ``answer`` is None."""

    def __init__(self) -> None:
        self.made: list[urllib.request.Request] = []
        self.answer: Any = None

    def __call__(self, request: urllib.request.Request, timeout: float = 0) -> Any:
        self.made.append(request)
        if self.answer is None:
            raise urllib.error.URLError("connection refused (test)")
        return _Response(self.answer(request))


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Http:
    fake = Http()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


class _Response(io.BytesIO):
    status = 200

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _state() -> PipelineState:
    return PipelineState.model_validate({
        "run_id": "churn-0123456789", "model": "churn",
        "source": {"bucket": "data", "key": "incoming/churn/a.csv", "version_id": "v1"},
        "dataset": {"rows": 10, "columns": 3, "bytes": 100, "missing_labels": 0, "label": "churned", "metric": "auc"},
        "jobs": {"train": {"job_name": "churn-0123456789-train", "kind": "training", "status": "Completed",
                           "model_artifacts": "s3://art/runs/churn/x/train/output/j/output/model.tar.gz"},
                 "evaluate": {"job_name": "e", "kind": "processing", "status": "Completed",
                              "outputs": {"evaluation": "s3://art/runs/churn/x/evaluate/evaluation"}}},
    })


def _every_hook() -> None:
    plan = MonitoringPlan.model_validate({
        "action": "monitor", "reason": "r", "run_id": "m-1", "model": "churn", "endpoint": "s-churn",
        "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T01:00:00Z", "report_uri": "s3://a/r/"})
    tracking.gate(_state(), {"verdict": "Promote", "metric_name": "auc", "metric": 0.9},
                  "s3://art/runs/churn/x/evaluate/evaluation")
    tracking.registered("churn", "churn-0123456789", "arn:aws:sagemaker:us-east-1:1:model-package/s-churn/1",
                        "Approved")
    tracking.deployment_started("churn", "churn-0123456789", "s-churn", "s-churn-1", "create")
    tracking.deployed("churn", "churn-0123456789", "s-churn")
    tracking.rolled_back("s-churn", "s-churn-1", "alarm")
    tracking.monitored("churn", plan, {"rows": 5, "features": []}, {"retrain": False, "reason": "ok"})
    tracking.violations_checked("churn", "s-churn", "s3://a/mm/1", [], {"retrain": False})
    tracking.batch_published({"model": "churn", "run_id": "b-1", "month": "2026-01", "rows": {"scored": 1}}, "s3://d/r")


def test_no_uri_and_no_arn_is_off_and_nothing_is_called(no_tracking: None, http: Http,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_s3(service: str) -> Any:
        raise AssertionError(f"tracking is off but a {service} client was made")

    monkeypatch.setattr(tracking.adapters, "client", no_s3)
    assert tracking.Target.from_env() is None
    assert tracking.client() is None
    _every_hook()
    assert http.made == []


def test_the_template_parameters_empty_are_off() -> None:
    assert tracking.Target.from_env({"MLFLOW_TRACKING_URI": "", "MLFLOW_TRACKING_SERVER_ARN": ""}) is None


def test_a_tracking_failure_is_a_warning_and_the_step_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                              http: Http,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("STACK_NAME", "s")
    _every_hook()  # every server call is refused: none raises
    assert http.made, "tracking is on: the hooks call the server"
    failed = [r for r in caplog.records if r.getMessage() == "MLflow tracking failed; the lifecycle goes on"]
    assert {getattr(r, "tracking", None) for r in failed} == {"gate", "registration", "deployment", "rollback",
                                                              "monitoring", "batch"}
    assert all(r.levelname == "WARNING" and "127.0.0.1:9 unreachable" in getattr(r, "reason", "") for r in failed)


def test_a_bad_setting_names_the_parameter() -> None:
    with pytest.raises(tracking.TrackingError, match="MlflowTrackingUri"):
        tracking.Target.from_env({"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"})
    with pytest.raises(tracking.TrackingError, match="MlflowTrackingServerArn"):
        tracking.Target.from_env({"MLFLOW_TRACKING_SERVER_ARN": "arn:aws:s3:::bucket"})


def test_an_arn_targets_sagemaker_mlflow_with_sigv4(monkeypatch: pytest.MonkeyPatch, http: Http) -> None:
    """What the sagemaker-mlflow plugin sends: the region's experiments host, the ARN in a header,
    SigV4 for the service sagemaker-mlflow with the body's sha256."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_ARN", ARN)
    http.answer = lambda r: json.dumps({"experiment": {"experiment_id": "7"}}).encode()
    mlflow = tracking.client()
    assert mlflow is not None
    assert mlflow.experiment_id("s/churn") == "7"
    sent = http.made[0]
    assert sent.full_url == "https://eu-west-1.experiments.sagemaker.aws/api/2.0/mlflow/experiments/get-by-name?" \
                            "experiment_name=s%2Fchurn"
    headers = {k.lower(): v for k, v in sent.header_items()}
    assert headers["x-mlflow-sm-tracking-server-arn"] == ARN
    assert "/eu-west-1/sagemaker-mlflow/aws4_request" in headers["authorization"]
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "x-mlflow-sm-tracking-server-arn" in headers["authorization"]  # the ARN header is signed
    assert headers["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_evaluation_files_flatten_to_metrics() -> None:
    evaluation = {"binary_classification_metrics": {
        "auc": {"value": 0.91, "standard_deviation": "NaN"}, "f1": {"value": 0.5},
        "confusion_matrix": {"0": {"0": 3}}, "bad": {"value": float("nan")}}}
    assert tracking.flatten_evaluation(evaluation, "challenger.") == {"challenger.auc": 0.91, "challenger.f1": 0.5}


def test_a_training_scripts_own_mlflow_calls_are_read_from_its_output(tmp_path: Path) -> None:
    """A train.py's plain mlflow calls, with the environment a training job gets, land in the file
    store the gate reads from output.tar.gz (the last value of each metric, and the params)."""
    data = tmp_path / "opt/ml/output/data"
    script = ("import mlflow\n"
              "mlflow.log_param('n_estimators', 50)\n"
              "for step, loss in enumerate([0.9, 0.5, 0.25]):\n"
              "    mlflow.log_metric('train_loss', loss, step=step)\n"
              "mlflow.log_metric('val auc', 0.875)\n")
    env = {**os.environ, **JOB_TRACKING_ENV,
           "MLFLOW_TRACKING_URI": JOB_TRACKING_ENV["MLFLOW_TRACKING_URI"].replace("/opt/ml/output/data", str(data))}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=120)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:  # as SageMaker packs /opt/ml/output/data
        tar.add(data, arcname=".")
    metrics, params = tracking.read_job_store(archive.getvalue())
    assert metrics == {"train_loss": 0.25, "val auc": 0.875}
    assert params == {"n_estimators": "50"}
    assert JOB_TRACKING_DIR.startswith("/opt/ml/output/data/")


def test_a_slow_server_costs_a_step_at_most_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of a step shares one budget (the functions time out at 30 s): each waits at
    most what is left, and none is sent once it is spent."""
    timeouts: list[float] = []

    def slow(request: urllib.request.Request, timeout: float = 0) -> Any:
        timeouts.append(timeout)
        raise TimeoutError("timed out (test)")

    monkeypatch.setattr(urllib.request, "urlopen", slow)
    mlflow = tracking.Client(tracking.Target("http://127.0.0.1:9"), timeout=5, budget=0.5)
    with pytest.raises(tracking.TrackingError, match="unreachable"):
        mlflow.experiment_id("s/churn")
    assert timeouts and timeouts[0] <= 0.5
    mlflow.deadline = 0.0
    with pytest.raises(tracking.TrackingError, match="spent before GET"):
        mlflow.experiment_id("s/churn")
    assert len(timeouts) == 1
