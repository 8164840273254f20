"""The fault-injection matrix (issue 6, item 1), run against the local AWS.

One stack for the module: a first training run deploys the endpoint (its DeployPipeline
creates it), then the deployment rule is turned off (so retries register models without
redeploying, except where the deploy itself is the fault) and a background client calls
the endpoint for the whole module. Each test injects one fault with ``localaws.faults``
(an AWS API error in the service's wire format, a Lambda error or timeout, a failed
SageMaker job, or an EventBridge event that never arrives) and records a row: the outcome,
the named state and error the execution ended in, the notification, and the time to
detect. Then, in the same test, the same input is tried again: a TrainingPipeline input is
re-uploaded to the same key (a new version: execution names come from the object version,
so re-sending the same version starts nothing, by design; see docs/ARCHITECTURE.md
"Pipeline contract"), a month is run again (a new attempt), a deployment is re-sent its
package's event, a drift event is delivered again. Each row needs only the module's stack
(``pytest tests/e2e/test_fault_matrix.py::test_lambda_timeout`` runs one). The last test
checks that production served throughout with no failed call, and that raw data and earlier
artifacts are intact; it prints the matrix of the rows that ran (terminal summary) and
saves it to .autoloop/artifacts/fault_matrix.json.

Times: Wait and Retry delays (and botocore's own retry backoff) are scaled by
TIME_SCALE (0.01); task timeouts and Lambda ``Timeout`` are not. "unscaled" estimates what
a detection would take at scale 1: the measured time plus the retry waits the history
shows, multiplied back.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from autoloop.naming import run_id
from autoloop_cli import datagen, executions
from autoloop_cli.demo import batch as batch_demo
from autoloop_cli.demo import lifecycle as demo
from localaws import faults
from localaws.awslambda import runtime as lambda_runtime
from tests.conftest import ROOT
from tests.e2e.conftest import TIME_SCALE, Local, boot
from tests.support import find_execution, record_processing_job, wait_until

pytestmark = pytest.mark.e2e

STACK = "autoloop-fm"
MODEL = "churn"
ROWS = 800
PARAMS = {"JobWaitTimeoutSeconds": "6", "ReconcileIntervalSeconds": "1", "BlueGreenBakeSeconds": "2",
          "TerminationWaitSeconds": "1", "MonitoringSampleSize": "400",
          # The drift faults inject Model Monitor's execution events: that backend's path.
          "MonitoringBackend": "model-monitor"}
FAILED = "Autoloop: run failed"
MATRIX_JSON = ROOT / ".autoloop" / "artifacts" / "fault_matrix.json"


def csv(seed: int, rows: int = ROWS) -> bytes:
    return datagen.generate(rows, seed=seed).to_csv(index=False).encode()


# Every good upload has the same rows: training is seeded, so each model's metric equals the
# champion's and passes the champion gate (>=); a different sample could fall below it.
GOOD = csv(seed=1)


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:12]


def stamp(value: datetime) -> float:
    return value.timestamp()


@dataclass
class Row:
    fault: str
    outcome: str = ""
    state: str = ""  # the named state / error the execution ended in
    detect_s: float | None = None  # scaled (measured)
    detect_unscaled_s: float | None = None
    notification: str = ""
    retry: str = "pending"
    checks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "outcome": self.outcome, "state": self.state, "time_to_detect_s": self.detect_s,
                "time_to_detect_unscaled_s": self.detect_unscaled_s, "notification": self.notification,
                "retry": self.retry, "checks": self.checks}


@dataclass
class Execution:
    arn: str
    description: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def path(self) -> list[str]:
        return [s.name for s in executions.path(self.events)]

    @property
    def output(self) -> dict[str, Any]:
        return json.loads(self.description.get("output") or "{}")

    def first(self, *types: str) -> dict[str, Any]:
        return next(e for e in self.events if e["type"] in types)

    def retry_waits(self) -> float:
        """Seconds the execution spent between a failed attempt and the next one (Retry waits)."""
        total, failed_at = 0.0, None
        for event in self.events:
            if event["type"] in {"LambdaFunctionFailed", "TaskFailed", "LambdaFunctionTimedOut"}:
                failed_at = stamp(event["timestamp"])
            elif event["type"] in {"LambdaFunctionScheduled", "TaskScheduled"} and failed_at is not None:
                total += stamp(event["timestamp"]) - failed_at
                failed_at = None
        return total

    def attempts(self, state: str) -> int:
        inside, count = False, 0
        for event in self.events:
            if event["type"].endswith("StateEntered"):
                inside = event["stateEnteredEventDetails"]["name"] == state
            elif inside and event["type"] in {"LambdaFunctionScheduled", "TaskScheduled"}:
                count += 1
        return count


class Matrix:
    def __init__(self, local: Local) -> None:
        self.local = local
        self.s3 = local.client("s3")
        self.sfn = local.client("stepfunctions")
        self.sm = local.client("sagemaker")
        self.data = local.outputs["DataBucketName"]
        self.artifacts = local.outputs["ArtifactsBucketName"]
        self.endpoint = f"{STACK}-{MODEL}"
        self.rows: list[Row] = []
        self.uploads: list[tuple[str, str, str]] = []  # key, version, sha
        self.notes: list[dict[str, Any]] = []
        self.traffic: demo.Traffic | None = None
        self.serving_config = ""
        self.started = time.monotonic()

    def row(self, fault: str) -> Row:
        row = Row(fault)
        self.rows.append(row)
        return row

    def function(self, logical: str) -> str:
        return str(self.local.stack.resources[logical])

    # -- training runs
    def upload(self, key: str, body: bytes) -> str:
        response = self.s3.put_object(Bucket=self.data, Key=key, Body=body)
        self.uploads.append((key, response["VersionId"], sha(body)))
        return run_id(MODEL, self.data, key, response["VersionId"])

    def execution(self, machine: str, name: str, timeout: float = 60) -> str:
        return find_execution(self.local.outputs[machine], lambda e: e["name"] == name, timeout, self.sfn)

    def follow(self, arn: str, timeout: float = 150) -> Execution:
        description = executions.follow(self.sfn, arn, timeout=timeout)
        return Execution(arn, description, executions.history(self.sfn, arn))

    def train(self, key: str, body: bytes, timeout: float = 150) -> Execution:
        rid = self.upload(key, body)
        return self.follow(self.execution("TrainingPipelineArn", rid), timeout)

    def notifications(self, subject: str | None = None, containing: str = "") -> list[str]:
        """Messages so far (SNS -> SQS is synchronous: a run's are there once it has ended)."""
        self.notes += self.local.notifications()
        return [n["Message"] for n in self.notes
                if (subject is None or n.get("Subject") == subject) and containing in n.get("Message", "")]

    def record_failure(self, row: Row, execution: Execution, t0: float, step: str, error: str) -> None:
        """A FAILED run: the named state, the error in the cause, the notification, time to detect."""
        description = execution.description
        assert execution.status == "FAILED", description.get("cause")
        assert description["error"] == f"{step}Failed", description
        assert error in description["cause"], description["cause"]
        # A paid job's failure gives its training slot back on the way out.
        release = ["ReleaseRunSlotAfterFailure"] if step in {"Preprocess", "Train", "Evaluate"} else []
        assert execution.path[-3 - len(release):] == [f"{step}Failed", *release, "NotifyFailure", "RunFailed"], \
            execution.path
        [message] = self.notifications(FAILED, f"Run {description['name']} failed at {step}.")
        assert error in message, message
        failed = stamp(execution.first("ExecutionFailed")["timestamp"])
        row.outcome = "FAILED"
        row.state = f"{description['error']}: {description['cause'][:90]}"
        row.detect_s = round(failed - t0, 2)
        waits = execution.retry_waits()
        row.detect_unscaled_s = round(failed - t0 + waits * (1 / TIME_SCALE - 1), 1)
        row.notification = message[:110]

    def retry(self, row: Row, key: str, body: bytes = GOOD) -> Execution:
        """The same input again, with no fault: re-uploaded to the same key (a new version)."""
        execution = self.train(key, body)
        assert execution.status == "SUCCEEDED", execution.description.get("cause")
        assert execution.path[-2:] == ["NotifySuccess", "Succeeded"], execution.path
        row.retry = "re-upload (new version) SUCCEEDED"
        return execution


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    # Every case uploads the same good rows: ties must promote here (this module tests faults, not the gate).
    for local in boot(STACK, PARAMS, churn_config={"promote_ties": True}):
        m = Matrix(local)
        faults.install()
        try:
            # The endpoint: one good run, whose Approved package the DeployPipeline creates.
            known = {e["executionArn"] for e in executions.executions(m.sfn, local.outputs["DeployPipelineArn"])}
            base = m.train("incoming/churn/base.csv", GOOD)
            assert base.status == "SUCCEEDED", base.description.get("cause")
            deploy = m.follow(_new_execution(m, "DeployPipelineArn", known), timeout=150)
            assert deploy.status == "SUCCEEDED", deploy.description.get("cause")
            _deploy_rule(local, enabled=False)
            m.serving_config = m.sm.describe_endpoint(EndpointName=m.endpoint)["EndpointConfigName"]
            m.base = base  # type: ignore[attr-defined]
            m.base_model = _read_uri(m, base.output["jobs"]["train"]["model_artifacts"])  # type: ignore[attr-defined]
            m.notifications()
            # about 10 calls a second: production keeps being asked, without a CPU of its own
            m.traffic = demo.Traffic(m.endpoint, demo._rows(50, seed=5, drift=0.0), interval=0.1)
            m.traffic.__enter__()
            yield m
        finally:
            faults.clear_all()
            if m.traffic is not None:
                m.traffic.__exit__()
            MATRIX_JSON.parent.mkdir(parents=True, exist_ok=True)
            MATRIX_JSON.write_text(json.dumps({
                "time_scale": TIME_SCALE, "module_seconds": round(time.monotonic() - m.started, 1),
                "invocations": {"ok": m.traffic.ok if m.traffic else 0,
                                "failed": m.traffic.failed if m.traffic else None},
                "rows": [r.as_dict() for r in m.rows]}, indent=2))


def format_matrix(m: Matrix) -> list[str]:
    header = ("fault", "outcome", "named state: error / cause", "detect s", "unscaled s", "retry of the same input")
    body = [(r.fault, r.outcome, r.state, "-" if r.detect_s is None else f"{r.detect_s:.2f}",
             "-" if r.detect_unscaled_s is None else f"~{r.detect_unscaled_s:.0f}", r.retry) for r in m.rows]
    widths = [min(max(len(str(x[i])) for x in [header, *body]), cap) for i, cap in enumerate((34, 9, 70, 8, 10, 60))]

    def fmt(cells: tuple[str, ...]) -> str:
        return " | ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True))

    traffic = m.traffic
    lines = [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(b) for b in body)]
    if traffic is not None:
        lines.append(f"endpoint {m.endpoint}: {traffic.ok} invocations during the matrix, {traffic.failed} failed; "
                     f"time scale {TIME_SCALE} (Wait/Retry and SDK backoff; timeouts unscaled); "
                     f"JSON: {MATRIX_JSON.relative_to(ROOT)}")
    return lines


