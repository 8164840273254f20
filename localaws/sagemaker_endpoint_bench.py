"""Load check of a local SageMaker endpoint in server mode (boto3 over loopback).

``python -m localaws.sagemaker_endpoint_bench [--model tiny|churn] [--requests 2000]
[--concurrency 8] [--workers N] [--in-process-client]`` starts moto's server with the
extensions, deploys a model behind an endpoint, sends single-row ``text/csv`` invocations
through boto3 and prints requests/s and latency percentiles (client-side, per call).

By default the client runs in a separate process, as a real caller would: the server (moto,
werkzeug and this extension) and boto3 would otherwise share one GIL. ``--model tiny`` is an
inline linear model (the platform's own overhead); ``churn`` trains ``ml/train.py`` on
``localaws.datagen`` data (the project's real model, about 5 ms of CPU per prediction).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TINY_INFERENCE = textwrap.dedent(
    '''
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as fh:
            return json.load(fh)

    def input_fn(data, content_type):
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        if content_type.startswith("application/json"):
            return json.loads(data)["instances"]
        return [[float(x) for x in line.split(",")] for line in data.splitlines() if line.strip()]

    def predict_fn(rows, model):
        for row in rows:
            if len(row) != len(model["w"]):
                raise ValueError(f"expected {len(model['w'])} values per row, got {len(row)}")
        return [sum(w * x for w, x in zip(model["w"], row)) + model.get("b", 0) for row in rows]

    def output_fn(prediction, accept):
        if accept.startswith("text/csv"):
            return "".join(f"{p}\\n" for p in prediction)
        return json.dumps({"predictions": prediction})
    '''
)
CHURN_ROW = "59,48.46,0,16.9,29,one-year,bank_transfer,north"
TINY_ROW = "1,2,3"


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tiny_model(weights: list[float], bias: float = 0.0) -> bytes:
    return tar_gz(
        {
            "model.json": json.dumps({"w": weights, "b": bias}).encode(),
            "code/inference.py": TINY_INFERENCE.encode(),
        }
    )


def churn_model(work: Path, rows: int = 600) -> bytes:
    """Train ml/train.py on generated churn data; returns model.tar.gz bytes."""
    train, model, out = work / "train", work / "model", work / "output"
    for folder in (train, model, out):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SM_CHANNEL_TRAIN=str(train), SM_MODEL_DIR=str(model), SM_OUTPUT_DIR=str(out))
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "localaws.datagen", "--rows", str(rows), "--out", str(train / "train.csv")],
        check=True, cwd=ROOT, env=env, capture_output=True,
    )  # fmt: skip
    subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "ml" / "train.py"), "--label", "churned", "--max-iter", "200"],
        check=True, cwd=ROOT, env=env, capture_output=True,
    )  # fmt: skip
    return tar_gz({p.relative_to(model).as_posix(): p.read_bytes() for p in sorted(model.rglob("*")) if p.is_file()})


def deploy(
    archive: bytes, name: str, *, bucket: str = "bench-models", config_extra: dict[str, Any] | None = None
) -> None:
    """Upload the model, create model, config and endpoint (clients from the environment)."""
    from localaws.clients import client

    s3, sm = client("s3"), client("sagemaker")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=f"{name}/model.tar.gz", Body=archive)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
        PrimaryContainer={
            "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
            "ModelDataUrl": f"s3://{bucket}/{name}/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}
        ],
        **(config_extra or {}),
    )  # fmt: skip
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def run_load(endpoint_url: str | None, name: str, body: str, requests: int, concurrency: int) -> dict[str, Any]:
    """Send ``requests`` invocations from ``concurrency`` threads; client-side latencies."""
    import boto3
    from botocore.config import Config

    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=os.environ.get("AWS_REGION") or "us-east-1",
        config=Config(max_pool_connections=concurrency, retries={"max_attempts": 0}),
    )
    runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")  # warm the client
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            began = time.perf_counter()
            try:
                runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", Accept="text/csv")
            except Exception as exc:
                with lock:
                    errors.append(repr(exc)[:200])
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)

    began = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2) if latencies else 0.0

    return {
        "requests": requests, "concurrency": concurrency, "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "errors": len(errors), "first_errors": errors[:3],
    }  # fmt: skip


def run_load_in_subprocess(
    endpoint_url: str, name: str, body: str, requests: int, concurrency: int, timeout: float = 300
) -> dict[str, Any]:
    """:func:`run_load` in a separate Python process (its own GIL)."""
    args = [sys.executable, "-m", "localaws.sagemaker_endpoint_bench", "--client", endpoint_url, name, body,
            str(requests), str(concurrency)]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client"]:
        url, name, body, requests, concurrency = argv[1:6]
        print(json.dumps(run_load(url, name, body, int(requests), int(concurrency))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "churn"), default="tiny")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="model-server processes per variant")
    parser.add_argument("--in-process-client", action="store_true", help="boto3 threads in the server's process")
    parser.add_argument("--no-fast-path", action="store_true", help="route invocations through moto's dispatch")
    args = parser.parse_args(argv)

    from localaws import sagemaker_endpoints, server
    from localaws.sagemaker_endpoint_fleet import default_workers

    with tempfile.TemporaryDirectory(prefix="endpoint-bench-") as scratch:
        os.environ.setdefault("AUTOLOOP_LOCAL_HOME", str(Path(scratch) / "home"))
        sagemaker_endpoints.configure(workers_per_variant=args.workers, server_fast_path=not args.no_fast_path)
        archive = churn_model(Path(scratch)) if args.model == "churn" else tiny_model([1.0, 2.0, 3.0])
        body = (CHURN_ROW if args.model == "churn" else TINY_ROW) + "\n"
        aws = server.start()
        try:
            deploy(archive, "bench-endpoint")
            status = sagemaker_endpoints.wait_for_endpoint("bench-endpoint", 120)
            if status != "InService":
                print(f"endpoint is {status}", file=sys.stderr)
                return 1
            if args.in_process_client:
                result = run_load(aws.endpoint_url, "bench-endpoint", body, args.requests, args.concurrency)
            else:
                result = run_load_in_subprocess(
                    aws.endpoint_url, "bench-endpoint", body, args.requests, args.concurrency
                )
            result.update(
                model=args.model,
                workers=args.workers or default_workers(),
                client="in-process" if args.in_process_client else "separate process",
                fast_path=not args.no_fast_path,
            )
            print(json.dumps(result))
        finally:
            sagemaker_endpoints.stop_all()
            aws.stop()
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
