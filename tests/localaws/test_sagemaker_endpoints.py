"""localaws.sagemaker.endpoints: SageMaker endpoints that really serve, on top of moto.

Most tests run in-process (``server.in_process()``: ``moto.mock_aws`` with every extension)
with tiny inline inference modules, which load in well under a second; one serves the
project's real churn model (trained by ``models/churn/train.py``), and one load-checks server mode.
Every wait is bounded. Deployment waits run at a time scale of 0.01 or so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.endpoint_client import (
    TINY_INFERENCE,
    churn_model,
    deploy,
    run_load_in_subprocess,
    tar_gz,
)
from localaws import server
from localaws.clients import client
from localaws.sagemaker.endpoints import service as sagemaker_endpoints
from localaws.sagemaker.endpoints.plan import traffic_plan
from localaws.sagemaker.endpoints.runtime import event_status
from tests.localaws.conftest import sagemaker_in_process

BUCKET = "endpoint-tests"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
WAIT = 30.0
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

SLOW_LOAD = TINY_INFERENCE + (
    "\nimport time\n_load = model_fn\n\n"
    "def model_fn(model_dir):\n    time.sleep(1.0)\n    return _load(model_dir)\n"
)
BROKEN_LOAD = "def model_fn(model_dir):\n    raise ValueError('cannot load the weights: checksum mismatch')\n"
DIES_ON_NEGATIVE = TINY_INFERENCE + (
    "\n_predict = predict_fn\n\n"
    "def predict_fn(rows, model):\n"
    "    if rows and rows[0][0] < 0:\n        os._exit(3)\n"
    "    return _predict(rows, model)\n"
)


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with sagemaker_in_process(tmp_path / "home", BUCKET, monkeypatch) as found:
        yield found


@pytest.fixture(scope="module")
def churn_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """model.tar.gz of the project's churn model: models/churn/train.py on autoloop_cli.datagen rows."""
    return churn_model(tmp_path_factory.mktemp("churn"))


def model_archive(code: str = TINY_INFERENCE, weights: tuple[float, ...] = (1.0, 2.0, 3.0), bias: float = 0.0) -> bytes:
    return tar_gz(
        {
            "model.json": json.dumps({"w": list(weights), "b": bias}).encode(),
            "code/inference.py": code.encode(),
        }
    )


def put_model(aws: dict[str, Any], name: str, archive: bytes) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=archive)
    aws["sm"].create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        },
    )


def variant(model: str, name: str = "AllTraffic", weight: float = 1.0, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"VariantName": name, "ModelName": model, "InitialVariantWeight": weight}
    if "ServerlessConfig" not in extra:
        spec.update(InitialInstanceCount=1, InstanceType="ml.m5.large")
    spec.update(extra)
    return spec


def make_config(
    aws: dict[str, Any], name: str, *variants: dict[str, Any], capture: dict[str, Any] | None = None
) -> str:
    params: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": list(variants)}
    if capture is not None:
        params["DataCaptureConfig"] = capture
    aws["sm"].create_endpoint_config(**params)
    return name


def capture_config(
    percentage: int = 100, modes: tuple[str, ...] = ("Input", "Output"), prefix: str = "capture", bucket: str = BUCKET
) -> dict[str, Any]:
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": percentage,
        "DestinationS3Uri": f"s3://{bucket}/{prefix}",
        "CaptureOptions": [{"CaptureMode": m} for m in modes],
    }


def serve(aws: dict[str, Any], name: str, config: str, status: str = "InService") -> dict[str, Any]:
    aws["sm"].create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert sagemaker_endpoints.wait_for_endpoint(name, WAIT) == status
    described = aws["sm"].describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == status, described.get("FailureReason")
    return described


def call(
    aws: dict[str, Any], name: str, body: str | bytes, content_type: str = "text/csv", accept: str = "text/csv",
    **extra: Any,
) -> str:
    response = aws["rt"].invoke_endpoint(
        EndpointName=name, Body=body, ContentType=content_type, Accept=accept, **extra
    )
    return str(response["Body"].read().decode())


