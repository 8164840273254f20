"""`autoloop smoke` (the CI/CD workflow's check of the dev stack) against the local AWS.

The command runs as on AWS: boto3 only, the stack found by name through CloudFormation,
the sample uploaded to the data bucket so that the template's S3 rule starts the run. The
stack is this module's ``local`` (tests/e2e/conftest.py: deployment rule disabled, so a
registration starts no endpoint).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from autoloop_cli import cli, publish
from tests.infra import pipeline

pytestmark = pytest.mark.e2e


def smoke(stack: str, *args: str) -> list[str]:
    return ["smoke", "--stack-name", stack, "--poll", "0.2", "--timeout", "240", *args]


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS request the command's boto3 sessions make: (IAM action, resource ARN, params)."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    real = boto3.Session

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(iam_call(model.service_model.signing_name, model.name, params))

    def session(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        made.events.register("before-parameter-build.*.*", record)
        return made

    monkeypatch.setattr(boto3, "Session", session)
    return calls


def iam_call(service: str, operation: str, params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The IAM action and resource of a request (only those the smoke check makes)."""
    account = "arn:aws:{}:us-east-1:123456789012"
    if (service, operation) == ("cloudformation", "DescribeStacks"):
        return "cloudformation:DescribeStacks", f"{account.format(service)}:stack/{params['StackName']}/id", params
    if (service, operation) == ("s3", "ListObjectsV2"):
        return "s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", params
    if (service, operation) == ("s3", "PutObject"):
        return "s3:PutObject", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", params
    if service == "states" and operation in ("DescribeExecution", "GetExecutionHistory"):
        return f"states:{operation}", params["executionArn"], params
    raise AssertionError(f"autoloop smoke calls {service} {operation}: add it to the deploy role "
                         "(pipeline/bootstrap.yaml) and here")


def test_smoke_passes_on_a_registration_then_on_the_champion_kept(local, capsys, aws_calls):
    assert cli.main(smoke(local.stack.name, "--model", "churn")) == 0
    out = capsys.readouterr().out.splitlines()
    bucket = local.outputs["DataBucketName"]
    assert out[0].startswith(f"uploaded s3://{bucket}/incoming/churn/smoke-") and "-sample.csv (version " in out[0]
    assert out[1].startswith("run churn-")
    assert ["  ValidateInput", "  Train", "  QualityGate", "  RegisterModel", "  Succeeded"] == [
        line for line in out if line in {"  ValidateInput", "  Train", "  QualityGate", "  RegisterModel",
                                         "  Succeeded"}]
    assert out[-1].startswith("smoke passed: registered arn:aws:sagemaker:") and "(auc 0." in out[-1]
    package = out[-1].split("registered ", 1)[1].split(" ", 1)[0]
    described = local.client("sagemaker").describe_model_package(ModelPackageName=package)
    assert described["ModelPackageGroupName"] == f"{local.stack.name}-churn"
    # The same sample again: the challenger ties the champion trained on it, and ties do not promote.
    assert cli.main(smoke(local.stack.name, "--model", "churn")) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  RegisterModel" not in out
    assert out[-1].startswith("smoke passed: the gate kept the champion (expected for a sample it has seen): "
                              "BelowChampion: ")
    # The deploy role of pipeline/bootstrap.yaml allows every call, on these resources.
    names = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
             "StackName": local.stack.name}
    actions = {action for action, _, _ in aws_calls}
    assert actions == {"cloudformation:DescribeStacks", "s3:ListBucket", "s3:PutObject", "states:DescribeExecution",
                       "states:GetExecutionHistory"}
    for action, resource, params in aws_calls:
        assert pipeline.allows("DeployRole", action, resource, names), (action, resource)
        if action == "s3:ListBucket":
            assert params["Prefix"].startswith("config/models/")


def test_smoke_fails_with_the_runs_reason(local, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"churned,whatever\n1,2\n")
    assert cli.main(smoke(local.stack.name, "--model", "churn", "--data", str(bad))) == 1
    out = capsys.readouterr().out.splitlines()
    assert "  ValidateInput" in out and "  RunFailed" in out
    assert out[-1].startswith("smoke FAILED: run failed: ValidateInputFailed: SchemaMismatch")


def test_smoke_refuses_before_uploading(local, tmp_path, capsys):
    s3 = local.client("s3")
    bucket = local.outputs["DataBucketName"]
    before = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    assert cli.main(smoke(local.stack.name, "--model", "spam")) == 2
    assert (f"error: --data: {publish.MODELS_DIR / 'spam' / 'sample.csv'} is not a file; pass --data with a CSV"
            in capsys.readouterr().err)
    assert cli.main(smoke(local.stack.name, "--model", "spam", "--data", str(publish.MODELS_DIR / "churn" /
                                                                             "sample.csv"))) == 2
    assert (f"error: --model spam: not published to {local.stack.name} (published: churn, fraud, price); "
            f"run autoloop publish --stack-name {local.stack.name} first") in capsys.readouterr().err
    assert cli.main(smoke("autoloop-nope", "--model", "churn")) == 2
    assert "autoloop smoke: AWS refused DescribeStacks: ValidationError: " in capsys.readouterr().err
    assert cli.main(smoke(local.stack.name, "--model", "churn", "--data", str(tmp_path / "none.csv"))) == 2
    assert f"error: --data: {tmp_path / 'none.csv'} is not a file; check the path" in capsys.readouterr().err
    assert s3.list_object_versions(Bucket=bucket).get("Versions", []) == before
