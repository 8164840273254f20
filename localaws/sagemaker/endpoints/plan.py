"""Deployment plans of ``UpdateEndpoint``: how traffic moves from the blue fleet to the green one.

:func:`traffic_plan` turns a ``DeploymentConfig`` (``BlueGreenUpdatePolicy`` with
``ALL_AT_ONCE``, ``CANARY`` or ``LINEAR`` traffic routing, or a ``RollingUpdatePolicy``,
approximated as linear steps of ``MaximumBatchSize``) into steps of (green share, bake
seconds); :func:`validate_deployment` rejects what SageMaker rejects, with its messages.
"""

from __future__ import annotations

from typing import Any


def _fraction(size: dict[str, Any] | None, instances: int) -> float:
    if not size:
        return 1.0
    value = float(size.get("Value") or 0)
    if size.get("Type") == "INSTANCE_COUNT":
        share = value / max(1, instances)
    else:  # CAPACITY_PERCENT
        share = value / 100.0
    return min(1.0, max(share, 0.0))


def _linear(step: float, wait: float) -> list[tuple[float, float]]:
    if step <= 0:
        return [(1.0, wait)]
    steps = []
    k = 1
    while k * step < 1.0 - 1e-9:
        steps.append((k * step, wait))
        k += 1
    steps.append((1.0, 0.0))
    return steps


def traffic_plan(
    deployment: dict[str, Any] | None, instances: int = 1
) -> tuple[list[tuple[float, float]], float, float | None]:
    """(steps of (green traffic share, bake seconds), termination wait, max execution seconds).

    ``ALL_AT_ONCE`` shifts everything, then bakes ``WaitIntervalInSeconds``; ``CANARY`` shifts
    ``CanarySize``, bakes, then shifts the rest; ``LINEAR`` shifts ``LinearStepSize`` at a time,
    baking after each step but the last. ``INSTANCE_COUNT`` sizes are taken against the new
    fleet's instance count. Without a deployment config: blue/green all at once, no waits.
    """
    deployment = deployment or {}
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if rolling and not blue_green:
        wait = float(rolling.get("WaitIntervalInSeconds") or 0)
        steps = _linear(_fraction(rolling.get("MaximumBatchSize"), instances), wait)
        return steps, 0.0, rolling.get("MaximumExecutionTimeoutInSeconds")
    policy = blue_green or {}
    routing = policy.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE"}
    kind = routing.get("Type") or "ALL_AT_ONCE"
    wait = float(routing.get("WaitIntervalInSeconds") or 0)
    if kind == "CANARY":
        share = _fraction(routing.get("CanarySize"), instances)
        steps = [(1.0, wait)] if share >= 1.0 else [(share, wait), (1.0, 0.0)]
    elif kind == "LINEAR":
        steps = _linear(_fraction(routing.get("LinearStepSize"), instances), wait)
    else:
        steps = [(1.0, wait)]
    return steps, float(policy.get("TerminationWaitInSeconds") or 0), policy.get(
        "MaximumExecutionTimeoutInSeconds"
    )


def validate_deployment(deployment: dict[str, Any] | None) -> None:
    """Raise moto's ``ValidationError`` for a deployment config SageMaker would refuse."""
    from moto.sagemaker.exceptions import ValidationError

    if not deployment:
        return
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise ValidationError(message="Specify either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.")
    if blue_green:
        routing = blue_green.get("TrafficRoutingConfiguration") or {}
        kind = routing.get("Type")
        if kind not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
            raise ValidationError(
                message=f"Value '{kind}' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
                ".type' failed to satisfy constraint: Member must satisfy enum value set: "
                "[ALL_AT_ONCE, CANARY, LINEAR]"
            )
        if kind == "CANARY" and not routing.get("CanarySize"):
            raise ValidationError(message="CanarySize must be specified for CANARY traffic routing.")
        if kind == "LINEAR" and not routing.get("LinearStepSize"):
            raise ValidationError(message="LinearStepSize must be specified for LINEAR traffic routing.")
        for name, value in (
            ("WaitIntervalInSeconds", routing.get("WaitIntervalInSeconds")),
            ("TerminationWaitInSeconds", blue_green.get("TerminationWaitInSeconds")),
        ):
            if value is not None and not 0 <= int(value) <= 3600:
                raise ValidationError(message=f"{name} must be between 0 and 3600 seconds.")
    if rolling and not rolling.get("MaximumBatchSize"):
        raise ValidationError(message="MaximumBatchSize must be specified for a RollingUpdatePolicy.")
