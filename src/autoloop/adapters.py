"""AWS access: lazily created boto3 clients and translation of AWS errors to named ones.

Clients are created on first use, never at import, so a cold start pays only for what a
handler calls, and tests can swap them (``set_client``) or point them at moto. boto3 itself
(about 0.2 s to import: s3transfer, awscrt) is imported with the first client for the same
reason; ``botocore.exceptions`` (about 10 ms) is imported here for the ``except`` clauses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autoloop.errors import AutoloopError, AwsCallFailed, AwsThrottled, TransientAwsError
from autoloop.naming import execution_arn

_CONFIG: dict[str, Any] = {"retries": {"max_attempts": 4, "mode": "standard"}, "connect_timeout": 5, "read_timeout": 30}
_clients: dict[str, Any] = {}
# boto3 clients are thread-safe once made, but making them (boto3's default session) is not:
# concurrent invocations of handlers in one process (the local Lambda runtime) make them here.
_clients_lock = threading.Lock()

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "SlowDown",
    "ResourceLimitExceeded",
})
TRANSIENT_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "InternalServerError"})


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    with _clients_lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            _clients[service] = boto3.client(service, config=Config(**_CONFIG))  # type: ignore[call-overload]
        return _clients[service]


def set_client(service: str, value: Any) -> None:
    """Replace a client (tests); ``None`` forgets it so the next use creates a new one."""
    if value is None:
        _clients.pop(service, None)
    else:
        _clients[service] = value


def reset_clients() -> None:
    _clients.clear()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn boto errors into named errors: throttling and transient ones are retryable."""
    try:
        yield
    except AutoloopError:
        raise
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code in THROTTLING_CODES:
            raise AwsThrottled(f"{what}: throttled by AWS ({code}: {message}).") from exc
        if code in TRANSIENT_CODES:
            raise TransientAwsError(f"{what}: AWS had a transient error ({code}: {message}).") from exc
        raise AwsCallFailed(f"{what} failed: {code}: {message}.") from exc
    except BotoCoreError as exc:
        raise TransientAwsError(f"{what}: could not reach AWS ({exc}).") from exc


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def get_json(bucket: str, key: str) -> Any:
    with aws_call(f"reading s3://{bucket}/{key}"):
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def object_exists(bucket: str, key: str) -> bool:
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return False
        with aws_call(f"checking s3://{bucket}/{key}"):
            raise
    return True


def start_execution_once(state_machine_arn: str, name: str, payload: str, what: str) -> str | None:
    """Start the execution ``name`` of a state machine. None when it started; otherwise the
    status of the execution that already has that name: the same work, started by an earlier
    copy of the event or an earlier attempt (Step Functions keeps names for 90 days)."""
    sfn = client("stepfunctions")
    with aws_call(what):
        try:
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
            return None
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            return str(sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))["status"])

