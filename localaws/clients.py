"""boto3 clients for the local AWS's own extensions.

The extensions (job runner, event delivery) call the local AWS through boto3 exactly as
any client would. In server mode ``AWS_ENDPOINT_URL`` points at the server; in-process
(``moto.mock_aws``) boto3 calls are intercepted and no endpoint is needed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
_RETRIES = Config(retries={"max_attempts": 3, "mode": "standard"})
_LOCK = threading.Lock()  # boto3's default session is not thread-safe; jobs create clients from threads


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def client(service: str) -> Any:
    """A boto3 client for ``service`` on the local AWS (endpoint from the environment)."""
    with _LOCK:
        return boto3.client(
            service,
            region_name=region(),
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            config=_RETRIES,
        )