def keys(aws: dict[str, Any], prefix: str) -> list[str]:
    listed = aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def records(aws: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    out = []
    for key in keys(aws, prefix):
        body = aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        out += [json.loads(line) for line in body.splitlines() if line]
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def error_of(exc: ClientError) -> tuple[str, str]:
    return exc.response["Error"]["Code"], exc.response["Error"]["Message"]


def update(aws: dict[str, Any], name: str, config: str, **deployment: Any) -> None:
    params: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
    if deployment:
        params["DeploymentConfig"] = deployment
    aws["sm"].update_endpoint(**params)


# --- serving ---------------------------------------------------------------------------------------

RISKY = "2,110.0,6,2.0,25,month-to-month,electronic_check,north"
SAFE = "70,25.0,0,30.0,70,two-year,credit_card,east"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age", "contract",
            "payment_method", "region"]  # fmt: skip


def test_real_churn_model_serves_csv_and_json(aws: dict[str, Any], churn_archive: bytes) -> None:
    put_model(aws, "churn-v1", churn_archive)
    make_config(aws, "churn-v1", variant("churn-v1"))
    described = serve(aws, "churn", "churn-v1")
    assert described["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1

    response = aws["rt"].invoke_endpoint(
        EndpointName="churn", Body=f"{RISKY}\n{SAFE}\n", ContentType="text/csv", Accept="text/csv",
        InferenceId="order-1",
    )  # fmt: skip
    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    risky, safe = (float(line) for line in response["Body"].read().decode().splitlines())
    assert 0.0 < safe < risky < 1.0
    assert risky - safe > 0.3  # month-to-month, six support calls vs two-year, none

    as_json = json.loads(call(aws, "churn", json.dumps({"instances": [RISKY.split(","), SAFE.split(",")]}),
                              "application/json", "application/json"))  # fmt: skip
    assert as_json["predictions"] == pytest.approx([risky, safe])
    keyed = [dict(zip(FEATURES, RISKY.split(","), strict=True))]
    assert json.loads(call(aws, "churn", json.dumps({"instances": keyed}), "application/json", "*/*")) == {
        "predictions": pytest.approx([risky])
    }

    with pytest.raises(ClientError) as bad:
        call(aws, "churn", "1,2,3\n")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    code, message = error_of(bad.value)
    assert code == "ModelError"
    assert "Received server error (500) from primary" in message
    assert "text/csv row 1 has 3 columns, expected 8" in message
    assert bad.value.response["OriginalStatusCode"] == 500
    assert "text/csv row 1 has 3 columns" in bad.value.response["OriginalMessage"]
    assert bad.value.response["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/churn")

    stats = sagemaker_endpoints.invocation_stats("churn")
    assert (stats["ok"], stats["failed"]) == (3, 1)
    assert stats["variants"]["AllTraffic"] == {"ok": 3, "failed": 1}

    assert sagemaker_endpoints.flush_metrics("churn") > 0
    dims = [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    now = dt.datetime.now(dt.UTC)

    def stat(metric: str, statistic: str) -> list[dict[str, Any]]:
        return aws["cw"].get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims, StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=[statistic],
        )["Datapoints"]  # fmt: skip

    assert sum(p["Sum"] for p in stat("Invocations", "Sum")) == 4
    assert sum(p["Sum"] for p in stat("Invocation5XXErrors", "Sum")) == 1
    assert sum(p["Sum"] for p in stat("Invocation4XXErrors", "Sum")) == 0
    latency = stat("ModelLatency", "Maximum")
    assert latency and all(p["Unit"] == "Microseconds" for p in latency)
    assert 100 < max(p["Maximum"] for p in latency) < 30_000_000  # microseconds


def test_creating_unknown_and_failed_endpoints_are_rejected(aws: dict[str, Any]) -> None:
    put_model(aws, "slow", model_archive(SLOW_LOAD))
    make_config(aws, "slow", variant("slow"))
    aws["sm"].create_endpoint(EndpointName="slow", EndpointConfigName="slow")
    assert aws["sm"].describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Creating"
    with pytest.raises(ClientError) as creating:
        call(aws, "slow", "1,2,3")
    assert error_of(creating.value)[0] == "ValidationError"
    assert "not in service" in error_of(creating.value)[1]

    with pytest.raises(ClientError) as unknown:
        call(aws, "nowhere", "1,2,3")
    assert error_of(unknown.value) == ("ValidationError", "Endpoint nowhere of account 123456789012 not found.")

    with pytest.raises(ClientError) as duplicate:
        aws["sm"].create_endpoint(EndpointName="slow", EndpointConfigName="slow")
    assert "Cannot create already existing endpoint" in error_of(duplicate.value)[1]

    put_model(aws, "broken", model_archive(BROKEN_LOAD))
    make_config(aws, "broken", variant("broken"))
    failed = serve(aws, "broken", "broken", status="Failed")
    assert "did not pass the ping health check" in failed["FailureReason"]
    assert "ValueError: cannot load the weights: checksum mismatch" in failed["FailureReason"]
    with pytest.raises(ClientError) as not_serving:
        call(aws, "broken", "1,2,3")
    assert "EndpointStatus Failed" in error_of(not_serving.value)[1]

    assert sagemaker_endpoints.wait_for_endpoint("slow", WAIT) == "InService"
    assert call(aws, "slow", "1,2,3") == "14.0\n"
    assert sagemaker_endpoints.invocation_stats("slow")["rejected"] == 1


def test_variants_weights_target_variant_serverless_and_a_dying_worker(aws: dict[str, Any]) -> None:
    put_model(aws, "model-a", model_archive(DIES_ON_NEGATIVE))
    put_model(aws, "model-b", model_archive(bias=1000.0))
    make_config(
        aws, "two", variant("model-a", "A"),
        variant("model-b", "B", ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 2}),
    )  # fmt: skip
    described = serve(aws, "two", "two")
    by_name = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert by_name["B"]["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}

    seen = {"A": 0, "B": 0}
    for _ in range(120):
        response = aws["rt"].invoke_endpoint(
            EndpointName="two", Body="1,2,3", ContentType="text/csv", Accept="text/csv"
        )
        body = response["Body"].read().decode()
        seen[response["InvokedProductionVariant"]] += 1
        assert body == ("14.0\n" if response["InvokedProductionVariant"] == "A" else "1014.0\n")
    assert seen["A"] > 30 and seen["B"] > 30  # weights 1:1
    for _ in range(5):
        assert call(aws, "two", "1,2,3", TargetVariant="B") == "1014.0\n"
    with pytest.raises(ClientError) as absent:
        call(aws, "two", "1,2,3", TargetVariant="C")
    assert "TargetVariant C" in error_of(absent.value)[1]

    # a model server that dies answers a ModelError and is replaced
    before = sagemaker_endpoints.fleet_pids("two")["blue"]
    with pytest.raises(ClientError) as died:
        call(aws, "two", "-1,2,3", TargetVariant="A")
    assert error_of(died.value)[0] == "ModelError"
    assert "Worker died" in error_of(died.value)[1]
    deadline = time.monotonic() + WAIT
    while True:
        try:
            assert call(aws, "two", "1,2,3", TargetVariant="A") == "14.0\n"
            break
        except ClientError:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.05)
    after = sagemaker_endpoints.fleet_pids("two")["blue"]
    assert len(after) == len(before) and set(after) != set(before)


