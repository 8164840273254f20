"""Gather one execution's lifecycle through the public AWS APIs (boto3 only).

Everything here is a documented API call, so it works against the local AWS (through
``AWS_ENDPOINT_URL``) and against a deployed stack on AWS alike:

- Step Functions: ``describe_execution``, ``get_execution_history``, ``describe_state_machine``
  (the ASL), ``list_executions`` (the DeployPipeline's history);
- SageMaker: ``describe_{processing,training,transform}_job`` for the jobs the run launched
  (their names are in the task results of the history), ``describe_model_package`` and
  ``list_model_packages`` (metrics, champion), monitoring schedules and executions;
- S3: ``evaluation.json``, the Model Monitor ``statistics.json``, ``constraints.json`` and
  ``constraint_violations.json``; CloudWatch: the ``feature_baseline_drift_<feature>`` metrics;
- CloudFormation: the stack's outputs (the other state machines, the endpoint).

A part that has no data (a training-only run has no endpoint, hence no drift) is recorded as a
note that says why; it never stops the report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from autoloop_cli import executions as sfn_executions

log = logging.getLogger(__name__)

JOB_KINDS = ("processing", "training", "transform")
DRIFT_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
FAILURE_EVENTS = ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut",
                  "ActivityFailed", "ActivityTimedOut", "TaskSubmitFailed", "TaskStartFailed",
                  "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed", "ExecutionFailed",
                  "ExecutionTimedOut", "ExecutionAborted")


class ReportError(Exception):
    """The report cannot be made at all (unknown execution, no credentials); says what to do."""


# ----------------------------------------------------------------------------- the model
@dataclass
class StateRun:
    name: str
    type: str
    entered: datetime
    exited: datetime | None
    failed: bool = False

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None


@dataclass
class JobRun:
    name: str
    kind: str
    status: str
    state: str  # the state that launched or waited for it
    created: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    detail: str = ""


@dataclass
class ExecutionRun:
    arn: str
    name: str
    state_machine: str
    status: str
    start: datetime
    stop: datetime | None
    definition: dict[str, Any]
    states: list[StateRun]
    jobs: list[JobRun]
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    # each state's output as it exited (a failed execution has no output of its own)
    state_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""
    cause: str = ""

    @property
    def seconds(self) -> float | None:
        return (self.stop - self.start).total_seconds() if self.stop else None

    def result(self, key: str) -> dict[str, Any]:
        """A step's result (``$.<key>``): from the output, else from the last state that had it."""
        if isinstance(self.output.get(key), dict):
            return dict(self.output[key])
        for state in reversed(self.states):
            value = self.state_outputs.get(state.name, {}).get(key)
            if isinstance(value, dict):
                return dict(value)
        return {}

    @property
    def failed_states(self) -> list[str]:
        return [s.name for s in self.states if s.failed]


@dataclass
class Evaluation:
    metric_name: str
    threshold: float | None
    challenger: str  # package ARN, or the run id when nothing was registered
    metrics: dict[str, float]
    gate: dict[str, Any]
    passed: bool | None
    champion: str | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluation_uri: str = ""
    #: How many held-out rows both models were scored on (None: no champion, or an older gate).
    holdout_rows: int | None = None
    #: True when champion_metrics come from this run's evaluate job (the same rows as the
    #: challenger's), False when they are the figures the champion registered with.
    same_holdout: bool = False
    direction: str | None = None
    verdict: str | None = None
    #: What produced each package (autoloop.registry.lineage_of): script bundle, image, data, ...
    lineage: dict[str, str] = field(default_factory=dict)
    champion_lineage: dict[str, str] = field(default_factory=dict)
    reason: str = ""


@dataclass
class FeatureDrift:
    name: str
    kind: str  # numeric | categorical
    labels: list[str]  # bin labels
    baseline: list[float]  # share of rows per bin
    current: list[float]
    baseline_n: float
    current_n: float
    distance: float | None
    threshold: float | None
    default_threshold: float | None
    checks: list[str] = field(default_factory=list)  # violated checks

    @property
    def drifted(self) -> bool:
        return "baseline_drift_check" in self.checks


@dataclass
class Drift:
    endpoint: str
    schedule: str
    job_name: str
    when: datetime | None
    status: str
    report_uri: str
    baseline_uri: str
    constraints_uri: str
    features: list[FeatureDrift]
    distance_source: str


