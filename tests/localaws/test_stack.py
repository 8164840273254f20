"""stack: the real template.yaml, translated with samtranslator and created in moto.

Each test checks the deployed resources through the AWS APIs against what the template
says (not against hard-coded names), so a property moto drops shows up as a failure.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto
import pytest
from samtranslator.yaml_helper import yaml_parse

from localaws.clients import client
from localaws.cloudformation import stack as localstack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STACK = "autoloop-stacktest"
# Every condition of the template, with its value for the default parameters. A new
# condition must be added here (the test below fails until it is).
DEFAULT_CONDITIONS = {"IsProd": False, "HasNotificationEmail": False, "HasKmsKey": False, "HasVpc": False,
                      "UsesModelMonitor": False, "HasCustomImageRepository": False,
                      "HasMlflowTrackingServer": False}


# --------------------------------------------------------------------------- helpers
def sam_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


def sam_resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in sam_template()["Resources"].items() if r["Type"] == kind}


def default_parameter(name: str) -> str:
    return str(sam_template()["Parameters"][name]["Default"])


def function_arn(physical_name: str) -> str:
    return client("lambda").get_function_configuration(FunctionName=physical_name)["FunctionArn"]


def resolve_sam_value(value: Any, stack: localstack.Stack) -> Any:
    """The few intrinsic forms the template uses in the places the tests look at."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in stack.resources:
            return stack.resources[name]
        return default_parameter(name)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return function_arn(stack.resources[logical])
    return value


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # in-process moto only


@pytest.fixture
def fresh_aws() -> Iterator[None]:
    with moto.mock_aws():
        yield


