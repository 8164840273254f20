"""localaws.sagemaker.jobs.runner: SageMaker jobs that really run on top of moto (in-process).

Each test runs under ``moto.mock_aws()`` with the extension installed, and waits for the
job threads with a bounded ``wait_for_jobs`` before moto's state goes away.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker.responses import SageMakerResponse

from localaws.sagemaker import optml
from localaws.sagemaker.jobs import job
from localaws.sagemaker.jobs import runner as sagemaker_jobs
from localaws.sagemaker.jobs.containers import to_cmd_args
from localaws.sagemaker.jobs.transform import parse_filter
from localaws.sagemaker.sandbox import rewrite
from tests.support import use_fake_aws

REGION = "us-east-1"
BUCKET = "sm-bucket"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
JOB_WAIT = 30.0


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto in-process, the extension installed, sandboxes under tmp_path/home."""
    use_fake_aws(monkeypatch, local_server=False)  # in-process moto
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(home))
    was_installed = sagemaker_jobs.installed()
    sagemaker_jobs.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        try:
            yield {
                "s3": s3,
                "sm": boto3.client("sagemaker", region_name=REGION),
                "home": home,
                "tmp": tmp_path,
            }
        finally:
            sagemaker_jobs.stop_all_jobs(timeout=15)
            assert sagemaker_jobs.wait_for_jobs(timeout=15)
            if not was_installed:  # leave moto as other test modules expect it
                sagemaker_jobs.uninstall()


