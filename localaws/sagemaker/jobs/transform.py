"""Batch Transform jobs that really run, streaming, with a local inference worker.

Gap in moto: ``CreateTransformJob`` is stored ``Completed`` and writes no output. On
SageMaker, the platform loads the Model's container (``model.tar.gz`` extracted in
``/opt/ml/model``, user code from ``SAGEMAKER_PROGRAM``), splits every input object under
the input prefix into mini-batches, sends each to the container, and assembles the
responses into ``<S3OutputPath>/<relative key>.out``. Local mode does the platform's part
here and runs the container's part in a subprocess worker
(:mod:`localaws.sagemaker.inference.worker`: ``model_fn`` once, then
``input_fn``/``predict_fn``/``output_fn`` or ``transform_fn`` per mini-batch).

Memory does not grow with the input: each object is downloaded to a temp file (with
bounded transfer buffers), read in blocks, sent in mini-batches bounded by
``MaxPayloadInMB``, and its output uploaded as it is produced, in 5 MB parts of a multipart
upload completed at the end (the object appears whole, once).

Throughput: the worker answers one mini-batch at a time, but the platform keeps the next one
queued on the worker's stdin (a sender thread writes it) and assembles the previous answer
while the worker computes, so the platform's own work (reading, joining, filtering, writing)
overlaps the model's instead of adding to it. Mini-batches are cut from blocks of the input
by byte offsets where every line of the block is an ordinary one (no ``\r``, no blank or
whitespace-only line); other lines take the line-by-line rules. Either way the mini-batches
are the same. The worker also starts (loads the model) while the first object downloads.

Supported: ``S3Prefix`` inputs (relative keys are taken below the prefix's last ``/``;
empty objects are skipped), ``CompressionType`` None/Gzip, ``SplitType`` None/Line,
``BatchStrategy`` MultiRecord/SingleRecord, ``AssembleWith`` None/Line,
``ModelClientConfig.InvocationsTimeoutInSeconds`` (default 600),
and for ``text/csv`` ``DataProcessing``: ``JoinSource`` Input/None, ``InputFilter`` and
``OutputFilter`` in the JSONPath subset ``$``, ``$[*]``, ``$[i]``, ``$[i,j,...]``,
``$[a:b]`` (either bound optional, negatives allowed) and comma-separated mixes such as
``$[0,2:]``.

Not supported (the job fails saying so): ManifestFile inputs, RecordIO/TFRecord splits,
DataProcessing for non-CSV content, multi-container models, ``MaxConcurrentTransforms``
(mini-batches go one at a time), invocation retries, data capture.
"""

from __future__ import annotations

import csv
import ctypes
import gzip
import json
import operator
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from localaws.clients import client
from localaws.sagemaker.inference.model import WORKER_SCRIPT, load_model
from localaws.sagemaker.jobs.containers import job_interpreter
from localaws.sagemaker.sandbox import (
    JobFailure,
    env_with,
    iter_objects,
    join_s3,
    relative_key,
    split_s3_uri,
)

if TYPE_CHECKING:
    from localaws.sagemaker.jobs.job import Child, Job

DEFAULT_INVOCATION_TIMEOUT = 600
STARTUP_TIMEOUT = 600
MB = 1024 * 1024

Row = list[str]
Filter = Callable[[Row], Row]


# --- JSONPath subset for CSV rows -------------------------------------------------------------

_INDEX = re.compile(r"-?\d+")
_SLICE = re.compile(r"(-?\d+)?\s*:\s*(-?\d+)?")


