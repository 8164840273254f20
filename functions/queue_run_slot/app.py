"""TrainingPipeline task when every training slot is taken: reclaim dead slots, then wait or step aside."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import run_slots
from autoloop.config import RunSlotSettings, load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_slots.queue_for_slot(event, load_settings(RunSlotSettings).run_slots_table)
