"""TrainingPipeline .waitForTaskToken task: launch a SageMaker job and park the task token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import training_steps
from autoloop.config import LaunchSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return training_steps.launch_job(event, load_settings(LaunchSettings))
