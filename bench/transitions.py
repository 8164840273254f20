"""State transitions and Lambda invocations per TrainingPipeline run, against a polling design.

Ours, measured: the real TrainingPipeline on the local AWS (template.yaml, on the stack the
``loop`` benchmark deployed when it ran in this process, else on a stack booted here), run
twice more: once as is, once with the training job held ``hold`` seconds (10 s; 1 s in quick
mode) longer before its script starts (``sagemaker_jobs.set_fault_hook``, called when the job
gets its slot). Before those runs the DeployPipeline still running from the demo is let
finish and the rule that starts a DeployPipeline on a registration is disabled, so the runs
are the only work on the local AWS. Transitions are counted from each execution's history
(``StateEntered`` events, as Step Functions bills them); Lambda invocations are every
invocation the run causes, counted by the local Lambda runtime (the trigger, the tasks, and
the job-callback invocations that EventBridge delivers, which are not in the history).
Each job step waits on a task token, so both counts are the same at both lengths; the
figure at 10 min, 1 h and 10 h is that measured constant. Quick mode measures one run (held)
and compares its transitions with the demo's run; its Lambda line is not compared.

Baseline, the polling design on the same jobs: ``bench/polling.asl.json``, one job as
StartJob -> (Wait 60 s -> DescribeJob -> Choice) per poll -> Done, with a Lambda for the
start and for each describe (the classic design; with an ``aws-sdk`` describe instead, the
transitions are the same and the describes cost no Lambda). It is run for real on the
local Step Functions (Waits scaled by ``localaws.stepfunctions.clock``) against a job whose length it
sets (the describe Lambda reports ``Completed`` once 60 s x polls covers the length), at
several lengths; the counts per poll come from those runs' histories (fitted, and checked
to be linear). The polling pipeline is ours with each of its three job steps (one Task
each) replaced by that fragment (less its Done state), its job-callback invocations
removed; the training job takes 10 min, 1 h or 10 h, preprocess and evaluate 5 min each.
"""

from __future__ import annotations

import io
import json
import math
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bench import loop
from bench.common import Row, progress

HERE = Path(__file__).resolve().parent
POLL_SECONDS = 60
LENGTHS = {"10 min": 600, "1 h": 3600, "10 h": 36000}
OTHER_JOBS_SECONDS = 300  # preprocess and evaluate, in the polling model
JOB_STEPS = ("Preprocess", "Train", "Evaluate")
POLLING_CODE = '''
def start(event, context):
    return {"job_name": "bench-job", "length_seconds": int(event["length_seconds"]), "elapsed_seconds": 0,
            "status": "InProgress"}


def describe(event, context):
    elapsed = int(event["elapsed_seconds"]) + POLL_SECONDS
    status = "Completed" if elapsed >= int(event["length_seconds"]) else "InProgress"
    return {**event, "elapsed_seconds": elapsed, "status": status}
'''.replace("POLL_SECONDS", str(POLL_SECONDS))
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
     "Action": "sts:AssumeRole"}]})


