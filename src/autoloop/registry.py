"""Model Registry requests (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoloop.gate import METRIC_NAME_KEY, METRIC_VALUE_KEY

APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")
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
    metadata = {
        "autoloop:run-id": run_id,
        "autoloop:source": source_uri[:256],
        "autoloop:trigger": str((trigger or {}).get("type", "s3")),
        METRIC_NAME_KEY: metric_name,
        METRIC_VALUE_KEY: repr(float(metric)),
    }
    return {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"Trained by Autoloop run {run_id} from {source_uri}"[:1024],
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
        "Tags": [{"Key": "autoloop:run-id", "Value": run_id}],
    }
