"""Every sample event in events/ is consumed by the rule and the handler meant for it.

The rule patterns are read from template.yaml (with the data bucket's name filled in), and
matched with moto's EventBridge pattern engine. The payload is parsed by the same code the
handler uses. A sample that stops matching its rule, or a rule that stops matching the
real event shape, fails here.
"""

from __future__ import annotations

import json
import re

import pytest
from moto.events.models import EventPattern

from autoloop.deploy import parse_package_event
from autoloop.drift import parse_alarm_event, parse_monitoring_job_event
from autoloop.events import parse_job_state_change, parse_s3_object_created
from autoloop.state import PipelineState, parse
from tests.conftest import EVENTS, load_event
from tests.infra.template_utils import resources

BUCKET = "autoloop-dev-databucket-1a2b3c4d5e6f"  # the bucket named in the samples
STACK = "autoloop-dev"  # the stack the samples' names belong to


def _targets(rule: dict) -> set[str]:
    return {t["Arn"]["Fn::GetAtt"][0] for t in rule["Properties"]["Targets"]
            if isinstance(t["Arn"], dict) and "Fn::GetAtt" in t["Arn"]}


def raw_patterns(target: str) -> list[dict]:
    """The patterns of the SAM EventBridgeRule events of a function or state machine, and of the
    plain ``AWS::Events::Rule`` resources (conditional ones: Model Monitor's) that target it."""
    events = resources()[target]["Properties"].get("Events", {}).values()
    patterns = [e["Properties"]["Pattern"] for e in events if e["Type"] == "EventBridgeRule"]
    return patterns + [r["Properties"]["EventPattern"] for r in resources("AWS::Events::Rule").values()
                       if target in _targets(r)]


def rule_targets() -> set[str]:
    sam = {name for name, res in resources().items()
           for event in res.get("Properties", {}).get("Events", {}).values() if event["Type"] == "EventBridgeRule"}
    return sam | {t for rule in resources("AWS::Events::Rule").values() for t in _targets(rule)}


def rule_patterns(target: str) -> list[dict]:
    """The EventBridge patterns of a function's or a state machine's rules."""
    patterns = []
    for pattern in raw_patterns(target):
        text = json.dumps(pattern).replace('{"Ref": "DataBucket"}', json.dumps(BUCKET))
        text = re.sub(r'\{"Fn::Sub": "([^"]*)"\}', lambda m: json.dumps(m.group(1).replace("${AWS::StackName}", STACK)),
                      text)
        patterns.append(json.loads(text))
    return patterns


def matches(function: str, event: dict) -> bool:
    return any(EventPattern.load(json.dumps(p)).matches_event(event) for p in rule_patterns(function))


# sample -> (function whose rule must match it, parser)
CONSUMED = {
    "s3_object_created": ("StartPipelineFunction", parse_s3_object_created),
    "sagemaker_training_job_completed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_training_job_failed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_processing_job_completed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_processing_job_failed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_endpoint_in_service": ("JobCallbackFunction", lambda e: e["detail"]["EndpointName"]),
    "sagemaker_model_package_approved": ("StartDeploymentFunction", lambda e: parse_package_event(e, STACK)),
    "sagemaker_model_package_rejected": ("StartDeploymentFunction", lambda e: parse_package_event(e, STACK)),
    "sagemaker_monitoring_job_completed": ("DriftHandlerFunction", parse_monitoring_job_event),
    "cloudwatch_alarm_drift": ("DriftHandlerFunction", parse_alarm_event),
    "sagemaker_transform_job_completed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_transform_job_failed": ("JobCallbackFunction", parse_job_state_change),
    "sagemaker_batch_monitoring_job_completed": ("DriftHandlerFunction", parse_monitoring_job_event),
}
# samples that the rules must NOT deliver
FILTERED = {
    "s3_object_created_outside_incoming": "StartPipelineFunction",
    "sagemaker_training_job_in_progress": "JobCallbackFunction",
    "sagemaker_endpoint_updating": "JobCallbackFunction",
    "sagemaker_model_package_other_group": "StartDeploymentFunction",
    "sagemaker_model_package_pending": "StartDeploymentFunction",
    "sagemaker_transform_job_in_progress": "JobCallbackFunction",
}
NOT_EVENTS = {"pipeline_input", "constraint_violations_sample", "batch_transform_manual", "batch_transform_scheduled"}


