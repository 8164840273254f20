"""localaws.sagemaker.optml: a real /opt/ml for jobs and endpoint workers, or a loud fallback.

The scripts here hard-code container paths the way AWS's examples and the SageMaker SDK v3
drivers do (``glob("/opt/ml/processing/input/...")``, ``bash -c "... /opt/ml/input/data/..."``),
which no rewriting of arguments can reach. With a private mount namespace they work as in
a container; in the rewrite fallback the job must fail, naming the path, and leave nothing
under the host's /opt/ml.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localaws.sagemaker import optml
from localaws.sagemaker.endpoints import service as sagemaker_endpoints
from localaws.sagemaker.jobs import runner as sagemaker_jobs
from localaws.sagemaker.sandbox import JobFailure
from tests.localaws.conftest import sagemaker_in_process

BUCKET = "optml-tests"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
WAIT = 30.0
HOST_OPT_ML = Path("/opt/ml")

SUPPORT = optml.support()
needs_namespaces = pytest.mark.skipif(
    not SUPPORT.available, reason=f"no private /opt/ml on this host: {SUPPORT.reason}"
)

# In the style of AWS's scikit-learn processing example (preprocessing.py): fixed container
# paths, no arguments.
AWS_STYLE_PROCESSING = """
import glob, json, os

input_files = glob.glob("/opt/ml/processing/input/*.csv")
rows = []
for name in sorted(input_files):
    with open(name) as fh:
        rows += fh.read().splitlines()[1:]
train_output_path = os.path.join("/opt/ml/processing/output/train", "train_features.csv")
os.makedirs(os.path.dirname(train_output_path), exist_ok=True)
with open(train_output_path, "w") as fh:
    fh.write("\\n".join(rows) + "\\n")
with open("/opt/ml/processing/output/info.json", "w") as fh:
    json.dump({"files": len(input_files), "opt": sorted(os.listdir("/opt")), "cwd": os.getcwd(),
               "output_dir": os.environ["SM_OUTPUT_DIR"]}, fh)
