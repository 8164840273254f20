"""Autoloop's data-quality and model-quality monitoring job (and a stand-in for Model Monitor's analyzer).

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9) and locally, unchanged.
It imports numpy and the standard library, and from this repo only ``autoloop_ml_common.py``,
shipped beside it (``ml/calibrate.py`` imports this file for its distance and null model).
Three ways to run it:

``python monitor.py baseline --dataset-dir D --output-dir O``
    Baselining: every ``*.csv`` under ``D`` (with a header; normally ``baseline/baseline.csv``
    written by ``preprocess.py``) -> ``statistics.json`` and ``constraints.json`` in Model
    Monitor's formats (what Model Monitor's baselining job writes).

``python monitor.py check --config C --baseline-dir B --output-dir O [--capture-dir D | --csv-dir D] ...``
    Autoloop's monitoring job: the current window (endpoint data capture, or batch input CSV)
    against the baseline, plus model quality when ground truth is given. See "Check mode".

``python monitor.py`` (no arguments)
    Model Monitor's BYOC container contract, driven by environment variables: local mode runs
    it for any processing job whose image is ``sagemaker-model-monitor-analyzer`` (the
    optional ``model-monitor`` backend). See "Environment-variable mode".

On failure every mode writes a one-line reason to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and exits 1. Every mode writes its verdict to
``$SM_OUTPUT_DIR/message`` (``Completed: ...`` or ``CompletedWithViolations: ...``), which the
platform turns into the job's ExitMessage.

What is computed (Deequ's definitions, as far as they are documented)
--------------------------------------------------------------------
- Types: a column whose present values all parse as numbers is ``Integral`` (all integers)
  or ``Fractional``; otherwise ``String``. Empty fields and NaN are missing.
- Numeric statistics: num_present/num_missing, mean, sum, population std_dev, min, max;
  ``distribution.kll``: 10 equal-width buckets over [min, max] and a ``sketch`` whose
  ``data`` holds the sorted values (n <= 2048) or 2048 equally spaced sample quantiles, as one
  level-0 compactor (``parameters`` c=0.64, k=2048 like Deequ's KLL). A real KLL sketch
  (several levels, level h items weigh 2^h) is read the same way, so baselines made on AWS
  can be used.
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
- Checks: ``data_type_check`` (share of present values of the baseline's type below
  1 - datatype_check_threshold), ``completeness_check`` (current completeness below the
  constraint), ``baseline_drift_check`` (distance above the threshold; the description reads
  ``Baseline drift distance: <d> exceeds threshold: <t>``), ``categorical_values_check``
  (share of values inside the baseline domain below 1 - domain_content_threshold),
  ``missing_column_check`` / ``extra_column_check`` (rows with fewer / more fields than the
  baseline has features; rows of mixed length are padded with missing values).
  ``is_non_negative`` is not checked (no documented violation type for it).

Calibrated thresholds (check mode, and ``calibrate.py``)
------------------------------------------------------
One ``comparison_threshold`` (0.1 by default) does not fit every feature and window size:
it is too strict for small windows (noise alone exceeds it) and too lax for large ones (a
x1.5 scale change measures about 0.097). Check mode therefore sets each feature's threshold
from the noise that feature would show at the current window's size m:

1. Draw ``--draws`` windows of m values from the baseline's own distribution, as the baseline
   statistics hold it: numeric features from the sketch's weighted items (inverse-CDF
   sampling, done exactly as a multinomial draw of m over the sketch's distinct items);
   categorical features multinomially from the baseline bucket frequencies.
2. Compute for each draw the very distance the check computes: ``linf_simple``, with the
   window's sketch built as the check builds it (2048 equally spaced order statistics when
   m > 2048). The check uses ``linf_simple`` too: ``linf_robust`` would subtract the noise a
   second time (which is why Robust-calibrated thresholds all sat at the floor).
3. The baseline is a sample too (n = its num_present): a window and the baseline differ by
   the noise of both, so the null distances are scaled by sqrt((n + m) / n), the ratio of the
   two-sample to the one-sample Kolmogorov-Smirnov scale (1 when n >> m).
4. ``noise`` = the ``--quantile`` of those distances, and
   ``threshold = max(--floor, --margin x noise)``, unless the constraints carry an explicit
   per-feature ``comparison_threshold`` override, which wins.

Cost: a multinomial draw costs O(distinct sketch items) whatever m is (about 50 ms a feature
for 200 draws over 2048 items), and the simulated distance is exactly the check's distance on
such a window, not a sqrt(m) extrapolation. Large windows skip even that: when an upper bound
of the quantile (Dvoretzky-Kiefer-Wolfowitz with Massart's constant, plus the sketch's
1/2048 resolution, times the same sqrt((n + m) / n); twice that for categorical gaps) already
leaves ``margin x bound`` under ``--floor``, the threshold is the floor for certain and
``noise`` reports the bound. With the defaults that is every window above about 12k rows
(for a large baseline), so a 1M-row window costs no simulation at all. Seeds are per feature
(``--seed`` and the feature's name), so a feature's threshold does not depend on the others.
The resolution limit is the baseline sketch itself: at most 2048 points, so distances below
about 1/2048 are not resolved.

Check mode
----------
``--config`` is the model config (``columns`` with the label first, ``label``,
``numeric_features``, ``categorical_features``, ``metric``, optional ``task``: ``binary``
(default), ``multiclass`` or ``regression``, optional ``classes`` for multiclass). The current
window is one of:

- ``--capture-dir``: endpoint data-capture JSON lines (``*.jsonl``, recursive). Each record's
  ``captureData.endpointInput.data`` is CSV rows of the features (config order, no label;
  ``encoding`` CSV or BASE64), ``endpointOutput.data`` the model's output for those rows
  (``inference.py``: text/csv one value a line, or JSON ``{"predictions": [...]}``; binary:
  the probability of class 1; multiclass: a class label, or one probability per class whose
  largest wins; regression: the value), ``eventMetadata`` its ``eventId``, optional
  ``inferenceId`` and ``inferenceTime``. With ``--window-start``/``--window-end`` (ISO 8601;
  no offset = UTC) only records whose ``inferenceTime`` is in [start, end) count; records
  without one are then left out. A capture line that is not a valid record is skipped and
  counted (logged, and named in the message), never fatal.
- ``--csv-dir``: batch input CSV files (header naming the features in any order; the label
  column is optional and, when present, its rows with a valid label become labelled data).

``--ground-truth-dir`` holds Model Monitor's ground-truth JSON lines
(``{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"},
"eventVersion": "0"}``, recursive), matched to captured records on ``inferenceId`` when the
record has one, else on ``eventId``. A record whose ``data`` holds several CSV lines labels a
captured request of as many rows, in order. Bad input never fails the job: each ground-truth
record lands in exactly one of matched, ``malformed`` (not JSON, or no data / event id),
``wrong_label_type`` (binary: not 0/1; regression: not a finite number; multiclass: not one
of ``classes`` when the config lists them; or a label count that differs from the request's
row count), ``duplicate_event_ids`` (the first record of an id wins) or
``unknown_event_ids`` (no captured record with that id in the window), counted per file in
the log and named (file, line, kind, detail; the first 50) in the report.

Outputs under ``--output-dir``:

- ``statistics.json`` (the window's data-quality statistics) and
  ``constraint_violations.json`` (the checks above, with the calibrated thresholds);
- with ground truth: ``model_quality/statistics.json`` (Model Monitor's model-quality
  format: ``binary_classification_metrics`` with confusion_matrix, accuracy, precision,
  recall, f0_5, f1, f2, auc, true/false positive/negative rates at a 0.5 cut;
  ``multiclass_classification_metrics`` with confusion_matrix, accuracy, weighted recall /
  precision / f0_5 / f1 / f2; ``regression_metrics`` with mae, mse, rmse, r2; each
  ``{"value", "standard_deviation"}``, the deviation over 5 seeded 80 % subsamples from 200
  rows on, else ``"NaN"``) and ``model_quality/constraint_violations.json``
  (``{"constraint_check_type": "LessThanThreshold"|"GreaterThanThreshold", "description":
  "Metric auc with 0.71 was LessThanThreshold 0.75", "metric_name": "auc"}``) when the metric
  is worse than ``--threshold``, or worse than ``--champion-metric`` by more than
  ``--quality-margin`` (``--direction`` says which way is worse; default from the metric:
  lower for rmse, mse and mae, else higher), given at least ``--min-labelled-rows`` rows;
- ``labelled/labelled.csv``: the labelled rows, header = the config's ``columns`` (label
  first), the captured feature values written exactly as captured; not written when empty;
- ``monitoring_report.json``: the summary the Lambda reads (see :func:`report_document`);
- ``message``: the verdict (also in ``$SM_OUTPUT_DIR/message``).

A window with no rows writes empty statistics and violations, ``empty_window: true`` in the
report, a message saying so, and exits 0.

Environment-variable mode (Model Monitor's BYOC contract)
--------------------------------------------------------
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

Baselining writes ``statistics.json`` and ``constraints.json``; monitoring writes the current
data's ``statistics.json`` and ``constraint_violations.json`` (thresholds from the
constraints, as Model Monitor applies them; ``comparison_method`` honoured) and, with
``publish_cloudwatch_metrics`` ``Enabled``, ``<SM_OUTPUT_DIR>/metrics/cloudwatch/metrics.jsonl``
(one PutMetricData-shaped object a line: ``feature_data_<f>`` with StatisticValues for
numeric features, ``feature_non_null_<f>`` and ``feature_baseline_drift_<f>`` with Value).
Capture data: ``endpointInput`` of every ``*.jsonl`` record under ``dataset_source``, CSV
(``encoding`` CSV or BASE64, content type text/csv) without a header, features in the
baseline's order. A capture line that is not valid JSON fails the job, naming the file and
line. Not supported: JSON captures, ``endpointOutput`` columns, ChiSquared, record
preprocessor / post-analytics scripts.

Speed
-----
Capture lines are matched with regular expressions per block of a file (falling back to
``json.loads`` per line when a line does not have SageMaker's layout), CSV is parsed with
numpy's C reader when every column is numeric, files are read in blocks of at most 32 MB and
the rows profiled block by block (memory stays bounded by the numeric columns), and the
per-column sorts run on a thread pool. ``python -m bench monitor`` measures it.
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
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from autoloop_ml_common import ScriptError, argument_parser, class_text, read_config

SKETCH_K = 2048
SKETCH_C = 0.64
N_BUCKETS = 10
MAX_CATEGORICAL_BUCKETS = 1000
DOMAIN_MAX_DISTINCT = 120
ROBUST_C_ALPHA = 1.8
DEFAULT_THRESHOLD = 0.1
COMPLETENESS_Z = 1.96
BLOCK_BYTES = 32 * 1024 * 1024
MAX_PROBLEMS = 50
MIN_ROWS_FOR_STD = 200
SUBSAMPLES = 5
SUBSAMPLE_FRACTION = 0.8
DECISION_THRESHOLD = 0.5

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
LOWER_IS_BETTER = ("rmse", "mse", "mae")
METRICS_BY_TASK = {
    "binary": ("auc", "accuracy", "f1", "precision", "recall", "f0_5", "f2", "true_positive_rate",
               "true_negative_rate", "false_positive_rate", "false_negative_rate"),
    "multiclass": ("accuracy", "weighted_f1", "weighted_recall", "weighted_precision", "weighted_f0_5",
                   "weighted_f2"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
TASK_GROUPS = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
TASK_ALIASES = {
    "binary": "binary", "binary_classification": "binary", "binaryclassification": "binary",
    "classification": "binary", "multiclass": "multiclass", "multiclass_classification": "multiclass",
    "multiclassclassification": "multiclass", "regression": "regression",
}


class MonitorError(ScriptError):
    """An expected failure; the message is the job's one-line failure reason."""


