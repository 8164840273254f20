"""Load check of a local SageMaker endpoint in server mode (over loopback).

``python -m bench.endpoint_client [--model tiny|churn] [--requests 2000]
[--concurrency 8] [--workers N] [--client light|boto3|both] [--in-process-client]
[--no-baseline]`` starts moto's server with the extensions, deploys a model behind an
endpoint, sends single-row ``text/csv`` invocations and prints, per client, requests/s,
latency percentiles (client-side, per call) and errors, one JSON line each. The baseline,
measured first in the same run with the same clients: a bare HTTP handler answering a
constant (:class:`BareServer`).

Clients: ``light`` is one keep-alive ``http.client`` connection per thread with every
request SigV4-signed by botocore's signer (what a lean SDK does); ``boto3`` is
``invoke_endpoint``, whose own per-call cost caps it at about 660 requests/s on this machine
whatever the server does.

By default the client runs in a separate process, as a real caller would: the server (moto,
werkzeug and this extension) and boto3 would otherwise share one GIL. ``--model tiny`` is an
inline linear model (the platform's own overhead); ``churn`` trains ``models/churn/train.py`` on
``autoloop_cli.datagen`` data (the project's real model, about 5 ms of CPU per prediction).
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
    """Train models/churn/train.py on generated churn data; returns model.tar.gz bytes."""
    from autoloop_cli import publish

    train, model, out = work / "train", work / "model", work / "output"
    for folder in (train, model, out):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SM_CHANNEL_TRAIN=str(train), SM_MODEL_DIR=str(model), SM_OUTPUT_DIR=str(out))
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "autoloop_cli.datagen", "--rows", str(rows), "--out", str(train / "train.csv")],
        check=True, cwd=ROOT, env=env, capture_output=True,
    )  # fmt: skip
    subprocess.run(  # noqa: S603
        [sys.executable, str(publish.model_folders()["churn"].unpack(work / "code") / "train.py"),
         "--label", "churned", "--max-iter", "200"],
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


def _summary(
    latencies: list[float], errors: list[str], seconds: float, requests: int, concurrency: int
) -> dict[str, Any]:
    latencies = sorted(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2) if latencies else 0.0

    return {
        "requests": requests, "concurrency": concurrency, "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "errors": len(errors), "first_errors": errors[:3],
    }  # fmt: skip


def drive(call: Any, requests: int, concurrency: int, setup: Any = None,
           seconds: float | None = None) -> dict[str, Any]:
    """``call(i, state)`` from ``concurrency`` threads until ``requests`` calls are made, or
    ``seconds`` have passed (``state`` from ``setup()`` per thread); client-side latency of
    each; an exception or a returned message is an error."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = None if seconds is None else time.perf_counter() + seconds

    def work() -> None:
        state = setup() if setup is not None else None
        while deadline is None or time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            began = time.perf_counter()
            try:
                problem = call(i, state)
            except Exception as exc:
                problem = repr(exc)[:200]
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(problem)

    began = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(latencies, errors, time.perf_counter() - began, len(latencies), concurrency)


def run_load(
    endpoint_url: str | None,
    name: str,
    body: str,
    requests: int,
    concurrency: int,
    expect: list[str] | None = None,
    bodies: list[str] | None = None,
) -> dict[str, Any]:
    """Send ``requests`` invocations from ``concurrency`` threads through boto3; client-side
    latencies. Request i sends ``bodies[i % n]`` (default: ``body``) and, with ``expect``,
    must get ``expect[i % n]`` back."""
    import boto3
    from botocore.config import Config

    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=os.environ.get("AWS_REGION") or "us-east-1",
        config=Config(max_pool_connections=concurrency, retries={"max_attempts": 0}),
    )
    runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")  # warm the client
    sent = bodies or [body]

    def call(i: int, _: Any) -> str | None:
        answer = runtime.invoke_endpoint(
            EndpointName=name, Body=sent[i % len(sent)], ContentType="text/csv", Accept="text/csv"
        )["Body"].read()
        if expect is not None and answer.decode() != expect[i % len(expect)]:
            return f"request {i}: unexpected answer {answer[:100]!r}"
        return None

    return drive(call, requests, concurrency)