"""


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with sagemaker_in_process(tmp_path / "home", BUCKET, monkeypatch) as found:
        yield found


def put(s3: Any, key: str, body: str | bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{BUCKET}/{key}"


def get(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def aws_style_processing_job(aws: dict[str, Any], name: str) -> dict[str, Any]:
    s3, sm = aws["s3"], aws["sm"]
    code = put(s3, f"code/{name}/preprocessing.py", AWS_STYLE_PROCESSING)
    put(s3, f"raw/{name}/a.csv", "x,y\n1,2\n3,4\n")
    put(s3, f"raw/{name}/b.csv", "x,y\n5,6\n")
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE,
                          "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/preprocessing.py"]},
        ProcessingInputs=[
            {"InputName": "input-1", "S3Input": {"S3Uri": f"s3://{BUCKET}/raw/{name}/", "S3DataType": "S3Prefix",
                                                  "LocalPath": "/opt/ml/processing/input", "S3InputMode": "File"}},
            {"InputName": "code", "S3Input": {"S3Uri": code, "S3DataType": "S3Prefix", "S3InputMode": "File",
                                               "LocalPath": "/opt/ml/processing/input/code"}},
        ],
        ProcessingOutputConfig={"Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": f"s3://{BUCKET}/out/{name}/train",
                                                 "LocalPath": "/opt/ml/processing/output/train",
                                                 "S3UploadMode": "EndOfJob"}},
            {"OutputName": "info", "S3Output": {"S3Uri": f"s3://{BUCKET}/out/{name}/info",
                                                "LocalPath": "/opt/ml/processing/output",
                                                "S3UploadMode": "EndOfJob"}},
        ]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 10}},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )
    assert sagemaker_jobs.wait_for_jobs(timeout=WAIT, names=[name])
    return dict(sm.describe_processing_job(ProcessingJobName=name))


@needs_namespaces
def test_aws_style_processing_script_with_hard_coded_paths_works(aws: dict[str, Any]) -> None:
    host_had_opt_ml = HOST_OPT_ML.exists()
    job = aws_style_processing_job(aws, "aws-style")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert get(aws["s3"], "out/aws-style/train/train_features.csv") == b"1,2\n3,4\n5,6\n"
    info = json.loads(get(aws["s3"], "out/aws-style/info/info.json"))
    assert info["files"] == 2
    assert info["output_dir"] == "/opt/ml/output"  # SM_* values are container paths too
    # the host's /opt stays visible around the job's /opt/ml (pip indexes, tools, ...)
    host_entries = {e for e in os.listdir("/opt") if e != "ml"}
    assert set(info["opt"]) == host_entries | {"ml"}
    assert HOST_OPT_ML.exists() == host_had_opt_ml  # nothing reached the host


@pytest.mark.skipif(HOST_OPT_ML.exists(), reason="the host has an /opt/ml: a job's write cannot be told apart")
def test_the_same_script_fails_loudly_in_the_rewrite_fallback(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(optml.MODE_ENV, "rewrite")
    job = aws_style_processing_job(aws, "aws-style-fallback")
    assert job["ProcessingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    if os.access("/opt", os.W_OK):  # the script wrote to the host: the check caught it
        assert reason.startswith("ClientError: the job wrote to /opt/ml"), reason
        assert "what it created was removed" in reason and "AUTOLOOP_OPT_ML=rewrite" in reason
    else:  # it could not even write there: the script's own error
        assert "/opt/ml" in reason, reason
    assert not HOST_OPT_ML.exists()
    assert aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="out/aws-style-fallback/").get("KeyCount") == 0


DRIVER = """#!/bin/bash
set -e
cat /opt/ml/input/config/inputdataconfig.json > /dev/null
python3 /opt/ml/input/data/code/train.py
"""
TRAIN = """
import os, sys
rows = open("/opt/ml/input/data/train/data.csv").read().splitlines()
os.makedirs("/opt/ml/model", exist_ok=True)
with open("/opt/ml/model/model.txt", "w") as fh:
    fh.write(f"rows={len(rows)} cwd={os.getcwd()} python={sys.executable}")
"""


@needs_namespaces
def test_training_through_a_bash_driver_as_sdk_v3_submits_it(aws: dict[str, Any]) -> None:
    """ModelTrainer's shape: /bin/bash -c "chmod +x <driver> && <driver>", code and drivers
    as input channels, every path hard-coded, ``python3`` from PATH."""
    s3, sm = aws["s3"], aws["sm"]
    channels = {
        "code": put(s3, "v3/code/train.py", TRAIN),
        "sm_drivers": put(s3, "v3/drivers/sm_train.sh", DRIVER),
        "train": put(s3, "v3/data/data.csv", "1\n2\n3\n"),
    }
    sm.create_training_job(
        TrainingJobName="bash-driver",
        RoleArn=ROLE,
        AlgorithmSpecification={
            "TrainingImage": IMAGE, "TrainingInputMode": "File", "ContainerEntrypoint": ["/bin/bash"],
            "ContainerArguments": ["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh "
                                         "&& /opt/ml/input/data/sm_drivers/sm_train.sh"],
        },
        InputDataConfig=[{"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for name, uri in channels.items()],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/v3/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )  # fmt: skip
    assert sagemaker_jobs.wait_for_jobs(timeout=WAIT, names=["bash-driver"])
    job = sm.describe_training_job(TrainingJobName="bash-driver")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    archive = get(s3, "v3/output/bash-driver/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("model.txt")
        assert member is not None
        text = member.read().decode()
    assert text.startswith("rows=3 cwd=/opt/ml/code python=")
    assert Path(text.split("python=")[1]).resolve() == Path(sys.executable).resolve()


HARD_CODED_INFERENCE = """
import json

def model_fn(model_dir):
    with open("/opt/ml/model/weights.json") as fh:  # not model_dir
        return json.load(fh)

