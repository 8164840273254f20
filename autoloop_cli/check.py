"""``autoloop check <model>``: the model's real steps on a small sample, offline, in seconds.

Before anything is paid for, a model folder gets the checks a run would give it, in order:

1. ``config``: the folder and its config, exactly as ``autoloop publish`` validates them
   (:func:`autoloop_cli.publish.model_folders`).
2. ``data``: the sample CSV, exactly as the pipeline's ValidateInput step validates an upload
   (:func:`autoloop.validation.validate_csv`).
3. ``preprocess``, ``train``, ``evaluate``: the very job requests the TrainingPipeline builds
   (:func:`autoloop.jobs.preprocess_request`, ``training_request``, ``evaluate_request``), run by
   the in-process local AWS (:func:`localaws.server.in_process`) under SageMaker's container
   contract: Autoloop's preprocess, the model's own ``train.py`` from its source bundle,
   Autoloop's evaluate. Nothing reaches AWS or the network.
4. ``serve``: the trained ``model.tar.gz`` as a SageMaker Model (the registry's serving
   environment) scoring a few rows in a batch transform job (:func:`autoloop.batch.transform_request`),
   so ``inference.py``'s ``model_fn``/``input_fn``/``predict_fn``/``output_fn`` run as they do
   behind an endpoint or the monthly batch.

Then the verdict: the gate's decision (:func:`autoloop.gate.decide`) on the metric against the
threshold, on the sample's held-out rows. A sample's metric is a smoke signal, not the real
one: a model that passes on its full data may miss the threshold on a few hundred rows.

Any failed step raises :class:`CheckFailed` with one line: the step and the reason (the
script's ``failure`` line, or its exception and the script line it was raised on, or the
validation error naming the field or column). The job sandboxes and logs stay under
``<AUTOLOOP_LOCAL_HOME>/check/<model>/jobs/``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autoloop.config import ModelConfig, parse_model_config
from autoloop.errors import AutoloopError, InvalidModelConfig
from autoloop.gate import decide, metric_from_evaluation
from autoloop.jobs import (
    JobContext,
    evaluate_request,
    job_result,
    preprocess_request,
    training_request,
)
from autoloop.naming import run_id, run_prefix
from autoloop.validation import DatasetSummary, validate_csv
from autoloop_cli import publish

SAMPLE_FILE = publish.SAMPLE_FILE
#: Rows the check trains on when the data has more (``--rows``); never fewer than min_rows.
DEFAULT_ROWS = 1000
#: Rows the serving step scores.
SERVE_ROWS = 5
#: The stack's MetricThreshold default (template.yaml), for a config without ``threshold``.
STACK_METRIC_THRESHOLD = 0.75
#: Each job's cost guard here, as in the pipeline: a script that hangs fails the check.
MAX_JOB_SECONDS = 600

BUCKET = "autoloop-check-artifacts"
ROLE = "arn:aws:iam::123456789012:role/autoloop-check"
#: The stack's FrameworkImageUri default (template.yaml): the preprocess job's image, and the
#: training image of a model on the default framework. Images choose a local job's Python
#: (:mod:`localaws.sagemaker.runtimes`).
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


#: How each example model's sample.csv is made (rows, seed): by the project's own generators,
#: so the checked-in files can be rebuilt byte for byte (``python -m autoloop_cli.check``).
EXAMPLE_SAMPLES = {"churn": (400, 11), "fraud": (1000, 11), "price": (400, 11)}


def example_sample(model: str) -> bytes:
    """The sample.csv of an example model, as :data:`EXAMPLE_SAMPLES` says to make it."""
    from autoloop_cli import datagen

    rows, seed = EXAMPLE_SAMPLES[model]
    frame = datagen.GENERATORS[model](rows, seed=seed)
    return str(frame.to_csv(index=False, lineterminator="\n")).encode()


def write_example_samples(models_dir: Path | None = None) -> list[Path]:
    """(Re)write models/<model>/sample.csv of every example model."""
    written = []
    for model in EXAMPLE_SAMPLES:
        path = (models_dir or publish.MODELS_DIR) / model / SAMPLE_FILE
        path.write_bytes(example_sample(model))
        written.append(path)
    return written


class CheckFailed(AutoloopError):
    """A step of ``autoloop check`` failed; the message names the step and the reason.
    ``error`` is the name of the named error behind it (InvalidModelConfig, InvalidLabels, ...),
    ``JobFailed`` for a job that failed, else ``CheckFailed``."""

    hint = ""

    def __init__(self, message: str, error: str = "CheckFailed") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    detail: str


@dataclass(frozen=True)
class Verdict:
    model: str
    metric_name: str
    metric: float
    threshold: float
    direction: str
    passed: bool
    holdout_rows: int
    sample_rows: int

    def line(self) -> str:
        sign = (">=" if self.direction == "higher" else "<=") if self.passed else (
            "<" if self.direction == "higher" else ">")
        outcome = "PASS" if self.passed else "BELOW THRESHOLD"
        return (f"verdict: {outcome}: {self.metric_name} {self.metric:.4f} {sign} threshold {self.threshold:g} "
                f"({self.direction} is better), on {self.holdout_rows} held-out rows of a {self.sample_rows}-row "
                "sample")


@dataclass(frozen=True)
class CheckResult:
    steps: tuple[Step, ...]
    verdict: Verdict


# ----------------------------------------------------------------------------- data
def data_path(folder: publish.ModelFolder, data: str | os.PathLike[str] | None) -> Path:
    """``--data``, else the folder's sample.csv; CheckFailed saying what to pass otherwise."""
    if data is not None:
        path = Path(data)
        if not path.is_file():
            raise CheckFailed(f"data: {path} is not a file; pass --data <csv> with the columns "
                              f"{','.join(folder.config.columns)}.")
        return path
    path = folder.path / SAMPLE_FILE
    if not path.is_file():
        raise CheckFailed(f"data: no --data given and models/{folder.name}/{SAMPLE_FILE} does not exist; pass "
                          f"--data <csv> (header {','.join(folder.config.columns)}), or add a few hundred rows as "
                          f"models/{folder.name}/{SAMPLE_FILE}.")
    return path


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def validate_data(path: Path, config: ModelConfig) -> DatasetSummary:
    """ValidateInput's checks on the local file (the named error says what is wrong)."""
    return validate_csv(_chunks(path), path.stat().st_size, config, str(path))