def _new_execution(m: Matrix, machine: str, known: set[str], timeout: float = 60) -> str:
    return find_execution(m.local.outputs[machine], lambda e: e["executionArn"] not in known, timeout, m.sfn)


def _deploy_rule(local: Local, enabled: bool) -> None:
    events = local.client("events")
    for rule in events.list_rules()["Rules"]:
        if "PackageApprovalChanged" in rule["Name"]:
            (events.enable_rule if enabled else events.disable_rule)(Name=rule["Name"])


def _read_uri(m: Matrix, uri: str) -> str:
    bucket, key = uri[5:].split("/", 1)
    return sha(m.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _is_job_event(job_suffix: str, status_key: str) -> Callable[[faults.Request], bool]:
    def match(request: faults.Request) -> bool:
        return job_suffix in request.body and f'\\"{status_key}\\": \\"Completed\\"' in request.body

    return match


# ----------------------------------------------------------------------------- the rows


def test_validation_bad_data(matrix: Matrix) -> None:
    row, key = matrix.row("validation: bad data (wrong columns)"), "incoming/churn/fm-validate.csv"
    t0 = time.time()
    run = matrix.train(key, b"churned,whatever\n1,2\n")
    matrix.record_failure(row, run, t0, "ValidateInput", "SchemaMismatch")
    assert not [j for j in matrix.sm.list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]
                if j["ProcessingJobName"].startswith(run.description["name"])]
    matrix.retry(row, key, GOOD)  # the corrected file, same key


