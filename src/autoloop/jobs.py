"""SageMaker job requests and results, as pure functions of the run.

The requests follow the script-mode contract of SageMaker's prebuilt scikit-learn
containers (see docs/ARCHITECTURE.md). Jobs run with network isolation: the training
code reaches the container as an input channel, not by a download from inside it.

Every job request carries its cost guard (``StoppingCondition.MaxRuntimeInSeconds``; a
transform job, which has none, is bounded per request by ``ModelClientConfig``) and the
stack's ``JobSecurity``: a KMS key for volumes and outputs and a VPC, each when configured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from autoloop.naming import RUN_ID_KEY, job_name, run_prefix

JobKind = Literal["processing", "training", "transform"]
STEP_KIND: dict[str, JobKind] = {
    "preprocess": "processing", "train": "training", "evaluate": "processing",
    "baseline": "processing", "calibrate": "processing", "monitor": "processing",
}
CODE_PREFIX = "code/ml/"
SOURCEDIR = "sourcedir.tar.gz"
PROC = "/opt/ml/processing"
TRAIN_CODE_CHANNEL = "/opt/ml/input/data/code"
CHECKPOINT_DIR = "/opt/ml/checkpoints"  # where SageMaker syncs CheckpointConfig.S3Uri
PREPROCESS_OUTPUTS = ("train", "validation", "test", "baseline")


#: Where the published model configs are, one ``<model>.json`` each.
CONFIG_PREFIX = "config/models/"


def config_key(model: str) -> str:
    return f"{CONFIG_PREFIX}{model}.json"


def code_key(name: str) -> str:
    return f"{CODE_PREFIX}{name}"


#: A model's script-mode training script, at the top of its source bundle (``models/<model>/``).
ENTRY_POINT = "train.py"

#: What a training job's environment adds, so a training script's own ``mlflow`` calls work with
#: no network (jobs run isolated): they log to a file store in the job's output data, which
#: SageMaker uploads as ``output.tar.gz``; the quality gate copies those metrics and params into
#: the run's MLflow run (:mod:`autoloop.tracking`). ``MLFLOW_ALLOW_FILE_STORE``: MLflow 3 refuses a
#: file store without it, and ``mlflow-skinny`` (what a training image vendors) cannot open SQLite.
JOB_TRACKING_DIR = "/opt/ml/output/data/mlruns"
JOB_TRACKING_ENV = {"MLFLOW_TRACKING_URI": JOB_TRACKING_DIR, "MLFLOW_ALLOW_FILE_STORE": "true"}


def model_code_key(model: str) -> str:
    """The model's source bundle: its folder with Autoloop's shared files (``autoloop publish``)."""
    return f"code/models/{model}/{SOURCEDIR}"


@dataclass(frozen=True)
class JobSecurity:
    """Encryption and network placement of every SageMaker job, model and schedule.

    Empty values mean the defaults: SageMaker's AWS-managed keys, the buckets' default
    encryption, and no VPC. Network isolation is always on, whatever is set here.
    """

    kms_key_arn: str = ""
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError("a VPC needs both subnet ids and security group ids (or neither)")

    @classmethod
    def parse(cls, kms_key_arn: str = "", subnet_ids: str = "", security_group_ids: str = "") -> JobSecurity:
        """From the Lambda environment: comma-separated id lists."""
        def ids(value: str) -> tuple[str, ...]:
            return tuple(v.strip() for v in value.split(",") if v.strip())

        return cls(kms_key_arn.strip(), ids(subnet_ids), ids(security_group_ids))

    def key(self, field: str = "KmsKeyId") -> dict[str, str]:
        """``{field: key}`` when a key is configured, else nothing (merge it into a request)."""
        return {field: self.kms_key_arn} if self.kms_key_arn else {}

    def vpc(self) -> dict[str, Any]:
        """``{"VpcConfig": ...}`` when a VPC is configured, else nothing."""
        if not self.subnet_ids:
            return {}
        return {"VpcConfig": {"SecurityGroupIds": list(self.security_group_ids), "Subnets": list(self.subnet_ids)}}

    def network_config(self) -> dict[str, Any]:
        """A processing or monitoring job's ``NetworkConfig``."""
        return {"EnableNetworkIsolation": True, **self.vpc()}


DEFAULT_SECURITY = JobSecurity()


