"""A model's framework images, resolved at publish with the SageMaker Python SDK's image URI lookup.

``framework`` in ``models/<model>/config.json`` names a SageMaker prebuilt framework (``sklearn``,
``xgboost``, ``pytorch``), its version and optionally its Python; ``autoloop publish`` turns that
into the training and inference image URIs of the stack's region with
``sagemaker.core.image_uris.retrieve`` (SDK v3, package ``sagemaker-core``), which reads the
SDK's bundled image tables and needs no network or credentials. The URIs go into the published
config (``published``), which the Lambdas read: no Lambda imports the SDK (DESIGN principle 6).

An explicit ``framework.image_uri`` (bring your own container) is used as it is.

The SDK is imported here, lazily, and only by publish: ``autoloop_cli`` is imported by the CLI's
other commands, which must not pay its import (seconds) or need it installed.
"""

from __future__ import annotations

from typing import Any

from autoloop.config import FrameworkConfig
from autoloop.errors import InvalidModelConfig

#: The images are CPU images: resolution asks for this instance type's (Autoloop's default for every job).
RESOLVE_INSTANCE_TYPE = "ml.m5.large"
#: The SDK's name for what `pip install` needs (v3's image lookup lives in this package).
SDK_PACKAGE = "sagemaker-core"


class SdkMissing(InvalidModelConfig):
    hint = (f"Install the SageMaker SDK's core package where you run autoloop: pip install '{SDK_PACKAGE}>=2.27,<3' "
            "(the project's [publish] extra has it).")


def _image_uris() -> Any:
    try:
        from sagemaker.core import image_uris
    except ImportError as exc:
        raise SdkMissing(f"autoloop publish resolves each model's framework images with the SageMaker SDK, and "
                         f"it is not installed ({exc}).") from exc
    return image_uris


def sdk_version() -> str:
    from importlib.metadata import version

    return version(SDK_PACKAGE)


def _script_mode(framework: str, version: str) -> bool:
    """XGBoost's versions ``1`` and ``latest`` are the built-in algorithm's image (repository
    ``xgboost``), which runs no script: script mode needs a framework version (``1.7-1``)."""
    return framework != "xgboost" or "-" in version


def resolve_images(framework: FrameworkConfig, region: str, where: str) -> tuple[str, str]:
    """(training image, inference image) of ``framework`` in ``region``; InvalidModelConfig naming
    the field of ``where`` (the config file) and what the SDK knows when it cannot be resolved."""
    if framework.image_uri:
        return framework.image_uri, framework.inference_image_uri or framework.image_uri
    image_uris = _image_uris()
    known = image_uris.list_frameworks()
    if framework.name not in known:  # the config allows only frameworks the SDK has; an old SDK may not
        raise InvalidModelConfig(f"{where}: framework.name {framework.name!r} is not a framework the SageMaker SDK "
                                 f"({SDK_PACKAGE} {sdk_version()}) knows.")
    versions = [v for v in image_uris.list_versions(framework.name) if _script_mode(framework.name, v)]
    if framework.version not in versions:
        raise InvalidModelConfig(
            f"{where}: framework.version {framework.version!r} is not a {framework.name} version the SageMaker SDK "
            f"({SDK_PACKAGE} {sdk_version()}) knows; it knows {', '.join(versions)}.",
            "Pick one of them (or name your own container in framework.image_uri) and run `autoloop publish` again.",
        )
    images = []
    for scope in ("training", "inference"):
        try:
            images.append(str(image_uris.retrieve(
                framework.name, region, version=framework.version, py_version=framework.py_version,
                instance_type=RESOLVE_INSTANCE_TYPE, image_scope=scope,
            )))
        except ValueError as exc:  # the SDK's own words: an unknown region, py_version, or scope
            text = str(exc)
            field = ("framework.py_version" if "Python version" in text
                     else "the stack's region" if "region" in text else "framework")
            raise InvalidModelConfig(
                f"{where}: {field}: the SageMaker SDK cannot resolve the {scope} image of {framework.describe()} in "
                f"{region}: {str(exc).splitlines()[0]}",
                "Fix the config's framework (or name your own container in framework.image_uri) and run "
                "`autoloop publish` again.",
            ) from exc
    return images[0], images[1]