def input_fn(body, content_type):
    return [float(v) for v in body.strip().split(",")]

def predict_fn(row, model):
    return sum(w * v for w, v in zip(model["w"], row))

def output_fn(value, accept):
    return str(value), "text/csv"
"""


@needs_namespaces
def test_endpoint_worker_reads_the_model_from_the_real_opt_ml(aws: dict[str, Any]) -> None:
    s3, sm = aws["s3"], aws["sm"]
    put(s3, "models/hard/model.tar.gz", tar_gz({"weights.json": json.dumps({"w": [1, 10]}),
                                               "code/inference.py": HARD_CODED_INFERENCE}))
    sm.create_model(ModelName="hard", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/hard/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(EndpointConfigName="hard-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "hard", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="hard", EndpointConfigName="hard-config")
    assert sagemaker_endpoints.wait_for_endpoint("hard", WAIT) == "InService"
    answer = aws["rt"].invoke_endpoint(EndpointName="hard", Body="2,3", ContentType="text/csv")
    assert answer["Body"].read() == b"32.0"


# --- the mode and the probe -------------------------------------------------------------------


def test_mode_is_checked_and_namespace_mode_fails_where_it_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(optml.MODE_ENV, "chroot")
    with pytest.raises(JobFailure, match=r"AUTOLOOP_OPT_ML='chroot' is not one of auto, namespace, rewrite"):
        optml.root_for(tmp_path)

    monkeypatch.setenv(optml.MODE_ENV, "rewrite")
    root = optml.root_for(tmp_path)
    assert not root.private
    assert root.rewrite("/opt/ml/model") == f"{tmp_path}/opt/ml/model"
    assert root.seen(tmp_path / "opt/ml/model") == f"{tmp_path}/opt/ml/model"
    assert root.command(["python3", "x.py"], tmp_path / "code") == (["python3", "x.py"], tmp_path / "code")

    optml.forget_probe()
    monkeypatch.setattr(optml.shutil, "which", lambda name: None)
    try:
        monkeypatch.setenv(optml.MODE_ENV, "namespace")
        with pytest.raises(JobFailure, match="cannot give jobs a private /opt/ml: util-linux's unshare is not"):
            optml.root_for(tmp_path)
        monkeypatch.setenv(optml.MODE_ENV, "auto")
        with caplog.at_level(logging.WARNING, logger=optml.__name__):
            first, second = optml.root_for(tmp_path), optml.root_for(tmp_path)
        assert not first.private and not second.private
        warnings = [r.getMessage() for r in caplog.records if r.name == optml.__name__]
        assert len(warnings) == 1 and "unshare is not installed" in warnings[0]
    finally:
        optml.forget_probe()


@needs_namespaces
def test_private_root_maps_sandbox_paths_to_container_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(optml.MODE_ENV, raising=False)
    root = optml.root_for(tmp_path)
    assert root.private
    assert root.rewrite("/opt/ml/model") == "/opt/ml/model"
    assert root.seen(tmp_path / "opt" / "ml") == "/opt/ml"
    assert root.seen(tmp_path / "opt/ml/input/data/train") == "/opt/ml/input/data/train"
    assert root.seen("/usr/bin/python3") == "/usr/bin/python3"
    argv, cwd = root.command(["python3", "x.py"], tmp_path / "opt/ml/code")
    assert argv[-4:] == [str(tmp_path), "/opt/ml/code", "python3", "x.py"] and cwd == tmp_path
    assert root.watch() is None
    root.check(None)  # nothing to check when private


def test_pip_in_a_job_refuses_to_install_into_the_local_aws(tmp_path: Path) -> None:
    tools = optml.tool_dir(tmp_path)
    done = subprocess.run([str(tools / "pip3"), "install", "requests"], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "does not install packages" in done.stderr
    version = subprocess.run([str(tools / "python3"), "-c", "import sys; print(sys.prefix)"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == sys.prefix
