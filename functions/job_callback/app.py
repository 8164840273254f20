"""EventBridge SageMaker job or endpoint state change -> SendTaskSuccess / SendTaskFailure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import tasks
from autoloop.config import CallbackSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return tasks.handle_sagemaker_event(event, load_settings(CallbackSettings).task_token_table)
