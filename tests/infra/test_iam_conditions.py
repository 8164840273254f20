"""IAM conditions that must be satisfiable by the requests they guard, and the dead-letter alarm.

A condition on a key that a request never carries denies silently, and a namespace condition
that does not match what the publisher uses drops metrics silently: neither shows up until
the day it matters, so both are checked against the documented keys and the code's names.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from tests.infra.template_utils import resources

#: kms:GrantIsForAWSResource exists on these requests only (KMS developer guide, "Controlling
#: access to grants"); on any other action it is absent and a Bool "true" condition never holds.
GRANT_ACTIONS = {"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement in the template, inside Fn::If branches too."""
    if isinstance(node, dict):
        if "Effect" in node and "Action" in node:
            yield node
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_grant_conditions_guard_grant_actions_only():
    checked = 0
    for statement in statements(resources()):
        bools = (statement.get("Condition") or {}).get("Bool") or {}
        if "kms:GrantIsForAWSResource" in bools:
            checked += 1
            other = actions(statement) - GRANT_ACTIONS
            assert not other, f"{sorted(other)} never carry kms:GrantIsForAWSResource, so this grants nothing"
    assert checked >= 2  # the SageMaker role's and the endpoint deployer's CreateGrant


def test_the_endpoint_deployer_may_describe_the_key_through_sagemaker():
    policies = resources()["DeployEndpointFunction"]["Properties"]["Policies"]
    [describe] = [s for s in statements(policies) if "kms:DescribeKey" in actions(s)]
    assert describe["Condition"] == {"StringEquals": {"kms:ViaService": {
        "Fn::Sub": "sagemaker.${AWS::Region}.amazonaws.com"}}}


def test_the_execution_role_may_publish_the_namespaces_the_monitor_uses():
    """The analyzer publishes per-feature metrics to the namespaces the local analyzer, the
    lifecycle report and the drift alarms name; the role's condition must admit each."""
    from autoloop_cli.report.collect import DRIFT_NAMESPACE
    from localaws.sagemaker.monitor.models import BATCH_NAMESPACE, ENDPOINT_NAMESPACE

    role = resources()["SageMakerExecutionRole"]["Properties"]["Policies"]
    [put] = [s for s in statements(role) if "cloudwatch:PutMetricData" in actions(s)]
    condition = put["Condition"]
    (operator, keys), = condition.items()
    allowed = keys["cloudwatch:namespace"]
    allowed = [allowed] if isinstance(allowed, str) else allowed

    def admits(namespace: str) -> bool:
        if operator == "StringEquals":
            return namespace in allowed
        assert operator == "StringLike", operator
        return any(fnmatchcase(namespace, pattern) for pattern in allowed)

    for namespace in {ENDPOINT_NAMESPACE, BATCH_NAMESPACE, DRIFT_NAMESPACE}:
        assert admits(namespace), f"PutMetricData to {namespace!r} is denied by {condition}"
    assert not admits("Autoloop") and not admits("AWS/SageMaker"), "the condition must stay narrow"


def test_a_message_in_the_dead_letter_queue_raises_an_alarm_that_notifies():
    res = resources()
    alarms = [a["Properties"] for a in res.values() if a["Type"] == "AWS::CloudWatch::Alarm"
              and a["Properties"].get("Namespace") == "AWS/SQS"]
    [alarm] = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailedInvocationsQueue",
                                                                                  "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"
    [action] = alarm["AlarmActions"]
    topic = res[action["Ref"]]
    assert topic["Type"] == "AWS::SNS::Topic"
    # CloudWatch publishes as a service principal: the AWS managed alias/aws/sns cannot let it.
    assert topic["Properties"].get("KmsMasterKeyId") != "alias/aws/sns"
    assert "alias/aws/sns" not in str(topic["Properties"].get("KmsMasterKeyId"))
