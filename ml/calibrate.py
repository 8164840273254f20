"""Processing step: per-feature drift thresholds calibrated from the baseline's own noise.

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9, numpy, pandas) and
locally, unchanged. From this repo it imports only ``autoloop_ml_common.py``, shipped beside it.

    python calibrate.py --baseline-dir /opt/ml/processing/input/baseline \
        --constraints /opt/ml/processing/input/constraints/constraints.json \
        --output-dir /opt/ml/processing/output --sample-size 500 \
        --quantile 0.99 --margin 1.2 --floor 0.02 --seed 42

Why
---
Model Monitor flags ``baseline_drift_check`` when a feature's distance (the largest gap
between the baseline's and the current window's CDFs, ``linf_simple``; or ``linf_robust``,
that gap minus the two-sample Kolmogorov-Smirnov critical value 1.8 * sqrt((n + m) / (n m)))
exceeds ``comparison_threshold``, 0.1 by default for every feature. One number does not fit
every window size:

- at large windows it is too lax: a pure x1.5 scale change of a normal feature measured a
  distance of about 0.097 on 1M rows (``linf_simple``; ``linf_robust`` is a little lower) and
  was not flagged at 0.1;
- at small windows it is too strict for ``linf_simple``: windows drawn from the baseline's
  own distribution exceed 0.1 by noise alone in about 3 % of 200-row windows and 24 % of
  100-row windows (measured against a 200k-row baseline), so an hourly monitor raises false
  alarms daily. ``linf_robust`` (Model Monitor's suggested default) subtracts the KS critical
  value, which absorbs that noise; its null distances are mostly 0 and the calibrated
  threshold falls to ``--floor``, which is what lets it catch the x1.5 change above.

What it does
------------
For each feature of ``constraints.json`` (from the baseline job), draw ``--draws`` pairs of
independent samples of ``--sample-size`` rows from the baseline (disjoint halves of a
permutation when the baseline has at least twice that many values, else with replacement),
compute the distance the analyzer computes between the two (KLL-style sketches of at most
2048 points, CDFs compared at the union of their points; categorical features: the largest
per-category frequency gap; ``Robust`` subtracts 1.8 * sqrt((n + m) / (n m))), and set

    threshold = max(--floor, --margin x the --quantile of those null distances)

Pairs of windows of the monitoring size are a conservative null: the real comparison is the
whole baseline against one window, whose noise is smaller (for a baseline much larger than
the window, about 1/sqrt(2) of the pairs' distance; two 500-row windows exceed 0.1 in about
1 % of draws with ``linf_simple``, one 500-row window against a large baseline almost never).
So on undrifted traffic a calibrated threshold is exceeded in well under 1 - quantile of the
windows, at the price of some sensitivity. Writes under ``--output-dir``:

- ``constraints.json``: the input constraints with
  ``monitoringConfigOverrides.comparison_threshold`` set per feature (other override spots'
  ``comparison_threshold`` removed so this one applies);
- ``calibration.json``: per feature the null quantile, the threshold, the default it
  replaces, the share of null draws above the default, and the settings used.

Caveat for AWS: the constraints schema documents a per-feature ``monitoringConfigOverrides``
object but not which keys the built-in analyzer honours there; the local analyzer
(``localaws/sagemaker/monitor/analyzer.py``) applies ``comparison_threshold`` from it. Check a
run on AWS (a feature with a tiny override must be reported) before relying on it there.

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import copy
import json
import math
import os

import numpy as np
import pandas as pd

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run

SKETCH_K = 2048
ROBUST_C_ALPHA = 1.8
DEFAULT_THRESHOLD = 0.1
NUMERIC_TYPES = ("Integral", "Fractional")


log = logger("calibrate")


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--baseline-dir", default="/opt/ml/processing/input/baseline")
    p.add_argument("--constraints", default="/opt/ml/processing/input/constraints/constraints.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--sample-size", type=int, default=500)
    p.add_argument("--quantile", type=float, default=0.99)
    p.add_argument("--margin", type=float, default=1.2)
    p.add_argument("--floor", type=float, default=0.02)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.sample_size < 2:
        raise ScriptError("--sample-size must be at least 2, got %d" % args.sample_size)
    if not 0.0 < args.quantile < 1.0:
        raise ScriptError("--quantile must be in (0, 1), got %s" % args.quantile)
    if args.margin <= 0 or args.floor < 0:
        raise ScriptError("--margin must be > 0 and --floor >= 0")
    if args.draws < 10:
        raise ScriptError("--draws must be at least 10, got %d" % args.draws)
    return args


# --- the analyzer's distance (a copy of localaws/sagemaker/monitor/analyzer.py's; tests compare) --


def sketch_points(values_sorted):
    n = values_sorted.size
    if n <= SKETCH_K:
        return values_sorted
    idx = ((np.arange(SKETCH_K) + 0.5) * (n / SKETCH_K)).astype(np.int64)
    return values_sorted[np.minimum(idx, n - 1)]


def _cdf_at(items, points):
    idx = np.searchsorted(items, points, side="right")
    return idx / float(items.size)


def numeric_linf(a_sorted, b_sorted):
    """max |CDF_a - CDF_b| at the union of both sketches' points (equal-weight points)."""
    a, b = sketch_points(a_sorted), sketch_points(b_sorted)
    if a.size == 0 or b.size == 0:
        return 0.0
    points = np.union1d(a, b)
    return float(np.max(np.abs(_cdf_at(a, points) - _cdf_at(b, points))))