@dataclass
class Deployment:
    execution: str
    arn: str
    status: str
    start: datetime
    stop: datetime | None
    action: str
    reason: str
    package_version: int | None
    package_arn: str
    config_name: str
    previous_config: str
    run_id: str
    serving_from: datetime | None
    error: str = ""
    cause: str = ""

    @property
    def rolled_back(self) -> bool:
        return "RolledBack" in self.cause or "rollback" in self.reason.lower()


@dataclass
class Report:
    execution: ExecutionRun
    related: list[ExecutionRun] = field(default_factory=list)
    evaluation: Evaluation | None = None
    drift: Drift | None = None
    deployments: list[Deployment] = field(default_factory=list)
    endpoint: dict[str, Any] = field(default_factory=dict)
    stack: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))


# ----------------------------------------------------------------------------- helpers
Clients = Callable[[str], Any]


def _loads(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else (text or {})
    except ValueError:
        return {}


def _s3_json(s3: Any, uri: str) -> Any:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _job_results(value: Any) -> list[dict[str, Any]]:
    """Job results ({"job_name", "kind", ...}) anywhere inside a task's output."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("job_name"), str) and value.get("kind") in JOB_KINDS:
            found.append(value)
        else:
            for item in value.values():
                found += _job_results(item)
    elif isinstance(value, list):
        for item in value:
            found += _job_results(item)
    return found


# ----------------------------------------------------------------------------- executions
def execution(clients: Clients, arn: str, *, jobs: bool = True) -> ExecutionRun:
    sfn = clients("stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=arn)
    except Exception as exc:
        if _error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn", "ResourceNotFound"):
            raise ReportError(
                f"no execution {arn} here ({_error_code(exc)}). Check the ARN and the endpoint (AWS_ENDPOINT_URL "
                "for a local AWS, or the region for AWS); 'autoloop report --latest --stack-name STACK' picks the "
                "newest TrainingPipeline run.") from exc
        raise
    machine = sfn.describe_state_machine(stateMachineArn=described["stateMachineArn"])
    events = sfn_executions.history(sfn, arn)
    run = ExecutionRun(
        arn=arn, name=described["name"], state_machine=machine["name"], status=described["status"],
        start=described["startDate"], stop=described.get("stopDate"),
        definition=_loads(machine.get("definition")), states=_states(events), jobs=[],
        input=_loads(described.get("input")), output=_loads(described.get("output")),
        error=str(described.get("error") or ""), cause=str(described.get("cause") or ""),
    )
    for event in events:
        if event["type"].endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            output = _loads(details.get("output"))
            if isinstance(output, dict):
                run.state_outputs[details["name"]] = output
    if jobs:
        run.jobs = _jobs(clients("sagemaker"), events)
    return run


def _states(events: list[dict[str, Any]]) -> list[StateRun]:
    """The states entered, in order; a state is failed when its last task attempt failed, or
    when it is a Fail state, or when the execution failed while it was running."""
    types = {s.name: s.type for s in sfn_executions.path(events)}
    runs: list[StateRun] = []
    current: StateRun | None = None
    failing = False
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            current = StateRun(name, types.get(name, kind[: -len("StateEntered")]), event["timestamp"], None,
                               failed=kind == "FailStateEntered")
            runs.append(current)
            failing = False
        elif kind.endswith("StateExited") and current is not None:
            current.exited = event["timestamp"]
            current.failed = current.failed or failing
            current = None
        elif kind in FAILURE_EVENTS:
            if current is not None:
                failing = True
                if kind.startswith("Execution"):
                    current.failed = True
        elif kind.endswith("Succeeded") and not kind.startswith("Execution"):
            failing = False
    return runs


def _jobs(sagemaker: Any, events: list[dict[str, Any]]) -> list[JobRun]:
    jobs: dict[str, JobRun] = {}
    state = ""
    for event in events:
        if event["type"].endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        if not event["type"].endswith(("Succeeded", "StateExited")):
            continue
        for result in _job_results(_loads(_detail(event).get("output"))):
            if result["job_name"] not in jobs:
                jobs[result["job_name"]] = JobRun(result["job_name"], result["kind"], str(result.get("status", "")),
                                                  state)
    for job in jobs.values():
        _describe_job(sagemaker, job)
    return list(jobs.values())


def _describe_job(sagemaker: Any, job: JobRun) -> None:
    call, prefix = {"processing": ("describe_processing_job", "Processing"),
                    "training": ("describe_training_job", "Training"),
                    "transform": ("describe_transform_job", "Transform")}[job.kind]
    try:
        described = getattr(sagemaker, call)(**{f"{prefix}JobName": job.name})
    except Exception as exc:  # deleted or never created: keep what the execution recorded
        job.detail = f"not described: {exc}"
        return
    job.status = str(described.get(f"{prefix}JobStatus", job.status))
    job.created = described.get("CreationTime")
    job.started = described.get(f"{prefix}StartTime") or job.created
    job.ended = described.get(f"{prefix}EndTime")
    job.detail = str(described.get("FailureReason") or described.get("ExitMessage") or "")


# ----------------------------------------------------------------------------- the stack
def stack_outputs(clients: Clients, state_machine_arn: str,
                  stack_name: str | None = None) -> tuple[str, dict[str, str]]:
    """The CloudFormation stack that holds the state machine (by its outputs) and its outputs."""
    cfn = clients("cloudformation")
    try:
        if stack_name:
            stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
        else:
            stacks = [s for page in cfn.get_paginator("describe_stacks").paginate() for s in page["Stacks"]]
    except Exception as exc:
        if stack_name:
            raise ReportError(f"stack {stack_name} could not be described: {exc}. Check --stack-name and the "
                              "endpoint (AWS_ENDPOINT_URL for a local AWS; credentials and region for AWS).") from exc
        log.info("no stack outputs: %s", exc)
        return "", {}
    for stack in stacks:
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        if stack_name or state_machine_arn in outputs.values():
            return str(stack["StackName"]), outputs
    return "", {}


def latest_execution(clients: Clients, stack_name: str) -> str:
    """The newest TrainingPipeline execution of a stack."""
    _, outputs = stack_outputs(clients, "", stack_name)  # raises ReportError when it cannot
    machine = outputs.get("TrainingPipelineArn")
    if not machine:
        raise ReportError(f"stack {stack_name} not found, or it has no TrainingPipelineArn output. "
                          "Pass --stack-name of a deployed Autoloop stack (local: autoloop-local).")
    found = list(sfn_executions.executions(clients("stepfunctions"), machine))
    if not found:
        raise ReportError(f"{stack_name}'s TrainingPipeline has no executions yet: upload data first.")
    return str(max(found, key=lambda e: e["startDate"])["executionArn"])


# ----------------------------------------------------------------------------- evaluation
def _metric_values(doc: Any) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    metrics: dict[str, float] = {}
    confusion: dict[str, dict[str, float]] = {}
    for group in (doc or {}).values():
        if not isinstance(group, dict):
            continue
        for name, value in group.items():
            if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                metrics[name] = float(value["value"])
            elif name == "confusion_matrix" and isinstance(value, dict):
                confusion = {str(k): {str(a): float(b) for a, b in v.items()} for k, v in value.items()}
    return metrics, confusion


def _package_metrics(clients: Clients, arn: str) -> dict[str, float]:
    described = clients("sagemaker").describe_model_package(ModelPackageName=arn)
    uri = (((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    if uri:
        return _metric_values(_s3_json(clients("s3"), uri))[0]
    props = described.get("CustomerMetadataProperties") or {}
    if "autoloop:metric-name" in props:
        return {props["autoloop:metric-name"]: float(props["autoloop:metric-value"])}
    return {}


def _lineage(clients: Clients, arn: str, notes: dict[str, str], who: str) -> dict[str, str]:
    """The package's recorded lineage; a note (not a failure) when it cannot be described."""
    from autoloop.registry import lineage_of

    try:
        return lineage_of(clients("sagemaker").describe_model_package(ModelPackageName=arn))
    except Exception as exc:
        notes[f"lineage-{who}"] = f"the {who} {arn} could not be described for its lineage: {exc}"
        return {}


def evaluation(clients: Clients, run: ExecutionRun, notes: dict[str, str]) -> Evaluation | None:
    gate = run.result("gate")
    if not gate and "QualityGate" not in (run.definition.get("States") or {}):
        notes["evaluation"] = (f"{run.state_machine} has no quality gate: models are evaluated by TrainingPipeline "
                               "runs (make a report of one of those).")
        return None
    if not gate:
        notes["evaluation"] = (f"{run.name} has no quality gate result: it stopped before the QualityGate step "
                               f"({run.status}{': ' + run.error if run.error else ''}).")
        return None
    uri = str(gate.get("evaluation_uri") or "")
    metrics: dict[str, float] = {}
    confusion: dict[str, dict[str, float]] = {}
    if uri:
        try:
            metrics, confusion = _metric_values(_s3_json(clients("s3"), uri))
        except Exception as exc:
            notes["evaluation"] = f"evaluation.json not readable ({exc}); the gate's own figures are shown."
    name = str(gate.get("metric_name") or "metric")
    if gate.get("metric") is not None:
        metrics.setdefault(name, float(gate["metric"]))
    package = run.result("model_package").get("arn") or ""
    champion = gate.get("champion_arn")
    champion_metrics: dict[str, float] = {}
    same_holdout = False
    if champion:
        # The champion as this run's evaluate job scored it, on the challenger's held-out rows.
        beside = uri.rsplit("/", 1)[0] + "/champion_evaluation.json" if uri else ""
        try:
            if not beside:
                raise ValueError("the gate names no evaluation")
            champion_metrics, same_holdout = _metric_values(_s3_json(clients("s3"), beside))[0], True
        except Exception as exc:
            try:
                champion_metrics = _package_metrics(clients, str(champion))
                notes["champion"] = (f"champion_evaluation.json not readable ({exc}); the champion's figures are "
                                     "those it registered with, measured on other rows.")
            except Exception as described:
                notes["champion"] = f"the champion {champion} could not be described: {described}"
        if gate.get("champion_metric") is not None:
            champion_metrics.setdefault(name, float(gate["champion_metric"]))
    lineage = _lineage(clients, str(package), notes, "challenger") if package else {}
    champion_lineage = _lineage(clients, str(champion), notes, "champion") if champion else {}
    path = [s.name for s in run.states]
    verdict = gate.get("verdict")
    refused = ("BelowThreshold", "BelowChampion")
    passed: bool | None = None
    if "RegisterModel" in path:
        passed = True
    elif verdict in refused or any(s in path for s in refused):
        passed = False
    threshold = gate.get("threshold")
    rows = gate.get("holdout_rows")
    return Evaluation(metric_name=name, threshold=float(threshold) if threshold is not None else None,
                      challenger=str(package or run.input.get("run_id") or run.name), metrics=metrics, gate=dict(gate),
                      passed=passed, champion=str(champion) if champion else None,
                      champion_metrics=champion_metrics, confusion=confusion, evaluation_uri=uri,
                      holdout_rows=int(rows) if isinstance(rows, int) else None, same_holdout=same_holdout,
                      direction=gate.get("direction"), verdict=str(verdict) if verdict else None,
                      reason=str(gate.get("reason") or ""), lineage=lineage, champion_lineage=champion_lineage)


# ----------------------------------------------------------------------------- deployments
def deployments(clients: Clients, deploy_machine: str, endpoint: str | None) -> list[Deployment]:
    sfn = clients("stepfunctions")
    found: list[Deployment] = []
    for summary in sfn_executions.executions(sfn, deploy_machine):
        arn = summary["executionArn"]
        described = sfn.describe_execution(executionArn=arn)
        output = _loads(described.get("output"))
        events = sfn_executions.history(sfn, arn)
        plan = output.get("plan") or _plan_from_history(events)
        if endpoint and plan.get("endpoint_name") not in (None, endpoint):
            continue
        served = None
        for event in events:
            if (event["type"] == "TaskStateExited"
                    and event["stateExitedEventDetails"]["name"] in ("DeployEndpoint", "ReconcileDeployEndpoint")):
                served = event["timestamp"]
        version = plan.get("package_version")
        found.append(Deployment(
            execution=described["name"], arn=arn, status=described["status"], start=described["startDate"],
            stop=described.get("stopDate"), action=str(plan.get("action") or "?"),
            reason=str(plan.get("reason") or ""), package_version=int(version) if version is not None else None,
            package_arn=str(plan.get("package_arn") or ""), config_name=str(plan.get("config_name") or ""),
            previous_config=str(plan.get("previous_config") or ""), run_id=str(plan.get("run_id") or ""),
            serving_from=served if described["status"] == "SUCCEEDED" else None,
            error=str(described.get("error") or ""), cause=str(described.get("cause") or "")))
    return sorted(found, key=lambda d: d.start)


def _plan_from_history(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event["type"] == "TaskStateExited" and event["stateExitedEventDetails"]["name"] == "PlanDeployment":
            return dict(_loads(event["stateExitedEventDetails"].get("output")).get("plan") or {})
    return {}


# ----------------------------------------------------------------------------- drift
def drift(clients: Clients, run: ExecutionRun, endpoint: str | None, notes: dict[str, str],
          outputs: dict[str, str] | None = None) -> Drift | None:
    """The monitoring run that triggered this run (drift-triggered runs), else the endpoint's
    latest one: a MonitoringPipeline run with the stack's default backend (no Model Monitor API
    is called), a Model Monitor execution with ``MonitoringBackend=model-monitor``."""
    outputs = outputs or {}
    trigger = run.input.get("trigger") or {}
    detail = trigger.get("detail") or {} if trigger.get("type") in {"drift", "quality"} else {}
    if detail.get("report") and not str(detail["report"]).endswith(".json"):
        return _own_drift(clients, str(detail["report"]).rstrip("/"), str(detail.get("baseline") or "").rstrip("/"),
                          endpoint or "", notes)
    if outputs.get("MonitoringBackend") == "autoloop":
        return _latest_own_drift(clients, outputs.get("MonitoringPipelineArn", ""), endpoint, notes)
    return _model_monitor_drift(clients, detail, endpoint, notes)


def _model_monitor_drift(clients: Clients, detail: dict[str, Any], endpoint: str | None,
                         notes: dict[str, str]) -> Drift | None:
    """MonitoringBackend=model-monitor (or a stack without the output): the Model Monitor execution
    named by the trigger, else the endpoint schedule's latest one."""
    sagemaker = clients("sagemaker")
    schedule = str(detail.get("schedule") or "")
    if not schedule and endpoint:
        try:
            schedules = sagemaker.list_monitoring_schedules(EndpointName=endpoint)["MonitoringScheduleSummaries"]
        except Exception as exc:
            schedules = []
            log.info("no monitoring schedules: %s", exc)
        schedule = str(schedules[0]["MonitoringScheduleName"]) if schedules else ""
    if not schedule:
        notes["drift"] = ("No drift data: this run was not started by drift and "
                          + (f"endpoint {endpoint} has no monitoring schedule." if endpoint else
                             "no model of this run serves on an endpoint (a training-only run has no "
                             "data capture, hence no Model Monitor report)."))
        return None
    listed = sagemaker.list_monitoring_executions(MonitoringScheduleName=schedule, SortBy="ScheduledTime",
                                                  SortOrder="Descending", MaxResults=50)
    candidates = [e for e in listed["MonitoringExecutionSummaries"] if e.get("ProcessingJobArn")]
    report_uri = str(detail.get("report") or "")
    chosen = None
    for summary in candidates:
        job = sagemaker.describe_processing_job(ProcessingJobName=summary["ProcessingJobArn"].rsplit("/", 1)[-1])
        out = str(job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]).rstrip("/")
        if not report_uri or report_uri.startswith(out + "/"):
            chosen = (summary, job, out)
            break
    if chosen is None:
        notes["drift"] = (f"No drift data: schedule {schedule} has no completed monitoring execution"
                          + (f" matching {report_uri}." if report_uri else " yet."))
        return None
    summary, job, out = chosen
    described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=schedule)
    baseline = described["MonitoringScheduleConfig"]["MonitoringJobDefinition"].get("BaselineConfig") or {}
    # The execution's own inputs name the baseline it was judged against (the schedule may
    # have moved on to a newer model's baseline since).
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job.get("ProcessingInputs") or [] if "S3Input" in i}
    statistics_uri = inputs.get("statistics") or (baseline.get("StatisticsResource") or {}).get("S3Uri", "")
    constraints_uri = inputs.get("constraints") or (baseline.get("ConstraintsResource") or {}).get("S3Uri", "")
    s3 = clients("s3")
    current = _s3_json(s3, f"{out}/statistics.json")
    try:
        violations = _s3_json(s3, f"{out}/constraint_violations.json").get("violations") or []
    except Exception:
        violations = []
    base = _s3_json(s3, _file_uri(statistics_uri, "statistics.json")) if statistics_uri else {}
    constraints = _s3_json(s3, _file_uri(constraints_uri, "constraints.json")) if constraints_uri else {}
    endpoint_name = str(summary.get("EndpointName") or endpoint or "")
    when = job.get("ProcessingEndTime") or summary.get("ScheduledTime")
    distances, source = _distances(clients("cloudwatch"), endpoint_name, schedule, when, base, violations)
    features = _features(base, current, constraints, violations, distances)
    return Drift(endpoint=endpoint_name, schedule=schedule, job_name=str(job["ProcessingJobName"]), when=when,
                 status=str(summary.get("MonitoringExecutionStatus", "")),
                 report_uri=f"{out}/constraint_violations.json",
                 baseline_uri=_file_uri(statistics_uri, "statistics.json") if statistics_uri else "",
                 constraints_uri=_file_uri(constraints_uri, "constraints.json") if constraints_uri else "",
                 features=features, distance_source=source)


