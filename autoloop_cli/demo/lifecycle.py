"""The local lifecycle demo: boot template.yaml, then run the whole loop as a user would.

upload -> TrainingPipeline -> registered (Approved in dev) -> DeployPipeline: endpoint,
data capture, monitoring baseline, an hourly Scheduler schedule -> normal traffic, then
customers whose features and churn behaviour have changed -> a monitoring run finds the
drift but no labels yet: notified, no retrain -> ground truth arrives -> the next run finds
the drift and the quality drop on the labelled requests -> retrain on those fresh labels ->
the gate scores challenger and champion on the same holdout -> blue/green update while
traffic flows -> the monthly batch transform, fired by its schedule.

Everything goes through the local AWS as a real client would: boto3 against the local
endpoint. The only local-only calls are the ones that stand in for time passing: flushing
data capture and firing the hourly monitoring schedule now.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoloop_cli import executions
from autoloop_cli.console import Console
from autoloop_cli.mlflow_server import MlflowServer, ui_command
from localaws import clients

if TYPE_CHECKING:
    import pandas as pd

    from autoloop.config import ModelConfig


class DemoError(Exception):
    """A demo that cannot start: the message says what to pass."""

ROOT = Path(__file__).resolve().parents[2]
STACK = "autoloop-local"
MODEL = "churn"
# Real template parameters, short enough for a demo: the bake and termination waits of
# the blue/green update, and the expected monitoring window (calibrates the thresholds).
DEMO_PARAMETERS = {"BlueGreenBakeSeconds": "3", "TerminationWaitSeconds": "1", "MonitoringSampleSize": "400"}
#: Requests sent after the first deploy: customers like the training data, then customers whose
#: features and whose relationship to churn have both moved (datagen's drift 1).
NORMAL_ROWS, DRIFTED_ROWS = 300, 1000


@dataclass
class DemoResult:
    runs: list[executions.RunSummary] = field(default_factory=list)
    wall_seconds: float = 0.0
    ml_seconds: float = 0.0
    lambda_invocations: int = 0
    failed_invocations: int | None = None
    invocations_during_update: int = 0
    drift: dict[str, Any] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    report: Path | None = None
    runtimes: list[str] = field(default_factory=list)  # the Pythons the jobs ran on
    #: The MLflow server the stack logged to (None: tracking off); still running with keep_server.
    tracking: MlflowServer | None = None

    @property
    def status(self) -> str:
        failed = [r for r in self.runs if r.status != "SUCCEEDED"]
        return "SUCCEEDED" if self.runs and not failed else "FAILED"

    @property
    def first(self) -> executions.RunSummary:
        return self.runs[0]


# ----------------------------------------------------------------------------- helpers
def job_runtimes(job_names: Iterable[str]) -> list[str]:
    """The distinct lines the jobs' logs open with: which Python each ran on (localaws.sagemaker.runtimes)."""
    from localaws.sagemaker import runtimes
    from localaws.sagemaker.jobs import runner

    found: dict[str, None] = {}
    for name in job_names:
        log = runner.job_sandbox(name) / "logs.txt"
        if log.is_file():
            found.update(dict.fromkeys(runtimes.lines(log.read_text(errors="replace"))))
    return list(found)


