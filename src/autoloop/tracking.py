"""MLflow experiment tracking of a model's lifecycle, over MLflow's REST API.

One experiment per model (``<stack>/<model>``). Each training run is an MLflow run tagged with
Autoloop's run id, the model and the trigger: its dataset, hyperparameters, images and bundle as
params; challenger and champion on the same holdout as metrics; evaluation files and the model
artifact as artifacts; then the gate's verdict, the registration, the deployment and a rollback
as tags and metrics on that same run. Each monitoring run and each monthly batch is a run of its
own in the same experiment, so one MLflow view shows the model's history.

Why REST and not the ``mlflow`` package: the Lambdas stay light (``mlflow`` costs seconds of
cold start; this module needs the standard library, and botocore only to sign for SageMaker's
managed MLflow). Why from the Lambdas: SageMaker jobs run with network isolation and cannot reach
a tracking server. A training script's own ``mlflow`` calls go to a file store under
``/opt/ml/output/data/`` (:data:`autoloop.jobs.JOB_TRACKING_ENV`), which SageMaker uploads as
``output.tar.gz``; the gate copies those metrics and params into the run.

Configuration (template parameters, as the functions' environment): ``MLFLOW_TRACKING_URI``, the
URL of an MLflow server, or ``MLFLOW_TRACKING_SERVER_ARN``, a SageMaker managed MLflow tracking
server (or MLflow App): requests go to ``https://<region>.experiments.sagemaker.aws`` with the
ARN in the ``x-mlflow-sm-tracking-server-arn`` header, signed with SigV4 for the service
``sagemaker-mlflow`` (what the ``sagemaker-mlflow`` plugin does). Neither set: tracking is off
and nothing is called. Tracking never fails the lifecycle: an error is logged as a warning with
its reason, and the step goes on (:func:`safely`).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoloop import adapters
from autoloop.jobs import ENTRY_POINT, JOB_TRACKING_DIR
from autoloop.observability import logger

if TYPE_CHECKING:  # annotations only: the handlers that log (through autoloop.tasks) need not import them
    from autoloop.drift import Violation
    from autoloop.state import MonitoringPlan, PipelineState

#: Tags on every run Autoloop logs (MLflow keys may hold dots; filters quote them with backticks).
RUN_ID_TAG, MODEL_TAG, KIND_TAG, TRIGGER_TAG = "autoloop.run_id", "autoloop.model", "autoloop.kind", "autoloop.trigger"
DEPLOY_CONFIG_TAG = "autoloop.deploy.config"
#: One request's timeout, and all of one step's tracking: the functions time out at 30 s, and a
#: slow or hanging server must cost the step at most this, then a warning.
TIMEOUT_SECONDS = 5.0
BUDGET_SECONDS = 10.0
#: Larger artifacts are linked (a tag with their S3 URI), not copied: a copy passes through the
#: function's memory (256 MB).
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
_BATCH = 100  # MLflow's log-batch takes at most 100 params and 100 tags a request (1000 metrics)
_SIGNING_SERVICE = "sagemaker-mlflow"
#: Every MLflow REST endpoint Autoloop calls, with the IAM action SageMaker's managed MLflow
#: checks for it: the template's MlflowTrackingPolicy grants exactly these (a test compares).
ACTIONS = {
    "experiments/get-by-name": "sagemaker-mlflow:GetExperimentByName",
    "experiments/create": "sagemaker-mlflow:CreateExperiment",
    "runs/search": "sagemaker-mlflow:SearchRuns",
    "runs/create": "sagemaker-mlflow:CreateRun",
    "runs/log-batch": "sagemaker-mlflow:LogBatch",
    "runs/update": "sagemaker-mlflow:UpdateRun",
}


class TrackingError(Exception):
    """An MLflow call failed; the lifecycle goes on (see :func:`safely`)."""


@dataclass(frozen=True)
class Target:
    """Where runs go: an MLflow server's URL, or a SageMaker managed MLflow ARN (signed requests)."""

    url: str
    arn: str = ""
    region: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Target | None:
        env = os.environ if env is None else env
        arn = env.get("MLFLOW_TRACKING_SERVER_ARN", "").strip()
        uri = env.get("MLFLOW_TRACKING_URI", "").strip()
        if arn:
            parts = arn.split(":")
            if len(parts) < 6 or parts[2] != "sagemaker" or not parts[5].startswith(("mlflow-tracking-server/",
                                                                                     "mlflow-app/")):
                raise TrackingError(f"MLFLOW_TRACKING_SERVER_ARN {arn!r} is not a SageMaker MLflow tracking server "
                                    "or MLflow App ARN (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/"
                                    "<name>); set the template parameter MlflowTrackingServerArn to one.")
            if parts[1] not in {"aws", "aws-us-gov"}:
                raise TrackingError(f"SageMaker MLflow is not offered in partition {parts[1]!r} ({arn}).")
            return cls(url=f"https://{parts[3]}.experiments.sagemaker.aws", arn=arn, region=parts[3])
        if uri:
            if not uri.startswith(("http://", "https://")):
                raise TrackingError(f"MLFLOW_TRACKING_URI {uri!r} is not an http(s) URL of an MLflow server; set the "
                                    "template parameter MlflowTrackingUri to one (or leave it empty: no tracking).")
            return cls(url=uri.rstrip("/"))
        return None


