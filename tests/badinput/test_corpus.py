"""The bad-input corpus (cases.json): every case through the real handler, against moto.

Each case is fed to the handler's real entry point (functions/<handler>/app.py) with the
template booted into moto once for the module (booting per case would cost ~3 s each).
Every case checks that:

* the outcome is the expected one: the named error, raised (or, for StartPipeline, the
  refusal result and an SNS notification naming the error), or a deliberate 'accepted';
* the message says what is wrong (``match``) and the error's hint says what to do;
* nothing was launched: no SageMaker processing/training/transform job, no Step Functions
  execution (except the one run an accepted upload event starts);
* nothing was lost: every object version in the data bucket is byte-identical after, and
  there are no delete markers.

The 'publish' and 'check' cases (model folders, issue 13) need no stack: each lays out its
models/ folder and runs publish's folder validation or ``autoloop check``, which must fail with
the named error before any job runs (no job sandbox is made).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeDeleteMarker, s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sns.models import sns_backends
from moto.stepfunctions.models import stepfunctions_backends

from autoloop import adapters, errors
from autoloop.jobs import config_key
from autoloop.naming import JOB_STEPS, job_name, parse_run_id, run_id
from autoloop_cli.publish import model_folders, publish, published_configs
from tests.badinput import build_corpus
from tests.conftest import ROOT, load_handler
from tests.handlers.conftest import plain_moto
from tests.support import StackInfo, record_processing_job, use_fake_aws

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "cases.json").read_text())
CASES: list[dict[str, Any]] = MANIFEST["cases"]
STACK = "autoloop-badinput"
FUNCTIONS = {"start_pipeline": "StartPipelineFunction", "validate_input": "ValidateInputFunction",
             "job_callback": "JobCallbackFunction", "drift_handler": "DriftHandlerFunction"}
#: Cases run without the stack: on a models/ folder laid out by the case.
OFFLINE = {"publish", "check"}
OUTCOMES = {"accepted", "ignored"}
NOTHING: dict[str, set[str]] = {"processing": set(), "training": set(), "transform": set(), "executions": set()}


@dataclass
class Stack(StackInfo):
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self, handler: str) -> dict[str, str]:
        if handler not in self.envs:
            self.envs[handler] = self.function_environment(FUNCTIONS[handler])
        return self.envs[handler]

    def notifications(self) -> list[dict[str, str]]:
        return notifications(self.outputs["NotificationTopicArn"])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    from localaws.cloudformation.stack import deploy

    with pytest.MonkeyPatch.context() as mp:
        use_fake_aws(mp, local_server=False)  # module-scoped: before the per-test one
        with plain_moto():  # one boot for the module: each case observes only its own changes
            deployed = deploy(ROOT / "template.yaml", stack_name=STACK)
            publish(boto3.client("s3"), deployed.outputs["ArtifactsBucketName"])
            yield Stack(dict(deployed.outputs), dict(deployed.resources))


# ----------------------------------------------------------------------------- observation
# Read moto's backends directly: listing through the API costs ~40 ms a call, and the whole
# data bucket is compared before and after every one of the cases.
ACCOUNT, REGION = DEFAULT_ACCOUNT_ID, "us-east-1"


def launched() -> dict[str, set[str]]:
    """Every SageMaker job and Step Functions execution that exists."""
    sagemaker = sagemaker_backends[ACCOUNT][REGION]
    return {
        "processing": set(sagemaker.processing_jobs),
        "training": set(sagemaker.training_jobs),
        "transform": set(sagemaker.transform_jobs),
        "executions": {e.execution_arn for machine in stepfunctions_backends[ACCOUNT][REGION].state_machines
                       for e in machine.executions},
    }


def data_bucket_contents(bucket: str) -> dict[tuple[str, str], bytes | str]:
    """(key, version) -> bytes of every version in the bucket, and every delete marker."""
    contents: dict[tuple[str, str], bytes | str] = {}
    for key, versions in s3_backends[ACCOUNT]["aws"].buckets[bucket].keys.iterlists():
        for version in versions:
            deleted = isinstance(version, FakeDeleteMarker)
            contents[(key, str(version.version_id))] = "delete marker" if deleted else bytes(version.value)
    return contents


def notifications(topic_arn: str) -> list[dict[str, str]]:
    """Everything published to the notification topic so far, oldest first."""
    topic = sns_backends[ACCOUNT][REGION].topics[topic_arn]
    return [{"Subject": subject, "Message": message} for _, message, subject, *_ in topic.sent_notifications]


# ----------------------------------------------------------------------------- inputs
def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: names[m.group(1)], value)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def upload(stack: Stack, case: dict[str, Any]) -> dict[str, Any]:
    """Put the case's data file (a new version of its own key); return its identity."""
    model = case.get("model", "churn")
    key = case.get("key", f"incoming/{model}/badinput/{case['id']}.csv")
    if "data" not in case:
        return {"key": key, "version_id": "v-none", "etag": "0" * 32, "size": 0, "model": model}
    body = (HERE / "data" / case["data"]).read_bytes()
    put = boto3.client("s3").put_object(Bucket=stack.data_bucket, Key=key, Body=body)
    return {"key": key, "version_id": put["VersionId"], "etag": put["ETag"].strip('"'), "size": len(body),
            "model": model}


