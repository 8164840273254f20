"""Duplicates and bursts on the local AWS: a flood of events never starts a flood of jobs.

- 100 copies of one S3 event, delivered through EventBridge, start exactly one execution.
- 50 distinct uploads within seconds are all accounted for under MaxConcurrentTrainingRuns=2:
  each ends trained (registered, or refused by the gate) or Superseded by a newer upload of
  the same model (the coalescing policy in src/autoloop/run_slots.py); none fails otherwise,
  none is lost, at most two runs hold paid jobs at any moment, and no job names collide.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from autoloop.naming import run_id
from autoloop_cli import datagen, executions
from localaws.awslambda import runtime as lambda_runtime
from tests.conftest import EVENTS
from tests.e2e.conftest import boot
from tests.support import find_execution, wait_for_executions

pytestmark = pytest.mark.e2e

CAP = 2
# A queued run retries every 200 s (2 s at the e2e time scale): with 48 runs queued, the default
# 60 s would make the retries of queued runs (each a Lambda invocation) the bottleneck.
BURST = 50
COPIES = 100


@pytest.fixture(scope="module")
def local():
    for local_aws in boot("autoloop-burst", {"MaxConcurrentTrainingRuns": str(CAP), "RunSlotWaitSeconds": "200"}):
        events = local_aws.client("events")
        for rule in events.list_rules()["Rules"]:
            if "PackageApprovalChanged" in rule["Name"]:
                events.disable_rule(Name=rule["Name"])  # deployment is not what this module tests
        yield local_aws


def csv(seed: int) -> bytes:
    return datagen.generate(300, seed=seed).to_csv(index=False).encode()


def wait_for_execution(local, name: str, timeout: float = 60) -> str:
    """The ARN of the execution named ``name`` (the run id), once the upload's event started it."""
    return find_execution(local.outputs["TrainingPipelineArn"], name, timeout, local.client("stepfunctions"))


def s3_event(bucket: str, key: str, head: dict) -> dict:
    event = json.loads((EVENTS / "s3_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update({"key": key, "version-id": head["VersionId"], "etag": head["ETag"].strip('"'),
                                      "size": head["ContentLength"]})
    return event


