"""The CI/CD pipeline, offline: actionlint on every workflow, the workflows' commands against
the README's, and the bootstrap template (cfn-lint, checkov, its trust and least privilege).
What only GitHub and AWS can show (a workflow run, a deployment) is listed in the README."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import pipeline
from tests.infra.pipeline import BOOTSTRAP, README, workflow_files
from tests.infra.test_security import assert_clean, run_checkov
from tests.support import tool

NAMES = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
         "StackName": "autoloop-dev"}


# ----------------------------------------------------------------------------- actionlint
def actionlint() -> str:
    """actionlint from the dev extra (pyproject.toml), or $AUTOLOOP_ACTIONLINT."""
    for candidate in (os.environ.get("AUTOLOOP_ACTIONLINT"), str(Path(sys.executable).parent / "actionlint"),
                      shutil.which("actionlint")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("actionlint is not installed: run `make setup` (it is in the dev extra of pyproject.toml)")


def run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes integrations off: they would make the result depend on what else
    # the machine has installed
    return subprocess.run([actionlint(), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=pipeline.ROOT)


def test_there_are_the_three_workflows():
    assert [p.name for p in workflow_files()] == ["ci.yml", "deploy.yml", "main.yml"]


@pytest.mark.parametrize("workflow", workflow_files(), ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow: Path):
    result = run_actionlint(workflow)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_actionlint_does_find_a_broken_workflow(tmp_path: Path):
    """The check above can fail: a misspelled permission and an unknown job output are found."""
    text = (pipeline.WORKFLOWS / "deploy.yml").read_text()
    doctored = tmp_path / ".github" / "workflows" / "deploy.yml"
    doctored.parent.mkdir(parents=True)
    doctored.write_text(text.replace("id-token: write", "id-tokens: write", 1)
                        .replace("needs.deploy.outputs.models)", "needs.deploy.outputs.model)", 1))
    result = run_actionlint(doctored)
    assert result.returncode != 0
    assert "id-tokens" in result.stdout and "model" in result.stdout, result.stdout


# ----------------------------------------------------------------------------- README drift
def workflow_texts() -> list[str]:
    return [p.read_text() for p in workflow_files()]


def test_every_workflow_command_is_in_the_readme():
    commands = [c for text in workflow_texts() for c in pipeline.run_commands(text)]
    assert {"make test", "make build"} <= set(commands)
    assert any(c.startswith(".venv/bin/sam deploy ") for c in commands)
    assert any(c.startswith(".venv/bin/autoloop publish ") for c in commands)
    assert any(c.startswith(".venv/bin/autoloop smoke ") for c in commands)
    assert pipeline.undocumented(workflow_texts(), README.read_text()) == []


def test_the_readme_check_finds_a_doctored_workflow_and_a_doctored_readme():
    readme = README.read_text()
    deploy = (pipeline.WORKFLOWS / "deploy.yml").read_text()
    changed = deploy.replace("--no-fail-on-empty-changeset", "--fail-on-empty-changeset", 1)
    added = deploy.replace("        run: .venv/bin/autoloop publish --stack-name \"$STACK_NAME\"\n",
                           "        run: .venv/bin/autoloop publish --stack-name \"$STACK_NAME\" --check\n", 1)
    assert deploy not in (changed, added)
    [missing] = pipeline.undocumented([changed], readme)
    assert missing.startswith(".venv/bin/sam deploy ") and "--fail-on-empty-changeset" in missing
    assert pipeline.undocumented([added], readme) == ['.venv/bin/autoloop publish --stack-name "$STACK_NAME" --check']
    # ${{ }} expressions are compared as <placeholders>
    expression = deploy.replace('--model "$MODEL"', "--model ${{ matrix.model }}", 1)
    [missing] = pipeline.undocumented([expression], readme)
    assert "--model <model>" in missing
    assert pipeline.undocumented([expression], readme + "\n```\n" + missing + "\n```\n") == []
    # and a README that lost a command
    assert pipeline.undocumented([deploy], readme.replace("make setup", "make install")) == ["make setup"] * 2


def test_the_workflows_keep_their_guarantees():
    """Least permissions, pinned actions, one deployment per environment at a time, OIDC."""
    workflows = {p.name: yaml.safe_load(p.read_text()) for p in workflow_files()}
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name} {job_id}: every job states its permissions"
            granted = {k for k, v in job["permissions"].items() if v == "write"}
            assert granted <= {"id-token"}, f"{name} {job_id}: {granted}"
            for step in job.get("steps", []):
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]
    main = workflows["main.yml"]["jobs"]
    assert main["dev"]["concurrency"] == {"group": "deploy-dev", "cancel-in-progress": False}
    assert main["prod"]["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}
    assert main["prod"]["needs"] == "dev" and main["dev"]["with"]["smoke"] is True
    assert main["prod"]["with"]["smoke"] is False
    deploy = workflows["deploy.yml"]["jobs"]
    for job in deploy.values():
        assert job["environment"] == "${{ inputs.environment }}"
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        [creds] = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert creds["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert not any(k.startswith("aws-access-key") or k.startswith("aws-secret") for k in creds["with"])
    assert "secrets." not in "".join(workflow_texts())


# ----------------------------------------------------------------------------- bootstrap
def test_cfn_lint_is_clean_on_the_bootstrap():
    result = subprocess.run([tool("cfn-lint"), str(BOOTSTRAP)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_checkov_passes_on_the_bootstrap(record_property: Any) -> None:
    assert_clean("pipeline/bootstrap.yaml", run_checkov(BOOTSTRAP), record_property)


def test_only_this_repository_and_environment_can_assume_the_deploy_role():
    role = pipeline.bootstrap()["Resources"]["DeployRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": {
            "Fn::Sub": "repo:${GitHubRepository}:environment:${GitHubEnvironment}"},
    }}
    provider = pipeline.bootstrap()["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    [exec_trust] = pipeline.bootstrap()["Resources"]["CloudFormationExecutionRole"]["Properties"][
        "AssumeRolePolicyDocument"]["Statement"]
    assert exec_trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}


def test_the_deploy_role_holds_no_resource_permissions_of_the_stack():
    """The SAM pattern: GitHub's role may run change sets on its stack and pass the execution
    role to CloudFormation; the stack's resources are created by CloudFormation as that role."""
    names = NAMES
    for statement in pipeline.statements("DeployRole"):
        assert statement["Effect"] == "Allow"
        for resource in pipeline.as_list(statement["Resource"]):
            assert "*" != pipeline.resolve(resource, names), statement["Sid"]
        for action in pipeline.as_list(statement["Action"]):
            assert action.split(":")[0] in {"cloudformation", "iam", "s3", "states", "kms"}, action
            assert "*" not in action, action
            if action.startswith("iam:"):
                assert action == "iam:PassRole"
                assert statement["Resource"] == {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}
                assert statement["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/autoloop-dev/0f1e"
    assert pipeline.allows("DeployRole", "cloudformation:ExecuteChangeSet", stack, names)
    assert not pipeline.allows("DeployRole", "cloudformation:ExecuteChangeSet", stack.replace("-dev", "-prod"), names)
    data = "arn:aws:s3:::autoloop-dev-databucket-1x2y3z/"
    assert pipeline.allows("DeployRole", "s3:PutObject", data + "incoming/churn/smoke.csv", names)
    assert not pipeline.allows("DeployRole", "s3:PutObject", data + "retrain/churn/r.csv", names)
    assert not pipeline.allows("DeployRole", "s3:PutObject", data.replace("-dev", "-prod") + "incoming/c/s.csv", names)
    assert not pipeline.allows("DeployRole", "lambda:UpdateFunctionCode",
                               "arn:aws:lambda:us-east-1:123456789012:function:autoloop-dev-x", names)


def test_the_execution_role_is_scoped_to_the_stack():
    star = [s["Sid"] for s in pipeline.statements("CloudFormationExecutionRole") if s["Resource"] == "*"]
    assert star == ["LogDelivery"]
    for statement in pipeline.statements("CloudFormationExecutionRole"):
        if statement["Resource"] == "*":
            assert all(a.startswith("logs:") for a in statement["Action"])
            continue
        for resource in pipeline.as_list(statement["Resource"]):
            pattern = pipeline.resolve(resource, NAMES)
            assert "autoloop-dev" in pattern or "DomainLayer" in pattern or pattern.startswith("<"), (
                statement["Sid"], pattern)
    passrole = [s for s in pipeline.statements("CloudFormationExecutionRole") if s["Action"] == "iam:PassRole"]
    assert [s["Condition"]["StringEquals"]["iam:PassedToService"] for s in passrole] == [
        ["lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"]]


def test_the_artifact_bucket_is_private_encrypted_and_tls_only():
    resources = pipeline.bootstrap()["Resources"]
    bucket = resources["ArtifactBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    [deny] = resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
