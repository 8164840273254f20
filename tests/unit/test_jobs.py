import json

import botocore.session
import pytest
from botocore.validate import validate_parameters

from autoloop import batch, deploy, jobs, monitoring
from autoloop.batch import BatchPlan, Monitoring, Package
from autoloop.naming import MAX_JOB_NAME
from autoloop.state import DeployPlan

CTX = jobs.JobContext(
    run_id="churn-0123456789", model="churn", artifacts_bucket="art", role_arn="arn:aws:iam::1:role/sm",
    image_uri="img:1", instance_type="ml.m5.large", max_runtime_seconds=900, stack_name="autoloop-dev",
)


def tags(spec):
    return {t["Key"]: t["Value"] for t in spec["Tags"]}


def test_preprocess_request_follows_the_processing_contract():
    spec = jobs.preprocess_request(CTX, "s3://data/incoming/churn/x.csv")
    assert spec["ProcessingJobName"] == "churn-0123456789-preprocess"
    assert spec["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/preprocess.py"]
    inputs = {i["InputName"]: i["S3Input"] for i in spec["ProcessingInputs"]}
    assert inputs["raw"]["S3Uri"] == "s3://data/incoming/churn/x.csv"
    assert inputs["code"]["S3Uri"] == "s3://art/code/ml/"
    assert inputs["config"]["S3Uri"] == "s3://art/config/models/churn.json"
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in spec["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"] == "s3://art/runs/churn/churn-0123456789/preprocess/train"
    assert set(outputs) == {"train", "validation", "test", "baseline"}
    assert spec["StoppingCondition"]["MaxRuntimeInSeconds"] == 900
    assert spec["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert tags(spec) == {"autoloop:run-id": CTX.run_id, "autoloop:model": "churn",
                          "autoloop:step": "preprocess", "autoloop:stack": "autoloop-dev"}
    args = spec["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--config") + 1] == "/opt/ml/processing/input/config/churn.json"


def test_training_request_is_script_mode_with_code_as_a_channel():
    spec = jobs.training_request(CTX, "s3://art/t", "s3://art/v", {"C": 0.5, "max-iter": 100}, "churned")
    hps = {k: json.loads(v) for k, v in spec["HyperParameters"].items()}
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert hps["C"] == 0.5 and hps["max-iter"] == 100 and hps["label"] == "churned"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in spec["InputDataConfig"]}
    assert channels == {"train": "s3://art/t", "validation": "s3://art/v", "code": "s3://art/code/models/churn/sourcedir.tar.gz"}
    assert spec["EnableNetworkIsolation"] is True
    assert spec["OutputDataConfig"]["S3OutputPath"].startswith("s3://art/runs/churn/churn-0123456789/")
    assert len(spec["TrainingJobName"]) <= MAX_JOB_NAME


def test_evaluate_request_reads_model_and_test_split():
    spec = jobs.evaluate_request(CTX, "s3://art/m/model.tar.gz", "s3://art/test", "churned")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in spec["ProcessingInputs"]}
    assert inputs == {"model": "s3://art/m/model.tar.gz", "test": "s3://art/test", "code": "s3://art/code/ml/"}
    assert spec["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] == "evaluation"
    args = spec["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--task") + 1] == "binary" and "--champion-dir" not in args


def test_evaluate_request_scores_the_champion_on_the_same_test_split():
    champion = "arn:aws:sagemaker:us-east-1:123456789012:model-package/autoloop-dev-churn/3"
    spec = jobs.evaluate_request(CTX, "s3://art/m/model.tar.gz", "s3://art/test", "churned", task="regression",
                                 metric="rmse", direction="lower", champion_model="s3://art/c/model.tar.gz",
                                 champion_arn=champion)
    inputs = {i["InputName"]: i["S3Input"] for i in spec["ProcessingInputs"]}
    assert inputs["champion"]["S3Uri"] == "s3://art/c/model.tar.gz"
    assert inputs["champion"]["LocalPath"] == "/opt/ml/processing/input/champion"
    args = spec["AppSpecification"]["ContainerArguments"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--champion-dir"] == "/opt/ml/processing/input/champion" and pairs["--champion-arn"] == champion
    assert pairs["--task"] == "regression" and pairs["--metric"] == "rmse" and pairs["--direction"] == "lower"
    with pytest.raises(ValueError, match="go together"):
        jobs.evaluate_request(CTX, "s3://m", "s3://t", "y", champion_model="s3://art/c/model.tar.gz")


def test_job_result_shapes_match_for_both_kinds():
    processing = jobs.job_result("processing", {
        "ProcessingJobName": "p", "ProcessingJobStatus": "Failed", "FailureReason": "boom",
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": "s3://x/e"}}]},
    })
    training = jobs.job_result("training", {
        "TrainingJobName": "t", "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://x/model.tar.gz"},
    })
    assert processing == {"job_name": "p", "kind": "processing", "status": "Failed",
                          "outputs": {"evaluation": "s3://x/e"}, "model_artifacts": None, "failure_reason": "boom"}
    assert training["model_artifacts"] == "s3://x/model.tar.gz" and training["failure_reason"] is None
    assert set(processing) == set(training)


