"""ml/calibrate.py: per-feature drift thresholds from the baseline's own sampling noise.

The scripts run as SageMaker runs them (subprocesses, paths in a temp dir): ``ml/monitor.py`` in
its environment-variable mode (the Model Monitor analyzer's stand-in) makes the baseline and
judges capture windows, calibrate.py makes the thresholds with monitor.py's distance and null
model. Data from ``autoloop_cli.datagen`` (the churn features, label dropped).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from autoloop_cli import datagen

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ml" / "calibrate.py"
ANALYZER = REPO / "ml" / "monitor.py"
FEATURES = list(datagen.COLUMNS[1:])
SHIFTED = {"monthly_charges", "data_usage_gb", "tenure_months", "contract"}  # datagen's strong shifts
DRIFT = re.compile(r"distance: (.+) exceeds threshold: (.+)")
CAPTURE_FORMAT = json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}})


def load_calibrate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibrate_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPT.parent))  # as when run: its folder first (autoloop_ml_common)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


calibrate = load_calibrate()
monitor = sys.modules["monitor"]  # what calibrate.py imported: ml/monitor.py


def run(cmd: list[str], env: dict[str, str], output_dir: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    base.update(env)
    base["SM_OUTPUT_DIR"] = str(output_dir)
    return subprocess.run(cmd, capture_output=True, text=True, env=base, timeout=120, check=False)


def features(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    return datagen.generate(rows, seed=seed, drift=drift)[FEATURES]


def run_calibrate(
    tmp: Path, baseline_dir: Path, constraints: Path, *args: object
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp / "calibrated"
    shutil.rmtree(out, ignore_errors=True)
    done = run(
        [
            sys.executable,
            str(SCRIPT),
            "--baseline-dir",
            str(baseline_dir),
            "--constraints",
            str(constraints),
            "--output-dir",
            str(out),
            *map(str, args),
        ],  # fmt: skip
        {},
        tmp / "sm-output",
    )
    return done, out


def judge(tmp: Path, name: str, frame: pd.DataFrame, constraints: Path, statistics: Path) -> dict[str, Any]:
    """Run the analyzer on ``frame`` written as one capture file; violations and drifts."""
    source = tmp / name / "capture" / "ep" / "AllTraffic" / "2024" / "05" / "01" / "02"
    source.mkdir(parents=True, exist_ok=True)
    rows = frame.to_csv(header=False, index=False, lineterminator="\n").splitlines()
    records = (
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "mode": "INPUT",
                        "data": r + "\n",
                        "encoding": "CSV",
                    }
                },
                "eventMetadata": {"eventId": str(i)},
                "eventVersion": "0",
            },  # fmt: skip
            separators=(",", ":"),
        )
        for i, r in enumerate(rows)
    )
    (source / "00-00-000-x.jsonl").write_text("\n".join(records) + "\n")
    out = tmp / name / "out"
    done = run(
        [sys.executable, str(ANALYZER)],
        {
            "dataset_format": CAPTURE_FORMAT,
            "dataset_source": str(tmp / name / "capture"),
            "output_path": str(out),
            "baseline_constraints": str(constraints),
            "baseline_statistics": str(statistics),
        },
        tmp / name / "sm-output",
    )
    assert done.returncode == 0, done.stderr
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    drift = {
        v["feature_name"]: tuple(float(x) for x in DRIFT.search(v["description"]).groups())  # type: ignore[union-attr]
        for v in violations
        if v["constraint_check_type"] == "baseline_drift_check"
    }
    return {"violations": violations, "drift": drift, "log": done.stdout}


def make_baseline(tmp: Path, frame: pd.DataFrame) -> SimpleNamespace:
    data = tmp / "baseline"
    data.mkdir(parents=True, exist_ok=True)
    frame.to_csv(data / "baseline.csv", index=False)
    out = tmp / "baseline-out"
    done = run(
        [sys.executable, str(ANALYZER)],
        {"dataset_format": json.dumps({"csv": {"header": True}}), "dataset_source": str(data), "output_path": str(out)},
        tmp / "baseline-sm",
    )
    assert done.returncode == 0, done.stderr
    return SimpleNamespace(data=data, constraints=out / "constraints.json", statistics=out / "statistics.json")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 5000-row baseline and its constraints calibrated for 500-row windows."""
    tmp = tmp_path_factory.mktemp("calibrate")
    ns = make_baseline(tmp, features(5000, seed=1))
    done, out = run_calibrate(tmp, ns.data, ns.constraints, "--sample-size", 500, "--seed", 3)
    assert done.returncode == 0, done.stderr
    ns.tmp = tmp
    ns.calibrated = out / "constraints.json"
    ns.report = json.loads((out / "calibration.json").read_text())
    return ns


