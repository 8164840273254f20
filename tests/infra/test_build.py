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
    # boto3 and botocore ship as the pinned pair (src/requirements.txt), not a lone botocore.
    pins = layer_pins()
    assert version_in(layer, "botocore") == pins["botocore"]
    assert version_in(layer, "boto3") == pins["boto3"]


def layer_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "src" / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins


def version_in(site: Path, dist: str) -> str | None:
    found = sorted(site.glob(f"{dist}-*.dist-info"))
    return found[0].name[len(dist) + 1 : -len(".dist-info")] if found else None


def test_the_layer_pins_boto3_and_botocore_together_as_the_tests_run_them():
    """aws-xray-sdk (Powertools' tracer) depends on botocore: unpinned, the layer would ship the
    newest botocore over the runtime's boto3. Both are pinned, as a pair boto3 accepts, to the
    versions installed here, and pyproject.toml says the same."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement

    pins = layer_pins()
    assert {"boto3", "botocore"} <= pins.keys(), f"src/requirements.txt pins {sorted(pins)}"
    assert pins["boto3"] == version("boto3") and pins["botocore"] == version("botocore"), pins
    wanted = next(Requirement(r) for r in requires("boto3") or [] if Requirement(r).name == "botocore"
                  and not Requirement(r).marker)
    assert pins["botocore"] in wanted.specifier, f"boto3 {pins['boto3']} needs botocore {wanted.specifier}"
    project = (ROOT / "pyproject.toml").read_text()
    for name, pinned in pins.items():
        if name in {"boto3", "botocore"}:
            assert f'"{name}=={pinned}"' in project, f"pyproject.toml must pin {name}=={pinned} as the layer does"
