"""autoloop.batch: months, names, columns and filters, requests, attempts, the malformed-rows policy."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from autoloop import batch, deploy, errors, naming
from autoloop.batch import Attempt, BatchPlan, BatchRequest, BatchTrigger, Monitoring, Package
from autoloop.config import ModelConfig, parse_model_config
from autoloop.jobs import JobContext
from tests.conftest import ROOT

CONFIG = parse_model_config((ROOT / "models" / "churn" / "config.json").read_bytes(), "churn.json")
NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


def config(**batch_options: object) -> ModelConfig:
    raw = json.loads((ROOT / "models" / "churn" / "config.json").read_text())
    raw["batch"] = batch_options
    return parse_model_config(json.dumps(raw), "test")


# ----------------------------------------------------------------------------- months
@pytest.mark.parametrize(("when", "month"), [
    (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), "2026-10"),
    (datetime(2026, 1, 1, 3, 0, tzinfo=UTC), "2025-12"),
    (datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), "2026-01"),  # Feb 28 in UTC
])
def test_the_previous_month_is_taken_in_utc(when, month):
    assert batch.previous_month(when) == month


def test_the_month_comes_from_the_request_else_the_scheduled_time_else_now():
    assert batch.resolve_month(BatchRequest(model="churn", month="2026-07"), NOW) == "2026-07"
    trigger = BatchTrigger(type="schedule", scheduled_time="2026-10-01T03:00:00Z")
    scheduled = BatchRequest(model="churn", trigger=trigger)
    assert batch.resolve_month(scheduled, NOW) == "2026-09"
    assert batch.resolve_month(BatchRequest(model="churn"), NOW) == "2026-10"


@pytest.mark.parametrize("month", ["2026-11", "2027-01", "2026-13", "26-10", "2026/10", "october"])
def test_months_not_ended_or_not_months_are_refused(month):
    with pytest.raises(errors.InvalidEvent):
        batch.resolve_month(BatchRequest(model="churn", month=month), NOW)


# ----------------------------------------------------------------------------- names
def test_run_ids_and_job_names_are_deterministic_valid_and_short():
    run = naming.batch_run_id("churn", "2026-10", "autoloop-dev-databucket-1a2b3c4d5e6f")
    assert re.fullmatch(r"churn-202610-[0-9a-f]{6}", run)
    assert run == naming.batch_run_id("churn", "2026-10", "autoloop-dev-databucket-1a2b3c4d5e6f")
    assert run != naming.batch_run_id("churn", "2026-10", "autoloop-prod-databucket-9z9z")
    longest = naming.batch_run_id("m" * 24, "2026-10", "b", attempt=20)
    for step in batch.BATCH_STEP_KIND:
        assert len(naming.batch_job_name(longest, step)) <= 63
    assert naming.batch_run_id("churn", "2026-10", "b", attempt=2).endswith("-r2")
    with pytest.raises(ValueError):
        naming.batch_job_name(run, "train")


def test_the_batch_model_name_is_never_taken_for_an_endpoint_model():
    arn = "arn:aws:sagemaker:us-east-1:1:model-package/autoloop-dev-churn/3"
    name = batch.model_name("autoloop-dev", "churn", arn, 3)
    assert len(name) <= 63 and name.endswith("-bt")
    # the DeployPipeline's cleanup deletes versioned endpoint models other than the serving one
    assert deploy.version_of(name) is None
    assert deploy.stale_versions([name], "autoloop-dev-churn", keep="x") == []
    assert len(batch.model_name("s" * 50, "churn", arn, 12345)) <= 63


def test_the_layout_is_partitioned_by_month():
    assert batch.input_prefix("churn", "2026-10") == "batch/churn/2026-10/"
    assert batch.output_prefix("churn", "2026-10") == "predictions/churn/month=2026-10/"
    prefix = "batch/churn/2026-10/"
    assert batch.is_data_key(prefix + "a.csv", prefix) and batch.is_data_key(prefix + "x/b.csv.gz", prefix)
    assert not any(batch.is_data_key(prefix + k, prefix) for k in ("", "x/", "_SUCCESS", ".keep", "x/_tmp"))


# ----------------------------------------------------------------------------- columns
def test_by_default_every_input_column_is_kept_beside_the_prediction():
    cols = batch.columns(CONFIG)
    assert cols.input == CONFIG.features
    assert cols.output == (*CONFIG.features, "prediction")
    assert cols.input_filter is None and cols.output_filter is None


def test_id_columns_pass_through_and_the_output_is_filtered_to_what_was_asked():
    cols = batch.columns(config(id_columns=["customer_id", "region_code"], output_columns=["customer_id", "contract"],
                                prediction_column="p"))
    assert cols.input[:2] == ("customer_id", "region_code")
    assert cols.input_filter == "$[2:]"
    assert cols.output_filter == f"$[0,{cols.input.index('contract')},-1]"
    assert cols.output == ("customer_id", "contract", "p")


@pytest.mark.parametrize("options", [
    {"id_columns": ["tenure_months"]},
    {"id_columns": ["a", "a"]},
    {"output_columns": ["nope"]},
    {"output_columns": ["age", "age"]},
    {"prediction_column": "age"},
    {"max_malformed_fraction": 1.5},
    {"unknown": 1},
])
def test_inconsistent_batch_options_are_rejected(options):
    with pytest.raises(errors.InvalidModelConfig):
        config(**options)


def test_headers_match_by_name_in_any_order_with_an_optional_label():
    cfg = config(id_columns=["customer_id"])
    batch.check_header(["customer_id", *reversed(CONFIG.features)], cfg, "a.csv")
    batch.check_header([CONFIG.label, "customer_id", *CONFIG.features], cfg, "a.csv")


@pytest.mark.parametrize(("header", "detail"), [
    (list(CONFIG.features), r"missing \['customer_id'\]"),
    (["customer_id", *CONFIG.features, "extra"], r"unexpected \['extra'\]"),
    (["customer_id", "age", *CONFIG.features], r"duplicated \['age'\]"),
])
def test_wrong_headers_are_named(header, detail):
    with pytest.raises(errors.BatchSchemaMismatch, match=rf"s3://b/m/x.csv has the wrong columns: .*{detail}"):
        batch.check_header(header, config(id_columns=["customer_id"]), "s3://b/m/x.csv")


# ----------------------------------------------------------------------------- attempts
def test_attempts_resume_unless_failed_changed_or_forced():
    ok = Attempt(1, {"prepare": "Completed", "transform": "InProgress"}, "m1", "d1")
    assert batch.choose_attempt([], model="m1", digest="d1", force=False)[0] == 1
    assert batch.choose_attempt([ok], model="m1", digest="d1", force=False) == (
        1, "resuming attempt 1: its finished jobs are reused")
    assert batch.choose_attempt([ok], model="m1", digest="d1", force=True)[0] == 2
    assert batch.choose_attempt([ok], model="m2", digest="d1", force=False)[0] == 2
    assert batch.choose_attempt([ok], model="m1", digest="d2", force=False)[0] == 2
    failed = Attempt(2, {"prepare": "Completed", "transform": "Failed"}, "m1", "d1")
    number, why = batch.choose_attempt([ok, failed], model="m1", digest="d1", force=False)
    assert number == 3 and "attempt 2 failed (transform)" in why


def test_the_input_digest_follows_the_files_and_columns():
    files = [("batch/churn/2026-10/a.csv", "e1", 10), ("batch/churn/2026-10/b.csv", "e2", 20)]
    digest = batch.input_digest(files, ["a", "b"])
    assert digest == batch.input_digest(list(reversed(files)), ["a", "b"])
    assert digest != batch.input_digest(files[:1], ["a", "b"])
    assert digest != batch.input_digest([(*files[0][:2], 11), files[1]], ["a", "b"])
    assert digest != batch.input_digest(files, ["b", "a"])


def test_the_oldest_execution_for_a_month_goes_on():
    t = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    assert batch.oldest_first((t, "b"), [(t + timedelta(seconds=1), "a")]) is None
    assert batch.oldest_first((t, "b"), [(t, "a")]) == "a"
    assert batch.oldest_first((t, "b"), [(t - timedelta(seconds=1), "c")]) == "c"


# ----------------------------------------------------------------------------- policy
def test_malformed_rows_are_skipped_up_to_the_limit():
    batch.check_malformed({"rows_valid": 99, "rows_malformed": 1}, 0.01, "s3://x")
    with pytest.raises(errors.TooManyMalformedRows, match=r"2 of 100 rows \(2.0%\).*listed in s3://x"):
        batch.check_malformed({"rows_valid": 98, "rows_malformed": 2}, 0.01, "s3://x")
    with pytest.raises(errors.NoBatchInput, match="no valid row"):
        batch.check_malformed({"rows_valid": 0, "rows_malformed": 0, "empty_files": ["a.csv"]}, 0.5, "s3://x")


# ----------------------------------------------------------------------------- requests
def plan(**overrides: object) -> BatchPlan:
    fields: dict[str, object] = {
        "action": "score", "reason": "r", "model": "churn", "month": "2026-10", "run_id": "churn-202610-abcdef",
        "package": Package(arn="arn:pkg/3", version=3, training_run_id="churn-0123456789"),
        "model_name": "autoloop-dev-churn-v3-abcdef-bt", "endpoint_name": "autoloop-dev-churn",
        "input_uri": "s3://data/batch/churn/2026-10/", "output_uri": "s3://data/predictions/churn/month=2026-10/",
        "input_filter": "$[1:]", "output_filter": "$[0,-1]", "input_digest": "d",
        "monitoring": Monitoring(constraints_uri="s3://art/runs/churn/r/calibrate/constraints.json",
                                 statistics_uri="s3://art/runs/churn/r/baseline/statistics.json"),
    }
    return BatchPlan.model_validate({**fields, **overrides})


CTX = JobContext(run_id="churn-202610-abcdef", model="churn", artifacts_bucket="art", role_arn="arn:role",
                 image_uri="img", instance_type="ml.m5.large", max_runtime_seconds=3600, stack_name="autoloop-dev")


def test_the_transform_request_splits_lines_into_multi_record_batches_and_joins_predictions():
    request = batch.transform_request(CTX, plan(), "s3://art/runs/churn/churn-202610-abcdef/prepare/clean", 6)
    assert request["TransformJobName"] == "churn-202610-abcdef-transform"
    assert request["BatchStrategy"] == "MultiRecord" and request["MaxPayloadInMB"] == 6
    assert request["TransformInput"]["SplitType"] == "Line" and request["TransformInput"]["ContentType"] == "text/csv"
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/prepare/clean/")
    assert request["TransformOutput"] == {"S3OutputPath": "s3://art/runs/churn/churn-202610-abcdef/transform",
                                          "Accept": "text/csv", "AssembleWith": "Line"}
    assert request["DataProcessing"] == {"JoinSource": "Input", "InputFilter": "$[1:]", "OutputFilter": "$[0,-1]"}
    assert {"Key": "autoloop:stack", "Value": "autoloop-dev"} in request["Tags"]


def test_the_prepare_request_carries_the_input_digest():
    request = batch.prepare_request(CTX, plan(), "s3://art/config/models/churn.json")
    assert request["Environment"][batch.INPUT_DIGEST_ENV] == "d"
    assert "--config" in request["AppSpecification"]["ContainerArguments"]
    assert [o["OutputName"] for o in request["ProcessingOutputConfig"]["Outputs"]] == list(batch.PREPARE_OUTPUTS)


def test_the_monitor_request_looks_like_a_monitoring_execution_of_the_models_endpoint():
    request = batch.monitor_request(CTX, plan(), "s3://art/x/monitor", "acct.dkr.ecr/sagemaker-model-monitor-analyzer")
    env = request["Environment"]
    assert env["sagemaker_endpoint_name"] == "autoloop-dev-churn"
    assert "sagemaker_monitoring_schedule_name" not in env
    assert env["baseline_constraints"] == "/opt/ml/processing/baseline/constraints/constraints.json"
    assert json.loads(env["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert "ContainerEntrypoint" not in request["AppSpecification"]
    with pytest.raises(errors.InvalidEvent):
        batch.monitor_request(CTX, plan(monitoring=Monitoring(skipped="none")), "s3://x", "img")


def test_the_report_and_message_give_the_counts_and_the_places():
    summary = {"files": [{"file": "a.csv"}, {"file": "b.csv"}], "empty_files": ["e.csv"], "rows_valid": 1234,
               "rows_malformed": 5, "malformed_examples": [{"file": "a.csv", "line": 7, "reason": "bad"}]}
    doc = batch.report(plan(output_columns=["customer_id", "prediction"]), summary, ["a.csv", "b.csv"],
                       "s3://data/predictions/churn/month=2026-10/_malformed/malformed.csv",
                       {"status": "no violations", "report": "s3://r"}, "job-t", NOW)
    assert doc["rows"] == {"scored": 1234, "malformed": 5} and doc["input"]["rows"] == 1239
    assert doc["malformed"]["examples"][0]["line"] == 7
    text = batch.message(doc)
    assert text.startswith("Batch transform of churn for 2026-10: 1,234 rows scored from 2 file(s) into 2 file(s)")
    assert "Malformed rows skipped: 5 (listed in s3://data/predictions/churn/month=2026-10/_malformed/" in text
    assert "Empty files skipped: 1 (e.csv)" in text and "Data quality: no violations" in text


def test_a_transform_job_result_has_the_shape_of_every_job_result():
    from autoloop.jobs import job_result

    result = job_result("transform", {"TransformJobName": "j", "TransformJobStatus": "Failed",
                                      "TransformOutput": {"S3OutputPath": "s3://a/out"}, "FailureReason": "why"})
    assert result == {"job_name": "j", "kind": "transform", "status": "Failed", "outputs": {"output": "s3://a/out"},
                      "model_artifacts": None, "failure_reason": "why"}


def test_versions_are_told_apart_from_a_neighbours_and_found_when_cut():
    arn = "arn:aws:sagemaker:us-east-1:1:model-package/g/7"
    short, neighbour = "autoloop-dev-churn", "autoloop-dev-churn2"
    assert deploy.is_version_of(deploy.versioned_name(short, arn, 7), short)
    assert not deploy.is_version_of(deploy.versioned_name(neighbour, arn, 7), short)
    long = "s" * 38 + "-" + "m" * 24  # the longest endpoint name: 63 characters
    for version in (1, 999, 1234567):
        name = deploy.versioned_name(long, arn, version)
        assert len(name) <= 63 and deploy.is_version_of(name, long)
        assert long[: deploy.VERSIONS_SEARCH_LENGTH] in name  # what the cleanup's listing searches for
    other = long[:40] + "x" + long[41:]  # another model, same length: differs within the part kept
    assert deploy.stale_versions([deploy.versioned_name(long, arn, 2)], other, keep="") == []



# ----------------------------------------------------------------------------- the monthly schedule
def test_the_schedule_name_fits_schedulers_64_characters_and_keeps_models_apart():
    from autoloop.batch import schedule_name

    assert schedule_name("autoloop-dev", "churn") == "autoloop-dev-churn-batch"
    long_stack = "s" * 38
    names = {schedule_name(long_stack, model) for model in ("m" * 24, "m" * 23 + "n")}
    assert len(names) == 2 and all(len(n) <= 64 and n.endswith("-batch") for n in names)


def test_the_schedule_request_starts_the_batch_transform_for_the_month_before():
    from autoloop.batch import schedule_request

    request = schedule_request(stack="s", model="fraud", target_arn="arn:machine", role_arn="arn:role",
                               expression="cron(0 5 2 * ? *)", state="DISABLED", kms_key_arn="arn:key")
    assert request["Name"] == "s-fraud-batch" and request["State"] == "DISABLED"
    assert request["ScheduleExpression"] == "cron(0 5 2 * ? *)" and request["ScheduleExpressionTimezone"] == "UTC"
    assert request["Target"]["Arn"] == "arn:machine" and request["Target"]["RoleArn"] == "arn:role"
    assert request["KmsKeyArn"] == "arn:key"
    assert json.loads(request["Target"]["Input"])["model"] == "fraud"
    with pytest.raises(ValueError, match="schedule state 'OFF'"):
        schedule_request(stack="s", model="fraud", target_arn="a", role_arn="r", state="OFF")


def test_a_models_schedule_is_on_unless_its_config_turns_it_off():
    from autoloop.config import BatchConfig

    assert BatchConfig().schedule is True
    assert BatchConfig.model_validate({"schedule": False}).schedule is False
    with pytest.raises(ValueError, match="schedule"):
        BatchConfig.model_validate({"schedule": "no"})
