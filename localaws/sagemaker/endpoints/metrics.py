"""CloudWatch metrics of the local endpoints, as SageMaker puts them.

Per variant, in namespace :data:`NAMESPACE` with dimensions ``EndpointName`` and
``VariantName``: ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (sums) and
``ModelLatency``, ``OverheadLatency`` (statistic sets, microseconds). An
:class:`Accumulator` gathers one variant's invocations between two puts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

NAMESPACE = "AWS/SageMaker"


class Accumulator:
    """One variant's counts and latency statistic sets since the last put."""

    __slots__ = ("e4", "e5", "mmax", "mmin", "mn", "msum", "n", "omax", "omin", "osum")

    def __init__(self) -> None:
        self.n = self.e4 = self.e5 = self.mn = 0
        self.msum = self.osum = 0.0
        self.mmin = self.omin = float("inf")
        self.mmax = self.omax = 0.0

    def add(self, status: int, model_us: float | None, overhead_us: float) -> None:
        self.n += 1
        if 400 <= status < 500:
            self.e4 += 1
        elif status >= 500 or status == 0:
            self.e5 += 1
        if model_us is not None:
            self.mn += 1
            self.msum += model_us
            self.mmin = min(self.mmin, model_us)
            self.mmax = max(self.mmax, model_us)
        self.osum += overhead_us
        self.omin = min(self.omin, overhead_us)
        self.omax = max(self.omax, overhead_us)

    def metric_data(self, endpoint: str, variant: str, when: dt.datetime) -> list[dict[str, Any]]:
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        data: list[dict[str, Any]] = [
            {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": "None"}
            for name, value in (
                ("Invocations", self.n),
                ("Invocation4XXErrors", self.e4),
                ("Invocation5XXErrors", self.e5),
            )
        ]
        if self.mn:
            data.append(
                {
                    "MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": when, "Unit": "Microseconds",
                    "StatisticValues": {"SampleCount": float(self.mn), "Sum": self.msum,
                                        "Minimum": self.mmin, "Maximum": self.mmax},
                }
            )  # fmt: skip
        data.append(
            {
                "MetricName": "OverheadLatency", "Dimensions": dims, "Timestamp": when, "Unit": "Microseconds",
                "StatisticValues": {"SampleCount": float(self.n), "Sum": self.osum,
                                    "Minimum": self.omin, "Maximum": self.omax},
            }
        )  # fmt: skip
        return data