def _sign(target: Target, credentials: Any, method: str, url: str, body: bytes | None,
          headers: dict[str, str]) -> dict[str, str]:
    """SigV4 headers for SageMaker's managed MLflow, as the sagemaker-mlflow plugin signs."""
    import hashlib

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    headers = {**headers, "x-mlflow-sm-tracking-server-arn": target.arn,
               "X-Amz-Content-SHA256": hashlib.sha256(body or b"").hexdigest()}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), _SIGNING_SERVICE, target.region).add_auth(request)
    return dict(request.headers.items())


class Client:
    """The MLflow REST calls Autoloop makes (``/api/2.0/mlflow/...``), with the standard library.

    Every request shares one time budget from the client's creation (:data:`BUDGET_SECONDS`)."""

    def __init__(self, target: Target, timeout: float = TIMEOUT_SECONDS, budget: float = BUDGET_SECONDS) -> None:
        self.target, self.timeout = target, timeout
        self.deadline = time.monotonic() + budget
        self._credentials: Any = None

    def _signed(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        if self._credentials is None:
            from botocore.session import get_session  # only when signing: about 50 ms

            self._credentials = get_session().get_credentials()
            if self._credentials is None:
                raise TrackingError("no AWS credentials to sign the MLflow request with.")
        return _sign(self.target, self._credentials, method, url, body, headers)

    def _request(self, method: str, path: str, body: bytes | None, content_type: str) -> bytes:
        import urllib.error
        import urllib.request  # http.client and ssl: imported on the first call, not at a cold start

        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TrackingError(f"MLflow at {self.target.url}: the step's {BUDGET_SECONDS:g} s for tracking are "
                                f"spent before {method} {path}.")
        url = self.target.url + path
        headers = {"Content-Type": content_type}
        if self.target.arn:
            headers = self._signed(method, url, body, headers)
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, left)) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise TrackingError(f"MLflow {method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"MLflow at {self.target.url} unreachable: {exc}") from exc

    def call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        if endpoint not in ACTIONS:
            raise TrackingError(f"MLflow endpoint {endpoint!r} is not in tracking.ACTIONS (nor granted by the "
                                "template's MlflowTrackingPolicy).")
        path = f"/api/2.0/mlflow/{endpoint}"
        if method == "GET" and payload:
            path += "?" + urllib.parse.urlencode(payload, quote_via=urllib.parse.quote)  # %20, as signed
            payload = None
        raw = self._request(method, path, json.dumps(payload).encode() if payload is not None else None,
                            "application/json")
        return dict(json.loads(raw or b"{}"))

    # ------------------------------------------------------------------ experiments and runs
    def experiment_id(self, name: str) -> str:
        """The experiment's id, created on first use (a concurrent create is not an error)."""
        try:
            return str(self.call("GET", "experiments/get-by-name", {"experiment_name": name})["experiment"]
                       ["experiment_id"])
        except TrackingError as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(exc):
                raise
        try:
            return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])
        except TrackingError as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
            return str(self.call("GET", "experiments/get-by-name", {"experiment_name": name})["experiment"]
                       ["experiment_id"])

    def search(self, experiment_id: str, tags: Mapping[str, str], max_results: int = 10) -> list[dict[str, Any]]:
        """Runs of the experiment with all these tags, newest first."""
        clauses = [f"tags.`{key}` = {_literal(value)}" for key, value in tags.items()]
        found = self.call("POST", "runs/search", {
            "experiment_ids": [experiment_id], "filter": " and ".join(clauses), "max_results": max_results,
            "order_by": ["attributes.start_time DESC"]})
        return list(found.get("runs", []))

    def create_run(self, experiment_id: str, name: str, tags: Mapping[str, str]) -> dict[str, Any]:
        created = self.call("POST", "runs/create", {
            "experiment_id": experiment_id, "run_name": name, "start_time": _now_ms(),
            "tags": [{"key": k, "value": v} for k, v in tags.items()]})
        return dict(created["run"])

    def log(self, run_id: str, metrics: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
            tags: Mapping[str, str] | None = None, step: int = 0) -> None:
        """Metrics, params and tags in batches (non-finite metric values are left out)."""
        stamp = _now_ms()
        metric_rows = [{"key": k, "value": float(v), "timestamp": stamp, "step": step}
                       for k, v in (metrics or {}).items() if _finite(v)]
        param_rows = [{"key": k, "value": _text(v, 6000)} for k, v in (params or {}).items() if v is not None]
        tag_rows = [{"key": k, "value": _text(v, 8000)} for k, v in (tags or {}).items()]
        while metric_rows or param_rows or tag_rows:
            batch = {"run_id": run_id, "metrics": metric_rows[:_BATCH * 10], "params": param_rows[:_BATCH],
                     "tags": tag_rows[:_BATCH]}
            self.call("POST", "runs/log-batch", batch)
            metric_rows, param_rows, tag_rows = metric_rows[_BATCH * 10:], param_rows[_BATCH:], tag_rows[_BATCH:]

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": _now_ms()})

    @staticmethod
    def proxies_artifacts(run: dict[str, Any]) -> bool:
        """True when the server stores the run's artifacts itself (``mlflow-artifacts:`` roots, what
        ``mlflow server`` serves by default); not for an S3 root (SageMaker's managed MLflow)."""
        return str(run["info"].get("artifact_uri", "")).startswith("mlflow-artifacts:")

    def upload(self, run: dict[str, Any], path: str, body: bytes) -> bool:
        """Put an artifact through the server's artifact proxy; False where it has none."""
        if not self.proxies_artifacts(run):
            return False
        where = str(run["info"]["artifact_uri"]).removeprefix("mlflow-artifacts:").lstrip("/")
        url_path = "/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(f"{where}/{path}")
        self._request("PUT", url_path, body, "application/octet-stream")
        return True


