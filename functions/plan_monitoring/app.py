"""MonitoringPipeline task: plan one monitoring run (window, captured files, labels, metric, champion)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import monitoring_steps
from autoloop.config import MonitorPlanSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return monitoring_steps.plan_monitoring(event, load_settings(MonitorPlanSettings))
