"""A local stand-in for SageMaker Model Monitor's data-quality analyzer container.

On AWS, data-quality baselining and monitoring run the region's
``sagemaker-model-monitor-analyzer`` image (Spark + Deequ) as a processing job. Local mode
maps that image to this script (see :mod:`localaws.sagemaker.monitor.service`), which follows the same
BYOC contract (docs: model-monitor-byoc-contract-inputs / -outputs / -cloudwatch) and writes
the same files. It imports numpy and the standard library only, and runs as a subprocess of
the local job runner with ``/opt/ml`` rewritten to the job's sandbox.

Inputs (environment variables, as the platform sets them)
---------------------------------------------------------
``dataset_format``   JSON: ``{"csv": {"header": true|false}}`` (baselining; the SDK's
                     ``DatasetFormat.csv(header=True)`` adds ``output_columns_position``,
                     ignored) or ``{"sagemakerCaptureJson": {"captureIndexNames": [...]}}``
                     (monitoring an endpoint). JSON and Parquet datasets fail clearly.
``dataset_source``   folder (or file) holding the dataset; read recursively.
``output_path``      where the report files go.
``baseline_statistics`` / ``baseline_constraints``  paths of the baseline files. With
                     neither, the job is a *baselining* job; with either, a *monitoring* job.
``publish_cloudwatch_metrics``  ``Enabled`` writes metric files (see below).
``sagemaker_endpoint_name``, ``sagemaker_monitoring_schedule_name``  metric dimensions.
``start_time``, ``end_time``   the analysis window (ISO 8601); ``end_time`` stamps metrics.
``SM_OUTPUT_DIR``    local mode only (default ``/opt/ml/output``): message, failure, metrics.

Outputs
-------
Baselining: ``statistics.json`` and ``constraints.json``. Monitoring: ``statistics.json`` of
the current data and ``constraint_violations.json``; with ``publish_cloudwatch_metrics``
``Enabled``, ``<output>/metrics/cloudwatch/metrics.jsonl`` (one PutMetricData-shaped object
a line: ``feature_data_<f>`` with StatisticValues for numeric features,
``feature_non_null_<f>`` and ``feature_baseline_drift_<f>`` with Value). Always
``<output>/message``: ``Completed: Job completed successfully with no violations.`` or
``CompletedWithViolations: Job completed successfully with N violations.`` (the platform
turns it into the job's ExitMessage). On failure: a one-line ``<output>/failure`` and exit 1.

What is computed (Deequ's definitions, as far as they are documented)
--------------------------------------------------------------------
- Types: a column whose present values all parse as numbers is ``Integral`` (all integers)
  or ``Fractional``; otherwise ``String``. Empty fields and NaN are missing.
- Numeric statistics: num_present/num_missing, mean, sum, population std_dev, min, max;
  ``distribution.kll``: 10 equal-width buckets over [min, max] and a ``sketch`` whose
  ``data`` holds the sorted values (n <= 2048) or 2048 equally spaced sample quantiles, as one
  level-0 compactor (``parameters`` c=0.64, k=2048 like Deequ's KLL). A real KLL sketch
  (several levels, level h items weigh 2^h) is read the same way, so baselines made on AWS
  can be used locally.
- String statistics: distinct_count and categorical buckets (the 1000 most frequent values).
- Suggested constraints: ``completeness`` 1.0 for a complete column, else the lower 95 %
  bound of the observed completeness rounded down to 2 decimals (Deequ's
  RetainCompletenessRule); ``num_constraints.is_non_negative``; ``string_constraints.domains``
  when a string column has at most 120 distinct values (Deequ's low-cardinality limit);
  ``monitoring_config`` with the documented defaults (thresholds 0.1, comparison_method
  ``Robust``, categorical_drift_method ``LInfinity``).
- Drift distance (Deequ's Distance): numeric features: the CDFs of the baseline sketch and
  of the current data's sketch, evaluated at the union of their points, max |difference|
  (``linf_simple``); categorical: max over categories of |frequency difference|.
  ``Robust``/``linf_robust`` is ``max(0, linf_simple - 1.8 * sqrt((n + m) / (n * m)))`` (the
  two-sample Kolmogorov-Smirnov critical value; n, m the two num_present counts).
  A per-feature ``monitoringConfigOverrides`` (or ``monitoring_config_overrides``, also when
  nested in ``num_constraints``/``string_constraints``) may set ``comparison_threshold``,
  ``evaluate_constraints`` and ``emit_metrics`` for that feature.

Checks: ``data_type_check`` (share of present values of the baseline's type below
1 - datatype_check_threshold), ``completeness_check`` (current completeness below the
constraint), ``baseline_drift_check`` (distance above the threshold), ``categorical_values_check``
(share of values inside the baseline domain below 1 - domain_content_threshold),
``missing_column_check`` / ``extra_column_check`` (captured rows with fewer / more fields than
the baseline has features; rows of mixed length are padded with missing values).
``is_non_negative`` is not checked (no documented violation type for it).

Capture data: ``endpointInput`` of every ``*.jsonl`` record under ``dataset_source``;
``data`` is CSV (``encoding`` CSV or BASE64, content type text/csv) without a header, one or
more rows, features in the baseline's order; the baseline's feature names name the columns.
A capture line that is not valid JSON (for example a truncated file) fails the job, naming
the file and line. Not supported: JSON captures, ``endpointOutput`` columns, ChiSquared,
record preprocessor / post-analytics scripts.

Speed: capture lines are matched with one regular expression per file (falling back to
``json.loads`` per line when a line does not have SageMaker's layout), CSV is parsed with
numpy's C reader when every column is numeric, and the per-column work (one sort each) runs
on a thread pool. ``python localaws/sagemaker/monitor/analyzer.py`` prints the phase timings.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

SKETCH_K = 2048
SKETCH_C = 0.64
N_BUCKETS = 10
MAX_CATEGORICAL_BUCKETS = 1000
DOMAIN_MAX_DISTINCT = 120
ROBUST_C_ALPHA = 1.8
DEFAULT_THRESHOLD = 0.1
COMPLETENESS_Z = 1.96

DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": DEFAULT_THRESHOLD,
    "domain_content_threshold": DEFAULT_THRESHOLD,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": DEFAULT_THRESHOLD,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": DEFAULT_THRESHOLD,
        "categorical_drift_method": "LInfinity",
    },
}

NUMERIC_TYPES = ("Integral", "Fractional")


class AnalyzerError(Exception):
    """An expected failure; the message is the job's one-line failure reason."""