# --------------------------------------------------------------------------- translation
def test_translate_gives_plain_cloudformation_with_the_definition_inlined() -> None:
    cfn = localstack.translate(TEMPLATE, stack_name=STACK)
    text = json.dumps(cfn)
    assert "AWS::Serverless" not in text
    assert "Transform" not in cfn

    bucket = localstack.deploy_bucket_name(STACK)
    for logical, resource in cfn["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            assert props["Code"]["S3Bucket"] == bucket, logical
            assert re.fullmatch(rf"{logical}/[0-9a-f]{{16}}\.zip", props["Code"]["S3Key"])
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            assert props["Content"]["S3Bucket"] == bucket

    machines = sam_resources("AWS::Serverless::StateMachine")
    assert machines
    for logical, sam in machines.items():
        props = cfn["Resources"][logical]["Properties"]
        assert "DefinitionS3Location" not in props
        assert "DefinitionSubstitutions" not in props
        parts = props["DefinitionString"]["Fn::Join"][1]
        literal = "".join(p for p in parts if isinstance(p, str))
        assert "$$.Task.Token" in literal
        assert "${" not in literal
        # each substitution value sits between text parts, unresolved for moto
        values = [p for p in parts if not isinstance(p, str)]
        for name, value in sam["Properties"]["DefinitionSubstitutions"].items():
            if isinstance(value, dict):
                asl = (ROOT / sam["Properties"]["DefinitionUri"]).read_text()
                assert values.count(value) == asl.count("${" + name + "}"), name


def test_translate_is_deterministic_and_keys_follow_the_code(tmp_path: Path) -> None:
    first = localstack.translate(TEMPLATE, stack_name=STACK)
    assert localstack.translate(TEMPLATE, stack_name=STACK) == first

    project = tmp_path / "project"
    for part in ("template.yaml", "src", "functions", "statemachine"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, project / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            project.mkdir(exist_ok=True)
            shutil.copy(source, project / part)
    copied = localstack.translate("template.yaml", stack_name=STACK, project_root=project)
    key = copied["Resources"]["StartPipelineFunction"]["Properties"]["Code"]["S3Key"]

    # bytecode caches are not packaged: they change nothing
    cache = project / "functions" / "start_pipeline" / "__pycache__"
    cache.mkdir()
    (cache / "app.cpython-312.pyc").write_bytes(b"\0" * 16)
    again = localstack.translate("template.yaml", stack_name=STACK, project_root=project)
    assert again["Resources"]["StartPipelineFunction"]["Properties"]["Code"]["S3Key"] == key

    # a code change gives a new key (so an update replaces the code)
    app = project / "functions" / "start_pipeline" / "app.py"
    app.write_text(app.read_text() + "\n# changed\n")
    changed = localstack.translate("template.yaml", stack_name=STACK, project_root=project)
    assert changed["Resources"]["StartPipelineFunction"]["Properties"]["Code"]["S3Key"] != key


# --------------------------------------------------------------------------- the deployed template
@pytest.fixture(scope="class")
def deployed() -> Iterator[localstack.Stack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with moto.mock_aws():
            yield localstack.deploy(TEMPLATE, stack_name=STACK)


class TestDeployedTemplate:
    def test_every_translated_resource_is_created(self, deployed: localstack.Stack) -> None:
        conditions = sam_template().get("Conditions", {})
        assert set(conditions) == set(DEFAULT_CONDITIONS), "update DEFAULT_CONDITIONS"
        expected = {
            logical
            for logical, resource in deployed.template["Resources"].items()
            if DEFAULT_CONDITIONS.get(resource.get("Condition", ""), True)
        }
        summaries = client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        listed = {s["LogicalResourceId"] for s in summaries if s["LogicalResourceId"]}
        assert listed == expected
        assert set(deployed.resources) == expected
        status = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
        assert status["StackStatus"] == "CREATE_COMPLETE"

    def test_outputs_are_all_present_and_resolved(self, deployed: localstack.Stack) -> None:
        outputs = sam_template()["Outputs"]
        assert set(deployed.outputs) == set(outputs)
        for key, value in deployed.outputs.items():
            assert value and "${" not in value and "Fn::" not in value, key
            source = outputs[key]["Value"]
            if "Ref" in source:  # a resource's physical id, or a parameter's value
                assert value == deployed.resources.get(source["Ref"], deployed.parameters.get(source["Ref"])), key

    def test_functions_have_the_template_handler_and_a_resolved_environment(self, deployed: localstack.Stack) -> None:
        sam = sam_template()
        global_vars = sam["Globals"]["Function"]["Environment"]["Variables"]
        layer_arns = [
            arn
            for logical, arn in deployed.resources.items()
            if deployed.resource_types[logical] == "AWS::Lambda::LayerVersion"
        ]
        assert len(layer_arns) == 1 and ":layer:" in layer_arns[0]
        functions = sam_resources("AWS::Serverless::Function")
        assert len(functions) >= 7
        lam = client("lambda")
        for logical, resource in functions.items():
            config = lam.get_function_configuration(FunctionName=deployed.resources[logical])
            props = resource["Properties"]
            assert config["Handler"] == props["Handler"], logical
            assert config["Runtime"] == sam["Globals"]["Function"]["Runtime"]
            assert [layer["Arn"] for layer in config["Layers"]] == layer_arns, logical
            env = config["Environment"]["Variables"]
            declared = {**global_vars, **props.get("Environment", {}).get("Variables", {})}
            assert set(env) == set(declared), logical  # nothing silently dropped
            for name, value in env.items():
                assert isinstance(value, str), (logical, name, value)
                assert "${" not in value and "Ref" not in value and "{" not in value, (name, value)

        outputs = deployed.outputs
        start = lam.get_function_configuration(FunctionName=deployed.resources["StartPipelineFunction"])["Environment"][
            "Variables"
        ]
        assert start["DATA_BUCKET"] == outputs["DataBucketName"]
        assert start["ARTIFACTS_BUCKET"] == outputs["ArtifactsBucketName"]
        assert start["STATE_MACHINE_ARN"] == outputs["TrainingPipelineArn"]
        assert start["NOTIFY_TOPIC_ARN"] == outputs["NotificationTopicArn"]
        launch = lam.get_function_configuration(FunctionName=deployed.resources["LaunchJobFunction"])["Environment"][
            "Variables"
        ]
        assert launch["TASK_TOKEN_TABLE"] == outputs["TaskTokenTableName"]
        assert launch["SAGEMAKER_ROLE_ARN"] == outputs["SageMakerExecutionRoleArn"]
        # Number parameters arrive as strings, as Lambda gives them
        assert launch["JOB_MAX_RUNTIME_SECONDS"] == default_parameter("JobMaxRuntimeSeconds")
        gate = lam.get_function_configuration(FunctionName=deployed.resources["QualityGateFunction"])["Environment"][
            "Variables"
        ]
        assert float(gate["METRIC_THRESHOLD"]) == float(default_parameter("MetricThreshold"))
        register = lam.get_function_configuration(FunctionName=deployed.resources["RegisterModelFunction"])[
            "Environment"
        ]["Variables"]
        assert register["APPROVAL_STATUS"] == "Approved"
        assert register["MODEL_PACKAGE_GROUP_PREFIX"] == STACK

    def test_function_code_is_the_folder_zipped(self, deployed: localstack.Stack) -> None:
        s3 = client("s3")
        props = deployed.template["Resources"]["LaunchJobFunction"]["Properties"]["Code"]
        body = s3.get_object(Bucket=props["S3Bucket"], Key=props["S3Key"])["Body"].read()
        names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        assert "app.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        layer = next(
            r["Properties"]["Content"]
            for r in deployed.template["Resources"].values()
            if r["Type"] == "AWS::Lambda::LayerVersion"
        )
        body = s3.get_object(Bucket=layer["S3Bucket"], Key=layer["S3Key"])["Body"].read()
        assert "python/autoloop/__init__.py" in zipfile.ZipFile(io.BytesIO(body)).namelist()

    def test_state_machine_definition_is_the_asl_with_real_values(self, deployed: localstack.Stack) -> None:
        for logical, sam in sam_resources("AWS::Serverless::StateMachine").items():
            described = client("stepfunctions").describe_state_machine(stateMachineArn=deployed.resources[logical])
            definition = described["definition"]
            json.loads(definition)
            assert "$$.Task.Token" in definition
            assert "${" not in definition

            expected = (ROOT / sam["Properties"]["DefinitionUri"]).read_text()
            for name, value in sam["Properties"]["DefinitionSubstitutions"].items():
                expected = expected.replace("${" + name + "}", str(resolve_sam_value(value, deployed)))
            assert definition == expected  # byte for byte: States.Format etc. untouched
            functions = [v["Fn::GetAtt"][0] for v in sam["Properties"]["DefinitionSubstitutions"].values()
                         if isinstance(v, dict) and "Fn::GetAtt" in v and v["Fn::GetAtt"][0].endswith("Function")]
            assert functions, logical
            for function in functions:
                assert function_arn(deployed.resources[function]) in definition

            props = sam["Properties"]
            assert described["loggingConfiguration"]["level"] == props["Logging"]["Level"]
            destination = described["loggingConfiguration"]["destinations"][0]
            log_group = props["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
            assert deployed.resources[log_group] in destination["cloudWatchLogsLogGroup"]["logGroupArn"]
            assert described["tracingConfiguration"]["enabled"] is props["Tracing"]["Enabled"]

    def test_buckets_have_the_template_settings(self, deployed: localstack.Stack) -> None:
        s3 = client("s3")
        for logical, resource in sam_resources("AWS::S3::Bucket").items():
            bucket = deployed.resources[logical]
            props = resource["Properties"]
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == (props["VersioningConfiguration"]["Status"])
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            assert block == props["PublicAccessBlockConfiguration"]
            rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
            assert rules == props["OwnershipControls"]["Rules"]
            encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
            assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            assert policy["Statement"][0]["Sid"] == "DenyInsecureTransport"

    def test_only_the_data_bucket_sends_events_to_eventbridge(self, deployed: localstack.Stack) -> None:
        """moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration, so
        this checks the behaviour: an upload reaches a rule on the default bus."""
        sam = sam_resources("AWS::S3::Bucket")
        on = [k for k, r in sam.items() if "NotificationConfiguration" in r["Properties"]]
        off = [k for k in sam if k not in on]
        assert on == ["DataBucket"] and off
        sqs, events, s3 = client("sqs"), client("events"), client("s3")
        queue = sqs.create_queue(QueueName="stacktest-s3-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        buckets = [deployed.resources[k] for k in sam]
        events.put_rule(
            Name="stacktest-s3",
            EventPattern=json.dumps(
                {
                    "source": ["aws.s3"],
                    # moto also emits "Object Tags Added" for every put
                    "detail-type": ["Object Created"],
                    "detail": {"bucket": {"name": buckets}},
                }
            ),
        )
        events.put_targets(Rule="stacktest-s3", Targets=[{"Id": "q", "Arn": queue_arn}])
        for bucket in buckets:  # outside incoming/: the template's own rule stays quiet
            s3.put_object(Bucket=bucket, Key="probe/x.csv", Body=b"a,b\n")
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        details = [json.loads(m["Body"])["detail"] for m in messages]
        assert [(d["bucket"]["name"], d["object"]["key"]) for d in details] == [
            (deployed.resources["DataBucket"], "probe/x.csv")
        ]

    def test_token_table_has_ttl_and_point_in_time_recovery(self, deployed: localstack.Stack) -> None:
        props = sam_resources("AWS::DynamoDB::Table")["TaskTokenTable"]["Properties"]
        ddb = client("dynamodb")
        table = deployed.outputs["TaskTokenTableName"]
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": props["TimeToLiveSpecification"]["AttributeName"],
        }
        assert ttl["AttributeName"] == "expires_at"
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        key = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        assert key == [{"AttributeName": "job_name", "KeyType": "HASH"}]

    def test_the_stack_makes_no_model_package_group(self, deployed: localstack.Stack) -> None:
        """Models are data: a model's group comes with its first registration, not with the stack."""
        assert sam_resources("AWS::SageMaker::ModelPackageGroup") == {}
        assert client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []

    def test_eventbridge_rules_target_the_functions(self, deployed: localstack.Stack) -> None:
        events, lam = client("events"), client("lambda")
        found = 0
        for function, resource in sam_resources("AWS::Serverless::Function").items():
            for event_id, event in resource["Properties"].get("Events", {}).items():
                if event["Type"] != "EventBridgeRule":
                    continue
                found += 1
                rule_name = deployed.resources[f"{function}{event_id}"]
                rule = events.describe_rule(Name=rule_name)
                assert rule["State"] == "ENABLED"
                pattern = json.loads(rule["EventPattern"])
                assert pattern["source"] == event["Properties"]["Pattern"]["source"]
                if "bucket" in event["Properties"]["Pattern"].get("detail", {}):
                    assert pattern["detail"]["bucket"]["name"] == [deployed.outputs["DataBucketName"]]
                targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
                arn = function_arn(deployed.resources[function])
                assert [t["Arn"] for t in targets] == [arn]
                assert targets[0]["RetryPolicy"] == event["Properties"]["RetryPolicy"]
                policy = json.loads(lam.get_policy(FunctionName=deployed.resources[function])["Policy"])
                assert rule["Arn"] in json.dumps(policy)  # events may invoke the function
        assert found >= 2

    def test_log_groups_and_topic(self, deployed: localstack.Stack) -> None:
        groups = {g["logGroupName"]: g for g in client("logs").describe_log_groups()["logGroups"]}
        for logical in sam_resources("AWS::Logs::LogGroup"):
            group = groups[deployed.resources[logical]]
            assert group["retentionInDays"] == int(default_parameter("LogRetentionDays"))
        attributes = client("sns").get_topic_attributes(TopicArn=deployed.outputs["NotificationTopicArn"])["Attributes"]
        assert attributes["KmsMasterKeyId"] == "alias/aws/sns"

    def test_deploying_again_changes_nothing(self, deployed: localstack.Stack) -> None:
        again = localstack.deploy(TEMPLATE, stack_name=STACK)
        assert again.resources == deployed.resources
        assert again.outputs == deployed.outputs
        status = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
        assert status["StackStatus"] == "CREATE_COMPLETE"  # no update was run


# --------------------------------------------------------------------------- parameters, updates
def approval_status(stack: localstack.Stack) -> str:
    config = client("lambda").get_function_configuration(FunctionName=stack.resources["RegisterModelFunction"])
    return str(config["Environment"]["Variables"]["APPROVAL_STATUS"])


@pytest.mark.usefixtures("fresh_aws")
def test_prod_parameter_deploys_manual_approval() -> None:
    stack = localstack.deploy(TEMPLATE, stack_name=STACK, parameters={"Environment": "prod"})
    assert approval_status(stack) == "PendingManualApproval"
    assert stack.parameters["Environment"] == "prod"


@pytest.mark.usefixtures("fresh_aws")
def test_redeploy_with_other_parameters_updates_in_place() -> None:
    dev = localstack.deploy(TEMPLATE, stack_name=STACK)
    assert approval_status(dev) == "Approved"
    # LogRetentionDays changes every log group: moto's own LogGroup model cannot update
    prod = localstack.deploy(TEMPLATE, stack_name=STACK, parameters={"Environment": "prod", "LogRetentionDays": "7"})
    assert prod.resources == dev.resources  # updated, not replaced
    assert approval_status(prod) == "PendingManualApproval"
    # /aws/lambda/<function>: written by local invocations during the deploy (the Teardown custom
    # resource's Create), not a template resource.
    groups = [g for g in client("logs").describe_log_groups()["logGroups"]
              if not g["logGroupName"].startswith("/aws/lambda/")]
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups} == {
        prod.resources[k]: 7 for k, t in prod.resource_types.items() if t == "AWS::Logs::LogGroup"
    }
    stacks = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert stacks[0]["StackStatus"] == "UPDATE_COMPLETE"
    back = localstack.deploy(TEMPLATE, stack_name=STACK)  # defaults again
    assert approval_status(back) == "Approved"


def test_state_machine_is_visible_to_the_executing_step_functions_backend() -> None:
    """Local mode turns on moto's ASL execution, which serves the API from another
    backend than the one moto's CloudFormation model writes to."""
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        stack = localstack.deploy(TEMPLATE, stack_name=STACK)
        arn = stack.outputs["TrainingPipelineArn"]
        sfn = client("stepfunctions")
        machines = {k: v for k, v in stack.resources.items()
                    if stack.resource_types[k] == "AWS::StepFunctions::StateMachine"}
        assert len(machines) == len(sam_resources("AWS::Serverless::StateMachine")) and arn in machines.values()
        assert sorted(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]) == sorted(
            machines.values())
        described = sfn.describe_state_machine(stateMachineArn=arn)
        assert "$$.Task.Token" in described["definition"]
        assert described["type"] == "STANDARD"
        assert described["tracingConfiguration"] == {"enabled": True}


@pytest.mark.usefixtures("fresh_aws")
def test_notification_email_creates_the_subscription() -> None:
    stack = localstack.deploy(TEMPLATE, stack_name=STACK, parameters={"NotificationEmail": "ops@example.com"})
    assert "NotificationSubscription" in stack.resources
    subscriptions = client("sns").list_subscriptions_by_topic(TopicArn=stack.outputs["NotificationTopicArn"])[
        "Subscriptions"
    ]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@example.com")]
    assert stack.resources["NotificationSubscription"] == subscriptions[0]["SubscriptionArn"]


@pytest.mark.usefixtures("fresh_aws")
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Environment": "staging"}, "not one of"),
        ({"MetricThreshold": "1.5"}, "above"),
        ({"ProcessingInstanceType": "m5.large"}, "does not match"),
        ({"NoSuchParameter": "x"}, "not in the template"),
    ],
)
def test_invalid_parameters_are_rejected_before_anything_is_created(parameters: dict[str, str], message: str) -> None:
    with pytest.raises(localstack.DeployError, match=message):
        localstack.deploy(TEMPLATE, stack_name=STACK, parameters=parameters)
    assert client("cloudformation").list_stacks()["StackSummaries"] == []


