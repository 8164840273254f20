"""The local batch transform: rows per second against model.predict in-process, and peak memory.

Floor, in the same run: the trained model's own ``pipeline.predict_proba`` on the same rows,
already parsed into one DataFrame, in one call, in a fresh process - no CSV, no mini-batches,
no process boundary: the fastest those rows can be scored on this machine.

The local transform runs the job exactly as Autoloop configures it for the churn model
(``autoloop.batch.transform_request``: SplitType Line, MultiRecord, MaxPayloadInMB 6,
JoinSource Input with its filters, text/csv) over the same rows, headerless as the prepare
step writes them: download from S3, mini-batches to the model worker (``ml/inference.py``
behind the container contract), join, upload. Its wall time includes all of that.

Memory: the runner (the platform side of :mod:`localaws.sagemaker.jobs.transform`) runs in its own
process against a local AWS server held by this process, and reports its peak RSS and its
model worker's (the container stand-in's), at two input sizes. The server's own memory is not
counted: moto keeps S3 objects in memory, which is the local S3's cost, not the transform's.
The floor's peak RSS, which holds every row at once, is measured at the same two sizes.

    python -m bench transform            1M rows (and 100k for memory)
    python -m bench --quick transform    50k rows (and 10k)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from autoloop_cli import publish
from bench.common import Row, progress

ROOT = Path(__file__).resolve().parents[1]
ML = ROOT / "ml"
MB = 1024
FLOOR_GOAL = 0.5
FLAT = 1.25  # "flat": the peak at 10x the rows within 25 % of the peak at 1x


def _peak_mb(pid: int | str = "self") -> float:
    """A process's peak RSS (VmHWM). Not ``ru_maxrss``: on Linux a child's starts at its
    parent's RSS at fork, which here would count the local S3's objects."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / MB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB if pid == "self" else 0.0


