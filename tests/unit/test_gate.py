"""autoloop.gate.decide: the verdict, both directions, thresholds, ties and min_improvement."""

from __future__ import annotations

import math

import pytest

from autoloop import gate
from autoloop.errors import EvaluationMissing, InvalidModelConfig

CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/s-churn/1"
NEWER = "arn:aws:sagemaker:us-east-1:123456789012:model-package/s-churn/2"
KEYS = {"verdict", "metric_name", "metric", "direction", "threshold", "champion_arn", "champion_metric",
        "holdout_rows", "min_improvement", "promote_ties", "evaluation_uri", "reason"}


def auc(metric: float, champion: float | None = None, threshold: float = 0.75, **kw):
    return gate.decide(task="binary", metric_name="auc", metric=metric, threshold=threshold,
                       champion_metric=champion, holdout_rows=300,
                       champion_arn=CHAMPION if champion is not None else None, evaluation_uri="s3://a/e.json",
                       **kw)


def rmse(metric: float, champion: float | None = None, threshold: float = 5.0, **kw):
    return gate.decide(task="regression", metric_name="rmse", metric=metric, threshold=threshold,
                       champion_metric=champion, holdout_rows=120,
                       champion_arn=CHAMPION if champion is not None else None, **kw)


def test_the_output_has_every_documented_key_and_one_line_reason():
    result = auc(0.84, 0.82)
    assert set(result) == KEYS
    assert result == {**result, "verdict": "Promote", "metric_name": "auc", "metric": 0.84, "direction": "higher",
                      "threshold": 0.75, "champion_arn": CHAMPION, "champion_metric": 0.82, "holdout_rows": 300,
                      "min_improvement": 0.0, "promote_ties": False, "evaluation_uri": "s3://a/e.json"}
    assert "\n" not in result["reason"] and "300 holdout rows" in result["reason"] and CHAMPION in result["reason"]


def test_first_model_is_judged_on_the_threshold_alone():
    assert auc(0.80)["verdict"] == "Promote"
    assert auc(0.80)["champion_arn"] is None and "no champion" in auc(0.80)["reason"]
    assert auc(0.74)["verdict"] == "BelowThreshold"
    assert auc(0.75)["verdict"] == "Promote"  # the threshold is the least acceptable value


def test_higher_is_better_against_the_champion():
    assert auc(0.83, 0.82)["verdict"] == "Promote"
    worse = auc(0.81, 0.82)
    assert worse["verdict"] == "BelowChampion" and "no better than the champion's 0.82" in worse["reason"]


def test_the_threshold_is_checked_before_the_champion():
    result = auc(0.70, 0.60)  # better than the champion, still not good enough
    assert result["verdict"] == "BelowThreshold" and "below the threshold 0.75" in result["reason"]


def test_a_regression_gate_refuses_higher_rmse_and_promotes_lower():
    refused = rmse(2.6, champion=2.4)
    assert refused["verdict"] == "BelowChampion" and refused["direction"] == "lower"
    assert "worse by 0.2" in refused["reason"]
    assert rmse(2.2, champion=2.4)["verdict"] == "Promote"
    # below the threshold means worse: for rmse, above it
    above = rmse(5.5)
    assert above["verdict"] == "BelowThreshold" and "above the threshold 5 (lower is better)" in above["reason"]
    assert rmse(4.9)["verdict"] == "Promote"


def test_ties_do_not_promote_unless_asked():
    tie = auc(0.8353120094191524, 0.8353120094191524)
    assert tie["verdict"] == "BelowChampion" and "ties the champion's" in tie["reason"]
    assert auc(0.8353, 0.8353, promote_ties=True)["verdict"] == "Promote"
    assert rmse(2.4, 2.4)["verdict"] == "BelowChampion"
    assert rmse(2.4, 2.4, promote_ties=True)["verdict"] == "Promote"


def test_min_improvement_is_in_the_metrics_units_and_direction():
    small = auc(0.825, 0.82, min_improvement=0.01)
    assert small["verdict"] == "BelowChampion" and "less than min_improvement 0.01" in small["reason"]
    assert auc(0.835, 0.82, min_improvement=0.01)["verdict"] == "Promote"
    # exactly min_improvement is a tie (float noise included): promote_ties decides
    assert auc(0.83, 0.82, min_improvement=0.01)["verdict"] == "BelowChampion"
    assert auc(0.83, 0.82, min_improvement=0.01, promote_ties=True)["verdict"] == "Promote"
    assert rmse(2.3, 2.4, min_improvement=0.05)["verdict"] == "Promote"
    assert rmse(2.38, 2.4, min_improvement=0.05)["verdict"] == "BelowChampion"


