import json
from pathlib import Path

import pytest

from autoloop.config import LaunchSettings, StartSettings, load_settings, parse_model_config
from autoloop.errors import ConfigError, InvalidModelConfig

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_model_configs_are_valid():
    for path in (ROOT / "ml" / "models").glob("*.json"):
        config = parse_model_config(path.read_bytes(), str(path))
        assert config.model == path.stem
        assert config.columns[0] == config.label


def test_label_must_come_first():
    raw = json.loads((ROOT / "ml/models/churn.json").read_text())
    raw["columns"] = raw["columns"][1:] + raw["columns"][:1]
    with pytest.raises(InvalidModelConfig, match="label must be the first"):
        parse_model_config(json.dumps(raw), "churn.json")


def test_features_must_cover_columns():
    raw = json.loads((ROOT / "ml/models/churn.json").read_text())
    raw["numeric_features"] = raw["numeric_features"][1:]
    with pytest.raises(InvalidModelConfig, match="exactly the non-label columns"):
        parse_model_config(json.dumps(raw), "churn.json")


def test_unknown_keys_are_rejected():
    raw = json.loads((ROOT / "ml/models/churn.json").read_text())
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