def log(message: str) -> None:
    print(f"[analyzer] {message}", flush=True)


# --- distances (ml/calibrate.py carries a copy of these; tests check they agree) -----------


def sketch_points(values_sorted: np.ndarray) -> np.ndarray:
    """The sketch of sorted values: all of them up to 2048, else 2048 equally spaced
    sample quantiles (each standing for n / 2048 values)."""
    n = values_sorted.size
    if n <= SKETCH_K:
        return values_sorted
    idx = ((np.arange(SKETCH_K) + 0.5) * (n / SKETCH_K)).astype(np.int64)
    return values_sorted[np.minimum(idx, n - 1)]


def sketch_cdf(data: Iterable[Iterable[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted items, cumulative weight fraction) of a KLL sketch's ``data``: the items of
    compactor level h weigh 2**h."""
    items: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for level, values in enumerate(data):
        arr = np.asarray(list(values), dtype=np.float64)
        if arr.size:
            items.append(arr)
            weights.append(np.full(arr.size, 2.0**level))
    if not items:
        return np.empty(0), np.empty(0)
    x = np.concatenate(items)
    w = np.concatenate(weights)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cum = np.cumsum(w)
    return x, cum / cum[-1]


def _cdf_at(items: np.ndarray, cum: np.ndarray, points: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(items, points, side="right")
    out = np.zeros(points.size)
    has = idx > 0
    out[has] = cum[idx[has] - 1]
    return out


def numeric_linf(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """max |CDF_a - CDF_b| over the union of both sketches' points (Deequ's linf_simple)."""
    if a[0].size == 0 or b[0].size == 0:
        return 0.0
    points = np.union1d(a[0], b[0])
    return float(np.max(np.abs(_cdf_at(a[0], a[1], points) - _cdf_at(b[0], b[1], points))))


def categorical_linf(a: dict[str, float], b: dict[str, float]) -> float:
    """max over categories of |p_a - p_b| (Deequ's categorical LInfinity)."""
    ta, tb = sum(a.values()), sum(b.values())
    if ta <= 0 or tb <= 0:
        return 0.0
    return float(max(abs(a.get(k, 0.0) / ta - b.get(k, 0.0) / tb) for k in set(a) | set(b)))


def robust(distance: float, n: float, m: float) -> float:
    """linf_robust: the distance minus the two-sample KS critical value (c_alpha = 1.8)."""
    if n <= 0 or m <= 0:
        return distance
    return max(0.0, distance - ROBUST_C_ALPHA * math.sqrt((n + m) / (n * m)))


def comparison_method(value: Any) -> str:
    """``simple`` or ``robust`` from "Simple"/"Robust"/"linf_simple"/"linf_robust"."""
    text = str(value or "Robust").strip().lower()
    if text in ("simple", "linf_simple"):
        return "simple"
    if text in ("robust", "linf_robust"):
        return "robust"
    raise AnalyzerError(f"comparison_method {value!r} is not one of Simple, Robust, linf_simple, linf_robust")


# --- reading ------------------------------------------------------------------------------

# SageMaker's capture layout: {"captureData":{"endpointInput":{"observedContentType":...,
# "mode":...,"data":...,"encoding":...},...},...}. The first two patterns take text/csv + CSV
# records written compactly (as SageMaker does) or with spaces (json.dumps defaults) and
# capture only the data; the third takes any content type and encoding. A file whose lines do
# not all match one of them goes to json.loads line by line.
_JSON_STR = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_CSV_INPUT_COMPACT = re.compile(
    r'"endpointInput":\{"observedContentType":"text/csv[^"\\]*","mode":"[^"\\]*","data":'
    + _JSON_STR + r',"encoding":"CSV"\}'
)  # fmt: skip
_CSV_INPUT_SPACED = re.compile(
    r'"endpointInput"\s*:\s*\{\s*"observedContentType"\s*:\s*"text/csv[^"\\]*"\s*,\s*"mode"\s*:\s*"[^"\\]*"'
    r'\s*,\s*"data"\s*:\s*' + _JSON_STR + r'\s*,\s*"encoding"\s*:\s*"CSV"\s*\}'
)  # fmt: skip
_CAPTURE_INPUT = re.compile(
    r'"endpointInput"\s*:\s*\{\s*"observedContentType"\s*:\s*' + _JSON_STR
    + r'\s*,\s*"mode"\s*:\s*"[^"\\]*"\s*,\s*"data"\s*:\s*' + _JSON_STR
    + r'\s*,\s*"encoding"\s*:\s*"([A-Za-z0-9_]*)"\s*\}'
)  # fmt: skip


def _files(source: Path, suffixes: tuple[str, ...] | None) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    found = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(source).parts):
            continue
        if suffixes is None or path.name.lower().endswith(suffixes):
            found.append(path)
    return found


def _decode_input(content_type: str, data: str, encoding: str, where: str) -> str:
    if content_type and "csv" not in content_type.lower():
        raise AnalyzerError(
            f"{where}: endpointInput content type {content_type!r}: the local analyzer reads text/csv captures only"
        )
    enc = (encoding or "CSV").upper()
    if enc == "BASE64":
        try:
            return base64.b64decode(data, validate=False).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AnalyzerError(f"{where}: endpointInput data is not valid BASE64 UTF-8: {exc}") from exc
    if enc in ("CSV", "JSON", ""):
        return data
    raise AnalyzerError(f"{where}: unknown endpointInput encoding {encoding!r}")


def _capture_lines_slow(text: str, rel: str) -> list[str]:
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"capture file {rel} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnalyzerError(
                f"{where} is not valid JSON ({exc.msg} at column {exc.colno}): the capture file is truncated or corrupt"
            ) from exc
        try:
            endpoint_input = record["captureData"]["endpointInput"]
        except (KeyError, TypeError) as exc:
            raise AnalyzerError(f"{where} has no captureData.endpointInput (data capture must include Input)") from exc
        data = endpoint_input.get("data")
        if not isinstance(data, str):
            raise AnalyzerError(f"{where}: endpointInput.data is missing or not a string")
        out.append(
            _decode_input(
                str(endpoint_input.get("observedContentType") or ""),
                data,
                str(endpoint_input.get("encoding") or "CSV"),
                where,
            )
        )
    return out


