"""The Model Registry: package requests and checks (pure), and the lookups the pipelines make.

One package group per model (``<prefix>-<model>``), created by the model's first registration
(:func:`register`), tagged ``autoloop:stack``; a group that does not exist yet has no champion.
No template resource names a model. A package registered by Autoloop carries
in ``CustomerMetadataProperties`` its run id, its metric (the challenger's value on its
holdout) and what the quality gate compared it with: the champion's ARN and value on the
same held-out rows, and how many rows those were. The champion is the group's most recently
created Approved package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from autoloop import adapters
from autoloop.adapters import aws_call, client
from autoloop.errors import ChampionNotComparable, NoApprovedModel, PackageNotDeployable
from autoloop.naming import RUN_ID_KEY, STACK_TAG, description_text, tag_value

APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")
METRIC_NAME_KEY = "autoloop:metric-name"
METRIC_VALUE_KEY = "autoloop:metric-value"
METRIC_DIRECTION_KEY = "autoloop:metric-direction"
#: What the gate compared the package with: the champion of the time, its value on the same
#: held-out rows, and how many rows (absent for the first model of a group).
CHAMPION_ARN_KEY = "autoloop:champion-arn"
CHAMPION_METRIC_KEY = "autoloop:champion-metric-value"
HOLDOUT_ROWS_KEY = "autoloop:holdout-rows"
#: Lineage: what produced the package (see Lineage).
LINEAGE_KEYS = {
    "task": "autoloop:task",
    "framework": "autoloop:framework",
    "training_image": "autoloop:training-image",
    "entry_point": "autoloop:entry-point",
    "bundle_sha256": "autoloop:bundle-sha256",
    "hyperparameters": "autoloop:hyperparameters",
    "training_job": "autoloop:training-job",
    "source_version": "autoloop:source-version",
}
INFERENCE_ENV = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}


def package_group_name(prefix: str, model: str) -> str:
    return f"{prefix}-{model}"


@dataclass(frozen=True)
class Lineage:
    """What produced a package, recorded in its CustomerMetadataProperties beside the gate's numbers
    (the dataset's URI is ``autoloop:source``, the inference image the package's container's).

    ``hyperparameters`` as ``name=value`` pairs in the order of the config: metadata values are
    at most 256 characters of letters, digits, spaces and ``_.:/=+-@`` (others become ``_``), so a
    long set is cut; the run's training job (``training_job``) has them all.
    """

    task: str
    framework: str
    training_image: str
    entry_point: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    training_job: str | None = None
    source_version: str | None = None
    bundle_sha256: str | None = None  # None: the config was put without `autoloop publish`

    def metadata(self) -> dict[str, str]:
        values = {
            "task": self.task, "framework": self.framework, "training_image": self.training_image,
            "entry_point": self.entry_point, "bundle_sha256": self.bundle_sha256,
            "hyperparameters": " ".join(f"{k}={v}" for k, v in self.hyperparameters.items()) or None,
            "training_job": self.training_job, "source_version": self.source_version,
        }
        return {LINEAGE_KEYS[name]: tag_value(str(value)) for name, value in values.items() if value}


def lineage_of(description: Mapping[str, Any]) -> dict[str, str]:
    """A registered package's lineage as recorded (names of Lineage, plus ``source`` and
    ``inference_image``); only what the package carries."""
    props = description.get("CustomerMetadataProperties") or {}
    found = {name: str(props[key]) for name, key in LINEAGE_KEYS.items() if props.get(key)}
    if props.get("autoloop:source"):
        found["source"] = str(props["autoloop:source"])
    containers = description.get("InferenceSpecification", {}).get("Containers") or []
    if len(containers) == 1 and containers[0].get("Image"):
        found["inference_image"] = str(containers[0]["Image"])
    return found


def model_package_request(*, group: str, run_id: str, image_uri: str, model_artifacts: str,
                          evaluation_uri: str, metric_name: str, metric: float,
                          approval_status: str, source_uri: str,
                          trigger: Mapping[str, Any] | None = None, direction: str | None = None,
                          champion_arn: str | None = None, champion_metric: float | None = None,
                          holdout_rows: int | None = None, lineage: Lineage | None = None) -> dict[str, Any]:
    """The CreateModelPackage request: the challenger's evaluation.json as its ModelQuality
    statistics, and in its metadata both numbers of the gate (challenger and champion on the
    same ``holdout_rows``), the champion's ARN and the package's ``lineage``."""
    if approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {approval_status!r} is not one of {APPROVAL_STATUSES}")
    if (champion_arn is None) != (champion_metric is None):
        raise ValueError("champion_arn and champion_metric go together (both, or neither for a first model)")
    # Metadata values allow letters, digits, spaces and _.:/=+-@ only: the source is kept
    # exactly in the description (which allows punctuation), and pattern-safe here.
    metadata = {
        RUN_ID_KEY: run_id,
        "autoloop:source": tag_value(source_uri),
        "autoloop:trigger": str((trigger or {}).get("type", "s3")),
        METRIC_NAME_KEY: metric_name,
        METRIC_VALUE_KEY: _number(metric),
    }
    if direction:
        metadata[METRIC_DIRECTION_KEY] = direction
    if champion_arn is not None and champion_metric is not None:
        metadata[CHAMPION_ARN_KEY] = champion_arn
        metadata[CHAMPION_METRIC_KEY] = _number(champion_metric)
    if holdout_rows is not None:
        metadata[HOLDOUT_ROWS_KEY] = str(int(holdout_rows))
    if lineage is not None:
        metadata.update(lineage.metadata())
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


def _number(value: float) -> str:
    """A finite float as metadata text (``repr``: digits, '.', 'e' and '-', round-trips exactly)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return repr(number)


