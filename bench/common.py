"""Shared helpers for benchmarks: a result row, the table, the JSON file."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    measure: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    ratio: float | None
    goal: str

    def line(self) -> str:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        return (f"| {self.measure} | {self.value:.3f} {self.unit} | {self.baseline}: {self.baseline_value:.3f} "
                f"| {ratio} | {self.goal} |")


def print_table(rows: list[Row]) -> None:
    print("| measure | value | baseline (same run) | ratio | goal |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(row.line())


def save(name: str, rows: list[Row], extra: dict[str, object] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "rows": [asdict(r) for r in rows],
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2))
    return path
