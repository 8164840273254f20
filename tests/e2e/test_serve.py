"""`autoloop local serve` as a user runs it: a separate process, driven with the AWS CLI and boto3.

One server per module (`--port 0 --time-scale 0.001`: waits take a thousandth of their time,
the hourly monitoring schedule fires every 3.6 s). A training run goes through the AWS CLI
(executions, jobs, registry, endpoint, CloudWatch Logs); the monitoring schedule then fires
on its own clock, and the calls the SageMaker SDK v2 makes for
``DefaultModelMonitor.attach(...)`` and ``latest_monitoring_statistics()`` are made with
boto3 (the SDK is not installed in the project venv; the calls and the keys it reads are
those of sagemaker-python-sdk's ``model_monitor/model_monitoring.py``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from autoloop_cli import datagen
from tests.conftest import ROOT
from tests.support import wait_until

WINDOW_ROWS = 50  # one request of this many rows is each monitoring window
SCALE = 0.005  # the hourly monitoring schedule fires every 18 s: a few jobs, not one every 3.6 s
MODEL_GROUP = "autoloop-local-churn"
ENDPOINT = "autoloop-local-churn"
SCHEDULE = f"{ENDPOINT}-dq"


def aws_cli() -> str | None:
    """The AWS CLI: $AUTOLOOP_AWS_CLI, `make awscli`'s venv, else PATH."""
    for candidate in (os.environ.get("AUTOLOOP_AWS_CLI"), str(ROOT / ".venv" / "awscli" / "bin" / "aws"),
                      shutil.which("aws")):
        if candidate and Path(candidate).exists():
            probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=60, check=False)
            if probe.returncode == 0:
                return candidate
    return None


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autoloop_cli.cli", "local", "serve", *args]


def serve_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_PORT"}
    env["AUTOLOOP_LOCAL_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    state: dict[str, Any]
    console: Path

    @property
    def endpoint_url(self) -> str:
        return str(self.state["endpoint_url"])

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self.state["outputs"])

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}

    def lines(self) -> list[str]:
        return self.console.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve-home")
    console = home / "console.txt"
    with console.open("wb") as out:
        process = subprocess.Popen(serve_command("--port", "0", "--time-scale", str(SCALE),
                                                 # this module checks the SDK's Model Monitor readers;
                                                 # its windows hold one 50-row request, and Model
                                                 # Monitor's thresholds are calibrated for that size
                                                 "--parameter", "MonitoringBackend=model-monitor",
                                                 "--parameter", f"MonitoringSampleSize={WINDOW_ROWS}"), cwd=ROOT,
                                   env=serve_env(home), stdout=out, stderr=subprocess.STDOUT)
    state_file = home / "server.json"
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{console.read_text()}")
            return state_file.exists()

        wait_until(ready, 180, "serve writing server.json", interval=0.2)
        yield Served(process, json.loads(state_file.read_text()), console)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(180)  # its clean stop (endpoint workers, jobs) on a loaded machine
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    assert not state_file.exists()  # SIGTERM cleans up as Ctrl-C does