def _latest_own_drift(clients: Clients, machine: str, endpoint: str | None, notes: dict[str, str]) -> Drift | None:
    """The report of the endpoint's newest MonitoringPipeline run that checked something."""
    if not endpoint or not machine:
        notes["drift"] = ("No drift data: no model of this run serves on an endpoint (a training-only run "
                          "has no captured traffic to monitor).")
        return None
    sfn = clients("stepfunctions")
    runs = sorted(sfn_executions.executions(sfn, machine), key=lambda e: e["startDate"], reverse=True)
    for summary in runs:
        if summary["status"] != "SUCCEEDED":
            continue
        plan = _loads(sfn.describe_execution(executionArn=summary["executionArn"]).get("output")).get("plan") or {}
        if plan.get("endpoint") == endpoint and plan.get("action") == "monitor":
            return _own_drift(clients, str(plan["report_uri"]).rstrip("/"),
                              str(plan.get("baseline_uri") or "").rstrip("/"), endpoint, notes)
    notes["drift"] = (f"No drift data: endpoint {endpoint} has no completed monitoring run with traffic yet "
                      "(its schedule starts the MonitoringPipeline hourly).")
    return None


def _own_drift(clients: Clients, folder: str, baseline: str, endpoint: str, notes: dict[str, str]) -> Drift | None:
    """A run of Autoloop's own monitoring job (MonitoringBackend=autoloop): its report folder holds
    the window's statistics, the violations and ``monitoring_report.json`` (the distances and the
    thresholds calibrated at the window's size); the retrain's trigger names the baseline."""
    s3 = clients("s3")
    try:
        report = _s3_json(s3, f"{folder}/monitoring_report.json")
        current = _s3_json(s3, f"{folder}/statistics.json")
    except Exception as exc:
        notes["drift"] = f"No drift data: the monitoring report {folder} could not be read ({exc})."
        return None
    try:
        violations = _s3_json(s3, f"{folder}/constraint_violations.json").get("violations") or []
    except Exception:
        violations = []
    base = _s3_json(s3, f"{baseline}/statistics.json") if baseline else {}
    constraints = _s3_json(s3, f"{baseline}/constraints.json") if baseline else {}
    rows = {str(f["name"]): f for f in report.get("features") or []}
    features = _features(base, current, constraints, violations,
                         {n: float(f["distance"]) for n, f in rows.items() if f.get("distance") is not None})
    for feature in features:  # the threshold each feature was judged by, at the window's size
        if rows.get(feature.name, {}).get("threshold") is not None:
            feature.threshold = float(rows[feature.name]["threshold"])
    window = report.get("window") or {}
    return Drift(endpoint=endpoint, schedule=folder.split("/")[-6] if folder.count("/") > 6 else "",
                 job_name="", when=_when(window.get("end")), status="Completed", report_uri=folder,
                 baseline_uri=f"{baseline}/statistics.json" if baseline else "",
                 constraints_uri=f"{baseline}/constraints.json" if baseline else "",
                 features=features, distance_source="monitoring_report.json (Autoloop's monitoring job)")


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _file_uri(uri: str, name: str) -> str:
    return uri if uri.endswith(".json") else uri.rstrip("/") + "/" + name


