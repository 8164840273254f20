"""The Model Registry: package requests and checks (pure), and the lookups the pipelines make.

One package group per model (``<prefix>-<model>``). A package registered by Autoloop carries
its run id and its metric in ``CustomerMetadataProperties``, so the next quality gate can
compare against it and a deployed model can be traced back to its run. The champion is the
group's most recently created Approved package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from autoloop import adapters
from autoloop.adapters import aws_call, client
from autoloop.errors import ChampionMetricMissing, NoApprovedModel, PackageNotDeployable, UnknownModel
from autoloop.gate import metric_from_evaluation
from autoloop.naming import RUN_ID_KEY, description_text, tag_value

APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")
METRIC_NAME_KEY = "autoloop:metric-name"
METRIC_VALUE_KEY = "autoloop:metric-value"
INFERENCE_ENV = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}


def package_group_name(prefix: str, model: str) -> str:
    return f"{prefix}-{model}"


def model_package_request(*, group: str, run_id: str, image_uri: str, model_artifacts: str,
                          evaluation_uri: str, metric_name: str, metric: float,
                          approval_status: str, source_uri: str,
                          trigger: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {approval_status!r} is not one of {APPROVAL_STATUSES}")
    # Metadata values allow letters, digits, spaces and _.:/=+-@ only: the source is kept
    # exactly in the description (which allows punctuation), and pattern-safe here.
    metadata = {
        RUN_ID_KEY: run_id,
        "autoloop:source": tag_value(source_uri),
        "autoloop:trigger": str((trigger or {}).get("type", "s3")),
        METRIC_NAME_KEY: metric_name,
        METRIC_VALUE_KEY: repr(float(metric)),
    }
    return {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description_text(f"Trained by Autoloop run {run_id} from {source_uri}"),
        "ModelApprovalStatus": approval_status,
        "InferenceSpecification": {
            "Containers": [{"Image": image_uri, "ModelDataUrl": model_artifacts, "Environment": INFERENCE_ENV}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
        },
        "CustomerMetadataProperties": metadata,
        "Tags": [{"Key": RUN_ID_KEY, "Value": run_id}],
    }


# ----------------------------------------------------------------------------- reading a package (pure)
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


def evaluation_uri(description: Mapping[str, Any]) -> str | None:
    """Where the package's ModelQuality statistics (evaluation.json) are, if attached."""
    uri = description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    return str(uri) if uri else None


@dataclass(frozen=True)
class ServablePackage:
    """A package that can serve: its one container's image and model data, and its version."""

    arn: str
    version: int
    image: str
    model_data_url: str
    environment: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None


@dataclass(frozen=True)
class Deployable:
    """A package the DeployPipeline may deploy: one that Autoloop registered, with its metric."""

    package: ServablePackage
    run_id: str
    metric: float


def package_version(description: Mapping[str, Any]) -> int:
    """``ModelPackageVersion``, else the number at the end of the package's ARN."""
    arn = str(description["ModelPackageArn"])
    return int(description.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1])


def servable(description: Mapping[str, Any]) -> ServablePackage:
    """The package's single container, or PackageNotDeployable."""
    arn = description.get("ModelPackageArn", "?")
    containers = description.get("InferenceSpecification", {}).get("Containers") or []
    if len(containers) != 1 or not containers[0].get("ModelDataUrl") or not containers[0].get("Image"):
        raise PackageNotDeployable(f"model package {arn} has no single container with an image and model data.")
    container = containers[0]
    return ServablePackage(arn=str(arn), version=package_version(description), image=container["Image"],
                   model_data_url=container["ModelDataUrl"], environment=dict(container.get("Environment") or {}),
                   run_id=(description.get("CustomerMetadataProperties") or {}).get(RUN_ID_KEY))


def deployable(description: Mapping[str, Any]) -> Deployable:
    """A servable package with ModelQuality metrics, its metric and its run id; else PackageNotDeployable."""
    package = servable(description)
    arn = package.arn
    if not evaluation_uri(description):
        raise PackageNotDeployable(f"model package {arn} has no ModelQuality metrics attached.")
    props = description.get("CustomerMetadataProperties") or {}
    try:
        metric = float(props[METRIC_VALUE_KEY])
    except (KeyError, ValueError) as exc:
        raise PackageNotDeployable(f"model package {arn} carries no {METRIC_NAME_KEY}/{METRIC_VALUE_KEY}.") from exc
    if not package.run_id:
        raise PackageNotDeployable(f"model package {arn} was not registered by an Autoloop run ({RUN_ID_KEY}).")
    return Deployable(package=package, run_id=package.run_id, metric=metric)


# ----------------------------------------------------------------------------- lookups (AWS)
def _unknown_group(group: str, exc: ClientError) -> UnknownModel | None:
    if "does not exist" not in str(exc):
        return None
    return UnknownModel(f"model package group {group} does not exist.",
                        "Add an AWS::SageMaker::ModelPackageGroup for the model to template.yaml.")


def latest_approved_package(group: str) -> dict[str, Any] | None:
    """The Describe response of the group's most recent Approved package (the champion)."""
    sagemaker = client("sagemaker")
    with aws_call(f"finding the latest Approved package of {group}"):
        try:
            listed = sagemaker.list_model_packages(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
            )["ModelPackageSummaryList"]
        except ClientError as exc:
            unknown = _unknown_group(group, exc)
            if unknown:
                raise unknown from exc
            raise
        if not listed:
            return None
        return dict(sagemaker.describe_model_package(ModelPackageName=listed[0]["ModelPackageArn"]))


def latest_servable(group: str) -> ServablePackage:
    """The group's latest Approved package, which must be servable; NoApprovedModel if there is none."""
    described = latest_approved_package(group)
    if described is None:
        raise NoApprovedModel(f"model package group {group} has no Approved model package.")
    return servable(described)


def champion(group: str, metric: str, artifacts_bucket: str) -> tuple[str | None, float | None]:
    """(ARN, metric) of the champion; (None, None) when the group has no Approved package.

    The metric is the one recorded at registration, else read from the package's attached
    evaluation.json when that is in the artifacts bucket; else ChampionMetricMissing.
    """
    description = latest_approved_package(group)
    if description is None:
        return None, None
    arn = str(description["ModelPackageArn"])
    value = metric_from_package(description, metric)
    if value is None:
        uri = evaluation_uri(description)
        bucket, key = adapters.split_s3_uri(uri) if uri else ("", "")
        if bucket != artifacts_bucket:
            raise ChampionMetricMissing(f"champion {arn} has no {metric!r} metric Autoloop can read.")
        value = metric_from_evaluation(adapters.get_json(bucket, key), metric, str(uri))
    return arn, value


def register(request: Mapping[str, Any], client_token: str) -> str:
    """Create the package; the same ``client_token`` returns the same package on a retry."""
    group = str(request["ModelPackageGroupName"])
    with aws_call(f"registering the model in {group}"):
        try:
            response = client("sagemaker").create_model_package(ClientToken=client_token, **request)
        except ClientError as exc:
            unknown = _unknown_group(group, exc)
            if unknown:
                raise unknown from exc
            raise
    return str(response["ModelPackageArn"])
