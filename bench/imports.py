"""Cold import time of each Lambda handler, in a fresh process (`python -X importtime`).

Baseline, in the same run: importing boto3 alone (every handler needs it). The goal from
the issues: every handler imports in at most 300 ms.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S.*)$")


def import_seconds(module: str, cwd: Path, repeats: int = 3) -> float:
    """Best-of-N cumulative import time of ``module`` (microsecond counts from -X importtime)."""
    best = []
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True, text=True, cwd=cwd, env=env, check=True,
        )
        for line in result.stderr.splitlines():
            match = _LINE.match(line)
            if match and match.group(3).strip() == module:
                best.append(int(match.group(2)) / 1e6)
    return min(best)


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 3
    baseline = import_seconds("boto3", ROOT, repeats)
    rows = []
    for folder in sorted(p for p in FUNCTIONS.iterdir() if (p / "app.py").exists()):
        seconds = import_seconds("app", folder, repeats)
        rows.append(Row(f"cold import: {folder.name}", seconds, "s", "import boto3", baseline,
                        seconds / baseline, "<= 0.300 s"))
    print(f"  median handler import {statistics.median(r.value for r in rows):.3f} s", file=sys.stderr)
    return rows
