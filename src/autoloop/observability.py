"""Powertools singletons. Creating them makes no AWS client; X-Ray patches boto lazily."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