def test_every_sample_is_classified():
    assert {p.stem for p in EVENTS.glob("*.json")} == set(CONSUMED) | set(FILTERED) | NOT_EVENTS


@pytest.mark.parametrize("name", sorted(CONSUMED))
def test_sample_matches_its_rule_and_parses(name):
    function, parser = CONSUMED[name]
    event = load_event(name)
    assert matches(function, event), f"{name} would not reach {function}"
    parser(event)


@pytest.mark.parametrize("name", sorted(FILTERED))
def test_rules_filter_out_what_the_handler_need_not_see(name):
    assert not matches(FILTERED[name], load_event(name))


def test_rules_do_not_cross_deliver():
    assert not matches("StartPipelineFunction", load_event("sagemaker_training_job_completed"))
    assert not matches("JobCallbackFunction", load_event("s3_object_created"))
    assert not matches("DriftHandlerFunction", load_event("sagemaker_training_job_completed"))


# ----------------------------------------------------------------------------- what AWS always sends
# The detail fields a rule may match on. SageMaker's event detail mirrors the resource's Describe
# response, so what it always carries is that response's required members (botocore's model);
# the rest may be left out of an event (AWS's Processing Job sample has no Environment, say).
DESCRIBED = {
    "SageMaker Training Job State Change": "DescribeTrainingJob",
    "SageMaker Processing Job State Change": "DescribeProcessingJob",
    "SageMaker Transform Job State Change": "DescribeTransformJob",
    "SageMaker Endpoint State Change": "DescribeEndpoint",
    "SageMaker Model Package State Change": "DescribeModelPackage",
}
# Not required by DescribeModelPackage (an unversioned package has neither), but set on every
# versioned package, which is all this stack registers: the approval is what the event is for.
ALWAYS_FOR_VERSIONED_PACKAGES = ("ModelPackageGroupName", "ModelApprovalStatus", "ModelPackageVersion")
# S3's and CloudWatch's pages list these fields for every event of the type.
ALWAYS = {
    "Object Created": {"version": None, "bucket": ("name",), "object": ("key", "size", "etag"),
                       "request-id": None, "requester": None, "reason": None},
    "CloudWatch Alarm State Change": {"alarmName": None, "configuration": None, "state": None, "previousState": None},
}
ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources")


def required_detail(detail_type: str) -> dict[str, tuple[str, ...] | None]:
    if detail_type in ALWAYS:
        return ALWAYS[detail_type]
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    required = list(model.operation_model(DESCRIBED[detail_type]).output_shape.required_members)
    if detail_type == "SageMaker Model Package State Change":
        required += ALWAYS_FOR_VERSIONED_PACKAGES
    return dict.fromkeys(required)


def minimal(event: dict) -> dict:
    """The event with only what AWS always sends."""
    detail = {}
    for key, inner in required_detail(event["detail-type"]).items():
        if key in event["detail"]:
            value = event["detail"][key]
            detail[key] = {k: value[k] for k in inner if k in value} if inner else value
    return {**{k: event[k] for k in ENVELOPE}, "detail": detail}


def test_the_minimal_variant_drops_optional_fields():
    """The check can fail: a rule on Environment (the drift rule before) misses the minimal event."""
    event = load_event("sagemaker_monitoring_job_completed")
    assert "Environment" not in minimal(event)["detail"] and minimal(event)["detail"]["ProcessingJobStatus"]
    old_rule = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {"ProcessingJobStatus": ["Completed"],
                           "Environment": {"sagemaker_endpoint_name": [{"prefix": f"{STACK}-"}]}}}
    assert EventPattern.load(json.dumps(old_rule)).matches_event(event)
    assert not EventPattern.load(json.dumps(old_rule)).matches_event(minimal(event))