AnalyzerError = MonitorError  # the name the environment-variable mode has always used


def log(message: str) -> None:
    print(f"[monitor] {message}", flush=True)


# --- distances (ml/calibrate.py imports these) ----------------------------------------------


def sketch_indices(n: int) -> np.ndarray:
    """Positions in n sorted values that the sketch keeps: all up to 2048, else 2048
    equally spaced order statistics (each standing for n / 2048 values)."""
    if n <= SKETCH_K:
        return np.arange(n, dtype=np.int64)
    idx = ((np.arange(SKETCH_K) + 0.5) * (n / SKETCH_K)).astype(np.int64)
    return np.minimum(idx, n - 1)


def sketch_points(values_sorted: np.ndarray) -> np.ndarray:
    """The sketch of sorted values (see :func:`sketch_indices`)."""
    if values_sorted.size <= SKETCH_K:
        return values_sorted
    return values_sorted[sketch_indices(values_sorted.size)]


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


def window_linf(reference: tuple[np.ndarray, np.ndarray], values_sorted: np.ndarray) -> float:
    """The check's distance between a baseline sketch and a window's sorted values."""
    return numeric_linf(reference, sketch_cdf([sketch_points(values_sorted)]))


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
    raise MonitorError(f"comparison_method {value!r} is not one of Simple, Robust, linf_simple, linf_robust")


# --- the null model: what a window of m baseline values measures -----------------------------


def _distinct(items: np.ndarray, cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct items, probability of each) of a sketch's (sorted items, cumulative fraction)."""
    last = np.append(items[1:] != items[:-1], True)  # the last copy of each distinct item
    u, c = items[last], cum[last]
    return u, np.diff(np.concatenate(([0.0], c)))


