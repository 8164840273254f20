import json
import re
from pathlib import Path

import pytest

from autoloop.config import LaunchSettings, StartSettings, load_settings, parse_model_config
from autoloop.errors import ConfigError, InvalidModelConfig

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_model_configs_are_valid():
    for path in (ROOT / "models").glob("*/config.json"):
        config = parse_model_config(path.read_bytes(), str(path))
        assert config.model == path.parent.name
        assert config.columns[0] == config.label


def test_label_must_come_first():
    raw = json.loads((ROOT / "models/churn/config.json").read_text())
    raw["columns"] = raw["columns"][1:] + raw["columns"][:1]
    with pytest.raises(InvalidModelConfig, match="label must be the first"):
        parse_model_config(json.dumps(raw), "churn.json")


def test_features_must_cover_columns():
    raw = json.loads((ROOT / "models/churn/config.json").read_text())
    raw["numeric_features"] = raw["numeric_features"][1:]
    with pytest.raises(InvalidModelConfig, match="exactly the non-label columns"):
        parse_model_config(json.dumps(raw), "churn.json")


def test_unknown_keys_are_rejected():
    raw = json.loads((ROOT / "models/churn/config.json").read_text())
    raw["lable"] = "x"
    with pytest.raises(InvalidModelConfig):
        parse_model_config(json.dumps(raw), "churn.json")


def test_missing_environment_variables_are_named():
    with pytest.raises(ConfigError) as err:
        load_settings(StartSettings, {"DATA_BUCKET": "b"})
    assert "STATE_MACHINE_ARN" in str(err.value)
    assert "NOTIFY_TOPIC_ARN" in str(err.value)


def test_settings_are_typed_and_defaulted():
    settings = load_settings(
        LaunchSettings,
        {
            "ARTIFACTS_BUCKET": "a",
            "TASK_TOKEN_TABLE": "t",
            "SAGEMAKER_ROLE_ARN": "arn:aws:iam::1:role/r",
            "FRAMEWORK_IMAGE_URI": "img",
            "JOB_MAX_RUNTIME_SECONDS": "900",
        },
    )
    assert settings.job_max_runtime_seconds == 900
    assert settings.processing_instance_type == "ml.m5.large"
    with pytest.raises(ConfigError, match="JOB_MAX_RUNTIME_SECONDS|job_max_runtime_seconds"):
        load_settings(
            LaunchSettings,
            {"ARTIFACTS_BUCKET": "a", "TASK_TOKEN_TABLE": "t", "SAGEMAKER_ROLE_ARN": "r",
             "FRAMEWORK_IMAGE_URI": "i", "JOB_MAX_RUNTIME_SECONDS": "ten"},
        )


# ----------------------------------------------------------------------------- the gate's settings
def churn(**changes):
    raw = json.loads((ROOT / "models/churn/config.json").read_text())
    raw.update(changes)
    return json.dumps(raw)


def test_gate_settings_default_to_a_strict_gate_in_the_metrics_direction():
    raw = json.loads(churn())
    for key in ("direction", "min_improvement", "promote_ties"):
        raw.pop(key, None)
    config = parse_model_config(json.dumps(raw), "churn.json")
    assert (config.direction, config.min_improvement, config.promote_ties) == (None, 0.0, False)
    tuned = parse_model_config(churn(direction="higher", min_improvement=0.005, promote_ties=True,
                                     threshold=0.8), "churn.json")
    assert (tuned.direction, tuned.min_improvement, tuned.promote_ties, tuned.threshold) == (
        "higher", 0.005, True, 0.8)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"direction": "up"}, "direction: Input should be 'higher' or 'lower' (got 'up')"),
    ({"direction": "lower"}, "direction 'lower' contradicts auc, which is better higher"),
    ({"min_improvement": -0.01}, "min_improvement -0.01 must be a finite number >= 0"),
    ({"min_improvement": "NaN"}, "min_improvement nan must be a finite number >= 0"),
    ({"promote_ties": "yes"}, "promote_ties: Input should be a valid boolean"),
    ({"threshold": 1.5}, "threshold 1.5 for auc must be in [0, 1]"),
    ({"threshold": -0.2}, "threshold -0.2 for auc must be in [0, 1]"),
    ({"promote_tie": True}, "unknown key 'promote_tie' (did you mean 'promote_ties'?)"),
    ({"min_improvment": 0.1}, "unknown key 'min_improvment' (did you mean 'min_improvement'?)"),
])
def test_gate_settings_are_validated_by_name(changes, problem):
    with pytest.raises(InvalidModelConfig, match=re.escape(problem)):
        parse_model_config(churn(**changes), "churn.json")


def test_launch_finds_the_champion_under_the_stack_unless_told_otherwise():
    base = {"ARTIFACTS_BUCKET": "a", "TASK_TOKEN_TABLE": "t", "SAGEMAKER_ROLE_ARN": "arn:aws:iam::1:role/r",
            "FRAMEWORK_IMAGE_URI": "img"}
    assert load_settings(LaunchSettings, {**base, "STACK_NAME": "s"}).package_group_prefix() == "s"
    told = load_settings(LaunchSettings, {**base, "STACK_NAME": "s", "MODEL_PACKAGE_GROUP_PREFIX": "p"})
    assert told.package_group_prefix() == "p"
    with pytest.raises(ConfigError, match="cannot find the champion"):
        load_settings(LaunchSettings, base).package_group_prefix()
