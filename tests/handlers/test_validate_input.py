import boto3
import pytest

from autoloop import errors
from autoloop_cli.datagen import generate
from tests.conftest import load_handler


@pytest.fixture
def validate(deployed):
    deployed.use_env("ValidateInputFunction")
    return load_handler("validate_input").handler


def upload(deployed, body: bytes, key="incoming/churn/x.csv"):
    response = boto3.client("s3").put_object(Bucket=deployed.data_bucket, Key=key, Body=body)
    return {
        "run_id": "churn-0123456789", "model": key.split("/")[1],
        "source": {"bucket": deployed.data_bucket, "key": key, "version_id": response.get("VersionId"),
                   "etag": response["ETag"].strip('"'), "size": len(body)},
    }


def good_csv(rows=400) -> bytes:
    return generate(rows, seed=1).to_csv(index=False).encode()


def test_valid_upload_returns_the_dataset_and_the_model_settings(deployed, validate, lambda_context):
    result = validate(upload(deployed, good_csv()), lambda_context)
    assert result["rows"] == 400 and result["label"] == "churned" and result["metric"] == "auc"
    assert result["hyperparameters"]["C"] == 1.0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", errors.EmptyDataset),
        (b"\x00\x01\x02binary", errors.NotCsv),
        (b"a,b\n1,2\n", errors.SchemaMismatch),
    ],
)
def test_bad_uploads_raise_named_errors_and_keep_the_object(deployed, validate, lambda_context, body, error):
    state = upload(deployed, body)
    with pytest.raises(error):
        validate(state, lambda_context)
    kept = boto3.client("s3").get_object(Bucket=deployed.data_bucket, Key=state["source"]["key"])["Body"].read()
    assert kept == body


def test_validation_reads_the_exact_version_that_triggered_the_run(deployed, validate, lambda_context):
    state = upload(deployed, good_csv())
    boto3.client("s3").put_object(Bucket=deployed.data_bucket, Key=state["source"]["key"], Body=b"")
    assert validate(state, lambda_context)["rows"] == 400


def test_the_preprocess_job_gets_exactly_the_validated_version_and_nothing_beside_it(deployed, validate,
                                                                                     lambda_context):
    """A processing input is a prefix of the newest objects: the key of the upload would also
    read a later upload of it and ``x.csv.bak``. ValidateInput copies the validated version into
    a folder of the run's own, which is what the preprocess job reads."""
    s3 = boto3.client("s3")
    body = good_csv()
    state = upload(deployed, body)
    s3.put_object(Bucket=deployed.data_bucket, Key="incoming/churn/x.csv", Body=b"a newer upload, not validated")
    s3.put_object(Bucket=deployed.data_bucket, Key="incoming/churn/x.csv.bak", Body=b"old,stuff\n")
    result = validate(state, lambda_context)
    folder = f"s3://{deployed.artifacts_bucket}/runs/churn/churn-0123456789/input/"
    assert result["input_uri"] == folder
    listed = s3.list_objects_v2(Bucket=deployed.artifacts_bucket, Prefix="runs/churn/churn-0123456789/input/")
    assert [o["Key"] for o in listed["Contents"]] == ["runs/churn/churn-0123456789/input/x.csv"]
    copied = s3.get_object(Bucket=deployed.artifacts_bucket, Key="runs/churn/churn-0123456789/input/x.csv")
    assert copied["Body"].read() == body


def test_a_failed_validation_copies_nothing(deployed, validate, lambda_context):
    with pytest.raises(errors.SchemaMismatch):
        validate(upload(deployed, b"a,b\n1,2\n"), lambda_context)
    listed = boto3.client("s3").list_objects_v2(Bucket=deployed.artifacts_bucket, Prefix="runs/")
    assert listed.get("KeyCount", 0) == 0


def test_unknown_model_is_named(deployed, validate, lambda_context):
    with pytest.raises(errors.UnknownModel, match="'spam'"):
        validate(upload(deployed, good_csv(), key="incoming/spam/x.csv"), lambda_context)


def test_malformed_state_is_an_invalid_event(deployed, validate, lambda_context):
    with pytest.raises(errors.InvalidEvent, match="malformed pipeline input"):
        validate({"model": "churn"}, lambda_context)


def test_a_drift_retrain_reads_its_dataset_under_retrain(deployed, validate, lambda_context):
    """The drift handler starts the run on the dataset it built under retrain/<model>/."""
    body = good_csv()
    state = upload(deployed, body, key="retrain/churn/0123456789abcdef.csv")
    state["trigger"] = {"type": "drift", "detail": {"report": "s3://x/constraint_violations.json"}}
    result = validate(state, lambda_context)
    assert result["rows"] == 400
    copied = boto3.client("s3").get_object(Bucket=deployed.artifacts_bucket,
                                           Key="runs/churn/churn-0123456789/input/0123456789abcdef.csv")
    assert copied["Body"].read() == body


@pytest.mark.parametrize(
    ("key", "trigger", "match"),
    [
        ("retrain/churn/x.csv", "s3", "under retrain/, which only retrains on drift or a quality drop read"),
        ("retrain/churn/x.csv", "manual", "under retrain/, which only retrains on drift or a quality drop read"),
        ("exports/churn/x.csv", "s3", r"not under incoming/churn/\. Upload"),
        ("exports/churn/x.csv", "drift", "not under incoming/churn/ or retrain/churn/"),
        ("groundtruth/churn/2026/11/01/03/x.csv", "drift", "not under incoming/churn/ or retrain/churn/"),
    ],
)
def test_a_run_reads_only_training_prefixes(deployed, validate, lambda_context, key, trigger, match):
    state = upload(deployed, good_csv(), key=key)
    state["trigger"] = {"type": trigger}
    with pytest.raises(errors.ObjectOutsideIncoming, match=match):
        validate(state, lambda_context)
    assert boto3.client("s3").list_objects_v2(Bucket=deployed.artifacts_bucket, Prefix="runs/").get("KeyCount") == 0


def test_a_run_reads_only_its_own_models_data(deployed, validate, lambda_context):
    state = upload(deployed, good_csv(), key="incoming/other/x.csv")
    state["model"] = "churn"
    with pytest.raises(errors.ObjectOutsideIncoming, match="training data of model 'other', not of this run's model"):
        validate(state, lambda_context)
