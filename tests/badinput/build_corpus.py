"""Write the bad-input corpus files (data/, events/, reports/, configs/) deterministically.

The files are checked in; ``test_corpus.py`` checks that they are exactly what this script
makes, so a reviewer can read how each one was built. Run: ``python -m tests.badinput.build_corpus``.

Event files hold ``${...}`` placeholders (bucket names, stack, account, region, the
uploaded object's key, version and etag) that the test fills in from the booted stack.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[1] / "events"

COLUMNS = ["churned", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age",
           "contract", "payment_method", "region"]
HEADER = ",".join(COLUMNS)
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank", "paypal", "check")
REGIONS = ("north", "south", "east", "west")


def row(i: int, **override: str) -> str:
    values = {
        "churned": str(int(i % 3 == 0)), "tenure_months": str(1 + i % 71),
        "monthly_charges": f"{20 + (i * 37) % 90}.{i % 10}", "support_calls": str(i % 6),
        "data_usage_gb": f"{(i * 13) % 50}.{(i * 7) % 10}", "age": str(18 + (i * 11) % 60),
        "contract": CONTRACTS[i % 3], "payment_method": PAYMENTS[i % 4], "region": REGIONS[(i // 4) % 4],
    }
    values.update(override)
    return ",".join(values[c] for c in COLUMNS)


def rows(n: int, start: int = 0) -> list[str]:
    return [row(i) for i in range(start, start + n)]


def text(lines: list[str], newline: str = "\n") -> str:
    return newline.join(lines) + newline


VALID_ROWS = 220  # churn.json needs min_rows 200 labelled rows


def data_files() -> dict[str, bytes]:
    good = text([HEADER, *rows(VALID_ROWS)])
    files: dict[str, str | bytes] = {
        # -- accepted (decisions documented in cases.json) --
        "valid.csv": good,
        "bom_utf8.csv": b"\xef\xbb\xbf" + good.encode(),
        "crlf_quoted_newlines.csv": text(
            [HEADER, *[row(i, region='"north\neast"', contract='"month-to-month, promo"') if i % 10 == 0 else row(i)
                       for i in range(VALID_ROWS)]], "\r\n"),
        "nan_spellings.csv": text([HEADER, *[row(i, age=("NaN", "nan", "-nan", "", "NA", "#N/A")[i % 6])
                                             if i % 5 == 0 else row(i) for i in range(VALID_ROWS)]]),
        # -- encodings and formats --
        "utf16.csv": good.encode("utf-16"),
        "latin1.csv": text([HEADER, *rows(3), row(3, region="nörth"), *rows(3, 4)]).encode("latin-1"),
        "gzip_named_csv.csv": gzip.compress(good.encode(), mtime=0),
        "xlsx_named_csv.csv": b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml" + bytes(64),
        "binary_nul.csv": bytes(range(256)) * 4,
        "zero_bytes.csv": b"",
        "blank_lines_only.csv": "\n\n\n",
        "header_only.csv": HEADER + "\n",
        # -- structure --
        "duplicate_header.csv": text([HEADER.replace("age", "tenure_months"), *rows(5)]),
        "header_spaces.csv": text([", ".join(COLUMNS), *rows(5)]),
        "concatenated.csv": text([HEADER, *rows(3), HEADER, *rows(3, 3)]),
        "semicolon_delimited.csv": text([";".join(COLUMNS), *[r.replace(",", ";") for r in rows(5)]]),
        "mixed_delimiters.csv": text([HEADER, *rows(2), row(2).replace(",", ";"), *rows(2, 3)]),
        "ragged_rows.csv": text([HEADER, *rows(2), row(2) + ",extra", *rows(2, 3)]),
        "unterminated_quote.csv": text([HEADER, *rows(3), row(3, region='"north'), *rows(30, 4)]),
        "cr_only.csv": text([HEADER, *rows(5)], "\r"),
        "huge_field.csv": text([HEADER, row(0, contract="x" * 140_000), *rows(3, 1)]),
        # -- labels --
        "label_absent.csv": text([",".join(COLUMNS[1:]), *[r.split(",", 1)[1] for r in rows(5)]]),
        "label_last.csv": text([",".join(COLUMNS[1:] + COLUMNS[:1]),
                                *[",".join(r.split(",")[1:] + r.split(",")[:1]) for r in rows(5)]]),
        "labels_not_binary.csv": text([HEADER, *rows(3), row(3, churned="2"), *rows(3, 4)]),
        "too_few_rows.csv": text([HEADER, *rows(150), *[row(i, churned="") for i in range(150, 220)]]),
        "one_class_only.csv": text([HEADER, *[row(i, churned="0") for i in range(VALID_ROWS)]]),
        "text_labels.csv": text([HEADER, *rows(6), row(6, churned="yes"), *rows(VALID_ROWS - 7, 7)]),
        # -- values --
        "all_nan_column.csv": text([HEADER, *[row(i, data_usage_gb=("", "NaN", "nan")[i % 3]) for i in range(30)]]),
        "inf_values.csv": text([HEADER, *rows(4), row(4, monthly_charges="inf"), row(5, age="-Infinity")]),
        "huge_1e308.csv": text([HEADER, *rows(2), row(2, data_usage_gb="1e308"), *rows(2, 3)]),
        "overflow_1e999.csv": text([HEADER, *rows(2), row(2, tenure_months="1e999")]),
        "non_numeric_thousands.csv": text([HEADER, *rows(2), row(2, monthly_charges="1_070.5")]),
    }
    return {name: body.encode() if isinstance(body, str) else body for name, body in files.items()}


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def _s3_event(**detail_object: Any) -> dict[str, Any]:
    event = _sample("s3_object_created")
    event["account"], event["region"] = "${ACCOUNT}", "${REGION}"
    event["resources"] = ["arn:aws:s3:::${DATA_BUCKET}"]
    event["detail"]["bucket"]["name"] = "${DATA_BUCKET}"
    event["detail"]["object"].update({"key": "${KEY}", "version-id": "${VERSION_ID}", "etag": "${ETAG}", "size": 4096})
    event["detail"]["object"].update(detail_object)
    return event


def _monitoring_event() -> dict[str, Any]:
    event = _sample("sagemaker_monitoring_job_completed")
    event["detail"]["Environment"]["sagemaker_endpoint_name"] = "${STACK}-churn"
    event["detail"]["Environment"]["sagemaker_monitoring_schedule_name"] = "${STACK}-churn-dq"
    for output in event["detail"]["ProcessingOutputConfig"]["Outputs"]:
        output["S3Output"]["S3Uri"] = "s3://${ARTIFACTS_BUCKET}/${REPORT_PREFIX}"
    return event


def event_files() -> dict[str, Any]:
    s3 = _s3_event()
    deleted = copy.deepcopy(s3)
    deleted["detail-type"] = "Object Deleted"
    deleted["detail"]["deletion-type"] = "Permanently Deleted"
    no_key = copy.deepcopy(s3)
    del no_key["detail"]["object"]["key"]
    no_bucket = copy.deepcopy(s3)
    del no_bucket["detail"]["bucket"]
    unversioned = copy.deepcopy(s3)
    del unversioned["detail"]["object"]["version-id"]
    del unversioned["detail"]["object"]["etag"]
    other_account = copy.deepcopy(s3)
    other_account["account"] = "999988887777"
    other_account["detail"]["bucket"]["name"] = other_account["detail"]["requester"] = "their-landing-bucket"
    other_region = copy.deepcopy(s3)
    other_region["region"] = "eu-west-1"
    other_region["detail"]["bucket"]["name"] = "autoloop-eu-databucket-9z8y7x"
    forwarded = copy.deepcopy(s3)
    forwarded["account"] = "999988887777"

    job = _sample("sagemaker_training_job_completed")
    unknown_job = copy.deepcopy(job)
    unknown_job["detail"]["TrainingJobName"] = "someone-elses-notebook-job-2026-11-01"
    job_no_name = copy.deepcopy(job)
    del job_no_name["detail"]["TrainingJobName"]
    job_wrong_type = copy.deepcopy(job)
    job_wrong_type["detail-type"] = "SageMaker HyperParameter Tuning Job State Change"

    monitoring = _monitoring_event()
    unknown_endpoint = copy.deepcopy(monitoring)
    unknown_endpoint["detail"]["Environment"]["sagemaker_endpoint_name"] = "someone-elses-endpoint"
    drift_wrong_type = copy.deepcopy(monitoring)
    drift_wrong_type["detail-type"] = "SageMaker Endpoint Deployment State Change"
    alarm = _sample("cloudwatch_alarm_drift")
    del alarm["detail"]["configuration"]["metrics"]
    return {
        "s3_object_created.json": s3,
        "s3_object_deleted.json": deleted,
        "s3_missing_key.json": no_key,
        "s3_missing_bucket.json": no_bucket,
        "s3_no_version_no_etag.json": unversioned,
        "s3_other_account.json": other_account,
        "s3_other_region.json": other_region,
        "s3_forwarded_from_other_account.json": forwarded,
        "s3_not_an_object.json": [s3],
        "job_unknown.json": unknown_job,
        "job_missing_name.json": job_no_name,
        "job_wrong_detail_type.json": job_wrong_type,
        "monitoring_job_completed.json": monitoring,
        "monitoring_unknown_endpoint.json": unknown_endpoint,
        "monitoring_wrong_detail_type.json": drift_wrong_type,
        "alarm_missing_metrics.json": alarm,
    }


def report_files() -> dict[str, bytes]:
    sample = (SAMPLES / "constraint_violations_sample.json").read_bytes()
    entry = json.loads(sample)["violations"][0]
    no_feature = {"violations": [{k: v for k, v in entry.items() if k != "feature_name"}]}
    return {
        "truncated.json": sample[: len(sample) // 2],
        "empty.json": b"",
        "a_list.json": json.dumps(json.loads(sample)["violations"]).encode(),
        "violation_without_feature.json": json.dumps(no_feature, indent=2).encode(),
        "utf16.json": sample.decode().encode("utf-16"),
    }


def config_files() -> dict[str, bytes]:
    churn = json.loads((HERE.parents[1] / "models/churn/config.json").read_text())

    def variant(**changes: Any) -> bytes:
        return json.dumps({**churn, "model": "badcfg", **changes}, indent=2).encode()

    good = variant()
    return {
        "truncated.json": good[: len(good) // 2],
        "unknown_field.json": variant(lable="churned"),
        "bad_type.json": variant(min_rows="two hundred"),
        "label_not_first.json": variant(columns=churn["columns"][1:] + churn["columns"][:1]),
        "with_bom.json": b"\xef\xbb\xbf" + good,
        "metric_upper_case.json": variant(metric="AUC"),
        # tasks (issue 13): the task, the metric for it, the threshold in the metric's units
        "task_unknown.json": variant(task="ranking"),
        "metric_of_another_task.json": variant(metric="rmse", threshold=5.0),
        "threshold_outside_range.json": variant(threshold=1.5),
        "regression.json": variant(task="regression", metric="rmse", threshold=5.0, quality_margin=1.0),
        "multiclass_classes.json": variant(task="multiclass", metric="accuracy", classes=["0", "1"]),
        # model folders (issue 13): refused by publish and check before anything runs
        "valid.json": good,
        "threshold_negative_rmse.json": variant(task="regression", metric="rmse", threshold=-1.0, quality_margin=1.0),
        "framework_unknown_version.json": variant(framework={"name": "xgboost", "version": "0.42-7"}),
        "instance_type_without_ml.json": variant(instance_types={"train": "m5.xlarge"}),
    }


def corpus() -> dict[str, bytes]:
    """Every corpus file, by its path under tests/badinput/."""
    out = {f"data/{k}": v for k, v in data_files().items()}
    out |= {f"events/{k}": (json.dumps(v, indent=2, ensure_ascii=False) + "\n").encode()
            for k, v in event_files().items()}
    out |= {f"reports/{k}": v for k, v in report_files().items()}
    out |= {f"configs/{k}": v for k, v in config_files().items()}
    return out


def main() -> None:
    for rel, body in corpus().items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    print(f"wrote {len(corpus())} files under {HERE}")


if __name__ == "__main__":
    main()