def parse_filter(expression: str | None) -> Filter | None:
    """Compile an Input/OutputFilter for CSV rows; None means ``$`` (the whole row)."""
    expr = (expression or "$").strip()
    if expr in ("$", "$[*]"):
        return None
    match = re.fullmatch(r"\$\[([^\]]+)\]", expr)
    if not match:
        raise JobFailure(f"ClientError: JSONPath {expr!r} is not in local mode's supported subset")
    selectors: list[int | slice] = []
    for raw in match.group(1).split(","):
        part = raw.strip()
        if _INDEX.fullmatch(part):
            selectors.append(int(part))
        elif part == "*":
            selectors.append(slice(None))
        elif (m := _SLICE.fullmatch(part)) is not None:
            start, stop = m.groups()
            selectors.append(slice(int(start) if start else None, int(stop) if stop else None))
        else:
            raise JobFailure(f"ClientError: JSONPath {expr!r}: unsupported selector {part!r}")

    if len(selectors) == 1 and isinstance(selectors[0], slice):
        only = selectors[0]
        return lambda row: row[only]
    if all(isinstance(s, int) for s in selectors) and len(selectors) > 1:
        pick = operator.itemgetter(*selectors)

        def pick_all(row: Row) -> Row:
            try:
                return list(pick(row))
            except IndexError:
                raise JobFailure(
                    f"ClientError: JSONPath {expr!r}: index out of range for a record with "
                    f"{len(row)} columns"
                ) from None

        return pick_all

    def apply(row: Row) -> Row:
        out: Row = []
        for selector in selectors:
            if isinstance(selector, slice):
                out.extend(row[selector])
            else:
                try:
                    out.append(row[selector])
                except IndexError:
                    raise JobFailure(
                        f"ClientError: JSONPath {expr!r}: index {selector} out of range for a "
                        f"record with {len(row)} columns"
                    ) from None
        return out

    return apply


def parse_csv(line: str) -> Row:
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line]))


def format_csv(row: Row) -> str:
    text = ",".join(row)
    if text.count(",") == len(row) - 1 and '"' not in text and "\n" not in text and "\r" not in text:
        return text  # no field needs quoting (the common case)
    return ",".join(
        '"' + value.replace('"', '""') + '"' if any(ch in value for ch in ',"\r\n') else value
        for value in row
    )


def _parse_lines(lines: list[str]) -> list[Row]:
    if any('"' in line for line in lines):
        return [parse_csv(line) for line in lines]
    return [line.split(",") for line in lines]