def _subscribe_queue(topic_arn: str) -> str:
    sqs = clients.client("sqs")
    url = sqs.create_queue(QueueName="autoloop-demo-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _drain_queue(url: str) -> list[str]:
    sqs, messages = clients.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            body = json.loads(message["Body"])
            messages.append(f"{body.get('Subject', '')}: {body.get('Message', '')}")
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _arns(state_machine_arn: str) -> set[str]:
    return {e["executionArn"] for e in executions.executions(clients.client("stepfunctions"), state_machine_arn)}


def wait_for_new_execution(state_machine_arn: str, known: set[str], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _arns(state_machine_arn) - known
        if new:
            return sorted(new)[0]
        time.sleep(0.1)
    raise TimeoutError(f"no {what} execution started within {timeout:.0f} s; see .autoloop/logs/")


def follow(name: str, arn: str, console: Console, timeout: float) -> executions.RunSummary:
    sfn = clients.client("stepfunctions")
    console.say(f"      {name} execution {arn.rsplit(':', 1)[-1]}")
    started = time.perf_counter()
    description = executions.follow(sfn, arn, timeout=timeout, on_step=lambda s: console.say(f"        -> {s.name}"))
    events = executions.history(sfn, arn)
    steps = executions.path(events)
    return executions.RunSummary(name, arn, description["status"], [s.name for s in steps], steps,
                      executions.transitions(events), time.perf_counter() - started, dict(description))


def _rows(rows: int, seed: int, drift: float) -> list[str]:
    from autoloop_cli import datagen

    frame = datagen.generate(rows, seed=seed, drift=drift).drop(columns=["churned"])
    return frame.to_csv(index=False, header=False).strip().split("\n")


class Traffic:
    """Invokes the endpoint from a background thread and counts failures."""

    def __init__(self, endpoint: str, rows: list[str], interval: float = 0.01) -> None:
        self.endpoint, self.rows, self.interval = endpoint, rows, interval
        self.ok = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def _run(self) -> None:
        runtime = clients.client("sagemaker-runtime")
        i = 0
        while not self._stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Accept="text/csv",
                                        Body=self.rows[i % len(self.rows)].encode())
                self.ok += 1
            except Exception as exc:
                self.failed += 1
                self.errors.append(str(exc)[:200])
            i += 1
            time.sleep(self.interval)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def invoke_batch(endpoint: str, rows: list[str], concurrency: int = 8,
                 inference_ids: list[str] | None = None) -> list[float]:
    """One single-row request per row, from ``concurrency`` callers at once (as an endpoint's
    clients would); the predictions come back in the rows' order. With ``inference_ids``, each
    request carries its id (captured with it, so ground truth can be joined later)."""
    runtime = clients.client("sagemaker-runtime")  # boto3 clients are safe to share between threads
    ids = inference_ids or [None] * len(rows)

    def predict(pair: tuple[str, str | None]) -> float:
        row, inference_id = pair
        extra = {"InferenceId": inference_id} if inference_id else {}
        body = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv",
                                       Body=row.encode(), **extra)["Body"]
        return float(body.read().decode().strip())

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(predict, zip(rows, ids, strict=True)))


@dataclass
class Requests:
    """Generated customers sent to the endpoint: their feature rows, their inference ids, and the
    labels that arrive later as ground truth."""

    rows: list[str]
    ids: list[str]
    labels: list[int]
    predictions: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, n: int, seed: int, drift: float, prefix: str) -> Requests:
        from autoloop_cli import datagen

        frame = datagen.generate(n, seed=seed, drift=drift)
        labels = [int(v) for v in frame["churned"]]
        rows = frame.drop(columns=["churned"]).to_csv(index=False, header=False).strip().split("\n")
        return cls(rows, [f"{prefix}-{seed}-{i}" for i in range(n)], labels)

    @property
    def mean_prediction(self) -> float:
        return sum(self.predictions) / max(1, len(self.predictions))

    @property
    def positive_rate(self) -> float:
        return sum(self.labels) / max(1, len(self.labels))


def datagen_positive_rate(rows: int = 2000, seed: int = 7) -> float:
    from autoloop_cli import datagen

    return float(datagen.generate(rows, seed=seed)["churned"].mean())


def upload_ground_truth(bucket: str, batches: list[Requests]) -> list[str]:
    """The labels of the requests, as a labelling team would deliver them: Model Monitor's
    ground-truth JSONL under ``groundtruth/<model>/yyyy/mm/dd/hh/`` (the hour they arrive)."""
    from autoloop_cli import datagen

    files = datagen.ground_truth_files(MODEL, [label for b in batches for label in b.labels],
                                       [i for b in batches for i in b.ids], datetime.now(UTC))
    s3 = clients.client("s3")
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return list(files)


