"""A local job runs on a venv built like its image: Python 3.9 with scikit-learn 1.2.1 and pandas
1.1.3 for ``sagemaker-scikit-learn:1.2-1``, not the project's venv (localaws.sagemaker.runtimes).

The runtimes are built for real, once, into the user's cache (``~/.cache/autoloop/runtimes``),
from the package registry; later runs reuse them. Python 3.9 must be installed (pyenv's is found).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from autoloop_cli import check, publish
from localaws.sagemaker import runtimes

MODELS = Path(__file__).resolve().parents[2] / "models"
SKLEARN = runtimes.image_runtime(check.IMAGE)

pytestmark = pytest.mark.skipif(runtimes.find_python("3.9") is None,
                                reason="the scikit-learn 1.2-1 image runs Python 3.9, which is not installed here")


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of models/price as the only model; jobs on the image's runtime; homes in tmp_path."""
    root = tmp_path / "models"
    shutil.copytree(MODELS / "price", root / "price", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(publish, "MODELS_DIR", root)
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(runtimes.MODE_VAR, "image")
    return root


def run(models: Path) -> tuple[check.CheckResult, list[str]]:
    said: list[str] = []
    result = check.run_check("price", models_dir=models, say=said.append)
    return result, said


def job_logs(tmp_path: Path) -> dict[str, str]:
    return {path.parent.name.rsplit("-", 1)[-1]: path.read_text()
            for path in (tmp_path / "home" / "check" / "price" / "jobs").glob("*/logs.txt")}


def test_every_job_of_a_check_runs_on_the_images_python_and_packages(models: Path, tmp_path: Path) -> None:
    result, said = run(models)
    assert result.verdict.passed, said
    ran_on = [line.removeprefix("  ran on     ") for line in said if line.startswith("  ran on ")]
    assert len(ran_on) == 1, said
    assert ran_on[0].startswith("sagemaker-scikit-learn:1.2-1's local runtime (Python 3.9."), ran_on
    assert "scikit-learn 1.2.1, pandas 1.1.3, numpy 1.24.1" in ran_on[0]
    logs = job_logs(tmp_path)
    assert set(logs) == {"preprocess", "train", "evaluate", "transform"}
    for log in logs.values():
        assert runtimes.lines(log) == ran_on
    # the scripts say what they imported: the runtime's scikit-learn, not the project's 1.9
    assert "scikit-learn 1.2.1" in logs["train"] and "scikit-learn 1.2.1" in logs["evaluate"]


def test_a_script_that_needs_a_newer_scikit_learn_fails_on_the_runtime_and_passes_on_the_project_venv(
        models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = models / "price" / "train.py"
    text = train.read_text()
    train.write_text(text.replace("import sklearn\n", "import sklearn\n"
                                  "from sklearn.metrics import root_mean_squared_error  # scikit-learn 1.4+\n", 1))
    line = text[: text.index("import sklearn\n")].count("\n") + 2
    with pytest.raises(check.CheckFailed) as failed:
        run(models)
    message = failed.value.message
    assert message.startswith(f"train failed: train.py line {line}: ImportError: cannot import name "
                              "'root_mean_squared_error' from 'sklearn.metrics'"), message
    monkeypatch.setenv(runtimes.MODE_VAR, "project")
    result, said = run(models)
    assert result.verdict.passed, said
    assert any(line.startswith("  ran on     the project's venv") for line in said), said


def _wheel(folder: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel of one module, as a team vendors a dependency."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: autoloop-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},{len(body)}\n"
        for path, body in files.items()) + f"{dist}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, body in files.items():
            archive.writestr(member, body)
        archive.writestr(f"{dist}/RECORD", record)
    return path


def test_a_models_requirements_are_installed_into_a_runtime_of_their_own(models: Path, tmp_path: Path) -> None:
    folder = models / "price"
    _wheel(folder / "wheels", "autoloop_probe", "1.0", "WHO = 'the vendored probe 1.0'\n")
    (folder / "requirements.txt").write_text("--no-index\n--find-links wheels\nautoloop-probe==1.0\n")
    train = folder / "train.py"
    train.write_text(train.read_text().replace(
        "    pipeline.fit(train[features], y)\n",
        "    pipeline.fit(train[features], y)\n    import autoloop_probe\n    log(autoloop_probe.WHO)\n", 1))
    result, said = run(models)
    assert result.verdict.passed, said
    assert "the vendored probe 1.0" in job_logs(tmp_path)["train"]
    train_line = runtimes.lines(job_logs(tmp_path)["train"])[0]
    assert "and the job's requirements.txt" in train_line
    assert SKLEARN is not None
    with_requirements = runtimes.built(SKLEARN, folder / "requirements.txt")
    assert with_requirements is not None and with_requirements != runtimes.built(SKLEARN)
    assert str(with_requirements) in train_line