def handler_input(stack: Stack, case: dict[str, Any], obj: dict[str, Any]) -> Any:
    if case["handler"] == "validate_input":
        key = case.get("source_key", obj["key"])
        return {"run_id": run_id(obj["model"], stack.data_bucket, key, obj["version_id"]), "model": obj["model"],
                "source": {"bucket": stack.data_bucket, "key": key, "version_id": obj["version_id"],
                           "etag": obj["etag"], "size": obj["size"]}}
    prefix = f"monitoring/{STACK}-churn/{STACK}-churn-dq/badinput/{case['id']}"
    if "report" in case:
        body = (HERE / "reports" / case["report"]).read_bytes()
        boto3.client("s3").put_object(Bucket=stack.artifacts_bucket, Key=f"{prefix}/constraint_violations.json",
                                      Body=body)
    names = {"DATA_BUCKET": stack.data_bucket, "ARTIFACTS_BUCKET": stack.artifacts_bucket, "STACK": STACK,
             "ACCOUNT": ACCOUNT, "REGION": REGION,
             "KEY": obj["key"], "VERSION_ID": obj["version_id"], "ETAG": obj["etag"], "REPORT_PREFIX": prefix}
    event = fill(json.loads((HERE / "events" / case["event"]).read_text()), names)
    if case["handler"] == "drift_handler" and isinstance(event, dict) and _is_processing_event(event):
        event = record_processing_job(event)
    return event


def _is_processing_event(event: dict[str, Any]) -> bool:
    """A well-formed Processing Job State Change of a job with outputs: AWS would know that job."""
    detail = event.get("detail")
    return (event.get("detail-type") == "SageMaker Processing Job State Change" and isinstance(detail, dict)
            and detail.get("ProcessingJobStatus") == "Completed" and isinstance(detail.get("ProcessingJobName"), str)
            and isinstance(detail.get("ProcessingOutputConfig"), dict) and "ProcessingResources" in detail)


