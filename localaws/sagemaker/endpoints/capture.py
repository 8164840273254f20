"""Endpoint data capture in Model Monitor's format, buffered off the invocation path.

Gap in moto: ``CreateEndpointConfig`` stores ``DataCaptureConfig`` and nothing reads it;
no invocation is ever recorded. On SageMaker, an endpoint whose config has
``EnableCapture`` writes a sample of its requests and responses to S3 as JSON lines, which
Model Monitor's data-quality and model-quality jobs read (and which the drift steps of this
project read). This module writes the same files:

- one JSON object per line, ``{"captureData": {"endpointInput": {...}, "endpointOutput":
  {...}}, "eventMetadata": {"eventId", "inferenceId" (only when the caller passed
  ``InferenceId``), "inferenceTime"}, "eventVersion": "0"}``; each payload has
  ``observedContentType``, ``mode`` (``INPUT``/``OUTPUT``), ``data`` and ``encoding``;
- ``encoding`` is ``CSV`` for the content types in ``CaptureContentTypeHeader.CsvContentTypes``,
  ``JSON`` for ``JsonContentTypes`` and ``BASE64`` otherwise (also for a CSV/JSON body that is
  not UTF-8). Without ``CaptureContentTypeHeader``, ``text/csv`` counts as CSV and
  ``application/json`` as JSON (the encodings AWS's captured files show for those types);
- keys ``{DestinationS3Uri}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM-SS-mmm}-{uuid}.jsonl``, the
  hour being the UTC hour of the invocations in the file and the file name the time of its
  first record (the file-name pattern is the one observed in AWS captures);
- ``InitialSamplingPercentage`` decides per invocation (:meth:`CaptureSettings.sampled`) and
  ``CaptureOptions`` (``Input``, ``Output``, ``InputAndOutput``) which halves are kept.

Invocations only append a small record to an in-memory buffer; JSON encoding and the S3
upload happen at flush time, in the extension's background thread or in an explicit flush
(:func:`localaws.sagemaker.endpoints.service.flush_capture`). Only successful invocations are
captured. ``KmsKeyId`` is ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json",)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class CaptureSettings:
    """The capture part of an endpoint config (hashable: records are grouped by it)."""

    destination: str  # s3://bucket/prefix, no trailing slash
    percentage: float
    capture_input: bool
    capture_output: bool
    csv_types: tuple[str, ...] = DEFAULT_CSV_TYPES
    json_types: tuple[str, ...] = DEFAULT_JSON_TYPES
    kms_key_id: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> CaptureSettings | None:
        """None when the config has no capture or ``EnableCapture`` is false."""
        if not config or not config.get("EnableCapture", True) or not config.get("DestinationS3Uri"):
            return None
        modes = {
            str(option.get("CaptureMode", "")).lower()
            for option in config.get("CaptureOptions") or [{"CaptureMode": "InputAndOutput"}]
        }
        header = config.get("CaptureContentTypeHeader")
        if header:
            csv_types = tuple(media_type(t) for t in header.get("CsvContentTypes") or [])
            json_types = tuple(media_type(t) for t in header.get("JsonContentTypes") or [])
        else:
            csv_types, json_types = DEFAULT_CSV_TYPES, DEFAULT_JSON_TYPES
        return cls(
            destination=str(config["DestinationS3Uri"]).rstrip("/"),
            percentage=float(config.get("InitialSamplingPercentage", 100)),
            capture_input=bool(modes & {"input", "inputandoutput"}),
            capture_output=bool(modes & {"output", "inputandoutput"}),
            csv_types=csv_types,
            json_types=json_types,
            kms_key_id=config.get("KmsKeyId"),
        )

    def sampled(self) -> bool:
        return self.percentage >= 100 or random.random() * 100 < self.percentage  # noqa: S311

    def encoding(self, content_type: str | None) -> str:
        kind = media_type(content_type)
        if kind in self.csv_types:
            return "CSV"
        if kind in self.json_types:
            return "JSON"
        return "BASE64"


def summary(config: dict[str, Any] | None, *, started: bool) -> dict[str, Any] | None:
    """DescribeEndpoint's ``DataCaptureConfig`` (a DataCaptureConfigSummary) for a config."""
    if not config:
        return None
    enabled = bool(config.get("EnableCapture", True))
    out: dict[str, Any] = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled and started else "Stopped",
        "CurrentSamplingPercentage": int(config.get("InitialSamplingPercentage", 100)),
        "DestinationS3Uri": config.get("DestinationS3Uri", ""),
    }
    if config.get("KmsKeyId"):
        out["KmsKeyId"] = config["KmsKeyId"]
    return out


