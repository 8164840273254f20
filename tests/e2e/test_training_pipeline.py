"""The TrainingPipeline, executed for real on the local AWS: one test per path."""

from __future__ import annotations

import io
import json
import tarfile
from contextlib import contextmanager

import pytest

from autoloop_cli import datagen, publish
from tests.support import seed_package

pytestmark = pytest.mark.e2e

HAPPY = ["ValidateInput", "AcquireRunSlot", "Preprocess", "Train", "Evaluate", "ReleaseRunSlot", "QualityGate",
         "GateDecision", "RegisterModel", "NotifySuccess", "Succeeded"]


def csv(rows=1200, seed=3, drift=0.0) -> bytes:
    return datagen.generate(rows, seed=seed, drift=drift).to_csv(index=False).encode()


@contextmanager
def replaced(local, key: str, body: bytes):
    """Swap one published artifact (a script, the sourcedir or a config) for the test."""
    s3, bucket = local.client("s3"), local.outputs["ArtifactsBucketName"]
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        yield
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)


FAILING_SCRIPT = b"""
import os, sys
out = os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "failure"), "w").write("injected failure: the script gave up")
sys.exit(1)
"""


def failing_sourcedir() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(FAILING_SCRIPT)
        tar.addfile(info, io.BytesIO(FAILING_SCRIPT))
    return buffer.getvalue()


def failure_note(run):
    notes = [n for n in run.notifications if n.get("Subject") == "Autoloop: run failed"]
    assert len(notes) == 1, run.notifications
    return notes[0]["Message"]


def test_happy_path_registers_a_model_with_its_metrics(local):
    run = local.run(csv(), "incoming/churn/happy.csv")
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert run.path == HAPPY
    package = run.output["model_package"]
    sm = local.client("sagemaker")
    described = sm.describe_model_package(ModelPackageName=package["arn"])
    assert described["ModelApprovalStatus"] == "Approved"
    evaluation_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = evaluation_uri[5:].split("/", 1)
    evaluation = json.loads(local.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert 0.7 < auc < 1.0
    assert run.output["gate"]["metric"] == pytest.approx(auc)
    model = run.output["jobs"]["train"]["model_artifacts"]
    mb, mk = model[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(local.client("s3").get_object(Bucket=mb, Key=mk)["Body"].read())) as tar:
        assert {"model.joblib", "code/inference.py"} <= set(tar.getnames())
    [note] = [n for n in run.notifications if n["Subject"] == "Autoloop: model registered"]
    assert package["arn"] in note["Message"]


def test_bad_data_fails_at_validation_and_launches_nothing(local):
    body = b"churned,whatever\n1,2\n"
    run = local.run(body, "incoming/churn/bad.csv")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["ValidateInput", "ValidateInputFailed", "NotifyFailure", "RunFailed"]
    assert run.description["error"] == "ValidateInputFailed"
    assert "SchemaMismatch" in run.description["cause"]
    assert "SchemaMismatch" in failure_note(run)
    # Other runs' jobs (e.g. the deployment of an earlier model) may be running; none is this run's.
    jobs = local.client("sagemaker").list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]
    assert not [j for j in jobs if j["ProcessingJobName"].startswith(run.description["name"])]
    kept = local.client("s3").get_object(Bucket=local.outputs["DataBucketName"], Key="incoming/churn/bad.csv")
    assert kept["Body"].read() == body


def test_failed_processing_job_fails_the_run_with_its_reason(local):
    with replaced(local, "code/ml/preprocess.py", FAILING_SCRIPT):
        run = local.run(csv(seed=4), "incoming/churn/preprocess-fails.csv")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["PreprocessFailed", "ReleaseRunSlotAfterFailure", "NotifyFailure", "RunFailed"]
    assert run.description["error"] == "PreprocessFailed"
    assert "JobFailed" in run.description["cause"] and "injected failure" in run.description["cause"]
    assert "injected failure" in failure_note(run)


def test_failed_training_job_fails_the_run_with_its_reason(local):
    with replaced(local, "code/models/churn/sourcedir.tar.gz", failing_sourcedir()):
        run = local.run(csv(seed=5), "incoming/churn/train-fails.csv")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["TrainFailed", "ReleaseRunSlotAfterFailure", "NotifyFailure", "RunFailed"]
    assert "injected failure" in run.description["cause"]