def null_numeric(reference: tuple[np.ndarray, np.ndarray], m: int, draws: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``draws`` linf_simple distances between the baseline sketch and windows of m values
    drawn from it (exact: multinomial counts over its distinct items, the window's sketch
    taken as :func:`sketch_indices` takes it)."""
    items, cum = reference
    if items.size == 0 or m < 1:
        return np.zeros(draws)
    u, p = _distinct(items, cum)
    p = p / p.sum()
    counts = rng.multinomial(m, p, size=draws)
    ends = np.cumsum(counts, axis=1)  # sorted positions below which values are <= u_j
    idx = sketch_indices(m)
    window_cdf = np.searchsorted(idx, ends, side="left") / float(idx.size)
    return np.max(np.abs(window_cdf - np.cumsum(p)), axis=1)


def null_categorical(reference: dict[str, float], m: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` categorical LInfinity distances between the baseline frequencies and
    windows of m values drawn from them."""
    weights = np.array([v for v in reference.values() if v > 0], dtype=np.float64)
    if weights.size == 0 or m < 1:
        return np.zeros(draws)
    p = weights / weights.sum()
    counts = rng.multinomial(m, p, size=draws)
    return np.max(np.abs(counts / float(m) - p), axis=1)


def null_distances(kind: str, reference: Any, n: float, m: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Null distances of a window of m rows, scaled for the baseline's own sampling noise
    (sqrt((n + m) / n); n = the baseline's num_present, 0 = unknown, no scaling)."""
    if kind == "numeric":
        null = null_numeric(reference, m, draws, rng)
    else:
        null = null_categorical(reference, m, draws, rng)
    if n > 0:
        null = null * math.sqrt((n + m) / n)
    return null


def feature_rng(seed: int, name: str) -> np.random.Generator:
    """A generator of its own for each feature, so a threshold depends on no other feature."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))])


@dataclass
class Calibration:
    quantile: float = 0.99
    margin: float = 1.2
    floor: float = 0.02
    draws: int = 200
    seed: int = 42

    def validate(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise MonitorError(f"--quantile must be in (0, 1), got {self.quantile}")
        if self.margin <= 0 or self.floor < 0:
            raise MonitorError(f"--margin must be > 0 and --floor >= 0, got {self.margin} and {self.floor}")
        if self.draws < 10:
            raise MonitorError(f"--draws must be at least 10, got {self.draws}")

    def noise(self, name: str, kind: str, reference: Any, n: float, m: int) -> float:
        """The --quantile of the null distances of ``name`` at window size m; or, when even
        an upper bound of it leaves the threshold at the floor, that bound (no simulation)."""
        bound = self.noise_bound(kind, n, m)
        if self.threshold(bound) <= self.floor:
            return bound
        null = null_distances(kind, reference, n, m, self.draws, feature_rng(self.seed, name))
        return float(np.quantile(null, self.quantile))

    def noise_bound(self, kind: str, n: float, m: int) -> float:
        """An upper bound of the null quantile, for any distribution (Dvoretzky-Kiefer-Wolfowitz
        with Massart's constant: P(sup |F_m - F| > e) <= 2 exp(-2 m e^2)), plus the window
        sketch's resolution 1 / min(m, 2048); a categorical gap is at most twice a CDF gap."""
        if m < 1:
            return 1.0
        dkw = math.sqrt(math.log(2.0 / (1.0 - self.quantile)) / (2.0 * m)) + 1.0 / min(m, SKETCH_K)
        scale = math.sqrt((n + m) / n) if n > 0 else 1.0
        return (dkw if kind == "numeric" else 2.0 * dkw) * scale

    def threshold(self, noise: float) -> float:
        return max(self.floor, self.margin * noise)


# --- reading: files, capture records, CSV ----------------------------------------------------

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
# check mode, SageMaker's compact layout: one pattern per field (each a fast literal search);
# used only when every line of a block yields exactly one of each, else json.loads per line
_FAST_DATA = re.compile(r'"endpointInput":\{"observedContentType":"text/csv[^"\\]*","mode":"INPUT","data":'
                        + _JSON_STR + r',"encoding":"CSV"\}')
_FAST_OUTPUT = re.compile(r'"endpointOutput":\{"observedContentType":' + _JSON_STR + r',"mode":"OUTPUT","data":'
                          + _JSON_STR + r',"encoding":"CSV"\}')
_FAST_EVENT = re.compile(r'"eventMetadata":\{"eventId":"([^"\\]*)"(?:,"inferenceId":"([^"\\]*)")?'
                         r'(?:,"inferenceTime":"([^"\\]*)")?[,}]')
_FAST_TIME = re.compile(r'"inferenceTime":"([^"\\]*)"')
_FAST_GROUND_TRUTH = re.compile(r'^\{"groundTruthData":\{"data":' + _JSON_STR + r',"encoding":"CSV"\},'
                                r'"eventMetadata":\{"eventId":"([^"\\]*)"[^{}]*\},"eventVersion":"[^"\\]*"\}$',
                                re.MULTILINE)


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


def _rel(path: Path, source: Path) -> str:
    return str(path.relative_to(source)) if source.is_dir() else path.name


def _unescape(parts: list[str]) -> str:
    """The JSON string bodies ``parts`` decoded and joined by newlines (one C-level pass; a
    plain replace when the only escapes are newlines)."""
    joined = "\n".join(parts)
    plain = joined.replace("\\n", "\n")
    if "\\" not in plain:  # every backslash was a newline escape (an escaped backslash leaves one behind)
        return plain
    return str(json.loads('"' + "\\n".join(parts) + '"'))


def _decode_input(content_type: str, data: str, encoding: str, where: str) -> str:
    if content_type and "csv" not in content_type.lower():
        raise MonitorError(
            f"{where}: endpointInput content type {content_type!r}: the monitor reads text/csv captures only"
        )
    enc = (encoding or "CSV").upper()
    if enc == "BASE64":
        try:
            return base64.b64decode(data, validate=False).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MonitorError(f"{where}: endpointInput data is not valid BASE64 UTF-8: {exc}") from exc
    if enc in ("CSV", "JSON", ""):
        return data
    raise MonitorError(f"{where}: unknown endpointInput encoding {encoding!r}")


def _decode_output(content_type: str, data: str, encoding: str) -> str:
    if (encoding or "").upper() == "BASE64":
        return base64.b64decode(data, validate=False).decode("utf-8")
    return data


def _capture_lines_slow(text: str, rel: str) -> list[str]:
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"capture file {rel} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MonitorError(
                f"{where} is not valid JSON ({exc.msg} at column {exc.colno}): the capture file is truncated or corrupt"
            ) from exc
        try:
            endpoint_input = record["captureData"]["endpointInput"]
        except (KeyError, TypeError) as exc:
            raise MonitorError(f"{where} has no captureData.endpointInput (data capture must include Input)") from exc
        data = endpoint_input.get("data")
        if not isinstance(data, str):
            raise MonitorError(f"{where}: endpointInput.data is missing or not a string")
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
            return [_unescape(payloads)]
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
    """All captured endpointInput CSV under ``source`` as one text; and the file count
    (environment-variable mode: a bad line fails the job)."""
    files = _files(source, (".jsonl",))
    parts: list[str] = []
    for path in files:
        rel = _rel(path, source)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise MonitorError(f"capture file {rel} is not UTF-8: {exc}") from exc
        payloads = _capture_lines_fast(text, rel)
        if payloads is None:
            payloads = _capture_lines_slow(text, rel)
        parts.extend(payloads)
    return "\n".join(parts), len(files)


def read_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, str]]:
    """(number of the block's first line, text) of a UTF-8 file in blocks of whole lines."""
    first_line = 1
    tail = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(block_bytes)
            if not chunk:
                break
            data = tail + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            block, tail = data[: cut + 1], data[cut + 1 :]
            yield first_line, block.decode("utf-8", errors="replace")
            first_line += block.count(b"\n")
    if tail:
        yield first_line, tail.decode("utf-8", errors="replace")


@dataclass
class Table:
    """Parsed columns: float64 arrays (NaN = missing) or lists of strings ('' = missing)."""

    columns: list[Any]
    rows: int
    width_counts: Counter[int] = field(default_factory=Counter)  # fields per row -> rows


def _transpose(rows: list[list[str]], width: int) -> list[list[str]]:
    padded = (r + [""] * (width - len(r)) for r in rows)
    return [list(c) for c in zip(*padded)]


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
        return Table(_transpose(rows, max(widths)), len(rows), widths)
    counts = [line.count(",") for line in lines]
    widths = Counter(c + 1 for c in counts)
    width = max(widths)
    if len(widths) == 1:
        flat = ",".join(lines).split(",")
        return Table([flat[j::width] for j in range(width)], len(lines), widths)
    return Table(_transpose([line.split(",") for line in lines], width), len(lines), widths)


def _header_of(line: str) -> list[str]:
    return next(csv.reader([line.strip("\r")]), [])


def read_csv_dataset(source: Path, header: bool) -> tuple[list[str], Table]:
    files = _files(source, None)
    names: list[str] | None = None
    bodies: list[str] = []
    for path in files:
        rel = _rel(path, source)
        text = path.read_text(encoding="utf-8-sig")
        if header:
            first, _, rest = text.partition("\n")
            head = _header_of(first)
            if not any(h.strip() for h in head):
                continue
            if names is None:
                names = head
            elif head != names:
                raise MonitorError(f"dataset file {rel}: header {head} differs from {names}")
            text = rest
        bodies.append(text)
    table = parse_csv("\n".join(bodies), numeric_first=True)
    width = len(table.columns)
    if names is None:
        names = [f"_c{i}" for i in range(width)]
    if width > len(names):
        raise MonitorError(f"dataset rows have {width} fields but the header names {len(names)} columns")
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


def _string_counts(strings: list[str]) -> Counter[str]:
    counts = Counter(strings)
    for key in [k for k in counts if not k.strip() or k.strip().lower() in ("nan", "inf", "-inf", "+inf")]:
        del counts[key]
    return counts


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


class ColumnAccumulator:
    """One column's profile inputs, gathered block by block. Blank fields and NaN/inf are
    missing; values that are not numbers are present but non-numeric (they make the column a
    String column, whose counts are then those of the raw strings; a block that was read as
    numbers contributes its numbers' shortest text)."""

    def __init__(self, name: str, want_counts: bool) -> None:
        self.name = name
        self.want_counts = want_counts
        self.rows = 0
        self.non_numeric = 0
        self.pieces: list[np.ndarray] = []  # finite numbers, unsorted, a block each
        self.piece_counts: list[Counter[str] | None] = []  # the block's raw-string counts, if kept

    def add(self, raw: Any, rows: int) -> None:
        self.rows += rows
        strings: list[str] | None = None
        if isinstance(raw, np.ndarray):
            numbers, bad = raw, 0
        else:
            strings = raw
            numbers, bad = _numeric_of_strings(raw)
        finite = np.isfinite(numbers)
        count = int(np.count_nonzero(finite))
        self.pieces.append(numbers if count == numbers.size else numbers[finite])
        self.non_numeric += bad
        keep = strings is not None and (self.want_counts or bad > 0)
        self.piece_counts.append(_string_counts(strings) if keep and strings is not None else None)

    def add_missing(self, rows: int) -> None:
        self.add(np.full(rows, np.nan), rows)

    def profile(self) -> Profile:
        prof = Profile(name=self.name, rows=self.rows)
        values = np.concatenate(self.pieces) if len(self.pieces) > 1 else (
            self.pieces[0] if self.pieces else np.empty(0))
        numeric_present = int(values.size)
        prof.present = numeric_present + self.non_numeric
        prof.non_numeric = self.non_numeric
        if numeric_present:
            values = np.sort(values)
            prof.values = values
            prof.non_integral = int(np.count_nonzero(values != np.floor(values)))
        prof.inferred_type = (
            ("Integral" if prof.non_integral == 0 else "Fractional") if numeric_present and not self.non_numeric
            else "String"
        )
        if self.want_counts or prof.inferred_type == "String":
            counts: Counter[str] = Counter()
            for piece, piece_counts in zip(self.pieces, self.piece_counts):
                if piece_counts is not None:
                    counts.update(piece_counts)
                elif piece.size:
                    counts.update(_format_number(v) for v in piece.tolist())
            prof.counts = counts
        self.pieces, self.piece_counts = [], []
        return prof


class TableAccumulator:
    """Columns named ``names`` gathered block by block (a block may be narrower or wider:
    missing fields are missing values, extra ones get ``_c<i>`` names)."""

    def __init__(self, names: list[str], want_counts: set[str]) -> None:
        self.names = list(names)
        self.want_counts = want_counts
        self.columns = [ColumnAccumulator(n, n in want_counts) for n in self.names]
        self.rows = 0
        self.seen = 0  # columns that some block had
        self.width_counts: Counter[int] = Counter()

    def add(self, table: Table) -> None:
        if table.rows == 0:
            return
        self.seen = max(self.seen, len(table.columns))
        for index in range(len(self.columns), len(table.columns)):  # wider than seen so far
            name = self.names[index] if index < len(self.names) else f"_c{index}"
            if index >= len(self.names):
                self.names.append(name)
            column = ColumnAccumulator(name, name in self.want_counts)
            if self.rows:
                column.add_missing(self.rows)
            self.columns.append(column)
        for index, column in enumerate(self.columns):
            if index < len(table.columns):
                column.add(table.columns[index], table.rows)
            else:
                column.add_missing(table.rows)
        self.rows += table.rows
        self.width_counts.update(table.width_counts)

    def profiles(self) -> list[Profile]:
        """One profile per column that some block had (not the never-seen trailing names)."""
        columns = self.columns[: self.seen]
        workers = max(1, min(8, os.cpu_count() or 1, len(columns)))
        if workers == 1:
            return [c.profile() for c in columns]
        with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy's sort releases the GIL
            return list(pool.map(lambda c: c.profile(), columns))


def profile_column(name: str, raw: Any, rows: int, want_counts: bool) -> Profile:
    """Statistics inputs of one column (see :class:`ColumnAccumulator`)."""
    column = ColumnAccumulator(name, want_counts)
    column.add(raw, rows)
    return column.profile()


def profile_table(names: list[str], table: Table, want_counts: set[str]) -> list[Profile]:
    accumulator = TableAccumulator(names, want_counts)
    accumulator.add(table)
    return accumulator.profiles()


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


# --- the baseline and the checks --------------------------------------------------------------


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

    def feature_type(self, name: str) -> str:
        ref = self.constraints.get(name) or self.statistics.get(name) or {}
        return str(ref.get("inferred_type") or "")

    def is_string(self, name: str) -> bool:
        return self.feature_type(name) == "String" or "string_statistics" in (self.statistics.get(name) or {})


def load_json(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError as exc:
        raise MonitorError(f"{what} file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise MonitorError(f"{what} file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise MonitorError(f"{what} file {path} has no 'features' list")
    return doc


def load_baseline(constraints_path: str | None, statistics_path: str | None) -> Baseline:
    constraints_doc = load_json(constraints_path, "baseline constraints") if constraints_path else None
    statistics_doc = load_json(statistics_path, "baseline statistics") if statistics_path else None
    source = constraints_doc or statistics_doc
    if source is None:
        raise MonitorError("a baseline needs constraints.json or statistics.json")
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
class FeatureDrift:
    name: str
    kind: str  # numeric | categorical
    distance: float
    threshold: float
    noise: float | None  # the null quantile (check mode), None in environment-variable mode
    violated: bool


@dataclass
class Evaluation:
    violations: list[dict[str, str]]
    drifts: dict[str, FeatureDrift]

    @property
    def distances(self) -> dict[str, float]:
        return {k: d.distance for k, d in self.drifts.items()}

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: d.threshold for k, d in self.drifts.items()}


def evaluate(baseline: Baseline, profiles: dict[str, Profile], width: int,
             calibration: Calibration | None = None) -> Evaluation:
    """Every check of the baseline against the profiled current data. Without
    ``calibration``: Model Monitor's rules (the constraints' thresholds and comparison_method).
    With it: linf_simple against a threshold calibrated to the window (module docstring),
    unless the feature's constraints override comparison_threshold."""
    config = baseline.config
    dist_cfg = config.get("distribution_constraints") or {}
    evaluate_all = _enabled(config.get("evaluate_constraints"))
    compare = _enabled(dist_cfg.get("perform_comparison"))
    method = "simple" if calibration is not None else comparison_method(dist_cfg.get("comparison_method"))
    cat_method = str(dist_cfg.get("categorical_drift_method") or "LInfinity")
    if compare and cat_method.lower() != "linfinity":
        raise MonitorError(f"categorical_drift_method {cat_method!r} is not supported (LInfinity only)")
    threshold = float(dist_cfg.get("comparison_threshold", DEFAULT_THRESHOLD))
    cat_threshold = float(dist_cfg.get("categorical_comparison_threshold", threshold))
    type_threshold = float(config.get("datatype_check_threshold", DEFAULT_THRESHOLD))
    domain_threshold = float(config.get("domain_content_threshold", DEFAULT_THRESHOLD))

    violations: list[dict[str, str]] = []
    drifts: dict[str, FeatureDrift] = {}
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
            distance = window_linf(ref, prof.values)
            m = int(prof.values.size)
            default_limit = threshold
        else:
            if prof.counts is None:
                continue
            distance = categorical_linf(ref, {k: float(v) for k, v in prof.counts.items()})
            m = int(sum(prof.counts.values()))
            default_limit = cat_threshold
        if method == "robust":
            distance = robust(distance, n_ref, float(m))
        noise: float | None = None
        if calibration is not None:
            noise = calibration.noise(name, kind, ref, n_ref, m)
            limit = calibration.threshold(noise)
        else:
            limit = default_limit
        if "comparison_threshold" in overrides:
            limit = float(overrides["comparison_threshold"])
        violated = feature_on and distance > limit
        drifts[name] = FeatureDrift(name, kind, distance, limit, noise, violated)
        if violated:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "baseline_drift_check",
                    "description": f"Baseline drift distance: {distance!r} exceeds threshold: {limit!r}",
                }
            )
    return Evaluation(violations, drifts)


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
    stamp = env.get("end_time") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
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