# ----------------------------------------------------------------------------- cost and security guards
# Every SageMaker request the code builds, each checked against the botocore model of its API
# (so every property name is real) and for its guards: a bounded runtime, network isolation,
# the KMS key and the VPC when configured, nothing of either when not.
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECURE = jobs.JobSecurity.parse(KEY, "subnet-0a1b2c3d, subnet-4e5f6a7b", "sg-0a1b2c3d")
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
MONITORING = monitoring.MonitoringSettings(image_uri="monitor:1")
BATCH_PLAN = BatchPlan.model_validate({
    "action": "score", "reason": "r", "model": "churn", "month": "2026-10", "run_id": "churn-202610-abcdef",
    "package": Package(arn="arn:pkg/3", version=3, training_run_id="churn-0123456789"),
    "model_name": "autoloop-dev-churn-v3-abcdef-bt", "endpoint_name": "autoloop-dev-churn",
    "input_uri": "s3://data/batch/churn/2026-10/", "output_uri": "s3://data/predictions/churn/month=2026-10/",
    "input_digest": "d",
    "monitoring": Monitoring(constraints_uri="s3://art/c/constraints.json", statistics_uri="s3://art/s/statistics.json"),
})
DEPLOY_PLAN = DeployPlan(action="create", reason="r", model="churn", endpoint_name="autoloop-dev-churn",
                         model_name="autoloop-dev-churn-v3-abcdef", config_name="autoloop-dev-churn-v3-abcdef",
                         image="img:1", model_data_url="s3://art/m/model.tar.gz", environment={})