def _distances(cloudwatch: Any, endpoint: str, schedule: str, when: datetime | None, base: dict[str, Any],
               violations: list[dict[str, Any]]) -> tuple[dict[str, float], str]:
    """Each feature's measured distance: Model Monitor's feature_baseline_drift_<f> metric of
    that execution; the violation report's figure when metrics were not published."""
    from autoloop import drift as drift_logic

    found: dict[str, float] = {}
    if when is not None:
        for feature in base.get("features") or []:
            name = feature["name"]
            try:
                points = cloudwatch.get_metric_statistics(
                    Namespace=DRIFT_NAMESPACE, MetricName=f"feature_baseline_drift_{name}",
                    Dimensions=[{"Name": "Endpoint", "Value": endpoint},
                                {"Name": "MonitoringSchedule", "Value": schedule}],
                    StartTime=when - timedelta(hours=2), EndTime=when + timedelta(hours=1), Period=60,
                    Statistics=["Maximum"])["Datapoints"]
            except Exception as exc:
                log.info("no drift metric for %s: %s", name, exc)
                points = []
            if points:
                closest = min(points, key=lambda p: abs((p["Timestamp"] - when).total_seconds()))
                found[name] = float(closest["Maximum"])
    source = "CloudWatch feature_baseline_drift metrics" if found else ""
    for item in violations:
        if item.get("constraint_check_type") == drift_logic.BASELINE_DRIFT_CHECK:
            numbers = drift_logic.drift_numbers(str(item.get("description", "")))
            if numbers and numbers[0] is not None and item.get("feature_name") not in found:
                found[str(item["feature_name"])] = numbers[0]
                source = source or "constraint_violations.json"
    return found, source


