"""Security checks of the template and the repository: checkov, secrets, and the KMS, VPC and
spot options deployed for real on the local AWS."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest

from autoloop.config import LaunchSettings, load_settings
from localaws.cloudformation import stack as localstack
from tests.infra.template_utils import ROOT, TEMPLATE, resources, template

# checkov pins packaging<24 (pytest needs >=24) and an old networkx, so it lives in its own
# venv; AUTOLOOP_CHECKOV names another checkov executable.
CHECKOV_VENV = ROOT / ".venv" / "checkov" / "bin" / "checkov"


def checkov_executable() -> str:
    for candidate in (os.environ.get("AUTOLOOP_CHECKOV"), str(CHECKOV_VENV),
                      str(Path(sys.executable).parent / "checkov"), shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("checkov is not installed: run `make checkov` (make test does it first)")


def run_checkov(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [checkov_executable(), "-f", str(path), "--framework", "cloudformation", "--quiet", "--compact",
         "--output", "json", "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if "results" not in report:  # no failed or passed checks at all: checkov prints only a summary
        report = {"summary": report, "results": {"failed_checks": [], "skipped_checks": []}}
    return report


def summarize(name: str, report: dict[str, Any]) -> str:
    summary = report["summary"]
    skipped = Counter(
        (c["check_id"], c.get("suppress_comment", "")) for c in report["results"].get("skipped_checks", [])
    )
    lines = [f"checkov on {name}: {summary['passed']} passed, {summary['failed']} failed, "
             f"{summary['skipped']} skipped ({summary['resource_count']} resources)"]
    lines += [f"  skip {check} x{n}: {comment}" for (check, comment), n in sorted(skipped.items())]
    lines += [f"  FAILED {c['check_id']} {c['resource']}: {c['check_name']}"
              for c in report["results"].get("failed_checks", [])]
    return "\n".join(lines)


def assert_clean(name: str, report: dict[str, Any], record_property: Any) -> None:
    text = summarize(name, report)
    record_property("figures", text)  # printed at the end of the run
    assert report["summary"]["failed"] == 0, text
    for check in report["results"].get("skipped_checks", []):
        assert len(check.get("suppress_comment", "").strip()) > 20, f"{check['check_id']} skipped without a reason"


@pytest.mark.slow
def test_checkov_passes_on_the_template(tmp_path: Path, record_property: Any) -> None:
    assert_clean("template.yaml", run_checkov(TEMPLATE), record_property)


@pytest.mark.slow
def test_checkov_passes_on_the_template_sam_generates(tmp_path: Path, record_property: Any) -> None:
    """The generated IAM roles, Lambda functions and state machines are checked too. A resource
    SAM generates from one in template.yaml keeps its logical id, and its inline skips."""
    with moto.mock_aws():
        translated = localstack.translate(TEMPLATE, stack_name="autoloop-checkov")
    for logical, res in template()["Resources"].items():
        skips = res.get("Metadata", {}).get("checkov")
        if skips and logical in translated["Resources"]:
            translated["Resources"][logical].setdefault("Metadata", {})["checkov"] = skips
    path = tmp_path / "translated.json"
    path.write_text(json.dumps(translated))
    assert_clean("the translated template", run_checkov(path), record_property)


# ----------------------------------------------------------------------------- secrets
SECRET_NAME = re.compile(r"SECRET|PASSW|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
NOT_SECRETS = {
    "TASK_TOKEN_TABLE": "the name of the task-token table",
    "KMS_KEY_ARN": "a key's ARN, not key material",
}
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")
SECRET_ASSIGNMENT = re.compile(r"(?i)(secret_access_key|aws_secret|password)\s*[=:]\s*['\"]?([A-Za-z0-9/+=]{20,})")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def environments() -> dict[str, dict[str, Any]]:
    envs = {"Globals": template()["Globals"]["Function"].get("Environment", {}).get("Variables", {})}
    for name, res in resources("AWS::Serverless::Function").items():
        envs[name] = res["Properties"].get("Environment", {}).get("Variables", {})
    return envs


def test_no_secrets_in_environment_variables() -> None:
    for owner, env in environments().items():
        for var, value in env.items():
            assert var in NOT_SECRETS or not SECRET_NAME.search(var), f"{owner}: {var} looks like a secret"
            if isinstance(value, str):  # a literal; intrinsics (Ref, GetAtt, Sub) are resolved at deploy
                assert not AWS_KEY_ID.search(value), f"{owner}: {var} holds an AWS access key id"
                assert len(value) < 20 or entropy(value) < 4.0, f"{owner}: {var}={value!r} looks like a secret"
    for name, spec in template()["Parameters"].items():
        assert not SECRET_NAME.search(name) or spec.get("NoEcho"), f"parameter {name} looks secret but echoes"


def test_no_aws_credentials_in_the_repository() -> None:
    """Tests use moto's fake credentials ("testing", tests/conftest.py), which match nothing here."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    found = []
    for rel in listed:
        path = ROOT / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for pattern in (AWS_KEY_ID, SECRET_ASSIGNMENT, PRIVATE_KEY):
            found += [f"{rel}: {m.group(0)[:12]}..." for m in pattern.finditer(text)
                      if not (pattern is SECRET_ASSIGNMENT and m.group(2).lower() in {"testing", "test"})]
    assert not found, "credentials in the repository:\n" + "\n".join(found)


