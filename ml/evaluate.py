"""Evaluation step: score the test split with the trained model, write evaluation.json.

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9, pandas 1.x) and
locally on the project venv, unchanged. From this repo it imports only
``autoloop_ml_common.py``, shipped beside it.

    python evaluate.py --model-dir /opt/ml/processing/input/model \
        --test-dir /opt/ml/processing/input/test \
        --output-dir /opt/ml/processing/output/evaluation --label churned

``--model-dir`` holds ``model.tar.gz`` (the training job's artifact; a plain
``model.joblib`` is accepted too). ``evaluation.json`` follows SageMaker's model quality
format::

    {"binary_classification_metrics": {
        "auc": {"value": 0.91, "standard_deviation": 0.01}, "accuracy": {...},
        "precision": {...}, "recall": {...}, "f1": {...},
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": [...], "true_positive_rates": [...]}}}

Confusion matrix keys are actual class, then predicted class, at ``--threshold`` (0.5).
``standard_deviation`` is the spread over 5 seeded random 80% subsamples when the test
set has at least 200 rows, else the string ``"NaN"``. The ROC curve has at most 50 points.

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import glob
import json
import os
import tarfile
import tempfile

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run

MIN_ROWS_FOR_STD = 200
SUBSAMPLES = 5
SUBSAMPLE_FRACTION = 0.8
MAX_ROC_POINTS = 50


log = logger("evaluate")


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    p.add_argument("--test-dir", default="/opt/ml/processing/input/test")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/evaluation")
    p.add_argument("--label", default=None, help="label column (default: the model's label)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0, help="seed of the subsamples for the std")
    args = p.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        raise ScriptError(f"--threshold must be in (0, 1), got {args.threshold}")
    return args


def _safe_members(tar: tarfile.TarFile, dest: str):
    root = os.path.realpath(dest)
    for member in tar.getmembers():
        target = os.path.realpath(os.path.join(dest, member.name))
        if not (member.isfile() or member.isdir()):
            continue
        if os.path.isabs(member.name) or not (target == root or target.startswith(root + os.sep)):
            raise ScriptError(f"model.tar.gz has an unsafe path: {member.name}")
        yield member


def extract_model(model_dir: str, work_dir: str) -> str:
    """The path of model.joblib, extracting model.tar.gz into work_dir if needed."""
    if not os.path.isdir(model_dir):
        raise ScriptError(f"model directory not found: {model_dir}")
    archive = os.path.join(model_dir, "model.tar.gz")
    if not os.path.isfile(archive):
        others = sorted(glob.glob(os.path.join(model_dir, "*.tar.gz")))
        archive = others[0] if others else ""
    if archive:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = list(_safe_members(tar, work_dir))
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(work_dir, members=members, filter="data")
                else:
                    tar.extractall(work_dir, members=members)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ScriptError(f"cannot extract {os.path.basename(archive)}: {exc}") from None
        search = work_dir
    else:
        search = model_dir
    for candidate in (os.path.join(search, "model.joblib"),
                      *sorted(glob.glob(os.path.join(search, "**", "model.joblib"),
                                        recursive=True))):
        if os.path.isfile(candidate):
            return candidate
    where = os.path.basename(archive) if archive else model_dir
    raise ScriptError(f"no model.joblib in {where} (expected model.tar.gz from training)")


def load_model(path: str) -> dict:
    try:
        model = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything
        raise ScriptError(f"cannot load {os.path.basename(path)}: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, dict) or "pipeline" not in model or "features" not in model:
        raise ScriptError("model.joblib is not a dict with 'pipeline' and 'features'")
    return model


def read_test(test_dir: str) -> pd.DataFrame:
    if not os.path.isdir(test_dir):
        raise ScriptError(f"test directory not found: {test_dir}")
    files = csv_files(test_dir)
    if not files:
        raise ScriptError(f"no .csv files in {test_dir}")
    try:
        frames = [pd.read_csv(f, low_memory=False) for f in files]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ScriptError(f"cannot parse the test data: {exc}") from None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def prepare(df: pd.DataFrame, model: dict, label: str):
    features = list(model["features"])
    missing = [c for c in [label] + features if c not in df.columns]
    if missing:
        raise ScriptError(f"test data lacks column(s) {missing}; has {list(df.columns)}")
    y = pd.to_numeric(df[label], errors="coerce")
    valid = y.isin([0, 1])
    dropped = int((~valid).sum())
    if dropped:
        log(f"dropped {dropped} test row(s) whose label is missing or not 0/1")
    X = df.loc[valid, features].copy()
    numeric = model.get("numeric_features")
    if numeric is None:
        numeric = [c for c in features if pd.api.types.is_numeric_dtype(X[c])]
    for col in features:
        if col in numeric:
            X[col] = pd.to_numeric(X[col], errors="coerce")
        else:
            X[col] = X[col].astype(object).where(X[col].notna(), np.nan)
    y = y[valid].astype("int64").to_numpy()
    if len(y) == 0:
        raise ScriptError("test data has no rows with a valid 0/1 label")
    if len(np.unique(y)) < 2:
        raise ScriptError(f"test data has a single label class ({len(y)} rows); AUC is undefined")
    return X, y


def point_metrics(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    pred = (prob >= threshold).astype("int64")
    auc = roc_auc_score(y, prob) if len(np.unique(y)) == 2 else float("nan")
    return {
        "auc": float(auc),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
    }


def spread(y: np.ndarray, prob: np.ndarray, threshold: float, seed: int) -> dict:
    """Std of each metric over seeded 80% subsamples, or "NaN" for small test sets."""
    names = ("auc", "accuracy", "precision", "recall", "f1")
    if len(y) < MIN_ROWS_FOR_STD:
        return {name: "NaN" for name in names}
    rng = np.random.default_rng(seed)
    size = int(len(y) * SUBSAMPLE_FRACTION)
    samples = {name: [] for name in names}
    for _ in range(SUBSAMPLES):
        idx = rng.choice(len(y), size=size, replace=False)
        for name, value in point_metrics(y[idx], prob[idx], threshold).items():
            if np.isfinite(value):
                samples[name].append(value)
    return {
        name: float(np.std(values, ddof=1)) if len(values) >= 2 else "NaN"
        for name, values in samples.items()
    }


def roc_points(y: np.ndarray, prob: np.ndarray) -> dict:
    fpr, tpr, _ = roc_curve(y, prob)
    if len(fpr) > MAX_ROC_POINTS:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, MAX_ROC_POINTS)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {
        "false_positive_rates": [round(float(v), 6) for v in fpr],
        "true_positive_rates": [round(float(v), 6) for v in tpr],
    }


def evaluate(y: np.ndarray, prob: np.ndarray, threshold: float, seed: int) -> dict:
    values = point_metrics(y, prob, threshold)
    stds = spread(y, prob, threshold, seed)
    metrics = {
        name: {"value": values[name], "standard_deviation": stds[name]} for name in values
    }
    pred = (prob >= threshold).astype("int64")
    cm = confusion_matrix(y, pred, labels=[0, 1])
    metrics["confusion_matrix"] = {
        str(actual): {str(p): int(cm[actual][p]) for p in (0, 1)} for actual in (0, 1)
    }
    metrics["receiver_operating_characteristic_curve"] = roc_points(y, prob)
    return {"binary_classification_metrics": metrics}


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        model = load_model(extract_model(args.model_dir, work))
    label = args.label or model.get("label")
    if not label:
        raise ScriptError("no --label given and the model does not record one")
    log(f"model trained with scikit-learn {model.get('sklearn_version', '?')}; label {label}")
    X, y = prepare(read_test(args.test_dir), model, label)
    log(f"scoring {len(y)} test rows")
    pipeline = model["pipeline"]
    positive = list(pipeline.classes_).index(1)
    prob = pipeline.predict_proba(X)[:, positive]
    report = evaluate(y, prob, args.threshold, args.seed)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "evaluation.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, allow_nan=False)
    m = report["binary_classification_metrics"]
    summary = " ".join(
        f"{name}={m[name]['value']:.4f}" for name in ("auc", "accuracy", "precision", "recall", "f1")
    )
    log(f"wrote {path}")
    print(f"evaluation: rows={len(y)} {summary}", flush=True)
    print(json.dumps(report, allow_nan=False), flush=True)


if __name__ == "__main__":
    run(main)
