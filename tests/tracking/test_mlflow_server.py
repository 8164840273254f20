"""autoloop.tracking against a real `mlflow server` (autoloop_cli.mlflow_server, in a temporary
home), read back with MLflow's own client: the REST calls, and each lifecycle hook with its files
in (moto) S3."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from autoloop import adapters, tracking
from autoloop.drift import BASELINE_DRIFT_CHECK, Violation
from autoloop.state import MonitoringPlan, PipelineState
from autoloop_cli.mlflow_server import MlflowServer, MlflowServerError, ui_command

pytestmark = pytest.mark.slow

BUCKET = "art"
RUN = "churn-0123456789"
FOLDER = f"s3://{BUCKET}/runs/churn/{RUN}/evaluate/evaluation"
MODEL_TAR = f"s3://{BUCKET}/runs/churn/{RUN}/train/output/{RUN}-train/output/model.tar.gz"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with MlflowServer(tmp_path_factory.mktemp("home")) as running:
        yield running


@pytest.fixture
def mlflow(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> tracking.Client:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("STACK_NAME", "teststack")
    found = tracking.client()
    assert found is not None
    return found


def reader(server: MlflowServer):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.url)


def test_the_rest_client_round_trip(server: MlflowServer, mlflow: tracking.Client, tmp_path: Path) -> None:
    experiment = mlflow.experiment_id("teststack/roundtrip")
    assert mlflow.experiment_id("teststack/roundtrip") == experiment  # found, not created twice
    run = mlflow.create_run(experiment, "r1", {tracking.RUN_ID_TAG: "it's-1", tracking.KIND_TAG: "training"})
    run_id = run["info"]["run_id"]
    params = {f"p{i}": i for i in range(130)}  # more than one log-batch request holds
    mlflow.log(run_id, metrics={"auc": 0.75, "nan": float("nan"), "flag": True}, params=params,
               tags={"autoloop.note": "x"})
    assert mlflow.upload(run, "evaluation/evaluation.json", b'{"a": 1}')
    mlflow.finish(run_id)
    assert [r["info"]["run_id"] for r in mlflow.search(experiment, {tracking.RUN_ID_TAG: "it's-1"})] == [run_id]
    assert mlflow.search(experiment, {tracking.RUN_ID_TAG: "other"}) == []

    client = reader(server)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics == {"auc": 0.75}  # NaN and a bool are not metrics
    assert got.data.params == {k: str(v) for k, v in params.items()}
    assert got.data.tags["autoloop.note"] == "x"
    local = client.download_artifacts(run_id, "evaluation/evaluation.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == {"a": 1}


def _put(s3, uri: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    bucket, key = adapters.split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _evaluation(auc: float) -> bytes:
    return json.dumps({"binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": "NaN"},
                                                          "f1": {"value": auc / 2}}}).encode()


def _output_tar() -> bytes:
    """A training job's output.tar.gz whose script logged with mlflow (the file store's layout)."""
    files = {"mlruns/0/abc/metrics/train_loss": b"1 0.5 0\n2 0.125 1\n", "mlruns/0/abc/params/depth": b"4",
             "mlruns/0/meta.yaml": b"name: Default\n"}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_the_lifecycle_hooks_log_one_history_per_model(server: MlflowServer, mlflow: tracking.Client,
                                                       tmp_path: Path) -> None:
    with mock_aws():
        s3 = adapters.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        _put(s3, f"{FOLDER}/evaluation.json", _evaluation(0.9))
        _put(s3, f"{FOLDER}/champion_evaluation.json", _evaluation(0.8))
        _put(s3, f"{FOLDER}/comparison.json", b'{"holdout_rows": 120}')
        _put(s3, MODEL_TAR, b"model bytes")
        _put(s3, MODEL_TAR.replace("model.tar.gz", "output.tar.gz"), _output_tar())
        state = PipelineState.model_validate({
            "run_id": RUN, "model": "churn", "trigger": {"type": "quality", "detail": {"report": "s3://r"}},
            "source": {"bucket": "data", "key": "incoming/churn/a.csv", "version_id": "v7"},
            "dataset": {"rows": 600, "columns": 5, "bytes": 100, "missing_labels": 0, "label": "churned",
                        "metric": "auc", "hyperparameters": {"C": 0.5}, "bundle_sha256": "ab" * 32,
                        "training_image": "img:1"},
            "jobs": {"train": {"job_name": f"{RUN}-train", "kind": "training", "status": "Completed",
                               "model_artifacts": MODEL_TAR}},
        })
        gate = {"verdict": "Promote", "metric_name": "auc", "metric": 0.9, "direction": "higher", "threshold": 0.7,
                "champion_arn": "arn:aws:sagemaker:us-east-1:1:model-package/teststack-churn/1",
                "champion_metric": 0.8, "holdout_rows": 120, "reason": "beats the champion"}
        tracking.gate(state, gate, FOLDER)
        tracking.gate(state, gate, FOLDER)  # a retried gate step logs into the same run
    package = "arn:aws:sagemaker:us-east-1:1:model-package/teststack-churn/2"
    tracking.registered("churn", RUN, package, "Approved")
    tracking.deployment_started("churn", RUN, "teststack-churn", "teststack-churn-cfg2", "update")
    tracking.rolled_back("teststack-churn", "teststack-churn-cfg2", "alarm fired")
    plan = MonitoringPlan.model_validate({
        "action": "monitor", "reason": "due", "run_id": "mon-1", "model": "churn", "endpoint": "teststack-churn",
        "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T01:00:00Z", "report_uri": "s3://a/m/"})
    report = {"rows": 400, "labelled_rows": 300,
              "features": [{"name": "tenure", "distance": 0.31, "threshold": 0.1, "violated": True},
                           {"name": "age", "distance": 0.02, "threshold": 0.1, "violated": False}],
              "quality": {"metric": "auc", "value": 0.61, "threshold": 0.7, "champion": 0.8, "violated": True}}
    tracking.monitored("churn", plan, report, {"retrain": True, "reason": "quality drop", "run_id": "churn-r2"})
    drifted = Violation("tenure", BASELINE_DRIFT_CHECK, "distance: 0.4 exceeds threshold: 0.1", 0.4, 0.1)
    tracking.violations_checked("churn", "teststack-churn", "s3://a/mm/exec-2/", [drifted],
                                {"retrain": False, "reason": "cooldown"})
    tracking.batch_published({"model": "churn", "run_id": "batch-1", "month": "2026-01", "rows": {"scored": 50,
                              "malformed": 2}, "package": {"arn": package, "version": 2, "training_run_id": RUN}},
                             "s3://d/_report.json")

    client = reader(server)
    experiment = client.get_experiment_by_name("teststack/churn")
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert sorted(r.data.tags["autoloop.kind"] for r in found) == ["batch", "monitoring", "monitoring", "training"]
    runs = {r.data.tags["autoloop.kind"]: r for r in reversed(found)}  # the first of each kind
    training = runs["training"]
    assert training.data.tags["autoloop.run_id"] == RUN and training.data.tags["autoloop.trigger"] == "quality"
    assert training.data.params["dataset.uri"] == "s3://data/incoming/churn/a.csv"
    assert training.data.params["dataset.version"] == "v7" and training.data.params["hp.C"] == "0.5"
    assert training.data.params["bundle_sha256"] == "ab" * 32 and training.data.params["entry_point"] == "train.py"
    assert training.data.params["script.depth"] == "4"
    assert training.data.metrics["challenger.auc"] == 0.9 and training.data.metrics["champion.auc"] == 0.8
    assert training.data.metrics["holdout_rows"] == 120 and training.data.metrics["script.train_loss"] == 0.125
    assert training.data.metrics["gate.promote"] == 1.0 and training.data.tags["autoloop.gate.verdict"] == "Promote"
    assert training.data.tags["autoloop.package_arn"] == package and training.data.metrics["package_version"] == 2
    assert training.data.tags["autoloop.deploy.status"] == "RolledBack"
    assert training.data.metrics["rolled_back"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(training.info.run_id, "evaluation")}
    assert artifacts == {"evaluation/evaluation.json", "evaluation/comparison.json",
                         "evaluation/champion_evaluation.json"}
    model = client.download_artifacts(training.info.run_id, "model/model.tar.gz", str(tmp_path))
    assert Path(model).read_bytes() == b"model bytes"
    monitoring = runs["monitoring"]
    assert monitoring.data.metrics["drift.tenure"] == 0.31 and monitoring.data.metrics["drift.features_flagged"] == 1
    assert monitoring.data.metrics["quality.auc"] == 0.61 and monitoring.data.metrics["retrain"] == 1
    assert monitoring.data.tags["autoloop.retrain_run_id"] == "churn-r2"
    model_monitor = [r for r in found if r.data.tags["autoloop.kind"] == "monitoring"][1]  # model-monitor backend
    assert model_monitor.data.metrics["drift.tenure"] == 0.4 and model_monitor.data.metrics["retrain"] == 0
    assert model_monitor.data.tags["autoloop.violated_checks"] == BASELINE_DRIFT_CHECK
    batch = runs["batch"]
    assert batch.data.metrics["rows_scored"] == 50 and batch.data.tags["autoloop.training_run_id"] == RUN


def test_a_server_that_cannot_start_says_why(tmp_path: Path, server: MlflowServer) -> None:
    with pytest.raises(MlflowServerError, match=f"port {server.port} is in use"):
        MlflowServer(tmp_path, port=server.port).start()
    assert "mlflow ui --backend-store-uri sqlite:///" in ui_command(tmp_path)


def test_stop_ends_every_process_the_server_started(server: MlflowServer) -> None:
    """Runs last in the module: the CLI, its uvicorn worker and anything they started are gone."""
    import os

    group = server.pid
    assert group is not None
    os.killpg(group, 0)  # running
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
