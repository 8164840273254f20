"""The quality gate (pure): challenger against the threshold and against the champion, on the
same held-out rows, in the metric's own direction.

The evaluate job (``ml/evaluate.py``) scores the challenger and the champion that was current
when it was launched on the same test rows and writes ``evaluation.json``,
``champion_evaluation.json`` and ``comparison.json``. :func:`decide` turns those numbers and
the model's gate settings into a verdict that the state machine's ``GateDecision`` follows:

- ``BelowThreshold``: the challenger is worse than the threshold (below it for a metric that
  is better higher, above it for one that is better lower; equal passes);
- ``BelowChampion``: the challenger does not beat the champion by more than
  ``min_improvement`` (a tie at exactly ``min_improvement`` promotes only with
  ``promote_ties``); or the champion changed after the evaluate job compared with another one,
  so the challenger was never compared with the current champion;
- ``Promote``: otherwise (and always for the first model of a group, past the threshold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from autoloop.errors import EvaluationMissing, InvalidModelConfig

Task = Literal["binary", "multiclass", "regression"]
Direction = Literal["higher", "lower"]
Verdict = Literal["Promote", "BelowThreshold", "BelowChampion"]

#: The Model Registry metric group of each task, as ml/evaluate.py writes it.
TASK_GROUPS: dict[str, str] = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
METRIC_GROUPS = tuple(TASK_GROUPS.values())
#: The metrics ml/evaluate.py writes for each task (the ones a gate can use).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1"),
    "regression": ("mse", "rmse", "mae", "r2"),
}
#: The metric a model of each task is gated on when its config names none.
DEFAULT_METRIC: dict[str, str] = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
#: Which way each known metric is better.
DIRECTIONS: dict[str, Direction] = {
    **{m: "higher" for m in ("auc", "accuracy", "f1", "precision", "recall", "r2",
                             "weighted_precision", "weighted_recall", "weighted_f1")},
    **{m: "lower" for m in ("rmse", "mse", "mae")},
}
#: Metrics that are probabilities / fractions: their thresholds are in [0, 1].
PROBABILITY_METRICS = frozenset(
    {"auc", "accuracy", "f1", "precision", "recall", "weighted_precision", "weighted_recall", "weighted_f1"}
)
#: Metrics that are errors: never negative.
ERROR_METRICS = frozenset({"rmse", "mse", "mae"})
#: Relative tolerance under which an improvement equals ``min_improvement`` (float noise).
TIE_TOLERANCE = 1e-12


# ----------------------------------------------------------------------------- settings
def check_metric(task: str, metric: str, task_given: bool = True) -> None:
    """ValueError unless ``metric`` is one ml/evaluate.py writes for ``task``; the message says
    which task the metric belongs to (``task_given`` False: the task is the default, binary)."""
    if task not in TASK_METRICS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASK_METRICS)}")
    if metric in TASK_METRICS[task]:
        return
    owners = [t for t, names in TASK_METRICS.items() if metric in names]
    known = f"use one of {', '.join(TASK_METRICS[task])}"
    if owners and not task_given:
        raise ValueError(f"metric {metric!r} is a {' or '.join(owners)} metric, but the task defaults to binary; "
                         f'set "task": "{owners[0]}" (or use a binary metric: {", ".join(TASK_METRICS[task])})')
    if owners:
        raise ValueError(f"metric {metric!r} is not a {task} metric ({known}), it is a {' or '.join(owners)} one: "
                         f"fix 'metric' or 'task'")
    lower = metric.lower()
    case = ", lower case" if lower != metric and any(lower in names for names in TASK_METRICS.values()) else ""
    raise ValueError(f"metric {metric!r} is not one that ml/evaluate.py reports; {known} (the {task} metrics{case})")


def default_direction(metric: str) -> Direction | None:
    """The direction of a known metric, or None for one Autoloop does not know."""
    return DIRECTIONS.get(metric)


def resolve_direction(metric: str, configured: str | None) -> Direction:
    """The configured direction, else the metric's own; ValueError if missing or contradictory."""
    natural = default_direction(metric)
    if configured is None:
        if natural is None:
            raise ValueError(f"metric {metric!r} has no known direction; set 'direction' to 'higher' or 'lower'")
        return natural
    if configured not in ("higher", "lower"):
        raise ValueError(f"direction {configured!r} must be 'higher' or 'lower'")
    if natural is not None and configured != natural:
        raise ValueError(f"direction {configured!r} contradicts {metric}, which is better {natural}; "
                         "remove 'direction' or fix it")
    return "higher" if configured == "higher" else "lower"