def _literal(value: str) -> str:
    """A string in MLflow's search grammar, which has quotes but no escapes."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise TrackingError(f"cannot search for a tag value with both kinds of quotes: {value!r}.")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:limit]


# ----------------------------------------------------------------------------- the lifecycle's calls
def client() -> Client | None:
    """The configured client; None when tracking is off (nothing set)."""
    target = Target.from_env()
    return Client(target) if target else None


def experiment_name(model: str, stack: str | None = None) -> str:
    return f"{stack or os.environ.get('STACK_NAME') or 'autoloop'}/{model}"


def safely(what: str, action: Callable[[Client], Any]) -> Any:
    """Run one tracking action when tracking is on; any failure is a warning, never the step's."""
    try:
        mlflow = client()
        if mlflow is None:
            return None
        return action(mlflow)
    except Exception as exc:  # tracking must never fail the lifecycle
        logger.warning("MLflow tracking failed; the lifecycle goes on",
                       extra={"tracking": what, "error": type(exc).__name__, "reason": str(exc)[:500]})
        return None


def training_run(mlflow: Client, model: str, run_id: str, trigger: str | None = None) -> tuple[str, dict[str, Any]]:
    """(experiment id, run) of Autoloop run ``run_id``: the one logged before, else a new one."""
    experiment = mlflow.experiment_id(experiment_name(model))
    found = mlflow.search(experiment, {RUN_ID_TAG: run_id, KIND_TAG: "training"}, max_results=1)
    if found:
        return experiment, found[0]
    tags = {RUN_ID_TAG: run_id, MODEL_TAG: model, KIND_TAG: "training", "mlflow.runName": run_id}
    if trigger:
        tags[TRIGGER_TAG] = trigger
    return experiment, mlflow.create_run(experiment, run_id, tags)


