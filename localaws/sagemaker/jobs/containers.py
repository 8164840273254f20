"""Processing and Training jobs run as local subprocesses under SageMaker's container contract.

Gap in moto: moto records ``CreateProcessingJob`` / ``CreateTrainingJob`` and runs
nothing. On SageMaker the platform downloads the inputs into the container, runs the
image's entrypoint (processing) or the sagemaker-training-toolkit's script mode (training),
and uploads the outputs. Autoloop's ML scripts (``ml/*.py``) only rely on that contract, so
local mode reproduces it without Docker, inside the job sandbox (``<sandbox>/opt/ml``, which
the job's process sees as the real ``/opt/ml`` where Linux mount namespaces allow it, else
by rewriting; see :mod:`localaws.sagemaker.optml`). A job's scripts run on the project's venv
or on a venv built like its image (:mod:`localaws.sagemaker.runtimes`; the job log's first line
says which). Each job's ``PATH`` starts with ``python``/``python3`` for that interpreter
(:func:`localaws.sagemaker.optml.tool_dir`), so shell drivers that call ``python3`` from
``PATH`` (SDK v3's ``sm_train.sh``) run it:

Processing: each ``ProcessingInput`` (``S3Input`` in ``File`` mode) is downloaded to its
``LocalPath``: every object under an ``S3Prefix``, or every object a ``ManifestFile`` lists
(see :func:`download_manifest`); ``AppSpecification.ContainerEntrypoint + ContainerArguments`` runs
(a leading ``python``/``python3`` becomes the job's interpreter) with ``os.environ`` plus the
job's ``Environment`` and ``SM_OUTPUT_DIR``; on exit 0 each ``ProcessingOutput``'s
``LocalPath`` is uploaded to its ``S3Uri``. ``/opt/ml/output/message`` becomes
``ExitMessage``; on failure ``/opt/ml/output/failure`` becomes ``FailureReason``.

Training (script mode): JSON-decoded ``HyperParameters``; ``sagemaker_submit_directory``
is extracted to ``/opt/ml/code``; channels (``S3Prefix`` or ``ManifestFile``) go to
``/opt/ml/input/data/<channel>``;
``/opt/ml/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json`` are written;
the toolkit's ``SM_*`` variables are set and ``python <sagemaker_program> --key value ...``
runs in ``/opt/ml/code``. On success ``/opt/ml/model`` becomes
``<S3OutputPath>/<job>/output/model.tar.gz`` (and ``/opt/ml/output/data`` becomes
``output.tar.gz`` if not empty).

Local images: an image whose built-in entrypoint has a local stand-in can be registered
with :func:`register_local_image` (by ECR repository name, e.g.
``sagemaker-model-monitor-analyzer``). A processing job with that image and no
``ContainerEntrypoint`` then runs the registered command under the same contract, and the
image's optional ``after_run(job)`` hook runs after a successful run and upload, before the
job is marked Completed (the platform work that image implies, e.g. publishing metrics).

Not supported (the job fails with a ``ClientError`` saying so): Pipe/FastFile input modes
other than File semantics, AugmentedManifestFile inputs, DatasetDefinition and Feature Store,
processing images without an explicit ``ContainerEntrypoint`` (unless registered as local
images), training without script mode or ``ContainerEntrypoint``, ``requirements.txt``
installation on the project's venv (a local runtime installs the source directory's
``requirements.txt`` when it is built), multi-instance jobs (one host, ``algo-1``), debugger and profiler.

Checkpoints (``CheckpointConfig``) follow SageMaker's contract: before the script starts,
every object under ``S3Uri`` is copied to ``LocalPath`` (default ``/opt/ml/checkpoints``);
after it ends, whether it succeeded or not, ``LocalPath`` is copied back to ``S3Uri``.
(SageMaker also syncs during the run; one copy at the end is what a spot restart needs.)
Spot capacity is never taken back locally: ``EnableManagedSpotTraining`` runs on demand.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localaws.clients import client
from localaws.sagemaker import runtimes
from localaws.sagemaker.jobs.job import work_root
from localaws.sagemaker.optml import Root, path_with_tools
from localaws.sagemaker.runtimes import image_repository
from localaws.sagemaker.sandbox import (
    JobFailure,
    dir_has_files,
    download_prefix,
    env_with,
    fetch_code,
    join_s3,
    local_path,
    make_tar_gz,
    read_head,
    rewrite,
    split_s3_uri,
    truncate,
    upload_dir,
)

if TYPE_CHECKING:
    from localaws.sagemaker.jobs.job import Job, ProcessResult

HOST = "algo-1"
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
# params.SAGEMAKER_HYPERPARAMETERS of the training toolkit: not user hyperparameters and not
# framework params either.
_TOOLKIT_HPS = frozenset(
    {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "sagemaker_region",
        "sagemaker_s3_output",
    }
)


def _command(parts: list[str], root: Root, python: str) -> list[str]:
    cmd = [root.rewrite(str(p)) for p in parts]
    if cmd and _PYTHON.fullmatch(os.path.basename(cmd[0])):
        cmd[0] = python
    return cmd


def job_interpreter(job: Job, image_uri: str | None, requirements: Path | None = None) -> runtimes.Interpreter:
    """The Python the job's scripts run on (:mod:`localaws.sagemaker.runtimes`); its log's first
    line says which, and how it differs from the image."""
    try:
        chosen = runtimes.interpreter(image_uri, requirements)
    except runtimes.RuntimeUnavailable as exc:
        job.note(f"[local runtime failed] {exc}" + (f" (build log: {exc.log})" if exc.log else ""))
        raise JobFailure(f"ClientError: local runtime: {exc}") from exc
    job.note(chosen.line)
    return chosen


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def _tail_text(result: ProcessResult, room: int) -> str:
    text = "\n".join(result.stderr_tail[-12:]).strip() or "(no stderr output)"
    return text if len(text) <= room else "..." + text[-max(room - 3, 0) :]


def _failure(job: Job, result: ProcessResult, *, training_cmd: list[str] | None = None) -> str:
    """FailureReason: the failure file if the script wrote one, else the stderr tail."""
    written = read_head(job.sandbox / "opt" / "ml" / "output" / "failure")
    if written and written.strip():
        return truncate("AlgorithmError: " + written.strip())
    logs = f"Logs: {job.log_path}"
    if training_cmd is not None:  # the training toolkit's ExecuteUserScriptError message
        cmd = " ".join(training_cmd)
        fixed = (
            f'AlgorithmError: ExecuteUserScriptError:\nExitCode {result.returncode}\n'
            f'ErrorMessage ""\nCommand "{cmd}"\n{logs}'
        )
        tail = _tail_text(result, 1024 - len(fixed))
        return truncate(fixed.replace('ErrorMessage ""', f'ErrorMessage "{tail}"', 1))
    fixed = f"AlgorithmError: exit code {result.returncode}. {logs}. Last stderr lines:\n"
    return truncate(fixed + _tail_text(result, 1024 - len(fixed)))


def _exit_message(job: Job) -> str | None:
    text = read_head(job.sandbox / "opt" / "ml" / "output" / "message")
    return truncate(text) if text and text.strip() else None


# --- local images ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalImage:
    """A local stand-in for an image's built-in entrypoint (see :func:`register_local_image`)."""

    command: tuple[str, ...]
    after_run: Callable[[Job], None] | None = None


