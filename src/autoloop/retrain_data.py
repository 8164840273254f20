"""The dataset of a drift retrain: the newest upload, when it is fresh, plus the rows that
monitoring has labelled (captured endpoint inputs merged with their ground truth).

:func:`build_retrain_dataset` writes one CSV object, ``s3://<data bucket>/<key>`` (normally
:func:`autoloop.naming.retrain_key`, ``retrain/<model>/<report id>.csv``): the model config's
``columns`` as the header, then the data rows of the newest upload if it was last modified at
or after ``window_start``, then the data rows of every labelled file, in the order given.

- **Written once.** If the key exists (a duplicate event for the same report), the existing
  object's identity is returned and nothing is written. The write itself is conditional
  (``If-None-Match: *``), so two concurrent builders still leave one object. Sources are only
  read: raw data is never modified or deleted.
- **Same format or nothing.** Every part's header must equal ``columns`` exactly (a UTF-8 BOM
  aside), and each labelled row must have as many fields, else :class:`RetrainDataMismatch`
  names the file and nothing is written.
- **Large uploads stay in S3.** An upload of ``MULTIPART_THRESHOLD`` (5 MiB) or more is not read
  into memory: a multipart upload copies its bytes with ``UploadPartCopy`` (header included, as
  the first parts) and uploads the labelled rows as the last part, after a newline if the upload
  does not end with one. Only the upload's first line and last byte are read. Its rows are
  therefore not counted (``upload_rows`` is None, ``upload_rows_counted`` False); ValidateInput
  reads the whole dataset before any job starts. A failed multipart upload is aborted.
  Smaller uploads are read and concatenated in memory, and their rows counted.

The counts are also kept in the object's metadata, so a duplicate call returns them too.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autoloop import adapters
from autoloop.adapters import aws_call, client, error_code
from autoloop.errors import NoRetrainData, RetrainDataMismatch, RetrainDataTooLarge, TransientAwsError
from autoloop.naming import RETRAIN_PREFIX
from autoloop.observability import logger

MIN_PART_BYTES = 5 * 1024**2  # S3: every part of a multipart upload but the last
MAX_PART_BYTES = 5 * 1024**3  # S3: the largest part, uploaded or copied
#: The target size of a copied part: a retried UploadPartCopy repeats at most this much.
COPY_PART_BYTES = 512 * 1024**2
#: Uploads this large or larger are copied inside S3, never read into the Lambda's memory.
MULTIPART_THRESHOLD = MIN_PART_BYTES
#: How much of a copied upload is read to find its header line.
HEADER_BYTES = 64 * 1024
#: Labelled rows are read into memory; more than this in all is refused.
MAX_LABELLED_BYTES = 128 * 1024**2
#: S3's limit on user-defined metadata (keys and values, UTF-8 bytes).
MAX_METADATA_BYTES = 2 * 1024

META_LABELLED_ROWS = "autoloop-labelled-rows"
META_UPLOAD_INCLUDED = "autoloop-upload-included"
META_UPLOAD_ROWS = "autoloop-upload-rows"

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
#: A conditional write lost to another writer of the same key (412), or raced it (409).
_WRITTEN_BY_ANOTHER = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class _Labelled:
    uri: str
    version_id: str | None
    rows: int
    data: bytes  # the data rows, without the header, ending with a newline (empty when no rows)


def header_line(columns: Sequence[str]) -> bytes:
    """The CSV header line of ``columns``, as written when the dataset has no upload."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(columns)
    return out.getvalue().encode()