def put(s3: Any, key: str, body: str | bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{BUCKET}/{key}"


def get(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def keys(s3: Any, prefix: str) -> list[str]:
    response = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def finished(name: str) -> None:
    assert sagemaker_jobs.wait_for_jobs(timeout=JOB_WAIT, names=[name]), f"{name} still running"


def processing_job(
    sm: Any,
    name: str,
    code_uri: str,
    *,
    args: list[str] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    environment: dict[str, str] | None = None,
    max_runtime: int = 60,
) -> str:
    code_input = {
        "InputName": "code",
        "S3Input": {
            "S3Uri": code_uri,
            "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }
    params: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
        },
        "ProcessingInputs": [code_input, *(inputs or [])],
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 10,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if args:
        params["AppSpecification"]["ContainerArguments"] = args
    if outputs:
        params["ProcessingOutputConfig"] = {"Outputs": outputs}
    if environment:
        params["Environment"] = environment
    return str(sm.create_processing_job(**params)["ProcessingJobArn"])


def s3_input(name: str, uri: str, local: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def s3_output(name: str, uri: str, local: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"},
    }


def training_job(
    sm: Any,
    name: str,
    hyperparameters: dict[str, str],
    channels: dict[str, str],
    *,
    max_runtime: int = 60,
    manifests: frozenset[str] = frozenset(),
) -> str:
    """A script-mode training job; the channels named in ``manifests`` are ManifestFile inputs."""
    return str(
        sm.create_training_job(
            TrainingJobName=name,
            RoleArn=ROLE,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            HyperParameters=hyperparameters,
            InputDataConfig=[
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "ManifestFile" if channel in manifests else "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "text/csv",
                }
                for channel, uri in channels.items()
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
        )["TrainingJobArn"]
    )


def script_mode_hps(submit_uri: str, **user: Any) -> dict[str, str]:
    """HyperParameters as the SageMaker SDK sends them: every value JSON-encoded."""
    values = {"sagemaker_program": "train.py", "sagemaker_submit_directory": submit_uri, **user}
    return {key: json.dumps(value) for key, value in values.items()}


# --- processing -------------------------------------------------------------------------------

PROCESSING_SCRIPT = """
import argparse, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--input")
parser.add_argument("--output")
args = parser.parse_args()
files = sorted(p for p in pathlib.Path(args.input).rglob("*") if p.is_file())
rows = sum(len(p.read_text().splitlines()) for p in files)
out = pathlib.Path(args.output)
(out / "nested").mkdir(parents=True, exist_ok=True)
(out / "summary.txt").write_text(f"files={len(files)} rows={rows}\\n")
(out / "nested" / "names.txt").write_text(
    "\\n".join(p.relative_to(args.input).as_posix() for p in files))
marker = os.environ["MARKER"]
# /opt/ml as the job sees it (its own mount, or the sandbox by rewriting): the folder exists
assert marker.endswith("/opt/ml/processing/marker") and os.path.isdir(os.path.dirname(marker))
assert os.environ["SM_OUTPUT_DIR"].endswith("/opt/ml/output")
with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "message"), "w") as fh:
    fh.write("Completed: 2 files")
print("processing done", flush=True)
"""


def test_processing_job_runs_the_script_and_uploads_outputs(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/proc/job.py", PROCESSING_SCRIPT)
    put(s3, "raw/a.csv", "x\n1\n2\n")
    put(s3, "raw/deeper/b.csv", "x\n3\n")
    name = "proc-ok"
    arn = processing_job(
        sm,
        name,
        code.rsplit("/", 1)[0],
        args=["--input", "/opt/ml/processing/input/raw", "--output", "/opt/ml/processing/out"],
        inputs=[s3_input("raw", f"s3://{BUCKET}/raw", "/opt/ml/processing/input/raw")],
        outputs=[s3_output("result", f"s3://{BUCKET}/results/run1", "/opt/ml/processing/out")],
        environment={"MARKER": "/opt/ml/processing/marker"},
    )
    finished(name)

    job = sm.describe_processing_job(ProcessingJobName=name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingJobArn"] == arn
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert job["ExitMessage"] == "Completed: 2 files"
    assert job["Environment"] == {"MARKER": "/opt/ml/processing/marker"}
    assert "FailureReason" not in job
    assert keys(s3, "results/run1/") == [
        "results/run1/nested/names.txt",
        "results/run1/summary.txt",
    ]
    assert get(s3, "results/run1/summary.txt") == b"files=2 rows=5\n"
    assert get(s3, "results/run1/nested/names.txt") == b"a.csv\ndeeper/b.csv"

    sandbox = aws["home"] / "jobs" / name
    assert (sandbox / "opt/ml/processing/input/raw/deeper/b.csv").read_text() == "x\n3\n"
    assert "processing done" in (sandbox / "logs.txt").read_text()
    assert json.loads((sandbox / "opt/ml/config/processingjobconfig.json").read_text())[
        "ProcessingJobName"
    ] == name

    timing = sagemaker_jobs.job_timings()[name]
    assert timing["kind"] == "processing" and timing["status"] == "Completed"
    assert 0 < timing["compute_seconds"] <= timing["total_seconds"]
    # moto's list reflects the real status too
    summaries = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [s["ProcessingJobStatus"] for s in summaries] == ["Completed"]


def manifest_input(name: str, uri: str, local: str) -> dict[str, Any]:
    item = s3_input(name, uri, local)
    item["S3Input"]["S3DataType"] = "ManifestFile"
    return item


def test_processing_input_from_a_manifest_file_gets_exactly_the_listed_objects(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/manifest/job.py", PROCESSING_SCRIPT).rsplit("/", 1)[0]
    put(s3, "labelled/run-1/labelled.csv", "x\n1\n2\n")
    put(s3, "labelled/run-2/deep/labelled.csv", "x\n3\n")
    put(s3, "labelled/run-3/labelled.csv", "x\n4\n5\n6\n")  # under the prefix, not listed: not downloaded
    manifest = put(s3, "manifests/labelled.manifest", json.dumps(
        [{"prefix": f"s3://{BUCKET}/labelled/"}, "run-1/labelled.csv", "run-2/deep/labelled.csv"]))
    name = "proc-manifest"
    processing_job(
        sm, name, code,
        args=["--input", "/opt/ml/processing/input/labelled", "--output", "/opt/ml/processing/out"],
        inputs=[manifest_input("labelled", manifest, "/opt/ml/processing/input/labelled")],
        outputs=[s3_output("result", f"s3://{BUCKET}/results/manifest", "/opt/ml/processing/out")],
        environment={"MARKER": "/opt/ml/processing/marker"},
    )
    finished(name)

    job = sm.describe_processing_job(ProcessingJobName=name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    # each object lands at <LocalPath>/<relative key>
    assert get(s3, "results/manifest/nested/names.txt") == b"run-1/labelled.csv\nrun-2/deep/labelled.csv"
    assert get(s3, "results/manifest/summary.txt") == b"files=2 rows=5\n"


def test_manifest_problems_fail_the_job_with_a_client_error(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/manifest-bad/job.py", "print('never runs')\n").rsplit("/", 1)[0]
    put(s3, "labelled/run-1/labelled.csv", "x\n1\n")
    prefix = {"prefix": f"s3://{BUCKET}/labelled/"}
    cases = {
        "missing-object": ([prefix, "run-1/labelled.csv", "run-9/labelled.csv"],
                           f"s3://{BUCKET}/labelled/run-9/labelled.csv, listed in the manifest "
                           f"s3://{BUCKET}/manifests/missing-object.manifest, does not exist."),
        "not-json": ("[{'prefix': 's3://x/'}]", "is not JSON"),
        "no-prefix": (["run-1/labelled.csv"], 'whose first element is {"prefix": "s3://bucket/prefix/"}'),
        "bad-prefix": ([{"prefix": "labelled/"}, "run-1/labelled.csv"], "is not an s3://bucket/... URI"),
        "no-objects": ([prefix], "lists no objects after its prefix"),
        "escapes": ([prefix, "../../etc/passwd"], "entry 1 of the manifest"),
        "a-folder": ([prefix, "run-1/"], "entry 1 of the manifest"),
    }
    for case, (manifest, _) in cases.items():
        body = manifest if isinstance(manifest, str) else json.dumps(manifest)
        uri = put(s3, f"manifests/{case}.manifest", body)
        processing_job(sm, f"proc-{case}", code,
                       inputs=[manifest_input("labelled", uri, "/opt/ml/processing/input/labelled")])
    processing_job(sm, "proc-no-manifest", code, inputs=[
        manifest_input("labelled", f"s3://{BUCKET}/manifests/none.manifest", "/opt/ml/processing/input/labelled")])
    augmented = manifest_input("labelled", f"s3://{BUCKET}/manifests/no-objects.manifest", "/opt/ml/processing/x")
    augmented["S3Input"]["S3DataType"] = "AugmentedManifestFile"
    processing_job(sm, "proc-augmented", code, inputs=[augmented])

    expected = {case: match for case, (_, match) in cases.items()}
    expected["no-manifest"] = f"could not read the manifest s3://{BUCKET}/manifests/none.manifest"
    expected["augmented"] = "S3DataType AugmentedManifestFile is not supported in local mode"
    for case, match in expected.items():
        finished(f"proc-{case}")
        job = sm.describe_processing_job(ProcessingJobName=f"proc-{case}")
        assert job["ProcessingJobStatus"] == "Failed", case
        assert job["FailureReason"].startswith("ClientError: input 'labelled': "), (case, job["FailureReason"])
        assert match in job["FailureReason"], (case, job["FailureReason"])
    sandbox = aws["home"] / "jobs" / "proc-escapes"
    assert not (sandbox / "opt/ml/processing/input/etc").exists()


FAILING_SCRIPT = """
import os, sys
if sys.argv[1] == "reason":
    with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as fh:
        fh.write("bad input: 0 rows in raw/")
    sys.exit(3)
raise ValueError("something exploded")
"""


def test_processing_failures_report_the_failure_file_or_stderr(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/fail/job.py", FAILING_SCRIPT).rsplit("/", 1)[0]
    out = [s3_output("out", f"s3://{BUCKET}/failed-out", "/opt/ml/processing/output")]
    processing_job(sm, "proc-reason", code, args=["reason"], outputs=out)
    processing_job(sm, "proc-crash", code, args=["crash"])  # runs concurrently
    finished("proc-reason")
    finished("proc-crash")

    with_reason = sm.describe_processing_job(ProcessingJobName="proc-reason")
    assert with_reason["ProcessingJobStatus"] == "Failed"
    assert with_reason["FailureReason"] == "AlgorithmError: bad input: 0 rows in raw/"
    assert keys(s3, "failed-out/") == []  # outputs are not uploaded for a failed job

    crashed = sm.describe_processing_job(ProcessingJobName="proc-crash")
    assert crashed["ProcessingJobStatus"] == "Failed"
    reason = crashed["FailureReason"]
    assert reason.startswith("AlgorithmError: ")
    assert "ValueError: something exploded" in reason
    assert str(aws["home"] / "jobs" / "proc-crash" / "logs.txt") in reason
    assert len(reason) <= 1024


def test_duplicate_job_name_is_rejected(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/dup/job.py", "print('hi')\n").rsplit("/", 1)[0]
    processing_job(sm, "proc-dup", code)
    with pytest.raises(ClientError) as error:
        processing_job(sm, "proc-dup", code)
    assert error.value.response["Error"]["Code"] == "ResourceInUse"
    finished("proc-dup")


# --- runtime limit and stop -------------------------------------------------------------------

SLEEPY_SCRIPT = """
import os, sys, time
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(60)
"""


def _pid_gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_max_runtime_kills_the_subprocess(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/sleepy/job.py", SLEEPY_SCRIPT).rsplit("/", 1)[0]
    pid_file = aws["tmp"] / "sleepy.pid"
    # 3 s: enough for the script to start and write its pid on a loaded machine, then be killed
    processing_job(sm, "proc-slow", code, args=[str(pid_file)], max_runtime=3)
    assert sm.describe_processing_job(ProcessingJobName="proc-slow")[
        "ProcessingJobStatus"
    ] == "InProgress"
    finished("proc-slow")  # the script would sleep 60 s

    job = sm.describe_processing_job(ProcessingJobName="proc-slow")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("MaxRuntimeExceeded")
    assert _pid_gone(pid_file)


def test_stop_training_job_stops_it(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    pid_file = aws["tmp"] / "train.pid"
    submit = put(
        s3,
        "code/sleepy/sourcedir.tar.gz",
        tar_gz({"train.py": SLEEPY_SCRIPT.replace("sys.argv[1]", repr(str(pid_file)))}),
    )
    put(s3, "data/stop/train.csv", "1,2\n")
    training_job(sm, "train-stop", script_mode_hps(submit), {"train": f"s3://{BUCKET}/data/stop"})
    for _ in range(100):  # bounded: until the script has started
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    sm.stop_training_job(TrainingJobName="train-stop")
    finished("train-stop")

    job = sm.describe_training_job(TrainingJobName="train-stop")
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "Stopped"
    assert "ModelArtifacts" not in job
    assert _pid_gone(pid_file)
    with pytest.raises(ClientError):  # no longer in progress
        sm.stop_training_job(TrainingJobName="train-stop")


# --- training ---------------------------------------------------------------------------------

TRAIN_SCRIPT = """
import json, os, pathlib, sys
import helper  # from the source dir: cwd / PYTHONPATH is /opt/ml/code

env = os.environ
assert sys.argv[1:] == ["-C", "0.5", "--label", "churned", "--max-iter", "200"], sys.argv
assert json.loads(env["SM_HPS"]) == {"C": 0.5, "label": "churned", "max-iter": 200}
assert env["SM_HP_LABEL"] == "churned" and env["SM_HP_MAX-ITER"] == "200"
assert json.loads(env["SM_USER_ARGS"]) == sys.argv[1:]
assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
assert env["SM_MODEL_DIR"].endswith("/opt/ml/model") and os.path.isdir(env["SM_MODEL_DIR"])
assert env["SM_CHANNEL_TRAIN"].endswith("/opt/ml/input/data/train")
train = pathlib.Path(env["SM_CHANNEL_TRAIN"]) / "train.csv"
assert train.read_text() == "1,0.1\\n0,0.9\\n"
assert (pathlib.Path(env["SM_CHANNEL_VALIDATION"]) / "validation.csv").exists()
assert env["SM_OUTPUT_DATA_DIR"].endswith("/opt/ml/output/data")
assert env["SM_OUTPUT_DIR"].endswith("/opt/ml/output")
assert env["SM_INPUT_DIR"].endswith("/opt/ml/input")
config_dir = pathlib.Path(env["SM_INPUT_CONFIG_DIR"])
assert json.loads((config_dir / "hyperparameters.json").read_text())["label"] == '"churned"'
assert set(json.loads((config_dir / "inputdataconfig.json").read_text())) == {"train", "validation"}
assert json.loads((config_dir / "resourceconfig.json").read_text())["current_host"] == "algo-1"
assert env["SM_MODULE_NAME"] == "train" and env["SM_USER_ENTRY_POINT"] == "train.py"
assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"
assert int(env["SM_NUM_CPUS"]) >= 1 and env["SM_NUM_GPUS"] == "0"
training_env = json.loads(env["SM_TRAINING_ENV"])
assert training_env["channel_input_dirs"]["train"] == env["SM_CHANNEL_TRAIN"]
assert training_env["hyperparameters"]["max-iter"] == 200
assert env["SM_MODULE_DIR"].startswith("s3://") and env["TRAINING_JOB_NAME"] == "train-ok"

model_dir = pathlib.Path(env["SM_MODEL_DIR"])
(model_dir / "model.txt").write_text(helper.weights())
(model_dir / "code").mkdir()
(model_dir / "code" / "inference.py").write_text("# inference")
(pathlib.Path(env["SM_OUTPUT_DATA_DIR"]) / "metrics.json").write_text('{"loss": 0.1}')
print("trained", flush=True)
"""


def test_training_job_script_mode(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    submit = put(
        s3,
        "code/train/sourcedir.tar.gz",
        tar_gz({"train.py": TRAIN_SCRIPT, "helper.py": "def weights():\n    return 'w=0.5'\n"}),
    )
    put(s3, "data/train/train.csv", "1,0.1\n0,0.9\n")
    put(s3, "data/validation/validation.csv", "1,0.2\n")
    hps = script_mode_hps(submit, C=0.5, label="churned", **{"max-iter": 200})
    channels = {
        "train": f"s3://{BUCKET}/data/train/",
        "validation": f"s3://{BUCKET}/data/validation/validation.csv",
    }
    training_job(sm, "train-ok", hps, channels)
    finished("train-ok")

    job = sm.describe_training_job(TrainingJobName="train-ok")
    logs = aws["home"] / "jobs" / "train-ok" / "logs.txt"
    assert job["TrainingJobStatus"] == "Completed", (job.get("FailureReason"), logs.read_text())
    model_uri = f"s3://{BUCKET}/models/train-ok/output/model.tar.gz"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == model_uri
    assert job["SecondaryStatus"] == "Completed"
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["HyperParameters"] == hps
    assert "MetricDefinitions" not in job["AlgorithmSpecification"]  # moto's fake one is gone
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed",
    ]  # fmt: skip

    with tarfile.open(fileobj=io.BytesIO(get(s3, "models/train-ok/output/model.tar.gz"))) as tf:
        assert sorted(tf.getnames()) == ["code", "code/inference.py", "model.txt"]
        member = tf.extractfile("model.txt")
        assert member is not None and member.read() == b"w=0.5"
    with tarfile.open(fileobj=io.BytesIO(get(s3, "models/train-ok/output/output.tar.gz"))) as tf:
        assert tf.getnames() == ["metrics.json"]
    assert "trained" in logs.read_text()
    assert sagemaker_jobs.job_timings()["train-ok"]["compute_seconds"] > 0


MANIFEST_TRAIN_SCRIPT = """
import os, pathlib
data = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"])
names = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
assert names == ["train.csv"], names
assert (data / "train.csv").read_text() == "1,0.1\\n0,0.9\\n"
(pathlib.Path(os.environ["SM_MODEL_DIR"]) / "model.txt").write_text("ok")
"""


def test_training_channel_from_a_manifest_file(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    submit = put(s3, "code/train-m/sourcedir.tar.gz", tar_gz({"train.py": MANIFEST_TRAIN_SCRIPT}))
    put(s3, "data/m/train.csv", "1,0.1\n0,0.9\n")
    put(s3, "data/m/train.csv.bak", "not listed\n")
    put(s3, "data/validation/validation.csv", "1,0.2\n")
    manifest = put(s3, "manifests/train.manifest", json.dumps([{"prefix": f"s3://{BUCKET}/data/m/"}, "train.csv"]))
    hps = script_mode_hps(submit)
    channels = {"train": manifest, "validation": f"s3://{BUCKET}/data/validation/"}
    training_job(sm, "train-manifest", hps, channels, manifests=frozenset({"train"}))
    missing = put(s3, "manifests/missing.manifest", json.dumps([{"prefix": f"s3://{BUCKET}/data/m/"}, "gone.csv"]))
    training_job(sm, "train-manifest-missing", hps, {"train": missing}, manifests=frozenset({"train"}))
    finished("train-manifest")
    finished("train-manifest-missing")

    job = sm.describe_training_job(TrainingJobName="train-manifest")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    data = aws["home"] / "jobs" / "train-manifest" / "opt/ml/input/data/train"
    assert sorted(p.name for p in data.iterdir()) == ["train.csv"]
    failed = sm.describe_training_job(TrainingJobName="train-manifest-missing")
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"] == (f"ClientError: channel 'train': s3://{BUCKET}/data/m/gone.csv, listed in the "
                                       f"manifest {missing}, does not exist.")


def test_training_failures(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    script = (
        "import os, sys\n"
        "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w')"
        ".write('label column missing')\n"
        "sys.exit(1)\n"
    )
    submit = put(s3, "code/badtrain/sourcedir.tar.gz", tar_gz({"train.py": script}))
    put(s3, "data/bad/train.csv", "1\n")
    channels = {"train": f"s3://{BUCKET}/data/bad/"}
    training_job(sm, "train-bad", script_mode_hps(submit), channels)
    training_job(sm, "train-noscript", {"epochs": "3"}, channels)  # not script mode
    training_job(  # an empty channel fails as on SageMaker
        sm, "train-nodata", script_mode_hps(submit), {"train": f"s3://{BUCKET}/nothing/"}
    )
    for name in ("train-bad", "train-noscript", "train-nodata"):
        finished(name)

    bad = sm.describe_training_job(TrainingJobName="train-bad")
    assert bad["TrainingJobStatus"] == "Failed"
    assert bad["FailureReason"] == "AlgorithmError: label column missing"
    assert bad["SecondaryStatus"] == "Failed"
    assert "ModelArtifacts" not in bad
    assert keys(s3, "models/train-bad/") == []

    no_script = sm.describe_training_job(TrainingJobName="train-noscript")
    assert no_script["TrainingJobStatus"] == "Failed"
    assert "sagemaker_program" in no_script["FailureReason"]

    no_data = sm.describe_training_job(TrainingJobName="train-nodata")
    assert no_data["FailureReason"].startswith("ClientError: No S3 objects found")


def test_training_code_can_come_from_an_input_channel(aws: dict[str, Any]) -> None:
    """Network-isolated script mode: sourcedir.tar.gz arrives as the ``code`` channel and
    sagemaker_submit_directory is its container path (what autoloop.jobs sends)."""
    s3, sm = aws["s3"], aws["sm"]
    script = (
        "import os, pathlib\n"
        "assert os.getcwd().endswith('/opt/ml/code')\n"
        "assert os.path.isfile(os.environ['SM_MODULE_DIR'])\n"
        "pathlib.Path(os.environ['SM_MODEL_DIR'], 'm.txt').write_text(os.environ['SM_MODULE_DIR'])\n"
    )
    tarball = put(s3, "code/channel/sourcedir.tar.gz", tar_gz({"train.py": script}))
    put(s3, "data/ch/train.csv", "1\n")
    hps = script_mode_hps("/opt/ml/input/data/code/sourcedir.tar.gz")
    training_job(sm, "train-channel", hps, {"train": f"s3://{BUCKET}/data/ch/", "code": tarball})
    finished("train-channel")
    job = sm.describe_training_job(TrainingJobName="train-channel")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    archive = get(s3, "models/train-channel/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        member = tf.extractfile("m.txt")
        assert member is not None
        module_dir = member.read().decode()
    sandbox = aws["home"] / "jobs" / "train-channel"
    private = optml.root_for(sandbox).private
    assert module_dir == ("" if private else str(sandbox)) + "/opt/ml/input/data/code/sourcedir.tar.gz"


# --- transform --------------------------------------------------------------------------------

INFERENCE = """
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as fh:
        return json.load(fh)

def input_fn(body, content_type):
    assert content_type == "text/csv" and isinstance(body, str)
    return [[float(v) for v in line.split(",")] for line in body.splitlines() if line]

def predict_fn(rows, model):
    with open(os.environ["BATCH_LOG"], "a") as fh:
        fh.write(f"{len(rows)}\\n")
    return [model["w"] * sum(row) for row in rows]

def output_fn(predictions, accept):
    print("a user print goes to the log, not the protocol")
    return "".join(f"{p:.1f}\\n" for p in predictions), accept
"""


def _transform(
    sm: Any, name: str, output: str, source: str = f"s3://{BUCKET}/batch/in/", **extra: Any
) -> None:
    sm.create_transform_job(
        TransformJobName=name,
        ModelName="scorer",
        BatchStrategy="MultiRecord",
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **extra,
    )


def test_transform_job_streams_csv_with_join_and_filters(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    model_uri = put(
        s3,
        "models/scorer/model.tar.gz",
        tar_gz({"model.json": '{"w": 2}', "code/inference.py": INFERENCE}),
    )
    batch_log = aws["tmp"] / "batches.txt"
    sm.create_model(
        ModelName="scorer",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": model_uri,
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "BATCH_LOG": str(batch_log)},
        },
    )
    rows = 40_000  # about 1.2 MB: several 1 MB mini-batches
    lines = [f"id-{i:06d},{i % 7}.25,{i % 3}.5,0.0000000000" for i in range(rows)]
    put(s3, "batch/in/part-1.csv", "\n".join(lines) + "\n")
    put(s3, "batch/in/sub/part-2.csv", "id-a,1,2,0\nid-b,0.5,0.5,0\n")
    put(s3, "batch/in/empty.csv", "")

    _transform(
        sm,
        "tf-join",
        f"s3://{BUCKET}/batch/out",
        MaxPayloadInMB=1,
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    )
    finished("tf-join")
    job = sm.describe_transform_job(TransformJobName="tf-join")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert keys(s3, "batch/out/") == ["batch/out/part-1.csv.out", "batch/out/sub/part-2.csv.out"]

    out = get(s3, "batch/out/part-1.csv.out").decode().splitlines()
    assert len(out) == rows
    for i in (0, 1, 12_345, rows - 1):
        assert out[i] == f"id-{i:06d},{2 * ((i % 7) + 0.25 + (i % 3) + 0.5):.1f}"
    assert get(s3, "batch/out/sub/part-2.csv.out") == b"id-a,6.0\nid-b,2.0\n"

    batches = [int(n) for n in batch_log.read_text().split()]
    assert sum(batches) == rows + 2
    assert len(batches) >= 3  # 1.2 MB in mini-batches of at most 1 MB, plus part-2
    assert max(batches) * len(lines[0]) < 1024 * 1024
    logs = (aws["home"] / "jobs" / "tf-join" / "logs.txt").read_text()
    assert "a user print goes to the log" in logs

    # the same model without DataProcessing: the output is the model's lines as they are;
    # a prefix without a trailing slash keeps its last segment in the output keys
    batch_log.unlink()
    put(s3, "batch/num/a.csv", "".join(line.split(",", 1)[1] + "\n" for line in lines))
    put(s3, "batch/num/b.csv", "1,2,0\n0.5,0.5,0\n")
    _transform(sm, "tf-plain", f"s3://{BUCKET}/batch/plain/", f"s3://{BUCKET}/batch/num")
    finished("tf-plain")
    plain = sm.describe_transform_job(TransformJobName="tf-plain")
    assert plain["TransformJobStatus"] == "Completed", plain.get("FailureReason")
    assert get(s3, "batch/plain/num/b.csv.out") == b"6.0\n2.0\n"
    assert len(get(s3, "batch/plain/num/a.csv.out").splitlines()) == rows
    assert len(batch_log.read_text().split()) == 2  # default 6 MB: one mini-batch per file


def test_transform_job_fails_when_the_model_fails(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    broken = "def model_fn(model_dir):\n    return None\n\ndef predict_fn(data, model):\n"
    broken += "    raise RuntimeError('cannot score')\n"
    model_uri = put(s3, "models/broken/model.tar.gz", tar_gz({"code/inference.py": broken}))
    sm.create_model(
        ModelName="scorer",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_uri},
    )
    put(s3, "batch/in/x.csv", "1,2\n")
    _transform(sm, "tf-broken", f"s3://{BUCKET}/batch/broken/")
    finished("tf-broken")
    job = sm.describe_transform_job(TransformJobName="tf-broken")
    assert job["TransformJobStatus"] == "Failed"
    assert "RuntimeError: cannot score" in job["FailureReason"]
    assert keys(s3, "batch/broken/") == []


# --- events -----------------------------------------------------------------------------------


def test_state_change_events_reach_an_sqs_target(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="sm-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="sagemaker-jobs",
        EventPattern=json.dumps(
            {
                "source": ["aws.sagemaker"],
                "detail-type": [
                    "SageMaker Processing Job State Change",
                    "SageMaker Training Job State Change",
                ],
            }
        ),
    )
    events.put_targets(Rule="sagemaker-jobs", Targets=[{"Id": "q", "Arn": queue_arn}])

    code = put(s3, "code/ev/job.py", "print('ok')\n").rsplit("/", 1)[0]
    arn = processing_job(sm, "proc-events", code)
    training_job(sm, "train-events", {"epochs": "1"}, {"train": f"s3://{BUCKET}/code/ev/"})
    finished("proc-events")
    finished("train-events")

    received: list[dict[str, Any]] = []
    for _ in range(20):  # bounded
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            break
        received += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )

    processing = [e for e in received if e["detail-type"] == "SageMaker Processing Job State Change"]
    statuses = [e["detail"]["ProcessingJobStatus"] for e in processing]
    assert statuses == ["InProgress", "Completed"]
    done = processing[-1]
    assert done["source"] == "aws.sagemaker"
    assert done["resources"] == [arn]
    assert done["detail"]["ProcessingJobName"] == "proc-events"
    assert done["detail"]["ProcessingJobArn"] == arn
    assert isinstance(done["detail"]["ProcessingEndTime"], int)  # epoch millis
    assert done["detail"]["ProcessingEndTime"] >= done["detail"]["ProcessingStartTime"]
    assert done["detail"]["AppSpecification"]["ContainerEntrypoint"][0] == "python3"

    training = [e for e in received if e["detail-type"] == "SageMaker Training Job State Change"]
    assert [e["detail"]["TrainingJobStatus"] for e in training] == ["InProgress", "Failed"]
    assert training[-1]["detail"]["TrainingJobName"] == "train-events"
    assert "sagemaker_program" in training[-1]["detail"]["FailureReason"]


# --- small pieces -----------------------------------------------------------------------------


def test_filters_args_and_path_rewriting() -> None:
    row = ["id", "a", "b", "c"]
    assert parse_filter("$") is None and parse_filter(None) is None
    assert parse_filter("$[1:]")(row) == ["a", "b", "c"]  # type: ignore[misc]
    assert parse_filter("$[0,-1]")(row) == ["id", "c"]  # type: ignore[misc]
    assert parse_filter("$[1:3]")(row) == ["a", "b"]  # type: ignore[misc]
    assert parse_filter("$[0, 2:]")(row) == ["id", "b", "c"]  # type: ignore[misc]
    with pytest.raises(Exception, match="supported subset"):
        parse_filter("$.features")
    assert to_cmd_args({"max-iter": 200, "C": 1.0, "x": "y"}) == [
        "-C", "1.0", "--max-iter", "200", "-x", "y",
    ]  # fmt: skip
    sandbox = Path("/tmp/sb")
    assert rewrite("/opt/ml/processing/input", sandbox) == "/tmp/sb/opt/ml/processing/input"
    assert rewrite("/opt/mlx", sandbox) == "/opt/mlx"
    assert rewrite("s3://b/opt/ml", sandbox) == "s3://b/opt/ml"


def test_configure_work_root_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "from-env"))
    monkeypatch.setattr(job.SETTINGS, "work_root", None)
    assert sagemaker_jobs.sandbox_for("j1") == tmp_path / "from-env" / "jobs" / "j1"
    sagemaker_jobs.configure(work_root=tmp_path / "configured")
    assert sagemaker_jobs.sandbox_for("j1") == tmp_path / "configured" / "jobs" / "j1"


def test_uninstall_restores_plain_moto(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, "code/plain/job.py", "raise SystemExit(1)\n").rsplit("/", 1)[0]
    sagemaker_jobs.uninstall()
    try:
        assert not sagemaker_jobs.installed()
        processing_job(sm, "proc-plain", code)  # moto's own record: Completed at creation
        job = sm.describe_processing_job(ProcessingJobName="proc-plain")
        assert job["ProcessingJobStatus"] == "Completed"
        assert not (aws["home"] / "jobs" / "proc-plain").exists()
        assert not hasattr(SageMakerResponse, "stop_training_job")  # moto has none
    finally:
        sagemaker_jobs.install()
    assert sagemaker_jobs.installed()
