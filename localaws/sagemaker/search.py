"""Search with nested property names.

Gap in moto 5.2.5: ``SageMakerModelBackend.search`` matches a filter's ``Name`` only against
an attribute of the record (``TrainingJobName``, ``Tags.<key>``), and refuses a nested one
such as ``ModelArtifacts.S3ModelArtifacts`` with "Unknown property name". AWS's Search takes
such dotted paths (the SearchExpression reference), and the SageMaker SDK v2's
``estimator.register`` searches training jobs by ``ModelArtifacts.S3ModelArtifacts`` to
record where a model came from.

This extension takes the dotted filters (other than ``Tags.`` and ``Parents.``, which moto
knows) out of the expression, lets moto search with the rest, and keeps the results whose
Describe-shaped record has the value at that path (operators ``Equals``, ``NotEquals``,
``Contains``, ``Exists``, ``NotExists``; others are refused as AWS's validation would not).

Patched: ``moto.sagemaker.models.SageMakerModelBackend.search``.
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patches

PATCHES = Patches("sagemaker_search")
_MOTO_KNOWS = ("Tags.", "Parents.")
_OPERATORS = ("Equals", "NotEquals", "Contains", "Exists", "NotExists")


def _nested(name: str) -> bool:
    return "." in name and not name.startswith(_MOTO_KNOWS)


def _value(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(record, dict) or part not in record:
            return None
        record = record[part]
    return record


def _matches(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    value, operator = _value(record, flt["Name"]), flt.get("Operator", "Equals")
    if operator == "Exists":
        return value is not None
    if operator == "NotExists":
        return value is None
    if operator == "Contains":
        return value is not None and str(flt.get("Value")) in str(value)
    equal = value is not None and str(value) == str(flt.get("Value"))
    return equal if operator == "Equals" else not equal


def _patch(patches: Patches) -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend as Backend

    def search(self: Any, resource: Any = None, search_expression: Any = None) -> Any:
        original = PATCHES.original(Backend, "search")
        filters = list((search_expression or {}).get("Filters") or [])
        nested = [f for f in filters if _nested(str(f.get("Name", "")))]
        if not nested:
            return original(self, resource=resource, search_expression=search_expression)
        for f in nested:
            if f.get("Operator", "Equals") not in _OPERATORS:
                raise ValidationError(message=f"Operator {f.get('Operator')} is not supported for {f['Name']} "
                                              "by the local AWS")
        rest = {**search_expression, "Filters": [f for f in filters if f not in nested]}
        result = original(self, resource=resource, search_expression=rest)
        result["Results"] = [r for r in result["Results"]
                             if all(_matches(next(iter(r.values())), f) for f in nested)]
        return result

    patches.set(Backend, "search", search)


def install() -> None:
    """Patch ``SageMakerModelBackend.search``. Idempotent."""
    PATCHES.apply(_patch)


uninstall = PATCHES.restore
installed = PATCHES.active