def test_validation_s3_error_that_persists_then_one_that_clears(matrix: Matrix) -> None:
    key = "incoming/churn/fm-s3.csv"
    row = matrix.row("S3 GetObject InternalError (persists)")
    with faults.aws_error("s3", "GetObject", "InternalError", match=key) as fault:
        t0 = time.time()
        run = matrix.train(key, GOOD)
    matrix.record_failure(row, run, t0, "ValidateInput", "TransientAwsError")
    assert run.attempts("ValidateInput") == 6  # the first call and 5 retries (TransientAwsError)
    row.checks.append(f"{fault.hits} GetObject calls failed (4 SDK attempts x 6 invocations)")

    # The retry of the same input, while S3 still fails a few more times: absorbed by Retry.
    absorbed = matrix.row("S3 GetObject SlowDown x6 (transient)")
    with faults.aws_error("s3", "GetObject", "SlowDown", match=key, times=6) as transient:
        run = matrix.train(key, GOOD)
    assert transient.exhausted
    absorbed.outcome = "SUCCEEDED"
    absorbed.state = f"absorbed: ValidateInput ran {run.attempts('ValidateInput')}x (AwsThrottled -> Retry)"
    absorbed.detect_s = round((transient.last_hit or 0) - (transient.first_hit or 0), 2)
    absorbed.retry = "n/a (the run itself succeeded)"
    assert run.status == "SUCCEEDED" and run.attempts("ValidateInput") == 2, run.description.get("cause")
    row.retry = "re-upload (new version) SUCCEEDED (through 6 SlowDowns)"


