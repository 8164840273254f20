"""The local lifecycle demo: boot template.yaml, upload data, follow the pipeline, summarise.

Everything below goes through the local AWS as a real client would: boto3 against the
local endpoint. The only difference from AWS is the endpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localaws import clients, executions
from localaws.console import Console

ROOT = Path(__file__).resolve().parents[1]
STACK = "autoloop-local"
MODEL = "churn"


@dataclass
class DemoResult:
    execution_arn: str
    status: str
    path: list[str]
    transitions: int
    wall_seconds: float
    pipeline_seconds: float
    ml_seconds: float
    lambda_invocations: int
    model_package: dict[str, Any] | None
    outputs: dict[str, str] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)


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


def wait_for_execution(sfn: Any, state_machine_arn: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(executions.executions(sfn, state_machine_arn))
        if found:
            return str(found[0]["executionArn"])
        time.sleep(0.1)
    raise TimeoutError(
        f"no TrainingPipeline execution started within {timeout:.0f} s of the upload; "
        "see .autoloop/logs/ for the StartPipeline function's log"
    )


def run(rows: int = 2000, seed: int = 7, timeout: float = 300.0, console: Console | None = None,
        keep_server: bool = False) -> DemoResult:
    from localaws import datagen, lambda_runtime, publish, sagemaker_jobs, server, stack

    console = console or Console(stages=5)
    started = time.perf_counter()
    local = server.start()
    try:
        with console.stage(f"Starting the local AWS (moto server at {local.endpoint_url})"):
            pass
        with console.stage("Deploying template.yaml into the local AWS"):
            deployed = stack.deploy(ROOT / "template.yaml", stack_name=STACK, project_root=ROOT)
            console.say(f"      stack {STACK}: {len(deployed.resources)} resources")
        outputs = deployed.outputs
        with console.stage("Publishing ml/ and the model configs"):
            published = publish.publish(clients.client("s3"), outputs["ArtifactsBucketName"])
            console.say(f"      {len(published.scripts)} scripts, models: {', '.join(published.models)}")
        queue = _subscribe_queue(outputs["NotificationTopicArn"])
        key = f"incoming/{MODEL}/demo-{time.strftime('%Y%m%dT%H%M%S')}.csv"
        with console.stage(f"Uploading {rows:,} generated rows to s3://{outputs['DataBucketName']}/{key}"):
            body = datagen.generate(rows, seed=seed).to_csv(index=False).encode()
            clients.client("s3").put_object(Bucket=outputs["DataBucketName"], Key=key, Body=body)
        sfn = clients.client("stepfunctions")
        with console.stage("Running the TrainingPipeline (started by the template's EventBridge rule)"):
            pipeline_started = time.perf_counter()
            arn = wait_for_execution(sfn, outputs["TrainingPipelineArn"], timeout=30)
            console.say(f"      execution {arn.rsplit(':', 1)[-1]}")
            description = executions.follow(
                sfn, arn, timeout=timeout,
                on_step=lambda s: console.say(f"      -> {s.name}"),
            )
            pipeline_seconds = time.perf_counter() - pipeline_started
        events = executions.history(sfn, arn)
        steps = executions.path(events)
        package = None
        if description["status"] == "SUCCEEDED":
            package = json.loads(description["output"]).get("model_package")
        timings = sagemaker_jobs.job_timings()
        result = DemoResult(
            execution_arn=arn,
            status=description["status"],
            path=[s.name for s in steps],
            transitions=executions.transitions(events),
            wall_seconds=time.perf_counter() - started,
            pipeline_seconds=pipeline_seconds,
            ml_seconds=sum(t.get("compute_seconds", 0.0) for t in timings.values()),
            lambda_invocations=sum(lambda_runtime.invocations().values()),
            model_package=package,
            outputs=outputs,
            notifications=_drain_queue(queue),
        )
        summarise(console, result, steps, description)
        return result
    finally:
        if not keep_server:
            local.stop()


def summarise(console: Console, result: DemoResult, steps: list[executions.Step], description: dict[str, Any]) -> None:
    say = console.say
    say()
    say(f"Run {result.execution_arn.rsplit(':', 1)[-1]}: {result.status}")
    say("  Path: " + " -> ".join(result.path))
    say("  Steps:")
    for step in steps:
        seconds = f"{step.seconds:6.2f} s" if step.seconds is not None else "      -"
        say(f"    {step.name:<24} {seconds}")
    if result.status != "SUCCEEDED":
        say(f"  Error: {description.get('error')}: {description.get('cause')}")
    output = json.loads(description.get("output") or "{}")
    gate = output.get("gate") or {}
    if result.model_package:
        say(f"  Model package: {result.model_package['arn']} ({result.model_package['approval_status']})")
    if gate:
        champion = gate.get("champion_metric")
        say(f"  Metric: {gate['metric_name']} = {gate['metric']:.4f} (threshold {gate['threshold']}, "
            f"champion {'none' if champion is None else f'{champion:.4f}'})")
        say(f"  Evaluation: {gate['evaluation_uri']}")
    train = (output.get("jobs") or {}).get("train") or {}
    if train.get("model_artifacts"):
        say(f"  Model artifacts: {train['model_artifacts']}")
    say(f"  Notifications: {len(result.notifications)}")
    for note in result.notifications:
        say(f"    {note[:160]}")
    other = result.pipeline_seconds - result.ml_seconds
    say(f"  Pipeline time {result.pipeline_seconds:.2f} s = ML compute {result.ml_seconds:.2f} s "
        f"+ orchestration {other:.2f} s; {result.transitions} state transitions, "
        f"{result.lambda_invocations} Lambda invocations")
    say(f"  Wall time (boot included): {result.wall_seconds:.2f} s. Logs: .autoloop/logs/, jobs: .autoloop/jobs/")