@dataclass(frozen=True)
class SpotTraining:
    """Managed spot training: cheaper, interruptible, resumed from checkpoints.

    ``max_wait_seconds`` bounds waiting for capacity plus running; 0 means twice the job's
    MaxRuntimeInSeconds. SageMaker requires it to be at least MaxRuntimeInSeconds.
    """

    enabled: bool = False
    max_wait_seconds: int = 0

    def stopping_condition(self, max_runtime_seconds: int) -> dict[str, int]:
        condition = {"MaxRuntimeInSeconds": max_runtime_seconds}
        if self.enabled:
            wait = self.max_wait_seconds or 2 * max_runtime_seconds
            condition["MaxWaitTimeInSeconds"] = max(wait, max_runtime_seconds)
        return condition


@dataclass(frozen=True)
class JobContext:
    """Everything a job request depends on besides its inputs."""

    run_id: str
    model: str
    artifacts_bucket: str
    role_arn: str
    image_uri: str
    instance_type: str
    max_runtime_seconds: int
    stack_name: str = ""
    security: JobSecurity = DEFAULT_SECURITY
    spot: SpotTraining = SpotTraining()

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.artifacts_bucket}", run_prefix(self.model, self.run_id), *parts])

    @property
    def code_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/{CODE_PREFIX}"

    def tags(self, step: str) -> list[dict[str, str]]:
        tags = {RUN_ID_KEY: self.run_id, "autoloop:model": self.model, "autoloop:step": step}
        if self.stack_name:
            tags["autoloop:stack"] = self.stack_name
        return [{"Key": k, "Value": v} for k, v in tags.items()]


def s3_input(name: str, uri: str, local: str, data_type: str = "S3Prefix") -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": data_type,
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def s3_output(name: str, uri: str, local: str) -> dict[str, Any]:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def processing_request(ctx: JobContext, step: str, script: str, args: list[str],
                inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ProcessingJobName": job_name(ctx.run_id, step),
        "RoleArn": ctx.role_arn,
        "AppSpecification": {
            "ImageUri": ctx.image_uri,
            "ContainerEntrypoint": ["python3", f"{PROC}/input/code/{script}"],
            "ContainerArguments": args,
        },
        "ProcessingInputs": [*inputs, s3_input("code", ctx.code_uri, f"{PROC}/input/code")],
        **processing_guards(ctx, outputs, volume_gb=30),
        "Environment": {"AUTOLOOP_RUN_ID": ctx.run_id},
        "Tags": ctx.tags(step),
    }


def processing_guards(ctx: JobContext, outputs: list[dict[str, Any]], volume_gb: int) -> dict[str, Any]:
    """The parts of every processing job that encrypt, confine and bound it."""
    return {
        "ProcessingOutputConfig": {"Outputs": outputs, **ctx.security.key()},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": ctx.instance_type, "VolumeSizeInGB": volume_gb,
            **ctx.security.key("VolumeKmsKeyId"),
        }},
        "StoppingCondition": {"MaxRuntimeInSeconds": ctx.max_runtime_seconds},
        "NetworkConfig": ctx.security.network_config(),
    }


def preprocess_request(ctx: JobContext, source_uri: str) -> dict[str, Any]:
    config_uri = f"s3://{ctx.artifacts_bucket}/{config_key(ctx.model)}"
    outputs = [s3_output(n, ctx.uri("preprocess", n), f"{PROC}/output/{n}") for n in PREPROCESS_OUTPUTS]
    return processing_request(
        ctx, "preprocess", "preprocess.py",
        [
            "--input-dir", f"{PROC}/input/raw",
            "--config", f"{PROC}/input/config/{ctx.model}.json",
            "--output-dir", f"{PROC}/output",
            "--seed", "42",
        ],
        [
            s3_input("raw", source_uri, f"{PROC}/input/raw", "S3Prefix"),
            s3_input("config", config_uri, f"{PROC}/input/config", "S3Prefix"),
        ],
        outputs,
    )