def cli(served: Served, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    executable = aws_cli()
    if executable is None:
        pytest.skip("the AWS CLI is not installed: `make awscli` installs it into .venv/awscli "
                    "(or set AUTOLOOP_AWS_CLI to an `aws` executable)")
    done = subprocess.run([executable, *args, "--output", "json"], capture_output=True, text=True, timeout=120,
                          env=served.env(), check=False)
    if check:
        assert done.returncode == 0, f"aws {' '.join(args)} failed: {done.stderr}"
    return done


def cli_json(served: Served, *args: str) -> Any:
    return json.loads(cli(served, *args).stdout or "null")


def test_a_taken_port_and_a_bad_time_scale_are_clear_errors(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(serve_command("--port", str(port)), cwd=ROOT, env=serve_env(tmp_path),
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert f"error: port {port} is in use" in done.stderr and "--port N (0 picks a free one)" in done.stderr
    done = subprocess.run(serve_command("--port", "0", "--time-scale", "0"), cwd=ROOT, env=serve_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "--time-scale must be a number > 0" in done.stderr


def churn_csv(rows: int, seed: int) -> bytes:
    buffer = io.StringIO()
    datagen.generate(rows, seed=seed).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_a_run_through_the_aws_cli(served: Served):
    sfn = served.client("stepfunctions")
    served.client("s3").put_object(Bucket=served.outputs["DataBucketName"], Key="incoming/churn/serve.csv",
                                   Body=churn_csv(2000, seed=3))

    def ended(machine: str) -> dict[str, Any] | None:
        runs = sfn.list_executions(stateMachineArn=served.outputs[machine])["executions"]
        done = [r for r in runs if r["status"] != "RUNNING"]
        return done[0] if done else None

    training = wait_until(lambda: ended("TrainingPipelineArn"), 300, "the training run ending", interval=0.5)
    assert training["status"] == "SUCCEEDED"
    deploy = wait_until(lambda: ended("DeployPipelineArn"), 300, "the deployment ending", interval=0.5)
    assert deploy["status"] == "SUCCEEDED"

    listed = cli_json(served, "stepfunctions", "list-executions", "--state-machine-arn",
                      served.outputs["TrainingPipelineArn"])
    assert [(e["name"], e["status"]) for e in listed["executions"]] == [(training["name"], "SUCCEEDED")]
    jobs = cli_json(served, "sagemaker", "list-training-jobs")["TrainingJobSummaries"]
    train_job = f"{training['name']}-train"
    assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in jobs] == [(train_job, "Completed")]
    packages = cli_json(served, "sagemaker", "list-model-packages", "--model-package-group-name", MODEL_GROUP)
    assert [p["ModelApprovalStatus"] for p in packages["ModelPackageSummaryList"]] == ["Approved"]
    endpoint = cli_json(served, "sagemaker", "describe-endpoint", "--endpoint-name", ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"

    # CloudWatch Logs, as SageMaker, Lambda and Step Functions write them
    job_log = cli_json(served, "logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                       "--log-stream-name-prefix", f"{train_job}/", "--filter-pattern", "auc")
    assert job_log["events"] and all(e["logStreamName"].startswith(f"{train_job}/algo-1-") for e in job_log["events"])
    endpoint_streams = cli_json(served, "logs", "describe-log-streams", "--log-group-name",
                                f"/aws/sagemaker/Endpoints/{ENDPOINT}")["logStreams"]
    assert [s["logStreamName"].split("/")[0] for s in endpoint_streams] == ["AllTraffic"]
    states = cli_json(served, "logs", "filter-log-events", "--log-group-name",
                      "/aws/vendedlogs/states/autoloop-local-training-pipeline")["events"]
    assert "ExecutionSucceeded" in [json.loads(e["message"])["type"] for e in states]
    functions = cli_json(served, "lambda", "list-functions")["Functions"]
    validate = next(f for f in functions if "ValidateInput" in f["FunctionName"])
    group = validate["LoggingConfig"]["LogGroup"]
    assert "ValidateInputLogGroup" in group  # the template's log group, not /aws/lambda/...
    assert any(e["message"].startswith("START RequestId:")
               for e in cli_json(served, "logs", "filter-log-events", "--log-group-name", group)["events"])

    # what the local AWS lacks fails at once with AWS's error shape, naming the operation
    lacking = cli(served, "logs", "list-anomalies", check=False)
    assert lacking.returncode != 0
    assert "(NotImplemented)" in lacking.stderr and "logs ListAnomalies is not implemented" in lacking.stderr

    # the console: one line per run event and notification; moto's own output is in a file
    console = "\n".join(served.lines())
    assert f"{training['name']} started" in console and f"{training['name']} -> Train" in console
    assert f"{training['name']} succeeded" in console and "notification " in console
    assert "Traceback" not in console


def test_the_monitoring_schedule_fires_on_its_own_and_the_sdk_reads_it(served: Served):
    wait_until(lambda: served.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]
               == "InService", 300, "the endpoint in service", interval=0.5)
    rows = churn_csv(WINDOW_ROWS, seed=5).decode().splitlines()[1:]
    features = "\n".join(row.split(",", 1)[1] for row in rows)  # the label is the first column
    served.client("sagemaker-runtime").invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                                       Body=features.encode())
    sm = served.client("sagemaker")

    def completed() -> bool:
        found = sm.list_monitoring_executions(MonitoringScheduleName=SCHEDULE)["MonitoringExecutionSummaries"]
        return any(e["MonitoringExecutionStatus"] == "Completed" for e in found)

    wait_until(completed, 240, "a monitoring execution completing on the schedule's own clock", interval=0.5)
    sm.stop_monitoring_schedule(MonitoringScheduleName=SCHEDULE)  # no newer execution while the SDK reads
    wait_until(lambda: all(e["MonitoringExecutionStatus"] not in ("Pending", "InProgress") for e in
                           sm.list_monitoring_executions(MonitoringScheduleName=SCHEDULE)[
                               "MonitoringExecutionSummaries"]), 120, "the running executions ending", interval=0.5)
    assert any(SCHEDULE in line and "(monitoring) fired" in line for line in served.lines())

    # DefaultModelMonitor.attach(SCHEDULE): the keys it reads with [] (a missing one is a KeyError)
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=SCHEDULE)
    definition = described["MonitoringScheduleConfig"]["MonitoringJobDefinition"]
    cluster = definition["MonitoringResources"]["ClusterConfig"]
    assert definition["RoleArn"] and cluster["InstanceCount"] and cluster["InstanceType"] and cluster["VolumeSizeInGB"]
    assert isinstance(definition["MonitoringOutputConfig"], dict) and isinstance(definition["Environment"], dict)
    network = definition.get("NetworkConfig", {})
    assert network["EnableNetworkIsolation"] is True
    assert network["EnableInterContainerTrafficEncryption"] is False
    sm.list_tags(ResourceArn=described["MonitoringScheduleArn"])

    # latest_monitoring_statistics(): the newest execution with a job, its first output's statistics.json
    summaries = sm.list_monitoring_executions(MonitoringScheduleName=SCHEDULE, SortBy="ScheduledTime",
                                              SortOrder="Descending", MaxResults=100)["MonitoringExecutionSummaries"]
    newest = next(s for s in summaries if s.get("ProcessingJobArn"))
    assert newest["MonitoringExecutionStatus"] == "Completed"
    job = sm.describe_processing_job(ProcessingJobName=newest["ProcessingJobArn"].split("/")[-1])
    destination = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    statistics = json.loads(served.client("s3").get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/statistics.json")[
        "Body"].read())
    assert statistics["dataset"]["item_count"] >= 40 and statistics["features"]