# --- the inference worker ----------------------------------------------------------------------


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("worker closed its output mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _Worker:
    """The model server stand-in: one subprocess, requests over its stdin/stdout.

    Requests are written by a sender thread in submission order, so the platform can queue
    the next mini-batch while the worker computes the current one; answers come back in the
    same order (the worker serves one request at a time).
    """

    def __init__(self, job: Job, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.job = job
        self.child: Child = job.spawn(cmd, env=env, cwd=cwd, pipes=True)
        self.messages: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self._outbox: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
        self._sent: list[float] = []  # submission times of requests not yet answered (FIFO)
        self._last_answer = 0.0
        self.started = False
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        stream = self.child.proc.stdout
        assert stream is not None
        try:
            for line in iter(stream.readline, b""):
                header = json.loads(line)
                size = int(header.get("n") or 0)
                self.messages.put((header, _read_exact(stream, size) if size else b""))
        except Exception as exc:  # malformed protocol output
            self.messages.put(({"ok": False, "error": f"worker protocol error: {exc}"}, b""))
        finally:
            self.messages.put(None)

    def _write(self) -> None:
        stdin = self.child.proc.stdin
        assert stdin is not None
        try:
            while (request := self._outbox.get()) is not None:
                header, payload = request
                stdin.write(header)
                stdin.write(payload)
                stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the worker is gone: the reader reports it (EOF), collect() raises

    def _died(self, during: str) -> JobFailure:
        self.job.check_stop()  # a stop or timeout killed it: JobStopped instead
        code = self.child.proc.poll()
        return JobFailure(
            f"AlgorithmError: the inference worker exited (code {code}) during {during}. "
            f"Logs: {self.job.log_path}"
        )

    def receive(self, timeout: float, during: str, since: float | None = None) -> tuple[dict[str, Any], bytes]:
        deadline = (time.monotonic() if since is None else since) + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobFailure(
                    f"ClientError: the model did not answer within {timeout:.0f} s during "
                    f"{during}. Logs: {self.job.log_path}"
                )
            try:
                item = self.messages.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                self.job.check_stop()
                continue
            if item is None:
                raise self._died(during)
            return item

    def start(self) -> None:
        """Wait until the model is loaded (once)."""
        if self.started:
            return
        header, _ = self.receive(STARTUP_TIMEOUT, "model loading")
        self.started = True
        self.job.add_compute(time.monotonic() - self.child.started)
        if not header.get("ready"):
            raise JobFailure(
                f"AlgorithmError: model loading failed: {header.get('error')}. "
                f"Logs: {self.job.log_path}"
            )

    def submit(self, payload: bytes, content_type: str | None, accept: str) -> None:
        """Queue one invocation; :meth:`collect` returns the answers in submission order."""
        self.job.check_stop()
        if self.child.proc.poll() is not None:
            raise self._died("an invocation")
        request = {"n": len(payload), "content_type": content_type, "accept": accept}
        self._sent.append(time.monotonic())
        self._outbox.put((json.dumps(request).encode() + b"\n", payload))

    def collect(self, timeout: float) -> bytes:
        """The body of the oldest queued invocation. Its timeout runs from when the worker could
        start on it: its submission or the previous answer, whichever is later."""
        began = max(self._sent.pop(0), self._last_answer)
        header, body = self.receive(timeout, "an invocation", since=began)
        self._last_answer = time.monotonic()
        self.job.add_compute(self._last_answer - began)
        if not header.get("ok"):
            raise JobFailure(
                f"AlgorithmError: the model failed on an invocation: {header.get('error')}. "
                f"Logs: {self.job.log_path}"
            )
        return body

    def invoke(self, payload: bytes, content_type: str | None, accept: str, timeout: float) -> bytes:
        self.submit(payload, content_type, accept)
        return self.collect(timeout)

    def close(self) -> None:
        self._outbox.put(None)
        proc = self.child.proc
        if self._sent:  # the job failed with requests outstanding: a write may be blocked
            self.job.reap(self.child)
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=10)
        except Exception:  # noqa: S110 - reap() kills it
            pass
        self.job.reap(self.child)


# --- the platform side --------------------------------------------------------------------------


class _Settings:
    def __init__(self, job: Job) -> None:
        transform_input = job.get("transform_input") or {}
        transform_output = job.get("transform_output") or {}
        processing = job.get("data_processing") or {}
        client_config = job.get("model_client_config") or {}
        source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise JobFailure("ClientError: only S3DataType S3Prefix is supported in local mode")
        self.input_uri: str = source.get("S3Uri", "")
        split_s3_uri(self.input_uri)
        self.output_path: str = transform_output.get("S3OutputPath", "")
        split_s3_uri(self.output_path)
        self.content_type: str | None = transform_input.get("ContentType")
        self.compression = transform_input.get("CompressionType") or "None"
        if self.compression not in ("None", "Gzip"):
            raise JobFailure(f"ClientError: CompressionType {self.compression} is unsupported")
        self.split = transform_input.get("SplitType") or "None"
        if self.split not in ("None", "Line"):
            raise JobFailure(f"ClientError: SplitType {self.split} is unsupported in local mode")
        self.single = (job.get("batch_strategy") or "MultiRecord") == "SingleRecord"
        self.assemble_line = (transform_output.get("AssembleWith") or "None") == "Line"
        self.accept_given: str | None = transform_output.get("Accept")
        payload_mb = job.get("max_payload_in_mb")
        if payload_mb is None:
            payload_mb = 6  # SageMaker's default
        elif int(payload_mb) == 0:
            payload_mb = 100  # 0 = chunked encoding; local mode caps a request at the maximum
        self.max_bytes = int(payload_mb) * MB
        self.timeout = float(
            client_config.get("InvocationsTimeoutInSeconds") or DEFAULT_INVOCATION_TIMEOUT
        )
        self.input_filter = parse_filter(processing.get("InputFilter"))
        self.output_filter = parse_filter(processing.get("OutputFilter"))
        self.join = (processing.get("JoinSource") or "None") == "Input"
        self.records = bool(self.input_filter or self.output_filter or self.join)
        base_type = (self.content_type or "").split(";")[0].strip().lower()
        if self.records and base_type != "text/csv":
            raise JobFailure(
                "ClientError: DataProcessing (filters, JoinSource) is supported for "
                "ContentType text/csv only in local mode"
            )
        if self.records and self.split != "Line":
            raise JobFailure("ClientError: DataProcessing needs SplitType Line in local mode")




def _open_input(path: Path, compression: str) -> IO[bytes]:
    if compression == "Gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


_BLOCK = 1 << 20  # input read size: a mini-batch is put together from blocks
_LINE_SPACE = b" \t\x0b\x0c"  # whitespace bytes.strip() removes, besides \r and \n
_BLANK_LINE = re.compile(rb"\n[ \t\x0b\x0c]*\n")


def _plain(region: bytes) -> bool:
    """Every line of ``region`` (whole lines, each ending in \\n) is sent as it is: no \\r for
    rstrip to remove, no empty or whitespace-only line to skip."""
    if not region or region[0] == 10 or b"\r" in region or b"\n\n" in region:
        return False
    if len(region.translate(None, _LINE_SPACE)) == len(region):
        return True
    return _BLANK_LINE.search(b"\n" + region) is None


def _batches(stream: IO[bytes], settings: _Settings) -> Iterator[bytes]:
    """Mini-batches of lines under MaxPayloadInMB, each its lines with their line ends replaced
    by \\n (blank lines skipped), exactly as if the input were read line by line and a line
    added to the current batch unless it would make the batch (a line counting its length + 1)
    exceed the limit."""
    limit = settings.max_bytes
    parts: list[bytes] = []  # the current batch: runs of lines, each run ending in \n
    size = 0

    def flush() -> bytes:
        nonlocal parts, size
        blob = parts[0] if len(parts) == 1 else b"".join(parts)
        parts, size = [], 0
        return blob

    def add_line(line: bytes) -> Iterator[bytes]:
        """The line-by-line rule (line without its line end)."""
        nonlocal size
        line = line.rstrip(b"\r\n")
        if not line.strip():
            return
        record = len(line) + 1
        if parts and (settings.single or size + record > limit):
            yield flush()
        parts.append(line + b"\n")
        size += record

    def add_region(region: bytes) -> Iterator[bytes]:
        """Whole plain lines: cut at the last line end that fits."""
        nonlocal size
        if settings.single:
            for line in region[:-1].split(b"\n"):
                if len(line) + 1 > limit + 2:  # readline(limit + 2) would have split it
                    raise too_long()
                yield from add_line(line)
            return
        while region:
            room = limit - size
            if len(region) <= room:
                parts.append(region)
                size += len(region)
                return
            cut = region.rfind(b"\n", 0, room) if room > 0 else -1  # a batch can be over (one long line)
            if cut >= 0:
                parts.append(region[: cut + 1])
                size += cut + 1
                region = region[cut + 1 :]
                yield flush()
                continue
            end = region.index(b"\n") + 1
            if end > limit + 2:  # noqa: PLR2004 - readline(limit + 2) would have split it
                raise too_long()
            if parts:
                yield flush()
            else:  # a line longer than the limit, alone in its batch
                yield from add_line(region[:end])
                region = region[end:]

    def too_long() -> JobFailure:
        return JobFailure(f"ClientError: a record is larger than MaxPayloadInMB ({limit // MB} MB)")

    carry = b""
    while True:
        block = stream.read(_BLOCK)
        data = carry + block if carry else block
        if not block:  # end of input: a last line without a line end
            if data:
                if len(data) > limit:
                    raise too_long()
                yield from add_line(data)
            break
        end = data.rfind(b"\n") + 1
        region, carry = data[:end], data[end:]
        if _plain(region):
            yield from add_region(region)
        else:
            start = 0
            while start < len(region):
                stop = region.index(b"\n", start) + 1
                if stop - start > limit + 2:  # noqa: PLR2004 - readline(limit + 2) splits it
                    raise too_long()
                yield from add_line(region[start:stop])
                start = stop
        if len(carry) > limit + 1:  # a line that readline(limit + 2) could not have ended
            raise too_long()
    if parts:
        yield flush()


class _Batch:
    """One mini-batch in flight: what is needed to assemble its output once answered."""

    def __init__(self, blob: bytes, payload: bytes, rows: list[Row] | None = None) -> None:
        self.blob = blob  # the input lines, each ending in \n
        self.payload = payload
        self.rows = rows


def _prepare(blob: bytes, settings: _Settings) -> _Batch:
    """The request payload of a mini-batch (InputFilter applied)."""
    if settings.split == "None" or not settings.records or settings.input_filter is None:
        return _Batch(blob, blob)
    text = blob[:-1].decode("utf-8")
    rows = _parse_lines(text.split("\n"))
    selected = settings.input_filter
    fmt = format_csv if '"' in text else ",".join
    payload = ("\n".join(fmt(selected(r)) for r in rows) + "\n").encode()
    return _Batch(blob, payload, rows)


def _results(body: bytes, count: int) -> list[str]:
    """The answer's non-blank lines, one per input line (JoinSource / OutputFilter need that)."""
    answer = body.decode("utf-8")
    results = answer.splitlines()
    if (
        len(results) != count
        or not all(results)
        or not answer.isascii()
        or any(ch in answer for ch in " \t\x1f")  # the whitespace a split line can still hold
    ):
        results = [line for line in results if line.strip()]
    if len(results) != count:
        raise JobFailure(
            f"ClientError: the model returned {len(results)} records for a mini-batch of "
            f"{count}; JoinSource/OutputFilter need one output line per input line"
        )
    return results


_JOIN_SLICE = 8192  # lines joined at a time
#: bytes that make an answer line other than its \\n-separated text: other line boundaries of
#: str.splitlines() and the whitespace of a blank line
_ANSWER_SPECIAL = b"\r\x0b\x0c\x1c\x1d\x1e\x1f \t"


def _join_sliced(blob: bytes, body: bytes, out: IO[bytes]) -> bool:
    """JoinSource=Input without filters, a slice of lines at a time (the text of a whole
    mini-batch and its lines are never held at once), when the answer is plain: ASCII, exactly
    one line per input line, split at \\n only, none blank. False (nothing written) otherwise."""
    import numpy as np

    count = blob.count(b"\n")
    if not body.isascii() or len(body.translate(None, _ANSWER_SPECIAL)) != len(body):
        return False
    answer = body if body.endswith(b"\n") else body + b"\n"
    if answer.count(b"\n") != count or answer[:1] == b"\n" or b"\n\n" in answer:
        return False
    ends_in = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10)  # noqa: PLR2004 - "\n"
    ends_out = np.flatnonzero(np.frombuffer(answer, dtype=np.uint8) == 10)  # noqa: PLR2004
    start_in = start_out = 0
    for first in range(0, count, _JOIN_SLICE):
        last = min(first + _JOIN_SLICE, count) - 1
        stop_in, stop_out = int(ends_in[last]), int(ends_out[last])
        lines = blob[start_in:stop_in].decode("utf-8").split("\n")
        results = answer[start_out:stop_out].decode("utf-8").split("\n")
        out.write(("\n".join(map(",".join, zip(lines, results, strict=True))) + "\n").encode())
        start_in, start_out = stop_in + 1, stop_out + 1
    return True