def _capture_lines_fast(text: str, rel: str) -> list[str] | None:
    """The decoded CSV payloads of a capture file, or None if some line does not have
    SageMaker's layout or the file does not end with a whole record (the caller then parses
    every line with json.loads, which reports the bad line)."""
    stripped = text.rstrip()
    if not stripped:
        return []
    if stripped[-1] != "}":
        return None  # truncated
    lines = stripped.count("\n") + 1
    for pattern in (_CSV_INPUT_COMPACT, _CSV_INPUT_SPACED):
        payloads = pattern.findall(text)
        if len(payloads) == lines:
            # one C-level unescape for the whole file: the payloads joined by an escaped newline
            return [json.loads('"' + "\\n".join(payloads) + '"')]
        if payloads:
            break  # mixed layouts, encodings or content types
    matches = _CAPTURE_INPUT.findall(text)
    if len(matches) != lines:
        return None
    out = []
    for content_type, data, encoding in matches:
        raw = json.loads('"' + data + '"')
        out.append(_decode_input(json.loads('"' + content_type + '"'), raw, encoding, f"capture file {rel}"))
    return out


def read_capture(source: Path) -> tuple[str, int]:
    """All captured endpointInput CSV under ``source`` as one text; and the file count."""
    files = _files(source, (".jsonl",))
    parts: list[str] = []
    for path in files:
        rel = str(path.relative_to(source)) if source.is_dir() else path.name
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise AnalyzerError(f"capture file {rel} is not UTF-8: {exc}") from exc
        payloads = _capture_lines_fast(text, rel)
        if payloads is None:
            payloads = _capture_lines_slow(text, rel)
        parts.extend(payloads)
    return "\n".join(parts), len(files)


@dataclass
class Table:
    """Parsed columns: float64 arrays (NaN = missing) or lists of strings ('' = missing)."""

    columns: list[Any]
    rows: int
    width_counts: Counter[int] = field(default_factory=Counter)  # fields per row -> rows