# --- data capture --------------------------------------------------------------------------------------


def test_data_capture_writes_model_monitor_records(aws: dict[str, Any]) -> None:
    put_model(aws, "cap", model_archive())
    make_config(aws, "cap", variant("cap"), capture=capture_config())
    described = serve(aws, "cap-ep", "cap")
    assert described["DataCaptureConfig"] == {
        "EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{BUCKET}/capture",
    }  # fmt: skip
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert call(aws, "cap-ep", "1,2,3\n4,5,6\n", InferenceId="order-829311") == "14.0\n32.0\n"
    as_json = call(aws, "cap-ep", json.dumps({"instances": [[1, 1, 1]]}), "application/json", "application/json")
    assert as_json == '{"predictions": [6.0]}'
    assert call(aws, "cap-ep", b"0,0,1\n", "application/octet-stream") == "3.0\n"
    after = dt.datetime.now(dt.UTC)
    assert keys(aws, "capture/") == []  # buffered, not yet written

    uris = sagemaker_endpoints.flush_capture("cap-ep")
    written = keys(aws, "capture/")
    assert [f"s3://{BUCKET}/{k}" for k in written] == sorted(uris) and written
    pattern = (
        r"capture/cap-ep/AllTraffic/(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{2})-(\d{2})-(\d{3})-" + UUID + r"\.jsonl"
    )
    for key in written:
        match = re.fullmatch(pattern, key)
        assert match, key
        year, month, day, hour, minute, second, _ms = (int(g) for g in match.groups())
        stamp = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
        assert before <= stamp <= after

    lines = records(aws, "capture/")
    assert len(lines) == 3
    by_encoding = {line["captureData"]["endpointInput"]["encoding"]: line for line in lines}
    csv_line, json_line, binary_line = by_encoding["CSV"], by_encoding["JSON"], by_encoding["BASE64"]
    assert csv_line["captureData"] == {
        "endpointInput": {
            "observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3\n4,5,6\n", "encoding": "CSV",
        },
        "endpointOutput": {
            "observedContentType": "text/csv", "mode": "OUTPUT", "data": "14.0\n32.0\n", "encoding": "CSV",
        },
    }  # fmt: skip
    assert csv_line["eventMetadata"]["inferenceId"] == "order-829311"
    assert json_line["captureData"]["endpointInput"] == {
        "observedContentType": "application/json", "mode": "INPUT",
        "data": '{"instances": [[1, 1, 1]]}', "encoding": "JSON",
    }  # fmt: skip
    assert json_line["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert "inferenceId" not in json_line["eventMetadata"]
    assert binary_line["captureData"]["endpointInput"]["data"] == "MCwwLDEK"  # base64 of b"0,0,1\n"
    assert binary_line["captureData"]["endpointOutput"]["encoding"] == "CSV"
    for line in lines:
        assert line["eventVersion"] == "0"
        assert re.fullmatch(UUID, line["eventMetadata"]["eventId"])
        when = dt.datetime.strptime(line["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert before.replace(tzinfo=None) <= when <= after.replace(tzinfo=None)
    assert len({line["eventMetadata"]["eventId"] for line in lines}) == 3


def test_capture_sampling_zero_and_input_only(aws: dict[str, Any]) -> None:
    put_model(aws, "cap", model_archive())
    make_config(aws, "none", variant("cap"), capture=capture_config(percentage=0, prefix="zero"))
    make_config(aws, "input-only", variant("cap"), capture=capture_config(modes=("Input",), prefix="inputs"))
    serve(aws, "zero", "none")
    serve(aws, "inputs", "input-only")
    for _ in range(20):
        assert call(aws, "zero", "1,2,3") == "14.0\n"
    assert call(aws, "inputs", "1,0,0") == "1.0\n"
    sagemaker_endpoints.flush_capture()
    assert keys(aws, "zero/") == []
    (line,) = records(aws, "inputs/")
    assert set(line["captureData"]) == {"endpointInput"}
    assert line["captureData"]["endpointInput"]["data"] == "1,0,0"


# --- blue/green updates ------------------------------------------------------------------------------------


class Invoker:
    """Invokes an endpoint continuously from a background thread, recording every answer."""

    def __init__(self, aws: dict[str, Any], name: str) -> None:
        self.runtime = aws["rt"]
        self.name = name
        self.answers: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.answers) < 20_000:
            try:
                response = self.runtime.invoke_endpoint(
                    EndpointName=self.name, Body="1,2,3", ContentType="text/csv", Accept="text/csv"
                )
                self.answers.append(response["Body"].read().decode())
            except Exception as exc:  # recorded; the test asserts none
                self.errors.append(repr(exc))

    def wait_for(self, answer: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.answers)
        while answer not in self.answers[start:]:
            assert time.monotonic() < deadline, f"no {answer!r} answer within {timeout} s"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive()


def two_models(aws: dict[str, Any], b_code: str = TINY_INFERENCE) -> None:
    put_model(aws, "model-a", model_archive())
    put_model(aws, "model-b", model_archive(b_code, bias=1000.0))
    make_config(aws, "config-a", variant("model-a"))
    make_config(aws, "config-b", variant("model-b"))


A, B = "14.0\n", "1014.0\n"


def test_blue_green_linear_update_switches_models_without_failures(aws: dict[str, Any]) -> None:
    two_models(aws)
    serve(aws, "bg", "config-a")
    blue_pids = sagemaker_endpoints.fleet_pids("bg")["blue"]
    invoker = Invoker(aws, "bg")
    try:
        invoker.wait_for(A)
        update(
            aws, "bg", "config-b",
            BlueGreenUpdatePolicy={
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                    "WaitIntervalInSeconds": 60,
                },
                "TerminationWaitInSeconds": 30,
            },
        )  # fmt: skip
        during = aws["sm"].describe_endpoint(EndpointName="bg")
        assert during["EndpointStatus"] == "Updating"
        assert during["EndpointConfigName"] == "config-a"
        assert during["PendingDeploymentSummary"]["EndpointConfigName"] == "config-b"
        assert sagemaker_endpoints.wait_for_endpoint("bg", WAIT) == "InService"
        invoker.wait_for(B)
    finally:
        invoker.finish()

    assert invoker.errors == []
    answers = invoker.answers
    assert set(answers) == {A, B}
    first_b, last_a = answers.index(B), len(answers) - 1 - answers[::-1].index(A)
    assert first_b < last_a  # 50 % of the traffic on each fleet for a while (LINEAR)
    assert answers[-1] == B
    done = aws["sm"].describe_endpoint(EndpointName="bg")
    assert done["EndpointConfigName"] == "config-b"
    assert "FailureReason" not in done and "PendingDeploymentSummary" not in done
    assert [call(aws, "bg", "1,2,3") for _ in range(10)] == [B] * 10
    assert not any(alive(pid) for pid in blue_pids)
    stats = sagemaker_endpoints.invocation_stats("bg")
    assert stats["failed"] == 0 and stats["configs"]["config-a"]["ok"] > 0 and stats["configs"]["config-b"]["ok"] > 0


def test_alarm_during_the_bake_rolls_back(aws: dict[str, Any]) -> None:
    two_models(aws)
    serve(aws, "rb", "config-a")
    aws["cw"].put_metric_alarm(
        AlarmName="rb-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": "rb"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    invoker = Invoker(aws, "rb")
    try:
        invoker.wait_for(A)
        update(
            aws, "rb", "config-b",
            BlueGreenUpdatePolicy={
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": 3000,  # 30 s at the test's time scale
            },
            AutoRollbackConfiguration={"Alarms": [{"AlarmName": "rb-5xx"}]},
        )  # fmt: skip
        invoker.wait_for(B)  # green has all the traffic and is baking
        green_pids = sagemaker_endpoints.fleet_pids("rb")["green"]
        assert green_pids
        aws["cw"].set_alarm_state(AlarmName="rb-5xx", StateValue="ALARM", StateReason="5xx errors on green")
        assert sagemaker_endpoints.wait_for_endpoint("rb", WAIT) == "InService"
        invoker.wait_for(A)
    finally:
        invoker.finish()

    assert invoker.errors == []
    described = aws["sm"].describe_endpoint(EndpointName="rb")
    assert described["EndpointConfigName"] == "config-a"
    assert "rolled back to endpoint config config-a" in described["FailureReason"]
    assert "rb-5xx" in described["FailureReason"] and "5xx errors on green" in described["FailureReason"]
    assert [call(aws, "rb", "1,2,3") for _ in range(10)] == [A] * 10
    assert not any(alive(pid) for pid in green_pids)
    assert sagemaker_endpoints.fleet_pids("rb")["green"] == []


def test_green_that_fails_to_load_rolls_back(aws: dict[str, Any]) -> None:
    two_models(aws, b_code=BROKEN_LOAD)
    serve(aws, "gf", "config-a")
    invoker = Invoker(aws, "gf")
    try:
        invoker.wait_for(A)
        update(aws, "gf", "config-b")
        assert sagemaker_endpoints.wait_for_endpoint("gf", WAIT) == "InService"
        invoker.wait_for(A)
    finally:
        invoker.finish()
    assert invoker.errors == [] and set(invoker.answers) == {A}
    described = aws["sm"].describe_endpoint(EndpointName="gf")
    assert described["EndpointConfigName"] == "config-a"
    assert "failed to start" in described["FailureReason"]
    assert "ValueError: cannot load the weights: checksum mismatch" in described["FailureReason"]


def test_update_endpoint_validation(aws: dict[str, Any]) -> None:
    two_models(aws)
    serve(aws, "val", "config-a")
    sm = aws["sm"]
    cases = [
        ({"EndpointName": "missing", "EndpointConfigName": "config-b"}, 'Could not find endpoint "arn:aws:sagemaker'),
        ({"EndpointName": "val", "EndpointConfigName": "missing"}, "Could not find endpoint configuration"),
        (
            {"EndpointName": "val", "EndpointConfigName": "config-b",
             "DeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 0}}}},
            "CanarySize must be specified",
        ),
    ]  # fmt: skip
    for params, message in cases:
        with pytest.raises(ClientError) as rejected:
            sm.update_endpoint(**params)
        assert error_of(rejected.value)[0] == "ValidationException"
        assert message in error_of(rejected.value)[1]
    update(aws, "val", "config-b", BlueGreenUpdatePolicy={
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 100}})  # 1 s scaled
    with pytest.raises(ClientError) as busy:
        update(aws, "val", "config-a")
    assert "Cannot update in-progress endpoint" in error_of(busy.value)[1]
    assert sagemaker_endpoints.wait_for_endpoint("val", WAIT) == "InService"
    assert sm.describe_endpoint(EndpointName="val")["EndpointConfigName"] == "config-b"


def test_traffic_plans() -> None:
    plan = traffic_plan
    assert plan(None) == ([(1.0, 0.0)], 0.0, None)
    canary = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                        "WaitIntervalInSeconds": 300},
        "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 3600}}  # fmt: skip
    assert plan(canary, instances=4) == ([(0.25, 300.0), (1.0, 0.0)], 120.0, 3600)
    linear = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}, "WaitIntervalInSeconds": 60}}}
    steps, _, _ = plan(linear)
    assert [round(s, 2) for s, _ in steps] == [0.3, 0.6, 0.9, 1.0] and [w for _, w in steps] == [60, 60, 60, 0]
    rolling = {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                                       "WaitIntervalInSeconds": 10}}  # fmt: skip
    assert plan(rolling) == ([(0.5, 10.0), (1.0, 0.0)], 0.0, None)
    assert event_status("InService") == "IN_SERVICE"
    assert event_status("RollingBack") == "ROLLING_BACK"


