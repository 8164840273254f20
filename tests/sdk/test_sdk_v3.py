"""The SageMaker SDK v3, as a user installs it, against ``autoloop local serve``.

The SDK (``sagemaker`` 3.x, about 1 GB with mlflow and pyarrow) lives in a venv of its own,
``.venv/sdk3`` (``make sdk3``; ``make test`` installs it), so it never meets the project's
pins. ``tests/sdk/v3_flow.py`` runs in it as a separate process, configured only by the
environment (``AWS_ENDPOINT_URL``, fake credentials), against a ``serve`` subprocess booted
from template.yaml: the role check (``iam:SimulatePrincipalPolicy``), ``ModelTrainer.train``
(whose drivers hard-code ``/opt/ml`` in ``bash -c`` strings and files), ``ModelBuilder``
build and deploy, an endpoint invocation, and a model package approved in the registry.
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
SDK3_PYTHON = Path(os.environ.get("AUTOLOOP_SDK3_PYTHON") or ROOT / ".venv" / "sdk3" / "bin" / "python")
FLOW = Path(__file__).with_name("v3_flow.py")
BOOT_TIMEOUT = 120.0
FLOW_TIMEOUT = 300.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SDK3_PYTHON.exists(),
                       reason=f"no SageMaker SDK v3 venv at {SDK3_PYTHON}: run `make sdk3` (make test installs it)"),
    pytest.mark.skipif(not optml.support().available,
                       reason=f"SDK v3's drivers hard-code /opt/ml; no private /opt/ml: {optml.support().reason}"),
]  # fmt: skip


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


def test_sdk_v3_trains_deploys_invokes_and_registers(served: dict[str, Any], tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(AWS_ENDPOINT_URL=served["endpoint_url"], AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")  # fmt: skip
    done = subprocess.run(  # noqa: S603 - the SDK's venv running the flow script
        [str(SDK3_PYTHON), str(FLOW), str(served["state_file"]), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=FLOW_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    outputs = served["outputs"]

    assert seen["validated_role"] == outputs["SageMakerExecutionRoleArn"]  # SimulatePrincipalPolicy answered
    assert seen["training_status"] == "Completed"
    assert seen["model_artifacts"].startswith(f"s3://{outputs['ArtifactsBucketName']}/")
    jobs = list((served["home"] / "jobs").iterdir())
    assert len(jobs) == 1 and "sm_train.sh" in (jobs[0] / "logs.txt").read_text()
    assert seen["endpoint_status"] == "InService"
    assert seen["prediction"] == {"predictions": [2.0, 5.0]}  # slope 2 learned from y = 2x
    assert seen["registered_status"] == "PendingManualApproval" and seen["package_status"] == "Approved"
    assert seen["packages"] == [seen["package_arn"]]
    print(f"SDK v3 flow: train {seen['train_seconds']} s, all {seen['seconds']} s")
