"""ml/autoloop_ml_common.py: the job scripts' shared helpers, kept Python 3.9 and shipped beside them.

Every run path is checked from what ``publish`` ships, in a fresh interpreter that has only the
shipped folder on ``sys.path``: processing jobs (the ``code/ml/`` prefix mounted at
``/opt/ml/processing/input/code``), training (``sourcedir.tar.gz`` extracted to
``/opt/ml/code``) and serving (``model.tar.gz:code/``, which holds ``inference.py`` alone).
"""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from autoloop_cli import datagen, publish
from localaws.sagemaker import runtimes

REPO = Path(__file__).resolve().parents[2]
ML = REPO / "ml"
COMMON = "autoloop_ml_common"
ML_FILES = sorted(p.name for p in ML.glob("*.py"))
CHURN_TRAIN = REPO / "models" / "churn" / "train.py"
#: What runs in SageMaker's framework containers: Autoloop's scripts and every model's own code.
CONTAINER_FILES = sorted([*ML.glob("*.py"), *(REPO / "models").glob("*/**/*.py")])
PROCESSING_SCRIPTS = ("preprocess.py", "evaluate.py", "batch_prepare.py", "calibrate.py")
PY39 = Path.home() / ".pyenv" / "versions" / "3.9.18" / "bin" / "python"


class RecordingS3:
    #: publish resolves the models' images for the region of the bucket's client.
    meta = SimpleNamespace(region_name="us-east-1")

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.objects[Key] = Body


@pytest.fixture(scope="module")
def published() -> dict[str, bytes]:
    s3 = RecordingS3()
    publish.publish(s3, "artifacts")
    return s3.objects


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def isolated(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A run that finds nothing of this repo but what it is given (no PYTHONPATH, no SM_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "PYTHONPATH"}
    return subprocess.run(cmd, cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


# --- Python 3.9 ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONTAINER_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_ml_file_is_python39_grammar(path: Path) -> None:
    name = path.name
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 9))
    # annotations are never evaluated, so `X | Y` in one cannot break 3.9 at run time
    assert "from __future__ import annotations" in source
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "isinstance", "issubclass"
        ):
            assert not isinstance(node.args[1], ast.BinOp), f"{name}:{node.lineno}: X | Y needs 3.10"


@pytest.mark.parametrize("version", ["3.8", "3.9"])  # the XGBoost 1.7-1 and scikit-learn 1.2-1 images' Pythons
def test_every_ml_file_compiles_on_the_images_pythons(tmp_path: Path, version: str) -> None:
    python = runtimes.find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} installed")
    code = ("import py_compile, sys\n"
            "for i, f in enumerate(sys.argv[1:]): py_compile.compile(f, cfile=f'{i}.pyc', doraise=True)")
    done = isolated([python, "-c", code, *map(str, CONTAINER_FILES)], tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not PY39.exists(), reason="no Python 3.9 in ~/.pyenv")
