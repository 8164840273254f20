"""The SageMaker SDK, v2 and v3, as a user installs it, against ``autoloop local serve``.

Each SDK lives in a venv of its own (``make sdk2``: ``sagemaker`` 2.257, about 300 MB;
``make sdk3``: ``sagemaker`` 3.x, about 1 GB with mlflow and pyarrow; ``make test`` installs
both), so it never meets the project's pins. ``tests/sdk/v2_flow.py`` and ``v3_flow.py`` run
in them as separate processes, configured only by the environment (``AWS_ENDPOINT_URL``, fake
credentials), against one ``serve`` subprocess booted from template.yaml.

- v2, script mode: ``SKLearn(...).fit`` (the SDK uploads the source and names the entry point
  in ``sagemaker_program``), ``deploy``, a ``Predictor``, ``register`` (which searches training
  jobs by ``ModelArtifacts.S3ModelArtifacts``) and ``ModelPackage.update_approval_status``.
- v3: the role check (``iam:SimulatePrincipalPolicy``), ``ModelTrainer.train`` (whose drivers
  hard-code ``/opt/ml`` in ``bash -c`` strings and files), ``ModelBuilder`` build and deploy,
  an endpoint invocation, and a model package approved in the registry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localaws.sagemaker import optml

ROOT = Path(__file__).resolve().parents[2]
SDK2_PYTHON = Path(os.environ.get("AUTOLOOP_SDK2_PYTHON") or ROOT / ".venv" / "sdk2" / "bin" / "python")
SDK3_PYTHON = Path(os.environ.get("AUTOLOOP_SDK3_PYTHON") or ROOT / ".venv" / "sdk3" / "bin" / "python")
BOOT_TIMEOUT = 120.0
FLOW_TIMEOUT = 300.0

pytestmark = pytest.mark.slow


def run_flow(python: Path, flow: str, served: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run ``flow`` with the SDK venv's ``python`` against the served local AWS; what it saw."""
    if not python.exists():
        pytest.skip(f"no SageMaker SDK venv at {python}: run `make {python.parents[1].name}` (make test installs it)")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(AWS_ENDPOINT_URL=served["endpoint_url"], AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               SAGEMAKER_SUPPRESS_V2_WARNING="1")  # fmt: skip
    done = subprocess.run(  # noqa: S603 - the SDK's venv running the flow script
        [str(python), str(Path(__file__).with_name(flow)), str(served["state_file"]), str(work)],
        env=env, capture_output=True, text=True, timeout=FLOW_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    last = done.stdout.strip().splitlines()[-1]
    return dict(json.loads(last[last.index("{"):]))  # the SDK's progress dots may precede it


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``autoloop local serve`` in a subprocess; its server.json once it is ready."""
    home = tmp_path_factory.mktemp("serve-home")
    env = {**os.environ, "AUTOLOOP_LOCAL_HOME": str(home)}
    env.pop("AWS_ENDPOINT_URL", None)
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - the project's own command
        [sys.executable, "-m", "autoloop_cli.cli", "local", "serve", "--port", "0"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    state_file = home / "server.json"
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not state_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"autoloop local serve did not start: {(home / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield {"state_file": state_file, "home": home, **json.loads(state_file.read_text())}
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # its own clean stop (workers, jobs, server.json)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_sdk_v2_script_mode_trains_deploys_predicts_and_registers(served: dict[str, Any], tmp_path: Path) -> None:
    seen = run_flow(SDK2_PYTHON, "v2_flow.py", served, tmp_path)
    outputs = served["outputs"]
    assert seen["sdk"].startswith("2.") and seen["training_status"] == "Completed"
    assert seen["program"] == "train.py"  # script mode: the entry point travels as sagemaker_program
    assert seen["model_artifacts"].startswith(f"s3://{outputs['ArtifactsBucketName']}/")
    assert seen["endpoint_status"] == "InService"
    assert seen["prediction"] == {"predictions": [3.0, 7.5]}  # slope 3 learned from y = 3x
    assert seen["registered_status"] == "PendingManualApproval" and seen["package_status"] == "Approved"
    assert seen["packages"] == [seen["package_arn"]]
    print(f"SDK v2 flow: train {seen['train_seconds']} s, all {seen['seconds']} s")


def test_sdk_v3_trains_deploys_invokes_and_registers(served: dict[str, Any], tmp_path: Path) -> None:
    if not optml.support().available:
        pytest.skip(f"SDK v3's drivers hard-code /opt/ml; no private /opt/ml here: {optml.support().reason}")
    seen = run_flow(SDK3_PYTHON, "v3_flow.py", served, tmp_path)
    outputs = served["outputs"]

    assert seen["validated_role"] == outputs["SageMakerExecutionRoleArn"]  # SimulatePrincipalPolicy answered
    assert seen["training_status"] == "Completed"
    assert seen["model_artifacts"].startswith(f"s3://{outputs['ArtifactsBucketName']}/")
    [job] = [j for j in (served["home"] / "jobs").iterdir() if j.name.startswith("sdk3-train")]
    assert "sm_train.sh" in (job / "logs.txt").read_text()
    assert seen["endpoint_status"] == "InService"
    assert seen["prediction"] == {"predictions": [2.0, 5.0]}  # slope 2 learned from y = 2x
    assert seen["registered_status"] == "PendingManualApproval" and seen["package_status"] == "Approved"
    assert seen["packages"] == [seen["package_arn"]]
    print(f"SDK v3 flow: train {seen['train_seconds']} s, all {seen['seconds']} s")