_LOCAL_IMAGES: dict[str, LocalImage] = {}


def register_local_image(
    repository: str, command: Sequence[str], *, after_run: Callable[[Job], None] | None = None
) -> None:
    """Run ``command`` (``python``/``python3`` becomes this interpreter) for processing jobs
    whose image is in ``repository`` and that set no ``ContainerEntrypoint``."""
    _LOCAL_IMAGES[repository] = LocalImage(tuple(command), after_run)


def unregister_local_image(repository: str) -> None:
    _LOCAL_IMAGES.pop(repository, None)


def local_image(image_uri: str | None) -> LocalImage | None:
    return _LOCAL_IMAGES.get(image_repository(image_uri))


# --- processing -----------------------------------------------------------------------------


def _run(job: Job, cmd: list[str], *, env: dict[str, str], cwd: Path) -> ProcessResult:
    """Run the job's command; in the rewrite fallback, fail it if it wrote to the host's
    ``/opt/ml`` (a path hard-coded in the script, which no rewriting reaches)."""
    before = job.root.watch()
    result = job.run(cmd, env=env, cwd=cwd)
    job.root.check(before)
    return result


def _manifest_entries(body: bytes, manifest_uri: str, what: str) -> tuple[str, list[str]]:
    """(prefix, relative keys) of a manifest, or a ``ClientError`` naming what is wrong with it."""
    shape = ('a JSON array whose first element is {"prefix": "s3://bucket/prefix/"}, followed by '
             "object keys relative to that prefix")
    try:
        entries = json.loads(body)
    except ValueError as exc:
        raise JobFailure(f"ClientError: {what}: the manifest {manifest_uri} is not JSON ({exc}); "
                         f"it must be {shape}") from exc
    if not (isinstance(entries, list) and entries and isinstance(entries[0], dict)
            and isinstance(entries[0].get("prefix"), str)):
        raise JobFailure(f"ClientError: {what}: the manifest {manifest_uri} must be {shape}")
    prefix = entries[0]["prefix"]
    if not prefix.startswith("s3://") or not prefix[len("s3://"):].split("/", 1)[0]:
        raise JobFailure(f"ClientError: {what}: the prefix of the manifest {manifest_uri} ({prefix!r}) is not an "
                         "s3://bucket/... URI")
    relative = entries[1:]
    if not relative:
        raise JobFailure(f"ClientError: {what}: the manifest {manifest_uri} lists no objects after its prefix")
    for index, key in enumerate(relative, start=1):
        # The key is also a path below LocalPath: it may not leave it or name a folder.
        if not isinstance(key, str) or any(part in ("", ".", "..") for part in key.split("/")):
            raise JobFailure(
                f"ClientError: {what}: entry {index} of the manifest {manifest_uri} ({key!r}) is not an object "
                "key relative to the prefix (a non-empty path, with no '.', '..' or empty segments)"
            )
    return prefix, relative