@dataclass(slots=True)
class Record:
    """One sampled invocation, kept raw until flush."""

    when: dt.datetime
    inference_id: str | None
    input: bytes | None
    input_type: str | None
    output: bytes | None
    output_type: str | None


def _payload(data: bytes, content_type: str | None, mode: str, settings: CaptureSettings) -> dict[str, Any]:
    encoding = settings.encoding(content_type)
    text: str | None = None
    if encoding != "BASE64":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if text is None:
        text = base64.b64encode(data).decode("ascii")
    out: dict[str, Any] = {}
    if content_type:
        out["observedContentType"] = content_type
    out.update(mode=mode, data=text, encoding=encoding)
    return out


def capture_line(record: Record, settings: CaptureSettings) -> str:
    """One JSON line of a capture file."""
    data: dict[str, Any] = {}
    if record.input is not None:
        data["endpointInput"] = _payload(record.input, record.input_type, "INPUT", settings)
    if record.output is not None:
        data["endpointOutput"] = _payload(record.output, record.output_type, "OUTPUT", settings)
    meta: dict[str, Any] = {"eventId": str(uuid.uuid4())}
    if record.inference_id:
        meta["inferenceId"] = record.inference_id
    meta["inferenceTime"] = record.when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"captureData": data, "eventMetadata": meta, "eventVersion": "0"}, separators=(",", ":"))


def object_key(prefix: str, endpoint: str, variant: str, first: dt.datetime) -> str:
    """``{prefix}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM-SS-mmm}-{uuid}.jsonl`` (no bucket)."""
    stamp = f"{first.minute:02d}-{first.second:02d}-{first.microsecond // 1000:03d}"
    parts = [p for p in (prefix.strip("/"), endpoint, variant, first.strftime("%Y/%m/%d/%H")) if p]
    return "/".join(parts) + f"/{stamp}-{uuid.uuid4()}.jsonl"


@dataclass
class Batch:
    """Records of one file: same settings, variant and UTC hour."""

    settings: CaptureSettings
    endpoint: str
    variant: str
    records: list[Record]

    def key(self) -> tuple[str, str]:
        """(bucket, key) of the file."""
        bucket, _, prefix = self.settings.destination[len("s3://") :].partition("/")
        return bucket, object_key(prefix, self.endpoint, self.variant, self.records[0].when)

    def body(self) -> bytes:
        return ("\n".join(capture_line(r, self.settings) for r in self.records) + "\n").encode("utf-8")


@dataclass
class CaptureBuffer:
    """One endpoint's sampled records waiting for upload (thread-safe)."""

    endpoint: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    groups: dict[tuple[CaptureSettings, str, str], list[Record]] = field(default_factory=dict)
    pending: int = 0
    oldest: float | None = None  # monotonic time of the oldest pending record
    written: int = 0
    dropped: int = 0

    def add(self, settings: CaptureSettings, variant: str, record: Record) -> int:
        """Buffer a record; returns how many are pending."""
        hour = record.when.strftime("%Y%m%d%H")
        with self.lock:
            self.groups.setdefault((settings, variant, hour), []).append(record)
            self.pending += 1
            if self.oldest is None:
                self.oldest = time.monotonic()
            return self.pending

    def due(self, max_records: int, max_age: float) -> bool:
        oldest = self.oldest
        return self.pending >= max_records or (
            oldest is not None and time.monotonic() - oldest >= max_age
        )

    def drain(self) -> list[Batch]:
        with self.lock:
            groups, self.groups = self.groups, {}
            self.pending, self.oldest = 0, None
        return [
            Batch(settings, self.endpoint, variant, records)
            for (settings, variant, _hour), records in sorted(groups.items(), key=lambda kv: kv[0][2])
        ]

    def count(self, written: int, dropped: int) -> None:
        with self.lock:
            self.written += written
            self.dropped += dropped


def write(s3: Any, batches: Iterable[Batch]) -> tuple[list[str], int]:
    """Upload each batch as one file; returns (URIs written, records dropped on errors)."""
    uris: list[str] = []
    dropped = 0
    for batch in batches:
        bucket, key = batch.key()
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=batch.body())
        except Exception:  # the bucket may be gone; capture never fails invocations
            dropped += len(batch.records)
            continue
        uris.append(f"s3://{bucket}/{key}")
    return uris, dropped
