"""The benchmarks' quick mode runs, prints one table and writes one JSON row per measure.

Benchmarks never fail on speed: nothing here asserts a figure's size, only that the quick
mode runs end to end (argument parsing, each benchmark, the table, the JSON) and reports a
number for each line. The suite runs the benchmarks that take seconds (imports,
drift, monitor, endpoint, validate) here, and transitions in test_transitions.py (the design's claim that a
run's transitions do not grow with job length); loop and transform boot and train for
15-20 s each, so they run with ``make bench-quick`` (every benchmark, quick sizes) and
``make bench``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BENCHMARKS = ("imports", "drift", "monitor", "endpoint", "validate")
# a line per measure of issue 7 that these benchmarks report, by the JSON row names
EXPECTED = {
    "imports.boto3", "imports.start_pipeline",
    "drift.vs_evidently", "drift.vs_floor", "drift.memory", "drift.flagged",
    "monitor.vs_evidently", "monitor.vs_floor", "monitor.memory", "monitor.monthly_minutes", "monitor.merge_rate",
    "monitor.merge_memory",
    "endpoint.rps", "endpoint.p99", "endpoint.errors",
    "validate.churn", "validate.numeric", "validate.max_file",
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    env = {**os.environ, "AUTOLOOP_LOCAL_HOME": str(out.parent / "home")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out), *BENCHMARKS], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=280, check=False)
    return done, (json.loads(out.read_text()) if out.exists() else {})


def test_quick_mode_exits_0_and_prints_one_table(quick):
    done, _ = quick
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "| measure | figure | baseline (same run) | ratio | goal | met? |"
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) >= len(EXPECTED) + 2  # header and rule
    assert all(line.count(" | ") == 5 for line in table), "every line has the six columns"


def test_every_benchmark_ran_and_every_measure_has_a_numeric_figure(quick):
    _, report = quick
    assert report["quick"] is True and report["failed"] == []
    assert set(report["benchmarks"]) == set(BENCHMARKS)
    rows = {row["name"]: row for row in report["rows"]}
    assert len(rows) == len(report["rows"]), "row names are unique"
    assert EXPECTED <= set(rows), sorted(EXPECTED - set(rows))
    for name, row in rows.items():
        assert isinstance(row["figure"], int | float) and math.isfinite(row["figure"]), name
        assert row["met"] in (True, False, None), name
        assert row["goal"] and row["baseline"], name