# --- the distance is the analyzer's ---------------------------------------------------------


def exact_ks(a: np.ndarray, b: np.ndarray) -> float:
    points = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), points, side="right") / a.size
    fb = np.searchsorted(np.sort(b), points, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def test_distance_is_the_analyzers() -> None:
    assert calibrate.null_distances is monitor.null_distances and Path(monitor.__file__) == ANALYZER
    rng = np.random.default_rng(0)
    for n, m in ((300, 500), (2048, 1000), (50_000, 7_000)):
        a = np.sort(rng.normal(size=n))
        b = np.sort(rng.normal(0.2, 1.3, size=m))
        ours = monitor.window_linf(monitor.sketch_cdf([monitor.sketch_points(a)]), b)
        if max(n, m) <= 2048:
            assert ours == pytest.approx(exact_ks(a, b), abs=1e-12)  # small samples: exact KS
        else:
            assert abs(ours - exact_ks(a, b)) < 2.0 / 2048  # sketch resolution
    ints = np.sort(rng.poisson(1.4, 800).astype(float))
    ints2 = np.sort(rng.poisson(1.8, 900).astype(float))
    assert monitor.window_linf(monitor.sketch_cdf([ints]), ints2) == pytest.approx(exact_ks(ints, ints2))
    ca, cb = {"x": 5, "y": 5}, {"x": 2, "y": 6, "z": 2}
    assert monitor.categorical_linf(ca, cb) == pytest.approx(0.3)
    assert monitor.robust(0.3, 100, 400) == pytest.approx(0.3 - 1.8 * math.sqrt(500 / 40_000))
    assert monitor.robust(0.05, 100, 100) == 0.0
    # a multi-level KLL sketch (as AWS writes): level-1 items weigh twice
    items, cum = monitor.sketch_cdf([[1.0, 3.0], [2.0]])
    assert items.tolist() == [1.0, 2.0, 3.0] and cum.tolist() == [0.25, 0.75, 1.0]


def test_calibrate_is_python39_compatible() -> None:
    source = SCRIPT.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 9))
    imported = set()
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match)
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {
        "__future__",
        "autoloop_ml_common",
        "monitor",
        "copy",
        "json",
        "os",
        "pathlib",
        "numpy",
    }
    # compiled on a real Python 3.9: test_common.py


# --- outputs ---------------------------------------------------------------------------------


def test_writes_overrides_and_report(base: SimpleNamespace) -> None:
    original = json.loads(base.constraints.read_text())
    calibrated = json.loads(base.calibrated.read_text())
    # the thresholds are for linf_simple (Robust would subtract the noise a second time)
    expected = json.loads(json.dumps(original["monitoring_config"]))
    expected["distribution_constraints"]["comparison_method"] = "Simple"
    assert calibrated["monitoring_config"] == expected
    report = base.report
    assert (report["method"], report["replaced_method"], report["sample_size"], report["quantile"], report["margin"],
            report["floor"]) == ("simple", "robust", 500, 0.99, 1.2, 0.02)
    by_name = {f["name"]: f for f in calibrated["features"]}
    assert list(by_name) == FEATURES
    for name, feature in by_name.items():
        entry = report["features"][name]
        threshold = feature["monitoringConfigOverrides"]["comparison_threshold"]
        assert threshold == entry["threshold"]
        assert threshold == pytest.approx(max(0.02, 1.2 * entry["null_quantile"]), abs=1e-6)
        assert entry["default"] == 0.1 and entry["baseline_count"] > 4900
        assert {k: v for k, v in feature.items() if k != "monitoringConfigOverrides"} == {
            k: v
            for k, v in next(f for f in original["features"] if f["name"] == name).items()
            if k != "monitoringConfigOverrides"
        }
    assert report["features"]["contract"]["kind"] == "categorical"
    assert report["features"]["age"]["kind"] == "numeric"


