"""The quality gate's inputs: the challenger's metric and the champion's."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from autoloop.errors import EvaluationMissing

METRIC_NAME_KEY = "autoloop:metric-name"
METRIC_VALUE_KEY = "autoloop:metric-value"
METRIC_GROUPS = ("binary_classification_metrics", "regression_metrics", "multiclass_classification_metrics")


def metric_from_evaluation(doc: Mapping[str, Any], metric: str, where: str) -> float:
    """Read ``<group>.<metric>.value`` from an evaluation.json (Model Registry shape)."""
    for group in METRIC_GROUPS:
        entry = doc.get(group, {}).get(metric) if isinstance(doc.get(group), dict) else None
        if isinstance(entry, dict) and "value" in entry:
            value = entry["value"]
            if isinstance(value, (int, float)) and math.isfinite(value):
                return float(value)
            raise EvaluationMissing(f"{where}: {group}.{metric}.value is {value!r}, not a finite number.")
    raise EvaluationMissing(f"{where} has no {metric!r} metric in any of {METRIC_GROUPS}.")


def latest_approved(packages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The champion: the most recently created Approved package, if any."""
    approved = [p for p in packages if p.get("ModelApprovalStatus") == "Approved"]
    return max(approved, key=lambda p: p["CreationTime"]) if approved else None


def metric_from_package(description: Mapping[str, Any], metric: str) -> float | None:
    """The metric recorded at registration, or None if the package carries none."""
    props = description.get("CustomerMetadataProperties") or {}
    if props.get(METRIC_NAME_KEY) != metric:
        return None
    try:
        value = float(props[METRIC_VALUE_KEY])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def gate_inputs(metric_name: str, metric: float, threshold: float, evaluation_uri: str,
                champion_arn: str | None, champion_metric: float | None) -> dict[str, Any]:
    """What the state machine's Choice compares. ``champion_metric`` is null for the first model."""
    return {
        "metric_name": metric_name,
        "metric": metric,
        "threshold": threshold,
        "evaluation_uri": evaluation_uri,
        "champion_arn": champion_arn,
        "champion_metric": champion_metric,
    }