def parse_csv(text: str, *, numeric_first: bool) -> Table:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if numeric_first and '"' not in text:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                matrix = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
            if matrix.shape[0] > 0:
                return Table(
                    [np.ascontiguousarray(matrix[:, j]) for j in range(matrix.shape[1])],
                    matrix.shape[0],
                    Counter({matrix.shape[1]: matrix.shape[0]}),
                )
        except ValueError:
            pass  # empty fields, strings or ragged rows: the general reader below
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return Table([], 0)
    if '"' in text:
        rows = list(csv.reader(lines))
        widths = Counter(len(r) for r in rows)
        width = max(widths)
        columns = [list(c) for c in zip(*(r + [""] * (width - len(r)) for r in rows), strict=True)]
        return Table(columns, len(rows), widths)
    counts = [line.count(",") for line in lines]
    widths = Counter(c + 1 for c in counts)
    width = max(widths)
    if len(widths) == 1:
        flat = ",".join(lines).split(",")
        return Table([flat[j::width] for j in range(width)], len(lines), widths)
    rows = [line.split(",") for line in lines]
    columns = [list(c) for c in zip(*(r + [""] * (width - len(r)) for r in rows), strict=True)]
    return Table(columns, len(lines), widths)


def read_csv_dataset(source: Path, header: bool) -> tuple[list[str], Table]:
    files = _files(source, None)
    names: list[str] | None = None
    bodies: list[str] = []
    for path in files:
        rel = str(path.relative_to(source)) if source.is_dir() else path.name
        text = path.read_text(encoding="utf-8-sig")
        if header:
            first, _, rest = text.partition("\n")
            head = next(csv.reader([first.strip("\r")]), [])
            if not any(h.strip() for h in head):
                continue
            if names is None:
                names = head
            elif head != names:
                raise AnalyzerError(f"dataset file {rel}: header {head} differs from {names}")
            text = rest
        bodies.append(text)
    table = parse_csv("\n".join(bodies), numeric_first=True)
    width = len(table.columns)
    if names is None:
        names = [f"_c{i}" for i in range(width)]
    if width > len(names):
        raise AnalyzerError(f"dataset rows have {width} fields but the header names {len(names)} columns")
    while len(table.columns) < len(names):
        table.columns.append([""] * table.rows)
    return names, table


# --- profiling ----------------------------------------------------------------------------


@dataclass
class Profile:
    name: str
    rows: int
    present: int = 0
    inferred_type: str = "String"
    values: np.ndarray | None = None  # sorted numeric present values
    non_numeric: int = 0  # present values that are not numbers
    non_integral: int = 0  # numeric present values that are not integers
    counts: Counter[str] | None = None  # present value -> count (string columns)

    @property
    def missing(self) -> int:
        return self.rows - self.present

    @property
    def completeness(self) -> float:
        return self.present / self.rows if self.rows else 0.0


def _numeric_of_strings(column: list[str]) -> tuple[np.ndarray, int]:
    """(numbers, non-numeric count): NaN where a value is blank, not a number or "nan"."""
    try:
        return np.array(column, dtype=np.float64), 0
    except ValueError:
        pass
    parsed: dict[str, float] = {}
    for value in set(column):
        if value.strip():
            try:
                parsed[value] = float(value)
            except ValueError:
                pass
    bad = 0
    out = np.empty(len(column))
    for i, value in enumerate(column):
        number = parsed.get(value)
        if number is None:
            out[i] = np.nan
            if value.strip():
                bad += 1
        else:
            out[i] = number
    return out, bad


