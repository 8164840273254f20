"""The template's side of experiment tracking (autoloop.tracking): off by default, and with a
SageMaker managed MLflow ARN exactly the REST calls the code makes, on that ARN only, for exactly
the functions that log."""

from __future__ import annotations

import boto3
import moto
import pytest

from autoloop import tracking
from localaws.cloudformation import stack as localstack
from tests.infra.template_utils import TEMPLATE, resources, template

#: The functions whose code logs to MLflow: gate, registration, deployment, its rollback (the
#: endpoint callback), monitoring (the drift handler judges a run), the monthly batch.
LOGGING_FUNCTIONS = {"QualityGateFunction", "RegisterModelFunction", "DeployEndpointFunction",
                     "CleanupEndpointFunction", "JobCallbackFunction", "DriftHandlerFunction", "PublishBatchFunction"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/ml-team"
POLICY_REF = {"Fn::If": ["HasMlflowTrackingServer", {"Ref": "MlflowTrackingPolicy"}, {"Ref": "AWS::NoValue"}]}


def test_tracking_is_off_unless_a_parameter_is_set() -> None:
    params = template()["Parameters"]
    assert params["MlflowTrackingServerArn"]["Default"] == "" and params["MlflowTrackingUri"]["Default"] == ""
    env = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MLFLOW_TRACKING_SERVER_ARN"] == {"Ref": "MlflowTrackingServerArn"}
    assert env["MLFLOW_TRACKING_URI"] == {"Ref": "MlflowTrackingUri"}
    assert tracking.Target.from_env({"MLFLOW_TRACKING_SERVER_ARN": "", "MLFLOW_TRACKING_URI": ""}) is None


def test_the_policy_grants_the_calls_the_code_makes_on_the_servers_arn_only() -> None:
    policy = resources("AWS::IAM::ManagedPolicy")["MlflowTrackingPolicy"]
    assert policy["Condition"] == "HasMlflowTrackingServer"
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == set(tracking.ACTIONS.values())
    assert statement["Resource"] == {"Ref": "MlflowTrackingServerArn"}


def test_exactly_the_functions_that_log_hold_the_policy() -> None:
    holders = {name for name, res in resources("AWS::Serverless::Function").items()
               if POLICY_REF in res["Properties"].get("Policies", [])}
    assert holders == LOGGING_FUNCTIONS


@pytest.mark.slow
def test_a_stack_with_an_arn_attaches_the_policy_and_one_without_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        tracked = localstack.deploy(TEMPLATE, stack_name="autoloop-mlflow", parameters={"MlflowTrackingServerArn": ARN})
        iam, lam = boto3.client("iam"), boto3.client("lambda")
        policy_arn = tracked.resources["MlflowTrackingPolicy"]
        version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
        [statement] = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"][
            "Statement"]
        assert statement["Resource"] == ARN
        for function in LOGGING_FUNCTIONS:
            config = lam.get_function_configuration(FunctionName=tracked.resources[function])
            assert config["Environment"]["Variables"]["MLFLOW_TRACKING_SERVER_ARN"] == ARN
            role = config["Role"].rsplit("/", 1)[-1]
            attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
            assert policy_arn in attached, function
        plain = localstack.deploy(TEMPLATE, stack_name="autoloop-nomlflow")
        assert "MlflowTrackingPolicy" not in plain.resources
