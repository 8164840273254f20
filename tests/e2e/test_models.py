"""A team's own model, added as a folder: the fraud example (its own XGBoost train.py) through
the loop on the local AWS, beside churn, with no template edit: upload -> its training script in
a training job -> Autoloop's evaluation and gate -> registration in its own package group ->
deployment -> its endpoint serves fraud probabilities."""

from __future__ import annotations

import io
import json

import pytest

from autoloop_cli import datagen, executions
from tests.e2e.conftest import boot
from tests.support import find_execution, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local():
    yield from boot("autoloop-models", {"MonitoringSampleSize": "400"})


def test_the_fraud_model_trains_with_its_own_script_and_serves(local):
    rows = datagen.generate_fraud(4000, seed=11)
    run = local.run(rows.to_csv(index=False).encode(), "incoming/fraud/2026-11.csv")
    assert run.status == "SUCCEEDED", run.description.get("cause")
    assert run.path[-3:] == ["RegisterModel", "NotifySuccess", "Succeeded"]
    sm, logs = local.client("sagemaker"), local.client("logs")

    # its own script ran in the training job: XGBoost, from its bundle
    job = f"{run.description['name']}-train"
    lines = [e["message"] for e in logs.filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/")["events"]]
    assert any("fitting XGBClassifier" in line for line in lines), lines[-10:]
    described = sm.describe_training_job(TrainingJobName=job)
    code = next(c for c in described["InputDataConfig"] if c["ChannelName"] == "code")
    assert code["DataSource"]["S3DataSource"]["S3Uri"].endswith("/code/models/fraud/sourcedir.tar.gz")
    # in the XGBoost image publish resolved for the stack's region (locally: the venv's xgboost)
    xgboost = f"683313688378.dkr.ecr.{sm.meta.region_name}.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert described["AlgorithmSpecification"]["TrainingImage"] == xgboost

    # registered in its own group, judged by its own threshold on Autoloop's evaluation
    package = run.output["model_package"]["arn"]
    assert f"package/{local.stack.name}-fraud/" in package
    gate = run.output["gate"]
    assert gate["metric_name"] == "auc" and gate["metric"] >= 0.7 and gate["verdict"] == "Promote"
    registered = sm.describe_model_package(ModelPackageName=package)
    assert registered["InferenceSpecification"]["Containers"][0]["Image"] == xgboost
    lineage = registered["CustomerMetadataProperties"]
    assert lineage["autoloop:framework"] == "xgboost" and lineage["autoloop:training-job"] == job
    assert lineage["autoloop:source"].endswith("/incoming/fraud/2026-11.csv")

    # deployed (dev approves on registration) and serving probabilities
    sfn = local.client("stepfunctions")
    deploy = find_execution(local.outputs["DeployPipelineArn"], lambda e: True, 60, sfn)
    assert executions.follow(sfn, deploy, timeout=240)["status"] == "SUCCEEDED"
    endpoint = f"{local.stack.name}-fraud"
    wait_until(lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService", 120,
               "the fraud endpoint in service", interval=0.5)
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
    served = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert served["PrimaryContainer"]["Image"] == xgboost
    sample = datagen.generate_fraud(50, seed=12)
    body = io.StringIO()
    sample.drop(columns=[datagen.FRAUD_LABEL]).to_csv(body, index=False, header=False)
    answer = local.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body.getvalue().encode())
    values = json.loads(answer["Body"].read())["predictions"]
    assert len(values) == 50 and all(0.0 <= v <= 1.0 for v in values) and len(set(values)) > 10
