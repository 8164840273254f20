"""TrainingPipeline task: the challenger's metric, the threshold and the champion's metric."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import training_steps
from autoloop.config import GateSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return training_steps.quality_gate(event, load_settings(GateSettings))