def every_job_request(security: jobs.JobSecurity, spot: bool = False) -> dict[str, tuple[str, dict]]:
    """(API operation, request) of every job the code launches: the TrainingPipeline's and
    DeployPipeline's steps, the monthly batch, and the monitoring schedule."""
    ctx = jobs.JobContext(**{**CTX.__dict__, "security": security, "spot": jobs.SpotTraining(enabled=spot)})
    schedule = monitoring.schedule_request(
        endpoint="autoloop-dev-churn", artifacts_bucket="art", role_arn=CTX.role_arn, instance_type="ml.m5.large",
        constraints_uri="s3://art/c.json", statistics_uri="s3://art/s.json", settings=MONITORING,
        max_runtime_seconds=900, tags=[], security=security)
    return {
        "preprocess": ("CreateProcessingJob", jobs.preprocess_request(ctx, "s3://data/incoming/churn/x.csv")),
        "train": ("CreateTrainingJob", jobs.training_request(ctx, "s3://art/t", "s3://art/v", {"C": 1}, "churned")),
        "evaluate": ("CreateProcessingJob", jobs.evaluate_request(
            ctx, "s3://art/m.tar.gz", "s3://art/t", "churned", metric="auc", champion_model="s3://art/c.tar.gz",
            champion_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/autoloop-dev-churn/3")),
        "baseline": ("CreateProcessingJob", monitoring.baseline_request(ctx, "s3://art/b", "monitor:1")),
        "calibrate": ("CreateProcessingJob", monitoring.calibrate_request(ctx, "s3://art/b", "s3://art/c", MONITORING)),
        "prepare": ("CreateProcessingJob", batch.prepare_request(ctx, BATCH_PLAN, "s3://art/config/models/churn.json")),
        "transform": ("CreateTransformJob", batch.transform_request(ctx, BATCH_PLAN, "s3://art/clean", 6)),
        "monitor": ("CreateProcessingJob", batch.monitor_request(ctx, BATCH_PLAN, "s3://art/mon", "monitor:1")),
        "schedule": ("CreateMonitoringSchedule", schedule),
    }


def job_definition(operation: str, request: dict) -> dict:
    """The part of a request that describes the job (a schedule's job definition)."""
    if operation == "CreateMonitoringSchedule":
        return request["MonitoringScheduleConfig"]["MonitoringJobDefinition"]
    return request


@pytest.mark.parametrize("security", [jobs.JobSecurity(), SECURE], ids=["defaults", "kms-and-vpc"])
def test_every_job_request_is_valid_bounded_isolated_and_encrypted_as_configured(security):
    requests = every_job_request(security)
    assert set(requests) >= set(jobs.STEP_KIND) | set(batch.BATCH_STEP_KIND)
    for step, (operation, request) in requests.items():
        validate_parameters(request, SAGEMAKER.operation_model(operation).input_shape)
        job = job_definition(operation, request)
        key = security.kms_key_arn or None
        if operation == "CreateTransformJob":
            # No StoppingCondition in this API: each request to the model is bounded instead;
            # isolation and the VPC are the model's (see the model tests below).
            assert job["ModelClientConfig"]["InvocationsTimeoutInSeconds"] <= 3600, step
            assert job["ModelClientConfig"]["InvocationsMaxRetries"] <= 3, step
            assert job["TransformOutput"].get("KmsKeyId") == key, step
            assert job["TransformResources"].get("VolumeKmsKeyId") == key, step
            continue
        assert 60 <= job["StoppingCondition"]["MaxRuntimeInSeconds"] <= 900, step
        if operation == "CreateTrainingJob":
            assert job["EnableNetworkIsolation"] is True, step
            assert job["OutputDataConfig"].get("KmsKeyId") == key, step
            assert job["ResourceConfig"].get("VolumeKmsKeyId") == key, step
            vpc = job.get("VpcConfig")
        else:
            output = job.get("ProcessingOutputConfig") or job["MonitoringOutputConfig"]
            resources = job.get("ProcessingResources") or job["MonitoringResources"]
            assert job["NetworkConfig"]["EnableNetworkIsolation"] is True, step
            assert output.get("KmsKeyId") == key, step
            assert resources["ClusterConfig"].get("VolumeKmsKeyId") == key, step
            vpc = job["NetworkConfig"].get("VpcConfig")
        if security.subnet_ids:
            assert vpc == {"Subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "SecurityGroupIds": ["sg-0a1b2c3d"]}, step
        else:
            assert vpc is None, step


@pytest.mark.parametrize("security", [jobs.JobSecurity(), SECURE], ids=["defaults", "kms-and-vpc"])
def test_models_are_isolated_and_endpoint_configs_encrypted_as_configured(security):
    model = deploy.model_request(DEPLOY_PLAN, CTX.role_arn, [], security)
    validate_parameters(model, SAGEMAKER.operation_model("CreateModel").input_shape)
    assert model["EnableNetworkIsolation"] is True
    assert model.get("VpcConfig") == (security.vpc() or {}).get("VpcConfig")
    config = deploy.endpoint_config_request(DEPLOY_PLAN, capture_uri="s3://art/datacapture", sampling_percentage=100,
                                            instance_type="ml.m5.large", serverless_memory_mb=None, tags=[],
                                            security=security)
    validate_parameters(config, SAGEMAKER.operation_model("CreateEndpointConfig").input_shape)
    assert config.get("KmsKeyId") == (security.kms_key_arn or None)
    assert config["DataCaptureConfig"].get("KmsKeyId") == (security.kms_key_arn or None)


@pytest.mark.parametrize("security", [jobs.JobSecurity(), jobs.JobSecurity(kms_key_arn=SECURE.kms_key_arn)],
                         ids=["defaults", "kms"])
def test_serverless_requests_leave_out_what_serverless_inference_does_not_support(security):
    """AWS's serverless inference guide: no network isolation, VPC, data capture or KMS volume key."""
    plan = DEPLOY_PLAN.model_copy(update={"serverless_memory_mb": 2048, "data_capture": False})
    model = deploy.model_request(plan, CTX.role_arn, [], security)
    validate_parameters(model, SAGEMAKER.operation_model("CreateModel").input_shape)
    assert "EnableNetworkIsolation" not in model and "VpcConfig" not in model
    config = deploy.endpoint_config_request(plan, capture_uri="s3://c", sampling_percentage=100,
                                            instance_type="ml.m5.large", serverless_memory_mb=2048, tags=[],
                                            security=security)
    validate_parameters(config, SAGEMAKER.operation_model("CreateEndpointConfig").input_shape)
    assert "DataCaptureConfig" not in config and "KmsKeyId" not in config
    assert config["ProductionVariants"] == [{"VariantName": "AllTraffic", "ModelName": plan.model_name,
                                             "InitialVariantWeight": 1.0,
                                             "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]
    assert deploy.is_serverless_config(config) and not deploy.is_serverless_config(
        deploy.endpoint_config_request(DEPLOY_PLAN, capture_uri="s3://c", sampling_percentage=100,
                                       instance_type="ml.m5.large", serverless_memory_mb=None, tags=[]))


def test_spot_training_waits_at_least_the_runtime_and_checkpoints_under_the_run():
    _, train = every_job_request(jobs.JobSecurity(), spot=True)["train"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    assert train["CheckpointConfig"] == {"S3Uri": "s3://art/runs/churn/churn-0123456789/train/checkpoints",
                                         "LocalPath": "/opt/ml/checkpoints"}
    assert jobs.SpotTraining(True, 300).stopping_condition(900)["MaxWaitTimeInSeconds"] == 900
    assert jobs.SpotTraining(True, 5000).stopping_condition(900)["MaxWaitTimeInSeconds"] == 5000
    _, on_demand = every_job_request(jobs.JobSecurity())["train"]
    assert not {"EnableManagedSpotTraining", "CheckpointConfig"} & set(on_demand)
    assert on_demand["StoppingCondition"] == {"MaxRuntimeInSeconds": 900}


def test_a_half_configured_vpc_is_refused():
    with pytest.raises(ValueError, match="both subnet ids and security group ids"):
        jobs.JobSecurity.parse("", "subnet-0a1b2c3d", "")
    assert jobs.JobSecurity.parse(" ", " , ", "") == jobs.JobSecurity()