def test_the_shared_helpers_run_on_python39(tmp_path: Path) -> None:
    """batch_prepare.py needs the standard library only, so it runs for real on 3.9."""
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"columns": ["y", "a", "b"], "label": "y", "numeric_features": ["a"],
                                  "batch": {"id_columns": ["id"]}}))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "month.csv").write_text("id,a,b\n1,2.5,x\n2,oops,y\n")
    script = str(ML / "batch_prepare.py")
    ok = isolated([str(PY39), script, "--input-dir", "in", "--config", str(config), "--output-dir", "out"],
                  tmp_path, SM_OUTPUT_DIR=str(tmp_path / "sm"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.endswith("[batch_prepare] 1 files with rows, 0 empty, 1 valid rows, 1 malformed\n")
    assert (tmp_path / "out" / "clean" / "month.csv").read_text() == "1,2.5,x\n"

    bad = isolated([str(PY39), script, "--config", str(tmp_path / "none.json")], tmp_path,
                   SM_OUTPUT_DIR=str(tmp_path / "sm"))
    reason = f"config file not found: {tmp_path / 'none.json'}"
    assert bad.returncode == 1 and bad.stderr == f"FAILED: {reason}\n"
    assert (tmp_path / "sm" / "failure").read_text(encoding="utf-8") == reason


def test_the_shared_module_needs_the_standard_library_only() -> None:
    assert imports(ML / f"{COMMON}.py") <= set(sys.stdlib_module_names) | {"__future__"}


def test_only_the_job_scripts_import_the_shared_module() -> None:
    siblings = {Path(n).stem for n in ML_FILES}
    users = {n for n in ML_FILES if COMMON in imports(ML / n)}
    assert users == {"preprocess.py", "evaluate.py", "batch_prepare.py", "calibrate.py", "monitor.py"}
    assert imports(CHURN_TRAIN) & (siblings | {"train"}) == {COMMON}  # bundled beside it by publish
    for name in ML_FILES:  # calibrate.py reuses monitor.py's distance and null model
        assert imports(ML / name) & siblings <= ({COMMON, "monitor"} if name == "calibrate.py" else {COMMON}), name
    # model.tar.gz:code/ holds inference.py alone (train.py copies just that file)
    assert not imports(ML / "inference.py") & siblings


# --- shipping -------------------------------------------------------------------------------


def test_publish_ships_the_shared_module(published: dict[str, bytes]) -> None:
    bundle = publish.model_folders()["churn"].bundle()
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        names = set(tar.getnames())
    assert names == {f"{COMMON}.py", "inference.py", "train.py"}  # the model's folder and what it uses of ml/
    assert published[f"code/ml/{COMMON}.py"] == (ML / f"{COMMON}.py").read_bytes()
    assert published["code/models/churn/sourcedir.tar.gz"] == bundle == publish.model_folders()["churn"].bundle()
    assert bundle[4:8] == bytes(4)  # the gzip header's mtime is 0: the same files are the same bytes at any time
    assert "code/ml/train.py" not in published and published["config/models/churn.json"]


@pytest.mark.parametrize("script", PROCESSING_SCRIPTS)
def test_a_processing_job_imports_the_shared_module(published: dict[str, bytes], tmp_path: Path,
                                                    script: str) -> None:
    """The job mounts the code/ml/ prefix and runs `python3 <code>/<script>`."""
    code = tmp_path / "opt" / "ml" / "processing" / "input" / "code"
    code.mkdir(parents=True)
    for key, body in published.items():
        if key.startswith("code/ml/"):
            (code / key.removeprefix("code/ml/")).write_bytes(body)
    done = isolated([sys.executable, str(code / script), "--no-such-option"], tmp_path,
                    SM_OUTPUT_DIR=str(tmp_path / "output"))
    reason = "invalid arguments: unrecognized arguments: --no-such-option"
    assert done.returncode == 1 and done.stderr == f"FAILED: {reason}\n", done.stderr
    assert (tmp_path / "output" / "failure").read_text(encoding="utf-8") == reason


def test_training_and_serving_run_from_what_is_shipped(published: dict[str, bytes], tmp_path: Path) -> None:
    """Training: sourcedir.tar.gz extracted to /opt/ml/code, `python train.py` run there. Serving
    (endpoint and transform workers): model.tar.gz's code/ first on sys.path, inference.py imported."""
    opt = tmp_path / "opt" / "ml"
    code = opt / "code"
    code.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(published["code/models/churn/sourcedir.tar.gz"])) as tar:
        tar.extractall(code, filter="data")
    (opt / "input" / "data" / "train").mkdir(parents=True)
    datagen.write_csv(opt / "input" / "data" / "train" / "train.csv", 400, seed=5)
    env = {"SM_CHANNEL_TRAIN": str(opt / "input" / "data" / "train"), "SM_MODEL_DIR": str(opt / "model"),
           "SM_OUTPUT_DIR": str(opt / "output")}
    bad = isolated([sys.executable, "train.py", "-C", "0"], code, **env)
    assert bad.returncode == 1 and (opt / "output" / "failure").read_text() == "--C must be > 0, got 0.0"

    trained = isolated([sys.executable, "train.py", "--max-iter", "100"], code, **env)
    assert trained.returncode == 0, trained.stderr
    assert "[train] copied inference.py to" in trained.stdout
    model_code = opt / "model" / "code"
    assert sorted(p.name for p in model_code.iterdir()) == ["inference.py"]

    serve = ("import sys; sys.path.insert(0, sys.argv[1]); import inference; m = inference.model_fn(sys.argv[2]); "
             "print(inference.output_fn(inference.predict_fn(inference.input_fn(sys.argv[3], 'text/csv'), m), "
             "'text/csv'))")
    row = datagen.generate(1, seed=9)[list(datagen.COLUMNS[1:])].to_csv(index=False, header=False)
    served = isolated([sys.executable, "-I", "-c", serve, str(model_code), str(opt / "model"), row], tmp_path)
    assert served.returncode == 0, served.stderr
    assert 0.0 < float(served.stdout) < 1.0