@pytest.mark.parametrize(("step", "job", "kind"), [("Preprocess", "-preprocess", "processing"),
                                                   ("Train", "-train", "training"),
                                                   ("Evaluate", "-evaluate", "processing")])
def test_a_failed_job(matrix: Matrix, step: str, job: str, kind: str) -> None:
    row, key = matrix.row(f"{step.lower()} job fails (exit 1)"), f"incoming/churn/fm-{step.lower()}.csv"
    with faults.job_failure(job, f"AlgorithmError: injected fault: {step.lower()} exited with code 1",
                            kind=kind, times=1) as fault:
        t0 = time.time()
        run = matrix.train(key, GOOD)
    assert fault.hits == 1
    matrix.record_failure(row, run, t0, step, "injected fault")
    assert "JobFailed" in run.description["cause"]
    matrix.retry(row, key, GOOD)


def test_registration_hard_failure_then_throttling(matrix: Matrix) -> None:
    key = "incoming/churn/fm-register.csv"
    row = matrix.row("CreateModelPackage AccessDenied (hard)")
    packages = _packages(matrix)
    with faults.aws_error("sagemaker", "CreateModelPackage", "AccessDeniedException",
                          message="not authorized to perform: sagemaker:CreateModelPackage"):
        t0 = time.time()
        run = matrix.train(key, GOOD)
    matrix.record_failure(row, run, t0, "RegisterModel", "AwsCallFailed")
    assert _packages(matrix) == packages, "nothing was registered"

    absorbed = matrix.row("CreateModelPackage Throttling x6")
    with faults.aws_error("sagemaker", "CreateModelPackage", "ThrottlingException", times=6) as fault:
        run = matrix.train(key, GOOD)
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert fault.exhausted and run.attempts("RegisterModel") == 2
    absorbed.outcome = "SUCCEEDED"
    absorbed.state = "absorbed: RegisterModel ran 2x (AwsThrottled -> Retry)"
    absorbed.detect_s = round((fault.last_hit or 0) - (fault.first_hit or 0), 2)
    absorbed.retry = "n/a (the run itself succeeded)"
    assert len(_packages(matrix)) == len(packages) + 1
    row.retry = "re-upload (new version) SUCCEEDED (through 6 throttles)"


