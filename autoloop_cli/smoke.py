"""`autoloop smoke`: a deployed stack's TrainingPipeline, end to end, on a small sample.

What the CI/CD workflow runs against the dev stack after `sam deploy` and `autoloop publish`
(README, "CI/CD"). It uploads a CSV to ``incoming/<model>/`` of the stack's data bucket, the
way a user's upload arrives (the S3 event starts the run), follows that run to its end as
`autoloop local put --wait` does (``executions.follow_run``), and decides:

- passed: the run registered a model package; or the quality gate kept the champion
  (``BelowChampion``): every job ran and the challenger was compared, which is what happens
  when the same sample is uploaded again to a stack whose champion was trained on it;
- failed: any other end (bad data, a failed job, below the threshold, superseded by another
  upload), no run within the start bound, or no end within ``timeout``; one line says why.

Only boto3, with the caller's credentials and region (or AWS_ENDPOINT_URL for the local AWS).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoloop.naming import execution_arn, run_id
from autoloop_cli import executions, publish

#: Gate decisions that prove the pipeline works although nothing was registered.
EXPECTED_REFUSALS = frozenset({"BelowChampion"})
#: How long the S3 event may take to start the run (EventBridge, then a Lambda, maybe cold).
START_WITHIN_SECONDS = 120.0


class SmokeError(Exception):
    """The smoke check could not start: bad arguments or a stack that is not ready."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    line: str


def sample_path(model: str, data: str | None) -> Path:
    path = Path(data) if data else publish.MODELS_DIR / model / publish.SAMPLE_FILE
    if not path.is_file():
        hint = "pass --data with a CSV of the model's columns, label first" if not data else "check the path"
        raise SmokeError(f"--data: {path} is not a file; {hint}")
    return path


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [k for k in ("DataBucketName", "ArtifactsBucketName", "TrainingPipelineArn") if k not in outputs]
    if missing:
        raise SmokeError(f"stack {stack_name} has no output {', '.join(missing)} ({stack['StackStatus']}): "
                         "is it an Autoloop stack, deployed completely?")
    return outputs


def verdict(description: dict[str, Any]) -> Verdict:
    """How the run ended, as the smoke check judges it (module docstring)."""
    line = executions.outcome(description)
    status = description["status"]
    output = json.loads(description.get("output") or "{}") if status == "SUCCEEDED" else {}
    package = output.get("model_package") if isinstance(output, dict) else None
    if isinstance(package, dict) and package.get("arn"):
        return Verdict(True, line)
    if status == "FAILED" and description.get("error") in EXPECTED_REFUSALS:
        return Verdict(True, f"the gate kept the champion (expected for a sample it has seen): {line}")
    return Verdict(False, f"run {status.lower()}: {line}")


def run(session: Any, stack_name: str, model: str, data: Path, timeout: float, poll: float,
        say: Callable[[str], None]) -> Verdict:
    """Upload ``data`` for ``model`` to the stack ``stack_name`` and judge the run it starts."""
    outputs = stack_outputs(session.client("cloudformation"), stack_name)
    s3 = session.client("s3")
    published = publish.published_models(s3, outputs["ArtifactsBucketName"])
    if model not in published:
        names = ", ".join(published) or "none"
        raise SmokeError(f"--model {model}: not published to {stack_name} (published: {names}); "
                         f"run autoloop publish --stack-name {stack_name} first")
    bucket = outputs["DataBucketName"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"incoming/{model}/smoke-{stamp}-{data.name}"
    response = s3.put_object(Bucket=bucket, Key=key, Body=data.read_bytes())
    version = response.get("VersionId") or response["ETag"].strip('"')
    say(f"uploaded s3://{bucket}/{key} (version {version})")
    arn = execution_arn(outputs["TrainingPipelineArn"], run_id(model, bucket, key, version))
    try:
        description = executions.follow_run(session.client("stepfunctions"), arn, timeout, say=say, poll=poll,
                                            start_within=min(START_WITHIN_SECONDS, timeout))
    except TimeoutError as exc:
        return Verdict(False, f"{exc} (--timeout {timeout:g})")
    return verdict(description)