def categorical_linf(a, b):
    ta, tb = float(sum(a.values())), float(sum(b.values()))
    if ta <= 0 or tb <= 0:
        return 0.0
    return float(max(abs(a.get(k, 0) / ta - b.get(k, 0) / tb) for k in set(a) | set(b)))


def robust(distance, n, m):
    if n <= 0 or m <= 0:
        return distance
    return max(0.0, distance - ROBUST_C_ALPHA * math.sqrt((n + m) / float(n * m)))


def comparison_method(value):
    text = str(value or "Robust").strip().lower()
    if text in ("simple", "linf_simple"):
        return "simple"
    if text in ("robust", "linf_robust"):
        return "robust"
    raise ScriptError("comparison_method %r is not one of Simple, Robust, linf_simple, linf_robust" % value)


# --- data -------------------------------------------------------------------------------------


def read_baseline(path):
    files = [path] if os.path.isfile(path) else csv_files(path)
    if not files:
        raise ScriptError("no *.csv under --baseline-dir %s" % path)
    frames = []
    for name in files:
        try:
            frames.append(pd.read_csv(name, dtype=str, keep_default_na=False, na_filter=False))
        except (ValueError, OSError) as exc:
            raise ScriptError("cannot read baseline file %s: %s" % (name, exc))
    columns = list(frames[0].columns)
    for name, frame in zip(files, frames):
        if list(frame.columns) != columns:
            raise ScriptError("baseline file %s has header %s, expected %s" % (name, list(frame.columns), columns))
    return pd.concat(frames, ignore_index=True)


def numeric_values(column):
    """Present numeric values, parsed as the analyzer parses them (blank/NaN/inf missing)."""
    values = pd.to_numeric(column.str.strip().replace("", np.nan), errors="coerce").to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def string_values(column):
    stripped = column.str.strip().str.lower()
    keep = (stripped != "") & ~stripped.isin(["nan", "inf", "-inf", "+inf"])
    return column[keep].to_numpy(dtype=object)


def _pairs(rng, n, size, draws):
    """Index pairs of two independent samples of ``size`` from ``n`` values."""
    for _ in range(draws):
        if 2 * size <= n:
            perm = rng.permutation(n)[: 2 * size]
            yield perm[:size], perm[size:]
        else:
            yield rng.integers(0, n, size), rng.integers(0, n, size)