def test_thresholds_follow_the_window_size_and_the_feature(base: SimpleNamespace) -> None:
    """linf_simple of a 100-row window of the baseline's own distribution exceeds 0.1 by noise
    alone: the threshold of a continuous feature goes above 0.1 there, below it at 500 rows,
    and features with few distinct values get smaller ones."""
    tmp = base.tmp / "window-100"  # not base.tmp: its calibrated/ is the fixture's
    tmp.mkdir(exist_ok=True)
    done, out = run_calibrate(tmp, base.data, base.constraints, "--sample-size", 100, "--draws", 400, "--seed", 11)
    assert done.returncode == 0, done.stderr
    small = json.loads((out / "calibration.json").read_text())["features"]
    large = base.report["features"]
    charges = small["monthly_charges"]
    assert charges["null_exceed_default"] > 0.05  # noise alone crossed 0.1
    assert 0.13 < charges["null_quantile"] < 0.2 and charges["threshold"] > 0.15
    assert 0.06 < large["monthly_charges"]["null_quantile"] < 0.09 < large["monthly_charges"]["threshold"] < 0.1
    for name in small:
        assert small[name]["threshold"] > 1.5 * large[name]["threshold"], name
    assert large["support_calls"]["null_quantile"] < large["monthly_charges"]["null_quantile"]
    assert len({round(v["threshold"], 6) for v in large.values()}) == len(large)


# --- verdicts ----------------------------------------------------------------------------------


def test_calibrated_thresholds_are_quiet_on_clean_windows_and_flag_drift(base: SimpleNamespace) -> None:
    for seed in (21, 22, 23):
        clean = judge(base.tmp, f"clean-{seed}", features(500, seed=seed), base.calibrated, base.statistics)
        assert clean["drift"] == {}, clean["log"]
    drifted = judge(base.tmp, "drifted", features(500, seed=24, drift=1.0), base.calibrated, base.statistics)
    assert SHIFTED <= set(drifted["drift"]), drifted["log"]
    assert "region" not in drifted["drift"]
    for distance, threshold in drifted["drift"].values():
        assert distance > threshold
    # a milder shift: the default (Robust at 0.1: a distance above about 0.18 at 500 rows)
    # misses some of what the calibrated thresholds catch
    mild = features(500, seed=25, drift=0.4)
    calibrated = judge(base.tmp, "mild", mild, base.calibrated, base.statistics)
    default = judge(base.tmp, "mild-default", mild, base.constraints, base.statistics)
    assert set(default["drift"]) < set(calibrated["drift"]), (default["log"], calibrated["log"])


def test_scale_shift_at_large_sample_is_flagged_only_when_calibrated(tmp_path: Path) -> None:
    baseline = features(40_000, seed=1)
    ns = make_baseline(tmp_path, baseline)
    done, out = run_calibrate(tmp_path, ns.data, ns.constraints, "--sample-size", 20_000, "--draws", 30)
    assert done.returncode == 0, done.stderr
    current = features(20_000, seed=2)
    mean = baseline["monthly_charges"].mean()
    current["monthly_charges"] = (mean + 1.5 * (current["monthly_charges"] - mean)).round(2)

    default = judge(tmp_path, "default", current, ns.constraints, ns.statistics)
    calibrated = judge(tmp_path, "calibrated", current, out / "constraints.json", ns.statistics)
    assert default["drift"] == {}
    assert set(calibrated["drift"]) == {"monthly_charges"}
    distance, threshold = calibrated["drift"]["monthly_charges"]
    assert threshold < distance < 0.1


# --- failures ----------------------------------------------------------------------------------


def test_failures_write_a_reason(base: SimpleNamespace, tmp_path: Path) -> None:
    done, _ = run_calibrate(tmp_path, base.data, base.constraints, "--quantile", 1.5)
    assert done.returncode == 1
    assert "--quantile must be in (0, 1)" in (tmp_path / "sm-output" / "failure").read_text()

    constraints = json.loads(base.constraints.read_text())
    constraints["features"].append({"name": "not_a_column", "inferred_type": "Fractional", "completeness": 1.0})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(constraints))
    done, _ = run_calibrate(tmp_path, base.data, bad)
    assert done.returncode == 1
    assert "not_a_column" in (tmp_path / "sm-output" / "failure").read_text()

    done, _ = run_calibrate(tmp_path, tmp_path / "empty", base.constraints)
    assert done.returncode == 1
    assert "no *.csv" in (tmp_path / "sm-output" / "failure").read_text()