def _assemble(batch: _Batch, body: bytes, settings: _Settings, out: IO[bytes]) -> None:
    """Write the output of one answered mini-batch."""
    if not settings.records:
        out.write(body)
        if settings.assemble_line and body and not body.endswith(b"\n"):
            out.write(b"\n")
        return
    plain_join = settings.join and settings.input_filter is None and settings.output_filter is None
    if plain_join and _join_sliced(batch.blob, body, out):
        return
    text = batch.blob[:-1].decode("utf-8")
    lines = text.split("\n")
    results = _results(body, len(lines))
    quoted = '"' in text or b'"' in body  # without quotes a split on "," is exact, nothing needs quoting
    del body
    if plain_join:
        # each input line, a comma, its output line: a joined CSV record is the two records'
        # fields in order, so nothing needs parsing
        out.write(("\n".join(map(",".join, zip(lines, results, strict=True))) + "\n").encode())
        return
    rows = batch.rows if batch.rows is not None else (_parse_lines(lines) if settings.join else [])
    outputs = _parse_lines(results)
    joined = [r + o for r, o in zip(rows, outputs, strict=True)] if settings.join else outputs
    if settings.output_filter is not None:
        selected = settings.output_filter
        joined = [selected(r) for r in joined]
    fmt = format_csv if quoted else ",".join
    out.write(("\n".join(fmt(r) for r in joined) + "\n").encode())