def copy_ranges(size: int, part_bytes: int = COPY_PART_BYTES) -> list[tuple[int, int]]:
    """Inclusive byte ranges that copy ``size`` bytes in parts S3 accepts.

    As few parts of at most ``part_bytes`` as possible, of nearly equal size: each is at least
    ``part_bytes / 2``, so every part is 5 MiB or more (S3's minimum for all but the last)
    whenever ``size`` is.
    """
    if not 2 * MIN_PART_BYTES <= part_bytes <= MAX_PART_BYTES:
        raise ValueError(f"part_bytes must be in [{2 * MIN_PART_BYTES}, {MAX_PART_BYTES}], got {part_bytes}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    count = -(-size // part_bytes)
    base, extra = divmod(size, count)
    ranges, start = [], 0
    for index in range(count):
        length = base + (1 if index < extra else 0)
        ranges.append((start, start + length - 1))
        start += length
    return ranges


# ----------------------------------------------------------------------------- checks
def _split_header(body: bytes) -> tuple[bytes, bytes]:
    """(first line with its newline, the rest)."""
    newline = body.find(b"\n")
    return (body, b"") if newline < 0 else (body[: newline + 1], body[newline + 1 :])


def _check_header(first_line: bytes, columns: Sequence[str], model: str, where: str) -> None:
    line = first_line.removeprefix(codecs.BOM_UTF8).rstrip(b"\r\n")
    if not line.strip():
        raise RetrainDataMismatch(f"{where} has no header line (it is empty or starts with a blank line); "
                                  f"expected: {','.join(columns)}")
    try:
        header = next(csv.reader([line.decode("utf-8")]))
    except UnicodeDecodeError as exc:
        raise RetrainDataMismatch(f"{where}: the header line is not UTF-8 text (byte {exc.start}: {exc.reason}).") \
            from exc
    expected = list(columns)
    if header == expected:
        return
    missing = [c for c in expected if c not in header]
    extra = [h for h in header if h not in expected]
    if missing or extra:
        detail = f"missing columns {missing}, unexpected columns {extra}"
    else:
        detail = "the same columns in another order" if len(header) == len(expected) else "repeated columns"
    raise RetrainDataMismatch(
        f"{where}: the header {','.join(header)[:300]!r} does not match model {model}'s columns "
        f"({detail}); expected exactly: {','.join(expected)}"
    )


def _count_rows(data: bytes, width: int, where: str) -> int:
    """Data rows (blank lines skipped); each must have ``width`` fields. Line numbers count the header."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 2
        raise RetrainDataMismatch(f"{where} line {line} is not UTF-8 text ({exc.reason}).") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = last_line = 0
    try:
        for row in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                raise RetrainDataMismatch(
                    f"{where} line {first_line + 1} has {len(row)} fields; the header has {width}."
                )
            rows += 1
    except csv.Error as exc:
        raise RetrainDataMismatch(f"{where} is not valid CSV at line {reader.line_num + 1}: {exc}.") from exc
    return rows


def _check_metadata(metadata: Mapping[str, str]) -> None:
    for name, value in metadata.items():
        if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
            raise ValueError(f"metadata key {name!r} must be ASCII letters, digits, '-', '_' or '.'")
        if not isinstance(value, str) or not all(" " <= c <= "~" for c in value):
            raise ValueError(f"metadata value of {name!r} must be printable ASCII text, got {value!r}")
    size = sum(len(k) + len(v) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes; S3 takes at most {MAX_METADATA_BYTES}")


def _last_modified(upload: Mapping[str, Any]) -> datetime | None:
    value = upload.get("LastModified")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and not isinstance(value, datetime):
        raise ValueError(f"latest_upload LastModified must be a datetime or ISO 8601 text, got {value!r}")
    return value


# ----------------------------------------------------------------------------- S3
def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def _existing(bucket: str, key: str) -> dict[str, Any] | None:
    """The identity of the object at ``key`` and the counts its metadata records, or None."""
    with aws_call(f"checking s3://{bucket}/{key}"):
        try:
            head = client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise
    meta = head.get("Metadata") or {}

    def count(name: str) -> int | None:
        value = str(meta.get(name, ""))
        return int(value) if value.isdigit() else None

    labelled, upload_rows = count(META_LABELLED_ROWS), count(META_UPLOAD_ROWS)
    included = meta.get(META_UPLOAD_INCLUDED) == "true"
    return {
        "version_id": head.get("VersionId"), "etag": str(head["ETag"]).strip('"'), "size": int(head["ContentLength"]),
        "labelled_rows": labelled, "upload_rows_included": included, "upload_rows": upload_rows,
        "upload_rows_counted": upload_rows is not None or not included,
    }


def _read_labelled(uri: str, columns: Sequence[str], model: str, budget: int) -> _Labelled:
    bucket, key = adapters.split_s3_uri(uri)
    with aws_call(f"reading {uri}"):
        try:
            response = client("s3").get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                raise NoRetrainData(
                    f"the labelled file {uri} does not exist.",
                    "Nothing was written or retrained. Pass the labelled files that the monitoring run wrote "
                    "(<output>/labelled/labelled.csv); the next monitoring run writes new ones.",
                ) from exc
            raise
        size = int(response["ContentLength"])
        if size > budget:
            response["Body"].close()
            raise RetrainDataTooLarge(
                f"the labelled files come to more than {MAX_LABELLED_BYTES:,} bytes ({uri} alone is {size:,})."
            )
        body = response["Body"].read()
    first, rest = _split_header(body)
    _check_header(first, columns, model, uri)
    rows = _count_rows(rest, len(columns), uri)
    if rows == 0:
        rest = b""
    elif not rest.endswith(b"\n"):
        rest += b"\n"
    return _Labelled(uri=uri, version_id=response.get("VersionId"), rows=rows, data=rest)


def _get(bucket: str, key: str, version_id: str | None, byte_range: str | None = None) -> bytes:
    extra = {"Range": byte_range} if byte_range else {}
    with aws_call(f"reading s3://{bucket}/{key}"):
        return bytes(client("s3").get_object(Bucket=bucket, Key=key, **_version(version_id), **extra)["Body"].read())


def _head_upload(bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
    with aws_call(f"checking s3://{bucket}/{key}"):
        try:
            return dict(client("s3").head_object(Bucket=bucket, Key=key, **_version(version_id)))
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND or error_code(exc) == "405":  # 405: a delete marker
                raise NoRetrainData(
                    f"the upload s3://{bucket}/{key} (version {version_id}) no longer exists.",
                    "Nothing was written or retrained. Upload the training data again under incoming/<model>/.",
                ) from exc
            raise


def _put(bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> dict[str, Any] | None:
    """Write ``body`` unless the key exists; None if it does (another writer came first)."""
    with aws_call(f"writing s3://{bucket}/{key}"):
        try:
            response = client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv",
                                               Metadata=metadata, IfNoneMatch="*")
        except ClientError as exc:
            if error_code(exc) in _WRITTEN_BY_ANOTHER:
                return None
            raise
    return {"version_id": response.get("VersionId"), "etag": str(response["ETag"]).strip('"'), "size": len(body)}


def _abort(bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload; a failure here is logged, never raised over the original error."""
    try:
        client("s3").abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not abort the multipart upload", extra={
            "bucket": bucket, "key": key, "upload_id": upload_id, "error": str(exc)})