def check_threshold(metric: str, threshold: float) -> None:
    """ValueError unless ``threshold`` is finite and in the metric's range (in its own units)."""
    if not math.isfinite(threshold):
        raise ValueError(f"threshold {threshold!r} for {metric} is not a finite number")
    if metric in PROBABILITY_METRICS and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold} for {metric} must be in [0, 1] ({metric} is a fraction)")
    if metric in ERROR_METRICS and threshold < 0.0:
        raise ValueError(f"threshold {threshold} for {metric} must be >= 0 ({metric} is an error, never negative)")
    if metric == "r2" and threshold > 1.0:
        raise ValueError(f"threshold {threshold} for r2 must be <= 1 (r2 is at most 1)")


def check_min_improvement(value: float) -> None:
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"min_improvement {value!r} must be a finite number >= 0 (in the metric's units)")


# ----------------------------------------------------------------------------- reading the evaluation
def metric_from_evaluation(doc: Mapping[str, Any], metric: str, where: str) -> float:
    """Read ``<group>.<metric>.value`` from an evaluation.json (Model Registry shape)."""
    for group in METRIC_GROUPS:
        entry = doc.get(group, {}).get(metric) if isinstance(doc.get(group), dict) else None
        if isinstance(entry, dict) and "value" in entry:
            value = entry["value"]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
            raise EvaluationMissing(f"{where}: {group}.{metric}.value is {value!r}, not a finite number.")
    raise EvaluationMissing(f"{where} has no {metric!r} metric in any of {METRIC_GROUPS}.")


def task_of_evaluation(doc: Mapping[str, Any], where: str) -> str:
    """The task whose metric group the evaluation holds (exactly one)."""
    found = [task for task, group in TASK_GROUPS.items() if isinstance(doc.get(group), dict)]
    if len(found) != 1:
        raise EvaluationMissing(f"{where} holds {len(found)} of the metric groups {METRIC_GROUPS}; expected one.")
    return found[0]


