"""Fixtures for the local AWS extensions' tests.

- ``local_aws``: moto's server with the extensions (server mode), one per test module
  (starting and stopping takes about a second); tests create uniquely named resources.
- ``mocked_aws``: the in-process variant (``moto.mock_aws`` plus the extensions), per test.
- ``make_function``: create a Lambda function from handler source code (a real zip).
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localaws import server
from localaws.awslambda import runtime as lambda_runtime
from localaws.clients import client
from localaws.stepfunctions import clock as sfn_time
from tests.support import wait_for_execution

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture(scope="session", autouse=True)
def local_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep extracted code and function logs out of the repository."""
    home = tmp_path_factory.mktemp("autoloop-home")
    saved = os.environ.get("AUTOLOOP_LOCAL_HOME")
    os.environ["AUTOLOOP_LOCAL_HOME"] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            os.environ.pop("AUTOLOOP_LOCAL_HOME", None)
        else:
            os.environ["AUTOLOOP_LOCAL_HOME"] = saved


@pytest.fixture(scope="module")
def local_aws() -> Iterator[server.LocalAws]:
    aws = server.start()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    with server.in_process():
        yield


@pytest.fixture(autouse=True)
def _fresh_scale() -> Iterator[None]:
    yield
    sfn_time.set_time_scale(None)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def make_function() -> Callable[..., dict[str, Any]]:
    """``make_function(source or {path: source}, handler="app.handler", env=..., timeout=...,
    name=...)`` creates a python3.12 function and returns its configuration."""

    def make(
        code: str | dict[str, str],
        *,
        handler: str = "app.handler",
        env: dict[str, str] | None = None,
        timeout: int = 10,
        memory: int = 256,
        name: str | None = None,
    ) -> dict[str, Any]:
        files = {"app.py": code} if isinstance(code, str) else code
        iam = client("iam")
        role_name = unique("role")
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=ROLE_POLICY)["Role"]
        return client("lambda").create_function(  # type: ignore[no-any-return]
            FunctionName=name or unique("fn"),
            Runtime="python3.12",
            Role=role["Arn"],
            Handler=handler,
            Code={"ZipFile": zip_files(files)},
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": env or {}},
        )

    return make


def invoke(name: str, payload: Any = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    response = client("lambda").invoke(
        FunctionName=name, Payload=json.dumps({} if payload is None else payload), **kwargs
    )
    return json.loads(response["Payload"].read() or b"null"), response


@pytest.fixture
def invoke_fn() -> Callable[..., tuple[Any, dict[str, Any]]]:
    return invoke


@pytest.fixture(autouse=True)
def _no_pending_async() -> Iterator[None]:
    yield
    lambda_runtime.drain(5)


@pytest.fixture
def uid() -> Callable[[str], str]:
    return unique


@pytest.fixture
def state_machine() -> Callable[[dict[str, Any]], str]:
    """Create a state machine from an ASL dict; returns its ARN."""

    def create(definition: dict[str, Any]) -> str:
        iam = client("iam")
        role = iam.create_role(RoleName=unique("sfn-role"), AssumeRolePolicyDocument=ROLE_POLICY)
        return client("stepfunctions").create_state_machine(  # type: ignore[no-any-return]
            name=unique("sm"), definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
        )["stateMachineArn"]

    return create


@pytest.fixture
def run_execution() -> Callable[..., dict[str, Any]]:
    """Start an execution and wait for it to finish; returns DescribeExecution."""

    def run(state_machine_arn: str, payload: Any = None, timeout: float = 15.0) -> dict[str, Any]:
        started = client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn,
            name=unique("exec"),
            input=json.dumps(payload or {}),
        )
        return wait_for_execution(started["executionArn"], timeout, sfn=client("stepfunctions"))

    return run


@pytest.fixture
def wait_execution() -> Callable[..., dict[str, Any]]:
    return wait_for_execution


@contextmanager
def sagemaker_in_process(home: Path, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The in-process local AWS with ``bucket``, one worker a variant and endpoint waits at 0.01;
    endpoints and jobs are stopped before moto's state goes."""
    from localaws.sagemaker.endpoints import service as sagemaker_endpoints
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(home))
    monkeypatch.setenv(sagemaker_endpoints.ENV_TIME_SCALE, "0.01")
    sagemaker_endpoints.configure(workers_per_variant=1)
    try:
        with server.in_process():
            s3 = client("s3")
            s3.create_bucket(Bucket=bucket)
            try:
                yield {"s3": s3, "sm": client("sagemaker"), "rt": client("sagemaker-runtime"),
                       "cw": client("cloudwatch"), "home": home}
            finally:
                sagemaker_endpoints.stop_all()
                sagemaker_jobs.stop_all_jobs(timeout=15)
    finally:
        sagemaker_endpoints.configure(workers_per_variant=None)