#: mini-batches handed to the worker ahead of the one being assembled: one computing, one queued
_IN_FLIGHT = 2


def _transform_file(worker: _Worker, path: Path, out: Any, settings: _Settings, accept: str) -> None:
    """Transform one downloaded object; its output goes to ``out.write``."""
    job = worker.job
    with _open_input(path, settings.compression) as stream:
        if settings.split == "None":
            payload = stream.read(settings.max_bytes + 1)
            if len(payload) > settings.max_bytes:
                raise JobFailure(
                    f"ClientError: an object is larger than MaxPayloadInMB "
                    f"({settings.max_bytes // MB} MB) and SplitType is None"
                )
            blobs: Iterator[bytes] = iter([payload])
        else:
            blobs = _batches(stream, settings)
        worker.start()
        pending: deque[_Batch] = deque()
        for blob in blobs:
            job.check_stop()
            batch = _prepare(blob, settings)
            worker.submit(batch.payload, settings.content_type, accept)
            pending.append(batch)
            del blob, batch  # (held by `pending` until assembled, and no longer)
            if len(pending) >= _IN_FLIGHT:
                _assemble(pending.popleft(), worker.collect(settings.timeout), settings, out)
        while pending:
            _assemble(pending.popleft(), worker.collect(settings.timeout), settings, out)


