"""server: moto's server (and the in-process variant) configured for local mode."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import boto3
import pytest

from localaws import server
from localaws.awslambda import runtime as lambda_runtime
from localaws.clients import client
from localaws.events import delivery as eventbridge
from localaws.stepfunctions import clock as sfn_time

PASS_MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ran": True}, "End": True}}}


def run_pass_machine(state_machine, run_execution) -> dict:
    described = run_execution(state_machine(PASS_MACHINE))
    return described


def test_start_sets_up_the_environment_and_stop_restores_it(monkeypatch, state_machine, run_execution):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://previous.invalid:1")
    monkeypatch.delenv("MOTO_PORT", raising=False)

    aws = server.start()
    try:
        assert aws.endpoint_url == f"http://127.0.0.1:{aws.port}"
        assert aws.port > 0
        assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint_url
        assert os.environ["MOTO_PORT"] == str(aws.port)
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        assert os.environ["AWS_REGION"] == "us-east-1"
        # a plain boto3 client, configured only by the environment, reaches the server
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="server-env-bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["server-env-bucket"]
        # Step Functions really executes
        described = run_pass_machine(state_machine, run_execution)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"ran": True}
        assert lambda_runtime.installed() and eventbridge.installed() and sfn_time.installed()
    finally:
        aws.stop()
        aws.stop()  # idempotent

    assert os.environ["AWS_ENDPOINT_URL"] == "http://previous.invalid:1"
    assert "MOTO_PORT" not in os.environ
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(aws.endpoint_url + "/moto-api/", timeout=2)


def test_context_manager_and_fresh_state():
    with server.start() as aws:
        client("s3").create_bucket(Bucket="first-run-bucket")
        port = aws.port
    with server.start() as aws:
        assert client("s3").list_buckets()["Buckets"] == []  # reset on start
        assert aws.port != port or aws.port > 0


def test_moto_config_is_applied_and_restored():
    from moto.core.config import default_user_config

    before = json.dumps(default_user_config, sort_keys=True)
    with server.start():
        assert default_user_config["stepfunctions"]["execute_state_machine"] is True
        assert default_user_config["lambda"]["use_docker"] is True
    assert json.dumps(default_user_config, sort_keys=True) == before


def test_every_extension_is_installed():
    from localaws import unsupported
    from localaws.awslambda import runtime as lambda_runtime
    from localaws.events import delivery as eventbridge
    from localaws.logs import shipping
    from localaws.sagemaker.jobs import runner as sagemaker_jobs
    from localaws.stepfunctions import mock as sfn_mock

    names = server.install_extensions()
    assert names == ["unsupported_api", "lambda_runtime", "eventbridge", "sfn_time", "sfn_callbacks", "sfn_mock",
                     "cloudwatch_logs", "s3_policy", "iam_simulator", "cfn_types", "cfn_template_cache",
                     "sagemaker_models", "sagemaker_search", "sagemaker_jobs", "sagemaker_registry",
                     "sagemaker_endpoints", "model_monitor"]
    assert lambda_runtime.installed() and eventbridge.installed()
    assert sagemaker_jobs.installed() and sfn_mock.installed()
    assert unsupported.installed() and shipping.installed()


def test_in_process_variant(mocked_aws, state_machine, run_execution):
    assert "AWS_ENDPOINT_URL" not in os.environ
    described = run_pass_machine(state_machine, run_execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"ran": True}
    assert lambda_runtime.installed() and eventbridge.installed() and sfn_time.installed()


def test_in_process_restores_an_endpoint_it_removed(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://previous.invalid:1")
    with server.in_process():
        assert "AWS_ENDPOINT_URL" not in os.environ
        client("s3").create_bucket(Bucket="in-process-only")
    assert os.environ["AWS_ENDPOINT_URL"] == "http://previous.invalid:1"