def _counts(sfn: Any, arn: str) -> tuple[int, int]:
    from autoloop_cli import executions

    events = executions.history(sfn, arn)
    lambdas = sum(1 for e in events if e["type"] == "TaskScheduled"
                  and e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda")
    return executions.transitions(events), lambdas


def _our_run(s: loop.Session, hold: float) -> dict[str, Any]:
    """Upload the demo's data again (a new run) with the training job held ``hold`` s."""
    from autoloop_cli import datagen, executions, publish
    from autoloop_cli.demo import lifecycle as demo
    from localaws import clients
    from localaws.awslambda import runtime as lambda_runtime
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    outputs = s.result.outputs
    training_sm = outputs["TrainingPipelineArn"]
    known = {e["executionArn"] for e in executions.executions(clients.client("stepfunctions"), training_sm)}
    lambda_runtime.drain(30)
    before = sum(lambda_runtime.invocations().values())

    def hook(kind: str, name: str) -> str | None:
        if kind == "training":
            time.sleep(hold)
        return None

    # The same rows again: the challenger ties the champion, and ties must promote here so the
    # run takes the full path this benchmark counts.
    publish.publish_config_with(clients.client("s3"), outputs["ArtifactsBucketName"], demo.MODEL,
                                {"promote_ties": True})
    sagemaker_jobs.set_fault_hook(hook)
    try:
        body = datagen.generate(s.rows, seed=7).to_csv(index=False).encode()
        key = f"incoming/{demo.MODEL}/bench-hold-{uuid.uuid4().hex[:8]}.csv"
        clients.client("s3").put_object(Bucket=outputs["DataBucketName"], Key=key, Body=body)
        arn = demo.wait_for_new_execution(training_sm, known, 30, "TrainingPipeline")
        run = demo.follow("TrainingPipeline", arn, s.console, 300)  # type: ignore[arg-type]
    finally:
        sagemaker_jobs.set_fault_hook(None)
    lambda_runtime.drain(30)
    if run.status != "SUCCEEDED":
        raise RuntimeError(f"TrainingPipeline with the training job held {hold} s: {run.status}")
    train = next(st for st in run.steps if st.name == "Train")
    return {"transitions": run.transitions, "lambda": sum(lambda_runtime.invocations().values()) - before,
            "train_step_seconds": train.seconds, "path": run.path, "seconds": run.seconds}


def _polling_runs(polls: list[int], scale: float) -> dict[int, tuple[int, int]]:
    """Run bench/polling.asl.json for jobs of ``p`` polls each; {polls: (transitions, lambdas)}."""
    from autoloop_cli import executions
    from localaws.clients import client
    from localaws.stepfunctions import clock as sfn_time

    iam, lam, sfn = client("iam"), client("lambda"), client("stepfunctions")
    role = iam.create_role(RoleName=f"bench-polling-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=ROLE_POLICY)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("poll.py", POLLING_CODE)
    arns = {}
    for handler in ("start", "describe"):
        arns[handler] = lam.create_function(
            FunctionName=f"bench-polling-{handler}-{uuid.uuid4().hex[:6]}", Runtime="python3.12",
            Role=role["Role"]["Arn"], Handler=f"poll.{handler}", Code={"ZipFile": buffer.getvalue()}, Timeout=10,
        )["FunctionArn"]
    definition = (HERE / "polling.asl.json").read_text().replace("${StartJobFunctionArn}", arns["start"]) \
        .replace("${DescribeJobFunctionArn}", arns["describe"])
    machine = sfn.create_state_machine(name=f"bench-polling-{uuid.uuid4().hex[:6]}", definition=definition,
                                       roleArn=role["Role"]["Arn"])["stateMachineArn"]
    sfn_time.set_time_scale(scale)
    try:
        found = {}
        for p in polls:
            arn = sfn.start_execution(stateMachineArn=machine, name=f"poll-{p}-{uuid.uuid4().hex[:6]}",
                                      input=json.dumps({"length_seconds": p * POLL_SECONDS}))["executionArn"]
            description = executions.follow(sfn, arn, timeout=60 + p * (60 * scale + 0.5))
            if description["status"] != "SUCCEEDED":
                raise RuntimeError(f"polling run of {p} polls: {description['status']}")
            found[p] = _counts(sfn, arn)
            progress(f"[transitions] polling a {p}-poll job: {found[p][0]} transitions, {found[p][1]} Lambda")
        return found
    finally:
        sfn_time.set_time_scale(None)


def _fit(points: dict[int, int]) -> tuple[float, float]:
    """(intercept, per poll) through the fewest and most polls measured; checked on the rest."""
    lo, hi = min(points), max(points)
    per = (points[hi] - points[lo]) / (hi - lo)
    base = points[lo] - per * lo
    for p, value in points.items():
        if abs(base + per * p - value) > 1e-9:
            raise RuntimeError(f"polling counts are not linear in polls: {points}")
    return base, per


def _isolate(s: loop.Session) -> list[str]:
    """Let the demo's DeployPipeline (started by its registration) finish, then turn off the
    rules that start one, so that the measured runs are the only work on the local AWS and the
    Lambda runtime's counter sees their invocations alone."""
    from autoloop_cli import executions
    from localaws import clients
    from localaws.awslambda import runtime as lambda_runtime

    sfn, events = clients.client("stepfunctions"), clients.client("events")
    deploy = s.result.outputs["DeployPipelineArn"]
    for execution in executions.executions(sfn, deploy):
        if execution["status"] == "RUNNING":
            executions.follow(sfn, execution["executionArn"], timeout=300)
    disabled = []
    for rule in events.list_rules()["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if any(t["Arn"] == deploy for t in targets) and rule.get("State") == "ENABLED":
            events.disable_rule(Name=rule["Name"])
            disabled.append(rule["Name"])
    lambda_runtime.drain(30)
    return disabled


def run(quick: bool = False) -> list[Row]:
    rows = 1000 if quick else 2000
    hold = 1.0 if quick else 10.0
    s = loop.session(rows, False, reuse_any=True)  # after `loop`, its full-loop stack
    first = s.result.first
    polls = [1, 3, 10] if quick else [1, 10, 60]
    measured = _polling_runs(polls, scale=0.0005)
    t_base, t_per = _fit({p: c[0] for p, c in measured.items()})
    l_base, l_per = _fit({p: c[1] for p, c in measured.items()})
    disabled = _isolate(s)
    if quick:  # one measured run: transitions compared with the demo's run, Lambda not compared
        ours0 = {"transitions": first.transitions, "lambda": None,
                 "train_step_seconds": next(st.seconds for st in first.steps if st.name == "Train")}
    else:
        progress("[transitions] our pipeline as is")
        ours0 = _our_run(s, 0.0)
    progress(f"[transitions] our pipeline, training job held {hold:.0f} s longer")
    ours1 = _our_run(s, hold)
    n_jobs = sum(1 for name in ours1["path"] if name in JOB_STEPS)
    constant_t = ours0["transitions"] == ours1["transitions"]
    constant_l = None if ours0["lambda"] is None else ours0["lambda"] == ours1["lambda"]
    detail = {"ours_as_is": ours0, "ours_train_held": {**ours1, "hold_seconds": hold},
              "rules_disabled": disabled,
              "polling_measured": {str(p): {"transitions": c[0], "lambda": c[1]} for p, c in measured.items()},
              "polling_fragment": {"transitions": [t_base, t_per], "lambda": [l_base, l_per],
                                   "meaning": "per job: base + per_poll * polls (base includes StartJob and Done)"},
              "other_jobs_seconds": OTHER_JOBS_SECONDS}
    out = []
    for label, seconds in LENGTHS.items():
        job_polls = [math.ceil(seconds / POLL_SECONDS)] + [math.ceil(OTHER_JOBS_SECONDS / POLL_SECONDS)] * (n_jobs - 1)
        # ours minus its three job Tasks, plus three polling fragments without their Done state
        poll_t = ours1["transitions"] - n_jobs + sum(t_base - 1 + t_per * p for p in job_polls)
        # ours minus each job's launch task and callback, plus each fragment's start + describes
        poll_l = ours1["lambda"] - 2 * n_jobs + sum(l_base + l_per * p for p in job_polls)
        out.append(Row(f"transitions.{label.replace(' ', '')}", f"state transitions per run, {label} training job",
                       ours1["transitions"], "count", "polling every 60 s", poll_t, ours1["transitions"] / poll_t,
                       "constant as job length grows", constant_t,
                       f"ours measured at +0 s and +{hold:.0f} s: {ours0['transitions']} and {ours1['transitions']}",
                       {**detail, "baseline_unit": "count"} if label == "1 h" else {"baseline_unit": "count"}))
        out.append(Row(f"lambda.{label.replace(' ', '')}", f"Lambda invocations per run, {label} training job",
                       ours1["lambda"], "count", "polling every 60 s", poll_l, ours1["lambda"] / poll_l,
                       "constant as job length grows", constant_l,
                       f"ours measured at +0 s and +{hold:.0f} s: {ours0['lambda']} and {ours1['lambda']}"
                       if ours0["lambda"] is not None else f"quick: ours measured once, at +{hold:.0f} s",
                       {"baseline_unit": "count"}))
    return out