def run_load_light(
    endpoint_url: str,
    name: str,
    body: str,
    requests: int,
    concurrency: int,
    expect: list[str] | None = None,
    bodies: list[str] | None = None,
    *,
    path: str | None = None,
) -> dict[str, Any]:
    """The same load as :func:`run_load` from a lightweight client: one keep-alive
    ``http.client`` connection per thread, each request signed (SigV4, botocore's signer, with
    the environment's credentials) as boto3 would sign it, none of boto3's request pipeline
    (endpoint resolution, parameter validation, serialisation, hooks, retries). The answer is
    checked like boto3 would: HTTP 200, else an error with the service's error code.
    ``path`` overrides the URL path (for the bare-server baseline)."""
    import http.client
    from urllib.parse import quote, urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    credentials = Credentials(
        os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        os.environ.get("AWS_SESSION_TOKEN"),
    )
    signer = SigV4Auth(credentials, "sagemaker", region)
    parts = urlsplit(endpoint_url)
    target = path or f"/endpoints/{quote(name, safe='')}/invocations"
    url = f"{parts.scheme}://{parts.netloc}{target}"
    sent = [b.encode() for b in (bodies or [body])]

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)

    def call(i: int, state: list[http.client.HTTPConnection]) -> str | None:
        payload = sent[i % len(sent)]
        request = AWSRequest(
            method="POST", url=url, data=payload, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        signer.add_auth(request)
        headers = dict(request.headers.items())
        try:
            state[0].request("POST", target, body=payload, headers=headers)
            response = state[0].getresponse()
            answer = response.read()
        except (http.client.HTTPException, OSError):
            state[0].close()  # a dropped keep-alive connection: one retry on a new one
            state[0] = connect()
            state[0].request("POST", target, body=payload, headers=headers)
            response = state[0].getresponse()
            answer = response.read()
        if response.status != 200:  # noqa: PLR2004
            return f"request {i}: HTTP {response.status} {answer[:200]!r}"
        if expect is not None and answer.decode() != expect[i % len(expect)]:
            return f"request {i}: unexpected answer {answer[:100]!r}"
        return None

    warm = connect()
    call(0, [warm])
    warm.close()
    return drive(call, requests, concurrency, setup=lambda: [connect()])


def run_load_in_subprocess(
    endpoint_url: str,
    name: str,
    body: str,
    requests: int,
    concurrency: int,
    timeout: float = 300,
    *,
    client: str = "boto3",
    expect: list[str] | None = None,
    bodies: list[str] | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """:func:`run_load` (``client="boto3"``) or :func:`run_load_light` (``"light"``) in a
    separate Python process (its own GIL)."""
    spec = {"client": client, "url": endpoint_url, "name": name, "body": body, "requests": requests,
            "concurrency": concurrency, "expect": expect, "bodies": bodies, "path": path}  # fmt: skip
    args = [sys.executable, "-m", "bench.endpoint_client", "--client-process", json.dumps(spec)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _client_process(spec: dict[str, Any]) -> dict[str, Any]:
    args = (spec["url"], spec["name"], spec["body"], spec["requests"], spec["concurrency"], spec["expect"],
            spec["bodies"])  # fmt: skip
    if spec["client"] == "light":
        return run_load_light(*args, path=spec.get("path"))
    return run_load(*args)


class BareServer:
    """The baseline: a bare HTTP/1.1 handler on loopback (the standard library's threaded server,
    keep-alive, as the endpoint's fast path is) that reads the request body and answers a
    constant: what a request costs a Python HTTP server before any AWS emulation, routing or
    model."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 5\r\n\r\n14.0\n"  # noqa: N806

        class Constant(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # one write, as the endpoint's fast path does (headers and body in separate
                # segments would stall on Nagle and delayed ACKs)
                self.wfile.write(RESPONSE)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Constant)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client-process"]:
        print(json.dumps(_client_process(json.loads(argv[1]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "churn"), default="tiny")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="model-server processes per variant")
    parser.add_argument("--client", choices=("light", "boto3", "both"), default="both",
                        help="load client: keep-alive http.client + SigV4, boto3, or both (one after the other)")
    parser.add_argument("--in-process-client", action="store_true", help="client threads in the server's process")
    parser.add_argument("--no-fast-path", action="store_true", help="route invocations through moto's dispatch")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-server baseline")
    args = parser.parse_args(argv)

    from localaws import server
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints
    from localaws.sagemaker.endpoints.fleet import default_workers

    clients = ["light", "boto3"] if args.client == "both" else [args.client]
    body = (CHURN_ROW if args.model == "churn" else TINY_ROW) + "\n"

    def load(url: str, name: str, client: str, path: str | None = None) -> dict[str, Any]:
        if args.in_process_client:
            if client == "light":
                return run_load_light(url, name, body, args.requests, args.concurrency, path=path)
            return run_load(url, name, body, args.requests, args.concurrency)
        return run_load_in_subprocess(url, name, body, args.requests, args.concurrency, client=client, path=path)

    results: list[dict[str, Any]] = []
    for var, value in {**server.FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": server.DEFAULT_REGION}.items():
        os.environ.setdefault(var, value)  # clients of the bare server sign like those of moto's
    if not args.no_baseline:  # the same clients against a server that only answers a constant
        bare = BareServer()
        try:
            for client in clients:
                result = load(bare.url, "bare", client, path="/endpoints/bare/invocations")
                results.append({"target": "bare HTTP handler (constant)", "client": client, **result})
        finally:
            bare.stop()
    with tempfile.TemporaryDirectory(prefix="endpoint-bench-") as scratch:
        os.environ.setdefault("AUTOLOOP_LOCAL_HOME", str(Path(scratch) / "home"))
        sagemaker_endpoints.configure(workers_per_variant=args.workers, server_fast_path=not args.no_fast_path)
        archive = churn_model(Path(scratch)) if args.model == "churn" else tiny_model([1.0, 2.0, 3.0])
        aws = server.start()
        try:
            deploy(archive, "bench-endpoint")
            status = sagemaker_endpoints.wait_for_endpoint("bench-endpoint", 120)
            if status != "InService":
                print(f"endpoint is {status}", file=sys.stderr)
                return 1
            for client in clients:
                result = load(aws.endpoint_url, "bench-endpoint", client)
                results.append({"target": f"local endpoint ({args.model} model)", "client": client, **result})
        finally:
            sagemaker_endpoints.stop_all()
            aws.stop()
    common = {"workers": args.workers or default_workers(), "fast_path": not args.no_fast_path,
              "client_process": "in-process" if args.in_process_client else "separate process"}  # fmt: skip
    for result in results:
        result.update(common)
        print(json.dumps(result))
    baselines = {r["client"]: r for r in results if r["target"].startswith("bare")}
    for result in results:
        base = baselines.get(result["client"])
        if base is not None and not result["target"].startswith("bare"):
            print(
                f"{result['client']:>5} client: endpoint {result['rps']} req/s (p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms, errors {result['errors']}); bare handler {base['rps']} req/s "
                f"(p99 {base['p99_ms']} ms): {result['rps'] / base['rps']:.2f}x",
                file=sys.stderr,
            )
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
