"""Model Monitor's wire format on the local AWS: the monitoring-schedule actions of moto's ``SageMakerResponse``.

:data:`RESPONSE_METHODS` are added to ``SageMakerResponse`` by
:mod:`localaws.sagemaker.monitor.service`; each reads the request and calls the backend
method of the same name (:mod:`localaws.sagemaker.monitor.models`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SCHEDULE_FILTERS = (
    "EndpointName", "SortBy", "SortOrder", "NextToken", "MaxResults", "NameContains", "CreationTimeBefore",
    "CreationTimeAfter", "LastModifiedTimeBefore", "LastModifiedTimeAfter", "StatusEquals",
    "MonitoringJobDefinitionName", "MonitoringTypeEquals",
)  # fmt: skip
_EXECUTION_FILTERS = (
    "MonitoringScheduleName", "EndpointName", "SortBy", "SortOrder", "NextToken", "MaxResults",
    "ScheduledTimeBefore", "ScheduledTimeAfter", "CreationTimeBefore", "CreationTimeAfter",
    "LastModifiedTimeBefore", "LastModifiedTimeAfter", "StatusEquals", "MonitoringJobDefinitionName",
    "MonitoringTypeEquals",
)  # fmt: skip


def _r_create(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.create_monitoring_schedule(
        monitoring_schedule_name=self._get_param("MonitoringScheduleName"),
        monitoring_schedule_config=self._get_param("MonitoringScheduleConfig") or {},
        tags=self._get_param("Tags") or [],
    )
    return ActionResult({"MonitoringScheduleArn": arn})


def _r_update(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.update_monitoring_schedule(
        monitoring_schedule_name=self._get_param("MonitoringScheduleName"),
        monitoring_schedule_config=self._get_param("MonitoringScheduleConfig") or {},
    )
    return ActionResult({"MonitoringScheduleArn": arn})


def _r_describe(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(self.sagemaker_backend.describe_monitoring_schedule(self._get_param("MonitoringScheduleName")))


def _r_delete(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.sagemaker_backend.delete_monitoring_schedule(self._get_param("MonitoringScheduleName"))
    return EmptyResult()


def _r_start(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.sagemaker_backend.start_monitoring_schedule(self._get_param("MonitoringScheduleName"))
    return EmptyResult()


def _r_stop(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.sagemaker_backend.stop_monitoring_schedule(self._get_param("MonitoringScheduleName"))
    return EmptyResult()


def _r_list_schedules(self: Any) -> Any:
    from moto.core.responses import ActionResult

    rows, token = self.sagemaker_backend.list_monitoring_schedules(**{k: self._get_param(k) for k in _SCHEDULE_FILTERS})
    return ActionResult({"MonitoringScheduleSummaries": rows, "NextToken": token})


def _r_list_executions(self: Any) -> Any:
    from moto.core.responses import ActionResult

    rows, token = self.sagemaker_backend.list_monitoring_executions(
        **{k: self._get_param(k) for k in _EXECUTION_FILTERS}
    )
    return ActionResult({"MonitoringExecutionSummaries": rows, "NextToken": token})


#: the methods added to moto's ``SageMakerResponse``, by name
RESPONSE_METHODS: dict[str, Callable[..., Any]] = {
    "create_monitoring_schedule": _r_create,
    "update_monitoring_schedule": _r_update,
    "describe_monitoring_schedule": _r_describe,
    "delete_monitoring_schedule": _r_delete,
    "list_monitoring_schedules": _r_list_schedules,
    "list_monitoring_executions": _r_list_executions,
    "start_monitoring_schedule": _r_start,
    "stop_monitoring_schedule": _r_stop,
}
