"""Load test of a local endpoint in server mode (issue 6, item 6): 10,000 single-row invocations
at concurrency 8, every one answered with the right prediction, none failed, every one captured;
the suite reports p50, p99 and requests/s.

The client runs in its own process (a caller has its own interpreter) and is the lightweight
one from :mod:`bench.endpoint_client`: a keep-alive ``http.client`` connection per
thread, each request SigV4-signed by botocore's signer. boto3 itself tops out near 660
requests/s on this machine; the server is what is under test. Request i sends row
``i % 100, 1, 0`` to a linear model ``x + 2y + 3z``, so each answer is checked against its own
request (an answer routed to the wrong caller would not match).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.endpoint_client import deploy, run_load_in_subprocess, tiny_model
from localaws import server
from localaws.clients import client
from localaws.sagemaker.endpoints import service as sagemaker_endpoints

REQUESTS = 10_000
CONCURRENCY = 8
BUCKET = "load-test"
ROWS = 100


def test_ten_thousand_invocations_at_concurrency_8(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Any,
) -> None:
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    aws = server.start()
    try:
        capture = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
        deploy(tiny_model([1.0, 2.0, 3.0]), "load", bucket=BUCKET, config_extra={"DataCaptureConfig": capture})
        assert sagemaker_endpoints.wait_for_endpoint("load", 60) == "InService"

        bodies = [f"{i},1,0\n" for i in range(ROWS)]
        expect = [f"{float(i + 2)}\n" for i in range(ROWS)]
        result = run_load_in_subprocess(
            aws.endpoint_url, "load", bodies[0], REQUESTS, CONCURRENCY, client="light", expect=expect, bodies=bodies
        )
        summary = (
            f"{result['requests']} invocations at concurrency {result['concurrency']} in {result['seconds']} s: "
            f"{result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"errors {result['errors']}"
        )
        record_property("figures", f"endpoint load test: {summary}")  # printed at the end of the run
        for key in ("rps", "p50_ms", "p99_ms", "errors"):
            record_property(key, result[key])

        assert result["requests"] == REQUESTS
        assert result["errors"] == 0, result["first_errors"]  # every answer is 200 and its row's prediction
        stats = sagemaker_endpoints.invocation_stats("load")
        assert stats["ok"] == REQUESTS + 1 and stats["failed"] == 0  # plus the client's warm-up call

        sagemaker_endpoints.flush_capture("load")
        s3 = client("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="capture/load/")
            for item in page.get("Contents", [])
        ]
        records = [
            json.loads(line)
            for key in keys
            for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()
        ]
        assert len(records) == REQUESTS + 1
        pairs = {
            (r["captureData"]["endpointInput"]["data"], r["captureData"]["endpointOutput"]["data"]) for r in records
        }
        assert pairs == set(zip(bodies, expect, strict=True))  # each input captured with its own output
    finally:
        sagemaker_endpoints.stop_all()
        aws.stop()
    # No time bound: the figures above are reported, not judged (bench/endpoint.py measures
    # throughput and p99 against its goal); pytest-timeout catches a hang.
