"""Drift monitoring on captured data: our Model Monitor analyzer against evidently and a floor.

Data (:func:`write_data`, kept on disk): a 200k x 20 N(0, 1) baseline CSV, baselined once
by our analyzer (statistics.json + constraints.json, as the DeployPipeline does, not timed),
and ``rows`` x 20 captured records in Model Monitor's data-capture JSONL layout, 20 files,
where f0 is shifted (+0.5), f1 scaled (x1.5) and f2 20 % replaced.

Three contenders, each in a fresh process of its own (``python -m bench.drift child ...``),
timed from the start of its work (library imports included, interpreter start-up not),
peak RSS read from its own ``VmHWM`` at the end:

- ours: ``localaws/sagemaker/monitor/analyzer.py`` as a monitoring job (capture + the baseline's
  statistics and constraints -> statistics, constraint_violations, CloudWatch metric files).
  Flagged: features with a ``baseline_drift_check`` violation.
- evidently: ``Report([DataDriftPreset()])`` on the same captured rows against the baseline
  CSV. Its time includes turning the capture JSONL into a DataFrame (one regular expression
  for the ``data`` fields, then pandas' C CSV reader: the fastest route we know). Flagged: the
  columns its per-column ``ValueDrift`` marks as drifted (its defaults: Wasserstein distance
  (normed) >= 0.1 above 1,000 rows, else a KS p-value < 0.05). evidently 0.7 imports
  ``pandas.core.dtypes.common.infer_dtype_from_object``, which pandas 3 removed; the child
  puts that one function back (numpy's dtype lookup) before importing evidently.
- floor: one pass over the capture, a file at a time: a regular expression for the ``data``
  fields, numpy's C reader (``np.loadtxt``), and per feature a histogram on 2,048 bins fixed
  by the baseline sketch's range (plus a below-range count); then the max distance between
  that CDF and the baseline sketch's CDF at the bin edges, flagged with the analyzer's rule
  (``Robust``: distance - 1.8 sqrt((n+m)/(nm)) > 0.1). No statistics, no constraint checks,
  no report files: the least work that answers "which features drifted".

``python -m bench.drift analyzer --rows 1000000 --features 20`` times our analyzer alone
(baselining, then monitoring) on data of any size, as the job runner runs it (a subprocess),
and prints its timings, drift distances and violations (:func:`analyzer_bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()

from bench.common import ROOT, Row, peak_mb, progress  # noqa: E402

# SageMaker's compact capture layout, text/csv records (what the data generator writes): the
# least scanning that finds each record's ``data``; rows inside it are separated by a literal \n
DATA = re.compile(rb'"mode":"INPUT","data":"([^"]*)","encoding":"CSV"')
BINS = 2048


# ----------------------------------------------------------------------------- children
def _capture_files(root: Path) -> list[Path]:
    return sorted((root / "capture").rglob("*.jsonl"))


def _file_rows(path: Path) -> bytes:
    return b"\n".join(DATA.findall(path.read_bytes())).replace(b"\\n", b"\n")


def _capture_text(root: Path) -> bytes:
    return b"\n".join(_file_rows(path) for path in _capture_files(root))


def baseline_env(root: Path, out: Path) -> dict[str, str]:
    """The analyzer's environment for baselining ``root``'s baseline CSV into ``out``."""
    return {"dataset_format": json.dumps({"csv": {"header": True}}), "dataset_source": str(root / "baseline"),
            "output_path": str(out), "SM_OUTPUT_DIR": str(out / "ml-output")}


def monitoring_env(root: Path, out: Path) -> dict[str, str]:
    """The analyzer's environment for monitoring ``root``'s capture against its baseline, as a
    monitoring execution of endpoint ``bench-ep`` sets it."""
    from localaws.sagemaker.monitor.models import CAPTURE_FORMAT

    base = root / "baseline-out"
    return {
        "dataset_format": json.dumps(CAPTURE_FORMAT), "dataset_source": str(root / "capture"),
        "output_path": str(out), "baseline_constraints": str(base / "constraints.json"),
        "baseline_statistics": str(base / "statistics.json"), "publish_cloudwatch_metrics": "Enabled",
        "sagemaker_endpoint_name": "bench-ep", "sagemaker_monitoring_schedule_name": "bench-schedule",
        "end_time": "2024-05-01T03:00:00Z", "SM_OUTPUT_DIR": str(out / "ml-output"),
    }  # fmt: skip


def child_ours(root: Path) -> dict[str, Any]:
    import runpy

    from localaws.sagemaker.monitor.models import ANALYZER_SCRIPT

    out = root / "ours-out"
    os.environ.update(monitoring_env(root, out))
    sys.path.insert(0, str(ANALYZER_SCRIPT.parent))  # as when run as a script: its folder first (its helpers)
    sys.argv = [str(ANALYZER_SCRIPT)]  # no arguments: its environment-variable mode, as the image runs it
    try:
        runpy.run_path(str(ANALYZER_SCRIPT), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"analyzer exited {exc.code}") from exc
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    flagged = sorted({v["feature_name"] for v in violations
                      if v.get("constraint_check_type") == "baseline_drift_check"})
    return {"flagged": flagged}


def baseline_sketches(root: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """The numeric features of the baseline job's ``statistics.json`` and each one's sketch
    items, sorted (the floors compare the window against these)."""
    import numpy as np

    stats = json.loads((root / "baseline-out" / "statistics.json").read_text())
    features = [f for f in stats["features"] if "numerical_statistics" in f]
    return features, [np.sort(np.concatenate([np.asarray(level, dtype=float) for level in
                                              f["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]]))
                      for f in features]


def child_floor(root: Path) -> dict[str, Any]:
    import io

    import numpy as np

    features, bases = baseline_sketches(root)
    ranges = [(float(b[0]), float(b[-1])) for b in bases]
    counts = np.zeros((len(features), BINS), dtype=np.int64)
    below = np.zeros(len(features), dtype=np.int64)
    n = 0
    for path in _capture_files(root):  # one pass, a file at a time: bins fixed by the baseline's range
        values = np.loadtxt(io.BytesIO(_file_rows(path)), delimiter=",", dtype=np.float64, ndmin=2)
        n += values.shape[0]
        for i, (lo, hi) in enumerate(ranges):
            column = values[:, i]
            below[i] += int(np.count_nonzero(column < lo))
            counts[i] += np.histogram(np.clip(column, lo, hi), bins=BINS, range=(lo, hi))[0]
    flagged, distances = [], {}
    for i, feature in enumerate(features):
        lo, hi = ranges[i]
        edges = np.linspace(lo, hi, BINS + 1)
        current_cdf = np.concatenate([[below[i] / n], np.cumsum(counts[i])[:-1] / n])
        base_cdf = np.searchsorted(bases[i], edges[:-1], side="left") / bases[i].size
        distance = float(np.max(np.abs(current_cdf - base_cdf)))
        m = int(feature["numerical_statistics"]["common"]["num_present"])
        robust = max(0.0, distance - 1.8 * ((n + m) / (n * m)) ** 0.5)
        distances[feature["name"]] = round(distance, 4)
        if robust > 0.1:
            flagged.append(feature["name"])
    return {"flagged": sorted(flagged), "distances": distances, "rows": n}


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
    current = pd.read_csv(io.BytesIO(_capture_text(root)), header=None, names=list(reference.columns))
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    flagged, scores = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value, threshold, method = float(metric["value"]), float(config["threshold"]), str(config.get("method"))
        drifted = value < threshold if "p_value" in method or "K-S" in method or "test" in method.lower() \
            else value >= threshold
        scores[config["column"]] = {"value": round(value, 4), "method": method, "threshold": threshold}
        if drifted:
            flagged.append(config["column"])
    return {"flagged": sorted(flagged), "scores": scores}


CHILDREN = {"ours": child_ours, "floor": child_floor, "evidently": child_evidently}


def _child(kind: str, root: Path, timeout: float) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.drift", "child", kind, str(root)], capture_output=True,
                          text=True, cwd=ROOT, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed: {done.stderr[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def evidently_available() -> str | None:
    """None if evidently can be imported here, else why not."""
    import importlib.util

    if importlib.util.find_spec("evidently") is None:
        return "evidently not installed (pip install -e '.[bench]')"
    return None


# ----------------------------------------------------------------------------- the data
def _capture_line(row: str) -> str:
    return (
        '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"'
        + row
        + '\\n","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8",'
        '"mode":"OUTPUT","data":"0.5","encoding":"CSV"}},"eventMetadata":{"eventId":"'
        + uuid.uuid4().hex
        + '","inferenceTime":"2024-05-01T02:17:49Z"},"eventVersion":"0"}'
    )


CAPTURE_DIR = Path("capture", "bench-ep", "AllTraffic", "2024", "05", "01", "02")


def write_baseline(root: Path, rng: Any, features: int, baseline_rows: int) -> list[str]:
    """A ``baseline_rows`` x ``features`` N(0, 1) CSV at ``root/baseline/baseline.csv``; the names."""
    names = [f"f{i}" for i in range(features)]
    (root / "baseline").mkdir(parents=True, exist_ok=True)
    with (root / "baseline" / "baseline.csv").open("w") as handle:
        handle.write(",".join(names) + "\n")
        handle.write("\n".join(rows_text(rng.normal(size=(baseline_rows, features)))) + "\n")
    return names


def drifted_block(rng: Any, block_rows: int, features: int) -> Any:
    """N(0, 1) rows where f0 has mean +0.5, f1 scale x1.5 and f2 20 % replaced by 1 + Exp(2)."""
    block = rng.normal(size=(block_rows, features))
    if features > 2:
        block[:, 0] += 0.5
        block[:, 1] *= 1.5
        swap = rng.random(block_rows) < 0.2
        block[swap, 2] = 1.0 + rng.exponential(2.0, int(swap.sum()))
    return block


def rows_text(matrix: Any) -> list[str]:
    import io

    import numpy as np

    buffer = io.StringIO()
    np.savetxt(buffer, matrix, fmt="%.4f", delimiter=",")
    return buffer.getvalue().splitlines()


def write_data(root: Path, rows: int, features: int = 20, baseline_rows: int = 200_000, seed: int = 0,
               files: int = 20) -> int:
    """Write a ``baseline_rows`` x ``features`` N(0, 1) baseline CSV (``root/baseline``), then
    ``rows`` captured records in ``files`` capture files (``root/capture/bench-ep/...``) where f0
    has mean +0.5, f1 scale x1.5 and f2 20 % replaced by 1 + Exp(2). Capture rows repeat a
    50k-row block (to generate fast). Returns the capture's size in bytes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    write_baseline(root, rng, features, baseline_rows)
    block_rows = min(rows, 50_000)
    lines = [_capture_line(r) for r in rows_text(drifted_block(rng, block_rows, features))]
    capture_dir = root / CAPTURE_DIR
    capture_dir.mkdir(parents=True, exist_ok=True)
    for index, first, count in file_spans(rows, files):
        reps = [lines[(first + i) % block_rows] for i in range(count)]
        (capture_dir / f"{index:02d}-00-000-{uuid.uuid4()}.jsonl").write_text("\n".join(reps) + "\n")
    return sum(p.stat().st_size for p in capture_dir.iterdir())