def test_lambda_timeout(matrix: Matrix) -> None:
    row, key = matrix.row("Lambda timeout (ValidateInput)"), "incoming/churn/fm-timeout.csv"
    lam, name = matrix.local.client("lambda"), matrix.function("ValidateInputFunction")
    configured = lam.get_function_configuration(FunctionName=name)["Timeout"]
    lam.update_function_configuration(FunctionName=name, Timeout=2)  # the fault costs the Timeout
    try:
        with faults.lambda_timeout(name, times=1):
            t0 = time.time()
            run = matrix.train(key, GOOD)
    finally:
        lam.update_function_configuration(FunctionName=name, Timeout=configured)
    matrix.record_failure(row, run, t0, "ValidateInput", "Task timed out after 2.00 seconds")
    assert "Sandbox.Timedout" in run.description["cause"]
    matrix.retry(row, key, GOOD)


def test_callback_lost_then_delivered_late_and_twice(matrix: Matrix) -> None:
    """The Train job's Completed event never reaches EventBridge: the wait times out
    (JobWaitTimeoutSeconds, 6 s here) and the run reconciles. Then the lost event arrives
    late, and every job's event arrives a second time: the callback handler must answer
    harmlessly. (test_lost_callback.py loses every event of a run, with 1 s waits.)"""
    key = "incoming/churn/fm-callback.csv"
    row = matrix.row("callback lost (Train Completed event)")
    with faults.aws_error("events", "PutEvents", "InternalFailure",
                          match=_is_job_event("-train", "TrainingJobStatus")) as fault:
        run = matrix.train(key, GOOD)
    assert fault.hits >= 1
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert "ReconcileTrain" in run.path and "ReconcilePreprocess" not in run.path
    timed_out = run.first("TaskTimedOut")
    row.outcome = "SUCCEEDED"
    row.state = "absorbed: Train TaskTimedOut (States.Timeout) -> ReconcileTrain"
    detect = round(stamp(timed_out["timestamp"]) - (fault.first_hit or 0), 2)
    if detect >= 0:
        row.detect_s = row.detect_unscaled_s = detect  # a task timeout: not scaled
    else:  # a loaded machine: the job outlasted the 6 s wait, so the wait ended before the event
        row.checks.append(f"the wait timed out {-detect:.1f} s before the job ended (slow job)")
    row.retry = "n/a (the run itself succeeded)"

    twice = matrix.row("callback late + twice (duplicates)")
    history = len(run.events)
    rid = run.description["name"]
    callback = matrix.function("JobCallbackFunction")
    failures = len(lambda_runtime.async_failures())
    results = []
    for job, kind, detail_type in ((f"{rid}-train", "training", "SageMaker Training Job State Change"),
                                   (f"{rid}-preprocess", "processing", "SageMaker Processing Job State Change"),
                                   (f"{rid}-evaluate", "processing", "SageMaker Processing Job State Change")):
        described = (matrix.sm.describe_training_job(TrainingJobName=job) if kind == "training"
                     else matrix.sm.describe_processing_job(ProcessingJobName=job))
        described.pop("ResponseMetadata", None)
        detail = json.dumps(described, default=lambda v: int(v.timestamp() * 1000))
        event = {"Source": "aws.sagemaker", "DetailType": detail_type, "Detail": detail, "Resources": [job]}
        matrix.local.client("events").put_events(Entries=[event, event])  # the real path, twice
        payload = {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.sagemaker",
                   "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                   "resources": [job], "detail": json.loads(detail)}
        response = matrix.local.client("lambda").invoke(FunctionName=callback, Payload=json.dumps(payload).encode())
        assert "FunctionError" not in response
        results.append(json.loads(response["Payload"].read()))
    assert lambda_runtime.drain(30)
    assert len(lambda_runtime.async_failures()) == failures, lambda_runtime.async_failures()[failures:]
    assert all(r.get("ignored") or r.get("task") == "already-closed" for r in results), results
    again = matrix.follow(run.arn)
    assert again.status == "SUCCEEDED" and len(again.events) == history, "the run was not touched"
    twice.outcome = "harmless"
    twice.state = "; ".join(sorted({r.get("task") or "ignored: no waiting task" for r in results}))
    twice.retry = "n/a (nothing failed)"
    twice.checks.append("late event after reconcile and 2x each job event: no handler error, history unchanged")


def test_deploy_update_rolls_back(matrix: Matrix) -> None:
    """A new model registers and deploys (the deployment rule on again); the 5xx alarm fires
    during the blue/green bake: the update rolls back."""
    key = "incoming/churn/fm-deploy.csv"
    row = matrix.row("deploy: UpdateEndpoint rolled back (5xx alarm)")
    known = {e["executionArn"] for e in executions.executions(matrix.sfn, matrix.local.outputs["DeployPipelineArn"])}
    _deploy_rule(matrix.local, enabled=True)
    try:
        run = matrix.train(key, GOOD)
        assert run.status == "SUCCEEDED", run.description.get("cause")
        arn = _new_execution(matrix, "DeployPipelineArn", known)
    finally:
        _deploy_rule(matrix.local, enabled=False)
    cw, alarm = matrix.local.client("cloudwatch"), f"{matrix.endpoint}-5xx"
    wait_until(lambda: matrix.sm.describe_endpoint(EndpointName=matrix.endpoint)["EndpointStatus"] == "Updating",
               60, "the endpoint update started")
    t0 = time.time()
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="fault matrix: 5xx during the bake")
    try:
        deploy = matrix.follow(arn)
    finally:
        cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="fault matrix: over")
    assert deploy.status == "FAILED"
    assert deploy.description["error"] == "DeployEndpointFailed"
    assert "DeploymentRolledBack" in deploy.description["cause"]
    assert matrix.sm.describe_endpoint(EndpointName=matrix.endpoint)["EndpointConfigName"] == matrix.serving_config
    [message] = matrix.notifications("Autoloop: deployment failed")
    assert "DeploymentRolledBack" in message and "keeps serving the previous model" in message
    row.outcome = "FAILED"
    row.state = f"DeployEndpointFailed: {deploy.description['cause'][:80]}"
    row.detect_s = round(stamp(deploy.first("ExecutionFailed")["timestamp"]) - t0, 2)
    row.notification = message[:110]
    row.checks.append("old config kept serving")

    # Retry: the package's event delivered again (a new execution with the same input).
    retried = matrix.follow(matrix.sfn.start_execution(
        stateMachineArn=matrix.local.outputs["DeployPipelineArn"], name=f"retry-{uuid.uuid4().hex[:12]}",
        input=deploy.description["input"])["executionArn"])
    assert retried.status == "SUCCEEDED", retried.description.get("cause")
    matrix.serving_config = matrix.sm.describe_endpoint(EndpointName=matrix.endpoint)["EndpointConfigName"]
    assert matrix.serving_config == retried.output["plan"]["config_name"]
    row.retry = "same event re-sent: update SUCCEEDED"