def _thresholds(constraints: dict[str, Any]) -> tuple[float | None, dict[str, float]]:
    dist = (constraints.get("monitoring_config") or {}).get("distribution_constraints") or {}
    default = dist.get("comparison_threshold")
    per: dict[str, float] = {}
    for feature in constraints.get("features") or []:
        overrides = dict(feature.get("monitoringConfigOverrides") or feature.get("monitoring_config_overrides") or {})
        for nested in ("num_constraints", "string_constraints"):
            inner = (feature.get(nested) or {})
            overrides.update(inner.get("monitoringConfigOverrides") or inner.get("monitoring_config_overrides") or {})
        limit = overrides.get("comparison_threshold")
        if limit is None:
            categorical = "string_constraints" in feature or feature.get("inferred_type") == "String"
            limit = dist.get("categorical_comparison_threshold", default) if categorical else default
        if limit is not None:
            per[str(feature["name"])] = float(limit)
    return (float(default) if default is not None else None), per


def _features(base: dict[str, Any], current: dict[str, Any], constraints: dict[str, Any],
              violations: list[dict[str, Any]], distances: dict[str, float]) -> list[FeatureDrift]:
    default, per = _thresholds(constraints)
    now = {f["name"]: f for f in current.get("features") or []}
    checks: dict[str, list[str]] = {}
    for item in violations:
        checks.setdefault(str(item.get("feature_name")), []).append(str(item.get("constraint_check_type")))
    features = []
    for feature in base.get("features") or []:
        name = str(feature["name"])
        other = now.get(name)
        if other is None:
            continue
        shape = histograms(feature, other)
        if shape is None:
            continue
        kind, labels, b, c, nb, nc = shape
        features.append(FeatureDrift(name, kind, labels, b, c, nb, nc, distances.get(name), per.get(name, default),
                                     default, checks.get(name, [])))
    return features