def write_json(path: Path, doc: Any, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=indent), encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"could not write {path}: {exc}", file=sys.stderr)


def sm_output_dir() -> Path:
    return Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))


def verdict(count: int) -> str:
    if count:
        return f"CompletedWithViolations: Job completed successfully with {count} violations."
    return "Completed: Job completed successfully with no violations."


# --- environment-variable mode: Model Monitor's BYOC contract --------------------------------


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
    config_file = sm_output_dir().parent / "config" / "processingjobconfig.json"
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
        raise MonitorError("environment variable dataset_format is required")
    try:
        fmt = json.loads(raw)
    except ValueError as exc:
        raise MonitorError(f"dataset_format is not valid JSON: {raw!r}") from exc
    if not isinstance(fmt, dict) or len(fmt) != 1:
        raise MonitorError(f"dataset_format must be an object with one key, got {raw!r}")
    kind, options = next(iter(fmt.items()))
    if kind not in ("csv", "sagemakerCaptureJson"):
        raise MonitorError(
            f"dataset_format {kind!r} is not supported by the local analyzer (csv, sagemakerCaptureJson)"
        )
    return kind, options if isinstance(options, dict) else {}


def run(env: dict[str, str], output_dir: Path) -> str:
    """Run the environment-variable mode; returns the message written to ``<output>/message``."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    for unsupported in ("record_preprocessor_script", "post_analytics_processor_script"):
        if env.get(unsupported):
            raise MonitorError(f"{unsupported} is not supported by the local analyzer")
    kind, options = dataset_format(env)
    source = Path(env.get("dataset_source") or "")
    if not env.get("dataset_source"):
        raise MonitorError("environment variable dataset_source is required")
    if not env.get("output_path"):
        raise MonitorError("environment variable output_path is required")
    out = Path(env["output_path"])
    monitoring = bool(env.get("baseline_constraints") or env.get("baseline_statistics"))
    baseline = load_baseline(env.get("baseline_constraints"), env.get("baseline_statistics")) if monitoring else None
    if baseline is not None and env.get("categorical_drift_method"):
        baseline.config["distribution_constraints"]["categorical_drift_method"] = env["categorical_drift_method"]

    if kind == "sagemakerCaptureJson":
        if baseline is None:
            raise MonitorError("sagemakerCaptureJson data needs baseline_constraints or baseline_statistics")
        text, n_files = read_capture(source)
        if n_files == 0:
            raise MonitorError(f"Job inputs had no data: no capture files (*.jsonl) under {env['dataset_source']}")
        timings["read"] = time.perf_counter() - t0
        numeric_first = all(baseline.feature_type(n) in NUMERIC_TYPES for n in baseline.names)
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
        raise MonitorError(f"Job inputs had no data: no rows under {env['dataset_source']}")
    log(f"read {table.rows} rows x {len(table.columns)} columns in {timings['read'] + timings['parse']:.3f} s")
    if len(table.width_counts) > 1:
        log(f"rows of differing length (fields: rows) {dict(sorted(table.width_counts.items()))}: short rows padded")

    t1 = time.perf_counter()
    want_counts = {n for n in baseline.names if baseline.is_string(n)} if baseline is not None else set()
    profiles = profile_table(names, table, want_counts)
    timings["profile"] = time.perf_counter() - t1
    del table

    t2 = time.perf_counter()
    write_json(out / "statistics.json", statistics_document(profiles, profiles[0].rows if profiles else 0))
    if baseline is None:
        write_json(out / "constraints.json", constraints_document(profiles))
        message = verdict(0)
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
        for name, drift in sorted(result.drifts.items()):
            log(f"drift {name}: {drift.distance:.4f} (threshold {drift.threshold})")
        message = verdict(len(result.violations))
    timings["evaluate_and_write"] = time.perf_counter() - t2
    log(
        "timings: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items())
        + f"; total {time.perf_counter() - t0:.3f} s"
    )
    return message


def env_main() -> int:
    output_dir = sm_output_dir()
    try:
        env = read_env()
        message = run(env, output_dir)
    except ScriptError as exc:
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


# --- check mode: the window ------------------------------------------------------------------

_SECOND_KEY = "%Y-%m-%dT%H:%M:%SZ"


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 instant (``Z``, an offset, or none = UTC) as an aware UTC datetime."""
    raw = str(text).strip()
    value = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MonitorError(f"{what} {text!r} is not an ISO 8601 time (for example 2024-05-01T03:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


class Window:
    """[start, end) on ``inferenceTime``; either end may be open."""

    def __init__(self, start: datetime | None, end: datetime | None) -> None:
        if start is not None and end is not None and end <= start:
            raise MonitorError(f"--window-end {_iso(end)} is not after --window-start {_iso(start)}")
        self.start, self.end = start, end
        self.active = start is not None or end is not None
        whole = all(v is None or v.microsecond == 0 for v in (start, end))
        # record times written as SageMaker writes them compare as text when the bounds are whole seconds
        self.lo = start.strftime(_SECOND_KEY) if whole and start is not None else None
        self.hi = end.strftime(_SECOND_KEY) if whole and end is not None else None
        self.textual = whole
        self._parsed: dict[str, datetime | None] = {}

    def _instant(self, text: str) -> datetime | None:
        if text not in self._parsed:
            try:
                self._parsed[text] = parse_time(text, "inferenceTime")
            except MonitorError:
                self._parsed[text] = None
        return self._parsed[text]

    def _inside(self, text: str | None) -> bool:
        if not text:
            return False
        at = self._instant(text)
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def mask(self, times: list[str | None]) -> list[bool] | None:
        """Which records are inside (None: all of them)."""
        if not self.active:
            return None
        if self.textual and all(t is not None and len(t) == 20 and t[19] == "Z" and t[10] == "T" for t in times):
            lo, hi = self.lo, self.hi
            if times and (lo is None or min(times) >= lo) and (hi is None or max(times) < hi):  # type: ignore[type-var]
                return None
            return [(lo is None or t >= lo) and (hi is None or t < hi) for t in times]  # type: ignore[operator]
        return [self._inside(t) for t in times]


# --- check mode: capture records -------------------------------------------------------------


@dataclass
class CaptureBlock:
    """The records of one block of a capture file (lists in record order)."""

    payloads: list[str]  # endpointInput data as JSON string bodies (fast) or decoded text (slow)
    escaped: bool
    times: list[str | None]
    keys: list[str]  # inferenceId, else eventId ('' when wanted but absent)
    outputs: list[tuple[str, str]]  # (content type, decoded endpointOutput data), when wanted
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, why)

    def decoded(self) -> list[str]:
        if not self.escaped:
            return self.payloads
        text = "\\u0000".join(self.payloads)  # an escaped NUL: decoded, it separates the records
        if text.count("\\u0000") != len(self.payloads) - 1:
            return [str(json.loads('"' + p + '"')) for p in self.payloads]
        return str(json.loads('"' + text + '"')).split("\x00")

    def rows_text(self) -> str:
        return _unescape(self.payloads) if self.escaped else "\n".join(self.payloads)

    def select(self, keep: list[bool]) -> CaptureBlock:
        def pick(values: list[Any]) -> list[Any]:
            return [v for v, k in zip(values, keep) if k] if values else values

        return CaptureBlock(pick(self.payloads), self.escaped, pick(self.times), pick(self.keys),
                            pick(self.outputs), self.bad)