def download_manifest(s3: Any, manifest_uri: str, dest: Path, what: str = "input") -> int:
    """Download the objects a manifest file lists into ``dest`` (``S3DataType: ManifestFile``).

    The manifest (SageMaker's ``S3DataSource``/``ProcessingS3Input`` format) is a JSON array:
    ``[{"prefix": "s3://bucket/some/prefix/"}, "relative/key-1", "relative/key-2", ...]``; each
    object is ``<prefix><relative key>`` and lands at ``<dest>/<relative key>``. A manifest that
    cannot be read or parsed, or an object it lists that does not exist, fails the job with a
    ``ClientError`` reason, as on SageMaker. Returns the number of files written.
    """
    bucket, key = split_s3_uri(manifest_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise JobFailure(f"ClientError: {what}: could not read the manifest {manifest_uri} ({code}); "
                         "S3Uri of a ManifestFile input names the manifest object itself") from exc
    prefix, relative = _manifest_entries(body, manifest_uri, what)
    dest.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    for name in relative:
        uri = prefix + name
        obj_bucket, obj_key = split_s3_uri(uri)
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(obj_bucket, obj_key, str(target))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            missing = code in ("404", "NoSuchKey", "NotFound")
            raise JobFailure(
                f"ClientError: {what}: {uri}, listed in the manifest {manifest_uri}, "
                + ("does not exist." if missing else f"could not be downloaded ({code}: {exc}).")
            ) from exc
        written.add(name)
    return len(written)


def run_processing(job: Job) -> dict[str, Any]:
    sandbox = job.sandbox
    root = job.root
    opt = sandbox / "opt" / "ml"
    app = job.get("app_specification") or {}
    inputs = job.get("processing_inputs") or []
    outputs = (job.get("processing_output_config") or {}).get("Outputs") or []
    environment = job.get("environment") or {}
    resources = (job.get("processing_resources") or {}).get("ClusterConfig") or {}
    s3 = client("s3")

    (opt / "output").mkdir(parents=True, exist_ok=True)
    _write_json(
        opt / "config" / "processingjobconfig.json",
        {
            "ProcessingJobArn": job.arn,
            "ProcessingJobName": job.name,
            "AppSpecification": app,
            "Environment": environment,
            "ProcessingInputs": inputs,
            "ProcessingOutputConfig": {"Outputs": outputs},
            "ProcessingResources": {"ClusterConfig": resources},
            "StoppingCondition": job.get("stopping_condition") or {},
        },
    )
    _write_json(
        opt / "config" / "resourceconfig.json",
        {
            "current_host": HOST,
            "current_instance_type": resources.get("InstanceType", "ml.m5.xlarge"),
            "hosts": [HOST],
        },
    )

    for item in inputs:
        job.check_stop()
        s3_input = item.get("S3Input")
        if not s3_input:
            if item.get("DatasetDefinition"):
                raise JobFailure(
                    f"ClientError: input {item.get('InputName')!r}: DatasetDefinition inputs "
                    "are not supported in local mode"
                )
            continue
        if s3_input.get("S3InputMode", "File") != "File":
            raise JobFailure("ClientError: only S3InputMode File is supported in local mode")
        data_type = s3_input.get("S3DataType", "S3Prefix")
        if data_type not in ("S3Prefix", "ManifestFile"):
            raise JobFailure(f"ClientError: input {item.get('InputName')!r}: S3DataType {data_type} is not "
                             "supported in local mode (S3Prefix and ManifestFile are)")
        if s3_input.get("S3CompressionType", "None") not in ("None", None):
            raise JobFailure("ClientError: S3CompressionType Gzip needs Pipe mode (unsupported)")
        target = local_path(s3_input["LocalPath"], sandbox)
        if data_type == "ManifestFile":
            download_manifest(s3, s3_input["S3Uri"], target, f"input {item.get('InputName')!r}")
        else:
            download_prefix(s3, s3_input["S3Uri"], target)

    targets: list[tuple[Path, str]] = []
    for item in outputs:
        s3_output = item.get("S3Output")
        if not s3_output:
            if item.get("FeatureStoreOutput"):
                raise JobFailure("ClientError: FeatureStoreOutput is not supported in local mode")
            continue
        split_s3_uri(s3_output["S3Uri"])
        path = local_path(s3_output["LocalPath"], sandbox)
        path.mkdir(parents=True, exist_ok=True)
        targets.append((path, s3_output["S3Uri"]))

    image = local_image(app.get("ImageUri"))
    entrypoint = list(app.get("ContainerEntrypoint") or []) or list(image.command if image else ())
    if not entrypoint:
        raise JobFailure(
            "ClientError: local mode needs AppSpecification.ContainerEntrypoint "
            "(an image's built-in entrypoint cannot run without its container, and image "
            f"{image_repository(app.get('ImageUri'))!r} has no registered local stand-in)"
        )
    python = job_interpreter(job, None if image else app.get("ImageUri")).python
    cmd = _command(entrypoint + list(app.get("ContainerArguments") or []), root, python)
    env = env_with(
        {
            **{str(k): root.rewrite(str(v)) for k, v in environment.items()},
            "SM_OUTPUT_DIR": root.seen(opt / "output"),
            "PATH": path_with_tools(work_root(), python),
        }
    )
    job.check_stop()
    result = _run(job, cmd, env=env, cwd=sandbox)
    exit_message = _exit_message(job)
    if result.returncode != 0:
        job.set(exit_message=exit_message)
        raise JobFailure(_failure(job, result))
    for path, uri in targets:  # S3UploadMode EndOfJob (Continuous uploads at the end too)
        job.check_stop()
        upload_dir(s3, path, uri)
    if image is not None and image.after_run is not None:
        image.after_run(job)
    return {"exit_message": exit_message}


# --- training -------------------------------------------------------------------------------


def _decode_hp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string that the SDK did not JSON-encode


def _env_value(value: Any) -> str:
    """mapping.to_env_vars: strings as they are, None empty, the rest compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """mapping.to_cmd_args: sorted keys, ``--key value`` (``-k`` for one-letter keys)."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def training_env(
    *,
    opt: Path,
    job_name: str,
    hyperparameters: dict[str, Any],
    program: str | None,
    submit_dir: str | None,
    input_data_config: dict[str, dict[str, Any]],
    resource_config: dict[str, Any],
) -> dict[str, str]:
    """The ``SM_*`` variables of sagemaker-training-toolkit's ``Environment.to_env_vars``."""
    sm_params = {k: v for k, v in hyperparameters.items() if k.startswith("sagemaker_")}
    user_hps = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    channels = sorted(input_data_config)
    channel_dirs = {name: str(opt / "input" / "data" / name) for name in channels}
    module_name = program[:-3] if program and program.endswith(".py") else program
    values: dict[str, Any] = {
        "additional_framework_parameters": {
            k: v for k, v in sm_params.items() if k not in _TOOLKIT_HPS
        },
        "channel_input_dirs": channel_dirs,
        "current_host": HOST,
        "current_instance_group": "homogeneousCluster",
        "current_instance_type": resource_config.get("current_instance_type"),
        "framework_module": None,
        "hosts": [HOST],
        "hyperparameters": user_hps,
        "input_config_dir": str(opt / "input" / "config"),
        "input_data_config": input_data_config,
        "input_dir": str(opt / "input"),
        "is_master": True,
        "job_name": job_name,
        "log_level": int(sm_params.get("sagemaker_container_log_level", 20)),
        "master_hostname": HOST,
        "model_dir": str(opt / "model"),
        "module_dir": submit_dir or str(opt / "code"),
        "module_name": module_name,
        "network_interface_name": "eth0",
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": 0,
        "num_neurons": 0,
        "output_data_dir": str(opt / "output" / "data"),
        "output_dir": str(opt / "output"),
        "output_intermediate_dir": str(opt / "output" / "intermediate"),
        "resource_config": resource_config,
        "user_entry_point": program,
    }
    env_keys = {
        "hosts": values["hosts"],
        "network_interface_name": "eth0",
        "hps": user_hps,
        "user_entry_point": program,
        "framework_params": values["additional_framework_parameters"],
        "resource_config": resource_config,
        "input_data_config": input_data_config,
        "output_data_dir": values["output_data_dir"],
        "channels": channels,
        "current_host": HOST,
        "current_instance_type": values["current_instance_type"],
        "current_instance_group": "homogeneousCluster",
        "module_name": module_name,
        "log_level": values["log_level"],
        "framework_module": None,
        "input_dir": values["input_dir"],
        "input_config_dir": values["input_config_dir"],
        "output_dir": values["output_dir"],
        "num_cpus": values["num_cpus"],
        "num_gpus": 0,
        "num_neurons": 0,
        "model_dir": values["model_dir"],
        "module_dir": values["module_dir"],
        "training_env": values,
        "user_args": to_cmd_args(user_hps),
        "output_intermediate_dir": values["output_intermediate_dir"],
        "is_master": True,
        "master_hostname": HOST,
        "job_name": job_name,
    }
    for name, path in channel_dirs.items():
        env_keys[f"channel_{name}"] = path
    for key, value in user_hps.items():
        env_keys[f"hp_{key}"] = value
    return {f"SM_{key.upper()}": _env_value(value) for key, value in env_keys.items()}


