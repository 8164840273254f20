"""Autoloop's monitoring job (``ml/monitor.py check``) against evidently, a numpy floor, and its bill.

Data (:func:`write_data`, written once to a temp dir, not timed): a ``baseline_rows`` x 20
N(0, 1) baseline CSV baselined by ``monitor.py baseline`` (not timed); ``rows`` captured
records in SageMaker's data-capture JSONL layout (20 files of one hour, each record with an
``eventId``, an ``inferenceTime`` in the hour and a score), where f0 is shifted (+0.5), f1
scaled (x1.5) and f2 20 % replaced; and one ground-truth record (Model Monitor's merge
format) for every captured record, for the merge benchmark.

Each contender runs in a fresh process of its own (``python -m bench.monitor child KIND ROOT``),
timed from the start of its work (library imports included, interpreter start-up not), its
peak RSS read from its own ``VmHWM`` at the end:

- ours: ``monitor.py check`` on the hour's capture (``--window-start``/``--window-end`` set,
  as the hourly job runs it): statistics, calibrated thresholds (200 null draws a feature),
  violations, the report.
- floor: the least work that measures the same drift: per file a regular expression for the
  ``data`` fields and numpy's C reader, then per column one sort and the max CDF gap to the
  baseline sketch at the sketch's points. No window filter, statistics, thresholds or files.
- evidently: ``Report([DataDriftPreset()])`` on the same rows against the baseline CSV, in
  its own venv (``make bench-deps``: ``.venv/evidently``, or ``AUTOLOOP_EVIDENTLY_PYTHON``);
  its time includes turning the capture into a DataFrame (a regular expression, then pandas'
  C reader). evidently 0.7 imports a pandas function that pandas 3 removed; the child puts
  it back first (as bench/drift.py does).
- merge: ours with ``--ground-truth-dir`` (one label per captured record): the ground-truth
  read, the merge on event ids, model quality and ``labelled.csv``; rows merged per second
  and peak RSS.

The bill: an hourly schedule runs 24 x 30 jobs a month, each billed for its run time on one
ml.m5.xlarge (4 vCPU; this machine has 2 cores, so the measured time is taken as is, an upper
bound) plus the job's start-up (instance provisioning, image pull, S3 download), which we have
not measured: ``STARTUP_SECONDS`` (an assumption, stated on the line).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()

from bench.common import ROOT, Row, peak_mb, progress  # noqa: E402
from bench.drift import (  # noqa: E402
    CAPTURE_DIR,
    DATA,
    baseline_sketches,
    drifted_block,
    file_spans,
    rows_text,
    write_baseline,
)

SCRIPT = ROOT / "ml" / "monitor.py"
START, END = "2024-05-01T02:00:00Z", "2024-05-01T03:00:00Z"
STARTUP_SECONDS = 120.0  # assumed per-job start-up billed by SageMaker Processing (not measured here)
HOURLY_JOBS_PER_MONTH = 24 * 30


# ----------------------------------------------------------------------------- the data
def write_data(root: Path, rows: int, features: int = 20, baseline_rows: int = 200_000, files: int = 20,
               seed: int = 0) -> dict[str, Any]:
    """Baseline CSV (``root/baseline``), model config (``root/config.json``), capture
    (``root/capture``) and ground truth (``root/truth``); returns sizes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = write_baseline(root, rng, features, baseline_rows)
    (root / "config.json").write_text(json.dumps({"columns": ["y", *names], "label": "y", "numeric_features": names,
                                                  "categorical_features": [], "metric": "auc"}))
    block_rows = min(rows, 50_000)
    texts = rows_text(drifted_block(rng, block_rows, features))
    labels = (rng.random(block_rows) < 0.3).astype(int)
    scores = np.clip(0.3 + 0.4 * labels + rng.normal(0, 0.2, block_rows), 0, 1).round(4)
    capture_dir = root / CAPTURE_DIR
    truth_dir = root / "truth" / "2024" / "05" / "01" / "05"
    capture_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    for index, first, count in file_spans(rows, files):
        capture, truth = [], []
        for i in range(first, first + count):
            j = i % block_rows
            event = f"{i:08d}-7c1e-4b7a-9d3e-5f0a1b2c3d4e"
            capture.append(
                '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"'
                + texts[j] + '\\n","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; '
                'charset=utf-8","mode":"OUTPUT","data":"' + repr(float(scores[j])) + '","encoding":"CSV"}},'
                '"eventMetadata":{"eventId":"' + event + f'","inferenceTime":"2024-05-01T02:{index * 59 // files:02d}:'
                f'{i % 60:02d}Z"}},"eventVersion":"0"}}')
            truth.append('{"groundTruthData":{"data":"' + str(labels[j]) + '","encoding":"CSV"},"eventMetadata":'
                         '{"eventId":"' + event + '"},"eventVersion":"0"}')
        (capture_dir / f"{index:02d}-00-000-bench.jsonl").write_text("\n".join(capture) + "\n")
        (truth_dir / f"{index:02d}-truth.jsonl").write_text("\n".join(truth) + "\n")
    return {"capture_mb": round(sum(p.stat().st_size for p in capture_dir.iterdir()) / 1e6, 1),
            "truth_mb": round(sum(p.stat().st_size for p in truth_dir.iterdir()) / 1e6, 1)}