def _fast_capture_block(text: str, need_times: bool, need_meta: bool) -> CaptureBlock | None:
    if not text or text[0] != "{" or "\n\n" in text:
        return None  # blank lines: the general reader skips them
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    payloads = _FAST_DATA.findall(text)
    if len(payloads) != lines:
        return None
    times: list[str | None] = []
    keys: list[str] = []
    outputs: list[tuple[str, str]] = []
    if need_meta:
        events = _FAST_EVENT.findall(text)
        found = _FAST_OUTPUT.findall(text)
        if len(events) != lines or len(found) != lines:
            return None
        keys = [iid or eid for eid, iid, _ in events]
        times = [t or None for _, _, t in events] if need_times else []
        if any("\\" in c or "\\" in d for c, d in found):
            found = [(str(json.loads('"' + c + '"')), str(json.loads('"' + d + '"'))) for c, d in found]
        outputs = found
    elif need_times:
        stamps = _FAST_TIME.findall(text)
        if len(stamps) != lines:
            return None
        times = list(stamps)
    return CaptureBlock(payloads, True, times, keys, outputs)


def _slow_capture_block(text: str, first_line: int, need_times: bool, need_meta: bool) -> CaptureBlock:
    block = CaptureBlock([], False, [], [], [])
    for offset, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        number = first_line + offset
        try:
            record = json.loads(line)
        except ValueError as exc:
            block.bad.append((number, f"not valid JSON ({exc})"))
            continue
        try:
            endpoint_input = record["captureData"]["endpointInput"]
            data = endpoint_input["data"]
            if not isinstance(data, str):
                raise TypeError("data is not a string")
            payload = _decode_input(str(endpoint_input.get("observedContentType") or ""), data,
                                    str(endpoint_input.get("encoding") or "CSV"), "endpointInput")
            meta = record.get("eventMetadata") or {}
            if not isinstance(meta, dict):
                raise TypeError("eventMetadata is not an object")
            key = str(meta.get("inferenceId") or meta.get("eventId") or "")
            output = (record["captureData"].get("endpointOutput") or {}) if need_meta else {}
            out = ("", "")
            if need_meta and isinstance(output, dict) and isinstance(output.get("data"), str):
                out = (str(output.get("observedContentType") or ""),
                       _decode_output(str(output.get("observedContentType") or ""), output["data"],
                                      str(output.get("encoding") or "CSV")))
        except (KeyError, TypeError, ValueError, MonitorError) as exc:
            block.bad.append((number, f"not a capture record with captureData.endpointInput CSV data ({exc})"))
            continue
        block.payloads.append(payload)
        if need_times:
            stamp = meta.get("inferenceTime")
            block.times.append(str(stamp) if stamp else None)
        if need_meta:
            block.keys.append(key)
            block.outputs.append(out)
    return block


def capture_blocks(path: Path, need_times: bool, need_meta: bool) -> Iterator[CaptureBlock]:
    for first_line, text in read_blocks(path):
        block = _fast_capture_block(text, need_times, need_meta)
        yield block if block is not None else _slow_capture_block(text, first_line, need_times, need_meta)


# --- check mode: labels, ground truth and predictions ------------------------------------------


def normalize_task(value: Any) -> str:
    task = TASK_ALIASES.get(str(value or "binary").strip().lower().replace("-", "_"))
    if task is None:
        raise MonitorError(f"config task {value!r} is not one of binary, multiclass, regression")
    return task


class LabelRule:
    """What a valid label is for the task; :meth:`parse` returns the label's value or raises
    ValueError saying why not."""

    def __init__(self, task: str, classes: list[str] | None) -> None:
        self.task = task
        self.classes = {class_text(str(c)) for c in classes} if classes else None

    def parse(self, text: str) -> Any:
        value = text.strip()
        if not value:
            raise ValueError("empty label")
        if self.task == "regression":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"label {value!r} is not a finite number")
            return number
        label = class_text(value)
        if self.task == "binary":
            if label not in ("0", "1"):
                raise ValueError(f"label {value!r} is not 0 or 1")
            return int(label)
        if self.classes is not None and label not in self.classes:
            raise ValueError(f"label {value!r} is not one of the config's classes")
        return label


@dataclass
class GroundTruth:
    labels: dict[str, tuple[list[str], str, int]]  # key -> (label texts, file, line)
    files: int = 0
    records: int = 0
    malformed: int = 0
    wrong_label_type: int = 0
    duplicate_event_ids: int = 0
    unknown_event_ids: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    per_file: dict[str, Counter[str]] = field(default_factory=dict)

    def problem(self, file: str, line: int, kind: str, detail: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        self.per_file.setdefault(file, Counter())[kind] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"file": file, "line": line, "kind": kind, "detail": detail[:300]})


def _label_lines(data: str) -> list[str]:
    return [line for line in data.replace("\r", "").split("\n") if line.strip()] or [data]


def read_ground_truth(source: Path, rule: LabelRule) -> GroundTruth:
    """Every ground-truth record under ``source`` (``*.jsonl``/``*.json``, recursive), checked
    and keyed by event id; bad records counted, never fatal."""
    truth = GroundTruth({})
    interned: dict[str, str] = {}
    files = _files(source, (".jsonl", ".json"))
    truth.files = len(files)
    for path in files:
        rel = _rel(path, source)
        truth.per_file.setdefault(rel, Counter())
        for first_line, text in read_blocks(path):
            lines = text.split("\n")
            fast = _FAST_GROUND_TRUTH.findall(text)
            body = [i for i, line in enumerate(lines) if line.strip()]
            simple = len(fast) == len(body)  # each match is one whole line
            for n, i in enumerate(body):
                number = first_line + i
                truth.records += 1
                if simple and "\\" not in fast[n][0]:
                    data, key = fast[n]
                else:
                    parsed = _ground_truth_record(lines[i])
                    if isinstance(parsed, str):
                        truth.problem(rel, number, "malformed", parsed)
                        continue
                    data, key = parsed
                texts = _label_lines(data)
                try:
                    for label in texts:
                        rule.parse(label)
                except ValueError as exc:
                    truth.problem(rel, number, "wrong_label_type", f"event {key}: {exc}")
                    continue
                if key in truth.labels:
                    first = truth.labels[key]
                    truth.problem(rel, number, "duplicate_event_ids",
                                  f"event {key} already labelled at {first[1]} line {first[2]}; the first is kept")
                    continue
                truth.labels[key] = ([interned.setdefault(t, t) for t in texts], rel, number)
    return truth