# ----------------------------------------------------------------------------- options, deployed
OPTIONS = {"SubnetIds": "subnet-0123abcd,subnet-4567ef01", "SecurityGroupIds": "sg-0123abcd",
                  "UseSpotTraining": "true", "SpotMaxWaitSeconds": "7200"}


def role_statements(stack: localstack.Stack, role: str, policy: str) -> list[dict[str, Any]]:
    document = boto3.client("iam").get_role_policy(RoleName=stack.resources[role], PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto may keep a policy CloudFormation made as its Python repr
        document = ast.literal_eval(document)
    return [s for s in document["Statement"] if s]  # and an AWS::NoValue list item as None


@pytest.mark.slow
def test_the_local_aws_boots_with_a_kms_key_a_vpc_and_spot_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        key = boto3.client("kms").create_key(Description="autoloop test key")["KeyMetadata"]["Arn"]
        stack = localstack.deploy(TEMPLATE, stack_name="autoloop-sectest",
                                  parameters={"KmsKeyArn": key, **OPTIONS})
        s3 = boto3.client("s3")
        for bucket in ("DataBucket", "ArtifactsBucket"):
            encryption = s3.get_bucket_encryption(Bucket=stack.resources[bucket])
            [rule] = encryption["ServerSideEncryptionConfiguration"]["Rules"]
            assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
            # (moto drops BucketKeyEnabled from a template's bucket; tests/infra/test_template.py checks it)
        topic = boto3.client("sns").get_topic_attributes(TopicArn=stack.resources["NotificationTopic"])
        assert topic["Attributes"]["KmsMasterKeyId"] == key

        lam = boto3.client("lambda")
        env = lam.get_function_configuration(
            FunctionName=stack.resources["LaunchJobFunction"])["Environment"]["Variables"]
        settings = load_settings(LaunchSettings, env)
        assert settings.security().kms_key_arn == key
        assert settings.security().vpc()["VpcConfig"] == {"SecurityGroupIds": ["sg-0123abcd"],
                                                           "Subnets": ["subnet-0123abcd", "subnet-4567ef01"]}
        assert settings.spot().enabled and settings.spot().stopping_condition(3600)["MaxWaitTimeInSeconds"] == 7200

        sids = {s.get("Sid"): s for s in role_statements(stack, "SageMakerExecutionRole", "jobs")}
        assert sids["UseTheStackKey"]["Resource"] == key and sids["EncryptJobVolumes"]["Resource"] == key
        assert "JobsInTheVpc" in sids


@pytest.mark.slow
def test_without_a_key_the_buckets_use_sse_s3_and_no_key_statement_is_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        stack = localstack.deploy(TEMPLATE, stack_name="autoloop-sectest")
        [rule] = boto3.client("s3").get_bucket_encryption(
            Bucket=stack.resources["DataBucket"])["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        sids = {s.get("Sid") for s in role_statements(stack, "SageMakerExecutionRole", "jobs")}
        assert not {"UseTheStackKey", "EncryptJobVolumes", "JobsInTheVpc"} & sids
