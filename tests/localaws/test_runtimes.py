"""Which Python a local job runs on (localaws.sagemaker.runtimes), without building a runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autoloop_cli import check
from localaws.sagemaker import runtimes

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "runtimes"
    monkeypatch.setenv(runtimes.CACHE_VAR, str(cache))
    return cache


@pytest.mark.parametrize(("uri", "expected"), [
    (SKLEARN, "sagemaker-scikit-learn:1.2-1"),
    ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.2-1", "sagemaker-scikit-learn:1.2-1"),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "sagemaker-xgboost:1.7-1"),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-10-cpu-py3", None),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3", None),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-team/churn:1.2-1", None),
    (None, None),
])
def test_an_image_uri_maps_to_its_runtime_or_none(uri: str | None, expected: str | None) -> None:
    runtime = runtimes.image_runtime(uri)
    assert (runtime.image if runtime else None) == expected


def test_the_images_publish_resolves_for_the_example_models_have_runtimes() -> None:
    """The URIs come from the SageMaker SDK's lookup (as `autoloop publish` does), not from this test."""
    found = {(model, runtimes.image_runtime(image).image if runtimes.image_runtime(image) else None)
             for model, image, _ in check.runtime_needs("eu-west-1")}
    assert ("fraud", "sagemaker-xgboost:1.7-1") in found
    assert ("price", "sagemaker-scikit-learn:1.2-1") in found
    assert ("churn", "sagemaker-scikit-learn:1.2-1") in found
    assert all(runtime is not None for _, runtime in found), found


def test_project_mode_runs_on_this_python_and_says_how_it_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtimes.MODE_VAR, "project")
    chosen = runtimes.interpreter(SKLEARN)
    assert chosen.python == sys.executable and chosen.runtime is None
    assert chosen.line.startswith(runtimes.PREFIX + "the project's venv (Python 3.")
    assert "NOT sagemaker-scikit-learn:1.2-1's Python 3.9 with scikit-learn==1.2.1" in chosen.line
    assert chosen.line.endswith("AUTOLOOP_LOCAL_RUNTIME=project")


def test_auto_mode_uses_the_project_venv_until_the_runtime_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtimes.MODE_VAR, "auto")
    chosen = runtimes.interpreter(SKLEARN)
    assert chosen.python == sys.executable
    assert "its local runtime is not built; `autoloop local runtimes --build`" in chosen.line


def test_an_image_without_a_runtime_runs_on_the_project_venv_even_in_image_mode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtimes.MODE_VAR, "image")
    chosen = runtimes.interpreter("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-team/churn:1")
    assert chosen.python == sys.executable
    assert "no local runtime exists for this image (listed: sagemaker-scikit-learn:1.2-1" in chosen.line


def test_an_unknown_mode_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtimes.MODE_VAR, "docker")
    with pytest.raises(runtimes.RuntimeUnavailable, match=r"AUTOLOOP_LOCAL_RUNTIME='docker' is not one of auto, "):
        runtimes.interpreter(SKLEARN)


def test_a_python_that_is_not_installed_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtimes.ImageRuntime("sagemaker-test", "1-1", "2.9", ("six",))
    with pytest.raises(runtimes.RuntimeUnavailable, match=r"runs Python 2.9, which is not installed here: install it "
                                                          r"\(`pyenv install 2.9`\) or set AUTOLOOP_LOCAL_RUNTIME="):
        runtimes.build(runtime, progress=lambda _: None)


def test_a_failed_build_names_the_step_and_log_and_leaves_nothing_half_built(empty_cache: Path) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    runtime = runtimes.ImageRuntime("sagemaker-test", "1-1", version, ("./no-such-wheel-1.0-py3-none-any.whl",))
    said: list[str] = []
    with pytest.raises(runtimes.RuntimeUnavailable) as raised:
        runtimes.build(runtime, progress=said.append)
    message = str(raised.value)
    assert message.startswith("could not build the local runtime of sagemaker-test:1-1 (")
    assert "no-such-wheel" in message and "--runtime project (AUTOLOOP_LOCAL_RUNTIME=project)" in message
    assert message.endswith("runs on the project's venv instead")
    assert raised.value.log is not None and "no-such-wheel" in raised.value.log.read_text()
    assert runtimes.built(runtime) is None
    assert [p.name for p in empty_cache.iterdir() if p.is_dir()] == []
    assert said and said[0].startswith("building the local runtime of sagemaker-test:1-1")


def test_job_logs_give_their_runtime_lines() -> None:
    log = f"{runtimes.PREFIX}the project's venv (Python 3.12.1)\n$ python train.py\n[train] done\n"
    assert runtimes.lines(log) == ["the project's venv (Python 3.12.1)"]