def test_transform_job_fails(matrix: Matrix) -> None:
    month, prefix = "2026-04", f"batch/{MODEL}/2026-04/"
    row = matrix.row("transform job fails")
    body = datagen.generate(300, seed=9).drop(columns=[datagen.LABEL]).to_csv(index=False).encode()
    matrix.s3.put_object(Bucket=matrix.data, Key=prefix + "a.csv", Body=body)
    matrix.uploads.append((prefix + "a.csv", matrix.s3.head_object(Bucket=matrix.data, Key=prefix + "a.csv")[
        "VersionId"], sha(body)))
    arn = batch_demo.start_month(matrix.local.outputs["BatchTransformArn"], MODEL, month)
    with faults.job_failure("-transform", "ClientError: injected fault: the model container exited with code 1",
                            kind="transform", times=1):
        t0 = time.time()
        run = matrix.follow(arn)
    assert run.status == "FAILED" and run.description["error"] == "TransformFailed", run.description
    assert "injected fault" in run.description["cause"]
    assert run.path[-3:] == ["TransformFailed", "NotifyFailure", "RunFailed"]
    [message] = matrix.notifications("Autoloop: batch transform failed")
    assert "failed at Transform" in message and "injected fault" in message
    published = f"predictions/{MODEL}/month={month}/"
    assert matrix.s3.list_objects_v2(Bucket=matrix.data, Prefix=published).get("KeyCount", 0) == 0
    row.outcome = "FAILED"
    row.state = f"TransformFailed: {run.description['cause'][:80]}"
    row.detect_s = round(stamp(run.first("ExecutionFailed")["timestamp"]) - t0, 2)
    row.detect_unscaled_s = round(row.detect_s + run.retry_waits() * (1 / TIME_SCALE - 1), 1)
    row.notification = message[:110]
    row.checks.append("nothing published for the month")

    rerun = matrix.follow(batch_demo.start_month(matrix.local.outputs["BatchTransformArn"], MODEL, month))
    assert rerun.status == "SUCCEEDED", rerun.description.get("cause")
    assert rerun.output["batch"]["attempt"] == 2
    assert matrix.s3.list_objects_v2(Bucket=matrix.data, Prefix=published + "_report.json")["KeyCount"] == 1
    row.retry = "month run again (attempt 2) SUCCEEDED"


