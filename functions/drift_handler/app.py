"""Model Monitor violations (monitoring job completed, or a drift alarm) -> notify -> maybe retrain."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import drift_steps
from autoloop.config import DriftSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return drift_steps.handle_drift(event, load_settings(DriftSettings))
