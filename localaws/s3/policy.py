"""Bucket policies with an ``aws:SecureTransport`` condition.

Gap in moto 5.2.5: S3 evaluates a bucket's policy on object requests
(``FakeBucket.get_permission`` in moto/s3/models.py) without any request context, and a
condition with no value to compare is taken as met. The template's TLS-only statement
(Deny s3:* when ``aws:SecureTransport`` is "false") then denies every request.

moto also has no ``Bool`` condition operator (moto/iam/policy_conditions.py), and
treats an unknown operator as met. Local mode serves plain HTTP on loopback, where there
is no network to protect; this extension evaluates bucket policies as for a request with
``aws:SecureTransport`` = "true": a statement conditioned on it being "false" does not
apply. Every other statement is evaluated by moto as before. The policy itself is deployed unchanged and
is enforced on AWS; tests/infra checks that it is in the template.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

from localaws.patching import Patches

SECURE_TRANSPORT = "true"
PATCHES = Patches("s3_policy")


def _applies_to_secure_request(statement: dict[str, Any]) -> bool:
    value = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return value is None or str(value).lower() == SECURE_TRANSPORT


def _get_permission(self: Any, action: str, resource: str) -> Any:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    document["Statement"] = [s for s in statements if _applies_to_secure_request(s)]
    if not document["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)


def install() -> None:
    """Patch ``FakeBucket.get_permission``. Idempotent."""
    PATCHES.apply(lambda patches: patches.set(FakeBucket, "get_permission", _get_permission))


uninstall = PATCHES.restore
installed = PATCHES.active
