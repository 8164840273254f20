"""autoloop.retrain_data against moto with the template's buckets (the data bucket is versioned).

Every request the module sends is checked against the S3 service model (tests/request_rules.py).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from autoloop import adapters, errors, retrain_data
from autoloop.naming import retrain_key
from autoloop_cli.datagen import COLUMNS, generate

COLS = list(COLUMNS)
KEY = retrain_key("churn", "report-0001")


def csv_bytes(rows: int, seed: int, drift: float = 0.0) -> bytes:
    return generate(rows, seed=seed, drift=drift).to_csv(index=False, lineterminator="\n").encode()


def put(bucket: str, key: str, body: bytes) -> dict[str, Any]:
    return boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def latest(bucket: str, key: str) -> dict[str, Any]:
    """The upload as the drift handler finds it: its ListObjectsV2 entry and its version id."""
    s3 = boto3.client("s3")
    [entry] = [o for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"] if o["Key"] == key]
    return {**entry, "VersionId": s3.head_object(Bucket=bucket, Key=key)["VersionId"]}


def labelled(deployed, name: str, body: bytes) -> str:
    key = f"monitoring/churn/{name}/labelled/labelled.csv"
    put(deployed.artifacts_bucket, key, body)
    return f"s3://{deployed.artifacts_bucket}/{key}"


def data_rows(body: bytes) -> bytes:
    return body.split(b"\n", 1)[1]


def build(deployed, *, upload: dict[str, Any] | None, uris: list[str], window_shift: float = -60.0,
          **overrides: Any) -> dict[str, Any]:
    """Build with the window starting ``window_shift`` seconds after the upload was modified."""
    start = (upload["LastModified"] if upload else _now()) + timedelta(seconds=window_shift)
    kwargs = {"data_bucket": deployed.data_bucket, "model": "churn", "labelled_uris": uris, "latest_upload": upload,
              "columns": COLS, "key": KEY, "window_start": start, "metadata": {"report-id": "report-0001"}}
    return retrain_data.build_retrain_dataset(**{**kwargs, **overrides})


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def read(bucket: str, key: str = KEY) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def versions(bucket: str, key: str) -> list[str]:
    listed = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


def parsed(body: bytes) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(body.decode(), newline="")) if row]


def no_open_uploads(bucket: str) -> bool:
    return not boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.fixture
def get_calls():
    """The parameters of every GetObject the module sends."""
    calls: list[dict[str, Any]] = []
    adapters.client("s3").meta.events.register("provide-client-params.s3.GetObject",
                                               lambda params, **_: calls.append(dict(params)))
    return calls


# ----------------------------------------------------------------------------- in memory
def test_small_upload_and_labelled_files_make_one_csv_with_one_header(deployed):
    upload_body = csv_bytes(300, seed=1)
    put(deployed.data_bucket, "incoming/churn/latest.csv", upload_body)
    first, second = csv_bytes(50, seed=2, drift=1.0), csv_bytes(30, seed=3, drift=1.0)
    uris = [labelled(deployed, "run-1", first), labelled(deployed, "run-2", second)]

    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"), uris=uris)

    body = read(deployed.data_bucket)
    assert body == upload_body + data_rows(first) + data_rows(second)
    rows = parsed(body)
    assert rows[0] == COLS and len(rows) == 1 + 380
    assert result["written"] is True and result["method"] == "put"
    assert result["labelled_rows"] == 80 and result["upload_rows"] == 300 and result["rows"] == 380
    assert result["upload_rows_included"] is True and result["upload_rows_counted"] is True
    assert [f["rows"] for f in result["labelled_files"]] == [50, 30]
    assert all(f["version_id"] for f in result["labelled_files"])
    assert result["upload"]["key"] == "incoming/churn/latest.csv" and result["upload"]["version_id"]
    # the identity of what was written: the bucket is versioned
    head = boto3.client("s3").head_object(Bucket=deployed.data_bucket, Key=KEY)
    assert result["version_id"] == head["VersionId"] == versions(deployed.data_bucket, KEY)[0]
    assert result["etag"] == head["ETag"].strip('"') and result["size"] == head["ContentLength"] == len(body)
    assert result["uri"] == f"s3://{deployed.data_bucket}/{KEY}"
    assert head["Metadata"]["report-id"] == "report-0001"
    assert head["Metadata"][retrain_data.META_LABELLED_ROWS] == "80"
    # raw data is only read
    assert read(deployed.data_bucket, "incoming/churn/latest.csv") == upload_body
    assert len(versions(deployed.data_bucket, "incoming/churn/latest.csv")) == 1


def test_an_upload_before_the_window_is_left_out(deployed):
    put(deployed.data_bucket, "incoming/churn/old.csv", csv_bytes(300, seed=1))
    rows = csv_bytes(40, seed=2, drift=1.0)
    upload = latest(deployed.data_bucket, "incoming/churn/old.csv")

    result = build(deployed, upload=upload, uris=[labelled(deployed, "run-1", rows)], window_shift=1.0)

    assert read(deployed.data_bucket) == retrain_data.header_line(COLS) + data_rows(rows)
    assert result["upload_rows_included"] is False and result["upload"] is None
    assert result["labelled_rows"] == 40 and result["rows"] == 40
    assert "before the window start" in result["note"]
    head = boto3.client("s3").head_object(Bucket=deployed.data_bucket, Key=KEY)
    assert head["Metadata"][retrain_data.META_UPLOAD_INCLUDED] == "false"


def test_the_window_start_is_inclusive(deployed):
    put(deployed.data_bucket, "incoming/churn/latest.csv", csv_bytes(100, seed=1))
    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"), uris=[],
                   window_shift=0.0)
    assert result["upload_rows_included"] is True and result["rows"] == 100


def test_nothing_to_train_on_is_a_named_error_and_writes_nothing(deployed):
    put(deployed.data_bucket, "incoming/churn/old.csv", csv_bytes(100, seed=1))
    header_only = labelled(deployed, "run-1", retrain_data.header_line(COLS))
    with pytest.raises(errors.NoRetrainData, match="no labelled rows .*before the window start"):
        build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/old.csv"), uris=[header_only],
              window_shift=1.0)
    with pytest.raises(errors.NoRetrainData, match="no upload to include"):
        build(deployed, upload=None, uris=[])
    assert versions(deployed.data_bucket, KEY) == []


def test_missing_newlines_at_the_ends_of_parts_are_added(deployed):
    upload_body = csv_bytes(20, seed=1).rstrip(b"\n")
    put(deployed.data_bucket, "incoming/churn/latest.csv", upload_body)
    first = csv_bytes(5, seed=2).rstrip(b"\n")  # no newline at its end either
    second = csv_bytes(7, seed=3)
    uris = [labelled(deployed, "run-1", first), labelled(deployed, "run-2", second)]

    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"), uris=uris)

    body = read(deployed.data_bucket)
    assert body == upload_body + b"\n" + data_rows(first) + b"\n" + data_rows(second)
    assert len(parsed(body)) == 1 + 32 and result["rows"] == 32


def test_a_header_only_upload_without_newline_and_crlf_labelled_rows(deployed):
    put(deployed.data_bucket, "incoming/churn/latest.csv", ",".join(COLS).encode())
    rows = csv_bytes(6, seed=2).replace(b"\n", b"\r\n")
    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"),
                   uris=[labelled(deployed, "run-1", b"\xef\xbb\xbf" + rows)])  # a BOM is not a header change
    assert result["upload_rows"] == 0 and result["labelled_rows"] == 6
    assert parsed(read(deployed.data_bucket))[0] == COLS and len(parsed(read(deployed.data_bucket))) == 7


# ----------------------------------------------------------------------------- header checks
@pytest.mark.parametrize(
    ("header", "match"),
    [
        (",".join(COLS[1:] + COLS[:1]), "the same columns in another order"),
        (",".join([*COLS[:-1], "Region"]), r"missing columns \['region'\], unexpected columns \['Region'\]"),
        (",".join(COLS[:-1]), r"missing columns \['region'\]"),
    ],
)
def test_a_labelled_file_with_another_header_is_refused_by_name(deployed, header, match):
    put(deployed.data_bucket, "incoming/churn/latest.csv", csv_bytes(50, seed=1))
    good = labelled(deployed, "run-1", csv_bytes(5, seed=2))
    bad = labelled(deployed, "run-2", header.encode() + b"\n" + data_rows(csv_bytes(5, seed=3)))
    with pytest.raises(errors.RetrainDataMismatch, match=match) as caught:
        build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"), uris=[good, bad])
    assert bad in str(caught.value) and "expected exactly" in str(caught.value)
    assert "re-export the file named" in str(caught.value)  # the hint says what to do
    assert versions(deployed.data_bucket, KEY) == []


def test_an_upload_with_another_header_is_refused_by_name(deployed):
    body = csv_bytes(50, seed=1).replace(b"churned,", b"label,", 1)
    put(deployed.data_bucket, "incoming/churn/latest.csv", body)
    with pytest.raises(errors.RetrainDataMismatch, match="s3://.*/incoming/churn/latest.csv: the header"):
        build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"),
              uris=[labelled(deployed, "run-1", csv_bytes(5, seed=2))])
    assert versions(deployed.data_bucket, KEY) == []


def test_a_labelled_row_with_the_wrong_width_is_refused_with_its_line(deployed):
    body = csv_bytes(5, seed=2) + b"1,2,3\n"
    uri = labelled(deployed, "run-1", body)
    with pytest.raises(errors.RetrainDataMismatch, match=r"labelled.csv line 7 has 3 fields; the header has 9"):
        build(deployed, upload=None, uris=[uri])


def test_an_empty_or_missing_labelled_file(deployed):
    with pytest.raises(errors.RetrainDataMismatch, match="has no header line"):
        build(deployed, upload=None, uris=[labelled(deployed, "run-1", b"")])
    missing = f"s3://{deployed.artifacts_bucket}/monitoring/churn/none/labelled/labelled.csv"
    with pytest.raises(errors.NoRetrainData, match="does not exist"):
        build(deployed, upload=None, uris=[missing])


def test_labelled_rows_beyond_the_memory_budget_are_refused(deployed, monkeypatch):
    monkeypatch.setattr(retrain_data, "MAX_LABELLED_BYTES", 1000)
    uri = labelled(deployed, "run-1", csv_bytes(100, seed=2))
    with pytest.raises(errors.RetrainDataTooLarge):
        build(deployed, upload=None, uris=[uri])


# ----------------------------------------------------------------------------- written once
def test_a_duplicate_call_writes_nothing_and_returns_the_same_object(deployed):
    put(deployed.data_bucket, "incoming/churn/latest.csv", csv_bytes(100, seed=1))
    upload = latest(deployed.data_bucket, "incoming/churn/latest.csv")
    uris = [labelled(deployed, "run-1", csv_bytes(10, seed=2))]
    first = build(deployed, upload=upload, uris=uris)
    before = read(deployed.data_bucket)

    # more labels arrived meanwhile: the dataset of this report is still the one written
    again = build(deployed, upload=upload, uris=[*uris, labelled(deployed, "run-2", csv_bytes(9, seed=3))])

    assert again["written"] is False and again["method"] == "existing"
    for field in ("version_id", "etag", "size", "labelled_rows", "upload_rows", "upload_rows_included"):
        assert again[field] == first[field], field
    assert versions(deployed.data_bucket, KEY) == [first["version_id"]]
    assert read(deployed.data_bucket) == before


def test_a_concurrent_writer_wins_and_its_object_is_returned(deployed):
    """Between the existence check and the write, another call writes the key: the conditional
    write refuses to replace it, and that object is the result."""
    other = boto3.client("s3")  # not the module's client: its requests are not intercepted

    def write_first(params, **_):
        if not versions(deployed.data_bucket, KEY):
            other.put_object(Bucket=deployed.data_bucket, Key=KEY, Body=b"written by the other call\n",
                             Metadata={retrain_data.META_LABELLED_ROWS: "7"})

    adapters.client("s3").meta.events.register("before-call.s3.PutObject", write_first)
    result = build(deployed, upload=None, uris=[labelled(deployed, "run-1", csv_bytes(10, seed=2))])
    assert result["written"] is False and result["labelled_rows"] == 7
    assert read(deployed.data_bucket) == b"written by the other call\n"
    assert len(versions(deployed.data_bucket, KEY)) == 1


def test_keys_outside_retrain_and_naive_windows_are_programming_errors(deployed):
    with pytest.raises(ValueError, match="not under retrain/churn/"):
        build(deployed, upload=None, uris=[], key="incoming/churn/x.csv")
    with pytest.raises(ValueError, match="time zone"):
        build(deployed, upload=None, uris=[], window_start=_now().replace(tzinfo=None))
    with pytest.raises(ValueError, match="printable ASCII"):
        build(deployed, upload=None, uris=[], metadata={"note": "caf\u00e9"})


# ----------------------------------------------------------------------------- large uploads
SIX_MIB = 6 * 1024 * 1024


def big_upload(newline_at_end: bool) -> bytes:
    block = data_rows(csv_bytes(2000, seed=4))
    body = retrain_data.header_line(COLS) + block * (SIX_MIB // len(block) + 1)
    return body if newline_at_end else body.rstrip(b"\n")


@pytest.mark.parametrize("newline_at_end", [True, False])
def test_a_large_upload_is_copied_inside_s3_with_the_labelled_rows_appended(deployed, get_calls, newline_at_end):
    upload_body = big_upload(newline_at_end)
    assert len(upload_body) >= retrain_data.MULTIPART_THRESHOLD
    put(deployed.data_bucket, "incoming/churn/big.csv", upload_body)
    rows = csv_bytes(25, seed=5, drift=1.0)

    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
                   uris=[labelled(deployed, "run-1", rows)])

    body = read(deployed.data_bucket)
    assert body == upload_body + (b"" if newline_at_end else b"\n") + data_rows(rows)
    assert result["method"] == "multipart" and result["written"] is True
    assert result["upload_rows"] is None and result["rows"] is None and result["upload_rows_counted"] is False
    assert result["labelled_rows"] == 25 and result["upload_rows_included"] is True
    assert "not counted" in result["note"]
    head = boto3.client("s3").head_object(Bucket=deployed.data_bucket, Key=KEY)
    assert result["version_id"] == head["VersionId"] and result["size"] == head["ContentLength"] == len(body)
    assert result["etag"] == head["ETag"].strip('"') and result["etag"].endswith("-2")  # one copied part + the tail
    assert head["Metadata"][retrain_data.META_UPLOAD_ROWS] == "unknown"
    # the upload itself was never read whole: only its header and its last byte
    upload_reads = [c for c in get_calls if c["Key"] == "incoming/churn/big.csv"]
    assert upload_reads and all("Range" in c for c in upload_reads)
    assert {c["Range"] for c in upload_reads} == {f"bytes=0-{retrain_data.HEADER_BYTES - 1}",
                                                  f"bytes={len(upload_body) - 1}-{len(upload_body) - 1}"}
    assert no_open_uploads(deployed.data_bucket)

    again = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
                  uris=[labelled(deployed, "run-1", rows)])
    assert again["written"] is False and again["version_id"] == result["version_id"]
    assert again["upload_rows"] is None and again["upload_rows_counted"] is False


def test_a_large_upload_with_no_labelled_rows_is_copied_as_is(deployed):
    upload_body = big_upload(newline_at_end=False)
    put(deployed.data_bucket, "incoming/churn/big.csv", upload_body)
    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
                   uris=[labelled(deployed, "run-1", retrain_data.header_line(COLS))])
    assert read(deployed.data_bucket) == upload_body and result["labelled_rows"] == 0


def test_a_large_upload_with_another_header_starts_no_multipart_upload(deployed):
    upload_body = big_upload(True).replace(b"churned,", b"label,", 1)
    put(deployed.data_bucket, "incoming/churn/big.csv", upload_body)
    with pytest.raises(errors.RetrainDataMismatch, match="big.csv: the header"):
        build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
              uris=[labelled(deployed, "run-1", csv_bytes(5, seed=2))])
    assert no_open_uploads(deployed.data_bucket) and versions(deployed.data_bucket, KEY) == []


def test_a_failed_part_aborts_the_multipart_upload(deployed):
    put(deployed.data_bucket, "incoming/churn/big.csv", big_upload(True))

    def fail(**_):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "simulated"}}, "UploadPart")

    s3 = adapters.client("s3")
    s3.meta.events.register("before-call.s3.UploadPart", fail)
    with pytest.raises(errors.TransientAwsError, match="uploading the labelled rows"):
        build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
              uris=[labelled(deployed, "run-1", csv_bytes(5, seed=2))])
    assert no_open_uploads(deployed.data_bucket) and versions(deployed.data_bucket, KEY) == []
    s3.meta.events.unregister("before-call.s3.UploadPart", fail)

    # a later call (the Lambda retry) builds it
    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/big.csv"),
                   uris=[labelled(deployed, "run-1", csv_bytes(5, seed=2))])
    assert result["written"] is True and result["labelled_rows"] == 5


# ----------------------------------------------------------------------------- pure
def test_copy_ranges_cover_the_object_in_parts_s3_accepts():
    mib, gib = 1024**2, 1024**3
    assert retrain_data.copy_ranges(6 * mib) == [(0, 6 * mib - 1)]
    assert retrain_data.copy_ranges(gib) == [(0, gib // 2 - 1), (gib // 2, gib - 1)]
    for size in (5 * mib, gib + 1, 12 * gib + 7, 5 * gib * 3 + 1):
        for part in (10 * mib, retrain_data.COPY_PART_BYTES, 5 * gib):
            ranges = retrain_data.copy_ranges(size, part)
            assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
            assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))
            lengths = [last - first + 1 for first, last in ranges]
            assert max(lengths) <= part and min(lengths) >= 5 * mib and len(ranges) == -(-size // part)
    with pytest.raises(ValueError, match="part_bytes"):
        retrain_data.copy_ranges(gib, 6 * mib)
    with pytest.raises(ValueError, match="part_bytes"):
        retrain_data.copy_ranges(gib, 6 * gib)


def test_the_result_is_json_serialisable(deployed):
    put(deployed.data_bucket, "incoming/churn/latest.csv", csv_bytes(10, seed=1))
    result = build(deployed, upload=latest(deployed.data_bucket, "incoming/churn/latest.csv"), uris=[])
    assert json.loads(json.dumps(result)) == result