# --------------------------------------------------------------------------- other templates
def write_template(folder: Path, body: str) -> Path:
    path = folder / "template.yaml"
    path.write_text(body)
    return path


@pytest.mark.usefixtures("fresh_aws")
def test_a_type_moto_cannot_create_is_an_error(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Catalog:
    Type: AWS::Glue::Database
    Properties: {CatalogId: !Ref AWS::AccountId, DatabaseInput: {Name: x}}
Outputs:
  Name:
    Value: !Ref Catalog
""",
    )
    with pytest.raises(localstack.DeployError, match=r"Catalog \(AWS::Glue::Database\)"):
        localstack.deploy(path, stack_name="unsupported")
    assert client("sns").list_topics()["Topics"] == []


@pytest.mark.usefixtures("fresh_aws")
def test_a_failing_resource_rolls_the_stack_back(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt Role.Arn
      Code: {S3Bucket: no-such-bucket, S3Key: code.zip}
""",
    )
    with pytest.raises(localstack.DeployError, match="NoSuchBucket"):
        localstack.deploy(path, stack_name="broken")
    stacks = client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_COMPLETE"]


@pytest.mark.usefixtures("fresh_aws")
def test_scheduler_schedule_model(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: scheduler.amazonaws.com}, Action: sts:AssumeRole}]
  Nightly:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: cron(0 3 * * ? *)
      FlexibleTimeWindow: {Mode: "OFF"}
      State: DISABLED
      Target: {Arn: !Ref Topic, RoleArn: !GetAtt Role.Arn, Input: '{"x": 1}'}