def test_model_below_the_threshold_is_not_registered(local):
    config = json.loads((publish.MODELS_DIR / "churn" / "config.json").read_text())
    config["threshold"] = 0.999
    with replaced(local, "config/models/churn.json", json.dumps(config).encode()):
        run = local.run(csv(seed=6), "incoming/churn/below-threshold.csv")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["GateDecision", "BelowThreshold", "NotifyFailure", "RunFailed"]
    assert run.description["error"] == "BelowThreshold"
    assert "RegisterModel" not in run.path


def test_a_champion_that_cannot_be_scored_on_the_same_rows_fails_the_run_by_name(local):
    """A champion is compared on the challenger's holdout, so its model must be scorable:
    one whose model data is not an Autoloop training artifact stops the run at Evaluate.
    (tests/e2e/test_champion_gate.py covers a challenger that loses to a real champion.)"""
    sm = local.client("sagemaker")
    group = f"{local.stack.name}-churn"
    fake = seed_package(
        sm, local.stack.name, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://x/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"autoloop:metric-name": "auc", "autoloop:metric-value": "0.9999"},
    )
    count = len(sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])
    try:
        run = local.run(csv(seed=8), "incoming/churn/below-champion.csv")
    finally:
        sm.update_model_package(ModelPackageArn=fake, ModelApprovalStatus="Rejected")
    assert run.status == "FAILED"
    assert run.path[-4:] == ["EvaluateFailed", "ReleaseRunSlotAfterFailure", "NotifyFailure", "RunFailed"]
    assert "ChampionNotComparable" in run.description["cause"] and "s3://x/model.tar.gz" in run.description["cause"]
    assert len(sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) == count


def test_duplicate_upload_events_start_one_execution(local):
    from autoloop_cli import executions

    sfn = local.client("stepfunctions")
    body = csv(seed=9)
    key = "incoming/churn/duplicate.csv"
    local.run(body, key)
    runs = [e for e in executions.executions(sfn, local.outputs["TrainingPipelineArn"])]
    # Re-deliver the same S3 event to the start function: nothing new starts.
    lam = local.client("lambda")
    head = local.client("s3").head_object(Bucket=local.outputs["DataBucketName"], Key=key)
    event = json.loads((publish.ROOT / "events" / "s3_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = local.outputs["DataBucketName"]
    event["detail"]["object"].update({"key": key, "version-id": head["VersionId"], "etag": head["ETag"].strip('"')})
    for _ in range(3):
        response = lam.invoke(FunctionName=local.stack.resources["StartPipelineFunction"],
                              Payload=json.dumps(event).encode())
        assert json.loads(response["Payload"].read())["started"] is False
    assert len(list(executions.executions(sfn, local.outputs["TrainingPipelineArn"]))) == len(runs)


# ----------------------------------------------------------------------------- the command line
@pytest.fixture
def cli_state(local, tmp_path, monkeypatch):
    """`autoloop local ...` pointed at this module's local AWS, as `serve` would have written it."""
    from autoloop_cli import cli

    state = tmp_path / "server.json"
    state.write_text(json.dumps({"endpoint_url": local.server.endpoint_url, "stack": local.stack.name,
                                 "outputs": local.outputs}))
    monkeypatch.setattr(cli, "STATE_FILE", state)
    return cli


def test_put_refuses_to_guess_the_model(cli_state, tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_bytes(csv(rows=300, seed=11))
    assert cli_state.main(["local", "put", str(data)]) == 2
    assert "say which model the file is for: --model <name> (published: churn, fraud, price)" in capsys.readouterr().err
    assert cli_state.main(["local", "put", str(data), "--model", "spam"]) == 2
    assert "model 'spam' has no published config (published: churn, fraud, price)" in capsys.readouterr().err


def test_put_wait_follows_the_run_and_runs_lists_it_with_its_reason(cli_state, tmp_path, capsys):
    bad = tmp_path / "cli-bad.csv"
    bad.write_bytes(b"churned,whatever\n1,2\n")
    assert cli_state.main(["local", "put", str(bad), "--model", "churn", "--wait", "--timeout", "120"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("uploaded s3://") and "/incoming/churn/cli-bad.csv (version " in out[0]
    assert "  ValidateInput" in out and "  RunFailed" in out
    assert out[-1].startswith("FAILED: ValidateInputFailed: SchemaMismatch")
    assert len(out[-1].splitlines()) == 1
    run_name = out[1].removeprefix("run ")
    assert cli_state.main(["local", "runs", "--model", "churn"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(run_name)]
    assert "  FAILED  " in line and line.endswith(out[-1].removeprefix("FAILED: "))