class _StreamingUpload:
    """The output object, uploaded while it is produced: parts of ``PART`` bytes go up in a
    background thread (one uploading, one waiting at most, so memory stays bounded) while the
    transform goes on; :meth:`finish` sends the rest and completes the multipart upload, so
    the object appears whole, at the end, as with a single upload. An output smaller than a
    part is one PutObject. :meth:`abort` (on failure) leaves no object and no pending upload."""

    PART = 5 * MB  # S3's minimum part size: the least memory held

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.submitted = 0
        self.parts: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None

    def _send(self) -> None:
        while (item := self._queue.get()) is not None:
            number, data = item
            if self.error is not None:
                continue  # drain; the failure is reported by write() or finish()
            try:
                answer = self.s3.upload_part(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
                )
                self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            except BaseException as exc:
                self.error = exc

    def _check(self) -> None:
        if self.error is not None:
            raise JobFailure(f"ClientError: could not upload s3://{self.bucket}/{self.key}: {self.error}")

    def _submit(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
            self._thread = threading.Thread(target=self._send, name="transform-upload", daemon=True)
            self._thread.start()
        self.submitted += 1
        self._queue.put((self.submitted, data))

    def write(self, data: bytes) -> None:
        self._check()
        self.buffer += data
        while len(self.buffer) >= self.PART:
            with memoryview(self.buffer) as view:
                part = bytes(view[: self.PART])
            del self.buffer[: self.PART]
            self._submit(part)

    def _drain(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._submit(bytes(self.buffer))
            self.buffer = bytearray()
        self._drain()
        self._check()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": sorted(self.parts, key=lambda part: part["PartNumber"])},
        )  # fmt: skip

    def abort(self) -> None:
        if self.upload_id is None:
            return
        self.error = self.error or RuntimeError("aborted")
        self._drain()
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception:  # noqa: S110 - best effort: the job fails anyway
            pass


def _transfer_config() -> Any:
    """Bounded S3 downloads: boto3's defaults (10 parts in flight, a 100-chunk write queue)
    hold more memory the larger the object (about +75 MB at 180 MB); 4 parts and a 16-chunk
    queue keep the platform's memory flat in the input size at the same throughput locally."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(max_concurrency=4, multipart_chunksize=8 * MB, max_io_queue=16)


#: glibc's M_MMAP_THRESHOLD and the size given to it: allocations from 256 KB up are mmapped
#: and given back to the OS when freed
_M_MMAP_THRESHOLD, _MMAP_FROM = -3, 256 * 1024


def _return_large_buffers() -> None:
    """Keep the platform's memory flat over many mini-batches. glibc raises its mmap threshold
    each time a large mmapped buffer is freed (up to 32 MB), after which buffers of a
    mini-batch's size come from the heap, which fragments and does not shrink: peak RSS then
    grows with the number of mini-batches (about +40 MB from 100k to 1M rows here, with the
    Python-level peak the same). A fixed threshold keeps large buffers mmapped. Process-wide
    (the platform runs in the local AWS's process) and harmless elsewhere; a no-op without
    glibc."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)
    except (OSError, AttributeError):  # not glibc
        pass


def run_transform(job: Job) -> dict[str, Any]:
    settings = _Settings(job)
    _return_large_buffers()
    s3 = client("s3")
    env_model, model_dir, code_dir, program, image = load_model(job.sandbox, job.get("model_name"),
                                                                job.get("environment"), s3)
    python = job_interpreter(job, image, code_dir / "requirements.txt").python
    accept = (
        settings.accept_given
        or env_model.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
        or "application/json"
    )
    sandbox = job.sandbox
    root = job.root
    pythonpath = os.pathsep.join(p for p in (root.seen(code_dir), os.environ.get("PYTHONPATH")) if p)
    container_env = {k: root.rewrite(v) for k, v in env_model.items()}
    container_env.update(
        SAGEMAKER_PROGRAM=program,
        SAGEMAKER_BATCH="true",
        SAGEMAKER_MAX_PAYLOAD_IN_MB=str(settings.max_bytes // MB),
        PYTHONPATH=pythonpath,
    )
    # the same fixed mmap threshold for the worker (glibc reads it at start-up), unless the Model
    # sets one: its peak then stays that of one mini-batch
    container_env.setdefault("MALLOC_MMAP_THRESHOLD_", str(_MMAP_FROM))
    env = env_with(container_env)
    cmd = [
        python, str(WORKER_SCRIPT),
        "--model-dir", root.seen(model_dir), "--code-dir", root.seen(code_dir), "--program", program,
    ]  # fmt: skip
    scratch = sandbox / "transform"
    scratch.mkdir(parents=True, exist_ok=True)
    before = root.watch()
    worker = _Worker(job, cmd, env, code_dir)  # loads the model while the first object downloads
    try:
        bucket, prefix = split_s3_uri(settings.input_uri)
        base = prefix[: prefix.rfind("/") + 1]
        out_bucket, _ = split_s3_uri(settings.output_path)
        found = 0
        for number, (key, size) in enumerate(iter_objects(s3, bucket, prefix)):
            job.check_stop()
            found += 1
            if size == 0:
                continue
            rel = relative_key(key, base)
            in_path = scratch / f"{number}.in"
            s3.download_file(bucket, key, str(in_path), Config=_transfer_config())
            _, out_key = split_s3_uri(join_s3(settings.output_path, rel + ".out"))
            upload = _StreamingUpload(s3, out_bucket, out_key)
            try:
                _transform_file(worker, in_path, upload, settings, accept)
                job.check_stop()
                upload.finish()
            except BaseException:
                upload.abort()
                raise
            in_path.unlink(missing_ok=True)
        worker.start()  # a model that cannot load fails the job even without input
        if not found:
            raise JobFailure(f'ClientError: No S3 objects found under S3 URL "{settings.input_uri}".')
    finally:
        worker.close()
    root.check(before)
    return {}
