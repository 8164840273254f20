"""Model Registry events, and approval updates that keep the package's metadata.

Gaps in moto 5.2.5 (moto/sagemaker/models.py: SageMakerModelBackend):
- ``create_model_package`` and ``update_model_package`` emit no "SageMaker Model Package
  State Change" event. On AWS that event is what approval workflows react to; Autoloop's
  DeployPipeline is started by it. This extension emits it, with the package's Describe
  fields as the detail, after each create and each update.
- ``update_model_package`` replaces CustomerMetadataProperties with the request's value,
  so an approval with no metadata wipes it (AWS merges). Autoloop keeps the run id and
  the metric there; this extension keeps what the request does not change.

Events are put on the default bus from a background thread, as AWS delivers them
asynchronously, and never from inside moto's request handling.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from moto.sagemaker.models import SageMakerModelBackend

from localaws.clients import client
from localaws.patching import Patches
from localaws.sagemaker.sandbox import jsonable, put_state_change

log = logging.getLogger(__name__)
DETAIL_TYPE = "SageMaker Model Package State Change"
PATCHES = Patches("sagemaker_registry")
_pending: list[threading.Thread] = []




def _detail(package: Any) -> dict[str, Any]:
    raw = package.gen_response_object()
    keep = ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "ModelPackageName",
            "CreationTime", "InferenceSpecification", "ModelPackageStatus", "ModelApprovalStatus",
            "ModelMetrics", "CustomerMetadataProperties", "LastModifiedTime", "ApprovalDescription")
    return {k: jsonable(raw[k], dt.datetime.isoformat) for k in keep if raw.get(k) is not None}


def _emit(detail: dict[str, Any]) -> None:
    def send() -> None:
        put_state_change(client("events"), arn=detail["ModelPackageArn"], detail_type=DETAIL_TYPE, detail=detail,
                         bus="default")

    thread = threading.Thread(target=send, name="model-package-event", daemon=True)
    _pending.append(thread)
    thread.start()


def _create_model_package(self: Any, *args: Any, **kwargs: Any) -> Any:
    arn = PATCHES.original(SageMakerModelBackend, "create_model_package")(self, *args, **kwargs)
    _emit(_detail(self.describe_model_package(arn)))
    return arn


def _update_model_package(self: Any, model_package_arn: str, model_approval_status: str | None,
                          approval_description: str | None, customer_metadata_properties: dict[str, str] | None,
                          *args: Any, **kwargs: Any) -> Any:
    package = self.describe_model_package(model_package_arn)
    merged = {**(package.customer_metadata_properties or {}), **(customer_metadata_properties or {})}
    update = PATCHES.original(SageMakerModelBackend, "update_model_package")
    arn = update(self, model_package_arn, model_approval_status, approval_description, merged or None,
                 *args, **kwargs)
    _emit(_detail(self.describe_model_package(arn)))
    return arn


def wait(timeout: float = 5.0) -> None:
    """Wait (bounded) until the events emitted so far have been put."""
    while _pending:
        _pending.pop().join(timeout)


def install() -> None:
    """Patch ``create_model_package`` and ``update_model_package``. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    patches.set(SageMakerModelBackend, "create_model_package", _create_model_package)
    patches.set(SageMakerModelBackend, "update_model_package", _update_model_package)


uninstall = PATCHES.restore
installed = PATCHES.active
