"""The SageMaker SDK v3 against a running local AWS (``autoloop local serve``), as a user runs it.

Run by tests/sdk/test_sdk_v3.py with the SDK's own venv (``make sdk3``), never imported by
the project: ``python v3_flow.py <server.json> <work dir>``, with ``AWS_ENDPOINT_URL`` and
fake credentials in the environment. Prints one JSON object (what each step saw) on its last
line. Steps: the role check (``iam:SimulatePrincipalPolicy``), ``ModelTrainer.train`` (source
code, compute, an input channel; the SDK's own ``sm_drivers`` hard-code ``/opt/ml``),
``ModelBuilder.build``/``deploy`` and an invocation of the endpoint, and the registry
(``ModelPackageGroup``, ``ModelPackage`` and its approval) through ``sagemaker.core.resources``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

TRAIN = '''
import glob, json, os, shutil
rows = []
for name in glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv")):
    with open(name) as fh:
        rows += [[float(v) for v in line.split(",")] for line in fh.read().split()]
slope = sum(y for _, y in rows) / sum(x for x, _ in rows)
os.makedirs("/opt/ml/model/code", exist_ok=True)
with open("/opt/ml/model/model.json", "w") as fh:
    json.dump({"slope": slope, "rows": len(rows)}, fh)
shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference.py"), "/opt/ml/model/code/")
print("trained slope", slope)
'''

INFERENCE = '''
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as fh:
        return json.load(fh)

def input_fn(body, content_type):
    return [float(v) for v in body.strip().split(",")]

def predict_fn(values, model):
    return [model["slope"] * v for v in values]

def output_fn(prediction, accept):
    return json.dumps({"predictions": prediction}), "application/json"
'''


def main(state_file: str, work: str) -> dict[str, object]:
    from sagemaker.core.helper.iam_role_resolver import resolve_and_validate_role
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.resources import ModelPackage, ModelPackageGroup
    from sagemaker.serve.mode.function_pointers import Mode
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode

    outputs = json.loads(Path(state_file).read_text())["outputs"]
    bucket, role = outputs["ArtifactsBucketName"], outputs["SageMakerExecutionRoleArn"]
    boto_session = boto3.Session(region_name="us-east-1")
    session = Session(boto_session=boto_session, default_bucket=bucket)
    seen: dict[str, object] = {}
    started = time.monotonic()

    seen["validated_role"] = resolve_and_validate_role(
        provided_role=role, role_type="training", sagemaker_session=session)

    source = Path(work) / "source"
    source.mkdir(parents=True, exist_ok=True)
    (source / "train.py").write_text(TRAIN)
    (source / "inference.py").write_text(INFERENCE)
    boto_session.client("s3").put_object(Bucket=bucket, Key="sdk3/data/train.csv", Body=b"1,2\n2,4\n3,6\n")
    trainer = ModelTrainer(
        training_image=IMAGE,
        source_code=SourceCode(source_dir=str(source), entry_script="train.py"),
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        role=role, sagemaker_session=session, base_job_name="sdk3-train",
    )  # fmt: skip
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=f"s3://{bucket}/sdk3/data/")],
                  wait=True, logs=False)
    job = trainer._latest_training_job
    job.refresh()
    seen["training_status"] = job.training_job_status
    artifacts = job.model_artifacts.s3_model_artifacts
    seen["model_artifacts"] = artifacts
    seen["train_seconds"] = round(time.monotonic() - started, 2)

    builder = ModelBuilder(
        s3_model_data_url=artifacts, image_uri=IMAGE, role_arn=role, sagemaker_session=session,
        mode=Mode.SAGEMAKER_ENDPOINT, instance_type="ml.m5.large",
        env_vars={"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
    )  # fmt: skip
    model = builder.build(model_name="sdk3-model")
    seen["model_name"] = model.model_name
    # deploy(wait=True) polls every 30 s (ModelBuilder._wait_for_endpoint); wait at 1 s instead
    endpoint = builder.deploy(endpoint_name="sdk3-endpoint", initial_instance_count=1, wait=False)
    endpoint.wait_for_status("InService", poll=1, timeout=120)
    answer = endpoint.invoke(body="1,2.5", content_type="text/csv", accept="application/json")
    seen["endpoint_status"] = endpoint.endpoint_status
    seen["prediction"] = json.loads(answer.body.read())

    group = ModelPackageGroup.create(model_package_group_name="sdk3-group",
                                     model_package_group_description="SDK v3 on the local AWS",
                                     session=boto_session)  # fmt: skip
    # ModelPackage.create of sagemaker-core 2.27 reads "ModelPackageName" from the
    # CreateModelPackage answer, which the API (botocore's model) does not have: register through
    # ModelBuilder.register, then use the ModelPackage resource
    registered = builder.register(
        model_package_group_name=group.model_package_group_name, content_types=["text/csv"],
        response_types=["application/json"], inference_instances=["ml.m5.large"],
        approval_status="PendingManualApproval",
    )  # fmt: skip
    arn = getattr(registered, "model_package_arn", None) or str(registered)
    package = ModelPackage.get(model_package_name=arn, session=boto_session)
    seen["registered_status"] = package.model_approval_status
    package.update(model_approval_status="Approved")
    package.refresh()
    seen["package_status"] = package.model_approval_status
    seen["packages"] = [p.model_package_arn for p in ModelPackage.get_all(
        model_package_group_name="sdk3-group", session=boto_session)]
    seen["package_arn"] = package.model_package_arn
    seen["seconds"] = round(time.monotonic() - started, 2)
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