def _channels(job: Job, s3: Any, opt: Path, default_mode: str) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {}
    for channel in job.get("input_data_config") or []:
        job.check_stop()
        name = channel["ChannelName"]
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise JobFailure(f"ClientError: channel {name!r}: only S3DataSource is supported")
        mode = channel.get("InputMode") or default_mode
        if mode not in ("File", "FastFile"):
            raise JobFailure(f"ClientError: channel {name!r}: input mode {mode} is unsupported")
        data_type = source.get("S3DataType", "S3Prefix")
        if data_type == "ManifestFile":
            download_manifest(s3, source["S3Uri"], opt / "input" / "data" / name, f"channel {name!r}")
        elif data_type == "S3Prefix":
            download_prefix(s3, source["S3Uri"], opt / "input" / "data" / name)
        else:
            raise JobFailure(f"ClientError: channel {name!r}: S3DataType {data_type} is not supported in local "
                             "mode (S3Prefix and ManifestFile are)")
        entry = {
            "TrainingInputMode": mode,
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[name] = entry
    return config


DEFAULT_CHECKPOINT_PATH = "/opt/ml/checkpoints"


def _restore_checkpoints(job: Job, s3: Any, sandbox: Path) -> tuple[str, Path] | None:
    """CheckpointConfig: copy S3Uri to LocalPath; (S3Uri, local folder) to copy back later."""
    config = job.get("checkpoint_config") or {}
    uri = config.get("S3Uri")
    if not uri:
        return None
    folder = local_path(config.get("LocalPath") or DEFAULT_CHECKPOINT_PATH, sandbox)
    folder.mkdir(parents=True, exist_ok=True)
    bucket, prefix = split_s3_uri(uri)
    if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        download_prefix(s3, uri, folder)
    return uri, folder


def run_training(job: Job) -> dict[str, Any]:
    sandbox = job.sandbox
    root = job.root
    opt = sandbox / "opt" / "ml"
    code_dir = opt / "code"
    for sub in ("input/config", "input/data", "model", "output/data", "output/intermediate"):
        (opt / sub).mkdir(parents=True, exist_ok=True)
    raw_hps: dict[str, str] = job.get("hyper_parameters") or {}
    algorithm = job.get("algorithm_specification") or {}
    resources = job.get("resource_config") or {}
    output_path = (job.get("output_data_config") or {}).get("S3OutputPath")
    if not output_path:
        raise JobFailure("ClientError: OutputDataConfig.S3OutputPath is required")
    s3 = client("s3")

    hyperparameters = {k: _decode_hp(v) for k, v in raw_hps.items()}
    program = hyperparameters.get("sagemaker_program")
    submit_dir = hyperparameters.get("sagemaker_submit_directory")
    custom = list(algorithm.get("ContainerEntrypoint") or [])
    if not program and not custom:
        raise JobFailure(
            "ClientError: local mode runs script-mode training only: set the hyperparameters "
            "sagemaker_program and sagemaker_submit_directory (or "
            "AlgorithmSpecification.ContainerEntrypoint)"
        )

    input_data_config = _channels(job, s3, opt, algorithm.get("TrainingInputMode", "File"))
    if program:
        job.check_stop()
        if submit_dir:  # s3://..., or a container path such as a channel's /opt/ml/input/data/...
            fetch_code(s3, rewrite(str(submit_dir), sandbox), code_dir, sandbox)
        if not (code_dir / str(program)).is_file():
            raise JobFailure(
                f"ClientError: entry point {program!r} not found in the source directory "
                f"{submit_dir!r}"
            )
    code_dir.mkdir(parents=True, exist_ok=True)

    instance_type = resources.get("InstanceType", "ml.m5.xlarge")
    resource_config = {
        "current_host": HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [HOST],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": instance_type,
                "hosts": [HOST],
            }
        ],
        "network_interface_name": "eth0",
    }
    _write_json(opt / "input" / "config" / "hyperparameters.json", raw_hps)
    _write_json(opt / "input" / "config" / "inputdataconfig.json", input_data_config)
    _write_json(opt / "input" / "config" / "resourceconfig.json", resource_config)

    sm_env = training_env(
        opt=Path(root.seen(opt)),
        job_name=job.name,
        hyperparameters=hyperparameters,
        program=str(program) if program else None,
        submit_dir=root.rewrite(str(submit_dir)) if submit_dir else None,
        input_data_config=input_data_config,
        resource_config=resource_config,
    )
    python = job_interpreter(job, algorithm.get("TrainingImage"), code_dir / "requirements.txt").python
    user_env = {str(k): root.rewrite(str(v)) for k, v in (job.get("environment") or {}).items()}
    pythonpath = os.pathsep.join(p for p in (root.seen(code_dir), os.environ.get("PYTHONPATH")) if p)
    env = env_with(
        {
            **user_env,
            **sm_env,
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": job.arn,
            "PYTHONPATH": pythonpath,
            "PATH": path_with_tools(work_root(), python),
        }
    )
    user_args = json.loads(sm_env["SM_USER_ARGS"])
    if custom:
        cmd = _command(custom + list(algorithm.get("ContainerArguments") or []), root, python)
    elif str(program).endswith(".py"):
        cmd = [python, str(program), *user_args]
    elif str(program).endswith(".sh"):
        cmd = ["/bin/sh", str(program), *user_args]
    else:
        cmd = [str(code_dir / str(program)), *user_args]

    checkpoints = _restore_checkpoints(job, s3, sandbox)
    job.secondary("Training", "Training image download completed. Training in progress.")
    result = _run(job, cmd, env=env, cwd=code_dir)
    if checkpoints:
        upload_dir(s3, checkpoints[1], checkpoints[0])
    if result.returncode != 0:
        shown = ["python" if c == python else c for c in cmd]
        raise JobFailure(_failure(job, result, training_cmd=shown))

    job.secondary("Uploading", "Uploading generated training model")
    model_uri = join_s3(output_path, job.name, "output", "model.tar.gz")
    archive = make_tar_gz(opt / "model", sandbox / "artifacts" / "model.tar.gz")
    bucket, key = split_s3_uri(model_uri)
    s3.upload_file(str(archive), bucket, key)
    if dir_has_files(opt / "output" / "data"):
        data = make_tar_gz(opt / "output" / "data", sandbox / "artifacts" / "output.tar.gz")
        bucket, key = split_s3_uri(join_s3(output_path, job.name, "output", "output.tar.gz"))
        s3.upload_file(str(data), bucket, key)
    return {"model_artifacts": {"S3ModelArtifacts": model_uri}}