def _read_json(uri: str) -> Any:
    bucket, key = uri[5:].split("/", 1)
    return json.loads(clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


# ----------------------------------------------------------------------------- the demo
def boot(console: Console, endpoint_url: str, tracking: MlflowServer | None = None) -> dict[str, str]:
    """Three stages: the local AWS (started), template.yaml deployed into it, ml/ and models/
    published. With ``tracking`` (started, still booting), the stack logs to it: the publishing
    stage ends when it answers. Returns the stack's outputs."""
    from autoloop_cli import publish
    from localaws.cloudformation import stack

    with console.stage(f"Starting the local AWS (moto server at {endpoint_url})"):
        pass
    with console.stage("Deploying template.yaml into the local AWS"):
        parameters = {**DEMO_PARAMETERS, **({"MlflowTrackingUri": tracking.url} if tracking else {})}
        deployed = stack.deploy(ROOT / "template.yaml", stack_name=STACK, project_root=ROOT, parameters=parameters)
        console.say(f"      stack {STACK}: {len(deployed.resources)} resources")
    with console.stage("Publishing ml/ and models/"):
        published = publish.publish(clients.client("s3"), deployed.outputs["ArtifactsBucketName"])
        console.say(f"      {len(published.scripts)} scripts, models: {', '.join(published.models)}")
        if tracking:
            tracking.wait()
            console.say(f"      MLflow tracking server at {tracking.url} (store {tracking.store_uri})")
    return deployed.outputs


def run(rows: int = 2000, seed: int = 7, timeout: float = 300.0, console: Console | None = None,
        keep_server: bool = False, loop: bool = True, report: Path | None = None, model: str = MODEL,
        data: Path | None = None, story: bool | None = None, tracking: bool = True) -> DemoResult:
    """Run the demo. ``loop=False`` stops after the first registration (no deploy/drift).

    ``tracking``: a local MLflow server (:mod:`autoloop_cli.mlflow_server`, its store under
    ``$AUTOLOOP_LOCAL_HOME/mlflow/``) is started beside the local AWS and the stack logs each
    model's runs to it; stopped at the end (left running with ``keep_server``, in
    ``result.tracking``). The summary says where the store is and how to browse it.

    ``model`` other than churn, or ``data`` (a CSV with the model's columns, label first, instead
    of the example generator's rows): any model of ``models/`` through upload, training, gate,
    registration, deployment, a request to its endpoint and its monthly batch transform (the
    drift-and-labels story needs churn's generator; ``story=False`` runs churn the short way too).

    At the end, while the local AWS is still up, the HTML lifecycle report of the last
    TrainingPipeline run (the drift retrain in the full loop: drift, champion against
    challenger, the blue/green update) is written to ``report`` (default
    ``$AUTOLOOP_LOCAL_HOME/report.html``); the last line printed gives its path.
    """
    from localaws import local_home, server
    from localaws.awslambda import runtime as lambda_runtime
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    story = model == MODEL and data is None if story is None else story  # churn's drift-and-labels story
    config, frame = _dataset(model, data, rows, seed)  # a bad --model or --data fails before anything starts
    result = DemoResult()
    started = time.perf_counter()
    # First: it boots (5 to 20 s) while the local AWS starts and the stack deploys.
    result.tracking = MlflowServer(local_home(), fresh=True).start() if tracking else None
    try:
        local = server.start()
    except BaseException:
        if result.tracking:
            result.tracking.stop()
        raise
    console = console or Console(stages=(12 if story else 8) if loop else 5)
    try:
        outputs = result.outputs = boot(console, local.endpoint_url, result.tracking)
        training_sm, deploy_sm = outputs["TrainingPipelineArn"], outputs["DeployPipelineArn"]
        queue = _subscribe_queue(outputs["NotificationTopicArn"])
        key = f"incoming/{model}/demo-{time.strftime('%Y%m%dT%H%M%S')}.csv"
        source = data or "generated"
        with console.stage(f"Uploading {len(frame):,} {source} rows to s3://{outputs['DataBucketName']}/{key}"):
            known_training, known_deploy = _arns(training_sm), _arns(deploy_sm)
            body = data.read_bytes() if data else frame.to_csv(index=False).encode()
            clients.client("s3").put_object(Bucket=outputs["DataBucketName"], Key=key, Body=body)
        with console.stage("TrainingPipeline (started by the template's EventBridge rule on the upload)"):
            arn = wait_for_new_execution(training_sm, known_training, 30, "TrainingPipeline")
            known_training.add(arn)
            result.runs.append(follow("TrainingPipeline", arn, console, timeout))
        registered = result.status == "SUCCEEDED" and result.first.path[-1] == "Succeeded"
        if loop and registered and story:
            _loop(console, result, outputs, known_training, known_deploy, timeout)
        elif loop and registered:
            _serve_and_score(console, result, outputs, known_deploy, config, frame, timeout)
        timings = sagemaker_jobs.job_timings()
        result.ml_seconds = sum(t.get("compute_seconds", 0.0) for t in timings.values())
        result.runtimes = job_runtimes(timings)
        result.lambda_invocations = sum(lambda_runtime.invocations().values())
        result.wall_seconds = time.perf_counter() - started
        result.notifications = _drain_queue(queue)
        summarise(console, result)
        result.report = write_report(console, result, report)
        return result
    finally:
        if not keep_server:
            local.stop()
            if result.tracking:
                result.tracking.stop()


def _loop(console: Console, result: DemoResult, outputs: dict[str, str], known_training: set[str],
          known_deploy: set[str], timeout: float) -> None:
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints

    endpoint = f"{STACK}-{MODEL}"
    training_sm, deploy_sm = outputs["TrainingPipelineArn"], outputs["DeployPipelineArn"]
    monitoring_sm = outputs["MonitoringPipelineArn"]
    with console.stage("DeployPipeline (started by the Model Package State Change: Approved)"):
        arn = wait_for_new_execution(deploy_sm, known_deploy, 30, "DeployPipeline")
        known_deploy.add(arn)
        deploy = follow("DeployPipeline", arn, console, timeout)
        result.runs.append(deploy)
        if deploy.status != "SUCCEEDED":
            return
    schedule = deploy.output["monitoring"]["schedule_name"]
    with console.stage(f"Traffic to {endpoint}: {NORMAL_ROWS} normal rows, then {DRIFTED_ROWS} drifted rows "
                       "(each request with an InferenceId)"):
        normal = Requests.of(NORMAL_ROWS, seed=101, drift=0.0, prefix="normal")
        drifted = Requests.of(DRIFTED_ROWS, seed=102, drift=1.0, prefix="drifted")
        for batch in (normal, drifted):
            batch.predictions = invoke_batch(endpoint, batch.rows, inference_ids=batch.ids)
        console.say(f"      mean churn probability: normal {normal.mean_prediction:.3f}, "
                    f"drifted {drifted.mean_prediction:.3f}; churn rate among the drifted customers "
                    f"{drifted.positive_rate:.3f} (the model was trained where it was "
                    f"{datagen_positive_rate():.3f})")
        sagemaker_endpoints.flush_capture()
    with console.stage(f"Monitoring run (the hourly schedule {schedule}, fired now): no labels yet"):
        first = _monitoring_run(monitoring_sm, schedule, console, timeout)
        result.runs.append(first)
        decision = first.output.get("decision") or {}
        console.say(f"      decision: {decision.get('reason')}")
    with console.stage(f"Ground truth arrives for the {NORMAL_ROWS + DRIFTED_ROWS:,} requests "
                       f"(s3://{outputs['DataBucketName']}/groundtruth/{MODEL}/...)"):
        keys = upload_ground_truth(outputs["DataBucketName"], [normal, drifted])
        console.say(f"      {len(keys)} file(s) in Model Monitor's ground-truth format")
    with console.stage("Monitoring run again: drift and a quality drop, with labels -> retrain on them"):
        second = _monitoring_run(monitoring_sm, schedule, console, timeout)
        result.runs.append(second)
        decision = second.output.get("decision") or {}
        console.say(f"      decision: {decision.get('reason')}")
        result.drift = monitoring_summary(second.output)
        if not decision.get("retrain"):
            return
        arn = wait_for_new_execution(training_sm, known_training, 60, "quality-triggered TrainingPipeline")
        known_training.add(arn)
        retrain = follow("TrainingPipeline (fresh labels)", arn, console, timeout)
        result.runs.append(retrain)
        if retrain.status != "SUCCEEDED" or retrain.path[-1] != "Succeeded":
            return
    with console.stage("DeployPipeline: blue/green update while traffic flows"):
        with Traffic(endpoint, _rows(200, seed=103, drift=1.0)) as traffic:
            arn = wait_for_new_execution(deploy_sm, known_deploy, 30, "DeployPipeline (update)")
            known_deploy.add(arn)
            result.runs.append(follow("DeployPipeline (update)", arn, console, timeout))
        result.failed_invocations = traffic.failed
        result.invocations_during_update = traffic.ok + traffic.failed
        for error in traffic.errors[:3]:
            console.say(f"      invocation error: {error}")
    from autoloop_cli.demo import batch as batch_demo

    result.runs.append(batch_demo.run_month(outputs, stack=STACK, console=console, timeout=timeout))  # type: ignore[arg-type]


def _dataset(model: str, data: Path | None, rows: int, seed: int) -> tuple[ModelConfig, pd.DataFrame]:
    """The model's config and the rows to train on: ``data`` (read as the pipeline will, to plan
    the demo), else the model's example generator. A model of ``models/`` without a generator
    needs ``data``."""
    import pandas as pd

    from autoloop_cli import datagen, publish

    folders = publish.model_folders()  # a bad folder fails here, before the local AWS starts
    if model not in folders:
        raise DemoError(f"no model {model!r} in models/ (models: {', '.join(folders)}).")
    config = folders[model].config
    if data is not None:
        try:
            return config, pd.read_csv(data)
        except (OSError, ValueError) as exc:
            raise DemoError(f"cannot read --data {data}: {exc}") from exc
    if model not in datagen.GENERATORS:
        raise DemoError(f"model {model!r} has no example data: pass --data <csv> with its columns "
                        f"({', '.join(config.columns)}).")
    return config, datagen.GENERATORS[model](rows, seed=seed)


def _serve_and_score(console: Console, result: DemoResult, outputs: dict[str, str], known_deploy: set[str],
                     config: ModelConfig, frame: pd.DataFrame, timeout: float) -> None:
    """Any model after its registration: the deployment, one request to the endpoint, the month."""
    from autoloop_cli.demo import batch as batch_demo

    model = config.model
    endpoint = f"{STACK}-{model}"
    with console.stage("DeployPipeline (started by the Model Package State Change: Approved)"):
        arn = wait_for_new_execution(outputs["DeployPipelineArn"], known_deploy, 30, "DeployPipeline")
        known_deploy.add(arn)
        deploy = follow("DeployPipeline", arn, console, timeout)
        result.runs.append(deploy)
        if deploy.status != "SUCCEEDED":
            return
    features = frame[list(config.features)]
    with console.stage(f"A request to {endpoint}: {min(len(features), 5)} rows as CSV, answer as JSON"):
        answer = clients.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
            Body=features.head(5).to_csv(index=False, header=False).encode())
        console.say(f"      {answer['Body'].read().decode()[:300]}")
    month = features.copy()
    for column in config.batch.id_columns:  # the month's files carry the ids the predictions keep
        month.insert(0, column, [f"{column}-{i}" for i in range(len(month))])
    result.runs.append(batch_demo.run_month(outputs, stack=STACK, model=model, console=console, timeout=timeout,
                                            frame=month))


