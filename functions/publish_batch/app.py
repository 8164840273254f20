"""BatchTransform task: publish the month's results and report under its partition."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import batch_steps
from autoloop.config import BatchPublishSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return batch_steps.publish_batch(event, load_settings(BatchPublishSettings))