def test_drift_handler_cannot_read_the_report(matrix: Matrix) -> None:
    row = matrix.row("drift handler: S3 SlowDown on the report")
    schedule = f"{matrix.endpoint}-dq"
    prefix = f"monitoring/{matrix.endpoint}/{schedule}/2026/04/30/12"
    report = {"violations": [{"feature_name": "monthly_charges", "constraint_check_type": "baseline_drift_check",
                              "description": "Baseline drift distance: 0.05 exceeds threshold: 0.1"}]}
    matrix.s3.put_object(Bucket=matrix.artifacts, Key=f"{prefix}/constraint_violations.json",
                         Body=json.dumps(report).encode())
    event = json.loads((ROOT / "events" / "sagemaker_monitoring_job_completed.json").read_text())
    detail = event["detail"]
    detail["ProcessingJobName"] = f"model-monitoring-fm-{uuid.uuid4().hex[:8]}"
    detail["Environment"].update({"sagemaker_endpoint_name": matrix.endpoint,
                                  "sagemaker_monitoring_schedule_name": schedule})
    for output in detail["ProcessingOutputConfig"]["Outputs"]:
        output["S3Output"]["S3Uri"] = f"s3://{matrix.artifacts}/{prefix}"
    event = record_processing_job(event)  # the handler describes the job the event names
    entry = {"Source": "aws.sagemaker", "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
             "Resources": event["resources"]}
    handler = matrix.function("DriftHandlerFunction")
    before = len(lambda_runtime.async_failures())
    trainings = len(list(executions.executions(matrix.sfn, matrix.local.outputs["TrainingPipelineArn"])))
    with faults.aws_error("s3", "GetObject", "SlowDown", match="constraint_violations.json"):
        t0 = time.time()
        matrix.local.client("events").put_events(Entries=[entry])
        assert lambda_runtime.drain(60)
    failed = [f for f in lambda_runtime.async_failures()[before:] if f["function_name"] == handler]
    assert len(failed) == 1 and failed[0]["attempts"] == 3, lambda_runtime.async_failures()[before:]
    error = json.loads(failed[0]["error"])
    assert error["errorType"] == "AwsThrottled" and "SlowDown" in error["errorMessage"]
    messages = matrix.notifications("Autoloop: drift check failed")
    assert messages and all("AwsThrottled" in m and "Nothing was retrained" in m for m in messages)
    assert len(list(executions.executions(matrix.sfn, matrix.local.outputs["TrainingPipelineArn"]))) == trainings
    row.outcome = "FAILED (3 async attempts)"
    row.state = f"invocation error AwsThrottled: {error['errorMessage'][:70]}"
    row.detect_s = round(datetime.fromisoformat(failed[0]["time"]).timestamp() - t0, 2)
    row.notification = messages[0][:110]
    row.checks.append(f"no retrain started; {len(messages)} notification(s), one per attempt")

    matrix.local.client("events").put_events(Entries=[entry])  # the same event, delivered again
    assert lambda_runtime.drain(60)
    assert len(lambda_runtime.async_failures()) == before + 1
    [message] = matrix.notifications("Autoloop: drift detected")
    assert "monthly_charges" in message and "No retrain" in message
    row.retry = "same event re-delivered: SUCCEEDED (notified, no retrain)"