def read_comparison(doc: Mapping[str, Any], where: str, metric_name: str,
                    challenger: float) -> tuple[int, str | None, float | None]:
    """(holdout rows, champion ARN, champion value) from comparison.json, checked against the gate.

    The comparison must be of the gate's metric and agree with evaluation.json's value for the
    challenger; a champion value comes with the champion's ARN (the one the launch looked up).
    """
    if doc.get("metric") != metric_name:
        raise EvaluationMissing(f"{where} compares {doc.get('metric')!r}, but the gate's metric is {metric_name!r}.")
    rows = doc.get("holdout_rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise EvaluationMissing(f"{where}: holdout_rows is {rows!r}, not a positive row count.")
    value = _finite(doc.get("challenger"))
    if value is None or not math.isclose(value, challenger, rel_tol=1e-9, abs_tol=1e-12):
        raise EvaluationMissing(f"{where}: the challenger's {metric_name} {value!r} disagrees with evaluation.json "
                                f"({challenger!r}).")
    raw, arn = doc.get("champion"), doc.get("champion_arn")
    if raw is None:
        return rows, None, None
    champion = _finite(raw)
    if champion is None:
        raise EvaluationMissing(f"{where}: the champion's {metric_name} is {raw!r}, not a finite number.")
    if not isinstance(arn, str) or not arn:
        raise EvaluationMissing(f"{where} has a champion value but no champion_arn: which champion is unknown.")
    return rows, arn, champion


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# ----------------------------------------------------------------------------- the verdict
def _num(value: float) -> str:
    return f"{value:.6g}"


def decide(*, task: str, metric_name: str, metric: float, threshold: float, champion_metric: float | None,
           holdout_rows: int | None, direction: str | None = None, min_improvement: float = 0.0,
           promote_ties: bool = False, champion_arn: str | None = None, evaluation_uri: str = "",
           current_champion_arn: str | None = None, check_current: bool = False) -> dict[str, Any]:
    """The gate's verdict and the figures behind it (what GateDecision and the report read).

    ``champion_metric`` is the champion's value on the challenger's holdout (None for the first
    model). With ``check_current``, ``current_champion_arn`` is the group's champion now: if it
    is not the one compared (``champion_arn``), the challenger was not compared with it and is
    not promoted; if there is none any more, only the threshold applies.
    Raises InvalidModelConfig for settings that make no sense and EvaluationMissing for a
    non-finite figure.
    """
    if task not in TASK_METRICS:
        raise InvalidModelConfig(f"task {task!r} is not one of {', '.join(TASK_METRICS)}.")
    if metric_name not in TASK_METRICS[task] and default_direction(metric_name) is not None:
        raise InvalidModelConfig(f"metric {metric_name!r} is not a {task} metric; "
                                 f"use one of {', '.join(TASK_METRICS[task])}.")
    try:
        way = resolve_direction(metric_name, direction)
        check_threshold(metric_name, threshold)
        check_min_improvement(min_improvement)
    except ValueError as exc:
        raise InvalidModelConfig(f"the gate settings are invalid: {exc}.") from exc
    for name, value in (("metric", metric), ("champion_metric", champion_metric)):
        if value is not None and not math.isfinite(value):
            raise EvaluationMissing(f"the {name} {value!r} is not a finite number.")

    better = way == "higher"
    rows = f" on the same {holdout_rows} holdout rows" if holdout_rows else ""
    compared = champion_arn if champion_metric is not None else None
    changed = gone = ""
    if check_current and current_champion_arn != compared:
        if current_champion_arn is None:
            gone = f"; the champion {compared} it was compared with is no longer Approved"
            champion_metric, compared = None, None
        else:
            before = f"the champion {compared}" if compared else "no champion"
            changed = (f"the champion changed to {current_champion_arn} after the evaluate job compared it with "
                       f"{before}, so it was never compared with the current champion on the same rows")

    verdict: Verdict
    if (metric < threshold) if better else (metric > threshold):
        verdict = "BelowThreshold"
        reason = (f"{metric_name} {_num(metric)} is {'below' if better else 'above'} the threshold "
                  f"{_num(threshold)} ({way} is better)")
    elif changed:
        verdict, reason = "BelowChampion", f"{metric_name} {_num(metric)}: {changed}"
    elif champion_metric is None:
        verdict = "Promote"
        reason = (f"{metric_name} {_num(metric)} meets the threshold {_num(threshold)} ({way} is better); "
                  f"no champion to beat{gone}")
    else:
        gain = (metric - champion_metric) if better else (champion_metric - metric)
        tie = math.isclose(gain, min_improvement, rel_tol=TIE_TOLERANCE, abs_tol=TIE_TOLERANCE)
        versus = f"the champion's {_num(champion_metric)}{rows}"
        if tie and not promote_ties:
            verdict = "BelowChampion"
            needed = "ties do not promote" if min_improvement == 0 else (
                f"an improvement of exactly min_improvement {_num(min_improvement)} does not promote")
            reason = f"{metric_name} {_num(metric)} ties {versus}: {needed} (promote_ties is false)"
        elif tie or gain > min_improvement:
            verdict = "Promote"
            reason = (f"{metric_name} {_num(metric)} beats {versus} by {_num(gain)} ({way} is better, "
                      f"min_improvement {_num(min_improvement)}{', ties promote' if tie else ''})")
        elif gain <= 0:
            verdict = "BelowChampion"
            worse = f", worse by {_num(-gain)}" if gain < 0 else ""
            reason = f"{metric_name} {_num(metric)} is no better than {versus} ({way} is better{worse})"
        else:
            verdict = "BelowChampion"
            reason = (f"{metric_name} {_num(metric)} improves on {versus} by {_num(gain)}, less than "
                      f"min_improvement {_num(min_improvement)}")
        reason += f"; champion {compared}"
    return {
        "verdict": verdict,
        "metric_name": metric_name,
        "metric": metric,
        "direction": way,
        "threshold": threshold,
        "champion_arn": compared,
        "champion_metric": champion_metric,
        "holdout_rows": holdout_rows,
        "min_improvement": min_improvement,
        "promote_ties": promote_ties,
        "evaluation_uri": evaluation_uri,
        "reason": reason,
    }