def test_100_copies_of_one_s3_event_start_one_execution(local, record_property):
    s3, sfn, bucket = local.client("s3"), local.client("stepfunctions"), local.outputs["DataBucketName"]
    key = "incoming/churn/redelivered.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=csv(seed=1))["VersionId"]
    rid = run_id("churn", bucket, key, version)
    first = local.execution_for(rid)

    # EventBridge delivers at least once: send the same event 100 more times, 10 per PutEvents.
    event = s3_event(bucket, key, s3.head_object(Bucket=bucket, Key=key, VersionId=version))
    entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
             "Resources": event["resources"]}
    for _ in range(COPIES // 10):
        response = local.client("events").put_events(Entries=[entry] * 10)
        assert response["FailedEntryCount"] == 0
    assert lambda_runtime.drain(120), "StartPipeline has not handled every copy"  # the rule invokes it async

    started = [e for e in executions.executions(sfn, local.outputs["TrainingPipelineArn"])
               if e["name"].startswith(rid)]
    assert [e["executionArn"] for e in started] == [first]
    record_property("figures", f"duplicates: {COPIES} more copies of one S3 event -> {len(started)} execution")
    assert wait_for_executions([first], 120, sfn)[first]["status"] == "SUCCEEDED"


def _paid_intervals(events: list[dict]) -> list[tuple[datetime, datetime]]:
    """(slot taken, slot given back) from one execution's history: the span of its paid jobs."""
    entered = [(e["timestamp"], e["stateEnteredEventDetails"]["name"]) for e in events
               if e["type"].endswith("StateEntered")]
    start = [t for (t, name), (_, after) in zip(entered, entered[1:], strict=False)
             if name == "AcquireRunSlot" and after == "Preprocess"]
    end = [t for t, name in entered if name.startswith("ReleaseRunSlot")]
    return list(zip(start, end, strict=True))


def test_a_burst_of_50_uploads_is_processed_under_the_cap_and_nothing_is_lost(local, record_property):
    s3, sfn, sm = local.client("s3"), local.client("stepfunctions"), local.client("sagemaker")
    bucket = local.outputs["DataBucketName"]
    bodies = {f"incoming/churn/burst-{i:02d}.csv": csv(seed=100 + i) for i in range(BURST)}
    jobs_before = {j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]}

    began = time.monotonic()
    versions = {}
    for key, body in bodies.items():  # sequential puts: the order of uploads is the order of arrival
        versions[key] = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    upload_seconds = time.monotonic() - began
    run_ids = {key: run_id("churn", bucket, key, version) for key, version in versions.items()}
    arns = [wait_for_execution(local, rid) for rid in run_ids.values()]
    assert len(set(arns)) == BURST, "an upload did not start its own execution"

    started_seconds = time.monotonic() - began
    ended = wait_for_executions(arns, 240, sfn)
    ended_seconds = time.monotonic() - began
    histories = {arn: executions.history(sfn, arn) for arn in arns}
    paths = {arn: [s.name for s in executions.path(events)] for arn, events in histories.items()}

    outcomes: dict[str, list[str]] = {"registered": [], "refused by the gate": [], "superseded": []}
    for arn, description in ended.items():
        path = paths[arn]
        if description["status"] == "SUCCEEDED" and path[-1] == "Superseded":
            assert "Preprocess" not in path
            outcomes["superseded"].append(arn)
        elif description["status"] == "SUCCEEDED" and "RegisterModel" in path:
            outcomes["registered"].append(arn)
        elif description["status"] == "FAILED" and description.get("error") in {"BelowChampion", "BelowThreshold"}:
            outcomes["refused by the gate"].append(arn)
        else:
            raise AssertionError(f"{arn} ended {description['status']} {description.get('error')}: {path}")
    trained = outcomes["registered"] + outcomes["refused by the gate"]
    assert sum(map(len, outcomes.values())) == BURST

    # The newest upload is always trained; a superseded run names a run that was newer.
    newest = arns[-1]
    assert newest in trained
    for arn in outcomes["superseded"]:
        by = json.loads(ended[arn]["output"])["queue"]["superseded_by"]
        assert arns.index(arn) < list(run_ids.values()).index(by)

    # The cap held: at no moment did more than CAP runs hold paid jobs. And it was needed.
    spans = [span for arn in trained for span in _paid_intervals(histories[arn])]
    assert len(spans) == len(trained)
    moments = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    concurrent = peak = 0
    for _, step in moments:
        concurrent += step
        peak = max(peak, concurrent)
    assert peak <= CAP
    assert any("QueueForRunSlot" in path for path in paths.values())

    # No job name collided: one training job per trained run, each named after its run.
    jobs = [j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
            if j["TrainingJobName"] not in jobs_before]
    assert len(jobs) == len(set(jobs)) == len(trained)

    # Nothing lost: every upload is there, byte for byte, and every slot was given back.
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key, VersionId=versions[key])["Body"].read() == body
    ddb = local.client("dynamodb")
    slots = ddb.get_item(TableName=local.stack.resources["RunSlotsTable"], Key={"pk": {"S": "training"}})["Item"]
    assert slots["running"] == {"N": "0"} and set(slots) == {"pk", "running"}

    record_property("figures", f"burst: {BURST} uploads in {upload_seconds:.1f} s, "
                    f"all started by {started_seconds:.1f} s, "
          f"all ended by {ended_seconds:.1f} s -> {len(outcomes['registered'])} registered, "
          f"{len(outcomes['refused by the gate'])} refused by the gate, {len(outcomes['superseded'])} superseded; "
          f"peak concurrent paid runs {peak} (cap {CAP}); {len(jobs)} training jobs, 0 name collisions")
