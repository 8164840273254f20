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


def rule_patterns(target: str) -> list[dict]:
    """The EventBridge patterns of a function's or a state machine's rules."""
    events = resources()[target]["Properties"]["Events"]
    patterns = []
    for event in events.values():
        assert event["Type"] == "EventBridgeRule"
        text = json.dumps(event["Properties"]["Pattern"]).replace('{"Ref": "DataBucket"}', json.dumps(BUCKET))
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
    "sagemaker_model_package_approved": ("DeployPipeline", lambda e: parse_package_event(e, STACK)),
    "sagemaker_model_package_rejected": ("DeployPipeline", lambda e: parse_package_event(e, STACK)),
    "sagemaker_monitoring_job_completed": ("DriftHandlerFunction", parse_monitoring_job_event),
    "cloudwatch_alarm_drift": ("DriftHandlerFunction", parse_alarm_event),
}
# samples that the rules must NOT deliver
FILTERED = {
    "s3_object_created_outside_incoming": "StartPipelineFunction",
    "sagemaker_training_job_in_progress": "JobCallbackFunction",
    "sagemaker_endpoint_updating": "JobCallbackFunction",
    "sagemaker_model_package_other_group": "DeployPipeline",
    "sagemaker_model_package_pending": "DeployPipeline",
}
NOT_EVENTS = {"pipeline_input", "constraint_violations_sample"}


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
    # A monitoring execution's job goes to the drift handler only; pipeline jobs never do.
    assert not matches("JobCallbackFunction", load_event("sagemaker_monitoring_job_completed"))
    assert not matches("DriftHandlerFunction", load_event("sagemaker_processing_job_completed"))


def test_pipeline_input_sample_is_a_valid_execution_input():
    state = parse(PipelineState, load_event("pipeline_input"), "pipeline input")
    assert state.run_id.startswith(state.model)
    assert state.source.key.startswith(f"incoming/{state.model}/")