# ----------------------------------------------------------------------------- reading a package (pure)
def gate_comparison(description: Mapping[str, Any]) -> dict[str, Any]:
    """What the gate compared a registered package with, from its metadata:
    ``{"champion_arn", "champion_metric", "holdout_rows", "direction"}`` (None where absent)."""
    props = description.get("CustomerMetadataProperties") or {}

    def number(key: str) -> float | None:
        try:
            value = float(props[key])
        except (KeyError, ValueError):
            return None
        return value if math.isfinite(value) else None

    rows = number(HOLDOUT_ROWS_KEY)
    return {
        "champion_arn": props.get(CHAMPION_ARN_KEY) or None,
        "champion_metric": number(CHAMPION_METRIC_KEY),
        "holdout_rows": int(rows) if rows is not None else None,
        "direction": props.get(METRIC_DIRECTION_KEY) or None,
    }


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
def _group_missing(exc: ClientError) -> bool:
    """SageMaker's answer about a group that does not exist (ValidationException "... does not exist")."""
    return "does not exist" in str(exc)


def latest_approved_package(group: str) -> dict[str, Any] | None:
    """The Describe response of the group's most recent Approved package (the champion); None
    when there is none, also when the group does not exist yet (the model never registered)."""
    sagemaker = client("sagemaker")
    with aws_call(f"finding the latest Approved package of {group}"):
        try:
            listed = sagemaker.list_model_packages(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
            )["ModelPackageSummaryList"]
        except ClientError as exc:
            if _group_missing(exc):
                return None
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


@dataclass(frozen=True)
class Champion:
    """The group's current champion: what the evaluate job scores beside the challenger."""

    arn: str
    model_data_url: str | None
    metric_name: str | None = None
    metric: float | None = None  # as recorded at its registration (on its own holdout)


def champion(group: str) -> Champion | None:
    """The group's champion (its latest Approved package), or None for a group without one."""
    description = latest_approved_package(group)
    if description is None:
        return None
    containers = description.get("InferenceSpecification", {}).get("Containers") or []
    props = description.get("CustomerMetadataProperties") or {}
    name = props.get(METRIC_NAME_KEY)
    return Champion(
        arn=str(description["ModelPackageArn"]),
        model_data_url=containers[0].get("ModelDataUrl") if len(containers) == 1 else None,
        metric_name=name,
        metric=metric_from_package(description, name) if name else None,
    )


def comparable_champion(group: str, artifacts_bucket: str) -> Champion | None:
    """The champion, if any, whose model the evaluate job can score on the challenger's rows.

    Its model data must be one model.tar.gz in the artifacts bucket's ``runs/`` (where training
    jobs write and the SageMaker role reads); otherwise ChampionNotComparable: a champion that
    cannot be compared on the same rows is never silently skipped.
    """
    found = champion(group)
    if found is None:
        return None
    url = found.model_data_url
    if not url:
        raise ChampionNotComparable(f"the champion {found.arn} has no single container with model data.")
    try:
        bucket, key = adapters.split_s3_uri(url)
    except ValueError:
        bucket, key = "", ""
    if bucket != artifacts_bucket or not key.startswith("runs/"):
        raise ChampionNotComparable(
            f"the champion {found.arn}'s model data {url} is not an Autoloop training artifact "
            f"(s3://{artifacts_bucket}/runs/...), which the evaluate job can read."
        )
    return found


def package_group_request(group: str, stack: str, model: str) -> dict[str, Any]:
    """CreateModelPackageGroup for a model's first registration, tagged with the stack (and the
    model) so that what the system created can be told from groups made by hand."""
    return {
        "ModelPackageGroupName": group,
        "ModelPackageGroupDescription": description_text(f"Autoloop models of {model} (stack {stack})"),
        "Tags": [{"Key": STACK_TAG, "Value": tag_value(stack)}, {"Key": "autoloop:model", "Value": tag_value(model)}],
    }


def ensure_package_group(request: Mapping[str, Any]) -> bool:
    """Create the group unless it exists; True if this call created it. Two first registrations
    of a model may race: the loser's "already exists" is the group it wanted, so a success."""
    group = str(request["ModelPackageGroupName"])
    with aws_call(f"creating model package group {group}"):
        try:
            client("sagemaker").create_model_package_group(**request)
        except ClientError as exc:
            if "already exist" not in str(exc).lower():
                raise
            return False
    return True


def register(request: Mapping[str, Any], client_token: str, group_request: Mapping[str, Any]) -> str:
    """Create the package; the same ``client_token`` returns the same package on a retry. The
    model's first registration finds no group: it creates it (``group_request``), then registers."""
    group = str(request["ModelPackageGroupName"])
    if group_request["ModelPackageGroupName"] != group:
        raise ValueError(f"the group request names {group_request['ModelPackageGroupName']}, the package {group}")
    sagemaker = client("sagemaker")
    with aws_call(f"registering the model in {group}"):
        try:
            response = sagemaker.create_model_package(ClientToken=client_token, **request)
        except ClientError as exc:
            if not _group_missing(exc):
                raise
            response = None
    if response is None:
        ensure_package_group(group_request)
        with aws_call(f"registering the model in {group}"):
            response = sagemaker.create_model_package(ClientToken=client_token, **request)
    return str(response["ModelPackageArn"])
