"""ml/monitor.py: Autoloop's monitoring job (baseline and check modes) and its calibrated thresholds.

The check mode runs in-process (``monitor.main([...])``, which is what ``python monitor.py``
calls) on data from ``autoloop_cli.datagen`` written as endpoint data capture and Model
Monitor ground truth; one test runs it as the container would, a subprocess. The
environment-variable mode (the Model Monitor image) is tested in tests/localaws/test_model_monitor.py.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from autoloop.drift import parse_violations
from autoloop_cli import datagen

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ml" / "monitor.py"
CHURN = REPO / "models" / "churn" / "config.json"
COLUMNS = list(datagen.COLUMNS)
FEATURES = COLUMNS[1:]
SHIFTED = {"monthly_charges", "data_usage_gb", "tenure_months", "contract"}  # datagen's strong shifts
HOUR = "2024-05-01T02"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up; calibrate.py imports "monitor"
    sys.path.insert(0, str(path.parent))  # as when run: its folder first (autoloop_ml_common)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


monitor = load("monitor", SCRIPT)  # the name calibrate.py imports it by
calibrate = load("calibrate_for_monitor_tests", REPO / "ml" / "calibrate.py")


# --- helpers -----------------------------------------------------------------------------------


def capture_line(row: str, output: str, event_id: str, *, inference_id: str | None = None,
                 at: str | None = f"{HOUR}:17:49Z", content_type: str = "text/csv") -> str:
    meta: dict[str, str] = {"eventId": event_id}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    if at is not None:
        meta["inferenceTime"] = at
    record = {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": row + "\n",
                              "encoding": "CSV"},
            "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": output,
                               "encoding": "CSV"},
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


def truth_line(label: str, event_id: str) -> str:
    return json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id},
                       "eventVersion": "0"}, separators=(",", ":"))


def feature_rows(frame: pd.DataFrame) -> list[str]:
    return frame[FEATURES].to_csv(header=False, index=False, lineterminator="\n").splitlines()


def write_capture(folder: Path, frame: pd.DataFrame, *, scores: list[float] | None = None, prefix: str = "e",
                  name: str = "02/10-00-000-a.jsonl", at: str | None = f"{HOUR}:17:49Z") -> list[str]:
    """``frame`` as one capture file; returns the event ids."""
    path = folder / "ep" / "AllTraffic" / "2024" / "05" / "01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}{i}" for i in range(len(frame))]
    scores = scores if scores is not None else [0.5] * len(frame)
    lines = [capture_line(r, repr(s), i, at=at) for r, s, i in zip(feature_rows(frame), scores, ids, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return ids


def run_check(tmp: Path, *args: object, baseline: Path, capture: Path | None = None, config: Path = CHURN,
              out: str = "out") -> dict[str, Any]:
    argv = ["check", "--config", str(config), "--baseline-dir", str(baseline), "--output-dir", str(tmp / out)]
    if capture is not None:
        argv += ["--capture-dir", str(capture)]
    argv += [str(a) for a in args]
    assert monitor.main(argv) == 0
    return json.loads((tmp / out / "monitoring_report.json").read_text())


def make_baseline(tmp: Path, frame: pd.DataFrame, name: str = "baseline") -> Path:
    data = tmp / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    frame.to_csv(data / "baseline.csv", index=False)
    out = tmp / f"{name}-out"
    assert monitor.main(["baseline", "--dataset-dir", str(data), "--output-dir", str(out)]) == 0
    return out


@pytest.fixture(autouse=True)
def sm_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "sm-output"))
    return tmp_path / "sm-output"


@pytest.fixture(scope="module")
def churn_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_baseline(tmp_path_factory.mktemp("churn"), datagen.generate(5000, seed=1)[FEATURES])


# --- baseline mode -------------------------------------------------------------------------------


def test_baseline_mode_writes_model_monitors_statistics_and_constraints(tmp_path: Path) -> None:
    out = make_baseline(tmp_path, datagen.generate(3000, seed=4)[FEATURES])
    statistics = json.loads((out / "statistics.json").read_text())
    constraints = json.loads((out / "constraints.json").read_text())
    assert statistics["dataset"] == {"item_count": 3000}
    assert [f["name"] for f in statistics["features"]] == FEATURES == [f["name"] for f in constraints["features"]]
    by_name = {f["name"]: f for f in statistics["features"]}
    charges = by_name["monthly_charges"]
    assert charges["inferred_type"] == "Fractional"
    numeric = charges["numerical_statistics"]
    assert numeric["common"]["num_present"] + numeric["common"]["num_missing"] == 3000
    kll = numeric["distribution"]["kll"]
    assert len(kll["buckets"]) == 10 and kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert len(kll["sketch"]["data"][0]) == 2048  # 3000 values: 2048 equally spaced order statistics
    assert by_name["support_calls"]["inferred_type"] == "Integral"
    contract = by_name["contract"]["string_statistics"]
    assert {b["value"] for b in contract["distribution"]["categorical"]["buckets"]} == {
        "month-to-month", "one-year", "two-year"}
    dist = constraints["monitoring_config"]["distribution_constraints"]
    assert dist["comparison_method"] == "Robust" and dist["comparison_threshold"] == 0.1
    assert {f["name"]: f.get("string_constraints", {}).get("domains") for f in constraints["features"]}["contract"] \
        == ["month-to-month", "one-year", "two-year"]
    assert (out / "message").read_text() == "Completed: Job completed successfully with no violations."


# --- drift with calibrated thresholds ----------------------------------------------------------------


def test_check_finds_drift_on_shifted_data_and_none_on_the_same_distribution(tmp_path: Path,
                                                                              churn_baseline: Path) -> None:
    for seed in (21, 22):
        clean_dir = tmp_path / f"clean-{seed}"
        write_capture(clean_dir, datagen.generate(800, seed=seed))
        report = run_check(tmp_path, baseline=churn_baseline, capture=clean_dir, out=f"clean-out-{seed}")
        assert report["rows"] == 800 and not report["empty_window"]
        assert [f["name"] for f in report["features"] if f["violated"]] == []
        assert report["data_quality_violations"] == 0
        assert (tmp_path / f"clean-out-{seed}" / "message").read_text().startswith("Completed: ")

    drifted_dir = tmp_path / "drifted"
    write_capture(drifted_dir, datagen.generate(800, seed=24, drift=1.0))
    report = run_check(tmp_path, baseline=churn_baseline, capture=drifted_dir, out="drifted-out")
    flagged = {f["name"] for f in report["features"] if f["violated"]}
    assert SHIFTED <= flagged and "region" not in flagged
    violations = parse_violations((tmp_path / "drifted-out" / "constraint_violations.json").read_text(), "test")
    drift = {v.feature: v for v in violations if v.check == "baseline_drift_check"}
    assert set(drift) == flagged == {f["name"] for f in report["features"] if f["distance"] > f["threshold"]}
    for entry in report["features"]:
        if entry["violated"]:
            assert drift[entry["name"]].distance == pytest.approx(entry["distance"])
            assert drift[entry["name"]].threshold == pytest.approx(entry["threshold"])
    assert report["data_quality_violations"] == len(violations)
    message = (tmp_path / "drifted-out" / "message").read_text()
    assert message == f"CompletedWithViolations: Job completed successfully with {len(violations)} violations."
    assert json.loads((tmp_path / "drifted-out" / "statistics.json").read_text())["dataset"]["item_count"] == 800


def test_thresholds_differ_by_feature_and_window_size(tmp_path: Path, churn_baseline: Path) -> None:
    thresholds = {}
    for rows in (100, 2000):
        folder = tmp_path / f"w{rows}"
        write_capture(folder, datagen.generate(rows, seed=30 + rows))
        report = run_check(tmp_path, "--floor", 0.001, baseline=churn_baseline, capture=folder, out=f"o{rows}")
        thresholds[rows] = {f["name"]: f["threshold"] for f in report["features"]}
        for f in report["features"]:
            assert f["threshold"] == pytest.approx(max(0.001, 1.2 * f["noise"]))
    small, large = thresholds[100], thresholds[2000]
    assert set(small) == set(FEATURES)
    for name in FEATURES:
        assert small[name] > 2 * large[name], name  # the noise shrinks about as 1/sqrt(m)
    assert small["monthly_charges"] > 0.15
    assert 0.03 < large["monthly_charges"] < 0.06
    # a feature with few distinct values has a coarser, smaller null than a continuous one
    assert large["support_calls"] < large["monthly_charges"]
    assert len({round(v, 6) for v in large.values()}) == len(FEATURES)


def test_the_null_model_is_the_checks_distance_on_windows_drawn_from_the_sketch() -> None:
    rng = np.random.default_rng(5)
    values = np.sort(np.round(rng.gamma(2.0, 10.0, 50_000), 1))  # many ties, as real data has
    stat = monitor.feature_statistics(monitor.profile_column("x", values, values.size, False))
    kind, reference, n = monitor.baseline_distribution(stat)
    assert kind == "numeric" and n == 50_000
    items, probabilities = monitor._distinct(*reference)
    for m in (700, 2048, 9000):
        simulated = monitor.null_numeric(reference, m, 20, np.random.default_rng(m))
        counts = np.random.default_rng(m).multinomial(m, probabilities / probabilities.sum(), size=20)
        by_hand = [monitor.window_linf(reference, np.repeat(items, c)) for c in counts]
        np.testing.assert_allclose(simulated, by_hand, atol=1e-12)
    # categorical: the same draws, the check's categorical distance
    reference_counts = {"a": 600.0, "b": 300.0, "c": 100.0}
    simulated = monitor.null_categorical(reference_counts, 250, 10, np.random.default_rng(1))
    counts = np.random.default_rng(1).multinomial(250, [0.6, 0.3, 0.1], size=10)
    by_hand = [monitor.categorical_linf(reference_counts, dict(zip("abc", c.tolist(), strict=True))) for c in counts]
    np.testing.assert_allclose(simulated, by_hand, atol=1e-12)


def test_a_million_row_window_calibrates_and_the_baseline_noise_counts() -> None:
    rng = np.random.default_rng(2)
    values = np.sort(rng.normal(size=200_000))
    stat = monitor.feature_statistics(monitor.profile_column("x", values, values.size, False))
    _, reference, n = monitor.baseline_distribution(stat)
    calibration = monitor.Calibration(draws=200)
    # (its cost does not grow with m: bench/monitor.py times the check at 1M rows)
    simulated = float(np.quantile(monitor.null_distances("numeric", reference, n, 1_000_000, 200,
                                                         monitor.feature_rng(42, "x")), 0.99))
    # two-sample KS scale at 1M vs 200k is ~1.63 sqrt(1.2e6 / 2e11) = 0.004
    assert 0.002 < simulated < 0.006
    # without the baseline's own noise (n unknown) the one-sample scale is sqrt(6) smaller
    one_sample = float(np.quantile(monitor.null_distances("numeric", reference, 0, 1_000_000, 200,
                                                           monitor.feature_rng(42, "x")), 0.99))
    assert simulated / one_sample == pytest.approx(math.sqrt(1.2e6 / 2e5), rel=1e-9)
    # the check itself does not simulate there: an upper bound already puts the threshold at the floor
    noise = calibration.noise("x", "numeric", reference, n, 1_000_000)
    assert simulated < noise < 0.0167 and calibration.threshold(noise) == 0.02
    for m in (300, 3000):  # where the bound would not settle it, the simulated quantile is below it
        below = calibration.noise("x", "numeric", reference, n, m)
        assert below < calibration.noise_bound("numeric", n, m)
        assert calibration.threshold(below) > 0.02


def test_an_explicit_per_feature_threshold_wins(tmp_path: Path, churn_baseline: Path) -> None:
    constraints = json.loads((churn_baseline / "constraints.json").read_text())
    for feature in constraints["features"]:
        if feature["name"] == "region":
            feature["monitoringConfigOverrides"] = {"comparison_threshold": 0.0001}
    baseline = tmp_path / "override"
    baseline.mkdir()
    (baseline / "constraints.json").write_text(json.dumps(constraints))
    (baseline / "statistics.json").write_text((churn_baseline / "statistics.json").read_text())
    write_capture(tmp_path / "cap", datagen.generate(500, seed=40))
    report = run_check(tmp_path, baseline=baseline, capture=tmp_path / "cap")
    region = next(f for f in report["features"] if f["name"] == "region")
    assert region["threshold"] == 0.0001 and region["violated"] and region["noise"] > 0.01


def test_calibrate_uses_the_monitors_distance_and_null_model() -> None:
    for name in ("null_distances", "feature_statistics", "baseline_distribution", "Calibration", "comparison_method"):
        assert getattr(calibrate, name) is getattr(monitor, name), name


# --- the window -------------------------------------------------------------------------------------


def test_only_records_inside_the_window_count(tmp_path: Path, churn_baseline: Path) -> None:
    frame = datagen.generate(40, seed=50)
    rows = feature_rows(frame)
    times = [f"{HOUR}:59:59.500Z", "2024-05-01T03:00:00Z", "2024-05-01T01:59:59Z", "2024-05-01T02:00:00Z",
             "2024-05-01T04:30:00+02:00", None, "not a time"]  # 04:30+02:00 is 02:30Z
    lines = [capture_line(rows[i], "0.5", f"e{i}", at=times[i % len(times)]) for i in range(40)]
    path = tmp_path / "cap" / "x.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    inside = sum(1 for i in range(40) if i % len(times) in (0, 3, 4))
    report = run_check(tmp_path, "--window-start", "2024-05-01T02:00:00Z", "--window-end", "2024-05-01T03:00:00Z",
                       baseline=churn_baseline, capture=tmp_path / "cap")
    assert report["rows"] == inside
    assert report["window"] == {"start": "2024-05-01T02:00:00Z", "end": "2024-05-01T03:00:00Z"}
    # the fast path (every time written as SageMaker writes it) agrees with the general one
    compact = [capture_line(rows[i], "0.5", f"f{i}", at=f"2024-05-01T0{1 + i % 3}:3{i % 10}:00Z") for i in range(40)]
    path.write_text("\n".join(compact) + "\n")
    report = run_check(tmp_path, "--window-start", "2024-05-01T02:00:00Z", "--window-end", "2024-05-01T03:00:00Z",
                       baseline=churn_baseline, capture=tmp_path / "cap", out="out2")
    assert report["rows"] == sum(1 for i in range(40) if i % 3 == 1)


def test_an_empty_window_says_so_and_succeeds(tmp_path: Path, churn_baseline: Path, sm_output: Path) -> None:
    write_capture(tmp_path / "cap", datagen.generate(30, seed=51))
    report = run_check(tmp_path, "--window-start", "2024-06-01T00:00:00Z", "--window-end", "2024-06-01T01:00:00Z",
                       baseline=churn_baseline, capture=tmp_path / "cap")
    assert report["empty_window"] is True and report["rows"] == 0 and report["features"] == []
    assert report["quality"] is None and report["labelled_uri_hint"] is None
    message = (tmp_path / "out" / "message").read_text()
    assert message.startswith("Completed: no rows in the window [2024-06-01T00:00:00Z, 2024-06-01T01:00:00Z)")
    assert "30 records outside it" in message
    assert (sm_output / "message").read_text() == message
    assert json.loads((tmp_path / "out" / "constraint_violations.json").read_text()) == {"violations": []}


# --- ground truth ------------------------------------------------------------------------------------


def test_ground_truth_is_matched_on_inference_id_else_event_id(tmp_path: Path, churn_baseline: Path) -> None:
    frame = datagen.generate(6, seed=60)
    rows = feature_rows(frame)
    lines = [
        capture_line(rows[0], "0.9", "evt-0", inference_id="order-0"),
        capture_line(rows[1], "0.1", "evt-1", inference_id="order-1"),
        capture_line(rows[2], "0.8", "evt-2"),
        capture_line(rows[3], "0.3", "evt-3"),
    ]
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "gt" / "2024" / "05").mkdir(parents=True)
    (tmp_path / "gt" / "2024" / "05" / "g.jsonl").write_text("\n".join([
        truth_line("1", "order-0"),  # by inferenceId
        truth_line("0", "evt-1"),  # the record has an inferenceId: its eventId does not match
        truth_line("1", "evt-2"),  # no inferenceId: by eventId
        truth_line("0", "evt-3"),
    ]) + "\n")
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--min-labelled-rows", 1,
                       baseline=churn_baseline, capture=tmp_path / "cap")
    gt = report["ground_truth"]
    assert (gt["files"], gt["records"], gt["matched"], gt["unknown_event_ids"]) == (1, 4, 3, 1)
    assert gt["problems"] == [{"file": "2024/05/g.jsonl", "line": 2, "kind": "unknown_event_ids",
                               "detail": "event evt-1: no captured record with this id in the window"}]
    labelled = (tmp_path / "out" / "labelled" / "labelled.csv").read_text().splitlines()
    assert labelled == [",".join(COLUMNS), f"1,{rows[0]}", f"1,{rows[2]}", f"0,{rows[3]}"]
    assert report["labelled_rows"] == 3 and report["labelled_uri_hint"] == "labelled/labelled.csv"
    assert report["quality"]["labelled_rows"] == 3 and report["quality"]["value"] == 1.0


def test_every_bad_ground_truth_record_is_counted_and_named(tmp_path: Path, churn_baseline: Path) -> None:
    frame = datagen.generate(5, seed=61)
    write_capture(tmp_path / "cap", frame)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "a.jsonl").write_text("\n".join([
        truth_line("1", "e0"),
        '{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "e1"}',  # truncated
        truth_line("yes", "e1"),  # not 0/1 for a binary model
        truth_line("0", "e0"),  # e0 again: the first one is kept
        "",
        json.dumps({"groundTruthData": {"data": "1"}, "eventMetadata": {}}),  # no event id
    ]) + "\n")
    (tmp_path / "gt" / "b.jsonl").write_text("\n".join([
        truth_line("2", "e2"),
        truth_line("0", "e3"),
        truth_line("1", "nobody"),
        truth_line("0\n1", "e4"),  # two labels for a one-row request
    ]) + "\n")
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--min-labelled-rows", 1,
                       baseline=churn_baseline, capture=tmp_path / "cap")
    gt = report["ground_truth"]
    assert (gt["files"], gt["records"]) == (2, 9)
    assert (gt["matched"], gt["malformed"], gt["wrong_label_type"], gt["duplicate_event_ids"],
            gt["unknown_event_ids"]) == (2, 2, 3, 1, 1)
    named = {(p["file"], p["line"], p["kind"]) for p in gt["problems"]}
    assert named == {
        ("a.jsonl", 2, "malformed"), ("a.jsonl", 3, "wrong_label_type"), ("a.jsonl", 4, "duplicate_event_ids"),
        ("a.jsonl", 6, "malformed"), ("b.jsonl", 1, "wrong_label_type"), ("b.jsonl", 3, "unknown_event_ids"),
        ("b.jsonl", 4, "wrong_label_type"),
    }
    details = {(p["file"], p["line"]): p["detail"] for p in gt["problems"]}
    assert "not 0 or 1" in details[("a.jsonl", 3)] and "a.jsonl line 1" in details[("a.jsonl", 4)]
    assert "2 labels for a captured request of 1 rows" in details[("b.jsonl", 4)]
    assert "eventId" in details[("a.jsonl", 6)]
    assert report["labelled_rows"] == 2  # e0 and e3: the rest never corrupts the output
    assert len((tmp_path / "out" / "labelled" / "labelled.csv").read_text().splitlines()) == 3


def test_labelled_rows_keep_the_captured_values_exactly(tmp_path: Path, churn_baseline: Path) -> None:
    rows = ["007,89.90,0,1e1,51,month-to-month,mailed_check,south",
            "3,-0.0,2,4.650000,32,one-year,\"electronic, check\",east",
            "12,70.1,1,,45,two-year,bank_transfer,west"]
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "a.jsonl").write_text("\n".join(
        capture_line(r, "0.6", f"e{i}") for i, r in enumerate(rows)) + "\n")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "g.jsonl").write_text("\n".join(truth_line(str(i % 2), f"e{i}") for i in range(3)) + "\n")
    run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", baseline=churn_baseline, capture=tmp_path / "cap")
    text = (tmp_path / "out" / "labelled" / "labelled.csv").read_text()
    assert text == ",".join(COLUMNS) + "\n" + "".join(f"{i % 2},{r}\n" for i, r in enumerate(rows))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[2][7] == "electronic, check" and all(len(r) == len(COLUMNS) for r in parsed)


def test_a_multi_row_request_is_labelled_row_by_row(tmp_path: Path, churn_baseline: Path) -> None:
    rows = feature_rows(datagen.generate(2, seed=62))
    record = json.loads(capture_line(rows[0], "0.2\n0.9", "req-1"))
    record["captureData"]["endpointInput"]["data"] = rows[0] + "\n" + rows[1] + "\n"
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "a.jsonl").write_text(json.dumps(record) + "\n")  # json.dumps' spacing: the general reader
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "g.jsonl").write_text(truth_line("0\n1", "req-1") + "\n")
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--min-labelled-rows", 1,
                       baseline=churn_baseline, capture=tmp_path / "cap")
    assert report["rows"] == 2 and report["labelled_rows"] == 2 and report["ground_truth"]["matched"] == 1
    assert (tmp_path / "out" / "labelled" / "labelled.csv").read_text().splitlines()[1:] == [
        f"0,{rows[0]}", f"1,{rows[1]}"]
    assert report["quality"]["value"] == 1.0  # 0.2 for the 0, 0.9 for the 1


# --- model quality -------------------------------------------------------------------------------------


def labelled_window(tmp_path: Path, n: int, seed: int, noise: float) -> tuple[Path, np.ndarray, np.ndarray]:
    """A capture of n churn rows whose scores separate the labels as well as ``noise`` lets
    them, and its ground truth. Returns (ground-truth dir, labels, scores)."""
    frame = datagen.generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    labels = frame[datagen.COLUMNS[0]].to_numpy()
    scores = np.clip(0.5 + (labels - 0.5) * 0.6 + rng.normal(0, noise, n), 0, 1).round(4)
    ids = write_capture(tmp_path / "cap", frame, scores=scores.tolist())
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "g.jsonl").write_text("\n".join(truth_line(str(y), i) for y, i in zip(labels, ids,
                                                                                             strict=True)) + "\n")
    return tmp_path / "gt", labels, scores


def test_binary_quality_matches_sklearn_and_a_lower_auc_is_a_violation(tmp_path: Path, churn_baseline: Path) -> None:
    gt, labels, scores = labelled_window(tmp_path, 400, 70, noise=0.5)
    auc = roc_auc_score(labels, scores)
    report = run_check(tmp_path, "--ground-truth-dir", gt, "--threshold", round(auc + 0.01, 4),
                       baseline=churn_baseline, capture=tmp_path / "cap")
    quality = report["quality"]
    assert quality["metric"] == "auc" and quality["direction"] == "higher"
    assert quality["value"] == pytest.approx(auc, abs=1e-12) and quality["labelled_rows"] == 400
    assert quality["violated"] and "below the threshold" in quality["reason"]
    statistics = json.loads((tmp_path / "out" / "model_quality" / "statistics.json").read_text())
    metrics = statistics["binary_classification_metrics"]
    assert metrics["auc"]["value"] == pytest.approx(auc)
    assert metrics["f1"]["value"] == pytest.approx(f1_score(labels, scores >= 0.5))
    assert metrics["auc"]["standard_deviation"] > 0  # 400 rows: 5 subsamples
    matrix = metrics["confusion_matrix"]
    assert sum(matrix["1"].values()) == int(labels.sum())
    violations = json.loads((tmp_path / "out" / "model_quality" / "constraint_violations.json").read_text())
    assert violations == {"violations": [{
        "constraint_check_type": "LessThanThreshold", "metric_name": "auc",
        "description": f"Metric auc with {auc!r} was LessThanThreshold {round(auc + 0.01, 4)!r} "
                       f"(the threshold {round(auc + 0.01, 4)!r})"}]}
    assert (tmp_path / "out" / "message").read_text().startswith("CompletedWithViolations: ")

    # above the threshold, but worse than the champion by more than the margin
    report = run_check(tmp_path, "--ground-truth-dir", gt, "--threshold", 0.5, "--champion-metric", auc + 0.06,
                       "--quality-margin", 0.05, baseline=churn_baseline, capture=tmp_path / "cap", out="champ")
    assert report["quality"]["violated"] and "champion" in report["quality"]["reason"]
    report = run_check(tmp_path, "--ground-truth-dir", gt, "--champion-metric", auc + 0.04, "--quality-margin", 0.05,
                       baseline=churn_baseline, capture=tmp_path / "cap", out="within")
    assert not report["quality"]["violated"] and report["quality"]["reason"] is None
    # too few labelled rows: a value, no verdict
    report = run_check(tmp_path, "--ground-truth-dir", gt, "--threshold", 0.99, "--min-labelled-rows", 1000,
                       baseline=churn_baseline, capture=tmp_path / "cap", out="few")
    assert not report["quality"]["violated"] and "fewer than --min-labelled-rows" in report["quality"]["reason"]


def test_regression_quality_higher_rmse_is_worse(tmp_path: Path) -> None:
    rng = np.random.default_rng(80)
    frame = pd.DataFrame({"y": rng.normal(10, 2, 300).round(3), "a": rng.normal(size=300).round(4),
                          "b": rng.integers(0, 5, 300)})
    config = tmp_path / "reg.json"
    config.write_text(json.dumps({"columns": ["y", "a", "b"], "label": "y", "numeric_features": ["a", "b"],
                                  "categorical_features": [], "metric": "rmse", "task": "regression"}))
    baseline = make_baseline(tmp_path, frame[["a", "b"]])
    predictions = (frame["y"] + rng.normal(0, 0.5, 300)).round(3)
    path = tmp_path / "cap" / "a.jsonl"
    path.parent.mkdir()
    rows = frame[["a", "b"]].to_csv(header=False, index=False, lineterminator="\n").splitlines()
    path.write_text("\n".join(capture_line(r, f'{{"predictions": [{p}]}}', f"e{i}", content_type="application/json")
                              for i, (r, p) in enumerate(zip(rows, predictions, strict=True))) + "\n")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "g.jsonl").write_text("\n".join(truth_line(repr(y), f"e{i}")
                                                       for i, y in enumerate(frame["y"])) + "\n")
    rmse = float(np.sqrt(np.mean((predictions - frame["y"]) ** 2)))
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--threshold", rmse - 0.01,
                       baseline=baseline, capture=tmp_path / "cap", config=config)
    quality = report["quality"]
    assert quality["direction"] == "lower" and quality["value"] == pytest.approx(rmse)
    assert quality["violated"] and "above the threshold" in quality["reason"]
    violation = json.loads((tmp_path / "out" / "model_quality" / "constraint_violations.json").read_text())
    assert violation["violations"][0]["constraint_check_type"] == "GreaterThanThreshold"
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", "--threshold", rmse + 0.01,
                       baseline=baseline, capture=tmp_path / "cap", config=config, out="ok")
    assert not report["quality"]["violated"]
    statistics = json.loads((tmp_path / "ok" / "model_quality" / "statistics.json").read_text())
    assert set(statistics["regression_metrics"]) == {"mae", "mse", "rmse", "r2"}
    # a regression label must be a number
    (tmp_path / "gt" / "g.jsonl").write_text(truth_line("high", "e0") + "\n")
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", baseline=baseline,
                       capture=tmp_path / "cap", config=config, out="bad")
    assert report["ground_truth"]["wrong_label_type"] == 1


def test_multiclass_quality_is_accuracy_and_weighted_f1(tmp_path: Path) -> None:
    rng = np.random.default_rng(81)
    frame = pd.DataFrame({"y": rng.integers(0, 3, 300), "a": rng.normal(size=300).round(4)})
    config = tmp_path / "multi.json"
    config.write_text(json.dumps({"columns": ["y", "a"], "label": "y", "numeric_features": ["a"],
                                  "metric": "weighted_f1", "task": "multiclass", "classes": ["0", "1", "2"]}))
    baseline = make_baseline(tmp_path, frame[["a"]])
    guess = np.where(rng.random(300) < 0.7, frame["y"], rng.integers(0, 3, 300))
    outputs = ["\n".join(",".join("0.8" if k == g else "0.1" for k in range(3)) for _ in [0]) for g in guess]
    path = tmp_path / "cap" / "a.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(capture_line(repr(a), o, f"e{i}")
                              for i, (a, o) in enumerate(zip(frame["a"], outputs, strict=True))) + "\n")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "g.jsonl").write_text("\n".join(truth_line(str(y), f"e{i}")
                                                       for i, y in enumerate(frame["y"])) + "\n")
    report = run_check(tmp_path, "--ground-truth-dir", tmp_path / "gt", baseline=baseline,
                       capture=tmp_path / "cap", config=config)
    assert report["quality"]["value"] == pytest.approx(f1_score(frame["y"], guess, average="weighted"))
    statistics = json.loads((tmp_path / "out" / "model_quality" / "statistics.json").read_text())
    assert statistics["multiclass_classification_metrics"]["accuracy"]["value"] == pytest.approx(
        float(np.mean(guess == frame["y"])))


# --- batch CSV ----------------------------------------------------------------------------------------


def test_batch_csv_with_a_label_column_gives_drift_and_labelled_rows(tmp_path: Path, churn_baseline: Path) -> None:
    frame = datagen.generate(300, seed=90)
    (tmp_path / "csv").mkdir()
    shuffled = [COLUMNS[3], COLUMNS[0], *COLUMNS[1:3], *COLUMNS[4:]]
    frame[shuffled].to_csv(tmp_path / "csv" / "month.csv", index=False)
    report = run_check(tmp_path, "--csv-dir", tmp_path / "csv", baseline=churn_baseline)
    assert report["rows"] == 300 and len(report["features"]) == len(FEATURES)
    assert report["labelled_rows"] == 300
    labelled = pd.read_csv(tmp_path / "out" / "labelled" / "labelled.csv")
    assert list(labelled.columns) == COLUMNS
    pd.testing.assert_frame_equal(labelled, frame[COLUMNS].reset_index(drop=True), check_dtype=False)


# --- as the container runs it, and failures -------------------------------------------------------------


def test_runs_as_a_processing_job_script_and_fails_clearly(tmp_path: Path, churn_baseline: Path) -> None:
    write_capture(tmp_path / "cap", datagen.generate(200, seed=95, drift=1.0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "PYTHONPATH"}
    env["SM_OUTPUT_DIR"] = str(tmp_path / "sm")
    argv = [sys.executable, str(SCRIPT), "check", "--config", str(CHURN), "--baseline-dir", str(churn_baseline),
            "--output-dir", str(tmp_path / "out"), "--capture-dir", str(tmp_path / "cap")]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sm" / "message").read_text().startswith("CompletedWithViolations: ")
    assert "[monitor] drift monthly_charges" in done.stdout
    assert json.loads((tmp_path / "out" / "monitoring_report.json").read_text())["data_quality_violations"] > 0

    bad = subprocess.run([*argv, "--csv-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120,
                         check=False, cwd=tmp_path)
    reason = "give exactly one of --capture-dir (endpoint data capture) and --csv-dir (batch CSV)"
    assert bad.returncode == 1 and bad.stderr.endswith(f"FAILED: {reason}\n")
    assert (tmp_path / "sm" / "failure").read_text() == reason


@pytest.mark.parametrize(("args", "reason"), [
    (["--window-start", "yesterday"], "--window-start 'yesterday' is not an ISO 8601 time"),
    (["--window-start", "2024-05-01T03:00:00Z", "--window-end", "2024-05-01T02:00:00Z"], "is not after"),
    (["--metric", "rmse"], "--metric 'rmse' is not a binary metric"),
    (["--quantile", "1.5"], "--quantile must be in (0, 1)"),
    (["--ground-truth-dir", "gt", "--csv-dir", "x"], "give exactly one of"),
])
def test_bad_arguments_are_named(tmp_path: Path, churn_baseline: Path, args: list[str], reason: str) -> None:
    (tmp_path / "cap").mkdir()
    with pytest.raises(monitor.MonitorError, match=None) as caught:
        monitor.cli_main(["check", "--config", str(CHURN), "--baseline-dir", str(churn_baseline),
                          "--output-dir", str(tmp_path / "out"), "--capture-dir", str(tmp_path / "cap"), *args])
    assert reason in str(caught.value)


def test_a_corrupt_capture_line_is_skipped_and_counted(tmp_path: Path, churn_baseline: Path) -> None:
    write_capture(tmp_path / "cap", datagen.generate(50, seed=96))
    path = next((tmp_path / "cap").rglob("*.jsonl"))
    path.write_text(path.read_text() + '{"captureData": {"endpointInput": {"data": "1,2\n')  # truncated last line
    report = run_check(tmp_path, baseline=churn_baseline, capture=tmp_path / "cap")
    assert report["rows"] == 50
    assert "1 capture lines were not valid records and were skipped" in (tmp_path / "out" / "message").read_text()
