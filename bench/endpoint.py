"""A local SageMaker endpoint under single-row invocations over loopback, against a bare handler.

Both servers run in this process (the local AWS: moto's server with the endpoint extension,
answering ``POST /endpoints/<name>/invocations`` on its fast path and forwarding to the
model-server workers; the baseline: a ``ThreadingHTTPServer`` whose handler reads the body
and returns a constant). The same client drives both, in a separate process (its own GIL):
8 threads, each with one keep-alive ``http.client`` connection, sending the same single-row
``text/csv`` body, bounded by a request count and a time limit. The client sends a fixed
SigV4-shaped ``Authorization`` header (the local AWS reads the service and region from its
scope and, like moto, does not check signatures) and does not sign: signing is the caller's
CPU, and a boto3 client tops out near 500 requests/s on these machines, below the goal, so
it would measure itself. What the client alone can do is the baseline line: it is the same
client against a server that does nothing.

Model: the inline linear model of ``bench.endpoint_client`` (the platform's own
cost; the baseline returns a constant too). Full mode adds context lines: the project's
churn model (scikit-learn, a few ms of CPU per row) with the same client, and the tiny model
through boto3 (``sagemaker_endpoint_bench.run_load_in_subprocess``), as an SDK caller sees it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, progress
from bench.endpoint_client import drive

CONCURRENCY = 8
AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0")


class _Bare(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"0.5\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class BareServer:
    """The baseline: a constant answer, on 127.0.0.1, in a daemon thread of this process."""

    def __enter__(self) -> BareServer:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Bare)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- the client
def load(port: int, path: str, body: str, requests: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """Send up to ``requests`` POSTs (or for at most ``seconds``) from ``concurrency`` threads."""
    payload = body.encode()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv", "Authorization": AUTH,
               "X-Amz-Date": "20240101T000000Z", "Content-Length": str(len(payload))}

    def connect() -> list[http.client.HTTPConnection]:
        return [http.client.HTTPConnection("127.0.0.1", port, timeout=30)]

    def call(_: int, connection: list[http.client.HTTPConnection]) -> str | None:
        try:
            connection[0].request("POST", path, payload, headers)
            response = connection[0].getresponse()
            data = response.read()
        except Exception:
            connection[0].close()
            connection[0] = connect()[0]  # a fresh connection for the next request
            raise
        return None if response.status == 200 else f"{response.status}: {data[:100]!r}"

    # one request first, so that connection set-up and the first model call are not timed
    warm = connect()[0]
    warm.request("POST", path, payload, headers)
    warm.getresponse().read()
    warm.close()
    return drive(call, requests, concurrency, setup=connect, seconds=seconds)


def _client(port: int, path: str, body: str, requests: int, seconds: float) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.endpoint", "client", str(port), path, body, str(requests),
            str(CONCURRENCY), str(seconds)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- the benchmark
def run(quick: bool = False) -> list[Row]:
    from bench import endpoint_client as seb
    from localaws import server
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints

    requests, seconds = (1500, 10.0) if quick else (10_000, 30.0)
    body = seb.TINY_ROW + "\n"
    with BareServer() as bare:
        progress(f"[endpoint] bare handler, {requests} requests at concurrency {CONCURRENCY}")
        base = _client(bare.port, "/", body, requests, seconds)
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as scratch:
        saved = os.environ.get("AUTOLOOP_LOCAL_HOME")
        os.environ["AUTOLOOP_LOCAL_HOME"] = str(Path(scratch) / "home")
        aws = server.start()
        try:
            seb.deploy(seb.tiny_model([1.0, 2.0, 3.0]), "bench-tiny")
            if not quick:
                seb.deploy(seb.churn_model(Path(scratch) / "churn"), "bench-churn")
            for name in ["bench-tiny"] + ([] if quick else ["bench-churn"]):
                status = sagemaker_endpoints.wait_for_endpoint(name, 120)
                if status != "InService":
                    raise RuntimeError(f"endpoint {name} is {status}")
            progress("[endpoint] local endpoint (tiny model)")
            ours = _client(aws.port, "/endpoints/bench-tiny/invocations", body, requests, seconds)
            if not quick:
                progress("[endpoint] local endpoint (churn model)")
                extra["churn"] = _client(aws.port, "/endpoints/bench-churn/invocations", seb.CHURN_ROW + "\n",
                                         requests // 2, seconds)
                progress("[endpoint] local endpoint through boto3 (tiny model)")
                extra["boto3"] = seb.run_load_in_subprocess(aws.endpoint_url, "bench-tiny", body, 3000, CONCURRENCY)
        finally:
            sagemaker_endpoints.stop_all()
            aws.stop()
            if saved is None:
                os.environ.pop("AUTOLOOP_LOCAL_HOME", None)
            else:
                os.environ["AUTOLOOP_LOCAL_HOME"] = saved
    what = f"local endpoint, single-row invocations, concurrency {CONCURRENCY}"
    met = ours["rps"] >= 1000 and ours["p99_ms"] < 20 and ours["errors"] == 0
    detail = {"ours": ours, "bare": base, **extra}
    rows = [
        Row("endpoint.rps", f"{what}: throughput (tiny model)", ours["rps"], "req/s", "bare handler, same client",
            base["rps"], ours["rps"] / base["rps"], ">= 1,000 req/s; p99 < 20 ms; 0 errors", met,
            f"{ours['requests']} requests", detail),
        Row("endpoint.p99", f"{what}: p99 latency (tiny model)", ours["p99_ms"], "ms", "bare handler p99",
            base["p99_ms"], ours["p99_ms"] / base["p99_ms"] if base["p99_ms"] else None, "< 20 ms",
            ours["p99_ms"] < 20, f"p50 {ours['p50_ms']:.1f} ms vs {base['p50_ms']:.1f} ms"),
        Row("endpoint.errors", f"{what}: errors", ours["errors"], "count", "bare handler errors", base["errors"],
            None, "0", ours["errors"] == 0, "; ".join(ours["first_errors"])[:150]),
    ]
    if "churn" in extra:
        churn = extra["churn"]
        rows.append(Row("endpoint.churn_rps", f"{what}: throughput, churn model (context)", churn["rps"], "req/s",
                        "bare handler, same client", base["rps"], churn["rps"] / base["rps"], "-", None,
                        f"p99 {churn['p99_ms']:.1f} ms, {churn['errors']} errors"))
    if "boto3" in extra:
        b3 = extra["boto3"]
        rows.append(Row("endpoint.boto3_rps", f"{what}: throughput via boto3 client (context)", b3["rps"], "req/s",
                        "the http.client figure", ours["rps"], b3["rps"] / ours["rps"], "-", None,
                        f"p99 {b3['p99_ms']:.1f} ms, {b3['errors']} errors"))
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] != ["client"] or len(argv) != 7:
        print("usage: python -m bench.endpoint client PORT PATH BODY REQUESTS CONCURRENCY SECONDS", file=sys.stderr)
        return 2
    port, path, body, requests, concurrency, seconds = argv[1:]
    print(json.dumps(load(int(port), path, body, int(requests), int(concurrency), float(seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