# ----------------------------------------------------------------------------- distributions
def _numeric(stat: dict[str, Any]) -> dict[str, Any] | None:
    numeric = stat.get("numerical_statistics")
    return numeric if isinstance(numeric, dict) else None


def _weighted_points(numeric: dict[str, Any]) -> list[tuple[float, float]]:
    """The KLL sketch's items with their weights (level h items weigh 2^h)."""
    sketch = ((numeric.get("distribution") or {}).get("kll") or {}).get("sketch") or {}
    points: list[tuple[float, float]] = []
    for level, items in enumerate(sketch.get("data") or []):
        points += [(float(v), float(2 ** level)) for v in items]
    return points


def _buckets(numeric: dict[str, Any]) -> list[dict[str, float]]:
    return list(((numeric.get("distribution") or {}).get("kll") or {}).get("buckets") or [])


def _rebin(numeric: dict[str, Any], edges: list[float]) -> list[float]:
    """Shares of rows per bin: from the sketch's items, else from the KLL buckets (spread
    uniformly within each bucket)."""
    bins = [0.0] * (len(edges) - 1)
    points = _weighted_points(numeric)
    if points:
        for value, weight in points:
            bins[_bin_index(value, edges)] += weight
    else:
        for bucket in _buckets(numeric):
            lo, hi, count = float(bucket["lower_bound"]), float(bucket["upper_bound"]), float(bucket["count"])
            if hi <= lo:
                bins[_bin_index(lo, edges)] += count
                continue
            for i in range(len(bins)):
                overlap = min(hi, edges[i + 1]) - max(lo, edges[i])
                if overlap > 0:
                    bins[i] += count * overlap / (hi - lo)
    total = sum(bins)
    return [b / total for b in bins] if total else bins


