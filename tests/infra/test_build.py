"""`sam build` works without Docker: the template, the layer and every function build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.template_utils import ROOT, TEMPLATE, resources


@pytest.mark.slow
def test_sam_build_builds_every_function_and_the_layer(tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [str(bin_dir / "sam"), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for name in resources("AWS::Serverless::Function"):
        assert (build_dir / name / "app.py").exists(), name
    layer = build_dir / "DomainLayer" / "python"
    assert (layer / "autoloop" / "training_steps.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert not list(layer.glob("localaws*")), "the local AWS must not ship to Lambda"