def sample_rows(path: Path, rows: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """(header, up to ``rows`` data rows): all of them when there are no more, else a seeded
    uniform sample in file order (the first rows of a sorted file would be one class)."""
    chosen: list[tuple[int, list[str]]] = []
    rng = random.Random(seed)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        seen = 0
        for row in reader:
            if not row:
                continue
            if len(chosen) < rows:
                chosen.append((seen, row))
            else:  # reservoir sampling: every row equally likely, one pass, bounded memory
                slot = rng.randrange(seen + 1)
                if slot < rows:
                    chosen[slot] = (seen, row)
            seen += 1
    return header, [row for _, row in sorted(chosen, key=lambda item: item[0])]


def _csv_bytes(header: list[str] | None, rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


# ----------------------------------------------------------------------------- one-line reasons
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)|[A-Z]\w*Error)\b:?.*$")


def script_reason(failure_reason: str, log: str, code_files: set[str]) -> str:
    """One line for a failed job: the script's ``failure`` line when it wrote one, else the
    exception its traceback ends with; either way prefixed with the line of the script's own
    file the exception came from, when the log shows that traceback."""
    reason = failure_reason.strip()
    written = None
    if reason.startswith("AlgorithmError: ") and "ExecuteUserScriptError" not in reason \
            and not reason.startswith("AlgorithmError: exit code"):
        written = reason.removeprefix("AlgorithmError: ").splitlines()[0].strip()
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    exception = next((line for line in reversed(lines) if _EXCEPTION.match(line)), None)
    where = next((f"{Path(path).name} line {number}: " for path, number in reversed(_FRAME.findall(log))
                  if Path(path).name in code_files), "")
    if written is not None:
        return f"{where}{written}" if where and exception == written else written
    if exception is None:
        return " ".join(reason.split())[:300]
    return f"{where}{exception}"


