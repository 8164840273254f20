"""DeployPipeline .waitForTaskToken task: create the model and config, create or update (blue/green) the endpoint."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import deploy_steps
from autoloop.config import EndpointSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deploy_steps.deploy_endpoint(event, load_settings(EndpointSettings))