def null_distances(kind, values, size, draws, method, rng):
    out = np.empty(draws)
    n = values.size
    for i, (a, b) in enumerate(_pairs(rng, n, size, draws)):
        if kind == "numeric":
            d = numeric_linf(np.sort(values[a]), np.sort(values[b]))
        else:
            ua, ca = np.unique(values[a], return_counts=True)
            ub, cb = np.unique(values[b], return_counts=True)
            d = categorical_linf(dict(zip(ua.tolist(), ca.tolist())), dict(zip(ub.tolist(), cb.tolist())))
        out[i] = robust(d, size, size) if method == "robust" else d
    return out


def _overrides(feature):
    """Remove comparison_threshold from every override spot; return the feature-level one."""
    for holder in (feature, feature.get("num_constraints") or {}, feature.get("string_constraints") or {}):
        for key in ("monitoring_config_overrides", "monitoringConfigOverrides"):
            value = holder.get(key)
            if isinstance(value, dict):
                value.pop("comparison_threshold", None)
                nested = value.get("distribution_constraints")
                if isinstance(nested, dict):
                    nested.pop("comparison_threshold", None)
    overrides = feature.get("monitoringConfigOverrides")
    if not isinstance(overrides, dict):
        overrides = {}
        feature["monitoringConfigOverrides"] = overrides
    return overrides


def calibrate(args):
    try:
        with open(args.constraints, encoding="utf-8") as fh:
            constraints = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ScriptError("cannot read --constraints %s: %s" % (args.constraints, exc))
    features = constraints.get("features") if isinstance(constraints, dict) else None
    if not isinstance(features, list) or not features:
        raise ScriptError("--constraints %s has no features" % args.constraints)
    config = constraints.get("monitoring_config") or {}
    dist = config.get("distribution_constraints") or {}
    method = comparison_method(dist.get("comparison_method"))
    default_numeric = float(dist.get("comparison_threshold", DEFAULT_THRESHOLD))
    default_categorical = float(dist.get("categorical_comparison_threshold", default_numeric))

    frame = read_baseline(args.baseline_dir)
    missing = [f.get("name") for f in features if f.get("name") not in frame.columns]
    if missing:
        raise ScriptError("baseline has no column for constraint features %s" % missing)
    rng = np.random.default_rng(args.seed)
    out = copy.deepcopy(constraints)
    report = {}
    for feature in out["features"]:
        name = feature["name"]
        kind = "numeric" if feature.get("inferred_type") in NUMERIC_TYPES else "categorical"
        values = numeric_values(frame[name]) if kind == "numeric" else string_values(frame[name])
        default = default_numeric if kind == "numeric" else default_categorical
        if values.size < 2:
            log("%s: %d present values, left at the default threshold" % (name, values.size))
            continue
        null = null_distances(kind, values, args.sample_size, args.draws, method, rng)
        q = float(np.quantile(null, args.quantile))
        threshold = max(args.floor, args.margin * q)
        _overrides(feature)["comparison_threshold"] = round(threshold, 6)
        report[name] = {
            "kind": kind,
            "baseline_count": int(values.size),
            "null_quantile": q,
            "null_max": float(null.max()),
            "null_exceed_default": float(np.mean(null > default)),
            "threshold": round(threshold, 6),
            "default": default,
        }
        log("%s: null q%g = %.4f -> threshold %.4f (default %g)" % (name, args.quantile, q, threshold, default))
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "constraints.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
    summary = {
        "method": method,
        "sample_size": args.sample_size,
        "quantile": args.quantile,
        "margin": args.margin,
        "floor": args.floor,
        "draws": args.draws,
        "seed": args.seed,
        "features": report,
    }
    with open(os.path.join(args.output_dir, "calibration.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    return summary


def main(argv=None):
    calibrate(parse_args(argv))


def _crash_reason(exc):
    return "unexpected error: %r" % (exc,)  # a bug: still a one-line reason


if __name__ == "__main__":
    run(main, crash_reason=_crash_reason)
