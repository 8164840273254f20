"""Fetch a SageMaker Model into a sandbox, as the platform does before its container starts.

Batch transform (:mod:`localaws.sagemaker.jobs.transform`) and endpoints
(:mod:`localaws.sagemaker.endpoints.fleet`) both load a Model this way, then run
:mod:`localaws.sagemaker.inference.worker` (``WORKER_SCRIPT``) on it: the Model's
``PrimaryContainer`` ``ModelDataUrl`` is extracted to ``opt/ml/model``, and its code comes
from ``model.tar.gz:code/`` or ``SAGEMAKER_SUBMIT_DIRECTORY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from localaws.clients import client
from localaws.sagemaker.sandbox import JobFailure, download_object, extract_tar, fetch_code, rewrite

#: the model-server worker: ``model_fn`` once, then a request loop over stdin/stdout
WORKER_SCRIPT = Path(__file__).with_name("worker.py")


class LoadedModel(NamedTuple):
    env: dict[str, str]
    model_dir: Path
    code_dir: Path
    program: str
    image: str  # the container's Image: what its local runtime is chosen by


def load_model(sandbox: Path, model_name: str, extra_env: Mapping[str, str] | None, s3: Any) -> LoadedModel:
    """Fetch the Model's artifacts and code into ``sandbox``; return its environment, folders,
    program and image. ``extra_env`` (a transform job's ``Environment``) overrides the Model's."""
    opt = sandbox / "opt" / "ml"
    try:
        model = client("sagemaker").describe_model(ModelName=model_name)
    except Exception as exc:
        raise JobFailure(f"ClientError: Could not find model {model_name!r}: {exc}") from exc
    containers = model.get("Containers") or []
    if len(containers) > 1:
        raise JobFailure("ClientError: inference pipelines (several containers) are unsupported")
    container = model.get("PrimaryContainer") or (containers[0] if containers else {})
    env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    env.update({str(k): str(v) for k, v in (extra_env or {}).items()})
    model_dir = opt / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if container.get("ModelDataUrl"):
        archive = download_object(s3, container["ModelDataUrl"], sandbox / "artifacts" / "model.tar.gz")
        extract_tar(archive, model_dir)
        archive.unlink()
    program = env.get("SAGEMAKER_PROGRAM") or "inference.py"
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if (model_dir / "code" / program).is_file():
        code_dir = model_dir / "code"
    elif submit and submit.startswith("s3://"):
        code_dir = opt / "code"
        fetch_code(s3, submit, code_dir, sandbox)
    elif submit and Path(rewrite(submit, sandbox)).is_dir():
        code_dir = Path(rewrite(submit, sandbox))
    else:
        code_dir = model_dir
    if not (code_dir / program).is_file():
        raise JobFailure(
            f"ClientError: inference program {program!r} not found in the model's code/ "
            f"folder or SAGEMAKER_SUBMIT_DIRECTORY ({submit!r})"
        )
    return LoadedModel(env, model_dir, code_dir, program, str(container.get("Image") or ""))
