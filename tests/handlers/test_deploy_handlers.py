"""plan_deployment, deploy_endpoint and cleanup_endpoint against moto (template resources)."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from autoloop import batch, errors
from autoloop.config import EndpointSettings, load_settings
from autoloop.deploy import rollback_alarms
from autoloop.deploy_steps import endpoint_instance_type, published_config
from autoloop.jobs import config_key
from autoloop_cli.publish import publish_config_with
from tests.conftest import load_event, load_handler
from tests.handlers.conftest import STACK
from tests.support import seed_package


def register(status="Approved", metadata=True, metrics=True):
    request = {
        "ModelApprovalStatus": status,
        "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz",
                                                   "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    }
    if metrics:
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                   "S3Uri": "s3://b/evaluation.json"}}}
    if metadata:
        request["CustomerMetadataProperties"] = {"autoloop:run-id": "churn-0123456789",
                                                 "autoloop:metric-name": "auc", "autoloop:metric-value": "0.85"}
    return seed_package(boto3.client("sagemaker"), STACK, **request)


def package_event(arn, status="Approved", group=f"{STACK}-churn"):
    event = load_event("sagemaker_model_package_approved")
    event["detail"].update({"ModelPackageArn": arn, "ModelApprovalStatus": status, "ModelPackageGroupName": group,
                            "ModelPackageVersion": int(arn.rsplit("/", 1)[-1])})
    return event


@pytest.fixture
def planner(deployed):
    deployed.use_env("PlanDeploymentFunction")
    return load_handler("plan_deployment").handler


def test_first_approval_plans_a_create(deployed, planner, lambda_context):
    arn = register()
    result = planner(package_event(arn), lambda_context)
    assert result["action"] == "create" and result["endpoint_name"] == f"{STACK}-churn"
    assert result["package_version"] == 1 and result["run_id"] == "churn-0123456789"
    assert result["config_name"].startswith(f"{STACK}-churn-v1-")
    assert result["model_data_url"] == "s3://b/model.tar.gz"


def test_rejection_of_a_package_that_is_not_serving_changes_nothing(deployed, planner, lambda_context):
    arn = register(status="Rejected")
    result = planner(package_event(arn, status="Rejected"), lambda_context)
    assert result["action"] == "none" and "not serving" in result["reason"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"metrics": False}, "no ModelQuality metrics"), ({"metadata": False}, "carries no")],
)
def test_packages_that_cannot_be_deployed_are_named(deployed, planner, lambda_context, kwargs, match):
    arn = register(**kwargs)
    with pytest.raises(errors.PackageNotDeployable, match=match):
        planner(package_event(arn), lambda_context)


def test_an_approval_in_another_stacks_group_is_refused(deployed, planner, lambda_context):
    with pytest.raises(errors.InvalidEvent, match="does not belong to this stack"):
        planner(load_event("sagemaker_model_package_other_group"), lambda_context)


def test_deploy_creates_model_config_with_capture_and_endpoint(deployed, planner, lambda_context):
    plan = planner(package_event(register()), lambda_context)
    deployed.use_env("DeployEndpointFunction")
    result = load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    assert {k: result[k] for k in ("endpoint_name", "config_name", "action")} == {
        "endpoint_name": plan["endpoint_name"], "config_name": plan["config_name"], "action": "create"}
    sm = boto3.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=plan["config_name"])
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == f"s3://{deployed.artifacts_bucket}/datacapture"
    assert config["ProductionVariants"][0]["ModelName"] == plan["model_name"]
    model = sm.describe_model(ModelName=plan["model_name"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://b/model.tar.gz"
    assert sm.describe_endpoint(EndpointName=plan["endpoint_name"])["EndpointConfigName"] == plan["config_name"]
    token = boto3.client("dynamodb").get_item(
        TableName=deployed.resources["TaskTokenTable"], Key={"job_name": {"S": f"endpoint:{plan['endpoint_name']}"}}
    )["Item"]
    from autoloop.tasks import EndpointWaiters

    waiting = token[EndpointWaiters.attribute("tok")]["M"]
    assert waiting["token"]["S"] == "tok" and waiting["config"]["S"] == plan["config_name"]
    assert token["waiting"]["N"] == "1"
    # Deploying the same plan again (a retried task) creates nothing twice.
    deployed.use_env("PlanDeploymentFunction")
    assert planner(package_event(plan["package_arn"]), lambda_context)["action"] == "none"


def alarms_of(endpoint):
    described = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]
    return {a["AlarmName"].removeprefix(endpoint): a for a in described}


def test_deploy_puts_the_models_rollback_alarms_and_monthly_schedule(deployed, planner, lambda_context):
    """No template resource names a model: its rollback alarms and its monthly batch schedule
    are put before its endpoint is created, and again (unchanged) by a retried step."""
    plan = planner(package_event(register()), lambda_context)
    endpoint = plan["endpoint_name"]
    env = deployed.use_env("DeployEndpointFunction")
    result = load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    assert result["alarms"] == rollback_alarms(endpoint)
    alarms = alarms_of(endpoint)
    # The thresholds the template's alarms had: any 5xx, 5 model errors a minute, p99 over 500 ms twice.
    watched = {suffix: (a["MetricName"], a.get("Statistic") or a.get("ExtendedStatistic"), a["Threshold"],
                        a["EvaluationPeriods"], a["ComparisonOperator"]) for suffix, a in alarms.items()}
    assert watched == {
        "-5xx": ("Invocation5XXErrors", "Sum", 1.0, 1, "GreaterThanOrEqualToThreshold"),
        "-model-errors": ("Invocation4XXErrors", "Sum", 5.0, 1, "GreaterThanOrEqualToThreshold"),
        "-latency": ("ModelLatency", "p99", 500000.0, 2, "GreaterThanThreshold"),
    }
    for alarm in alarms.values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"EndpointName": endpoint,
                                                                         "VariantName": "AllTraffic"}
        tags = boto3.client("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
        assert {"Key": "autoloop:stack", "Value": STACK} in tags

    name = batch.schedule_name(STACK, "churn")
    assert result["batch_schedule"] == {"schedule_name": name, "action": "created"}
    schedule = boto3.client("scheduler").get_schedule(Name=name)
    assert schedule["ScheduleExpression"] == env["BATCH_SCHEDULE"] == "cron(0 3 1 * ? *)"
    assert schedule["State"] == "ENABLED" and schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["Target"]["Arn"] == deployed.outputs["BatchTransformArn"] == env["BATCH_TRANSFORM_ARN"]
    assert schedule["Target"]["RoleArn"] == env["BATCH_SCHEDULER_ROLE_ARN"]
    assert json.loads(schedule["Target"]["Input"]) == {"model": "churn", "trigger": {
        "type": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>",
        "schedule": "<aws.scheduler.schedule-arn>"}}

    again = load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    assert again["batch_schedule"]["action"] == "updated" and set(alarms_of(endpoint)) == set(alarms)


def test_the_schedule_follows_the_models_config(deployed, planner, lambda_context):
    """batch.schedule false: the next deployment deletes the schedule; a config that no longer
    parses leaves it as it is (a deployment, or a rollback, must not fail on it)."""
    plan = planner(package_event(register()), lambda_context)
    deployed.use_env("DeployEndpointFunction")
    name = batch.schedule_name(STACK, "churn")
    load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    s3 = boto3.client("s3")
    publish_config_with(s3, deployed.artifacts_bucket, "churn", {"batch": {"schedule": False}})
    result = load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    assert result["batch_schedule"] == {"schedule_name": name, "action": "deleted"}
    with pytest.raises(ClientError, match="ResourceNotFound"):
        boto3.client("scheduler").get_schedule(Name=name)
    publish_config_with(s3, deployed.artifacts_bucket, "churn", {"batch": {"schedule": True}})
    assert load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)[
        "batch_schedule"]["action"] == "created"
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=config_key("churn"), Body=b"{not json")
    kept = load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    assert kept["batch_schedule"]["action"] == "kept" and "not valid JSON" in kept["batch_schedule"]["reason"]
    assert boto3.client("scheduler").get_schedule(Name=name)["State"] == "ENABLED"


def test_the_endpoint_runs_on_the_configs_instance_type_else_the_stacks(deployed, planner, lambda_context):
    """instance_types.endpoint in the model's config; the stack's EndpointInstanceType without it,
    or when the config cannot be read (a deployment must not fail on it)."""
    s3 = boto3.client("s3")
    publish_config_with(s3, deployed.artifacts_bucket, "churn", {"instance_types": {"endpoint": "ml.c5.2xlarge"}})
    plan = planner(package_event(register()), lambda_context)
    env = deployed.use_env("DeployEndpointFunction")
    load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)
    config = boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName=plan["config_name"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.2xlarge"

    settings = load_settings(EndpointSettings, env)
    publish_config_with(s3, deployed.artifacts_bucket, "churn", {})
    assert endpoint_instance_type("churn", published_config("churn", settings), settings) \
        == env["ENDPOINT_INSTANCE_TYPE"] == "ml.m5.large"
    s3.put_object(Bucket=deployed.artifacts_bucket, Key=config_key("churn"), Body=b"{not json")
    assert endpoint_instance_type("churn", published_config("churn", settings), settings) \
        == env["ENDPOINT_INSTANCE_TYPE"]


def test_cleanup_keeps_only_the_serving_version(deployed, planner, lambda_context):
    sm = boto3.client("sagemaker")
    plans = []
    for _ in range(3):
        arn = register()
        deployed.use_env("PlanDeploymentFunction")
        plan = planner(package_event(arn), lambda_context)
        plan["action"] = "create"
        deployed.use_env("DeployEndpointFunction")
        from autoloop.deploy import endpoint_config_request, model_request
        from autoloop.state import DeployPlan

        p = DeployPlan.model_validate(plan)
        sm.create_model(**model_request(p, deployed.outputs["SageMakerExecutionRoleArn"], []))
        sm.create_endpoint_config(**endpoint_config_request(p, capture_uri="s3://b/c", sampling_percentage=100,
                                                            instance_type="ml.m5.large", serverless_memory_mb=None,
                                                            tags=[]))
        plans.append(plan)
    # Another model's endpoint whose name starts with this one's: its versions are not ours.
    neighbour = {**plans[0], "endpoint_name": f"{STACK}-churn2",
                 "model_name": f"{STACK}-churn2-v1-abcdef", "config_name": f"{STACK}-churn2-v1-abcdef"}
    n = DeployPlan.model_validate(neighbour)
    sm.create_model(**model_request(n, deployed.outputs["SageMakerExecutionRoleArn"], []))
    sm.create_endpoint_config(**endpoint_config_request(n, capture_uri="s3://b/c", sampling_percentage=100,
                                                        instance_type="ml.m5.large", serverless_memory_mb=None,
                                                        tags=[]))
    result = load_handler("cleanup_endpoint").handler({"plan": plans[-1]}, lambda_context)
    assert sorted(result["configs"]) == sorted(p["config_name"] for p in plans[:2])
    left = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert sorted(left) == sorted([plans[-1]["config_name"], neighbour["config_name"]])
    assert sorted(m["ModelName"] for m in sm.list_models()["Models"]) == sorted(
        [plans[-1]["model_name"], neighbour["model_name"]])


def test_endpoint_result_names_rollback_and_failure():
    from autoloop.tasks import endpoint_result

    ok = {"EndpointName": "e", "EndpointStatus": "InService", "EndpointConfigName": "e-v2-abcdef"}
    assert endpoint_result(ok, "e-v2-abcdef")["status"] == "InService"
    with pytest.raises(errors.DeploymentRolledBack, match="rolled back to e-v1"):
        endpoint_result({**ok, "EndpointConfigName": "e-v1-abcdef", "FailureReason": "alarm"}, "e-v2-abcdef")
    with pytest.raises(errors.DeploymentFailed, match="Failed"):
        endpoint_result({**ok, "EndpointStatus": "Failed"}, "e-v2-abcdef")
    with pytest.raises(errors.EndpointStillUpdating):
        endpoint_result({**ok, "EndpointStatus": "Updating"}, "e-v2-abcdef")


# ----------------------------------------------------------------------------- serverless
@pytest.fixture
def serverless(deployed, monkeypatch):
    """PlanDeployment as deployed with ServerlessMemoryMB=2048 (its SERVERLESS_MEMORY_MB)."""
    handler = load_handler("plan_deployment").handler

    def plan(event, context, **env):
        deployed.use_env("PlanDeploymentFunction")
        for key, value in {"SERVERLESS_MEMORY_MB": "2048", **env}.items():
            monkeypatch.setenv(key, value)
        return handler(event, context)

    return plan


def deploy(deployed, plan, lambda_context):
    deployed.use_env("DeployEndpointFunction")
    return load_handler("deploy_endpoint").handler({"task_token": "tok", "plan": plan}, lambda_context)


def test_a_serverless_deployment_gives_up_isolation_and_capture_and_says_so(deployed, serverless, lambda_context):
    plan = serverless(package_event(register()), lambda_context)
    assert plan["action"] == "create" and plan["serverless_memory_mb"] == 2048 and plan["data_capture"] is False
    deploy(deployed, plan, lambda_context)
    sm = boto3.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=plan["config_name"])
    assert not config.get("DataCaptureConfig") and "KmsKeyId" not in config
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    model = sm.describe_model(ModelName=plan["model_name"])
    assert not model.get("EnableNetworkIsolation") and not model.get("VpcConfig")


def test_an_instance_endpoint_is_not_switched_to_serverless(deployed, planner, serverless, lambda_context):
    first = planner(package_event(register()), lambda_context)
    deploy(deployed, first, lambda_context)  # an instance endpoint (ServerlessMemoryMB=0)
    with pytest.raises(errors.ServerlessNotPossible, match="cannot update an instance endpoint into a serverless"):
        serverless(package_event(register()), lambda_context)
    # Nothing was created for the refused version.
    names = [c["EndpointConfigName"] for c in boto3.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]]
    assert names == [first["config_name"]]


def test_a_serverless_endpoint_is_updated_serverless(deployed, serverless, lambda_context):
    deploy(deployed, serverless(package_event(register()), lambda_context), lambda_context)
    second = serverless(package_event(register()), lambda_context)
    assert second["action"] == "update" and second["data_capture"] is False


def test_serverless_in_a_vpc_is_refused_at_plan_time(deployed, serverless, lambda_context):
    with pytest.raises(errors.ServerlessNotPossible, match="cannot run in a VPC"):
        serverless(package_event(register()), lambda_context, SUBNET_IDS="subnet-0a1b2c3d",
                   SECURITY_GROUP_IDS="sg-0a1b2c3d")


# ----------------------------------------------------------------------------- teardown vs a late approval
def test_an_approval_after_the_teardown_started_deploys_nothing(deployed, planner, lambda_context):
    from autoloop.lifecycle import mark_teardown

    mark_teardown(deployed.resources["TaskTokenTable"])
    plan = planner(package_event(register()), lambda_context)
    assert plan["action"] == "none" and "being deleted" in plan["reason"]