def _bin_index(value: float, edges: list[float]) -> int:
    for i in range(len(edges) - 1):
        if value < edges[i + 1]:
            return i
    return len(edges) - 2


def histograms(base: dict[str, Any], current: dict[str, Any], bins: int = 12
               ) -> tuple[str, list[str], list[float], list[float], float, float] | None:
    """Baseline and current distributions on common bins: (kind, labels, baseline shares,
    current shares, baseline count, current count)."""
    b_num, c_num = _numeric(base), _numeric(current)
    if b_num is not None and c_num is not None:
        lo = min(float(b_num.get("min", 0.0)), float(c_num.get("min", 0.0)))
        hi = max(float(b_num.get("max", 0.0)), float(c_num.get("max", 0.0)))
        if hi <= lo:
            hi = lo + 1.0
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
        labels = [_short(edges[i]) for i in range(bins)] + [_short(hi)]
        n_b = float((b_num.get("common") or {}).get("num_present", 0))
        n_c = float((c_num.get("common") or {}).get("num_present", 0))
        return "numeric", labels, _rebin(b_num, edges), _rebin(c_num, edges), n_b, n_c
    b_str, c_str = base.get("string_statistics"), current.get("string_statistics")
    if isinstance(b_str, dict) and isinstance(c_str, dict):
        def counts(stat: dict[str, Any]) -> dict[str, float]:
            buckets = ((stat.get("distribution") or {}).get("categorical") or {}).get("buckets") or []
            return {str(b["value"]): float(b["count"]) for b in buckets}

        b_counts, c_counts = counts(b_str), counts(c_str)
        labels = sorted(set(b_counts) | set(c_counts), key=lambda k: (-b_counts.get(k, 0.0), k))[:12]
        n_b, n_c = sum(b_counts.values()) or 1.0, sum(c_counts.values()) or 1.0
        return ("categorical", labels, [b_counts.get(k, 0.0) / n_b for k in labels],
                [c_counts.get(k, 0.0) / n_c for k in labels], sum(b_counts.values()), sum(c_counts.values()))
    return None


