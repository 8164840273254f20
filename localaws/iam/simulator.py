"""``iam:SimulatePrincipalPolicy``, answering ``allowed``: IAM is not enforced locally.

Gap in moto 5.2.5: IAM has no ``SimulatePrincipalPolicy``; the call is answered with an
HTML 500 page, which botocore reports as "invalid XML received". The SageMaker SDK v3
calls it before training (``ModelTrainer``: the role check of
``sagemaker.core.helper.iam_role_resolver``, and the staging bucket check), so without it
``ModelTrainer`` cannot even be constructed against the local AWS.

Local mode does not enforce IAM: moto accepts every call whatever the caller's policies,
so the honest answer to "would this principal be allowed?" is the one every call gets:
``allowed``, for every action on every resource. The principal must exist (a role, user
or group of moto's IAM, as on AWS, else ``NoSuchEntity``), so a typo in a role ARN still
fails here as it would on AWS. The decision says nothing about the role's real policies:
check those on AWS (``aws iam simulate-principal-policy``, or the template's checks).

One ``EvaluationResult`` per action and resource (``ResourceArns`` defaults to ``*``),
each with its ``ResourceSpecificResults``, no matched statements, and ``MaxItems`` /
``Marker`` paging as the API documents.

Patched: ``moto.iam.responses.IamResponse.simulate_principal_policy`` (added).
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patches

PATCHES = Patches("iam_simulator")
DECISION = "allowed"
DEFAULT_MAX_ITEMS = 100  # the API's default page size


def _entity(backend: Any, arn: str) -> None:
    """Raise moto's NoSuchEntity / InvalidInput unless ``arn`` names a role, user or group."""
    from moto.iam.exceptions import InvalidInput, NoSuchEntity

    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or "/" not in parts[5]:
        raise InvalidInput(f"Invalid ARN: {arn!r} is not the ARN of an IAM user, group or role.")
    kind, name = parts[5].split("/", 1)[0], parts[5].rsplit("/", 1)[1]
    lookups = {"role": backend.get_role, "user": backend.get_user, "group": backend.get_group}
    if kind not in lookups:
        raise InvalidInput(f"Invalid ARN: {arn!r} is not the ARN of an IAM user, group or role.")
    try:
        lookups[kind](name)
    except NoSuchEntity:
        raise
    except Exception as exc:  # moto's not-found errors differ per entity type
        raise NoSuchEntity(f"The {kind} with name {name} cannot be found.") from exc


def evaluation_results(actions: list[str], resources: list[str]) -> list[dict[str, Any]]:
    """One ``allowed`` result per (action, resource)."""
    return [
        {
            "EvalActionName": action,
            "EvalResourceName": resource,
            "EvalDecision": DECISION,
            "MatchedStatements": [],
            "MissingContextValues": [],
            "ResourceSpecificResults": [
                {"EvalResourceName": resource, "EvalResourceDecision": DECISION,
                 "MatchedStatements": [], "MissingContextValues": []}
            ],
        }
        for action in actions
        for resource in (resources or ["*"])
    ]  # fmt: skip


def _simulate_principal_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.iam.exceptions import InvalidInput

    _entity(self.backend, str(self._get_param("PolicySourceArn") or ""))
    actions = [str(a) for a in self._get_param("ActionNames", []) or []]
    resources = [str(r) for r in self._get_param("ResourceArns", []) or []]
    results = evaluation_results(actions, resources)
    marker = self._get_param("Marker")
    try:
        start = int(marker) if marker else 0
        size = int(self._get_param("MaxItems") or DEFAULT_MAX_ITEMS)
    except ValueError:
        raise InvalidInput("Marker and MaxItems must come from an earlier response and be whole numbers") from None
    page = results[start : start + size]
    more = start + size < len(results)
    body: dict[str, Any] = {"EvaluationResults": page, "IsTruncated": more}
    if more:
        body["Marker"] = str(start + size)
    return ActionResult(body)


def _patch(patches: Patches) -> None:
    from moto.iam.responses import IamResponse

    patches.set(IamResponse, "simulate_principal_policy", _simulate_principal_policy)


def install() -> None:
    """Add ``IamResponse.simulate_principal_policy``. Idempotent."""
    PATCHES.apply(_patch)


uninstall = PATCHES.restore
installed = PATCHES.active
