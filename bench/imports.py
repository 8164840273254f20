"""Cold import time of each Lambda handler, each in a fresh Python process.

Each sample is a new interpreter that times ``import app`` (from the function's folder, as
Lambda's ``/var/task``) with ``time.perf_counter`` around the import statement alone, so
interpreter start-up is not counted; the figure is the best of N samples (bytecode caches
warm, as on a Lambda sandbox that was built once).

Baseline, in the same run and measured the same way: importing the SageMaker Python SDK's
training and session classes. On SDK v3 (``sagemaker-train``/``sagemaker-core``, what the
``bench`` extra installs) those are ``sagemaker.train.model_trainer.ModelTrainer`` and
``sagemaker.core.helper.session_helper.Session``; on v2, ``sagemaker.estimator.Estimator``
and ``sagemaker.session.Session``. A context line gives ``import boto3`` alone, which every
handler pays. Goal (issue 7): every handler <= 300 ms.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, Row, progress

FUNCTIONS = ROOT / "functions"
GOAL_SECONDS = 0.300
QUICK_SAMPLE = ("start_pipeline", "launch_job", "job_callback")
SDK_V3 = ("from sagemaker.train.model_trainer import ModelTrainer\n"
          "from sagemaker.core.helper.session_helper import Session")
SDK_V3_CORE = "from sagemaker.core.helper.session_helper import Session"
SDK_V2 = "from sagemaker.estimator import Estimator\nfrom sagemaker.session import Session"
_TIMER = "import time\n_t = time.perf_counter()\n{stmt}\nprint(repr(time.perf_counter() - _t))\n"


def import_seconds(statement: str, cwd: Path, repeats: int) -> float:
    """Best-of-``repeats`` seconds of ``statement`` in a fresh interpreter started in ``cwd``."""
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
    samples = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", _TIMER.format(stmt=statement)], capture_output=True, text=True,
                              cwd=cwd, env=env, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{statement!r} failed in {cwd}: {done.stderr[-1000:]}")
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return min(samples)


def sdk_statement() -> tuple[str, str] | None:
    """(statement, label) for the installed SageMaker SDK, or None when it is not installed."""
    if importlib.util.find_spec("sagemaker") is None:
        return None
    if importlib.util.find_spec("sagemaker.train") is not None:
        return SDK_V3, "import SageMaker SDK v3 ModelTrainer + Session"
    if importlib.util.find_spec("sagemaker.core") is not None:  # sagemaker-core alone (publish's image lookup)
        return SDK_V3_CORE, "import SageMaker SDK v3 Session (sagemaker-core only; the bench extra adds ModelTrainer)"
    return SDK_V2, "import SageMaker SDK v2 Estimator + Session"


def handlers() -> list[Path]:
    return sorted(p for p in FUNCTIONS.iterdir() if (p / "app.py").exists())


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    sdk = sdk_statement()
    sdk_seconds = None
    if sdk is not None:
        if not quick:
            import_seconds(sdk[0], ROOT, 1)  # a first import may compile the SDK's bytecode: not a sample
        sdk_seconds = import_seconds(sdk[0], ROOT, repeats)
        progress(f"SageMaker SDK import {sdk_seconds * 1000:.0f} ms")
    sdk_label = sdk[1] if sdk else "SageMaker SDK import"
    note = "" if sdk else "sagemaker not installed (pip install -e '.[bench]')"
    boto3_seconds = import_seconds("import boto3", ROOT, repeats)
    rows = [Row("imports.boto3", "cold import: boto3 alone (context)", boto3_seconds * 1000, "ms", sdk_label,
                None if sdk_seconds is None else sdk_seconds * 1000,
                None if sdk_seconds is None else boto3_seconds / sdk_seconds, "-", None, note)]
    folders = handlers()
    if quick:  # the code path, on a sample: CI's minute cannot afford every handler
        folders = [f for f in folders if f.name in QUICK_SAMPLE] or folders[:3]
    for folder in folders:
        seconds = import_seconds("import app", folder, repeats)
        rows.append(Row(f"imports.{folder.name}", f"cold import: handler {folder.name}", seconds * 1000, "ms",
                        sdk_label, None if sdk_seconds is None else sdk_seconds * 1000,
                        None if sdk_seconds is None else seconds / sdk_seconds, "<= 300 ms",
                        seconds <= GOAL_SECONDS, note or ("quick: 1 sample" if quick else "")))
    worst = max(rows[1:], key=lambda r: r.figure or 0.0)
    progress(f"slowest handler import: {worst.measure} {worst.figure:.0f} ms")
    return rows