def test_a_champion_that_changed_after_the_evaluation_is_not_beaten_by_default():
    changed = auc(0.90, 0.80, current_champion_arn=NEWER, check_current=True)
    assert changed["verdict"] == "BelowChampion" and NEWER in changed["reason"]
    assert changed["champion_arn"] == CHAMPION  # what was compared, on the same rows
    appeared = auc(0.90, current_champion_arn=NEWER, check_current=True)
    assert appeared["verdict"] == "BelowChampion" and "compared it with no champion" in appeared["reason"]
    same = auc(0.90, 0.80, current_champion_arn=CHAMPION, check_current=True)
    assert same["verdict"] == "Promote"
    gone = auc(0.90, 0.95, current_champion_arn=None, check_current=True)
    assert gone["verdict"] == "Promote" and gone["champion_arn"] is None and "no longer Approved" in gone["reason"]
    assert auc(0.70, 0.60, current_champion_arn=NEWER, check_current=True)["verdict"] == "BelowThreshold"


def test_direction_defaults_from_the_metric_and_contradictions_are_refused():
    assert gate.resolve_direction("auc", None) == "higher"
    assert gate.resolve_direction("mae", None) == "lower"
    assert gate.resolve_direction("my_score", "lower") == "lower"
    with pytest.raises(ValueError, match="no known direction"):
        gate.resolve_direction("my_score", None)
    with pytest.raises(InvalidModelConfig, match="contradicts rmse, which is better lower"):
        rmse(2.0, direction="higher")
    with pytest.raises(InvalidModelConfig, match="'up' must be 'higher' or 'lower'"):
        auc(0.8, direction="up")


@pytest.mark.parametrize(("metric", "threshold", "problem"), [
    ("auc", 1.2, r"must be in \[0, 1\]"),
    ("f1", -0.1, r"must be in \[0, 1\]"),
    ("rmse", -1.0, "must be >= 0"),
    ("r2", 1.5, "must be <= 1"),
    ("auc", math.nan, "not a finite number"),
    ("mse", math.inf, "not a finite number"),
])
def test_thresholds_are_range_checked_per_metric(metric, threshold, problem):
    with pytest.raises(ValueError, match=problem):
        gate.check_threshold(metric, threshold)


def test_thresholds_in_range_pass():
    for metric, threshold in (("auc", 0.0), ("auc", 1.0), ("rmse", 1e6), ("r2", -3.0), ("mae", 0.0)):
        gate.check_threshold(metric, threshold)


def test_bad_settings_and_figures_are_named():
    with pytest.raises(InvalidModelConfig, match="min_improvement -0.1"):
        auc(0.8, 0.7, min_improvement=-0.1)
    with pytest.raises(InvalidModelConfig, match="not a binary metric"):
        gate.decide(task="binary", metric_name="rmse", metric=1.0, threshold=2.0, champion_metric=None,
                    holdout_rows=10)
    with pytest.raises(InvalidModelConfig, match="task 'ranking'"):
        gate.decide(task="ranking", metric_name="auc", metric=0.8, threshold=0.5, champion_metric=None,
                    holdout_rows=10)
    with pytest.raises(EvaluationMissing, match="champion_metric nan"):
        auc(0.8, math.nan)


# ----------------------------------------------------------------------------- reading the evaluate job's files
def test_the_task_comes_from_the_evaluation_group():
    assert gate.task_of_evaluation({"regression_metrics": {"rmse": {"value": 1.0}}}, "e") == "regression"
    assert gate.task_of_evaluation({"multiclass_classification_metrics": {}}, "e") == "multiclass"
    with pytest.raises(EvaluationMissing, match="holds 0 of the metric groups"):
        gate.task_of_evaluation({"other": {}}, "e")


def test_comparison_is_checked_against_the_gate():
    doc = {"metric": "auc", "direction": "higher", "holdout_rows": 300, "challenger": 0.84, "champion": 0.82,
           "champion_arn": CHAMPION}
    assert gate.read_comparison(doc, "c.json", "auc", 0.84) == (300, CHAMPION, 0.82)
    assert gate.read_comparison({**doc, "champion": None, "champion_arn": None}, "c", "auc", 0.84) == (300, None, None)
    with pytest.raises(EvaluationMissing, match="compares 'f1'"):
        gate.read_comparison({**doc, "metric": "f1"}, "c", "auc", 0.84)
    with pytest.raises(EvaluationMissing, match="disagrees with evaluation.json"):
        gate.read_comparison(doc, "c", "auc", 0.85)
    with pytest.raises(EvaluationMissing, match="not a positive row count"):
        gate.read_comparison({**doc, "holdout_rows": 0}, "c", "auc", 0.84)
    with pytest.raises(EvaluationMissing, match="no champion_arn"):
        gate.read_comparison({**doc, "champion_arn": None}, "c", "auc", 0.84)
    with pytest.raises(EvaluationMissing, match="not a finite number"):
        gate.read_comparison({**doc, "champion": "NaN"}, "c", "auc", 0.84)
