"""faults: AWS API errors in the service's wire format, Lambda errors and timeouts, failed jobs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import standard

from localaws import faults
from localaws.clients import client
from localaws.sagemaker.jobs import runner as sagemaker_jobs
from localaws.stepfunctions import clock as sfn_time
from tests.localaws.conftest import unique

NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    faults.clear_all()


def raw(service: str) -> object:
    return boto3.client(service, config=NO_RETRY)  # type: ignore[call-overload]


def test_s3_errors_are_s3_errors_for_the_matching_key_only_and_run_out(local_aws):
    s3 = raw("s3")
    bucket = unique("faults")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=b"a")
    s3.put_object(Bucket=bucket, Key="incoming/b.csv", Body=b"b")
    fault = faults.aws_error("s3", "GetObject", "SlowDown", match="incoming/a.csv", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket=bucket, Key="incoming/a.csv")
        assert caught.value.response["Error"]["Code"] == "SlowDown"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.get_object(Bucket=bucket, Key="incoming/b.csv")["Body"].read() == b"b"  # not matched
    assert s3.get_object(Bucket=bucket, Key="incoming/a.csv")["Body"].read() == b"a"  # ran out
    assert fault.hits == 2 and fault.exhausted and fault.first_hit is not None


def test_json_and_query_protocol_errors_parse_as_aws_errors(local_aws):
    sm, sns = raw("sagemaker"), raw("sns")
    with faults.aws_error("sagemaker", "ListModelPackageGroups", "ThrottlingException") as fault:
        with pytest.raises(ClientError) as caught:
            sm.list_model_package_groups()
        assert caught.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        with faults.aws_error("sns", "ListTopics", "Throttling"):
            with pytest.raises(ClientError) as query:
                sns.list_topics()
            assert query.value.response["Error"]["Code"] == "Throttling"
    assert fault.hits == 1
    sm.list_model_package_groups()  # cleared on exit
    sns.list_topics()


def test_sdk_retries_see_the_fault_and_their_backoff_is_scaled(local_aws, monkeypatch):
    sfn_time.set_time_scale(0.0)
    s3 = client("s3")  # standard retry mode, 3 attempts
    bucket = unique("faults")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    fault = faults.aws_error("s3", "GetObject", "InternalError", match="/k", times=2)
    delays, here = [], threading.get_ident()
    scaled = standard.ExponentialBackoff.delay_amount  # installed by faults.aws_error

    def recorded(self, context):
        delay = scaled(self, context)
        if threading.get_ident() == here:  # this test's client, not another module's leftover thread
            delays.append(delay)
        return delay

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", recorded)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"  # third attempt succeeds
    assert fault.hits == 2
    assert delays == [0.0, 0.0]  # botocore's backoff before each retry, scaled to nothing


def test_lambda_faults_raise_named_errors_then_time_out_then_run(local_aws, make_function, invoke_fn):
    name = make_function("def handler(event, context):\n    return {'ok': True}\n", timeout=1)["FunctionName"]
    faults.lambda_error(name, "AwsThrottled", "throttled by AWS", times=1)
    payload, response = invoke_fn(name)
    assert response["FunctionError"]  # moto says "Handled"
    assert payload["errorType"] == "AwsThrottled" and payload["errorMessage"] == "throttled by AWS"
    timeout = faults.lambda_timeout(name, times=1)
    started = time.monotonic()
    payload, response = invoke_fn(name)
    assert payload["errorType"] == "Sandbox.Timedout" and "timed out after 1.00 seconds" in payload["errorMessage"]
    assert time.monotonic() - started >= 1.0 and timeout.hits == 1  # the fault costs the function's Timeout
    assert invoke_fn(name)[0] == {"ok": True}


def test_a_job_fault_fails_the_job_with_its_reason_and_its_events(local_aws, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path))
    sm = client("sagemaker")
    name = unique("faulted")
    fault = faults.job_failure(name, "AlgorithmError: injected", times=1)
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn="arn:aws:iam::123456789012:role/r",
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 1}},
        AppSpecification={"ImageUri": "img", "ContainerEntrypoint": ["python3", "-c", "print(1)"]},
    )
    assert sagemaker_jobs.wait_for_jobs(30, [name])
    described = sm.describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: injected"
    assert fault.hits == 1 and json.dumps(described, default=str)


def test_faults_survive_another_extension_restoring_the_dispatcher(local_aws):
    """An extension's uninstall that puts back the dispatcher it found drops our hook;
    the next fault puts it back instead of silently injecting nothing."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    faults.install()
    ours = DomainDispatcherApplication.__call__
    # what such an uninstall does
    DomainDispatcherApplication.__call__ = faults.PATCHES.original(DomainDispatcherApplication, "__call__")
    try:
        fault = faults.aws_error("sagemaker", "ListModelPackageGroups", "ThrottlingException", times=1)
        with pytest.raises(ClientError, match="ThrottlingException"):
            raw("sagemaker").list_model_package_groups()
        assert fault.hits == 1 and DomainDispatcherApplication.__call__ is ours
    finally:
        faults.clear_all()
