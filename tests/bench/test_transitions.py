"""The event-driven design's claim, checked through its benchmark: a run's state transitions do
not grow with the training job's length, while a polling design's do.

``python -m bench --quick transitions`` runs the real TrainingPipeline on the local AWS with
the training job held for two lengths, and simulates the polling baseline; its JSON carries
both. No figure's size is asserted beyond that (speed lives in bench/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_transitions_of_our_design_do_not_grow_with_job_length_and_polling_does(tmp_path) -> None:
    out = tmp_path / "transitions.json"
    env = {**os.environ, "AUTOLOOP_LOCAL_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out), "transitions"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    ours = [rows[f"transitions.{n}"]["figure"] for n in ("10min", "1h", "10h")]
    polling = [rows[f"transitions.{n}"]["baseline_value"] for n in ("10min", "1h", "10h")]
    assert len(set(ours)) == 1 and ours[0] > 0, ours
    assert polling == sorted(polling) and polling[0] < polling[-1], polling
    assert all(rows[f"transitions.{n}"]["met"] is True for n in ("10min", "1h", "10h"))