def count_body_reads(bucket: str, content_length: int) -> dict[str, int]:
    """Make GetObject of ``bucket`` report ``content_length``; count the body bytes read."""
    counter = {"bytes": 0}
    target = {"bucket": ""}

    def remember(params: dict[str, Any], **_: Any) -> None:
        target["bucket"] = params.get("Bucket", "")

    def patch(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" not in parsed or target["bucket"] != bucket:
            return
        parsed["ContentLength"] = content_length
        body, read = parsed["Body"], parsed["Body"].read

        def counting(amt: int | None = None) -> bytes:
            data: bytes = read(amt)
            counter["bytes"] += len(data)
            return data

        body.read = counting

    events = adapters.client("s3").meta.events
    events.register("before-parameter-build.s3.GetObject", remember)
    events.register("after-call.s3.GetObject", patch)
    return counter


# ----------------------------------------------------------------------------- the corpus
def _params(offline: bool = False) -> list[Any]:
    params = []
    for case in CASES:
        if (case["handler"] in OFFLINE) != offline:
            continue
        marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if "xfail" in case else []
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def test_the_corpus_has_at_least_25_cases_each_with_a_named_outcome():
    assert len(CASES) >= 25
    assert len({c["id"] for c in CASES}) == len(CASES)
    for case in CASES:
        assert case["handler"] in FUNCTIONS or case["handler"] in OFFLINE, case["id"]
        assert case["expect"] in OUTCOMES or issubclass(getattr(errors, case["expect"]), errors.AutoloopError), case
        if case["expect"] == "accepted":
            assert case.get("decision"), f"{case['id']}: an accepted case documents the decision"
        else:
            assert case.get("match"), f"{case['id']}: the expected message is pinned"
    refused = [c for c in CASES if c["expect"] not in OUTCOMES and "xfail" not in c]
    assert len(refused) >= 25


def test_the_corpus_files_are_what_build_corpus_makes():
    expected = build_corpus.corpus()
    on_disk = {str(p.relative_to(HERE)): p.read_bytes() for d in ("data", "events", "reports", "configs")
               for p in sorted((HERE / d).iterdir())}
    assert on_disk == expected
    used = {f"{d}/{c[k]}" for c in CASES for k, d in (("data", "data"), ("event", "events"), ("report", "reports"),
                                                       ("config", "configs")) if k in c}
    used |= {f"configs/{f['config']}" for c in CASES for f in c.get("folders", {}).values()}
    assert used <= set(expected)


@pytest.mark.parametrize("case", _params())
def test_case(case: dict[str, Any], stack: Stack, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    for var, value in stack.env(case["handler"]).items():
        monkeypatch.setenv(var, value)
    for var in case.get("env", {}).get("unset", []):
        monkeypatch.delenv(var, raising=False)
    for var, value in case.get("env", {}).get("set", {}).items():
        monkeypatch.setenv(var, value)
    if "config" in case:
        boto3.client("s3").put_object(Bucket=stack.artifacts_bucket, Key=config_key(case["model"]),
                                      Body=(HERE / "configs" / case["config"]).read_bytes())
    obj = upload(stack, case)
    payload = handler_input(stack, case, obj)
    size = case.get("simulate_content_length")
    reads = count_body_reads(stack.data_bucket, size) if size else None
    before_launched, before_data = launched(), data_bucket_contents(stack.data_bucket)
    before_notes = len(stack.notifications())

    raised: errors.AutoloopError | None = None
    result: Any = None
    try:
        result = load_handler(case["handler"]).handler(payload, lambda_context)
    except errors.AutoloopError as exc:
        raised = exc

    # -- nothing lost: every version byte-identical, no delete markers ------------------------
    after_data = data_bucket_contents(stack.data_bucket)
    assert after_data == before_data
    assert "delete marker" not in after_data.values()
    # -- nothing launched (an accepted upload event starts exactly its one run) --------------
    after_launched = launched()
    new = {kind: after_launched[kind] - before_launched[kind] for kind in after_launched}
    notes = stack.notifications()[before_notes:]
    expect = case["expect"]

    if expect == "accepted" and case["handler"] == "start_pipeline":
        assert raised is None and result["started"] is True, result
        assert new == {**NOTHING, "executions": {result["execution_arn"]}}
        assert parse_run_id(result["run_id"])[0] == "churn"
        assert all(job_name(result["run_id"], step) for step in JOB_STEPS)  # valid, <= 63 characters
        execution = boto3.client("stepfunctions").describe_execution(executionArn=result["execution_arn"])
        assert json.loads(execution["input"])["source"]["key"] == obj["key"]
        return
    assert new == NOTHING
    if expect == "accepted":
        assert raised is None, f"{case['id']}: {raised!r}"
        assert result["rows"] == build_corpus.VALID_ROWS
        if reads is not None:
            assert reads["bytes"] == 0
        return
    if expect == "ignored":
        assert raised is None and re.search(case["match"], result["ignored"]), result
        return

    if case["handler"] == "start_pipeline" and raised is None:
        # StartPipeline refuses a bad event without raising: the result and a notification say why.
        assert result["started"] is False and result["error"] == expect, result
        message = result["reason"]
        [note] = notes
        assert note["Subject"] == "Autoloop: upload rejected"
        assert json.loads(note["Message"])["error"] == expect
        assert json.loads(note["Message"])["reason"] == message
    else:
        assert raised is not None, f"{case['id']}: expected {expect}, got {result!r}"
        assert type(raised).__name__ == expect, f"{case['id']}: {type(raised).__name__}: {raised}"
        # A task Lambda's error is notified by its state machine's Catch, not by the Lambda; a
        # handler that notifies itself (the drift handler, on an unreadable report) names the error.
        assert all(expect in note["Message"] for note in notes), notes
        if case["handler"] == "validate_input":
            assert notes == []
        message = str(raised)
        assert raised.hint and message.endswith(raised.hint)  # what to do
    assert re.search(case["match"], message, re.DOTALL), f"{case['id']}: {message!r}"  # what is wrong
    if reads is not None:
        assert reads["bytes"] == 0, "the body must not be read when the size alone refuses the object"


# ----------------------------------------------------------------------------- model folders (offline)
def lay_out(root: Path, folders: dict[str, dict[str, Any]]) -> Path:
    """models/<name>/ for each of the case's folders: its config, and churn's train.py unless
    the case says ``"train": false``."""
    models = root / "models"
    for name, spec in folders.items():
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_bytes((HERE / "configs" / spec["config"]).read_bytes())
        if spec.get("train", True):
            (models / name / "train.py").write_bytes((ROOT / "models" / "churn" / "train.py").read_bytes())
    return models


@pytest.mark.parametrize("case", _params(offline=True))
def test_model_folder_case(case: dict[str, Any], tmp_path: Path) -> None:
    from autoloop_cli import check

    models = lay_out(tmp_path, case["folders"])
    if case["handler"] == "publish":
        with pytest.raises(errors.AutoloopError) as raised:  # what publish checks before any upload
            published_configs(model_folders(models), "eu-west-1")
        assert type(raised.value).__name__ == case["expect"]
        message = str(raised.value)
        assert raised.value.hint and message.endswith(raised.value.hint)
    else:
        home = tmp_path / "home"
        with pytest.raises(check.CheckFailed) as failed:
            check.run_check(next(iter(case["folders"])), HERE / "data" / case["data"], models_dir=models,
                            say=lambda _: None, home=home)
        assert failed.value.error == case["expect"]
        message = failed.value.message
        assert "\n" not in message
        assert not home.exists(), "no job may run"
    assert re.search(case["match"], message), f"{case['id']}: {message!r}"
