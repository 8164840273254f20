"""The SageMaker SDK v2 against a running local AWS (``autoloop local serve``), as a user runs it.

Run by tests/sdk/test_sdks.py with the SDK's own venv (``make sdk2``), never imported by the
project: ``python v2_flow.py <server.json> <work dir>``, with ``AWS_ENDPOINT_URL`` and fake
credentials in the environment. Prints one JSON object (what each step saw) on its last line.
Steps, in the SDK's script mode: ``SKLearn(...).fit`` (the SDK uploads ``source_dir`` as
``sourcedir.tar.gz`` and names the entry point in ``sagemaker_program``), the estimator's
``deploy`` and a ``Predictor``, ``register`` into a model package group and
``ModelPackage.update_approval_status``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3

TRAIN = '''
import argparse, glob, json, os


def train():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    rows = []
    for name in glob.glob(os.path.join(args.train, "*.csv")):
        with open(name) as fh:
            rows += [[float(v) for v in line.split(",")] for line in fh.read().split()]
    slope = args.scale * sum(y for _, y in rows) / sum(x for x, _ in rows)
    with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
        json.dump({"slope": slope, "rows": len(rows)}, fh)
    print("trained slope", slope)


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as fh:
        return json.load(fh)


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return [float(v) for v in text.strip().split(",")]


def predict_fn(values, model):
    return [model["slope"] * v for v in values]


def output_fn(prediction, accept):
    return json.dumps({"predictions": prediction})


if __name__ == "__main__":  # the serving container imports this file for its *_fn
    train()
'''


def main(state_file: str, work: str) -> dict[str, object]:
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.model import ModelPackage
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn.estimator import SKLearn

    outputs = json.loads(Path(state_file).read_text())["outputs"]
    bucket, role = outputs["ArtifactsBucketName"], outputs["SageMakerExecutionRoleArn"]
    boto_session = boto3.Session(region_name="us-east-1")
    session = sagemaker.Session(boto_session=boto_session, default_bucket=bucket)
    seen: dict[str, object] = {"sdk": sagemaker.__version__}
    started = time.monotonic()

    source = Path(work) / "source"
    source.mkdir(parents=True, exist_ok=True)
    (source / "train.py").write_text(TRAIN)
    boto_session.client("s3").put_object(Bucket=bucket, Key="sdk2/data/train.csv", Body=b"1,3\n2,6\n3,9\n")
    estimator = SKLearn(
        entry_point="train.py", source_dir=str(source), framework_version="1.2-1", py_version="py3",
        role=role, instance_type="ml.m5.large", instance_count=1, sagemaker_session=session,
        base_job_name="sdk2-train", hyperparameters={"scale": 1.0},
    )
    estimator.fit({"train": f"s3://{bucket}/sdk2/data/"}, wait=True, logs=False)
    job = session.sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    seen["training_status"] = job["TrainingJobStatus"]
    seen["model_artifacts"] = job["ModelArtifacts"]["S3ModelArtifacts"]
    seen["program"] = json.loads(job["HyperParameters"]["sagemaker_program"])
    seen["train_seconds"] = round(time.monotonic() - started, 2)

    # deploy(wait=True) polls every 30 s; the SDK's own wait at 1 s instead
    estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk2-endpoint",
                     wait=False)
    described = session.wait_for_endpoint("sdk2-endpoint", poll=1)
    seen["endpoint_status"] = described["EndpointStatus"]
    predictor = Predictor("sdk2-endpoint", sagemaker_session=session, serializer=CSVSerializer(),
                          deserializer=JSONDeserializer())
    seen["prediction"] = predictor.predict([1, 2.5])

    session.sagemaker_client.create_model_package_group(ModelPackageGroupName="sdk2-group")
    registered = estimator.register(
        content_types=["text/csv"], response_types=["application/json"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="sdk2-group",
        approval_status="PendingManualApproval",
    )
    arn = registered.model_package_arn
    package = ModelPackage(role=role, model_package_arn=arn, sagemaker_session=session)
    seen["registered_status"] = session.sagemaker_client.describe_model_package(
        ModelPackageName=arn)["ModelApprovalStatus"]
    package.update_approval_status("Approved")
    seen["package_status"] = session.sagemaker_client.describe_model_package(
        ModelPackageName=arn)["ModelApprovalStatus"]
    seen["packages"] = [p["ModelPackageArn"] for p in session.sagemaker_client.list_model_packages(
        ModelPackageGroupName="sdk2-group")["ModelPackageSummaryList"]]
    seen["package_arn"] = arn
    seen["seconds"] = round(time.monotonic() - started, 2)
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
