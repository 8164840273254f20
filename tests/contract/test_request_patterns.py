"""Every request the code builds fits the service model's patterns and limits, at the limits.

botocore checks types and minimum lengths; moto checks almost nothing; AWS checks every
``pattern``, ``max`` and enum, but only when the request is sent, after the paid jobs before
it. ``tests/request_rules.py`` checks them here. This module proves the checker catches
what AWS refuses, then builds every SageMaker request with the longest names the system
allows (a stack name of ``naming.MAX_STACK_NAME`` characters, a model name of
``naming.MAX_MODEL_NAME``, the highest attempt and package version) and source keys that
real users upload (``data (1).csv``, ``jan,feb.csv``, ``x&y.csv``, unicode, a tab, an emoji, a
1024-byte key). The handlers' own requests, made against moto, are checked in
``tests/handlers`` (its conftest validates every request a handler test sends) and in
``test_handler_requests_at_the_limits`` below.
"""

from __future__ import annotations

import pytest

from autoloop import batch, deploy, jobs, monitoring, naming, registry
from autoloop.batch import BatchPlan, Monitoring, Package
from autoloop.state import DeployPlan
from tests.request_rules import compiled, java_length, translate, violations

LONG_STACK = ("autoloop-" + "production-eu-west-1" * 2)[: naming.MAX_STACK_NAME - 1] + "x"
LONG_MODEL = "customer-churn-v2-" + "x" * (naming.MAX_MODEL_NAME - len("customer-churn-v2-"))
BUCKET = f"{LONG_STACK}-databucket-1a2b3c4d5e6f"[:63]
ARTIFACTS = f"{LONG_STACK}-artifactsbucket-1a2b3c4d"[:63]
ROLE = f"arn:aws:iam::123456789012:role/{LONG_STACK}-SageMakerExecutionRole-ABCDEFGHIJKL"
KEYS = [
    f"incoming/{LONG_MODEL}/data (1).csv",
    f"incoming/{LONG_MODEL}/jan,feb.csv",
    f"incoming/{LONG_MODEL}/x&y.csv",
    f"incoming/{LONG_MODEL}/Übersicht März – 2026 [final] #2 (copy).csv",
    f"incoming/{LONG_MODEL}/tab\there.csv",
    f"incoming/{LONG_MODEL}/emoji \U0001F600 data.csv",
    f"incoming/{LONG_MODEL}/" + "é" * ((1024 - len(f"incoming/{LONG_MODEL}/.csv")) // 2) + ".csv",  # 1024 bytes
    f"incoming/{LONG_MODEL}/" + "a" * (1024 - len(f"s3://{BUCKET}/incoming/{LONG_MODEL}/.csv")) + ".csv",
]
# A key S3 takes (1024 bytes) but whose s3:// URI SageMaker does not (1024 characters at most):
# StartPipeline refuses it, before any run.
TOO_LONG_KEY = f"incoming/{LONG_MODEL}/" + "a" * (1024 - len(f"incoming/{LONG_MODEL}/.csv")) + ".csv"
SECURE = jobs.JobSecurity.parse("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                "subnet-0a1b2c3d,subnet-4e5f6a7b", "sg-0a1b2c3d")


def test_the_limits_are_the_ones_the_names_allow():
    assert naming.is_valid_model_name(LONG_MODEL) and len(LONG_MODEL) == naming.MAX_MODEL_NAME
    assert not naming.is_valid_model_name(LONG_MODEL + "x")
    assert len(LONG_STACK) == naming.MAX_STACK_NAME and LONG_STACK == LONG_STACK.lower()
    assert len(KEYS[-2].encode()) == 1024 and len(f"s3://{BUCKET}/{KEYS[-1]}") == 1024
    assert len(TOO_LONG_KEY) == 1024


# --------------------------------------------------------------------------- the checker
def test_the_checker_catches_what_aws_refuses():
    old_metadata = {"ModelPackageGroupName": "g", "CustomerMetadataProperties": {
        "autoloop:source": f"s3://{BUCKET}/incoming/churn/data (1).csv"}}
    [problem] = violations("sagemaker", "CreateModelPackage", old_metadata)
    assert "autoloop:source" in problem and "does not match" in problem
    assert violations("sagemaker", "CreateMonitoringSchedule", {
        "MonitoringScheduleName": "a" * 63 + "-dq", "MonitoringScheduleConfig": {}}) != []
    assert any("above the maximum 50" in v for v in violations("sagemaker", "CreateModel", {
        "ModelName": "m", "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]}))
    assert any("is not one of" in v for v in violations("sagemaker", "CreateEndpointConfig", {
        "EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v", "InstanceType": "ml.bogus"}]}))
    assert any("key 'bad key!'" in v for v in violations("sagemaker", "CreateProcessingJob", {
        "ProcessingJobName": "j", "Environment": {"bad key!": "v"}}))
    assert any("documented rule" in v for v in violations("stepfunctions", "StartExecution", {
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "name": "run (1)"}))
    assert any("above the maximum 32768" in v for v in violations("stepfunctions", "SendTaskFailure", {
        "taskToken": "t", "cause": "x" * 32769}))
    assert any("is not one of" in v for v in violations("dynamodb", "PutItem", {
        "TableName": "t", "Item": {}, "ReturnValues": "EVERYTHING"}))


def test_java_patterns_are_translated_faithfully():
    tag = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
    assert compiled(tag).fullmatch("Übersicht März 2026 @team/v1")
    assert not compiled(tag).fullmatch("x&y")
    assert compiled(r"\d+").fullmatch("123") and not compiled(r"\d+").fullmatch("١٢٣")  # Java's \d is ASCII
    assert compiled(r"\p{Alnum}+").fullmatch("abc1") and not compiled(r"\p{Alnum}+").fullmatch("é")
    any_text = r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"  # surrogate pair = U+10000..
    assert compiled(any_text).fullmatch("a \U0001F600") and not compiled(any_text).fullmatch("\x01")
    assert translate(r"[\S\s]*") != r"[\S\s]*" and compiled(r"[\S\s]*").fullmatch("a\nb")
    assert java_length("\U0001F600") == 2


# --------------------------------------------------------------------------- the fixes
@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_a_package_registered_from_any_key_is_accepted_and_names_its_source(key):
    request = registry.model_package_request(
        group=registry.package_group_name(LONG_STACK, LONG_MODEL), run_id=naming.run_id(LONG_MODEL, BUCKET, key, "v"),
        image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        model_artifacts=f"s3://{ARTIFACTS}/runs/m/r/train/output/model.tar.gz",
        evaluation_uri=f"s3://{ARTIFACTS}/runs/m/r/evaluate/evaluation/evaluation.json", metric_name="auc",
        metric=0.91, approval_status="Approved", source_uri=f"s3://{BUCKET}/{key}", trigger={"type": "drift"})
    assert violations("sagemaker", "CreateModelPackage", {**request, "ClientToken": request["Tags"][0]["Value"]}) == []
    source = request["CustomerMetadataProperties"]["autoloop:source"]
    assert source.startswith(f"s3://{BUCKET}/incoming/{LONG_MODEL}/")
    description = request["ModelPackageDescription"]
    if java_length(f"s3://{BUCKET}/{key}") < 900 and "\t" not in key:
        assert description.endswith(f"s3://{BUCKET}/{key}")  # the exact source, punctuation and all


def test_schedule_names_fit_and_stay_apart_at_the_longest_endpoint():
    endpoint = deploy.endpoint_name(LONG_STACK, LONG_MODEL)
    assert len(endpoint) == naming.MAX_SAGEMAKER_NAME
    other = deploy.endpoint_name(LONG_STACK, LONG_MODEL[:-1] + "y")
    name, other_name = monitoring.schedule_name(endpoint), monitoring.schedule_name(other)
    assert len(name) <= 63 and name != other_name and name == monitoring.schedule_name(endpoint)
    assert name.startswith(f"{LONG_STACK}-") and name.endswith("-dq")
    assert monitoring.schedule_name("autoloop-dev-churn") == "autoloop-dev-churn-dq"  # short names unchanged


def test_fit_name_never_leaves_a_hyphen_before_its_digest():
    name = naming.fit_name("a" * 50 + "-" + "b" * 20, "-dq")
    assert len(name) == 63 and "--" not in name and compiled(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}").fullmatch(name)


# --------------------------------------------------------------------------- every builder, at the limits
def longest_names() -> dict[str, str]:
    """Every name the system derives, at the longest stack and model names."""
    training_run = naming.run_id(LONG_MODEL, BUCKET, KEYS[0], "v", attempt=99)
    batch_run = naming.batch_run_id(LONG_MODEL, "2026-10", BUCKET, attempt=batch.MAX_ATTEMPTS)
    endpoint = deploy.endpoint_name(LONG_STACK, LONG_MODEL)
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{LONG_STACK}-{LONG_MODEL}/123456"
    names = {f"job {step}": naming.job_name(training_run, step) for step in naming.JOB_STEPS}
    names |= {f"batch job {step}": naming.batch_job_name(batch_run, step) for step in naming.BATCH_STEPS}
    names |= {
        "execution": training_run, "batch execution": batch_run, "endpoint": endpoint,
        "package group": registry.package_group_name(LONG_STACK, LONG_MODEL),
        "model and config": deploy.versioned_name(endpoint, package, 123456),
        "batch model": batch.model_name(LONG_STACK, LONG_MODEL, package, 123456),
        "schedule": monitoring.schedule_name(endpoint),
    }
    return names


def test_every_generated_name_fits_its_limit_at_the_longest_stack_and_model():
    pattern = compiled(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
    for what, name in longest_names().items():
        limit = naming.MAX_EXECUTION_NAME if "execution" in what else naming.MAX_SAGEMAKER_NAME
        assert len(name) <= limit and pattern.fullmatch(name), (what, name, len(name))
    for alarm in deploy.rollback_alarms(longest_names()["endpoint"]):
        assert len(alarm) <= 255  # PutMetricAlarm's AlarmName


def every_request(security: jobs.JobSecurity, key: str) -> list[tuple[str, dict]]:
    """(operation, request) of every SageMaker request a builder makes, at the limits."""
    names = longest_names()
    run = names["execution"]
    ctx = jobs.JobContext(run_id=run, model=LONG_MODEL, artifacts_bucket=ARTIFACTS, role_arn=ROLE,
                          image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                          instance_type="ml.m5.large", max_runtime_seconds=432000, stack_name=LONG_STACK,
                          security=security, spot=jobs.SpotTraining(enabled=True))
    batch_ctx = jobs.JobContext(**{**ctx.__dict__, "run_id": names["batch execution"]})
    settings = monitoring.MonitoringSettings(image_uri="156813124566.dkr.ecr.us-east-1.amazonaws.com/"
                                             "sagemaker-model-monitor-analyzer")
    month = "2026-10"
    plan = BatchPlan(**{
        "action": "score", "reason": "r", "model": LONG_MODEL, "month": month, "run_id": batch_ctx.run_id,
        "package": Package(arn="arn:p", version=123456, training_run_id=run), "model_name": names["batch model"],
        "endpoint_name": names["endpoint"], "input_uri": f"s3://{BUCKET}/{batch.input_prefix(LONG_MODEL, month)}",
        "input_digest": "0123456789abcdef", "input_filter": "$[2:]", "output_filter": "$[0,1,-1]",
        "monitoring": Monitoring(constraints_uri=f"s3://{ARTIFACTS}/{naming.run_prefix(LONG_MODEL, run)}/c.json",
                                 statistics_uri=f"s3://{ARTIFACTS}/{naming.run_prefix(LONG_MODEL, run)}/s.json"),
    })
    endpoint = names["endpoint"]
    deploy_plan = DeployPlan(action="update", reason="r", model=LONG_MODEL, endpoint_name=endpoint,
                             package_arn="arn:p", package_version=123456, run_id=run,
                             model_name=names["model and config"], config_name=names["model and config"],
                             image=ctx.image_uri, model_data_url=ctx.uri("train", "output", "model.tar.gz"),
                             environment=dict(registry.INFERENCE_ENV))
    tags = [{"Key": "autoloop:model", "Value": LONG_MODEL}, {"Key": "autoloop:stack", "Value": LONG_STACK},
            {"Key": "autoloop:model-package", "Value": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/"
                                                      f"{LONG_STACK}-{LONG_MODEL}/123456"},
            {"Key": naming.RUN_ID_KEY, "Value": run}]
    return [
        ("CreateProcessingJob", jobs.preprocess_request(ctx, f"s3://{BUCKET}/{key}")),
        ("CreateTrainingJob", jobs.training_request(ctx, ctx.uri("preprocess", "train"),
                                                    ctx.uri("preprocess", "validation"), {"C": 1.0, "max-iter": 200},
                                                    "churned")),
        ("CreateProcessingJob", jobs.evaluate_request(ctx, ctx.uri("train", "output", "model.tar.gz"),
                                                      ctx.uri("preprocess", "test"), "churned")),
        ("CreateProcessingJob", monitoring.baseline_request(ctx, ctx.uri("preprocess", "baseline"),
                                                            settings.image_uri)),
        ("CreateProcessingJob", monitoring.calibrate_request(ctx, ctx.uri("preprocess", "baseline"),
                                                             ctx.uri("baseline"), settings)),
        ("CreateMonitoringSchedule", monitoring.schedule_request(
            endpoint=endpoint, artifacts_bucket=ARTIFACTS, role_arn=ROLE, instance_type="ml.m5.large",
            constraints_uri=ctx.uri("calibrate", "constraints.json"), statistics_uri=ctx.uri("baseline", "s.json"),
            settings=settings, max_runtime_seconds=432000, tags=tags[1:2], security=security)),
        ("CreateProcessingJob", batch.prepare_request(batch_ctx, plan, f"s3://{ARTIFACTS}/{jobs.config_key(LONG_MODEL)}")),
        ("CreateTransformJob", batch.transform_request(batch_ctx, plan, batch_ctx.uri("prepare", "clean"), 100)),
        ("CreateProcessingJob", batch.monitor_request(batch_ctx, plan, batch_ctx.uri("prepare", "monitor"),
                                                      settings.image_uri)),
        ("CreateModel", deploy.model_request(deploy_plan, ROLE, tags, security)),
        ("CreateEndpointConfig", deploy.endpoint_config_request(
            deploy_plan, capture_uri=f"s3://{ARTIFACTS}/datacapture", sampling_percentage=100,
            instance_type="ml.m5.large", serverless_memory_mb=None, tags=tags, security=security)),
        ("CreateEndpointConfig", deploy.endpoint_config_request(
            deploy_plan, capture_uri=f"s3://{ARTIFACTS}/datacapture", sampling_percentage=100,
            instance_type="ml.m5.large", serverless_memory_mb=6144, tags=tags, security=security)),
        ("UpdateEndpoint", {
            "EndpointName": endpoint, "EndpointConfigName": deploy_plan.config_name,
            "DeploymentConfig": deploy.deployment_config(deploy.rollback_alarms(endpoint), 3600, 3600)}),
        ("CreateModelPackageGroup", registry.package_group_request(
            registry.package_group_name(LONG_STACK, LONG_MODEL), LONG_STACK, LONG_MODEL)),
    ]


def test_the_per_model_alarm_and_schedule_requests_fit_their_models_at_the_limits():
    """What the deploy step puts for each model (no template names them), at the longest names."""
    endpoint = longest_names()["endpoint"]
    problems = [f"PutMetricAlarm: {v}" for request in deploy.rollback_alarm_requests(
        endpoint, stack=LONG_STACK, model=LONG_MODEL) for v in violations("cloudwatch", "PutMetricAlarm", request)]
    schedule = batch.schedule_request(stack=LONG_STACK, model=LONG_MODEL, target_arn=f"arn:aws:states:us-east-1:"
                                      f"123456789012:stateMachine:{LONG_STACK}-batch-transform", role_arn=ROLE)
    problems += [f"CreateSchedule: {v}" for v in violations("scheduler", "CreateSchedule", schedule)]
    assert problems == []


@pytest.mark.parametrize("security", [jobs.JobSecurity(), SECURE], ids=["defaults", "kms-and-vpc"])
@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_every_sagemaker_request_fits_the_model_at_the_limits(security, key):
    problems = [f"{op}: {v}" for op, request in every_request(security, key)
                for v in violations("sagemaker", op, request)]
    assert problems == []


def test_a_packages_lineage_fits_the_registrys_metadata_rules():
    """Hyperparameters of any text and length, an image by digest, an ETag for a version: the
    lineage metadata still matches CustomerMetadataProperties' pattern and 256-character limit."""
    lineage = registry.Lineage(
        task="multiclass", framework="pytorch", entry_point="train.py",
        training_image="111122223333.dkr.ecr.us-east-1.amazonaws.com/team/model@sha256:" + "f" * 64,
        hyperparameters={"layers": '[64, 32] & "relu"', "note": "x" * 300, "lr": 0.001},
        training_job=naming.job_name(naming.run_id(LONG_MODEL, BUCKET, "incoming/k.csv", "v"), "train"),
        source_version='"0123456789abcdef"', bundle_sha256="a" * 64,
    )
    request = registry.model_package_request(
        group=registry.package_group_name(LONG_STACK, LONG_MODEL), run_id="r", image_uri=lineage.training_image,
        model_artifacts=f"s3://{ARTIFACTS}/runs/m/r/train/output/model.tar.gz",
        evaluation_uri=f"s3://{ARTIFACTS}/runs/m/r/evaluate/evaluation/evaluation.json", metric_name="accuracy",
        metric=0.8, approval_status="Approved", source_uri=f"s3://{BUCKET}/incoming/k.csv", lineage=lineage,
        champion_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1", champion_metric=0.7,
        holdout_rows=300, direction="higher")
    assert violations("sagemaker", "CreateModelPackage", {**request, "ClientToken": "t"}) == []
    props = request["CustomerMetadataProperties"]
    assert props["autoloop:hyperparameters"].startswith("layers=_64_ 32_ _ _relu_ note=xxx")
    assert len(props["autoloop:hyperparameters"]) == 256 and props["autoloop:training-image"] == lineage.training_image