def check_model_archive(archive: bytes, model: str) -> None:
    """The training contract's outputs (docs/MODELS.md): model.joblib, and code/inference.py
    for serving; CheckFailed naming what is missing."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
    for needed, why in (("model.joblib", "the fitted pipeline that evaluation and serving load"),
                        ("code/inference.py", "the serving code: copy the inference.py beside train.py there")):
        if needed not in names:
            raise CheckFailed(f"train failed: models/{model}/train.py exited 0 but wrote no {needed} under "
                              f"$SM_MODEL_DIR ({why}; docs/MODELS.md, 'Outputs').", "JobFailed")


# ----------------------------------------------------------------------------- the steps
def _timed(name: str, say: Callable[[str], None], steps: list[Step], work: Callable[[], str]) -> None:
    began = time.perf_counter()
    detail = work()
    step = Step(name, time.perf_counter() - began, detail)
    steps.append(step)
    say(f"  {name:<10} {step.seconds:6.2f} s  {detail}")


class _Jobs:
    """Jobs run to their end in the local AWS; a failed one is a one-line CheckFailed."""

    def __init__(self, code_files: set[str]) -> None:
        from localaws.clients import client

        self.code_files = code_files  # the file names a failure's script line may be in
        self.sm = client("sagemaker")
        self.runtimes: dict[str, None] = {}  # the Pythons the jobs ran on, in order, once each

    def run(self, step: str, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        from localaws.sagemaker import runtimes
        from localaws.sagemaker.jobs import runner

        name_key = {"processing": "ProcessingJobName", "training": "TrainingJobName",
                    "transform": "TransformJobName"}[kind]
        name = request[name_key]
        getattr(self.sm, f"create_{kind}_job")(**request)
        if not runner.wait_for_jobs(MAX_JOB_SECONDS + 60, [name]):
            raise CheckFailed(f"{step} failed: job {name} did not end within {MAX_JOB_SECONDS + 60} s.", "JobFailed")
        description = getattr(self.sm, f"describe_{kind}_job")(**{name_key: name})
        result = job_result(kind, description)  # type: ignore[arg-type]
        log_path = runner.job_sandbox(name) / "logs.txt"
        log = log_path.read_text(errors="replace") if log_path.is_file() else ""
        self.runtimes.update(dict.fromkeys(runtimes.lines(log)))
        if result["status"] != "Completed":
            reason = script_reason(result["failure_reason"] or result["status"], log, self.code_files)
            raise CheckFailed(f"{step} failed: {reason} (log: {_shown(log_path)})", "JobFailed")
        return result


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_check(model: str, data: str | os.PathLike[str] | None = None, rows: int | None = None, *,
              models_dir: Path | None = None, say: Callable[[str], None] = print,
              home: Path | None = None) -> CheckResult:
    """Run every step of the check for ``model``; CheckFailed (one line) at the first failure."""
    steps: list[Step] = []
    found: dict[str, publish.ModelFolder] = {}

    def config_step() -> str:
        try:
            found.update(publish.model_folders(models_dir))
        except InvalidModelConfig as exc:
            raise CheckFailed(f"config: {exc.message}", type(exc).__name__) from exc
        if model not in found:
            raise CheckFailed(f"config: no model {model!r} under {models_dir or publish.MODELS_DIR} (models: "
                              f"{', '.join(found)}); add models/{model}/ with config.json and train.py.",
                              "UnknownModel")
        config = found[model].config
        return f"models/{model}: task {config.task}, metric {config.metric}, {len(config.features)} features"

    _timed("config", say, steps, config_step)
    folder = found[model]
    config = folder.config
    if rows is not None and rows < config.min_rows:
        raise CheckFailed(f"data: --rows {rows} is below the config's min_rows ({config.min_rows}); the preprocess "
                          "step refuses fewer rows. Pass --rows of at least that.")
    path = data_path(folder, data)
    sample: dict[str, Any] = {}

    def data_step() -> str:
        try:
            summary = validate_data(path, config)
        except AutoloopError as exc:
            raise CheckFailed(f"data: {type(exc).__name__}: {exc.message}", type(exc).__name__) from exc
        header, chosen = sample_rows(path, rows or max(DEFAULT_ROWS, config.min_rows))
        sample.update(header=header, rows=chosen, summary=summary)
        used = "all of them" if len(chosen) == summary.rows else f"a sample of {len(chosen):,}"
        return f"{_shown(path)}: {summary.rows:,} rows valid (ValidateInput's checks); checking on {used}"

    _timed("data", say, steps, data_step)
    verdict = _run_jobs(folder, sample["header"], sample["rows"], say, steps,
                        home or Path(os.environ.get("AUTOLOOP_LOCAL_HOME", ".autoloop")) / "check" / model)
    say(verdict.line())
    return CheckResult(tuple(steps), verdict)


def _run_jobs(folder: publish.ModelFolder, header: list[str], rows: list[list[str]], say: Callable[[str], None],
              steps: list[Step], home: Path) -> Verdict:
    from autoloop import batch
    from autoloop.registry import INFERENCE_ENV

    try:
        import moto  # noqa: F401
    except ImportError as exc:
        raise CheckFailed("preprocess: the jobs run on the local AWS, which needs the 'local' extra "
                          "(pip install -e '.[local]'); the config and data checks above passed.") from exc
    from localaws import server
    from localaws.clients import client
    from localaws.sagemaker.jobs import runner
    from localaws.sagemaker.jobs.job import SETTINGS

    config = folder.config
    body = _csv_bytes(header, rows)
    run = run_id(config.model, "check", SAMPLE_FILE, hashlib.sha256(body).hexdigest())
    ctx = JobContext(run_id=run, model=config.model, artifacts_bucket=BUCKET, role_arn=ROLE, image_uri=IMAGE,
                     instance_type="ml.m5.large", max_runtime_seconds=MAX_JOB_SECONDS, stack_name="autoloop-check")
    code_files = {Path(name).name for name in folder.files() if name.endswith(".py")}
    code_files |= {path.name for path in publish.ML_DIR.glob("*.py")}
    saved_root = SETTINGS.work_root
    shutil.rmtree(home / "jobs", ignore_errors=True)  # the last check's sandboxes: only this one's stay
    runner.configure(work_root=home)
    try:
        with server.in_process():
            s3 = client("s3")  # the local AWS's own clients: its region, whatever the environment says
            s3.create_bucket(Bucket=BUCKET)
            # this model alone: the others' bundles and images are not the check's business
            prepared = publish.prepare(s3.meta.region_name, folders={config.model: folder})
            publish.publish(s3, BUCKET, prepared=prepared)
            # the images the pipeline's jobs would name: they choose each local job's runtime
            images = parse_model_config(prepared.configs[config.model], f"models/{config.model}").images(IMAGE)
            input_uri = f"s3://{BUCKET}/{run_prefix(config.model, run)}/input/"
            s3.put_object(Bucket=BUCKET, Key=f"{run_prefix(config.model, run)}/input/{SAMPLE_FILE}", Body=body)
            jobs = _Jobs(code_files)
            done: dict[str, dict[str, Any]] = {}

            def preprocess() -> str:
                done["preprocess"] = jobs.run("preprocess", "processing", preprocess_request(ctx, input_uri))
                counts = {split: _rows_under(s3, done["preprocess"]["outputs"][split])
                          for split in ("train", "validation", "test")}
                return "ml/preprocess.py: " + " / ".join(f"{split} {n}" for split, n in counts.items()) + " rows"

            def train() -> str:
                outputs = done["preprocess"]["outputs"]
                request = training_request(replace(ctx, image_uri=images.training), outputs["train"],
                                           outputs["validation"], config.hyperparameters, config.label, config.task)
                done["train"] = jobs.run("train", "training", request)
                check_model_archive(_bytes(s3, done["train"]["model_artifacts"], "train"), config.model)
                return f"models/{config.model}/train.py -> {done['train']['model_artifacts'].rsplit('/', 1)[-1]}"

            def evaluate() -> str:
                request = evaluate_request(replace(ctx, image_uri=images.evaluate_image(IMAGE)),
                                           done["train"]["model_artifacts"],
                                           done["preprocess"]["outputs"]["test"], config.label, task=config.task,
                                           metric=config.metric, direction=config.direction)
                done["evaluate"] = jobs.run("evaluate", "processing", request)
                folder_uri = done["evaluate"]["outputs"]["evaluation"].rstrip("/")
                evaluation = _json(s3, f"{folder_uri}/evaluation.json", "evaluate")
                comparison = _json(s3, f"{folder_uri}/comparison.json", "evaluate")
                done["metric"] = {"value": metric_from_evaluation(evaluation, config.metric, "evaluation.json"),
                                  "rows": int(comparison.get("holdout_rows") or 0)}
                return (f"ml/evaluate.py: {config.metric} {done['metric']['value']:.4f} on "
                        f"{done['metric']['rows']} held-out rows")

            def serve() -> str:
                model_name = f"{run}-check"
                client("sagemaker").create_model(
                    ModelName=model_name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": images.inference, "ModelDataUrl": done["train"]["model_artifacts"],
                                      "Environment": dict(INFERENCE_ENV)},
                    EnableNetworkIsolation=True)
                features = [row[1:] for row in rows[:SERVE_ROWS]]  # the label is the first column
                serve_key = f"{run_prefix(config.model, run)}/serve/input/rows.csv"
                s3.put_object(Bucket=BUCKET, Key=serve_key, Body=_csv_bytes(None, features))
                plan = batch.BatchPlan(action="score", reason="autoloop check", model=config.model, month="2026-01",
                                       run_id=run, model_name=model_name, features=list(config.features))
                request = batch.transform_request(ctx, plan, f"s3://{BUCKET}/{serve_key.rsplit('/', 1)[0]}", 6)
                result = jobs.run("serve", "transform", request)
                out_uri = result["outputs"]["output"].rstrip("/") + "/rows.csv.out"
                answers = _text(s3, out_uri, "serve").strip().splitlines()
                if len(answers) != len(features):
                    raise CheckFailed(f"serve failed: inference.py answered {len(answers)} lines for "
                                      f"{len(features)} rows ({out_uri}).", "JobFailed")
                shown = ", ".join(_short(a.rsplit(",", 1)[-1]) for a in answers[:3])
                return f"inference.py: {len(features)} rows -> {len(answers)} predictions ({shown}, ...)"

            try:
                for name, work in (("preprocess", preprocess), ("train", train), ("evaluate", evaluate),
                                   ("serve", serve)):
                    _timed(name, say, steps, work)
            finally:
                for line in jobs.runtimes:
                    say(f"  ran on     {line}")
    finally:
        SETTINGS.work_root = saved_root
    threshold = config.threshold if config.threshold is not None else STACK_METRIC_THRESHOLD
    gate = decide(task=config.task, metric_name=config.metric, metric=done["metric"]["value"], threshold=threshold,
                  champion_metric=None, holdout_rows=done["metric"]["rows"], direction=config.direction)
    return Verdict(config.model, config.metric, done["metric"]["value"], threshold, str(gate["direction"]),
                   gate["verdict"] == "Promote", done["metric"]["rows"], len(rows))


def runtime_needs(region: str, models_dir: Path | None = None) -> list[tuple[str, str, Path | None]]:
    """(model, image, requirements.txt or None) for every local runtime the models' jobs would ask
    for: the preprocess image, each model's training image with its requirements.txt (the
    platform installs it before train.py), and its evaluate and inference images."""
    prepared = publish.prepare(region, models_dir=models_dir)
    needs: list[tuple[str, str, Path | None]] = []
    for name, folder in prepared.folders.items():
        images = parse_model_config(prepared.configs[name], f"models/{name}").images(IMAGE)
        requirements = folder.path / publish.REQUIREMENTS
        needs += [(name, IMAGE, None), (name, images.training, requirements if requirements.is_file() else None),
                  (name, images.evaluate_image(IMAGE), None), (name, images.inference, None)]
    return list(dict.fromkeys(needs))


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _rows_under(s3: Any, uri: str) -> int:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    total = 0
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        total += max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)
    return total


def _bytes(s3: Any, uri: str, step: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        raise CheckFailed(f"{step} failed: the job wrote no {uri} ({exc}).", "JobFailed") from exc


def _text(s3: Any, uri: str, step: str) -> str:
    return _bytes(s3, uri, step).decode()


def _json(s3: Any, uri: str, step: str) -> dict[str, Any]:
    try:
        doc = json.loads(_text(s3, uri, step))
    except ValueError as exc:
        raise CheckFailed(f"{step} failed: {uri} is not JSON ({exc}).", "JobFailed") from exc
    if not isinstance(doc, dict):
        raise CheckFailed(f"{step} failed: {uri} is not a JSON object.", "JobFailed")
    return doc


if __name__ == "__main__":
    for written in write_example_samples():
        print(f"wrote {written}")