def baseline(root: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "baseline", "--dataset-dir", str(root / "baseline"),
                           "--output-dir", str(root / "baseline-out")], capture_output=True, text=True, check=False,
                          env={**os.environ, "SM_OUTPUT_DIR": str(root / "baseline-sm")})
    if done.returncode != 0:
        raise RuntimeError(f"monitor.py baseline failed: {done.stderr[-1500:]}")


# ----------------------------------------------------------------------------- children
def _check_argv(root: Path, out: Path, truth: bool) -> list[str]:
    argv = ["check", "--config", str(root / "config.json"), "--baseline-dir", str(root / "baseline-out"),
            "--output-dir", str(out), "--capture-dir", str(root / "capture"), "--window-start", START,
            "--window-end", END]
    return argv + (["--ground-truth-dir", str(root / "truth")] if truth else [])


def _run_ours(root: Path, out: Path, truth: bool) -> dict[str, Any]:
    import contextlib
    import io

    sys.path.insert(0, str(SCRIPT.parent))
    os.environ["SM_OUTPUT_DIR"] = str(out / "sm")
    import monitor  # type: ignore[import-not-found]

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = monitor.main(_check_argv(root, out, truth))
    if code != 0:
        raise RuntimeError(f"monitor.py check exited {code}")
    report = json.loads((out / "monitoring_report.json").read_text())
    timings = [line for line in log.getvalue().splitlines() if "timings:" in line or "ground truth:" in line]
    return {"flagged": sorted(f["name"] for f in report["features"] if f["violated"]), "rows": report["rows"],
            "matched": report["ground_truth"]["matched"], "labelled_rows": report["labelled_rows"],
            "quality": report["quality"], "timings": timings,
            "thresholds": {f["name"]: round(f["threshold"], 4) for f in report["features"][:4]}}


def child_ours(root: Path) -> dict[str, Any]:
    return _run_ours(root, root / "ours-out", truth=False)


def child_merge(root: Path) -> dict[str, Any]:
    return _run_ours(root, root / "merge-out", truth=True)


def child_floor(root: Path) -> dict[str, Any]:
    import io

    import numpy as np

    features, sketches = baseline_sketches(root)
    parts: list[Any] = []
    for path in sorted((root / "capture").rglob("*.jsonl")):
        text = b"\n".join(DATA.findall(path.read_bytes())).replace(b"\\n", b"\n")
        parts.append(np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64, ndmin=2))
    values = np.concatenate(parts)
    distances = {}
    for i, feature in enumerate(features):
        column = np.sort(values[:, i])
        base = sketches[i]
        base_cdf = np.arange(1, base.size + 1) / base.size
        window_cdf = np.searchsorted(column, base, side="right") / column.size
        distances[feature["name"]] = round(float(np.max(np.abs(window_cdf - base_cdf))), 4)
    return {"rows": int(values.shape[0]), "distances": dict(list(distances.items())[:4])}


def child_evidently(root: Path) -> dict[str, Any]:
    import io

    import numpy as np
    import pandas as pd
    from pandas.core.dtypes import common

    if not hasattr(common, "infer_dtype_from_object"):
        common.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type  # type: ignore[attr-defined]
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_csv(root / "baseline" / "baseline.csv")
    text = b"\n".join(b"\n".join(DATA.findall(p.read_bytes())).replace(b"\\n", b"\n")
                      for p in sorted((root / "capture").rglob("*.jsonl")))
    current = pd.read_csv(io.BytesIO(text), header=None, names=list(reference.columns))
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value, threshold, method = float(metric["value"]), float(config["threshold"]), str(config.get("method"))
        test = "p_value" in method or "K-S" in method or "test" in method.lower()
        if (value < threshold) if test else (value >= threshold):
            flagged.append(config["column"])
    return {"flagged": sorted(flagged), "rows": int(len(current))}


CHILDREN = {"ours": child_ours, "merge": child_merge, "floor": child_floor, "evidently": child_evidently}


