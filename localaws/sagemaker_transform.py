"""Batch Transform jobs that really run, streaming, with a local inference worker.

Gap in moto: ``CreateTransformJob`` is stored ``Completed`` and writes no output. On
SageMaker, the platform loads the Model's container (``model.tar.gz`` extracted in
``/opt/ml/model``, user code from ``SAGEMAKER_PROGRAM``), splits every input object under
the input prefix into mini-batches, sends each to the container, and assembles the
responses into ``<S3OutputPath>/<relative key>.out``. Local mode does the platform's part
here and runs the container's part in a subprocess worker
(:mod:`localaws.sagemaker_transform_worker`: ``model_fn`` once, then
``input_fn``/``predict_fn``/``output_fn`` or ``transform_fn`` per mini-batch).

Memory does not grow with the input: each object is downloaded to a temp file (with
bounded transfer buffers), read line by line, sent in mini-batches bounded by
``MaxPayloadInMB``, its output written to a temp file and uploaded from disk.

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
import gzip
import json
import operator
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from localaws.sagemaker_sandbox import (
    JobFailure,
    aws_client,
    download_object,
    env_with,
    extract_tar,
    fetch_code,
    iter_objects,
    join_s3,
    relative_key,
    rewrite,
    split_s3_uri,
)

if TYPE_CHECKING:
    from localaws.sagemaker_jobs import Job, _Child

WORKER = Path(__file__).with_name("sagemaker_transform_worker.py")
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
    """The model server stand-in: one subprocess, requests over its stdin/stdout."""

    def __init__(self, job: Job, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.job = job
        self.child: _Child = job.spawn(cmd, env=env, cwd=cwd, pipes=True)
        self.messages: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

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

    def _died(self, during: str) -> JobFailure:
        self.job.check_stop()  # a stop or timeout killed it: JobStopped instead
        code = self.child.proc.poll()
        return JobFailure(
            f"AlgorithmError: the inference worker exited (code {code}) during {during}. "
            f"Logs: {self.job.log_path}"
        )

    def receive(self, timeout: float, during: str) -> tuple[dict[str, Any], bytes]:
        deadline = time.monotonic() + timeout
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
        header, _ = self.receive(STARTUP_TIMEOUT, "model loading")
        self.job.add_compute(time.monotonic() - self.child.started)
        if not header.get("ready"):
            raise JobFailure(
                f"AlgorithmError: model loading failed: {header.get('error')}. "
                f"Logs: {self.job.log_path}"
            )

    def invoke(self, payload: bytes, content_type: str | None, accept: str, timeout: float) -> bytes:
        self.job.check_stop()
        stdin = self.child.proc.stdin
        assert stdin is not None
        request = {"n": len(payload), "content_type": content_type, "accept": accept}
        sent = time.monotonic()
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.write(payload)
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died("an invocation") from None
        header, body = self.receive(timeout, "an invocation")
        self.job.add_compute(time.monotonic() - sent)
        if not header.get("ok"):
            raise JobFailure(
                f"AlgorithmError: the model failed on an invocation: {header.get('error')}. "
                f"Logs: {self.job.log_path}"
            )
        return body

    def close(self) -> None:
        proc = self.child.proc
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


def _load_model(job: Job, s3: Any) -> tuple[dict[str, str], Path, Path, str]:
    """Fetch the Model's artifacts and code; return (environment, model_dir, code_dir, program)."""
    sandbox = job.sandbox
    opt = sandbox / "opt" / "ml"
    model_name = job.get("model_name")
    try:
        model = aws_client("sagemaker").describe_model(ModelName=model_name)
    except Exception as exc:
        raise JobFailure(f"ClientError: Could not find model {model_name!r}: {exc}") from exc
    containers = model.get("Containers") or []
    if len(containers) > 1:
        raise JobFailure("ClientError: inference pipelines (several containers) are unsupported")
    container = model.get("PrimaryContainer") or (containers[0] if containers else {})
    env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    env.update({str(k): str(v) for k, v in (job.get("environment") or {}).items()})
    model_dir = opt / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if container.get("ModelDataUrl"):
        archive = download_object(s3, container["ModelDataUrl"], sandbox / "artifacts" / "model.tar.gz")
        extract_tar(archive, model_dir)
        archive.unlink()
    program = env.get("SAGEMAKER_PROGRAM") or "inference.py"
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if (model_dir / "code" / program).is_file():
        code_dir = model_dir / "code"
    elif submit and submit.startswith("s3://"):
        code_dir = opt / "code"
        fetch_code(s3, submit, code_dir, sandbox)
    elif submit and Path(rewrite(submit, sandbox)).is_dir():
        code_dir = Path(rewrite(submit, sandbox))
    else:
        code_dir = model_dir
    if not (code_dir / program).is_file():
        raise JobFailure(
            f"ClientError: inference program {program!r} not found in the model's code/ "
            f"folder or SAGEMAKER_SUBMIT_DIRECTORY ({submit!r})"
        )
    return env, model_dir, code_dir, program


