"""The quality gate's inputs (pure): the challenger's metric, the threshold and the champion's.

The champion's metric is looked up in :mod:`autoloop.registry`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autoloop.errors import EvaluationMissing

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