@pytest.mark.parametrize("name", sorted(CONSUMED))
def test_rules_match_what_aws_always_sends(name):
    function, _ = CONSUMED[name]
    assert matches(function, minimal(load_event(name))), f"{function}'s rule depends on an optional field of {name}"


def test_every_rule_is_tested_against_a_sample():
    """Each EventBridge rule in the template has a sample above that it must deliver."""
    targets = rule_targets()
    untested = {(target, json.dumps(pattern)) for target in targets for pattern in rule_patterns(target)
                if not any(EventPattern.load(json.dumps(pattern)).matches_event(load_event(name))
                           for name, (function, _) in CONSUMED.items() if function == target)}
    assert not untested, f"rules with no sample that reaches them: {untested}"


def test_every_sample_names_its_source():
    sources = (EVENTS / "SOURCES.md").read_text()
    rows = {line.split("|")[1].strip() for line in sources.splitlines() if line.startswith("| ") and ".json" in line}
    assert rows == {p.name for p in EVENTS.glob("*.json")}


def test_pipeline_input_sample_is_a_valid_execution_input():
    state = parse(PipelineState, load_event("pipeline_input"), "pipeline input")
    assert state.run_id.startswith(state.model)
    assert state.source.key.startswith(f"incoming/{state.model}/")


# ----------------------------------------------------------------------------- batch transform
def test_transform_job_events_name_the_job_for_the_callback():
    change = parse_job_state_change(load_event("sagemaker_transform_job_completed"))
    assert change.kind == "transform" and change.status == "Completed"
    assert change.job_name.endswith("-transform")
    assert parse_job_state_change(load_event("sagemaker_transform_job_failed")).failure_reason


def test_a_batch_data_quality_job_reaches_the_callback_and_the_drift_handler():
    """It completes its BatchTransform step, and its violations raise the endpoint's drift alert."""
    event = load_event("sagemaker_batch_monitoring_job_completed")
    assert matches("JobCallbackFunction", event) and matches("DriftHandlerFunction", event)
    run = parse_monitoring_job_event(event)
    assert run.endpoint == f"{STACK}-churn" and run.schedule is None
    assert run.report_uri.endswith("/monitor/constraint_violations.json")
    assert parse_job_state_change(event).job_name.endswith("-monitor")


@pytest.mark.parametrize("name", ["batch_transform_manual", "batch_transform_scheduled"])
def test_batch_transform_samples_are_valid_execution_inputs(name):
    from datetime import UTC, datetime

    from autoloop.batch import BatchRequest, resolve_month

    request = parse(BatchRequest, load_event(name), "batch transform input")
    assert resolve_month(request, datetime(2026, 11, 25, tzinfo=UTC)) == "2026-10"


def test_the_schedule_sends_a_valid_batch_transform_input():
    from datetime import UTC, datetime

    from autoloop.batch import BatchRequest, resolve_month
    from localaws.scheduler.schedules import render

    machine = resources()["BatchTransform"]["Properties"]
    schedules = [e["Properties"] for e in machine["Events"].values() if e["Type"] == "ScheduleV2"]
    assert schedules
    for schedule in schedules:
        text = render(schedule["Input"], {"schedule-arn": "arn:aws:scheduler:us-east-1:1:schedule/default/s",
                                          "scheduled-time": "2026-11-01T03:00:00Z", "execution-id": "x",
                                          "attempt-number": "1"})
        request = parse(BatchRequest, json.loads(text), "schedule input")
        assert request.trigger.type == "schedule"
        assert resolve_month(request, datetime(2026, 11, 1, 3, 0, 5, tzinfo=UTC)) == "2026-10"