def profile_column(name: str, raw: Any, rows: int, want_counts: bool) -> Profile:
    """Statistics inputs of one column. Blank fields and NaN/inf are missing; values that are
    not numbers are present but non-numeric (they make the column a String column)."""
    prof = Profile(name=name, rows=rows)
    strings: list[str] | None = None
    if isinstance(raw, np.ndarray):
        numbers, bad = raw, 0
    else:
        strings = raw
        numbers, bad = _numeric_of_strings(raw)
    finite = np.isfinite(numbers)
    numeric_present = int(np.count_nonzero(finite))
    prof.present = numeric_present + bad
    prof.non_numeric = bad
    if numeric_present:
        values = numbers if numeric_present == numbers.size else numbers[finite]
        values = np.sort(values)
        prof.values = values
        prof.non_integral = int(np.count_nonzero(values != np.floor(values)))
    if numeric_present and bad == 0:
        prof.inferred_type = "Integral" if prof.non_integral == 0 else "Fractional"
    else:
        prof.inferred_type = "String"
    if strings is not None and (want_counts or prof.inferred_type == "String"):
        counts = Counter(strings)
        for key in [k for k in counts if not k.strip() or k.strip().lower() in ("nan", "inf", "-inf", "+inf")]:
            del counts[key]
        prof.counts = counts
    elif want_counts and prof.values is not None:
        prof.counts = Counter(_format_number(v) for v in prof.values.tolist())
    return prof


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def profile_table(names: list[str], table: Table, want_counts: set[str]) -> list[Profile]:
    jobs = list(zip(names, table.columns, strict=False))
    workers = max(1, min(8, os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy's sort releases the GIL
        return list(pool.map(lambda job: profile_column(job[0], job[1], table.rows, job[0] in want_counts), jobs))


# --- statistics and constraints -------------------------------------------------------------


def _num(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0


def feature_statistics(prof: Profile) -> dict[str, Any]:
    common = {"num_present": prof.present, "num_missing": prof.missing}
    if prof.inferred_type in NUMERIC_TYPES and prof.values is not None:
        v = prof.values
        n = v.size
        total = float(v.sum(dtype=np.float64))
        lo, hi = float(v[0]), float(v[-1])
        if hi > lo:
            width = (hi - lo) / N_BUCKETS
            idx = np.minimum(((v - lo) / width).astype(np.int64), N_BUCKETS - 1)
            counts = np.bincount(idx, minlength=N_BUCKETS)
        else:
            width = 0.0
            counts = np.zeros(N_BUCKETS, dtype=np.int64)
            counts[0] = n
        buckets = [
            {
                "lower_bound": lo + i * width,
                "upper_bound": hi if i == N_BUCKETS - 1 else lo + (i + 1) * width,
                "count": float(counts[i]),
            }
            for i in range(N_BUCKETS)
        ]
        return {
            "name": prof.name,
            "inferred_type": prof.inferred_type,
            "numerical_statistics": {
                "common": common,
                "mean": _num(total / n),
                "sum": _num(total),
                "std_dev": _num(np.std(v)),
                "min": lo,
                "max": hi,
                "distribution": {
                    "kll": {
                        "buckets": buckets,
                        "sketch": {
                            "parameters": {"c": SKETCH_C, "k": float(SKETCH_K)},
                            "data": [sketch_points(v).tolist()],
                        },
                    }
                },
            },
        }
    counts = prof.counts or Counter()
    top = counts.most_common(MAX_CATEGORICAL_BUCKETS)
    return {
        "name": prof.name,
        "inferred_type": "String",
        "string_statistics": {
            "common": common,
            "distinct_count": float(len(counts)),
            "distribution": {"categorical": {"buckets": [{"value": k, "count": c} for k, c in top]}},
        },
    }


def statistics_document(profiles: list[Profile], rows: int) -> dict[str, Any]:
    return {"version": 0.0, "dataset": {"item_count": rows}, "features": [feature_statistics(p) for p in profiles]}


def suggested_completeness(prof: Profile) -> float:
    p = prof.completeness
    if p >= 1.0 or prof.rows == 0:
        return 1.0 if prof.rows else 0.0
    bound = p - COMPLETENESS_Z * math.sqrt(p * (1.0 - p) / prof.rows)
    return max(0.0, math.floor(bound * 100.0) / 100.0)


def constraints_document(profiles: list[Profile]) -> dict[str, Any]:
    features = []
    for prof in profiles:
        entry: dict[str, Any] = {
            "name": prof.name,
            "inferred_type": prof.inferred_type,
            "completeness": suggested_completeness(prof),
        }
        if prof.inferred_type in NUMERIC_TYPES and prof.values is not None:
            entry["num_constraints"] = {"is_non_negative": bool(prof.values[0] >= 0)}
        else:
            counts = prof.counts or Counter()
            if 0 < len(counts) <= DOMAIN_MAX_DISTINCT:
                entry["string_constraints"] = {"domains": sorted(counts)}
        entry["monitoringConfigOverrides"] = {}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": json.loads(json.dumps(DEFAULT_MONITORING_CONFIG)),
    }


# --- monitoring -----------------------------------------------------------------------------


def _enabled(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("enabled", "true", "1", "yes")


def feature_overrides(constraint: dict[str, Any]) -> dict[str, Any]:
    """Per-feature monitoring overrides, from any of the spellings seen in the wild."""
    merged: dict[str, Any] = {}
    holders = [constraint, constraint.get("num_constraints") or {}, constraint.get("string_constraints") or {}]
    for holder in holders:
        for key in ("monitoring_config_overrides", "monitoringConfigOverrides"):
            value = holder.get(key)
            if isinstance(value, dict):
                nested = value.get("distribution_constraints")
                if isinstance(nested, dict):
                    merged.update(nested)
                merged.update({k: v for k, v in value.items() if k != "distribution_constraints"})
    return merged


@dataclass
class Baseline:
    names: list[str]
    constraints: dict[str, dict[str, Any]]  # by feature name
    statistics: dict[str, dict[str, Any]]  # by feature name
    config: dict[str, Any]
    has_constraints: bool
    has_statistics: bool


def load_json(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError as exc:
        raise AnalyzerError(f"{what} file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise AnalyzerError(f"{what} file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise AnalyzerError(f"{what} file {path} has no 'features' list")
    return doc


def load_baseline(constraints_path: str | None, statistics_path: str | None) -> Baseline:
    constraints_doc = load_json(constraints_path, "baseline constraints") if constraints_path else None
    statistics_doc = load_json(statistics_path, "baseline statistics") if statistics_path else None
    source = constraints_doc or statistics_doc
    assert source is not None
    names = [str(f.get("name")) for f in source["features"]]
    config = json.loads(json.dumps(DEFAULT_MONITORING_CONFIG))
    if constraints_doc and isinstance(constraints_doc.get("monitoring_config"), dict):
        given = constraints_doc["monitoring_config"]
        dist = dict(config["distribution_constraints"])
        dist.update(given.get("distribution_constraints") or {})
        config.update({k: v for k, v in given.items() if k != "distribution_constraints"})
        config["distribution_constraints"] = dist
    return Baseline(
        names=names,
        constraints={str(f.get("name")): f for f in (constraints_doc or {}).get("features", [])},
        statistics={str(f.get("name")): f for f in (statistics_doc or {}).get("features", [])},
        config=config,
        has_constraints=constraints_doc is not None,
        has_statistics=statistics_doc is not None,
    )


def _value_violation(name: str, check: str, value: float) -> dict[str, str]:
    return {
        "feature_name": name,
        "constraint_check_type": check,
        "description": f"Value: {value!r} does not meet the constraint requirement! ",
    }


def baseline_distribution(stat: dict[str, Any]) -> tuple[str, Any, float] | None:
    """('numeric', (items, cum), n) or ('categorical', {value: count}, n) from a baseline
    statistics feature, or None when it has no distribution."""
    numeric = stat.get("numerical_statistics")
    if isinstance(numeric, dict):
        sketch = ((numeric.get("distribution") or {}).get("kll") or {}).get("sketch") or {}
        items = sketch_cdf(sketch.get("data") or [])
        if items[0].size:
            return "numeric", items, float((numeric.get("common") or {}).get("num_present") or 0)
        return None
    strings = stat.get("string_statistics")
    if isinstance(strings, dict):
        buckets = ((strings.get("distribution") or {}).get("categorical") or {}).get("buckets") or []
        counts = {str(b.get("value")): float(b.get("count") or 0) for b in buckets}
        if counts:
            return "categorical", counts, float((strings.get("common") or {}).get("num_present") or 0)
    return None


@dataclass
class Evaluation:
    violations: list[dict[str, str]]
    distances: dict[str, float]
    thresholds: dict[str, float]


def evaluate(baseline: Baseline, profiles: dict[str, Profile], width: int) -> Evaluation:
    config = baseline.config
    dist_cfg = config.get("distribution_constraints") or {}
    evaluate_all = _enabled(config.get("evaluate_constraints"))
    compare = _enabled(dist_cfg.get("perform_comparison"))
    method = comparison_method(dist_cfg.get("comparison_method"))
    cat_method = str(dist_cfg.get("categorical_drift_method") or "LInfinity")
    if compare and cat_method.lower() != "linfinity":
        raise AnalyzerError(
            f"categorical_drift_method {cat_method!r} is not supported by the local analyzer (LInfinity only)"
        )
    threshold = float(dist_cfg.get("comparison_threshold", DEFAULT_THRESHOLD))
    cat_threshold = float(dist_cfg.get("categorical_comparison_threshold", threshold))
    type_threshold = float(config.get("datatype_check_threshold", DEFAULT_THRESHOLD))
    domain_threshold = float(config.get("domain_content_threshold", DEFAULT_THRESHOLD))

    violations: list[dict[str, str]] = []
    distances: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    n_base = len(baseline.names)
    if evaluate_all and width < n_base:
        for name in baseline.names[width:]:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "missing_column_check",
                    "description": "There are missing columns in current dataset. Number of columns in current "
                    f"dataset: {width}, Number of columns in baseline constraints: {n_base}",
                }
            )
    if evaluate_all and width > n_base:
        for index in range(n_base, width):
            violations.append(
                {
                    "feature_name": f"_c{index}",
                    "constraint_check_type": "extra_column_check",
                    "description": "There are extra columns in current dataset. Number of columns in current "
                    f"dataset: {width}, Number of columns in baseline constraints: {n_base}",
                }
            )
    for name in baseline.names:
        prof = profiles.get(name)
        if prof is None:
            continue  # a missing column, reported above
        constraint = baseline.constraints.get(name, {})
        overrides = feature_overrides(constraint)
        feature_on = evaluate_all and _enabled(overrides.get("evaluate_constraints"))
        base_type = str(
            constraint.get("inferred_type") or (baseline.statistics.get(name) or {}).get("inferred_type") or ""
        )
        if feature_on and baseline.has_constraints and prof.present:
            if base_type in NUMERIC_TYPES:
                conforming = prof.present - prof.non_numeric
                if base_type == "Integral":
                    conforming -= prof.non_integral
                ratio = conforming / prof.present
                if ratio < 1.0 - type_threshold:
                    violations.append(_value_violation(name, "data_type_check", ratio))
            domains = (constraint.get("string_constraints") or {}).get("domains")
            if base_type == "String" and isinstance(domains, list) and domains and prof.counts is not None:
                allowed = {str(d) for d in domains}
                inside = sum(c for v, c in prof.counts.items() if v in allowed)
                ratio = inside / prof.present
                if ratio < 1.0 - domain_threshold:
                    violations.append(_value_violation(name, "categorical_values_check", ratio))
        if feature_on and baseline.has_constraints and "completeness" in constraint:
            required = float(constraint["completeness"])
            if prof.completeness < required:
                violations.append(_value_violation(name, "completeness_check", prof.completeness))
        stat = baseline.statistics.get(name)
        if not (compare and stat and prof.present):
            continue
        reference = baseline_distribution(stat)
        if reference is None:
            continue
        kind, ref, n_ref = reference
        if kind == "numeric":
            if prof.values is None:
                continue
            distance = numeric_linf(ref, sketch_cdf([sketch_points(prof.values)]))
            m = float(prof.values.size)
            limit = float(overrides.get("comparison_threshold", threshold))
        else:
            if prof.counts is None:
                continue
            distance = categorical_linf(ref, {k: float(v) for k, v in prof.counts.items()})
            m = float(sum(prof.counts.values()))
            limit = float(overrides.get("comparison_threshold", cat_threshold))
        if method == "robust":
            distance = robust(distance, n_ref, m)
        distances[name] = distance
        thresholds[name] = limit
        if feature_on and distance > limit:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "baseline_drift_check",
                    "description": f"Baseline drift distance: {distance!r} exceeds threshold: {limit!r}",
                }
            )
    return Evaluation(violations, distances, thresholds)


def metric_records(
    baseline: Baseline, profiles: dict[str, Profile], distances: dict[str, float], env: dict[str, str]
) -> list[dict[str, Any]]:
    endpoint = env.get("sagemaker_endpoint_name")
    schedule = env.get("sagemaker_monitoring_schedule_name")
    dims = []
    if endpoint:
        dims.append({"Name": "Endpoint", "Value": endpoint})
    if schedule:
        dims.append({"Name": "MonitoringSchedule", "Value": schedule})
    stamp = env.get("end_time") or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[dict[str, Any]] = []
    global_on = _enabled(baseline.config.get("emit_metrics"))
    for name in baseline.names:
        prof = profiles.get(name)
        if prof is None:
            continue
        overrides = feature_overrides(baseline.constraints.get(name, {}))
        if not (global_on and _enabled(overrides.get("emit_metrics"))):
            continue
        base = {"Timestamp": stamp, "Dimensions": dims}
        if prof.values is not None and prof.values.size and prof.inferred_type in NUMERIC_TYPES:
            v = prof.values
            out.append(
                {
                    "MetricName": f"feature_data_{name}",
                    **base,
                    "StatisticValues": {
                        "SampleCount": float(v.size),
                        "Sum": _num(v.sum()),
                        "Minimum": float(v[0]),
                        "Maximum": float(v[-1]),
                    },
                    "Unit": "None",
                }
            )
        out.append({"MetricName": f"feature_non_null_{name}", **base, "Value": prof.completeness, "Unit": "None"})
        if name in distances:
            out.append(
                {"MetricName": f"feature_baseline_drift_{name}", **base, "Value": distances[name], "Unit": "None"}
            )
    return out


# --- the job ------------------------------------------------------------------------------


ENV_KEYS = (
    "dataset_format",
    "dataset_source",
    "output_path",
    "baseline_constraints",
    "baseline_statistics",
    "publish_cloudwatch_metrics",
    "sagemaker_endpoint_name",
    "sagemaker_monitoring_schedule_name",
    "start_time",
    "end_time",
    "categorical_drift_method",
    "record_preprocessor_script",
    "post_analytics_processor_script",
)


def read_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in ENV_KEYS if os.environ.get(key)}
    config_file = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")).parent / "config" / "processingjobconfig.json"
    if config_file.is_file():  # the platform's copy of the job's Environment
        try:
            job_env = json.loads(config_file.read_text()).get("Environment") or {}
        except (OSError, ValueError):
            job_env = {}
        for key in ENV_KEYS:
            if key not in env and job_env.get(key) and not str(job_env[key]).startswith("/opt/ml"):
                env[key] = str(job_env[key])
    return env