def _open_input(path: Path, compression: str) -> IO[bytes]:
    if compression == "Gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _batches(stream: IO[bytes], settings: _Settings) -> Iterator[list[bytes]]:
    """Lines (without line ends, blank ones skipped) grouped under MaxPayloadInMB."""
    batch: list[bytes] = []
    size = 0
    while True:
        raw = stream.readline(settings.max_bytes + 2)
        if not raw:
            break
        if len(raw) > settings.max_bytes and not raw.endswith(b"\n"):
            raise JobFailure(
                f"ClientError: a record is larger than MaxPayloadInMB "
                f"({settings.max_bytes // MB} MB)"
            )
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        record_size = len(line) + 1
        if batch and (settings.single or size + record_size > settings.max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += record_size
    if batch:
        yield batch


def _transform_records(
    worker: _Worker, batch: list[bytes], settings: _Settings, accept: str, out: IO[bytes]
) -> None:
    """One mini-batch with InputFilter / JoinSource / OutputFilter applied (CSV)."""
    text = b"\n".join(batch).decode("utf-8")
    lines = text.split("\n")
    if settings.join and settings.input_filter is None and settings.output_filter is None:
        _join_lines(worker, text, lines, settings, accept, out)
        return
    quoted = '"' in text  # without quotes a split on "," is exact and nothing needs quoting
    rows = _parse_lines(lines) if (settings.join or settings.input_filter) else []
    if settings.input_filter is None:
        payload = text.encode("utf-8") + b"\n"
    else:
        selected = settings.input_filter
        fmt = format_csv if quoted else ",".join
        payload = ("\n".join(fmt(selected(r)) for r in rows) + "\n").encode()
    body = worker.invoke(payload, settings.content_type, accept, settings.timeout)
    answer = body.decode("utf-8")
    results = [line for line in answer.splitlines() if line.strip()]
    if len(results) != len(lines):
        raise JobFailure(
            f"ClientError: the model returned {len(results)} records for a mini-batch of "
            f"{len(lines)}; JoinSource/OutputFilter need one output line per input line"
        )
    outputs = _parse_lines(results)
    joined = [r + o for r, o in zip(rows, outputs, strict=True)] if settings.join else outputs
    if settings.output_filter is not None:
        selected = settings.output_filter
        joined = [selected(r) for r in joined]
    fmt = format_csv if (quoted or '"' in answer) else ",".join
    out.write(("\n".join(fmt(r) for r in joined) + "\n").encode())


def _join_lines(worker: _Worker, text: str, lines: list[str], settings: _Settings, accept: str,
                out: IO[bytes]) -> None:
    """JoinSource=Input without filters: each input line, a comma, its output line. Nothing
    needs parsing (a joined CSV record is the two records' fields in order), which keeps the
    platform's cost per row to a string join."""
    body = worker.invoke(text.encode("utf-8") + b"\n", settings.content_type, accept, settings.timeout)
    results = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    if len(results) != len(lines):
        raise JobFailure(
            f"ClientError: the model returned {len(results)} records for a mini-batch of "
            f"{len(lines)}; JoinSource/OutputFilter need one output line per input line"
        )
    out.write(("\n".join(f"{line},{result}" for line, result in zip(lines, results, strict=True)) + "\n").encode())


def _transform_file(worker: _Worker, path: Path, out_path: Path, settings: _Settings, accept: str) -> None:
    job = worker.job
    with _open_input(path, settings.compression) as stream, out_path.open("wb") as out:
        if settings.split == "None":
            payload = stream.read(settings.max_bytes + 1)
            if len(payload) > settings.max_bytes:
                raise JobFailure(
                    f"ClientError: an object is larger than MaxPayloadInMB "
                    f"({settings.max_bytes // MB} MB) and SplitType is None"
                )
            batches: Iterator[list[bytes]] = iter([[payload]])
        else:
            batches = _batches(stream, settings)
        for batch in batches:
            job.check_stop()
            if settings.records:
                _transform_records(worker, batch, settings, accept, out)
                continue
            if settings.split == "None":
                payload = batch[0]
            else:
                payload = b"\n".join(batch) + b"\n"
            body = worker.invoke(payload, settings.content_type, accept, settings.timeout)
            out.write(body)
            if settings.assemble_line and body and not body.endswith(b"\n"):
                out.write(b"\n")


def _transfer_config() -> Any:
    """Bounded S3 transfers: boto3's defaults (10 parts in flight, a 100-chunk write queue)
    hold more memory the larger the object (about +75 MB at 180 MB); 4 parts and a 16-chunk
    queue keep the platform's memory flat in the input size at the same throughput locally."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(max_concurrency=4, multipart_chunksize=8 * MB, max_io_queue=16)


def run_transform(job: Job) -> dict[str, Any]:
    settings = _Settings(job)
    s3 = aws_client("s3")
    env_model, model_dir, code_dir, program = _load_model(job, s3)
    accept = (
        settings.accept_given
        or env_model.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
        or "application/json"
    )
    sandbox = job.sandbox
    pythonpath = os.pathsep.join(p for p in (str(code_dir), os.environ.get("PYTHONPATH")) if p)
    container_env = {k: rewrite(v, sandbox) for k, v in env_model.items()}
    container_env.update(
        SAGEMAKER_PROGRAM=program,
        SAGEMAKER_BATCH="true",
        SAGEMAKER_MAX_PAYLOAD_IN_MB=str(settings.max_bytes // MB),
        PYTHONPATH=pythonpath,
    )
    env = env_with(container_env)
    cmd = [
        sys.executable, str(WORKER),
        "--model-dir", str(model_dir), "--code-dir", str(code_dir), "--program", program,
    ]  # fmt: skip
    scratch = sandbox / "transform"
    scratch.mkdir(parents=True, exist_ok=True)
    worker = _Worker(job, cmd, env, code_dir)
    try:
        worker.start()
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
            in_path, out_path = scratch / f"{number}.in", scratch / f"{number}.out"
            s3.download_file(bucket, key, str(in_path), Config=_transfer_config())
            _transform_file(worker, in_path, out_path, settings, accept)
            _, out_key = split_s3_uri(join_s3(settings.output_path, rel + ".out"))
            job.check_stop()
            s3.upload_file(str(out_path), out_bucket, out_key, Config=_transfer_config())
            in_path.unlink(missing_ok=True)
            out_path.unlink(missing_ok=True)
        if not found:
            raise JobFailure(f'ClientError: No S3 objects found under S3 URL "{settings.input_uri}".')
    finally:
        worker.close()
    return {}
