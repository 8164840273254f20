"""A model's framework images, resolved at publish with the SageMaker SDK (sagemaker-core), offline."""

from __future__ import annotations

import builtins
import hashlib
import json
import shutil

import boto3
import pytest
from moto import mock_aws

from autoloop.config import FrameworkConfig, parse_model_config
from autoloop.errors import InvalidModelConfig
from autoloop_cli import cli, images, publish
from tests.infra.template_utils import template

pytest.importorskip("sagemaker.core", reason="the [publish] extra (sagemaker-core) is not installed")
WHERE = "models/m/config.json"


def test_the_default_framework_resolves_to_the_stacks_default_image():
    """scikit-learn 1.2-1 in us-east-1 is exactly the FrameworkImageUri the template defaults to."""
    training, inference = images.resolve_images(FrameworkConfig(), "us-east-1", WHERE)
    assert training == inference == template()["Parameters"]["FrameworkImageUri"]["Default"]


def test_images_are_regional_and_pytorch_has_separate_training_and_inference_images():
    xgb_training, xgb_inference = images.resolve_images(FrameworkConfig(name="xgboost", version="1.7-1"),
                                                         "eu-west-1", WHERE)
    assert xgb_training == xgb_inference
    assert xgb_training.endswith(".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    training, inference = images.resolve_images(FrameworkConfig(name="pytorch", version="2.5", py_version="py311"),
                                                "us-east-1", WHERE)
    assert training.endswith("/pytorch-training:2.5-cpu-py311")
    assert inference.endswith("/pytorch-inference:2.5-cpu-py311")


def test_your_own_container_is_used_as_it_is_without_the_sdk(monkeypatch):
    monkeypatch.setattr(images, "_image_uris", lambda: pytest.fail("the SDK was asked"))
    own = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/fraud:7"
    assert images.resolve_images(FrameworkConfig(image_uri=own), "us-east-1", WHERE) == (own, own)
    serve = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/fraud-serve@sha256:" + "a" * 64
    assert images.resolve_images(FrameworkConfig(image_uri=own, inference_image_uri=serve), "x", WHERE) == (own, serve)


def test_an_unknown_version_is_one_line_naming_the_field_and_the_versions_the_sdk_knows():
    with pytest.raises(InvalidModelConfig) as caught:
        images.resolve_images(FrameworkConfig(name="xgboost", version="9.9"), "us-east-1", WHERE)
    message = str(caught.value)
    assert message.startswith(f"{WHERE}: framework.version '9.9' is not a xgboost version the SageMaker SDK")
    assert "1.7-1" in message and "3.0-5" in message and len(message.splitlines()) == 1
    # The built-in algorithm's image runs no script: not offered, not accepted.
    assert "latest" not in message
    with pytest.raises(InvalidModelConfig, match="framework.version 'latest'"):
        images.resolve_images(FrameworkConfig(name="xgboost", version="latest"), "us-east-1", WHERE)


@pytest.mark.parametrize(
    ("framework", "region", "field"),
    [(FrameworkConfig(name="pytorch", version="2.5", py_version="py27"), "us-east-1", "framework.py_version"),
     (FrameworkConfig(), "mars-1", "the stack's region")],
)
def test_what_the_sdk_refuses_is_named_in_one_line(framework, region, field):
    with pytest.raises(InvalidModelConfig, match=f"^{WHERE}: {field}: the SageMaker SDK cannot resolve") as caught:
        images.resolve_images(framework, region, WHERE)
    assert len(str(caught.value).splitlines()) == 1


def test_without_the_sdk_publish_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_sagemaker(name, *args, **kwargs):
        if name.startswith("sagemaker"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sagemaker)
    with pytest.raises(images.SdkMissing, match=r"pip install 'sagemaker-core>=2.27,<3'"):
        images.resolve_images(FrameworkConfig(name="xgboost", version="1.7-1"), "us-east-1", WHERE)