def _short(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}" if abs(value) >= 100 or abs(value) < 0.01 else f"{value:.1f}"


# ----------------------------------------------------------------------------- the whole report
def gather(clients: Clients, execution_arn: str, stack_name: str | None = None) -> Report:
    run = execution(clients, execution_arn)
    report = Report(execution=run)
    notes = report.notes
    stack, outputs = stack_outputs(clients, _machine_arn(execution_arn), stack_name)
    report.stack = stack
    model = str(run.input.get("model") or run.result("plan").get("model") or "")
    endpoint = next((v for k, v in outputs.items() if k.lower() == f"{model}endpointname"), None) if model else None
    if not endpoint and stack and model:
        endpoint = f"{stack}-{model}"
    report.evaluation = evaluation(clients, run, notes)
    deploy_machine = outputs.get("DeployPipelineArn")
    if deploy_machine:
        try:
            report.deployments = deployments(clients, deploy_machine, endpoint)
        except Exception as exc:
            notes["deployments"] = f"the DeployPipeline's executions could not be read: {exc}"
    else:
        notes["deployments"] = ("No deployment history: the stack of this execution was not found "
                                "(pass --stack-name) or it has no DeployPipeline.")
    run_id = str(run.input.get("run_id") or run.name)
    for deployment in report.deployments:
        if deployment.run_id == run_id and deployment.action in ("create", "update"):
            try:
                report.related.append(execution(clients, deployment.arn))
            except Exception as exc:
                log.info("deploy execution %s: %s", deployment.arn, exc)
            break
    if report.deployments and not any(d.run_id == run_id for d in report.deployments):
        notes.setdefault("related", f"no DeployPipeline execution deployed {run_id}'s model.")
    if endpoint:
        try:
            report.endpoint = dict(clients("sagemaker").describe_endpoint(EndpointName=endpoint))
        except Exception as exc:
            log.info("endpoint %s: %s", endpoint, exc)
    serving = endpoint if report.endpoint or report.deployments else None
    try:
        report.drift = drift(clients, run, serving, notes, outputs)
    except Exception as exc:
        notes["drift"] = f"the Model Monitor report could not be read: {exc}"
    if not report.deployments:
        notes.setdefault("deployments", "No deployments yet: no model package of this stack has been "
                                        "approved and deployed.")
    return report


def _machine_arn(execution_arn: str) -> str:
    """arn:aws:states:<region>:<account>:execution:<machine>:<name> -> the state machine ARN."""
    parts = execution_arn.split(":")
    if len(parts) >= 8 and parts[5] == "execution":
        return ":".join([*parts[:5], "stateMachine", parts[6]])
    return execution_arn