def dataset_format(env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    raw = env.get("dataset_format")
    if not raw:
        raise AnalyzerError("environment variable dataset_format is required")
    try:
        fmt = json.loads(raw)
    except ValueError as exc:
        raise AnalyzerError(f"dataset_format is not valid JSON: {raw!r}") from exc
    if not isinstance(fmt, dict) or len(fmt) != 1:
        raise AnalyzerError(f"dataset_format must be an object with one key, got {raw!r}")
    kind, options = next(iter(fmt.items()))
    if kind not in ("csv", "sagemakerCaptureJson"):
        raise AnalyzerError(
            f"dataset_format {kind!r} is not supported by the local analyzer (csv, sagemakerCaptureJson)"
        )
    return kind, options if isinstance(options, dict) else {}


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def run(env: dict[str, str], output_dir: Path) -> str:
    """Run the job; returns the message written to ``<output>/message``."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    for unsupported in ("record_preprocessor_script", "post_analytics_processor_script"):
        if env.get(unsupported):
            raise AnalyzerError(f"{unsupported} is not supported by the local analyzer")
    kind, options = dataset_format(env)
    source = Path(env.get("dataset_source") or "")
    if not env.get("dataset_source"):
        raise AnalyzerError("environment variable dataset_source is required")
    if not env.get("output_path"):
        raise AnalyzerError("environment variable output_path is required")
    out = Path(env["output_path"])
    monitoring = bool(env.get("baseline_constraints") or env.get("baseline_statistics"))
    baseline = load_baseline(env.get("baseline_constraints"), env.get("baseline_statistics")) if monitoring else None
    if baseline is not None and env.get("categorical_drift_method"):
        baseline.config["distribution_constraints"]["categorical_drift_method"] = env["categorical_drift_method"]

    if kind == "sagemakerCaptureJson":
        if baseline is None:
            raise AnalyzerError("sagemakerCaptureJson data needs baseline_constraints or baseline_statistics")
        text, n_files = read_capture(source)
        if n_files == 0:
            raise AnalyzerError(f"Job inputs had no data: no capture files (*.jsonl) under {env['dataset_source']}")
        timings["read"] = time.perf_counter() - t0
        numeric_first = all(
            str((baseline.constraints.get(n) or baseline.statistics.get(n) or {}).get("inferred_type")) in NUMERIC_TYPES
            for n in baseline.names
        )
        table = parse_csv(text, numeric_first=numeric_first)
        del text
        names = list(baseline.names[: len(table.columns)])
        names += [f"_c{i}" for i in range(len(names), len(table.columns))]
    else:
        header = _enabled(options.get("header"), default=False)
        names, table = read_csv_dataset(source, header)
        timings["read"] = time.perf_counter() - t0
    timings["parse"] = time.perf_counter() - t0 - timings["read"]
    if table.rows == 0:
        raise AnalyzerError(f"Job inputs had no data: no rows under {env['dataset_source']}")
    log(f"read {table.rows} rows x {len(table.columns)} columns in {timings['read'] + timings['parse']:.3f} s")
    if len(table.width_counts) > 1:
        log(f"rows of differing length (fields: rows) {dict(sorted(table.width_counts.items()))}: short rows padded")

    t1 = time.perf_counter()
    want_counts = set()
    if baseline is not None:
        for name in baseline.names:
            ref = baseline.constraints.get(name) or baseline.statistics.get(name) or {}
            if ref.get("inferred_type") == "String" or "string_statistics" in (baseline.statistics.get(name) or {}):
                want_counts.add(name)
    profiles = profile_table(names, table, want_counts)
    timings["profile"] = time.perf_counter() - t1
    del table

    t2 = time.perf_counter()
    write_json(out / "statistics.json", statistics_document(profiles, profiles[0].rows if profiles else 0))
    if baseline is None:
        write_json(out / "constraints.json", constraints_document(profiles))
        message = "Completed: Job completed successfully with no violations."
    else:
        by_name = {p.name: p for p in profiles}
        result = evaluate(baseline, by_name, len(profiles))
        write_json(out / "constraint_violations.json", {"violations": result.violations})
        if _enabled(env.get("publish_cloudwatch_metrics"), default=False):
            records = metric_records(baseline, by_name, result.distances, env)
            metrics_dir = output_dir / "metrics" / "cloudwatch"
            metrics_dir.mkdir(parents=True, exist_ok=True)
            with (metrics_dir / "metrics.jsonl").open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record) + "\n")
        for name, distance in sorted(result.distances.items()):
            log(f"drift {name}: {distance:.4f} (threshold {result.thresholds[name]})")
        count = len(result.violations)
        message = (
            f"CompletedWithViolations: Job completed successfully with {count} violations."
            if count
            else "Completed: Job completed successfully with no violations."
        )
    timings["evaluate_and_write"] = time.perf_counter() - t2
    log(
        "timings: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items())
        + f"; total {time.perf_counter() - t0:.3f} s"
    )
    return message


def main() -> int:
    output_dir = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    try:
        env = read_env()
        message = run(env, output_dir)
    except AnalyzerError as exc:
        reason = " ".join(str(exc).split())[:1000]
        _write_text(output_dir / "failure", reason)
        print(f"FAILED: {reason}", file=sys.stderr)
        return 1
    except Exception as exc:  # an analyzer bug: still a one-line reason
        traceback.print_exc()
        reason = " ".join(f"internal analyzer error: {exc!r}".split())[:1000]
        _write_text(output_dir / "failure", reason)
        return 1
    _write_text(output_dir / "message", message)
    log(message)
    return 0


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"could not write {path}: {exc}", file=sys.stderr)


def iter_metric_records(path: Path) -> Iterator[dict[str, Any]]:
    """The metric records under ``path`` (a file, or a folder of files): JSON lines, or a
    JSON array / object per file. Used by the platform side to publish them."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for file in files:
        text = file.read_text(encoding="utf-8").strip()
        if not text:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
        for record in doc if isinstance(doc, list) else [doc]:
            if isinstance(record, dict):
                yield record


if __name__ == "__main__":
    sys.exit(main())