def evidently_python() -> tuple[str | None, str]:
    """(the evidently venv's python, or None; why not)."""
    python = os.environ.get("AUTOLOOP_EVIDENTLY_PYTHON") or str(ROOT / ".venv" / "evidently" / "bin" / "python")
    if not Path(python).exists():
        return None, "evidently not installed: run `make bench-deps` (its own venv, .venv/evidently)"
    return python, ""


def _child(kind: str, root: Path, timeout: float, python: str = sys.executable) -> dict[str, Any]:
    done = subprocess.run([python, "-m", "bench.monitor", "child", kind, str(root)], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed: {done.stderr[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- the benchmark
def run(quick: bool = False) -> list[Row]:
    rows = 20_000 if quick else 1_000_000
    baseline_rows = 20_000 if quick else 200_000
    label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    root = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    try:
        progress(f"[monitor] writing {label} captured rows x 20 features, their ground truth, and baselining")
        sizes = write_data(root, rows, 20, baseline_rows)
        baseline(root)
        results: dict[str, Any] = {}
        for kind in ("ours", "floor", "merge"):
            progress(f"[monitor] {kind}")
            results[kind] = _child(kind, root, timeout=900)
        python, missing = evidently_python()
        if python is not None and quick:
            python, missing = None, "evidently skipped in quick mode (it alone takes longer than the quick run)"
        if python is not None:
            progress("[monitor] evidently (slow)")
            try:
                results["evidently"] = _child("evidently", root, timeout=1800, python=python)
            except Exception as exc:
                missing = f"evidently failed: {str(exc).splitlines()[-1][:150]}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ours, floor, merge = results["ours"], results["floor"], results["merge"]
    ev = results.get("evidently")
    what = f"monitoring check, {label} captured rows x 20 features"
    detail = {"rows": rows, "baseline_rows": baseline_rows, **sizes, **results}
    billed = (ours["seconds"] + STARTUP_SECONDS) * HOURLY_JOBS_PER_MONTH / 60.0
    compute_only = ours["seconds"] * HOURLY_JOBS_PER_MONTH / 60.0
    return [
        Row("monitor.vs_evidently", f"{what}: ours", ours["seconds"], "s", "evidently DataDriftPreset",
            ev["seconds"] if ev else None, ev["seconds"] / ours["seconds"] if ev else None,
            ">= 20x faster than evidently", ev["seconds"] / ours["seconds"] >= 20 if ev else None,
            "ratio = evidently / ours" if ev else missing, detail),
        Row("monitor.vs_floor", f"{what}: ours", ours["seconds"], "s", "numpy floor (parse + sort + CDF)",
            floor["seconds"], ours["seconds"] / floor["seconds"], "<= 2x the floor",
            ours["seconds"] / floor["seconds"] <= 2.0),
        Row("monitor.memory", f"{what}: ours, peak RSS", ours["peak_mb"], "MB", "1 GB", 1024.0,
            ours["peak_mb"] / 1024.0, "< 1 GB", ours["peak_mb"] < 1024.0,
            f"floor {floor['peak_mb']:.0f} MB" + (f", evidently {ev['peak_mb']:.0f} MB" if ev else "")),
        Row("monitor.monthly_minutes", f"hourly schedule at {label} rows an hour: ml.m5.xlarge minutes a month",
            billed, "min", "compute alone (no start-up)", compute_only, None, "-", None,
            f"(measured {ours['seconds']:.1f} s + assumed {STARTUP_SECONDS:.0f} s start-up) x 24 x 30 / 60",
            {"baseline_unit": "min"}),
        Row("monitor.merge_rate", f"ground-truth merge, {label} captured rows + {label} labels: rows/s",
            merge["rows"] / merge["seconds"], "rows/s", "check without ground truth, rows/s",
            ours["rows"] / ours["seconds"], (merge["rows"] / merge["seconds"]) / (ours["rows"] / ours["seconds"]),
            "-", None,
            f"{merge['matched']} matched, {merge['labelled_rows']} labelled rows in {merge['seconds']:.1f} s",
            {"baseline_unit": "rows/s"}),
        Row("monitor.merge_memory", f"ground-truth merge, {label} + {label}: peak RSS", merge["peak_mb"], "MB",
            "check without ground truth", ours["peak_mb"], merge["peak_mb"] / ours["peak_mb"], "< 1 GB",
            merge["peak_mb"] < 1024.0),
    ]


def main(argv: list[str]) -> int:
    if argv[:1] != ["child"] or len(argv) != 3 or argv[1] not in CHILDREN:
        print("usage: python -m bench.monitor child ours|floor|merge|evidently ROOT"
              "   (python -m bench monitor runs it)", file=sys.stderr)
        return 2
    result = CHILDREN[argv[1]](Path(argv[2]))
    result.update(seconds=time.perf_counter() - _STARTED, peak_mb=peak_mb())
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
