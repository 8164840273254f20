"""``autoloop check <model>``: seconds from the command to a verdict, for each example model.

Figure: the wall time of ``python -m autoloop_cli.cli check <model>`` in a fresh process, on
the model's own ``sample.csv`` (what a user waits for: interpreter start, imports, the
in-process local AWS, the four jobs and the verdict).

Baseline, in the same run on the same sample: the same four scripts run bare, back to back,
each in a fresh process on local folders, with no local AWS, no S3 and no job sandboxes:
``ml/preprocess.py``, the model's ``train.py`` (from its unpacked bundle, with the
hyperparameters the training job passes), ``ml/evaluate.py`` on a ``model.tar.gz`` of the
model folder, and ``inference.py``'s handlers on five rows. The ratio is what the check's
container contract costs on top of the scripts themselves.

Goal: a verdict in at most 20 s per model on this 2-core machine (issue 13: "in seconds").

Second figure per model: the same check with every job on the venv built like its image
(``--runtime image``: Python 3.9 with scikit-learn 1.2.1, or Python 3.8 with xgboost 1.7.4),
against the check on the project's venv (``--runtime project``) in the same run. The runtimes
are built before the timing (needs the package registry the first time); a build this run
made is reported with its seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Row, progress

GOAL_SECONDS = 20.0
SERVE = """
import sys
sys.path.insert(0, sys.argv[1] + "/code")
import inference
model = inference.model_fn(sys.argv[1])
rows = open(sys.argv[2]).read()
out = inference.output_fn(inference.predict_fn(inference.input_fn(rows, "text/csv"), model), "text/csv")
assert len(out.strip().splitlines()) == rows.strip().count("\\n") + 1, out
"""


def _run(cmd: list[str], **kwargs: object) -> None:
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {done.returncode}: {done.stderr.strip()[-400:]}")


def check_seconds(model: str, home: Path, runtime: str = "project") -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "AUTOLOOP_LOCAL_HOME": str(home)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autoloop_cli.cli", "check", model, "--runtime", runtime],
                          check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode == 2:
        raise RuntimeError(f"autoloop check {model} failed: {done.stderr.strip()}")
    return seconds, done.returncode


def bare_seconds(model: str, work: Path) -> float:
    """The four scripts alone, on the model's sample, as plain subprocesses."""
    from autoloop_cli import publish

    folder = publish.model_folders()[model]
    config = folder.config
    raw, out, code = work / "raw", work / "pre", work / "code"
    raw.mkdir(parents=True)
    (raw / "sample.csv").write_bytes((folder.path / publish.SAMPLE_FILE).read_bytes())
    (work / "config.json").write_bytes(folder.raw_config)
    folder.unpack(code)
    model_dir, output = work / "model", work / "output"
    model_dir.mkdir()
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(output),
           "SM_CHANNEL_TRAIN": str(out / "train"), "SM_CHANNEL_VALIDATION": str(out / "validation"),
           "PYTHONPATH": str(code)}
    hps = [arg for key, value in {**config.hyperparameters, "label": config.label, "task": config.task}.items()
           for arg in ((f"--{key}" if len(key) > 1 else f"-{key}"), json.dumps(value).strip('"'))]
    began = time.perf_counter()
    ml_env = {**env, "PYTHONPATH": str(ROOT / "ml")}
    _run([sys.executable, str(ROOT / "ml" / "preprocess.py"), "--input-dir", str(raw), "--config",
          str(work / "config.json"), "--output-dir", str(out), "--seed", "42"], env=ml_env)
    _run([sys.executable, "train.py", *hps], cwd=code, env=env)
    artifacts = work / "artifacts"
    artifacts.mkdir()
    with tarfile.open(artifacts / "model.tar.gz", "w:gz") as tar:
        for path in model_dir.rglob("*"):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    _run([sys.executable, str(ROOT / "ml" / "evaluate.py"), "--model-dir", str(artifacts), "--test-dir",
          str(out / "test"), "--output-dir", str(work / "evaluation"), "--label", config.label, "--task", config.task,
          "--metric", config.metric], env=ml_env)
    rows = (out / "test" / "test.csv").read_text().splitlines()[1:6]
    (work / "rows.csv").write_text("\n".join(r.split(",", 1)[1] for r in rows) + "\n")
    _run([sys.executable, "-c", SERVE, str(model_dir), str(work / "rows.csv")], env=env)
    return time.perf_counter() - began


def build_runtimes(models: tuple[str, ...]) -> dict[str, float]:
    """Build the runtimes the models' jobs use that are not built yet: {image: seconds}."""
    from autoloop_cli import check
    from localaws.sagemaker import runtimes

    built: dict[str, float] = {}
    for model, image, requirements in check.runtime_needs("us-east-1"):
        runtime = runtimes.image_runtime(image)
        if model in models and runtime and not runtimes.built(runtime, requirements):
            began = time.perf_counter()
            runtimes.build(runtime, requirements, progress=progress)
            built[runtime.image] = round(time.perf_counter() - began, 1)
    return built


def run(quick: bool = False) -> list[Row]:
    from autoloop_cli import check

    models = ("churn",) if quick else tuple(check.EXAMPLE_SAMPLES)
    built = build_runtimes(models)
    rows: list[Row] = []
    for model in models:
        with tempfile.TemporaryDirectory(prefix=f"bench-check-{model}-") as tmp:
            progress(f"check {model}: autoloop check on the project's venv, on the image's runtime, then the bare "
                     "scripts")
            seconds, code = check_seconds(model, Path(tmp) / "home")
            on_image, image_code = check_seconds(model, Path(tmp) / "home-image", "image")
            bare = bare_seconds(model, Path(tmp) / "bare")
        verdict = "passes" if code == 0 else "below its threshold on the sample"
        rows.append(Row(
            name=f"check.{model}",
            measure=f"`autoloop check {model}` to a verdict, fresh process, its sample.csv ({verdict})",
            figure=round(seconds, 2), unit="s",
            baseline="the same 4 scripts run bare, back to back", baseline_value=round(bare, 2),
            ratio=round(seconds / bare, 3) if bare else None,
            goal=f"≤ {GOAL_SECONDS:g} s", met=seconds <= GOAL_SECONDS,
            detail={"exit_code": code, "quick": quick},
        ))
        rows.append(Row(
            name=f"check.{model}.image",
            measure=f"`autoloop check {model} --runtime image`: jobs on the venv like the image "
                    f"({'passes' if image_code == 0 else 'below its threshold on the sample'})",
            figure=round(on_image, 2), unit="s",
            baseline="`--runtime project`, same run", baseline_value=round(seconds, 2),
            ratio=round(on_image / seconds, 3) if seconds else None,
            goal=f"≤ {GOAL_SECONDS:g} s", met=on_image <= GOAL_SECONDS,
            detail={"exit_code": image_code, "runtimes_built_this_run_s": built},
        ))
    return rows