def _ground_truth_record(line: str) -> tuple[str, str] | str:
    """(label data, event id) of one ground-truth line, or why it is malformed."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(record, dict):
        return "not a JSON object"
    truth = record.get("groundTruthData")
    meta = record.get("eventMetadata")
    if not isinstance(truth, dict) or not isinstance(truth.get("data"), (str, int, float)):
        return "no groundTruthData.data"
    if not isinstance(meta, dict) or not isinstance(meta.get("eventId"), str) or not meta["eventId"]:
        return "no eventMetadata.eventId"
    data = truth["data"]
    encoding = str(truth.get("encoding") or "CSV").upper()
    if isinstance(data, str) and encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return "groundTruthData.data is not valid BASE64 UTF-8"
    elif isinstance(data, str) and encoding == "JSON":
        try:
            data = json.loads(data)
        except ValueError:
            return "groundTruthData.data is not valid JSON"
    if isinstance(data, bool) or not isinstance(data, (str, int, float)):
        return "groundTruthData.data is not a single value"
    return str(data), str(meta["eventId"])


def parse_outputs(content_type: str, data: str) -> list[list[str]]:
    """The model's output for each row of a request: text/csv one line a row, or JSON
    ``{"predictions": [...]}`` / a bare list (an item: a value or a list of values)."""
    text = data.strip()
    if not text:
        return []
    if "json" in content_type.lower() or text[0] in "[{":
        doc = json.loads(text)
        if isinstance(doc, dict):
            doc = doc.get("predictions", doc.get("outputs"))
        if not isinstance(doc, list):
            raise ValueError("JSON output has no predictions list")
        return [[str(v) for v in item] if isinstance(item, list) else [str(item)] for item in doc]
    return [line.split(",") for line in text.replace("\r", "").split("\n") if line.strip()]


def prediction_of(task: str, values: list[str], classes: list[str] | None) -> Any:
    """One row's prediction: binary, the score of class 1 (the last value); regression, the
    value; multiclass, the class (the one value, or the argmax of one probability per class)."""
    if task == "binary":
        score = float(values[-1])
        if not math.isfinite(score):
            raise ValueError("score is not finite")
        return score
    if task == "regression":
        value = float(values[0])
        if not math.isfinite(value):
            raise ValueError("prediction is not finite")
        return value
    if len(values) == 1:
        return class_text(values[0])
    probabilities = [float(v) for v in values]
    best = int(np.argmax(probabilities))
    return class_text(str(classes[best])) if classes and best < len(classes) else str(best)


# --- check mode: model-quality metrics ------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _f_beta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator and math.isfinite(denominator) else 0.0


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by ranks (ties share their average rank); NaN with a single class."""
    positives = int(np.count_nonzero(y == 1))
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def binary_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    predicted = (score >= DECISION_THRESHOLD).astype(np.int64)
    tp = float(np.count_nonzero((predicted == 1) & (y == 1)))
    tn = float(np.count_nonzero((predicted == 0) & (y == 0)))
    fp = float(np.count_nonzero((predicted == 1) & (y == 0)))
    fn = float(np.count_nonzero((predicted == 0) & (y == 1)))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    p, r = (0.0 if math.isnan(precision) else precision), (0.0 if math.isnan(recall) else recall)
    return {
        "auc": auc_score(y, score), "accuracy": _ratio(tp + tn, float(y.size)), "precision": precision,
        "recall": recall, "f0_5": _f_beta(p, r, 0.5), "f1": _f_beta(p, r, 1.0), "f2": _f_beta(p, r, 2.0),
        "true_positive_rate": recall, "true_negative_rate": _ratio(tn, tn + fp),
        "false_positive_rate": _ratio(fp, fp + tn), "false_negative_rate": _ratio(fn, fn + tp),
    }


def multiclass_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    labels, support = np.unique(y, return_counts=True)
    weights = support / float(y.size)
    recall_w = precision_w = f05 = f1 = f2 = 0.0
    for label, weight in zip(labels, weights):
        tp = float(np.count_nonzero((predicted == label) & (y == label)))
        predicted_n = float(np.count_nonzero(predicted == label))
        precision = _ratio(tp, predicted_n)
        precision = 0.0 if math.isnan(precision) else precision
        recall = _ratio(tp, float(np.count_nonzero(y == label)))
        recall_w += weight * recall
        precision_w += weight * precision
        f05 += weight * _f_beta(precision, recall, 0.5)
        f1 += weight * _f_beta(precision, recall, 1.0)
        f2 += weight * _f_beta(precision, recall, 2.0)
    return {"accuracy": float(np.mean(predicted == y)), "weighted_recall": recall_w,
            "weighted_precision": precision_w, "weighted_f0_5": f05, "weighted_f1": f1, "weighted_f2": f2}


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = predicted - y
    mse = float(np.mean(error * error))
    variance = float(np.sum((y - y.mean()) ** 2))
    return {"mae": float(np.mean(np.abs(error))), "mse": mse, "rmse": math.sqrt(mse),
            "r2": 1.0 - float(np.sum(error * error)) / variance if variance > 0 else float("nan")}


def task_metrics(task: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    if task == "binary":
        return binary_metrics(y, predicted)
    if task == "multiclass":
        return multiclass_metrics(y, predicted)
    return regression_metrics(y, predicted)


def _confusion(task: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, int]] | None:
    if task == "regression":
        return None
    if task == "binary":
        predicted = (predicted >= DECISION_THRESHOLD).astype(np.int64)
    labels = sorted({str(v) for v in np.unique(y).tolist()} | {str(v) for v in np.unique(predicted).tolist()})
    pairs = Counter(zip((str(v) for v in y.tolist()), (str(v) for v in predicted.tolist())))
    return {actual: {guess: int(pairs.get((actual, guess), 0)) for guess in labels} for actual in labels}


def _json_number(value: float) -> Any:
    return value if math.isfinite(value) else "NaN"


def quality_statistics(task: str, y: np.ndarray, predicted: np.ndarray, seed: int) -> dict[str, Any]:
    """Model Monitor's model-quality statistics document (values with standard deviations
    over seeded 80 % subsamples from 200 rows on)."""
    values = task_metrics(task, y, predicted)
    spread: dict[str, list[float]] = {k: [] for k in values}
    if y.size >= MIN_ROWS_FOR_STD:
        rng = np.random.default_rng(seed)
        size = int(y.size * SUBSAMPLE_FRACTION)
        for _ in range(SUBSAMPLES):
            pick = rng.choice(y.size, size=size, replace=False)
            for key, value in task_metrics(task, y[pick], predicted[pick]).items():
                spread[key].append(value)
    group: dict[str, Any] = {}
    confusion = _confusion(task, y, predicted)
    if confusion is not None:
        group["confusion_matrix"] = confusion
    for key, value in values.items():
        samples = [s for s in spread[key] if math.isfinite(s)]
        std = float(np.std(samples)) if len(samples) == SUBSAMPLES else float("nan")
        group[key] = {"value": _json_number(value), "standard_deviation": _json_number(std)}
    return {"version": 0.0, "dataset": {"item_count": int(y.size)}, TASK_GROUPS[task]: group}


# --- check mode: the job ---------------------------------------------------------------------


@dataclass
class ModelConfig:
    columns: list[str]
    label: str
    features: list[str]
    task: str
    metric: str | None
    classes: list[str] | None


def load_model_config(path: str) -> ModelConfig:
    doc = read_config(path)
    if not isinstance(doc, dict):
        raise MonitorError(f"config {path} is not a JSON object")
    columns, label = doc.get("columns"), doc.get("label")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise MonitorError(f"config {path}: 'columns' must be a non-empty list of column names (the label first)")
    if label != columns[0]:
        raise MonitorError(f"config {path}: 'label' ({label!r}) must be the first of 'columns' ({columns[0]!r})")
    if len(set(columns)) != len(columns):
        raise MonitorError(f"config {path}: 'columns' has duplicates")
    classes = doc.get("classes")
    if classes is not None and not isinstance(classes, list):
        raise MonitorError(f"config {path}: 'classes' must be a list")
    metric = doc.get("metric")
    return ModelConfig(list(columns), str(label), list(columns[1:]), normalize_task(doc.get("task")),
                       str(metric) if metric else None, [str(c) for c in classes] if classes else None)


def find_baseline(directory: str) -> Baseline:
    """``statistics.json`` (required) and ``constraints.json`` (optional) in ``directory``
    (or, if not there, the only ones below it)."""
    root = Path(directory)
    if not root.is_dir():
        raise MonitorError(f"--baseline-dir {directory} is not a folder")

    def one(name: str) -> str | None:
        if (root / name).is_file():
            return str(root / name)
        found = sorted(p for p in root.rglob(name) if p.is_file())
        if len(found) > 1:
            raise MonitorError(f"--baseline-dir {directory} holds {len(found)} {name} files; give the folder of one")
        return str(found[0]) if found else None

    statistics, constraints = one("statistics.json"), one("constraints.json")
    if statistics is None:
        raise MonitorError(f"--baseline-dir {directory} has no statistics.json (run `monitor.py baseline` first)")
    return load_baseline(constraints, statistics)


@dataclass
class WindowData:
    accumulator: TableAccumulator
    files: int = 0
    records: int = 0  # records (capture) or rows (csv) in the window
    outside: int = 0  # capture records outside the window (or without inferenceTime)
    bad_lines: int = 0
    bad_examples: list[str] = field(default_factory=list)