def flatten_evaluation(evaluation: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``{"binary_classification_metrics": {"auc": {"value": 0.9}}}`` -> ``{"<prefix>auc": 0.9}``
    (the Model Registry shape ml/evaluate.py writes; tables such as a confusion matrix are left out)."""
    flat: dict[str, float] = {}
    for section in evaluation.values():
        if not isinstance(section, dict):
            continue
        for name, entry in section.items():
            value = entry.get("value") if isinstance(entry, dict) else None
            if _finite(value):
                flat[prefix + name] = float(value)  # type: ignore[arg-type]
    return flat


def read_job_store(archive: bytes) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics (last value of each) and params a training script logged with plain ``mlflow``
    calls to the job's file store (:data:`autoloop.jobs.JOB_TRACKING_DIR`), from the job's ``output.tar.gz``."""
    import io
    import tarfile

    metrics: dict[str, tuple[int, int, float]] = {}
    params: dict[str, str] = {}
    store = JOB_TRACKING_DIR.rsplit("/", 1)[-1]  # output.tar.gz holds /opt/ml/output/data/
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.removeprefix("./").split("/")
            if not member.isfile() or store not in parts:
                continue
            rest = parts[parts.index(store) + 1:]  # <experiment>/<run>/(metrics|params)/<key...>
            if len(rest) < 4 or rest[2] not in {"metrics", "params"}:
                continue
            key = "/".join(rest[3:])
            handle = tar.extractfile(member)
            text = handle.read().decode("utf-8", "replace") if handle else ""
            if rest[2] == "params":
                params[key] = text
                continue
            for line in text.splitlines():  # "<timestamp> <value> <step>"
                fields = line.split()
                if len(fields) >= 2:
                    stamp, value = int(fields[0]), float(fields[1])
                    step = int(fields[2]) if len(fields) > 2 else 0
                    if key not in metrics or (step, stamp) >= metrics[key][:2]:
                        metrics[key] = (step, stamp, value)
    return {k: v[2] for k, v in metrics.items()}, params


def _s3_bytes(uri: str, limit: int = MAX_ARTIFACT_BYTES) -> bytes | None:
    """An object's bytes, or None when it is missing or larger than ``limit``. Without
    s3:ListBucket (the functions do not hold it) a missing key reads as AccessDenied."""
    from botocore.exceptions import ClientError

    bucket, key = adapters.split_s3_uri(uri)
    try:
        found = adapters.client("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if adapters.error_code(exc) in {"NoSuchKey", "404", "AccessDenied"}:
            return None
        raise
    body = found["Body"]
    if int(found.get("ContentLength") or 0) > limit:
        body.close()
        return None
    return bytes(body.read())


def log_artifacts(mlflow: Client, run: dict[str, Any], files: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Copy each ``(artifact path, S3 URI)`` into the run where the server stores artifacts (and
    the file is at most :data:`MAX_ARTIFACT_BYTES`). Returns the tags that link each one's S3 URI,
    logged in every case (the link where no copy is made)."""
    links: dict[str, str] = {}
    for path, uri in files:
        links[f"autoloop.artifact.{path}"] = uri
        body = _s3_bytes(uri) if mlflow.proxies_artifacts(run) else None
        if body is not None:
            mlflow.upload(run, path, body)
    return links


# ----------------------------------------------------------------------------- one call per lifecycle step
def _training(mlflow: Client, model: str, run_id: str) -> dict[str, Any]:
    return training_run(mlflow, model, run_id)[1]


def gate(state: PipelineState, result: Mapping[str, Any], evaluation_folder: str) -> None:
    """The training run after the quality gate: its params, challenger and champion metrics on the
    same holdout, the evaluation files and the model artifact, the script's own metrics, the verdict."""

    def log(mlflow: Client) -> None:
        dataset = state.need_dataset()
        train = state.job("train")
        _, run = training_run(mlflow, state.model, state.run_id, state.trigger.type)
        info = run["info"]
        params: dict[str, Any] = {
            **{f"hp.{k}": v for k, v in dataset.hyperparameters.items()},
            "dataset.uri": state.source.uri, "dataset.version": state.source.version_id or state.source.etag,
            "dataset.rows": dataset.rows, "dataset.columns": dataset.columns,
            "dataset.validated_copy": dataset.input_uri, "task": dataset.task, "label": dataset.label,
            "framework": dataset.framework, "training_image": dataset.training_image,
            "inference_image": dataset.inference_image, "entry_point": ENTRY_POINT,
            "bundle_sha256": dataset.bundle_sha256, "training_job": train.job_name,
            "gate.metric": result.get("metric_name"), "gate.direction": result.get("direction"),
            "gate.threshold": result.get("threshold"), "gate.min_improvement": result.get("min_improvement"),
        }
        evaluation = adapters.get_json(*adapters.split_s3_uri(f"{evaluation_folder}/evaluation.json"))
        metrics = flatten_evaluation(evaluation, "challenger.")
        if result.get("champion_arn"):
            champion = adapters.get_json(*adapters.split_s3_uri(f"{evaluation_folder}/champion_evaluation.json"))
            metrics.update(flatten_evaluation(champion, "champion."))
        metrics["holdout_rows"] = result.get("holdout_rows") or math.nan
        metrics["gate.promote"] = 1.0 if result.get("verdict") == "Promote" else 0.0
        files = [("evaluation/evaluation.json", f"{evaluation_folder}/evaluation.json"),
                 ("evaluation/comparison.json", f"{evaluation_folder}/comparison.json")]
        if result.get("champion_arn"):
            files.append(("evaluation/champion_evaluation.json", f"{evaluation_folder}/champion_evaluation.json"))
        if train.model_artifacts:
            files.append(("model/model.tar.gz", train.model_artifacts))
        tags = {"autoloop.gate.verdict": str(result.get("verdict")), "autoloop.gate.reason": str(result.get("reason")),
                "autoloop.champion_arn": str(result.get("champion_arn") or ""),
                "autoloop.trigger.detail": _text(state.trigger.detail, 8000),
                **log_artifacts(mlflow, run, files)}
        if train.model_artifacts:
            output = train.model_artifacts.rsplit("/", 1)[0] + "/output.tar.gz"
            archive = _s3_bytes(output)
            if archive is not None:
                script_metrics, script_params = read_job_store(archive)
                metrics.update({f"script.{k}": v for k, v in script_metrics.items()})
                params.update({f"script.{k}": v for k, v in script_params.items()})
        mlflow.log(info["run_id"], metrics=metrics, params=params, tags=tags)
        mlflow.finish(info["run_id"])

    safely("gate", log)


def registered(model: str, run_id: str, package_arn: str, approval_status: str) -> None:
    safely("registration", lambda mlflow: mlflow.log(
        _training(mlflow, model, run_id)["info"]["run_id"],
        metrics={"registered": 1.0, "package_version": _package_version(package_arn)},
        tags={"autoloop.package_arn": package_arn, "autoloop.approval_status": approval_status}))


def deployment_started(model: str, run_id: str | None, endpoint: str, config: str, action: str) -> None:
    if not run_id:
        return
    safely("deployment", lambda mlflow: mlflow.log(
        _training(mlflow, model, run_id)["info"]["run_id"],
        tags={"autoloop.deploy.endpoint": endpoint, DEPLOY_CONFIG_TAG: config, "autoloop.deploy.action": action,
              "autoloop.deploy.status": "Deploying"}))


def deployed(model: str, run_id: str | None, endpoint: str) -> None:
    """The endpoint serves the run's model (the deployment's update finished, no rollback)."""
    if not run_id:
        return
    safely("deployment", lambda mlflow: mlflow.log(
        _training(mlflow, model, run_id)["info"]["run_id"], metrics={"deployed": 1.0},
        tags={"autoloop.deploy.endpoint": endpoint, "autoloop.deploy.status": "InService"}))


def rolled_back(endpoint: str, config: str, reason: str) -> None:
    """A blue/green update of ``<stack>-<model>`` to ``config`` rolled back: marked on the training
    run whose deployment it was (the one tagged with that endpoint config)."""

    def log(mlflow: Client) -> None:
        stack = os.environ.get("STACK_NAME", "")
        if not stack or not endpoint.startswith(f"{stack}-"):
            raise TrackingError(f"endpoint {endpoint!r} is not one of stack {stack!r}'s (<stack>-<model>).")
        model = endpoint[len(stack) + 1:]
        experiment = mlflow.experiment_id(experiment_name(model))
        for run in mlflow.search(experiment, {DEPLOY_CONFIG_TAG: config, KIND_TAG: "training"}, max_results=1):
            mlflow.log(run["info"]["run_id"], metrics={"deployed": 0.0, "rolled_back": 1.0},
                       tags={"autoloop.deploy.status": "RolledBack", "autoloop.deploy.rollback_reason": reason})

    safely("rollback", log)


def _own_run(mlflow: Client, model: str, kind: str, run_id: str, name: str, tags: Mapping[str, str],
             metrics: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """A finished run of its own (a monitoring run, a month's batch) in the model's experiment;
    nothing when one of this kind has Autoloop's ``run_id`` (a retried step logged it)."""
    experiment = mlflow.experiment_id(experiment_name(model))
    if mlflow.search(experiment, {RUN_ID_TAG: run_id, KIND_TAG: kind}, max_results=1):
        return
    run = mlflow.create_run(experiment, name, {RUN_ID_TAG: run_id, MODEL_TAG: model, KIND_TAG: kind, **tags})
    mlflow.log(run["info"]["run_id"], metrics=metrics, params=params)
    mlflow.finish(run["info"]["run_id"])


def monitored(model: str, plan: MonitoringPlan, report: Mapping[str, Any], decision: Mapping[str, Any]) -> None:
    """A monitoring run of the model's endpoint (Autoloop's backend): per-feature drift distances
    and thresholds, the quality metric on the labelled requests, and the decision."""

    def log(mlflow: Client) -> None:
        features = list(report.get("features") or [])
        metrics: dict[str, Any] = {"rows": float(report.get("rows") or 0),
                                   "labelled_rows": float(report.get("labelled_rows") or 0),
                                   "retrain": 1.0 if decision.get("retrain") else 0.0,
                                   "drift.features_flagged": float(sum(1 for f in features if f.get("violated")))}
        for feature in features:
            metrics[f"drift.{feature['name']}"] = feature.get("distance")
            metrics[f"drift_threshold.{feature['name']}"] = feature.get("threshold")
        quality = report.get("quality") or {}
        if quality:
            metrics[f"quality.{quality.get('metric')}"] = quality.get("value")
            metrics["quality.threshold"] = quality.get("threshold")
            metrics["quality.champion"] = quality.get("champion")
            metrics["quality.violated"] = 1.0 if quality.get("violated") else 0.0
        tags = {"autoloop.decision.reason": str(decision.get("reason")),
                "autoloop.retrain_run_id": str(decision.get("run_id") or "")}
        params = {"endpoint": plan.endpoint, "window_start": plan.window_start, "window_end": plan.window_end,
                  "report_uri": plan.report_uri}
        _own_run(mlflow, model, "monitoring", plan.run_id, f"monitor {plan.window_end}", tags, metrics, params)

    safely("monitoring", log)


def violations_checked(model: str, endpoint: str, report_uri: str, violations: Iterable[Violation],
                       decision: Mapping[str, Any]) -> None:
    """A Model Monitor execution's report (the ``model-monitor`` backend), which names only the
    violated features: their drift distances and thresholds, and the decision."""

    def log(mlflow: Client) -> None:
        found = list(violations)
        metrics: dict[str, Any] = {"violations": float(len(found)),
                                   "retrain": 1.0 if decision.get("retrain") else 0.0,
                                   "drift.features_flagged": float(sum(1 for v in found if v.is_drift))}
        for violation in found:
            if violation.is_drift:
                metrics[f"drift.{violation.feature}"] = violation.distance
                metrics[f"drift_threshold.{violation.feature}"] = violation.threshold
        tags = {"autoloop.decision.reason": str(decision.get("reason")),
                "autoloop.retrain_run_id": str(decision.get("run_id") or ""),
                "autoloop.violated_checks": ", ".join(sorted({v.check for v in found}))}
        name = f"monitor {report_uri.rstrip('/').rsplit('/', 1)[-1]}"
        _own_run(mlflow, model, "monitoring", report_uri, name, tags, metrics,
                 {"endpoint": endpoint, "report_uri": report_uri})

    safely("monitoring", log)


def batch_published(doc: Mapping[str, Any], report_uri: str) -> None:
    """A month's batch transform: rows scored and skipped, the package it used (its own run)."""

    def log(mlflow: Client) -> None:
        package = doc.get("package") or {}
        rows = doc.get("rows") or {}
        tags = {"autoloop.package_arn": str(package.get("arn") or ""),
                "autoloop.training_run_id": str(package.get("training_run_id") or "")}
        metrics = {"rows_scored": rows.get("scored"), "rows_malformed": rows.get("malformed"),
                   "package_version": package.get("version")}
        params = {"month": doc.get("month"), "input_uri": (doc.get("input") or {}).get("uri"),
                  "output_uri": (doc.get("output") or {}).get("uri"), "report_uri": report_uri,
                  "transform_job": doc.get("transform_job")}
        _own_run(mlflow, str(doc["model"]), "batch", str(doc["run_id"]), f"batch {doc.get('month')}", tags,
                 metrics, params)

    safely("batch", log)


def _package_version(arn: str) -> float:
    tail = arn.rsplit("/", 1)[-1]
    return float(tail) if tail.isdigit() else math.nan
