"""SageMaker Model Monitor (data quality) on the local AWS: baselines, schedules, executions.

On AWS, Autoloop baselines with the region's ``sagemaker-model-monitor-analyzer`` image
through ``CreateProcessingJob`` (what the SageMaker SDK's
``DefaultModelMonitor.suggest_baseline`` does) and monitors with ``CreateMonitoringSchedule``
(``MonitoringType`` ``DataQuality``). The gaps in moto (5.2.5):

- a processing job with the analyzer image runs nothing (the local job runner needs a
  ``ContainerEntrypoint``, and the image's own entrypoint is Spark + Deequ in a container);
- ``CreateMonitoringSchedule``, ``DescribeMonitoringSchedule``, ``ListMonitoringSchedules``,
  ``DeleteMonitoringSchedule``, ``ListMonitoringExecutions`` (and Start/Stop) raise
  ``NotImplementedError``; only the data-quality *job definitions* exist;
- moto has no clock, so schedules never fire.

:func:`install` (idempotent) fills them:

- the analyzer image (any ``ImageUri`` whose repository is ``sagemaker-model-monitor-analyzer``,
  whatever the account, region or tag) is registered as a local image
  (:func:`localaws.sagemaker.jobs.containers.register_local_image`): such a processing job runs
  ``ml/monitor.py`` (Autoloop's own monitoring script) in its environment-variable mode, which
  follows the analyzer's BYOC contract, under the processing-job contract, for real, through
  :mod:`localaws.sagemaker.jobs.runner` (``InProgress`` -> ``Completed``/``Failed``, outputs uploaded,
  "SageMaker Processing Job State Change" events);
- the monitoring-schedule APIs above and ``UpdateMonitoringSchedule``, in
  ``SageMakerModelBackend`` and ``SageMakerResponse``,
  for schedules that name a data-quality job definition (``MonitoringJobDefinitionName``,
  moto's own ``create_data_quality_job_definition``) or carry an inline
  ``MonitoringJobDefinition``. Any ``MonitoringType`` other than ``DataQuality`` is rejected
  with a ``ValidationException`` saying so. Schedules are ``Scheduled`` at creation;
- :func:`run_monitoring_now` starts the execution of one schedule for a window, as SageMaker
  does at the scheduled hour; :class:`localaws.scheduler.clock.ScheduleClock` (run by
  ``autoloop local serve``) calls it when a schedule comes due;
- ``ListTags``, ``AddTags`` and ``DeleteTags`` accept a monitoring schedule's ARN.

Patched in moto (``moto/sagemaker/models.py``, ``moto/sagemaker/responses.py``):
``SageMakerModelBackend`` and ``SageMakerResponse`` get ``create_monitoring_schedule``,
``update_monitoring_schedule``, ``describe_monitoring_schedule``,
``delete_monitoring_schedule``, ``list_monitoring_schedules``, ``list_monitoring_executions``,
``start_monitoring_schedule`` and ``stop_monitoring_schedule`` (replaced where moto has them,
added where it does not); ``SageMakerModelBackend._get_resource_from_arn`` (wrapped: a
monitoring schedule's ARN).

The package, module by module: this one installs; :mod:`~localaws.sagemaker.monitor.models`
is the backend (schedules, executions, :func:`run_monitoring_now`, what an execution runs
and publishes, as on AWS); :mod:`~localaws.sagemaker.monitor.responses` the wire format.
The analyzer that the image runs is ``ml/monitor.py`` (one implementation for this backend
and Autoloop's own monitoring jobs). Its benchmarks are ``python -m bench.drift`` (this
environment-variable mode) and ``python -m bench.monitor`` (its check mode).

Not supported locally: batch-transform inputs, model-quality, bias and explainability
schedules, record preprocessor / post-analytics scripts (rejected at creation).
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patches
from localaws.sagemaker.monitor.models import (
    ANALYZER_REPOSITORY,
    ANALYZER_SCRIPT,
    BACKEND_METHODS,
    ENDPOINT_NAMESPACE,
    MonitoringError,
    after_analyzer_run,
    run_monitoring_now,
    schedule_for_arn,
)
from localaws.sagemaker.monitor.responses import RESPONSE_METHODS

__all__ = [
    "ANALYZER_REPOSITORY",
    "ANALYZER_SCRIPT",
    "ENDPOINT_NAMESPACE",
    "PATCHES",
    "MonitoringError",
    "install",
    "installed",
    "run_monitoring_now",
    "uninstall",
]

PATCHES = Patches("model_monitor")
installed = PATCHES.active


def install() -> None:
    """Register the analyzer image and add the monitoring-schedule APIs to moto (idempotent)."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.sagemaker.models import SageMakerModelBackend as Backend
    from moto.sagemaker.responses import SageMakerResponse as Response

    from localaws.sagemaker.jobs.containers import register_local_image

    register_local_image(ANALYZER_REPOSITORY, ["python3", str(ANALYZER_SCRIPT)], after_run=after_analyzer_run)
    for name, method in BACKEND_METHODS.items():
        patches.set(Backend, name, method)
    for name, method in RESPONSE_METHODS.items():
        patches.set(Response, name, method)
    patches.set(Backend, "_get_resource_from_arn", _resource_from_arn)


def _resource_from_arn(self: Any, arn: str) -> Any:
    """ListTags, AddTags and DeleteTags on a monitoring schedule's ARN (the SageMaker SDK's
    ``attach`` lists them); moto's lookup knows no monitoring schedules and fails with a 500."""
    from moto.sagemaker.models import SageMakerModelBackend as Backend

    schedule = schedule_for_arn(self, arn)
    if schedule is not None:
        return schedule
    return PATCHES.original(Backend, "_get_resource_from_arn")(self, arn)


def uninstall() -> None:
    """Undo :func:`install`."""
    from localaws.sagemaker.jobs.containers import unregister_local_image

    PATCHES.restore()
    unregister_local_image(ANALYZER_REPOSITORY)
