"""The example models through the local loop: wall time each.

For each model of ``models/`` with example data (churn, fraud, price), a fresh process runs
``autoloop local demo --model <name>``'s loop the same way for all three (churn without its
drift story): boot the local AWS from template.yaml, publish, upload 2,000 generated rows, the
TrainingPipeline (validate, preprocess, the model's own train.py, evaluate, gate, register),
the DeployPipeline (endpoint, baseline, schedules), one request and the monthly batch transform.

Figure: that process's wall time for the loop, boot included. Baseline, in the same run: the
ML compute inside it (the jobs' own seconds: preprocess, train, evaluate, baseline, batch
preparation and transform, monitoring), so the ratio is what the orchestration, the local AWS
and the boot cost on top of the model's own work. Goal: at most 60 s per model on this
2-core machine (a loop a user waits for at their desk).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench.common import ROOT, Row, progress

GOAL_SECONDS = 60.0
MODELS = ("churn", "fraud", "price")


def child(model: str) -> None:
    """Run the loop in this process and print its figures as one JSON line."""
    from autoloop_cli.console import Console
    from autoloop_cli.demo import lifecycle

    with open(os.devnull, "w") as quiet:
        result = lifecycle.run(model=model, story=False, rows=2000, console=Console(stages=8, out=quiet),
                               tracking=False)
    print(json.dumps({"status": result.status, "wall": result.wall_seconds, "ml": result.ml_seconds,
                      "lambdas": result.lambda_invocations, "runs": [r.name for r in result.runs]}))


def measure(model: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"bench-models-{model}-") as home:
        done = subprocess.run([sys.executable, "-m", "bench.models", "child", model], cwd=ROOT, capture_output=True,
                              text=True, timeout=900, check=False,
                              env={**os.environ, "AUTOLOOP_LOCAL_HOME": home, "PYTHONPATH": f"{ROOT}/src:{ROOT}"})
    if done.returncode != 0:
        raise RuntimeError(f"the {model} loop failed: {done.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(quick: bool = False) -> list[Row]:
    rows = []
    for model in ("price",) if quick else MODELS:
        progress(f"models {model}: the loop in a fresh process")
        figures = measure(model)
        wall, ml = float(figures["wall"]), float(figures["ml"])  # type: ignore[arg-type]
        rows.append(Row(
            name=f"models.{model}",
            measure=f"{model} through the local loop (train, gate, register, deploy, a request, the month's batch): "
                    f"wall time, boot included; {figures['status']}",
            figure=round(wall, 2), unit="s",
            baseline="the ML compute inside it (jobs' own seconds)", baseline_value=round(ml, 2),
            ratio=round(wall / ml, 2) if ml else None,
            goal=f"≤ {GOAL_SECONDS:g} s", met=figures["status"] == "SUCCEEDED" and wall <= GOAL_SECONDS,
            detail={"lambda_invocations": figures["lambdas"], "runs": figures["runs"], "quick": quick},
        ))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.models child MODEL (or python -m bench models)")