def file_spans(rows: int, files: int) -> list[tuple[int, int, int]]:
    """``rows`` records split over at most ``files`` files: (file index, first row, row count)."""
    per_file = -(-rows // files)
    return [(index, first, min(per_file, rows - first))
            for index, first in enumerate(range(0, rows, per_file)) if index < files]


def _analyzer(env: dict[str, str]) -> tuple[float, str]:
    """Run the analyzer as the job runner does (a subprocess); its wall time and stdout."""
    from localaws.sagemaker.monitor.models import ANALYZER_SCRIPT

    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ANALYZER_SCRIPT)], env={**os.environ, **env}, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"analyzer failed: {done.stderr[-2000:]}")
    return seconds, done.stdout


def baseline(root: Path) -> tuple[float, str]:
    """Baseline ``root``'s CSV into ``root/baseline-out`` (what the monitoring reads)."""
    return _analyzer(baseline_env(root, root / "baseline-out"))


def analyzer_bench(rows: int = 1_000_000, features: int = 20, baseline_rows: int = 200_000, seed: int = 0,
                   files: int = 20, keep: str | None = None) -> dict[str, Any]:
    """Time the analyzer alone on :func:`write_data`'s data: baselining, then monitoring.
    Returns the wall times, the analyzer's timing lines, the drift distances and the
    features with violations."""
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="mm-bench-"))
    try:
        capture_bytes = write_data(root, rows, features, baseline_rows, seed, files)
        base_seconds, base_log = baseline(root)
        monitor_out = root / "monitor-out"
        mon_seconds, mon_log = _analyzer(monitoring_env(root, monitor_out))
        violations = json.loads((monitor_out / "constraint_violations.json").read_text())["violations"]
        return {
            "rows": rows,
            "features": features,
            "baseline_rows": baseline_rows,
            "capture_mb": round(capture_bytes / 1e6, 1),
            "baseline_seconds": round(base_seconds, 3),
            "monitoring_seconds": round(mon_seconds, 3),
            "baseline_log": [line for line in base_log.splitlines() if "timings" in line],
            "monitoring_log": [line for line in mon_log.splitlines() if "timings" in line or "read " in line],
            "drift": {
                m[1]: float(m[2])
                for m in re.finditer(r"drift (\S+): ([0-9.]+)", mon_log)
                if m[1] in ("f0", "f1", "f2", "f3")
            },
            "violations": sorted(v["feature_name"] for v in violations),
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- the benchmark
def run(quick: bool = False) -> list[Row]:
    rows = 20_000 if quick else 1_000_000
    baseline_rows = 20_000 if quick else 200_000
    label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        root = Path(tmp)
        progress(f"[drift] generating {label} captured rows x 20 features and baselining")
        write_data(root, rows, 20, baseline_rows, seed=0, files=20)
        baseline(root)
        results = {}
        for kind in ("ours", "floor"):
            progress(f"[drift] {kind}")
            results[kind] = _child(kind, root, timeout=600)
        missing = evidently_available()
        if missing is None and quick:
            missing = "evidently skipped in quick mode (it takes longer than the whole quick run)"
        if missing is None:
            progress("[drift] evidently (slow)")
            try:
                results["evidently"] = _child("evidently", root, timeout=1800)
            except Exception as exc:
                missing = f"evidently failed: {str(exc).splitlines()[-1][:150]}"
    ours, floor = results["ours"], results["floor"]
    ev = results.get("evidently")
    what = f"drift monitoring, {label} rows x 20 features (capture JSONL)"
    detail = {"rows": rows, "baseline_rows": baseline_rows, **{k: v for k, v in results.items()}}
    out = [
        Row("drift.vs_evidently", f"{what}: our analyzer", ours["seconds"], "s", "evidently DataDriftPreset",
            ev["seconds"] if ev else None, ev["seconds"] / ours["seconds"] if ev else None,
            ">= 20x faster than evidently", ev["seconds"] / ours["seconds"] >= 20 if ev else None,
            "ratio = evidently / ours" if ev else str(missing), detail),
        Row("drift.vs_floor", f"{what}: our analyzer", ours["seconds"], "s", "numpy floor (histogram + max CDF)",
            floor["seconds"], ours["seconds"] / floor["seconds"], "within 3x of the floor",
            ours["seconds"] / floor["seconds"] <= 3.0),
        Row("drift.memory", f"{what}: our analyzer peak RSS", ours["peak_mb"], "MB",
            "evidently peak RSS" if ev else "evidently peak RSS (not run)", ev["peak_mb"] if ev else None,
            ours["peak_mb"] / ev["peak_mb"] if ev else None, "below evidently's",
            ours["peak_mb"] < ev["peak_mb"] if ev else None,
            f"floor {floor['peak_mb']:.0f} MB" + ("" if ev else f"; {missing}")),
        Row("drift.flagged", f"{what}: features flagged by ours", len(ours["flagged"]), "count",
            "flagged by evidently" if ev else "flagged by the floor",
            len(ev["flagged"]) if ev else len(floor["flagged"]), None, "the same drifted features flagged",
            (ours["flagged"] == ev["flagged"]) if ev else None,
            f"ours {ours['flagged']}, evidently {ev['flagged'] if ev else 'n/a'}, floor {floor['flagged']}",
            {"baseline_unit": "count"}),
    ]
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["analyzer"]:
        parser = argparse.ArgumentParser(prog="python -m bench.drift analyzer",
                                         description="time the local analyzer on synthetic capture data")
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--features", type=int, default=20)
        parser.add_argument("--baseline-rows", type=int, default=200_000)
        parser.add_argument("--files", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--keep", help="keep the data in this folder")
        args = parser.parse_args(argv[1:])
        result = analyzer_bench(args.rows, args.features, args.baseline_rows, args.seed, args.files, args.keep)
        print(json.dumps(result, indent=2))
        return 0
    if argv[:1] != ["child"] or len(argv) != 3:
        print("usage: python -m bench.drift child ours|floor|evidently ROOT\n"
              "       python -m bench.drift analyzer [--rows N] [--features N] [--baseline-rows N] [--files N]"
              " [--seed N] [--keep DIR]", file=sys.stderr)
        return 2
    started = _STARTED
    result = CHILDREN[argv[1]](Path(argv[2]))
    result.update(seconds=time.perf_counter() - started, peak_mb=peak_mb())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