# --- events and deletion ------------------------------------------------------------------------------------


def test_state_change_events_reach_an_sqs_target(aws: dict[str, Any]) -> None:
    sqs, events = client("sqs"), client("events")
    queue_url = sqs.create_queue(QueueName="endpoint-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="endpoint-states",
        EventPattern=json.dumps({"source": ["aws.sagemaker"], "detail-type": ["SageMaker Endpoint State Change"]}),
    )
    events.put_targets(Rule="endpoint-states", Targets=[{"Id": "q", "Arn": queue_arn}])

    two_models(aws)
    aws["sm"].create_endpoint(EndpointName="ev", EndpointConfigName="config-a", Tags=[{"Key": "team", "Value": "ml"}])
    assert sagemaker_endpoints.wait_for_endpoint("ev", WAIT) == "InService"
    update(aws, "ev", "config-b")
    assert sagemaker_endpoints.wait_for_endpoint("ev", WAIT) == "InService"
    aws["sm"].delete_endpoint(EndpointName="ev")

    received: list[dict[str, Any]] = []
    for _ in range(10):  # bounded
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        received += [json.loads(m["Body"]) for m in batch]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    statuses = [(e["detail"]["EndpointStatus"], e["detail"]["EndpointConfigName"]) for e in received]
    assert statuses == [
        ("CREATING", "config-a"), ("IN_SERVICE", "config-a"), ("UPDATING", "config-a"),
        ("IN_SERVICE", "config-b"), ("DELETING", "config-b"),
    ]  # fmt: skip
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ev"
    for event in received:
        assert event["source"] == "aws.sagemaker" and event["detail-type"] == "SageMaker Endpoint State Change"
        assert event["resources"] == [arn]
        detail = event["detail"]
        assert detail["EndpointName"] == "ev" and detail["EndpointArn"] == arn
        assert isinstance(detail["CreationTime"], float) and detail["LastModifiedTime"] >= detail["CreationTime"]
        assert detail["Tags"] == {"team": "ml"}
    in_service = received[1]["detail"]
    assert in_service["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert in_service["ProductionVariants"][0]["CurrentWeight"] == 1.0


def test_delete_stops_serving_and_flushes_capture(aws: dict[str, Any]) -> None:
    put_model(aws, "cap", model_archive())
    make_config(aws, "cap", variant("cap"), capture=capture_config(prefix="deleted"))
    serve(aws, "gone", "cap")
    pids = sagemaker_endpoints.fleet_pids("gone")["blue"]
    assert pids and all(alive(pid) for pid in pids)
    for _ in range(3):
        assert call(aws, "gone", "1,2,3") == A
    aws["sm"].delete_endpoint(EndpointName="gone")
    assert len(records(aws, "deleted/gone/")) == 3  # flushed by the delete
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(ClientError) as deleted:
        call(aws, "gone", "1,2,3")
    assert error_of(deleted.value) == ("ValidationError", "Endpoint gone of account 123456789012 not found.")
    stats = sagemaker_endpoints.invocation_stats("gone")
    assert stats["status"] == "Deleted" and stats["ok"] == 3
    with pytest.raises(ClientError):
        aws["sm"].describe_endpoint(EndpointName="gone")


def test_workers_stop_when_moto_state_is_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mock_aws context that ends without stop_all(): the workers still stop, and no
    AWS call is attempted afterwards."""
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    sagemaker_endpoints.configure(workers_per_variant=1)
    try:
        with server.in_process():
            aws = {"s3": client("s3"), "sm": client("sagemaker")}
            aws["s3"].create_bucket(Bucket=BUCKET)
            put_model(aws, "orphan", model_archive())
            make_config(aws, "orphan", variant("orphan"))
            aws["sm"].create_endpoint(EndpointName="orphan", EndpointConfigName="orphan")
            assert sagemaker_endpoints.wait_for_endpoint("orphan", WAIT) == "InService"
            pids = sagemaker_endpoints.fleet_pids("orphan")["blue"]
            assert pids and all(alive(pid) for pid in pids)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "workers of a reset endpoint still run"
            time.sleep(0.05)
        with pytest.raises(LookupError):
            sagemaker_endpoints.wait_for_endpoint("orphan", 1)
    finally:
        sagemaker_endpoints.stop_all()
        sagemaker_endpoints.configure(workers_per_variant=None)


# --- server mode ------------------------------------------------------------------------------------------------


def test_server_mode_load_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any) -> None:
    """2,000 single-row invocations at concurrency 8, through boto3 in a separate client
    process, against moto's server; prints the throughput, asserts only that none failed."""
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    aws = server.start()
    try:
        capture = capture_config(percentage=10, prefix="load", bucket="bench-models")
        deploy(model_archive(), "load", config_extra={"DataCaptureConfig": capture})
        assert sagemaker_endpoints.wait_for_endpoint("load", WAIT) == "InService"
        result = run_load_in_subprocess(aws.endpoint_url, "load", "1,2,3\n", 2000, 8)
        record_property("figures", (
            f"endpoint load check (boto3 client): {result['requests']} invocations, concurrency "
            f"{result['concurrency']}: {result['rps']} req/s, p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
            f"p99 {result['p99_ms']} ms, errors {result['errors']}"))
        assert result["errors"] == 0, result["first_errors"]
        stats = sagemaker_endpoints.invocation_stats("load")
        assert stats["ok"] == 2001 and stats["failed"] == 0  # plus the client's warm-up call

        # moto's stock route (no fast path) gives the same answer
        runtime = client("sagemaker-runtime")
        request = {"EndpointName": "load", "Body": "1,2,3", "ContentType": "text/csv", "Accept": "text/csv"}
        fast = runtime.invoke_endpoint(**request)
        sagemaker_endpoints.configure(server_fast_path=False)
        try:
            stock = runtime.invoke_endpoint(**request)
            with pytest.raises(ClientError) as bad:
                runtime.invoke_endpoint(EndpointName="load", Body="1,2", ContentType="text/csv")
        finally:
            sagemaker_endpoints.configure(server_fast_path=True)
        assert fast["Body"].read() == stock["Body"].read() == b"14.0\n"
        assert fast["ContentType"] == stock["ContentType"] == "text/csv"
        assert error_of(bad.value)[0] == "ModelError" and bad.value.response["OriginalStatusCode"] == 500
        assert sagemaker_endpoints.invocation_stats("load")["ok"] == 2003

        sagemaker_endpoints.flush_capture("load")
        s3 = client("s3")
        listed = s3.list_objects_v2(Bucket="bench-models", Prefix="load/load/AllTraffic/").get("Contents", [])
        captured = sum(
            len(s3.get_object(Bucket="bench-models", Key=item["Key"])["Body"].read().splitlines()) for item in listed
        )
        assert 80 < captured < 400  # about 10 % of 2,003 (the flusher wrote some, the flush the rest)

        # the fast path passes InferenceId and TargetVariant on
        s3.put_object(Bucket="bench-models", Key="tagged/model.tar.gz", Body=model_archive(bias=1000.0))
        client("sagemaker").create_model(
            ModelName="tagged", ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench-models/tagged/model.tar.gz"},
        )  # fmt: skip
        client("sagemaker").create_endpoint_config(
            EndpointConfigName="tagged", ProductionVariants=[variant("tagged", "Only")],
            DataCaptureConfig=capture_config(prefix="tagged", bucket="bench-models"),
        )  # fmt: skip
        client("sagemaker").create_endpoint(EndpointName="tagged", EndpointConfigName="tagged")
        assert sagemaker_endpoints.wait_for_endpoint("tagged", WAIT) == "InService"
        tagged = {**request, "EndpointName": "tagged"}
        answer = runtime.invoke_endpoint(**tagged, InferenceId="id-7", TargetVariant="Only")
        assert answer["Body"].read() == b"1014.0\n" and answer["InvokedProductionVariant"] == "Only"
        with pytest.raises(ClientError) as absent:
            runtime.invoke_endpoint(**tagged, TargetVariant="Other")
        assert error_of(absent.value)[0] == "ValidationError"
        sagemaker_endpoints.flush_capture("tagged")
        (key,) = [i["Key"] for i in s3.list_objects_v2(Bucket="bench-models", Prefix="tagged/tagged/")["Contents"]]
        line = json.loads(s3.get_object(Bucket="bench-models", Key=key)["Body"].read())
        assert line["eventMetadata"]["inferenceId"] == "id-7"
    finally:
        sagemaker_endpoints.stop_all()
        aws.stop()