Outputs:
  ScheduleArn:
    Value: !GetAtt Nightly.Arn
""",
    )
    stack = localstack.deploy(path, stack_name="sched")
    schedule = client("scheduler").get_schedule(Name=stack.resources["Nightly"])
    assert schedule["Arn"] == stack.outputs["ScheduleArn"]
    assert schedule["State"] == "DISABLED"
    assert schedule["Target"]["Arn"] == client("sns").list_topics()["Topics"][0]["TopicArn"]


# --------------------------------------------------------------------------- custom resources
GREETER = '''
import json, os, urllib.request


def handler(event, context):
    with open(os.environ["REQUEST_LOG"], "a") as log:
        log.write(json.dumps(event) + "\\n")
    props = event["ResourceProperties"]
    failed = event["RequestType"] == "Delete" and props.get("FailDelete") == "yes"
    body = {"Status": "FAILED" if failed else "SUCCESS", "Reason": "told to fail" if failed else "",
            "PhysicalResourceId": "greeter", "StackId": event["StackId"], "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"], "Data": {"Greeting": "hello " + props["Name"]}}
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).close()
'''

CUSTOM_RESOURCE_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Name: {Type: String, Default: world}
  FailDelete: {Type: String, Default: "no"}
  RequestLog: {Type: String}
Resources:
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: greeter/
      Environment:
        Variables:
          REQUEST_LOG: !Ref RequestLog
  Greeting:
    Type: Custom::Greeting
    Properties:
      ServiceToken: !GetAtt Greeter.Arn
      Name: !Ref Name
      Count: 3
      FailDelete: !Ref FailDelete
Outputs:
  Greeting:
    Value: !GetAtt Greeting.Greeting
"""