def _monitoring_run(state_machine: str, schedule: str, console: Console, timeout: float) -> executions.RunSummary:
    """Fire the endpoint's Scheduler schedule now (what its hourly clock does) and follow the run."""
    from localaws.scheduler import schedules

    fired = schedules.fire(schedule)
    if not fired.execution_arn:
        raise RuntimeError(f"schedule {schedule} started no MonitoringPipeline execution: {fired.result}")
    return follow("MonitoringPipeline", fired.execution_arn, console, timeout)


def monitoring_summary(output: dict[str, Any]) -> dict[str, Any]:
    """The run's report as the demo shows it: each feature's distance and its calibrated threshold,
    and the model's metric over the labelled requests."""
    plan = output.get("plan") or {}
    if not plan.get("report_uri"):
        return {}
    report = _read_json(plan["report_uri"].rstrip("/") + "/monitoring_report.json")
    return {"report": plan["report_uri"], "rows": report.get("rows"), "features": report.get("features", []),
            "quality": report.get("quality"), "ground_truth": report.get("ground_truth"),
            "labelled_rows": report.get("labelled_rows")}


def write_report(console: Console, result: DemoResult, out: Path | None = None) -> Path | None:
    """The lifecycle report of the last TrainingPipeline run, through the local AWS's API."""
    from autoloop_cli import report as lifecycle
    from localaws import local_home

    training = [r for r in result.runs if r.name.startswith("TrainingPipeline")]
    if not training:
        return None
    path = out or local_home() / "report.html"
    try:
        written = lifecycle.write(training[-1].execution_arn, path, stack_name=STACK)
    except Exception as exc:  # the demo's outcome stands; say why there is no report
        console.say(f"Report: not written ({type(exc).__name__}: {exc})")
        return None
    console.say(f"Report: {written.resolve()}")
    return written