class _WorkerPeak:
    """Samples the model worker's VmHWM while the job runs (it is a monotonic high-water mark)."""

    def __init__(self, job: Any) -> None:
        import threading

        self.job, self.peak, self._stop = job, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            child = self.job._child
            if child is not None:
                self.peak = max(self.peak, _peak_mb(child.proc.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def train_model(work: Path, rows: int = 3000, seed: int = 5) -> Path:
    """model.tar.gz as the training job writes it (model.joblib + code/inference.py)."""
    from autoloop_cli import datagen

    (work / "raw").mkdir(parents=True)
    datagen.write_csv(work / "raw" / "data.csv", rows, seed=seed)
    split = work / "split"
    env = {**os.environ, "SM_OUTPUT_DIR": str(work / "output"), "SM_MODEL_DIR": str(work / "model"),
           "SM_CHANNEL_TRAIN": str(split / "train"), "SM_CHANNEL_VALIDATION": str(split / "validation")}
    churn = publish.model_folders()["churn"]
    subprocess.run([sys.executable, ML / "preprocess.py", "--input-dir", work / "raw", "--config",
                    churn.path / "config.json", "--output-dir", work / "split", "--seed", "42"],
                   check=True, env=env, capture_output=True)
    code = churn.unpack(work / "code")
    subprocess.run([sys.executable, code / "train.py", "--label", "churned", "-C", "1.0", "--max-iter", "500"],
                   check=True, env=env, capture_output=True)
    archive = work / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(work / "model", arcname=".")
    return work / "model"


def transform_input(path: Path, rows: int, seed: int) -> Path:
    """The prepare step's output for ``rows`` generated customers: features only, no header."""
    from autoloop_cli import datagen

    raw = path.with_suffix(".raw.csv")
    datagen.write_csv(raw, rows, seed=seed)
    with raw.open() as source, path.open("w") as out:
        next(source)
        for line in source:
            out.write(line.split(",", 1)[1])  # drop the label (first column)
    raw.unlink()
    return path


# ----------------------------------------------------------------------------- child processes
def child_floor(model_dir: str, data: str) -> dict[str, Any]:
    import joblib
    import pandas as pd

    model = joblib.load(Path(model_dir) / "model.joblib")
    features = list(model["features"])
    started = time.perf_counter()
    frame = pd.read_csv(data, header=None, names=features)
    parsed = time.perf_counter()
    proba = model["pipeline"].predict_proba(frame[features])[:, 1]
    done = time.perf_counter()
    return {"rows": len(proba), "parse_seconds": parsed - started, "predict_seconds": done - parsed,
            "rss_mb": _peak_mb()}


def child_transform(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the local transform runner in this process (against the server in the parent)."""
    from localaws.sagemaker.jobs.runner import Job
    from localaws.sagemaker.jobs.transform import run_transform
    from localaws.sagemaker.sandbox import fresh_dir

    request = spec["request"]
    obj = SimpleNamespace(
        model_name=request["ModelName"], transform_input=request["TransformInput"],
        transform_output=request["TransformOutput"], data_processing=request.get("DataProcessing"),
        model_client_config=request.get("ModelClientConfig"), batch_strategy=request["BatchStrategy"],
        max_payload_in_mb=request["MaxPayloadInMB"], environment=request.get("Environment"),
    )
    job = Job(kind="transform", name=request["TransformJobName"], obj=obj, backend=None)
    job.sandbox = fresh_dir(Path(spec["sandbox"]))
    worker = _WorkerPeak(job)
    started = time.perf_counter()
    run_transform(job)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "compute_seconds": job.compute_seconds, "rss_platform_mb": _peak_mb(),
            "rss_worker_mb": worker.stop()}


def _child(kind: str, payload: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "bench.transform", kind, json.dumps(payload)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- the benchmark
def _request(bucket: str, size: int, model_name: str, payload_mb: int) -> dict[str, Any]:
    from autoloop import batch
    from autoloop.config import parse_model_config
    from autoloop.jobs import JobContext

    config = parse_model_config((ML / "models" / "churn.json").read_bytes(), "churn.json")
    cols = batch.columns(config)
    run = f"bench-{size}"
    plan = batch.BatchPlan(action="score", reason="bench", model="churn", month="2026-10", run_id=run,
                           model_name=model_name, input_filter=cols.input_filter, output_filter=cols.output_filter)
    ctx = JobContext(run_id=run, model="churn", artifacts_bucket=bucket, role_arn="arn:aws:iam::123456789012:role/x",
                     image_uri="img", instance_type="ml.m5.large", max_runtime_seconds=3600)
    return batch.transform_request(ctx, plan, f"s3://{bucket}/input/{size}", payload_mb)


def run(quick: bool = False) -> list[Row]:
    from localaws import server
    from localaws.clients import client

    progress("[transform] training a model, writing input")
    # Quick mode uses 1 MB mini-batches so that the larger size spans several, as 100k and 1M
    # rows do at Autoloop's default of 6 MB (about 60 bytes a row: 100k rows is one mini-batch).
    small, large, payload_mb = (10_000, 50_000, 1) if quick else (100_000, 1_000_000, 6)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = train_model(work / "train", rows=1000 if quick else 3000)
        data = {n: transform_input(work / f"input-{n}.csv", n, seed=17) for n in (small, large)}
        floors = {n: _child("floor", {"model_dir": str(model_dir), "data": str(p)}) for n, p in data.items()}

        progress("[transform] floor done; local transform runs")
        local = server.start()
        try:
            s3, sm = client("s3"), client("sagemaker")
            s3.create_bucket(Bucket="bench")
            s3.upload_file(str(work / "train" / "model.tar.gz"), "bench", "model/model.tar.gz")
            from autoloop.registry import INFERENCE_ENV

            sm.create_model(ModelName="bench-churn", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://bench/model/model.tar.gz",
                                              "Environment": INFERENCE_ENV})
            runs = {}
            for n, path in data.items():
                s3.upload_file(str(path), "bench", f"input/{n}/part-00000.csv")
                spec = {"request": _request("bench", n, "bench-churn", payload_mb),
                        "sandbox": str(work / f"sandbox-{n}")}
                runs[n] = _child("transform", spec, env=server.client_environment(local.endpoint_url, local.port))
                out = s3.get_object(Bucket="bench", Key=f"runs/churn/bench-{n}/transform/part-00000.csv.out")
                written = out["Body"].read().count(b"\n")
                if written != n:
                    raise RuntimeError(f"the transform wrote {written} rows for {n}")
        finally:
            local.stop()

    floor, transform = floors[large], runs[large]
    floor_rate = floor["rows"] / floor["predict_seconds"]
    rate = large / transform["seconds"]
    label = f"{large // 1000}k" if large < 1_000_000 else f"{large // 1_000_000}M"
    small_label = f"{small // 1000}k"
    platform_growth = transform["rss_platform_mb"] / runs[small]["rss_platform_mb"]
    worker_growth = transform["rss_worker_mb"] / runs[small]["rss_worker_mb"]
    detail = {"floor": floors, "transform": runs, "payload_mb": payload_mb, "baseline_unit": "rows/s"}
    return [
        Row("transform.throughput", f"local batch transform, {label} rows: throughput", rate, "rows/s",
            "model.predict in-process (floor)", floor_rate, rate / floor_rate, ">= 0.5x the floor",
            rate / floor_rate >= FLOOR_GOAL, f"worker busy {transform['compute_seconds']:.1f} s of "
            f"{transform['seconds']:.1f} s", detail),
        Row("transform.floor_with_parse", f"local batch transform, {label} rows: floor incl. CSV parse (context)",
            floor["rows"] / (floor["parse_seconds"] + floor["predict_seconds"]), "rows/s", "floor", floor_rate,
            None, "-", None),
        Row("transform.rss_platform", f"local batch transform: platform peak RSS at {label} rows",
            transform["rss_platform_mb"], "MB", f"at {small_label} rows", runs[small]["rss_platform_mb"],
            platform_growth, f"flat from {small_label} to {label} (<= {FLAT:.2f}x)", platform_growth <= FLAT),
        Row("transform.rss_worker", f"local batch transform: model worker peak RSS at {label} rows",
            transform["rss_worker_mb"], "MB", f"at {small_label} rows", runs[small]["rss_worker_mb"],
            worker_growth, f"flat from {small_label} to {label} (<= {FLAT:.2f}x)", worker_growth <= FLAT),
        Row("transform.rss_inprocess", f"in-process predict peak RSS at {label} rows (contrast)", floor["rss_mb"],
            "MB", f"at {small_label} rows", floors[small]["rss_mb"], floor["rss_mb"] / floors[small]["rss_mb"],
            "-", None, "grows with the rows it holds"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transform")
    parser.add_argument("kind", choices=["floor", "transform"])
    parser.add_argument("payload")
    args = parser.parse_args(argv)
    payload = json.loads(args.payload)
    if args.kind == "floor":
        result = child_floor(payload["model_dir"], payload["data"])
    else:
        result = child_transform(payload)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
