"""The container filesystem and S3 transfers for locally run SageMaker jobs.

Gap in moto: moto's SageMaker keeps job records only. Nothing stands in for the job
container: no ``/opt/ml`` filesystem, no download of inputs from S3 before the job, no
upload of outputs after it. Without Docker there is no container at all, so each job gets
a sandbox folder (``<work_root>/jobs/<job-name>``) whose ``opt/ml`` replaces the
container's ``/opt/ml``. This module holds what every job kind needs for that:

- rewriting a leading ``/opt/ml`` in paths, arguments and environment values;
- streaming S3 prefixes to local folders and local folders back to S3 (boto3 transfer,
  from and to disk, so memory does not grow with the data size);
- ``tar.gz`` packing and safe unpacking (``model.tar.gz``, ``sourcedir.tar.gz``).

All AWS calls go through :func:`localaws.clients.client`, so they reach moto both
in-process (``moto.mock_aws``) and in server mode (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml"
FAILURE_REASON_MAX = 1024  # SageMaker's FailureReason / ExitMessage limit


class JobFailure(Exception):
    """The job ends ``Failed`` with ``reason`` as its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rewrite(value: str, sandbox: Path) -> str:
    """Replace a leading ``/opt/ml`` in ``value`` with ``<sandbox>/opt/ml``."""
    if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
        return str(sandbox) + value
    return value


def local_path(container_path: str, sandbox: Path) -> Path:
    """The sandbox path for an absolute container path under ``/opt/ml``."""
    if not (container_path == CONTAINER_ROOT or container_path.startswith(CONTAINER_ROOT + "/")):
        raise JobFailure(
            f"ClientError: local path {container_path!r} is not under {CONTAINER_ROOT} "
            "(local mode only maps /opt/ml into the job sandbox)"
        )
    return Path(rewrite(container_path, sandbox))


def truncate(text: str, limit: int = FAILURE_REASON_MAX) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_head(path: Path, limit: int = FAILURE_REASON_MAX) -> str | None:
    """The first ``limit`` bytes of a text file, or None if it does not exist."""
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None



# --- S3 -----------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise JobFailure(f"ClientError: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise JobFailure(f"ClientError: {uri!r} has no bucket")
    return bucket, key


def join_s3(prefix_uri: str, *parts: str) -> str:
    """``s3://b/p`` + parts, with exactly one ``/`` between the pieces."""
    out = prefix_uri.rstrip("/")
    for raw in parts:
        part = raw.strip("/")
        if part:
            out += "/" + part
    return out


def iter_objects(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under ``prefix``, skipping folder markers."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/"):
                yield key, int(item.get("Size", 0))


def relative_key(key: str, base: str) -> str:
    """The part of ``key`` below ``base``; the file name if ``key`` equals ``base``."""
    rel = key[len(base) :].lstrip("/") or posixpath.basename(key)
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise JobFailure(f"ClientError: S3 key {key!r} cannot be mapped to a local file")
    return rel


def download_prefix(s3: Any, uri: str, dest: Path) -> int:
    """Download every object under the S3 prefix ``uri`` into ``dest`` (SageMaker File mode).

    Keys keep their path below the prefix; an exact object key lands under its file name.
    Raises :class:`JobFailure` when nothing matches, as SageMaker does.
    """
    bucket, prefix = split_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for key, _size in iter_objects(s3, bucket, prefix):
        target = dest / relative_key(key, prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        count += 1
    if count == 0:
        raise JobFailure(f'ClientError: No S3 objects found under S3 URL "{uri}".')
    return count


def upload_dir(s3: Any, src: Path, uri: str) -> int:
    """Upload every file below ``src`` to ``uri/<relative path>``."""
    bucket, prefix = split_s3_uri(uri)
    count = 0
    if not src.is_dir():
        return 0
    for path in sorted(src.rglob("*")):
        if path.is_file():
            rel = path.relative_to(src).as_posix()
            key = f"{prefix.rstrip('/')}/{rel}" if prefix.strip("/") else rel
            s3.upload_file(str(path), bucket, key)
            count += 1
    return count


def download_object(s3: Any, uri: str, dest: Path) -> Path:
    bucket, key = split_s3_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, key, str(dest))
    except Exception as exc:  # botocore ClientError (404) or transfer error
        raise JobFailure(f"ClientError: could not download {uri}: {exc}") from exc
    return dest


# --- tar --------------------------------------------------------------------------------


def make_tar_gz(src: Path, dest: Path) -> Path:
    """Pack the contents of ``src`` (not the folder itself) into ``dest``, as SageMaker does."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as archive:
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                archive.add(path, arcname=path.relative_to(src).as_posix(), recursive=False)
    return dest


def extract_tar(archive_path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise JobFailure(f"ClientError: could not extract {archive_path.name}: {exc}") from exc


def fetch_code(s3: Any, location: str, dest: Path, scratch: Path) -> None:
    """Put a source dir (``s3://.../sourcedir.tar.gz``, a local tar or a local folder) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if location.startswith("s3://"):
        if location.endswith((".tar.gz", ".tgz", ".tar")):
            archive = download_object(s3, location, scratch / "sourcedir.tar.gz")
            extract_tar(archive, dest)
            archive.unlink()
        else:
            download_prefix(s3, location, dest)
        return
    path = Path(location.removeprefix("file://"))
    if path.is_dir():
        if path.resolve() != dest.resolve():
            shutil.copytree(path, dest, dirs_exist_ok=True)
    elif path.is_file():
        extract_tar(path, dest)
    else:
        raise JobFailure(f"ClientError: source directory {location!r} not found")


def dir_has_files(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def fresh_dir(path: Path) -> Path:
    """An empty folder at ``path`` (a stale sandbox of an earlier job of that name is removed)."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def env_with(extra: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``os.environ`` updated with ``extra`` (the process environment is untouched)."""
    env = dict(os.environ)
    env.update(extra)
    return env


# --- processes and events, shared by jobs, endpoints and the registry --------------------


def kill_process_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def epoch_ms(value: dt.datetime) -> int:
    """A datetime as epoch milliseconds (naive ones are UTC), as SageMaker's events carry times."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def jsonable(value: Any, when: Callable[[dt.datetime], Any] = epoch_ms) -> Any:
    """moto's records as JSON values for an event's detail: datetimes through ``when``,
    containers recursively, anything else unknown as its string."""
    if isinstance(value, dt.datetime):
        return when(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, when) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, when) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def put_state_change(events: Any, *, arn: str, detail_type: str, detail: dict[str, Any], bus: str) -> None:
    """Put one ``aws.sagemaker`` state-change event (a job's or an endpoint's) on ``bus``.
    A rejected or failed put is logged, never raised: the resource's state stands."""
    log = logging.getLogger(__name__)
    try:
        result = events.put_events(Entries=[{
            "Time": dt.datetime.now(dt.UTC), "Source": "aws.sagemaker", "Resources": [arn],
            "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus,
        }])
        if result.get("FailedEntryCount"):
            log.warning("%s event of %s rejected: %s", detail_type, arn, result["Entries"])
    except Exception:
        log.exception("could not put the %s event of %s", detail_type, arn)