def _multipart(bucket: str, key: str, source: dict[str, str], size: int, tail: bytes,
               metadata: dict[str, str]) -> dict[str, Any] | None:
    """The object = the source's ``size`` bytes (copied inside S3) + ``tail``, unless the key
    exists; None if it does. The upload is aborted on any failure."""
    s3 = client("s3")
    where = f"s3://{bucket}/{key}"
    with aws_call(f"starting a multipart upload to {where}"):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/csv",
                                               Metadata=metadata)["UploadId"]
    try:
        parts = []
        for number, (first, last) in enumerate(copy_ranges(size), start=1):
            with aws_call(f"copying bytes {first}-{last} of s3://{source['Bucket']}/{source['Key']} to {where}"):
                copied = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                             CopySource=source, CopySourceRange=f"bytes={first}-{last}")
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        if tail:
            with aws_call(f"uploading the labelled rows to {where}"):
                uploaded = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1,
                                          Body=tail)
            parts.append({"PartNumber": len(parts) + 1, "ETag": uploaded["ETag"]})
        with aws_call(f"completing the multipart upload to {where}"):
            try:
                done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                    MultipartUpload={"Parts": parts}, IfNoneMatch="*")
            except ClientError as exc:
                if error_code(exc) not in _WRITTEN_BY_ANOTHER:
                    raise
                _abort(bucket, key, upload_id)
                return None
    except BaseException:
        _abort(bucket, key, upload_id)
        raise
    return {"version_id": done.get("VersionId"), "etag": str(done["ETag"]).strip('"'), "size": size + len(tail)}