def test_production_served_throughout_and_nothing_was_lost(matrix: Matrix, record_property: Any) -> None:
    record_property("figures", "\n".join(["fault-injection matrix", *format_matrix(matrix)]))
    traffic = matrix.traffic
    assert traffic is not None
    served = traffic.ok  # still serving now: more calls answered, and none failed
    wait_until(lambda: traffic.ok > served + 5 or traffic.failed, 60, "more calls answered")
    assert traffic.ok > 0 and traffic.failed == 0, traffic.errors[:3]
    assert matrix.sm.describe_endpoint(EndpointName=matrix.endpoint)["EndpointConfigName"] == matrix.serving_config
    # Raw data: every version of every upload, byte for byte.
    for key, version, digest in matrix.uploads:
        body = matrix.s3.get_object(Bucket=matrix.data, Key=key, VersionId=version)["Body"].read()
        assert sha(body) == digest, (key, version)
    listed = matrix.s3.list_object_versions(Bucket=matrix.data, Prefix="incoming/")["Versions"]
    assert {(v["Key"], v["VersionId"]) for v in listed} >= {(k, v) for k, v, _ in matrix.uploads if
                                                             k.startswith("incoming/")}
    # Earlier artifacts: the first model and every registered package.
    base = matrix.base  # type: ignore[attr-defined]
    assert _read_uri(matrix, base.output["jobs"]["train"]["model_artifacts"]) == matrix.base_model  # type: ignore[attr-defined]
    for package in _packages(matrix):
        described = matrix.sm.describe_model_package(ModelPackageName=package)
        _read_uri(matrix, described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    assert all(r.retry != "pending" for r in matrix.rows), [r.fault for r in matrix.rows if r.retry == "pending"]
    assert not faults.active(), "every row cleared its faults"


def _packages(m: Matrix) -> list[str]:
    listed = m.sm.list_model_packages(ModelPackageGroupName=f"{STACK}-{MODEL}", MaxResults=100)
    return sorted(p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"])