def evaluate_request(ctx: JobContext, model_artifacts: str, test_uri: str, label: str, *,
                     task: str = "binary", metric: str | None = None, direction: str | None = None,
                     champion_model: str | None = None, champion_arn: str | None = None) -> dict[str, Any]:
    """Score the challenger (and, with ``champion_model``, the champion: its model.tar.gz as a
    second input) on the test split; both reports and comparison.json go to ``evaluation``."""
    if (champion_model is None) != (champion_arn is None):
        raise ValueError("champion_model and champion_arn go together")
    args = [
        "--model-dir", f"{PROC}/input/model",
        "--test-dir", f"{PROC}/input/test",
        "--output-dir", f"{PROC}/output/evaluation",
        "--label", label,
        "--task", task,
    ]
    if metric:
        args += ["--metric", metric]
    if direction:
        args += ["--direction", direction]
    inputs = [
        s3_input("model", model_artifacts, f"{PROC}/input/model", "S3Prefix"),
        s3_input("test", test_uri, f"{PROC}/input/test"),
    ]
    if champion_model and champion_arn:
        args += ["--champion-dir", f"{PROC}/input/champion", "--champion-arn", champion_arn]
        inputs.append(s3_input("champion", champion_model, f"{PROC}/input/champion", "S3Prefix"))
    return processing_request(
        ctx, "evaluate", "evaluate.py", args, inputs,
        [s3_output("evaluation", ctx.uri("evaluate", "evaluation"), f"{PROC}/output/evaluation")],
    )


def _channel(name: str, uri: str, content_type: str | None = "text/csv") -> dict[str, Any]:
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "InputMode": "File",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def encode_hyperparameters(values: Mapping[str, object]) -> dict[str, str]:
    """Script mode: every value JSON-encoded, as the SageMaker SDK does."""
    return {k: json.dumps(v) for k, v in values.items()}


def training_request(ctx: JobContext, train_uri: str, validation_uri: str,
                     hyperparameters: Mapping[str, object], label: str, task: str = "binary") -> dict[str, Any]:
    """Script mode: train.py gets the config's hyperparameters, its label and its task (which
    picks the estimator) as CLI arguments."""
    name = job_name(ctx.run_id, "train")
    hps: dict[str, object] = {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": f"{TRAIN_CODE_CHANNEL}/{SOURCEDIR}",
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": name,
        **hyperparameters,
        "label": label,
        "task": task,
    }
    return {
        "TrainingJobName": name,
        "RoleArn": ctx.role_arn,
        "AlgorithmSpecification": {"TrainingImage": ctx.image_uri, "TrainingInputMode": "File"},
        "HyperParameters": encode_hyperparameters(hps),
        "InputDataConfig": [
            _channel("train", train_uri),
            _channel("validation", validation_uri),
            _channel("code", f"s3://{ctx.artifacts_bucket}/{model_code_key(ctx.model)}", None),
        ],
        "OutputDataConfig": {"S3OutputPath": ctx.uri("train", "output"), **ctx.security.key()},
        "ResourceConfig": {"InstanceType": ctx.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30,
                           **ctx.security.key("VolumeKmsKeyId")},
        "StoppingCondition": ctx.spot.stopping_condition(ctx.max_runtime_seconds),
        "EnableNetworkIsolation": True,
        **ctx.security.vpc(),
        **spot_options(ctx),
        "Environment": {"AUTOLOOP_RUN_ID": ctx.run_id, **JOB_TRACKING_ENV},
        "Tags": ctx.tags("train"),
    }


def spot_options(ctx: JobContext) -> dict[str, Any]:
    """Spot capacity can be taken back mid-job: SageMaker then restarts the job and restores
    ``CHECKPOINT_DIR`` from the run's checkpoint prefix, which train.py resumes from."""
    if not ctx.spot.enabled:
        return {}
    return {
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": ctx.uri("train", "checkpoints"), "LocalPath": CHECKPOINT_DIR},
    }


def job_result(kind: JobKind, description: Mapping[str, Any]) -> dict[str, Any]:
    """The step result that both the callback and the reconcile path return."""
    if kind == "processing":
        name = description["ProcessingJobName"]
        status = description["ProcessingJobStatus"]
        outputs = {
            o["OutputName"]: o["S3Output"]["S3Uri"]
            for o in description.get("ProcessingOutputConfig", {}).get("Outputs", [])
        }
        artifacts = None
    elif kind == "transform":
        name = description["TransformJobName"]
        status = description["TransformJobStatus"]
        output = description.get("TransformOutput", {}).get("S3OutputPath")
        outputs = {"output": output} if output else {}
        artifacts = None
    else:
        name = description["TrainingJobName"]
        status = description["TrainingJobStatus"]
        outputs = {}
        artifacts = description.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    return {
        "job_name": name,
        "kind": kind,
        "status": status,
        "outputs": outputs,
        "model_artifacts": artifacts,
        "failure_reason": description.get("FailureReason"),
    }