# ----------------------------------------------------------------------------- the dataset
def build_retrain_dataset(
    *,
    data_bucket: str,
    model: str,
    labelled_uris: Sequence[str],
    latest_upload: Mapping[str, Any] | None,
    columns: Sequence[str],
    key: str,
    window_start: datetime,
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """Write the retrain dataset once and return its identity and counts.

    ``latest_upload`` is the newest training object (a ListObjectsV2 entry, ``Key``,
    ``LastModified``, ``VersionId``; ``Bucket`` defaults to ``data_bucket``), or None.
    ``metadata`` (printable ASCII) goes on the object with the counts.

    Returns ``bucket``, ``key``, ``uri``, ``version_id``, ``etag``, ``size``, ``written``
    (False for an existing object), ``method`` (``put``, ``multipart`` or ``existing``),
    ``labelled_rows``, ``labelled_files`` (uri, version_id, rows of each; None for an
    existing object), ``upload_rows_included``, ``upload`` (the upload used, or None),
    ``upload_rows`` and ``rows`` (None when unknown: a copied upload is not read),
    ``upload_rows_counted`` and ``note`` (why the upload was or was not used).
    """
    if window_start.tzinfo is None:
        raise ValueError("window_start has no time zone; pass an aware datetime (UTC)")
    if not key.startswith(f"{RETRAIN_PREFIX}{model}/") or key.endswith("/"):
        raise ValueError(f"key {key!r} is not under {RETRAIN_PREFIX}{model}/; retrain datasets go there only")
    if not columns:
        raise ValueError("columns is empty; pass the model config's columns, label first")
    _check_metadata(metadata)
    uri = f"s3://{data_bucket}/{key}"
    identity = {"bucket": data_bucket, "key": key, "uri": uri}

    existing = _existing(data_bucket, key)
    if existing is not None:
        logger.info("retrain dataset exists: nothing written", extra={"uri": uri, **existing})
        return {**identity, **existing, "written": False, "method": "existing", "labelled_files": None,
                "upload": None, "rows": None, "note": "the dataset existed (a duplicate event); nothing was written"}

    labelled: list[_Labelled] = []
    budget = MAX_LABELLED_BYTES
    for labelled_uri in labelled_uris:
        part = _read_labelled(labelled_uri, columns, model, budget)
        budget -= len(part.data)
        labelled.append(part)
    labelled_rows = sum(p.rows for p in labelled)
    tail = b"".join(p.data for p in labelled)

    upload: dict[str, Any] | None = None
    note = "no upload to include"
    if latest_upload is not None:
        up_bucket = str(latest_upload.get("Bucket") or data_bucket)
        up_key = str(latest_upload["Key"])
        up_version = latest_upload.get("VersionId")
        modified = _last_modified(latest_upload)
        head = None
        if modified is None:
            head = _head_upload(up_bucket, up_key, up_version)
            modified = head["LastModified"]
        assert modified is not None
        if modified.tzinfo is None:
            raise ValueError("latest_upload LastModified has no time zone; S3 gives UTC times")
        if modified >= window_start:
            head = head or _head_upload(up_bucket, up_key, up_version)
            up_version = up_version or head.get("VersionId")
            upload = {"bucket": up_bucket, "key": up_key, "version_id": up_version,
                      "last_modified": modified.isoformat(), "size": int(head["ContentLength"])}
            note = f"the upload was last modified at {modified.isoformat()}, in the window"
        else:
            note = (f"the upload s3://{up_bucket}/{up_key} was last modified at {modified.isoformat()}, before the "
                    f"window start {window_start.isoformat()}: its rows are not included")

    if upload is None and labelled_rows == 0:
        raise NoRetrainData(f"model {model} has no labelled rows ({len(labelled)} labelled file(s)) and {note}.")

    upload_rows: int | None = 0
    ours = {META_LABELLED_ROWS: str(labelled_rows), META_UPLOAD_INCLUDED: "true" if upload else "false"}
    if upload is not None and upload["size"] >= MULTIPART_THRESHOLD:
        source_uri = f"s3://{upload['bucket']}/{upload['key']}"
        first, _rest = _split_header(_get(upload["bucket"], upload["key"], upload["version_id"],
                                          f"bytes=0-{HEADER_BYTES - 1}"))
        if not first.endswith(b"\n"):
            raise RetrainDataMismatch(f"{source_uri} has no line break in its first {HEADER_BYTES:,} bytes, so no "
                                      f"CSV header; expected: {','.join(columns)}")
        _check_header(first, columns, model, source_uri)
        last = _get(upload["bucket"], upload["key"], upload["version_id"],
                    f"bytes={upload['size'] - 1}-{upload['size'] - 1}")
        if tail and last != b"\n":
            tail = b"\n" + tail
        source = {"Bucket": upload["bucket"], "Key": upload["key"], **_version(upload["version_id"])}
        meta = {**metadata, **ours, META_UPLOAD_ROWS: "unknown"}
        _check_metadata(meta)
        written = _multipart(data_bucket, key, source, upload["size"], tail, meta)
        method, upload_rows = "multipart", None
    else:
        if upload is not None:
            body = _get(upload["bucket"], upload["key"], upload["version_id"])
            first, rest = _split_header(body)
            _check_header(first, columns, model, f"s3://{upload['bucket']}/{upload['key']}")
            upload_rows = _count_rows(rest, len(columns), f"s3://{upload['bucket']}/{upload['key']}")
            if tail and not body.endswith(b"\n"):
                body += b"\n"
        else:
            body = header_line(columns)
        meta = {**metadata, **ours, META_UPLOAD_ROWS: str(upload_rows)}
        _check_metadata(meta)
        written = _put(data_bucket, key, body + tail, meta)
        method = "put"
    if written is None:  # a concurrent builder wrote the key first: that object is the dataset
        existing = _existing(data_bucket, key)
        if existing is None:
            raise TransientAwsError(f"another writer of {uri} has not finished; the call is retried.")
        logger.info("retrain dataset written by a concurrent call", extra={"uri": uri})
        return {**identity, **existing, "written": False, "method": "existing", "labelled_files": None,
                "upload": None, "rows": None, "note": "a concurrent call wrote the dataset; nothing was written"}

    result = {
        **identity, **written, "written": True, "method": method,
        "labelled_rows": labelled_rows,
        "labelled_files": [{"uri": p.uri, "version_id": p.version_id, "rows": p.rows} for p in labelled],
        "upload_rows_included": upload is not None,
        "upload": upload,
        "upload_rows": upload_rows,
        "upload_rows_counted": upload_rows is not None,
        "rows": None if upload_rows is None else upload_rows + labelled_rows,
        "note": note if upload_rows is not None else
        f"{note}; its rows were copied inside S3 without being read, so they are not counted",
    }
    logger.info("retrain dataset written", extra={k: v for k, v in result.items() if k != "labelled_files"})
    return result