def _greeter_project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "greeter").mkdir()
    (tmp_path / "greeter" / "app.py").write_text(GREETER)
    return write_template(tmp_path, CUSTOM_RESOURCE_TEMPLATE), tmp_path / "requests.jsonl"


def _requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.usefixtures("fresh_aws")
def test_custom_resources_get_create_update_and_delete_from_their_function(tmp_path: Path) -> None:
    path, log = _greeter_project(tmp_path)
    stack = localstack.deploy(path, stack_name="custom", parameters={"RequestLog": str(log)})
    (create,) = _requests(log)
    assert create["RequestType"] == "Create" and create["ResourceType"] == "Custom::Greeting"
    assert {"ResponseURL", "StackId", "RequestId", "LogicalResourceId", "ServiceToken"} <= set(create)
    assert create["StackId"] == stack.stack_id and create["LogicalResourceId"] == "Greeting"
    # CloudFormation passes every property as a string
    assert create["ResourceProperties"] == {"ServiceToken": create["ServiceToken"], "Name": "world", "Count": "3",
                                            "FailDelete": "no"}
    assert stack.outputs["Greeting"] == "hello world"  # Fn::GetAtt reads the response's Data
    assert stack.resources["Greeting"] == "greeter"  # the PhysicalResourceId it answered

    localstack.deploy(path, stack_name="custom", parameters={"RequestLog": str(log), "Name": "moon"})
    update = _requests(log)[-1]
    assert update["RequestType"] == "Update" and update["PhysicalResourceId"] == "greeter"
    assert (update["OldResourceProperties"]["Name"], update["ResourceProperties"]["Name"]) == ("world", "moon")

    cfn = client("cloudformation")
    cfn.delete_stack(StackName="custom")
    delete = _requests(log)[-1]  # written by the function itself: it still existed at the Delete
    assert delete["RequestType"] == "Delete" and delete["PhysicalResourceId"] == "greeter"
    assert cfn.describe_stacks(StackName=stack.stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert client("lambda").list_functions()["Functions"] == []


@pytest.mark.usefixtures("fresh_aws")
def test_a_failed_custom_resource_delete_leaves_the_stack_delete_failed(tmp_path: Path) -> None:
    path, log = _greeter_project(tmp_path)
    stack = localstack.deploy(path, stack_name="stuck", parameters={"RequestLog": str(log), "FailDelete": "yes"})
    cfn = client("cloudformation")
    cfn.delete_stack(StackName="stuck")
    described = cfn.describe_stacks(StackName=stack.stack_id)["Stacks"][0]
    assert described["StackStatus"] == "DELETE_FAILED"
    reasons = [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName="stuck")["StackEvents"]]
    assert any("told to fail" in r for r in reasons)
    assert len(client("lambda").list_functions()["Functions"]) == 1  # nothing was deleted
