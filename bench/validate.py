"""ValidateInput's speed: MB of CSV checked per CPU-second, the figure its Lambda is sized by.

The check runs on one thread, so on Lambda its ceiling is CPU time (one vCPU from 1,769 MB,
at most 900 s): ``autoloop.config`` derives the largest file ValidateInput accepts
(``MAX_VALIDATED_BYTES``) from a rate of ``VALIDATION_MB_PER_CPU_SECOND``. This benchmark
measures the rate on two shapes of the same size, in memory (no S3, so only the CPU is timed,
with ``time.process_time``):

- ``churn``: the churn model's columns (datagen), mixed numeric and categorical;
- ``numeric``: 20 numeric columns of short values, the most fields per megabyte, the slowest.

Baseline, in the same run on the same bytes: ``csv.reader`` over the decoded text (the parsing
alone, without the checks). Goal: the slowest shape at least at the rate the sizing assumes
(the ``met`` column says whether the Lambda's numbers hold on this machine).
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Iterator

from bench.common import ROOT, Row, progress

CHUNK = 1 << 20


def churn_csv(megabytes: float) -> tuple[bytes, dict[str, object]]:
    from autoloop_cli import datagen

    raw = json.loads((ROOT / "models" / "churn" / "config.json").read_text())
    rows = max(200, int(megabytes * 1e6 / 52))  # ~52 bytes a row
    return datagen.generate(rows, seed=3).to_csv(index=False).encode(), raw


def numeric_csv(megabytes: float) -> tuple[bytes, dict[str, object]]:
    columns = ["y"] + [f"x{i}" for i in range(20)]
    config = {"model": "numeric", "label": "y", "columns": columns, "numeric_features": columns[1:],
              "categorical_features": [], "min_rows": 1}
    rng = random.Random(3)
    values = ["0", "1", "2.5", "-3", "0.25", "7", "1e3", "", "42", "0.5"]
    lines = [",".join(columns)]
    size = len(lines[0])
    while size < megabytes * 1e6:
        line = ",".join([rng.choice("01")] + [rng.choice(values) for _ in range(20)])
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode(), config


def chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


def cpu_seconds(call: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        call()  # type: ignore[operator]
        best = min(best, time.process_time() - began)
    return best


def run(quick: bool = False) -> list[Row]:
    from autoloop.config import MAX_VALIDATED_BYTES, VALIDATION_MB_PER_CPU_SECOND, parse_model_config
    from autoloop.validation import validate_csv

    megabytes, repeats = (4.0, 1) if quick else (64.0, 3)
    rows: list[Row] = []
    rates = {}
    for shape, make in (("churn", churn_csv), ("numeric", numeric_csv)):
        body, raw = make(megabytes)
        config = parse_model_config(json.dumps(raw), shape)
        mb = len(body) / 1e6
        checked = cpu_seconds(lambda: validate_csv(chunks(body), len(body), config, shape), repeats)  # noqa: B023
        parsed = cpu_seconds(lambda: sum(1 for _ in csv.reader(io.StringIO(body.decode()))), repeats)  # noqa: B023
        rate, baseline = mb / checked, mb / parsed
        rates[shape] = rate
        progress(f"{shape}: {mb:.1f} MB, validate {rate:.2f} MB/CPU-s, csv.reader {baseline:.2f} MB/CPU-s")
        rows.append(Row(f"validate.{shape}", f"ValidateInput check, {shape} shape ({mb:.0f} MB)", rate,
                        "MB/CPU-s", "csv.reader alone, same bytes", baseline, rate / baseline,
                        f">= {VALIDATION_MB_PER_CPU_SECOND} MB/CPU-s (the sizing's rate)",
                        rate >= VALIDATION_MB_PER_CPU_SECOND, detail={"bytes": len(body)}))
    slowest = min(rates.values())
    seconds = MAX_VALIDATED_BYTES / 1e6 / slowest
    rows.append(Row("validate.max_file", "CPU time for the largest accepted file (1 GiB) at the slowest rate", seconds,
                    "s", "the sizing's assumption", MAX_VALIDATED_BYTES / 1e6 / VALIDATION_MB_PER_CPU_SECOND,
                    seconds / (MAX_VALIDATED_BYTES / 1e6 / VALIDATION_MB_PER_CPU_SECOND),
                    "<= 900 s / 1.5 on one vCPU", seconds <= 600, note="this machine's CPU"))
    return rows