def scan_capture(source: Path, config: ModelConfig, numeric: bool, window: Window, truth: GroundTruth | None,
                 accumulator: TableAccumulator, merger: Merger | None = None) -> WindowData:
    files = _files(source, (".jsonl",))
    data = WindowData(accumulator, files=len(files))
    need_meta = truth is not None
    for path in files:
        rel = _rel(path, source)
        for whole in capture_blocks(path, window.active, need_meta):
            block = whole
            for line, why in block.bad:
                data.bad_lines += 1
                if len(data.bad_examples) < 5:
                    data.bad_examples.append(f"{rel} line {line}: {why}")
            total = len(block.payloads)
            keep = window.mask(block.times)
            if keep is not None:
                block = block.select(keep)
            data.outside += total - len(block.payloads)
            data.records += len(block.payloads)
            if not block.payloads:
                continue
            accumulator.add(parse_csv(block.rows_text(), numeric_first=numeric))
            if merger is not None and truth is not None:
                labels = truth.labels
                for key, payload, output in zip(block.keys, block.decoded(), block.outputs):
                    if key in labels:
                        merger.add(key, payload, output)
    return data


def scan_csv(source: Path, config: ModelConfig, numeric: bool, rule: LabelRule,
             accumulator: TableAccumulator, merger: Merger) -> WindowData:
    files = _files(source, (".csv",))
    data = WindowData(accumulator, files=len(files))
    for path in files:
        rel = _rel(path, source)
        header: list[str] | None = None
        for _, block_text in read_blocks(path):
            text = block_text
            if header is None:
                first, _, text = block_text.lstrip("\ufeff").partition("\n")
                header = _header_of(first)
                missing = [f for f in config.features if f not in header]
                if missing:
                    raise MonitorError(f"--csv-dir file {rel}: header {header} lacks the features {missing}")
            has_label = config.label in header
            if header == config.features:
                table = parse_csv(text, numeric_first=numeric)
            else:
                parsed = parse_csv(text, numeric_first=numeric and not has_label)
                index = {name: i for i, name in enumerate(header)}
                blank = [""] * parsed.rows

                def column(name: str, parsed: Table = parsed, index: dict[str, int] = index,
                           blank: list[str] = blank) -> Any:
                    i = index[name]
                    return parsed.columns[i] if i < len(parsed.columns) else blank

                table = Table([column(f) for f in config.features], parsed.rows, Counter({len(config.features):
                                                                                           parsed.rows}))
                if has_label:
                    lines = []
                    for i, raw in enumerate(column(config.label)):
                        try:
                            rule.parse(raw)
                        except ValueError:
                            continue
                        lines.append(_csv_line([raw.strip()] + [str(c[i]) for c in table.columns]))
                    merger.write(lines)
            data.records += table.rows
            accumulator.add(table)
    return data


def _csv_line(fields: list[str]) -> str:
    if not any(("," in f or '"' in f or "\n" in f or "\r" in f) for f in fields):
        return ",".join(fields)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


class Merger:
    """Labelled rows, written to ``labelled.csv`` as they are found (memory stays flat): the
    header (the config's columns) first, then per row the label and the captured values as
    captured. With ground truth it pairs each matched request's rows with its labels and the
    model's outputs; a request whose label count differs from its row count becomes a
    ``wrong_label_type`` problem instead."""

    def __init__(self, path: Path, config: ModelConfig, rule: LabelRule, truth: GroundTruth | None) -> None:
        self.path, self.config, self.rule, self.truth = path, config, rule, truth
        self.handle: Any = None
        self.rows = 0  # labelled rows written
        self.matched: set[str] = set()
        self.rejected = 0  # matched requests whose labels did not fit
        self.repeated_ids = 0  # captured records whose id an earlier record had
        self.y: list[Any] = []
        self.predicted: list[Any] = []
        self.unscored = 0  # labelled rows whose model output could not be read
        self.width = len(config.features)

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
            self.handle.write(_csv_line(self.config.columns) + "\n")
        self.handle.write("\n".join(lines) + "\n")
        self.rows += len(lines)

    def add(self, key: str, payload: str, output: tuple[str, str]) -> None:
        """A captured request whose id has ground truth."""
        truth = self.truth
        assert truth is not None
        if key in self.matched:
            self.repeated_ids += 1
            return
        self.matched.add(key)
        labels, rel, line = truth.labels[key]
        rows = [r.rstrip("\r") for r in payload.split("\n") if r.strip()]
        if len(labels) != len(rows):
            truth.problem(rel, line, "wrong_label_type",
                          f"event {key}: {len(labels)} labels for a captured request of {len(rows)} rows")
            self.rejected += 1
            return
        try:
            outputs = parse_outputs(*output)
            if len(outputs) != len(rows):
                raise ValueError(f"{len(outputs)} outputs for {len(rows)} rows")
            predictions = [prediction_of(self.config.task, values, self.config.classes) for values in outputs]
        except (ValueError, IndexError):
            predictions = [None] * len(rows)
        lines = []
        for row, label, prediction in zip(rows, labels, predictions):
            if row.count(",") + 1 != self.width and '"' not in row:
                continue  # a row without the config's features cannot be training data
            label_text = label.strip()
            lines.append((label_text if label_text.isalnum() else _csv_line([label_text])) + "," + row)
            if prediction is None:
                self.unscored += 1
                continue
            self.y.append(self.rule.parse(label_text))
            self.predicted.append(prediction)
        self.write(lines)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def default_direction(metric: str) -> str:
    return "lower" if metric.lower() in LOWER_IS_BETTER else "higher"


@dataclass
class QualityArgs:
    metric: str
    direction: str
    threshold: float | None
    champion: float | None
    margin: float
    min_rows: int