def summarise(console: Console, result: DemoResult) -> None:
    say = console.say
    say()
    say(f"Autoloop local lifecycle: {result.status}")
    for run in result.runs:
        say(f"  {run.name}: {run.status} in {run.seconds:.2f} s, {run.transitions} state transitions")
        say("    " + " -> ".join(run.path))
        if run.status != "SUCCEEDED":
            say(f"    error: {run.description.get('error')}: {run.description.get('cause')}")
    first = result.first.output
    gate = first.get("gate") or {}
    if gate:
        say(f"  First model: {gate['metric_name']} = {gate['metric']:.4f} (threshold {gate['threshold']}), "
            f"package {first.get('model_package', {}).get('arn')}")
        train = (first.get("jobs") or {}).get("train") or {}
        if train.get("model_artifacts"):
            say(f"  Model artifacts: {train['model_artifacts']}")
    if result.drift.get("features"):
        say(f"  Drift on the captured traffic ({result.drift['rows']} requests; report {result.drift['report']}):")
        say(f"    {'feature':<18} {'distance':>9} {'threshold':>10} {'noise':>7}")
        for row in result.drift["features"]:
            flag = "FLAG" if row.get("violated") else "ok"
            say(f"    {row['name']:<18} {row['distance']:9.4f} {row['threshold']:10.4f} {row['noise']:7.4f} {flag}")
        quality = result.drift.get("quality") or {}
        if quality:
            champion = quality.get("champion")
            say(f"  Model quality on {quality.get('labelled_rows')} labelled requests: {quality.get('metric')} "
                f"{quality.get('value'):.4f} (champion " + (f"{champion:.4f}" if champion is not None else "none")
                + f", threshold {quality.get('threshold')})"
                + (f": {quality.get('reason')}" if quality.get("violated") else ""))
    monthly = [r for r in result.runs if r.name.startswith("BatchTransform")]
    if monthly and monthly[0].output.get("report"):
        say("  Monthly batch: " + str(monthly[0].output["report"].get("message", "")).splitlines()[0])
    retrains = [r for r in result.runs[1:] if r.name.startswith("TrainingPipeline")]
    if retrains:
        retrain = retrains[0].output.get("gate") or {}
        if retrain:
            champion = retrain.get("champion_metric")
            say(f"  Retrain gate: {retrain['metric']:.4f} vs champion "
                + (f"{champion:.4f}" if champion is not None else "(none)")
                + f" on the same {retrain.get('holdout_rows')} holdout rows")
    if result.failed_invocations is not None:
        say(f"  Invocations during the blue/green update: {result.invocations_during_update}, "
            f"failed: {result.failed_invocations}")
    say(f"  Notifications: {len(result.notifications)}")
    for note in result.notifications:
        say(f"    {note.splitlines()[0][:150]}")
    say(f"  Wall time {result.wall_seconds:.2f} s (boot included); ML compute {result.ml_seconds:.2f} s; "
        f"{result.lambda_invocations} Lambda invocations")
    for line in result.runtimes:
        say(f"  Jobs ran on {line}")
    say("  Logs: .autoloop/logs/ (functions), .autoloop/jobs/ (jobs), .autoloop/endpoints/ (endpoints)")
    if result.tracking:
        say(f"  MLflow: experiment {STACK}/<model> in {result.tracking.store_uri}; browse it with `autoloop ui` "
            f"(runs: {ui_command(result.tracking.home)})")
