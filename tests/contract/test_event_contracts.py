"""Every sample event in events/ is consumed by the rule and the handler meant for it.

The rule patterns are read from template.yaml (with the data bucket's name filled in), and
matched with moto's EventBridge pattern engine. The payload is parsed by the same code the
handler uses. A sample that stops matching its rule, or a rule that stops matching the
real event shape, fails here.
"""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from autoloop.events import parse_job_state_change, parse_s3_object_created
from autoloop.state import PipelineState, parse
from tests.conftest import EVENTS, load_event
from tests.infra.template_utils import resources

BUCKET = "autoloop-dev-databucket-1a2b3c4d5e6f"  # the bucket named in the samples


def rule_patterns(function: str) -> list[dict]:
    events = resources("AWS::Serverless::Function")[function]["Properties"]["Events"]
    patterns = []
    for event in events.values():
        assert event["Type"] == "EventBridgeRule"
        text = json.dumps(event["Properties"]["Pattern"]).replace('{"Ref": "DataBucket"}', json.dumps(BUCKET))
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
}
# samples that the rules must NOT deliver
FILTERED = {
    "s3_object_created_outside_incoming": "StartPipelineFunction",
    "sagemaker_training_job_in_progress": "JobCallbackFunction",
}


def test_every_sample_is_classified():
    assert {p.stem for p in EVENTS.glob("*.json")} == set(CONSUMED) | set(FILTERED) | {"pipeline_input"}


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


def test_pipeline_input_sample_is_a_valid_execution_input():
    state = parse(PipelineState, load_event("pipeline_input"), "pipeline input")
    assert state.run_id.startswith(state.model)
    assert state.source.key.startswith(f"incoming/{state.model}/")
