"""CloudFormation custom resource ``Teardown``: on stack deletion, delete what the pipelines
created outside the stack (endpoints, configs, models, schedules; running jobs stopped)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autoloop import teardown
from autoloop.config import load_settings
from autoloop.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return teardown.handle(event, lambda: load_settings(teardown.TeardownSettings),
                           lambda: context.get_remaining_time_in_millis() / 1000)
