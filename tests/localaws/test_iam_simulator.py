"""localaws.iam.simulator: iam:SimulatePrincipalPolicy answers allowed (IAM is not enforced locally)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws import server
from localaws.clients import client
from localaws.iam import simulator

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def test_every_action_on_every_resource_is_allowed_for_an_existing_role() -> None:
    with server.in_process():
        iam = client("iam")
        role = iam.create_role(RoleName="Trainer", Path="/service/", AssumeRolePolicyDocument=json.dumps(TRUST))
        arn = role["Role"]["Arn"]
        answer = iam.simulate_principal_policy(
            PolicySourceArn=arn, ActionNames=["s3:PutObject", "sagemaker:CreateTrainingJob"],
            ResourceArns=["arn:aws:s3:::bucket-a/*", "arn:aws:s3:::bucket-b/*"],
        )
        results = answer["EvaluationResults"]
        assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results] == [
            ("s3:PutObject", "arn:aws:s3:::bucket-a/*", "allowed"),
            ("s3:PutObject", "arn:aws:s3:::bucket-b/*", "allowed"),
            ("sagemaker:CreateTrainingJob", "arn:aws:s3:::bucket-a/*", "allowed"),
            ("sagemaker:CreateTrainingJob", "arn:aws:s3:::bucket-b/*", "allowed"),
        ]
        assert results[0]["ResourceSpecificResults"][0]["EvalResourceDecision"] == "allowed"
        assert answer["IsTruncated"] is False

        # no ResourceArns: "*"; the paginator the SDK uses walks MaxItems pages
        pages = list(iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=arn, ActionNames=["a:One", "a:Two", "a:Three"], PaginationConfig={"PageSize": 2}))
        assert [len(p["EvaluationResults"]) for p in pages] == [2, 1]
        assert [r["EvalResourceName"] for p in pages for r in p["EvaluationResults"]] == ["*", "*", "*"]

        iam.create_user(UserName="dev")
        user = iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:user/dev", ActionNames=["s3:GetObject"])
        assert user["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_a_missing_or_malformed_principal_is_refused_as_on_aws() -> None:
    with server.in_process():
        iam = client("iam")
        with pytest.raises(ClientError) as missing:
            iam.simulate_principal_policy(
                PolicySourceArn="arn:aws:iam::123456789012:role/Nope", ActionNames=["s3:GetObject"])
        assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
        assert "Nope" in missing.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as malformed:
            iam.simulate_principal_policy(PolicySourceArn="arn:aws:s3:::some-bucket-name", ActionNames=["s3:GetObject"])
        assert malformed.value.response["Error"]["Code"] == "InvalidInput"


def test_uninstall_brings_back_moto_as_it_is() -> None:
    from moto.iam.responses import IamResponse

    with server.in_process():
        assert simulator.installed() and hasattr(IamResponse, "simulate_principal_policy")
        simulator.uninstall()
        try:
            assert not hasattr(IamResponse, "simulate_principal_policy")
        finally:
            simulator.install()
        assert simulator.installed()
