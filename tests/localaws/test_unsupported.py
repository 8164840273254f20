"""localaws.unsupported: what the local AWS lacks answers as AWS answers errors, at once."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import server, unsupported

pytestmark = pytest.mark.usefixtures("local_aws")


def counting_client(service: str) -> tuple[Any, list[int]]:
    """A client with botocore's standard retries (it retries 500s), counting its requests."""
    sent: list[int] = []
    made = boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))
    made.meta.events.register("before-send", lambda **_: sent.append(1))
    return made, sent


@pytest.mark.parametrize(("service", "operation", "kwargs", "name", "protocol"), [
    ("logs", "list_anomalies", {}, "ListAnomalies", "json"),
    ("cloudwatch", "describe_anomaly_detectors", {}, "DescribeAnomalyDetectors", "json (x-amz-json-1.0)"),
    ("sns", "get_data_protection_policy", {"ResourceArn": "arn:aws:sns:us-east-1:123456789012:t"},
     "GetDataProtectionPolicy", "query"),
    ("iam", "get_service_last_accessed_details", {"JobId": "j" * 36}, "GetServiceLastAccessedDetails", "query"),
    ("lambda", "list_code_signing_configs", {}, "ListCodeSigningConfigs", "rest-json, unrouted path"),
])
def test_an_operation_moto_lacks_is_a_clear_client_error_without_retries(service, operation, kwargs, name,
                                                                         protocol):
    made, sent = counting_client(service)
    with pytest.raises(ClientError) as raised:
        getattr(made, operation)(**kwargs)
    error = raised.value.response["Error"]
    assert error["Code"] == "NotImplemented", protocol
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert f"{service} {name} is not implemented by the local AWS" in error["Message"]
    assert "What differs locally" in error["Message"]
    assert len(sent) == 1  # botocore did not retry


def test_a_path_no_operation_matches_is_unknown_operation(local_aws: server.LocalAws):
    request = urllib.request.Request(
        f"{local_aws.endpoint_url}/2015-03-31/no-such-thing/at-all", method="GET",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261204/us-east-1/lambda/aws4_request, "
                                  "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 404
    assert raised.value.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "no operation matches GET /2015-03-31/no-such-thing/at-all" in raised.value.read().decode()


@pytest.mark.parametrize("protocol", ["json", "rest-json", "query", "rest-xml", "ec2"])
def test_each_protocols_error_format_is_what_botocore_parses(protocol: str):
    from botocore.parsers import create_parser

    body, status, headers = unsupported.error_response(protocol, 501, "NotImplemented", "s3 Op is <not> here & now")
    shape = None
    parsed = create_parser(protocol).parse(
        {"status_code": status, "headers": headers, "body": body.encode()}, shape)
    assert parsed["Error"]["Code"] == "NotImplemented"
    assert parsed["Error"]["Message"] == "s3 Op is <not> here & now"