@pytest.fixture
def models(tmp_path, monkeypatch):
    shutil.copytree(publish.MODELS_DIR, tmp_path / "models", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(publish, "MODELS_DIR", tmp_path / "models")
    return tmp_path / "models"


def test_publish_writes_the_resolved_images_and_the_bundles_digest_into_the_config(models):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        publish.publish(s3, "artifacts")
        config = parse_model_config(s3.get_object(Bucket="artifacts", Key="config/models/fraud.json")["Body"].read(),
                                    "fraud")
        bundle = s3.get_object(Bucket="artifacts", Key="code/models/fraud/sourcedir.tar.gz")["Body"].read()
    assert config.framework.name == "xgboost" and config.published is not None
    assert config.published.training_image.endswith("/sagemaker-xgboost:1.7-1")
    assert config.published.region == "us-east-1"
    assert config.published.bundle_sha256 == hashlib.sha256(bundle).hexdigest()
    assert config.images("stack-image").inference == config.published.inference_image


def test_an_unresolvable_framework_fails_publish_before_any_upload(models, capsys):
    path = models / "fraud" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "framework": {"name": "xgboost", "version": "0.1"}}))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        with pytest.raises(InvalidModelConfig, match=r"^models/fraud/config.json: framework.version '0.1'"):
            publish.publish(s3, "artifacts")
        assert s3.list_objects_v2(Bucket="artifacts").get("KeyCount") == 0
    # The CLI: one line, before it asks CloudFormation for the stack.
    code = cli.main(["publish", "--stack-name", "s", "--region", "us-east-1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("autoloop publish: models/fraud/config.json: framework.version '0.1' is not")
    assert len(err.splitlines()) == 1


def test_a_folder_config_may_not_carry_what_publish_writes(models):
    path = models / "churn" / "config.json"
    published = {"training_image": "a", "inference_image": "a", "region": "r", "bundle_sha256": "0" * 64}
    path.write_text(json.dumps({**json.loads(path.read_text()), "published": published}))
    with pytest.raises(InvalidModelConfig, match="'published' is written by autoloop publish"):
        publish.model_folders()


def test_a_config_put_without_publish_runs_in_the_stacks_image_only_if_it_names_the_default():
    config = json.loads((publish.MODELS_DIR / "fraud" / "config.json").read_text())
    plain = parse_model_config(json.dumps({**config, "framework": {"name": "sklearn", "version": "1.2-1"}}), "x")
    assert plain.images("stack-image").training == "stack-image"
    with pytest.raises(InvalidModelConfig, match="names framework xgboost 1.7-1 but carries no 'published' images"):
        parse_model_config(json.dumps(config), "x").images("stack-image")
    own = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/fraud:7"
    byoc = parse_model_config(json.dumps({**config, "framework": {"name": "xgboost", "image_uri": own}}), "x")
    assert byoc.images("stack-image").inference == own


def test_the_execution_role_may_pull_every_frameworks_images():
    """Each framework a config may name resolves (any version the SDK knows) to a repository
    that the template's PullModelImages statement lists."""
    from sagemaker.core import image_uris

    statement = next(s for s in template()["Resources"]["SageMakerExecutionRole"]["Properties"]["Policies"][0]
                     ["PolicyDocument"]["Statement"] if isinstance(s, dict) and s.get("Sid") == "PullModelImages")
    allowed = {r["Fn::Sub"].rsplit("/", 1)[1] for r in statement["Resource"] if isinstance(r, dict) and "Fn::Sub" in r}
    for name in FrameworkConfig.model_fields["name"].annotation.__args__:
        for version in image_uris.list_versions(name):
            try:
                pair = images.resolve_images(FrameworkConfig(name=name, version=version), "us-east-1", WHERE)
            except InvalidModelConfig:
                continue  # not a script-mode version (XGBoost's built-in algorithm), or no CPU image
            for uri in pair:
                assert uri.split("/", 1)[1].split(":")[0] in allowed, (name, version, uri)


def test_your_own_container_must_be_in_the_stacks_custom_image_repository(models):
    path = models / "price" / "config.json"
    own = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/price:3"
    path.write_text(json.dumps({**json.loads(path.read_text()), "framework": {"image_uri": own}}))
    folders = publish.model_folders()
    with pytest.raises(InvalidModelConfig, match=r"^models/price/config.json: framework.image_uri is in ECR "
                                                 r"repository 'team/price', which .* Deploy the stack with "
                                                 r"CustomImageRepository=team/price"):
        publish.check_custom_images(folders, {"CustomImageRepository": ""})
    publish.check_custom_images(folders, {"CustomImageRepository": "team/price"})
    publish.check_custom_images({k: v for k, v in folders.items() if k != "price"}, {})  # prebuilt images only
