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
every feature and window size:

- at large windows it is too lax: a pure x1.5 scale change of a normal feature measured a
  distance of about 0.097 on 1M rows and was not flagged at 0.1;
- at small windows it is too strict for ``linf_simple``: windows drawn from the baseline's
  own distribution exceed 0.1 by noise alone in about 24 % of 100-row windows, so an hourly
  monitor raises false alarms daily. ``linf_robust`` subtracts the KS critical value, which
  absorbs that noise, but then a threshold calibrated on it measures noise twice: every
  Robust-calibrated threshold sat at ``--floor``.

What it does
------------
The deploy-time calibration for the ``model-monitor`` backend, by the method of
``monitor.py``'s check mode (its module docstring; the code is imported from it, shipped
beside this script): the baseline CSV is profiled into the sketch the baseline job writes;
for each feature of ``constraints.json``, ``--draws`` windows of ``--sample-size`` rows are
drawn from that sketch (categorical features: from the baseline frequencies), the check's
``linf_simple`` distance to the baseline is computed for each, scaled by
sqrt((n + m) / n) for the baseline's own sampling noise, and

    threshold = max(--floor, --margin x the --quantile of those null distances)

The monitoring job's real window size varies; ``--sample-size`` is the one the thresholds are
made for (Autoloop's own monitoring job recalibrates for every window instead). Writes under
``--output-dir``:

- ``constraints.json``: the input constraints with ``monitoring_config.distribution_constraints.
  comparison_method`` set to ``Simple`` (the distance the thresholds are calibrated for) and
  ``monitoringConfigOverrides.comparison_threshold`` set per feature (other override spots'
  ``comparison_threshold`` removed so this one applies);
- ``calibration.json``: per feature the null quantile, the threshold, the default it
  replaces, the share of null draws above the default, and the settings used.

Caveat for AWS: the constraints schema documents a per-feature ``monitoringConfigOverrides``
object but not which keys the built-in analyzer honours there; the local analyzer
(``monitor.py``'s environment-variable mode) applies ``comparison_threshold`` from it. Check a
run on AWS (a feature with a tiny override must be reported) before relying on it there.

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
from autoloop_ml_common import ScriptError, argument_parser, logger, run
from monitor import (
    DEFAULT_THRESHOLD,
    Calibration,
    MonitorError,
    baseline_distribution,
    comparison_method,
    feature_rng,
    feature_statistics,
    null_distances,
    profile_table,
    read_csv_dataset,
)

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
        raise ScriptError(f"--sample-size must be at least 2, got {args.sample_size}")
    Calibration(args.quantile, args.margin, args.floor, args.draws, args.seed).validate()
    return args


def read_baseline(path):
    """Profiles (by column name) of the baseline CSV: what the baseline job's statistics hold."""
    if not os.path.exists(path):
        raise ScriptError(f"no *.csv under --baseline-dir {path} (it does not exist)")
    try:
        names, table = read_csv_dataset(Path(path), header=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read --baseline-dir {path}: {exc}") from None
    if table.rows == 0:
        raise ScriptError(f"no *.csv under --baseline-dir {path} with rows")
    return {p.name: p for p in profile_table(names, table, set())}


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
        raise ScriptError(f"cannot read --constraints {args.constraints}: {exc}") from None
    features = constraints.get("features") if isinstance(constraints, dict) else None
    if not isinstance(features, list) or not features:
        raise ScriptError(f"--constraints {args.constraints} has no features")
    config = constraints.get("monitoring_config") or {}
    dist = config.get("distribution_constraints") or {}
    replaced = comparison_method(dist.get("comparison_method"))
    default_numeric = float(dist.get("comparison_threshold", DEFAULT_THRESHOLD))
    default_categorical = float(dist.get("categorical_comparison_threshold", default_numeric))

    profiles = read_baseline(args.baseline_dir)
    missing = [f.get("name") for f in features if f.get("name") not in profiles]
    if missing:
        raise ScriptError(f"baseline has no column for constraint features {missing}")
    calibration = Calibration(args.quantile, args.margin, args.floor, args.draws, args.seed)
    out = copy.deepcopy(constraints)
    out.setdefault("monitoring_config", {}).setdefault("distribution_constraints", {})["comparison_method"] = "Simple"
    report = {}
    for feature in out["features"]:
        name = feature["name"]
        reference = baseline_distribution(feature_statistics(profiles[name]))
        if reference is None or profiles[name].present < 2:
            log(f"{name}: {profiles[name].present} present values, left at the default threshold")
            continue
        kind, ref, n = reference
        default = default_numeric if kind == "numeric" else default_categorical
        null = null_distances(kind, ref, n, args.sample_size, args.draws, feature_rng(args.seed, name))
        q = float(np.quantile(null, args.quantile))
        threshold = calibration.threshold(q)
        _overrides(feature)["comparison_threshold"] = round(threshold, 6)
        report[name] = {
            "kind": kind,
            "baseline_count": int(n),
            "null_quantile": q,
            "null_max": float(null.max()),
            "null_exceed_default": float(np.mean(null > default)),
            "threshold": round(threshold, 6),
            "default": default,
        }
        log(f"{name}: null q{args.quantile:g} = {q:.4f} -> threshold {threshold:.4f} (default {default:g})")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "constraints.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
    summary = {
        "method": "simple",
        "replaced_method": replaced,
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
    try:
        calibrate(parse_args(argv))
    except MonitorError as exc:  # a ScriptError already; said here for the reader
        raise ScriptError(str(exc)) from None


def _crash_reason(exc):
    return f"unexpected error: {exc!r}"  # a bug: still a one-line reason


if __name__ == "__main__":
    run(main, crash_reason=_crash_reason)