def judge_quality(value: float | None, rows: int, q: QualityArgs) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(model-quality violations, the report's ``quality`` object)."""
    summary: dict[str, Any] = {
        "metric": q.metric, "direction": q.direction, "value": value, "threshold": q.threshold,
        "champion": q.champion, "margin": q.margin, "labelled_rows": rows, "violated": False, "reason": None,
    }
    if value is None:
        summary["reason"] = f"{q.metric} could not be computed on {rows} labelled rows (for example a single class)" \
            if rows else "no labelled rows in the window"
        return [], summary
    if rows < q.min_rows:
        summary["reason"] = f"only {rows} labelled rows (fewer than --min-labelled-rows {q.min_rows}): no verdict"
        return [], summary
    higher = q.direction == "higher"
    operator = "LessThanThreshold" if higher else "GreaterThanThreshold"
    violations, reasons = [], []
    limits = []
    if q.threshold is not None:
        limits.append((q.threshold, f"the threshold {q.threshold:.4g}"))
    if q.champion is not None:
        bound = q.champion - q.margin if higher else q.champion + q.margin
        limits.append((bound, f"the champion's {q.champion:.4g} {'-' if higher else '+'} margin {q.margin:.4g}"))
    for bound, what in limits:
        worse = value < bound if higher else value > bound
        if worse:
            violations.append({"constraint_check_type": operator,
                               "description": f"Metric {q.metric} with {value!r} was {operator} {bound!r} ({what})",
                               "metric_name": q.metric})
            reasons.append(f"{q.metric} {value:.4g} is {'below' if higher else 'above'} {what}")
    if violations:
        summary["violated"] = True
        summary["reason"] = "; ".join(reasons)
    return violations, summary


def report_document(window: Window, rows: int, drifts: list[FeatureDrift], data_violations: int,
                    quality: dict[str, Any] | None, truth: GroundTruth | None, matched: int,
                    labelled_rows: int) -> dict[str, Any]:
    """``monitoring_report.json``: {"version": 1, "window": {"start", "end"}, "rows",
    "empty_window", "features": [{"name", "kind", "distance", "threshold", "noise",
    "violated"}], "data_quality_violations", "quality": null | {"metric", "direction",
    "value", "threshold", "champion", "margin", "labelled_rows", "violated", "reason"},
    "ground_truth": {"files", "records", "matched", "malformed", "unknown_event_ids",
    "wrong_label_type", "duplicate_event_ids", "problems": [{"file", "line", "kind",
    "detail"}] (the first 50)}, "labelled_rows", "labelled_uri_hint"}."""
    gt = truth or GroundTruth({})
    return {
        "version": 1,
        "window": {"start": _iso(window.start), "end": _iso(window.end)},
        "rows": rows,
        "empty_window": rows == 0,
        "features": [
            {"name": d.name, "kind": d.kind, "distance": d.distance, "threshold": d.threshold, "noise": d.noise,
             "violated": d.violated}
            for d in drifts
        ],
        "data_quality_violations": data_violations,
        "quality": quality,
        "ground_truth": {
            "files": gt.files, "records": gt.records, "matched": matched, "malformed": gt.malformed,
            "unknown_event_ids": gt.unknown_event_ids, "wrong_label_type": gt.wrong_label_type,
            "duplicate_event_ids": gt.duplicate_event_ids, "problems": gt.problems,
        },
        "labelled_rows": labelled_rows,
        "labelled_uri_hint": "labelled/labelled.csv" if labelled_rows else None,
    }


def check(args: Any) -> dict[str, Any]:
    """Check mode (module docstring); returns the report, after writing every output."""
    t0 = time.perf_counter()
    if bool(args.capture_dir) == bool(args.csv_dir):
        raise MonitorError("give exactly one of --capture-dir (endpoint data capture) and --csv-dir (batch CSV)")
    if args.ground_truth_dir and not args.capture_dir:
        raise MonitorError("--ground-truth-dir needs --capture-dir: labels are matched to captured event ids")
    calibration = Calibration(args.quantile, args.margin, args.floor, args.draws, args.seed)
    calibration.validate()
    config = load_model_config(args.config)
    baseline = find_baseline(args.baseline_dir)
    if set(baseline.names) != set(config.features):
        raise MonitorError(f"the baseline's features {baseline.names} are not the config's features "
                           f"{config.features}: re-baseline with this model's baseline.csv")
    metric = args.metric or config.metric or METRICS_BY_TASK[config.task][0]
    if metric not in METRICS_BY_TASK[config.task]:
        raise MonitorError(f"--metric {metric!r} is not a {config.task} metric "
                           f"({', '.join(METRICS_BY_TASK[config.task])})")
    direction = args.direction or default_direction(metric)
    if args.min_labelled_rows < 1 or args.quality_margin < 0:
        raise MonitorError("--min-labelled-rows must be >= 1 and --quality-margin >= 0")
    window = Window(parse_time(args.window_start, "--window-start") if args.window_start else None,
                    parse_time(args.window_end, "--window-end") if args.window_end else None)
    rule = LabelRule(config.task, config.classes)
    out = Path(args.output_dir)

    truth = read_ground_truth(Path(args.ground_truth_dir), rule) if args.ground_truth_dir else None
    t_truth = time.perf_counter()
    if truth is not None:
        log(f"ground truth: {truth.records} records in {truth.files} files, {len(truth.labels)} usable "
            f"in {t_truth - t0:.3f} s")
    numeric = all(baseline.feature_type(n) in NUMERIC_TYPES for n in config.features)
    accumulator = TableAccumulator(config.features, {n for n in config.features if baseline.is_string(n)})
    labelled_path = out / "labelled" / "labelled.csv"
    if labelled_path.exists():
        labelled_path.unlink()  # a rerun into the same folder must not leave an old file behind
    merger = Merger(labelled_path, config, rule, truth)
    try:
        if args.capture_dir:
            source = Path(args.capture_dir)
            if not source.is_dir():
                raise MonitorError(f"--capture-dir {source} is not a folder")
            data = scan_capture(source, config, numeric, window, truth, accumulator, merger)
        else:
            source = Path(args.csv_dir)
            if not source.is_dir():
                raise MonitorError(f"--csv-dir {source} is not a folder")
            data = scan_csv(source, config, numeric, rule, accumulator, merger)
    finally:
        merger.close()
    t_scan = time.perf_counter()
    log(f"read {data.records} records ({accumulator.rows} rows) of {data.files} files in {t_scan - t_truth:.3f} s"
        + (f"; {data.outside} outside the window" if window.active else ""))
    if data.bad_lines:
        log(f"skipped {data.bad_lines} capture lines that are not valid records, e.g. {data.bad_examples}")

    rows = accumulator.rows
    drifts: list[FeatureDrift] = []
    violations: list[dict[str, str]] = []
    profiles = accumulator.profiles() if rows else []
    write_json(out / "statistics.json", statistics_document(profiles, rows), indent=None)  # C encoder: sketches
    if rows:
        by_name = {p.name: p for p in profiles}
        result = evaluate(baseline, by_name, accumulator.seen, calibration)
        violations = result.violations
        drifts = [result.drifts[n] for n in baseline.names if n in result.drifts]
        for d in drifts:
            log(f"drift {d.name}: {d.distance:.4f} (threshold {d.threshold:.4f}, noise {d.noise})")
    write_json(out / "constraint_violations.json", {"violations": violations})
    t_eval = time.perf_counter()

    quality: dict[str, Any] | None = None
    quality_violations: list[dict[str, str]] = []
    matched = 0
    if truth is not None:
        matched = len(merger.matched) - merger.rejected
        for key, (_, rel, line) in truth.labels.items():
            if key not in merger.matched:
                truth.problem(rel, line, "unknown_event_ids",
                              f"event {key}: no captured record with this id in the window")
        for rel, counts in sorted(truth.per_file.items()):
            if counts:
                log(f"ground truth {rel}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if merger.repeated_ids:
            log(f"{merger.repeated_ids} captured records repeat an earlier record's id: the first was used")
        if merger.unscored:
            log(f"{merger.unscored} labelled rows have a model output that cannot be read: not scored")
        q = QualityArgs(metric, direction, args.threshold, args.champion_metric, args.quality_margin,
                        args.min_labelled_rows)
        value: float | None = None
        if merger.y:
            y = np.asarray(merger.y)
            predicted = np.asarray(merger.predicted)
            document = quality_statistics(config.task, y, predicted, args.seed)
            write_json(out / "model_quality" / "statistics.json", document)
            raw = task_metrics(config.task, y, predicted)[metric]
            value = raw if math.isfinite(raw) else None
        quality_violations, quality = judge_quality(value, len(merger.y), q)
        write_json(out / "model_quality" / "constraint_violations.json", {"violations": quality_violations})
    report = report_document(window, rows, drifts, len(violations), quality, truth, matched, merger.rows)
    write_json(out / "monitoring_report.json", report)
    if rows == 0:
        span = f"[{_iso(window.start) or '-inf'}, {_iso(window.end) or '+inf'})"
        message = f"Completed: no rows in the window {span}: nothing to check"
        message += f" ({data.outside} records outside it)." if data.outside else "."
    else:
        message = verdict(len(violations) + len(quality_violations))
    if data.bad_lines:
        message += f" {data.bad_lines} capture lines were not valid records and were skipped."
    report["message"] = message
    _write_text(out / "message", message)
    _write_text(sm_output_dir() / "message", message)
    log(f"timings: ground truth {t_truth - t0:.3f} s, read {t_scan - t_truth:.3f} s, evaluate "
        f"{t_eval - t_scan:.3f} s, quality and write {time.perf_counter() - t_eval:.3f} s; "
        f"total {time.perf_counter() - t0:.3f} s")
    log(message)
    return report


def baseline_job(args: Any) -> str:
    """Baseline mode: statistics.json and constraints.json of the CSV under --dataset-dir."""
    t0 = time.perf_counter()
    source = Path(args.dataset_dir)
    if not source.exists():
        raise MonitorError(f"--dataset-dir {source} does not exist")
    names, table = read_csv_dataset(source, header=True)
    if table.rows == 0:
        raise MonitorError(f"no rows in the CSV files under --dataset-dir {source}")
    profiles = profile_table(names, table, set())
    out = Path(args.output_dir)
    write_json(out / "statistics.json", statistics_document(profiles, table.rows))
    write_json(out / "constraints.json", constraints_document(profiles))
    message = verdict(0)
    _write_text(out / "message", message)
    _write_text(sm_output_dir() / "message", message)
    log(f"baselined {table.rows} rows x {len(profiles)} features in {time.perf_counter() - t0:.3f} s")
    return message


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Any:
    parser = argument_parser(__doc__)
    modes = parser.add_subparsers(dest="mode", required=True, parser_class=type(parser))
    base = modes.add_parser("baseline", help="statistics.json and constraints.json of a CSV dataset",
                            allow_abbrev=False)
    base.add_argument("--dataset-dir", default="/opt/ml/processing/input/baseline")
    base.add_argument("--output-dir", default="/opt/ml/processing/output")
    chk = modes.add_parser("check", help="a window against the baseline (+ model quality)", allow_abbrev=False)
    chk.add_argument("--config", default="/opt/ml/processing/input/config/model.json")
    chk.add_argument("--baseline-dir", default="/opt/ml/processing/input/baseline")
    chk.add_argument("--output-dir", default="/opt/ml/processing/output")
    chk.add_argument("--capture-dir")
    chk.add_argument("--csv-dir")
    chk.add_argument("--ground-truth-dir")
    chk.add_argument("--window-start")
    chk.add_argument("--window-end")
    chk.add_argument("--metric")
    chk.add_argument("--direction", choices=("higher", "lower"))
    chk.add_argument("--threshold", type=float)
    chk.add_argument("--champion-metric", type=float)
    chk.add_argument("--quality-margin", type=float, default=0.0)
    chk.add_argument("--min-labelled-rows", type=int, default=30)
    chk.add_argument("--quantile", type=float, default=0.99)
    chk.add_argument("--margin", type=float, default=1.2)
    chk.add_argument("--floor", type=float, default=0.02)
    chk.add_argument("--draws", type=int, default=200)
    chk.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def cli_main(argv: list[str] | None = None) -> Any:
    args = parse_args(argv)
    if args.mode == "baseline":
        return baseline_job(args)
    return check(args)


def main(argv: list[str] | None = None) -> int:
    """No arguments: the environment-variable mode; else the command line (baseline | check)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        return env_main()
    from autoloop_ml_common import run as run_script

    run_script(lambda: cli_main(argv), crash_reason=lambda exc: f"internal monitor error: {exc!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
