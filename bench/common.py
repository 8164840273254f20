"""Shared helpers for benchmarks: a result row, the table, the JSON file, peak memory."""

from __future__ import annotations

import json
import math
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One line of the table.

    ``figure`` is what was measured; ``baseline_value`` is the baseline measured in the same
    run (``None`` when the line has none, e.g. a skipped contender); ``ratio`` is
    figure / baseline unless the measure says otherwise; ``met`` is ``None`` for lines without
    a goal of their own (context lines). ``name`` is a stable key for the JSON.
    """

    name: str
    measure: str
    figure: float | None
    unit: str
    baseline: str
    baseline_value: float | None
    ratio: float | None
    goal: str
    met: bool | None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        baseline = self.baseline
        if self.baseline_value is not None:
            baseline += f": {fmt(self.baseline_value, self.unit_of_baseline())}"
        met = "-" if self.met is None else ("yes" if self.met else "no")
        measure = self.measure + (f" ({self.note})" if self.note else "")
        ratio = "" if self.ratio is None else f"{self.ratio:.3g}x"
        return [measure, fmt(self.figure, self.unit), baseline, ratio, self.goal, met]

    def unit_of_baseline(self) -> str:
        return str(self.detail.get("baseline_unit", self.unit))


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "count":
        return f"{value:,.0f}"
    magnitude = abs(value)
    text = f"{value:,.0f}" if magnitude >= 1000 else f"{value:.3g}" if magnitude < 10 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def error_row(name: str, exc: BaseException) -> Row:
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return Row(name, f"{name}: benchmark failed", None, "", message, None, None, "runs", False)


def print_table(rows: list[Row], out: Any = None) -> None:
    out = out or sys.stdout
    print("| measure | figure | baseline (same run) | ratio | goal | met? |", file=out)
    print("| --- | --- | --- | --- | --- | --- |", file=out)
    for row in rows:
        print("| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |", file=out)


def save(name: str, rows: list[Row], extra: dict[str, object] | None = None) -> Path:
    """Write ``bench/results/<name>.json``, or ``name`` itself when it is a path ending in .json."""
    path = Path(name) if name.endswith(".json") else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": _cores()},
        **(extra or {}),
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def peak_mb(pid: int | str = "self") -> float:
    """A process's peak RSS (VmHWM, MB). Every benchmark that compares memory measures each
    contender this way, at the end of a fresh process of its own. Not ``ru_maxrss``: on Linux
    a child's starts at its parent's RSS at fork."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0
