"""EventBridge "SageMaker Model Package State Change" -> start DeployPipeline once per state change."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import deploy_steps
from autoloop.config import StartDeploySettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deploy_steps.start_deployment(event, load_settings(StartDeploySettings))
