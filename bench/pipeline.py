"""Wall time of the local TrainingPipeline, split into ML compute and orchestration.

Baseline, in the same run: the three ML scripts (preprocess, train, evaluate) run alone,
one after the other, as plain subprocesses on the same data - the compute no orchestration
can remove. The pipeline figure is the time from the upload to the end of the execution;
ML compute is the jobs' own subprocess time, reported by the local job runner.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parents[1]
ML = ROOT / "ml"


def scripts_alone(rows: int, seed: int) -> float:
    """Run preprocess -> train -> evaluate directly, with no AWS at all."""
    from localaws import datagen

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "raw").mkdir()
        datagen.write_csv(t / "raw" / "data.csv", rows, seed=seed)
        env = {**os.environ, "SM_OUTPUT_DIR": str(t / "output"), "SM_MODEL_DIR": str(t / "model"),
               "SM_CHANNEL_TRAIN": str(t / "out" / "train"), "SM_CHANNEL_VALIDATION": str(t / "out" / "validation")}
        started = time.perf_counter()
        subprocess.run([sys.executable, ML / "preprocess.py", "--input-dir", t / "raw", "--config",
                        ML / "models" / "churn.json", "--output-dir", t / "out", "--seed", "42"],
                       check=True, env=env, capture_output=True)
        subprocess.run([sys.executable, ML / "train.py", "--label", "churned", "-C", "1.0", "--max-iter", "500"],
                       check=True, env=env, capture_output=True)
        (t / "modeltar").mkdir()
        with tarfile.open(t / "modeltar" / "model.tar.gz", "w:gz") as tar:
            tar.add(t / "model", arcname=".")
        subprocess.run([sys.executable, ML / "evaluate.py", "--model-dir", t / "modeltar", "--test-dir",
                        t / "out" / "test", "--output-dir", t / "eval", "--label", "churned"],
                       check=True, env=env, capture_output=True)
        return time.perf_counter() - started


def run(quick: bool = False) -> list[Row]:
    from localaws import demo
    from localaws.console import Console

    rows, seed = (1000, 7) if quick else (2000, 7)
    baseline = scripts_alone(rows, seed)
    out = io.StringIO()
    result = demo.run(rows=rows, seed=seed, console=Console(stages=5, out=out), loop=False)
    if result.status != "SUCCEEDED":
        raise RuntimeError(f"pipeline {result.status}: {out.getvalue()[-2000:]}")
    run = result.first
    orchestration = run.seconds - result.ml_seconds
    return [
        Row("local TrainingPipeline wall (start -> registered)", run.seconds, "s",
            "ML scripts alone", baseline, run.seconds / baseline, "seconds, not minutes"),
        Row("  of which ML compute (job subprocesses)", result.ml_seconds, "s",
            "ML scripts alone", baseline, result.ml_seconds / baseline, "-"),
        Row("  of which orchestration", orchestration, "s", "pipeline wall", run.seconds,
            orchestration / run.seconds, "<= 25% of wall"),
        Row("state transitions per run", run.transitions, "", "-", 0, None, "constant in job length"),
        Row("Lambda invocations per run", result.lambda_invocations, "", "-", 0, None, "constant in job length"),
    ]
