"""Evaluation step: score the challenger, and the champion if given, on the same test rows.

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9, pandas 1.x) and
locally on the project venv, unchanged. From this repo it imports only
``autoloop_ml_common.py``, shipped beside it.

    python evaluate.py --model-dir /opt/ml/processing/input/model \
        --test-dir /opt/ml/processing/input/test \
        --output-dir /opt/ml/processing/output/evaluation --label churned \
        [--task binary|multiclass|regression] [--metric auc] [--direction higher|lower] \
        [--champion-dir /opt/ml/processing/input/champion --champion-arn ARN]

``--model-dir`` (and ``--champion-dir``) hold ``model.tar.gz`` (a training job's artifact:
a joblib dict with a ``pipeline`` over the raw feature columns, see train.py; a plain
``model.joblib`` is accepted too).

Outputs, in ``--output-dir``:

- ``evaluation.json``: the challenger's metrics in SageMaker's model quality format, one
  group by ``--task``; each metric is ``{"value": v, "standard_deviation": s}``:

  - ``binary_classification_metrics``: auc, accuracy, precision, recall, f1 (at
    ``--threshold``, 0.5), ``confusion_matrix`` (actual class, then predicted class) and
    ``receiver_operating_characteristic_curve`` (at most 50 points);
  - ``multiclass_classification_metrics``: accuracy, weighted_precision, weighted_recall,
    weighted_f1 and ``confusion_matrix``;
  - ``regression_metrics``: mse, rmse, mae, r2.

- ``champion_evaluation.json`` (with ``--champion-dir``): the champion's metrics, same shape,
  on exactly the same rows.
- ``comparison.json``: ``{"metric", "direction", "holdout_rows", "challenger", "champion",
  "champion_arn"}``: the gate metric's value for each model on those rows (``champion`` and
  ``champion_arn`` are null without a champion), so the quality gate knows which champion,
  if any, was compared and on how many rows.

``standard_deviation`` is the spread over 5 seeded random 80% subsamples when the test set
has at least 200 rows, else the string ``"NaN"`` (as Model Monitor does).

A test row is kept when its label is valid for the task (binary: 0 or 1; multiclass: not
missing; regression: a finite number); both models score the kept rows, each from its own
feature columns. A champion that cannot do so (no readable model, columns it needs are not
in the test data, another label, a failed prediction) fails the job with a reason that
starts ``ChampionNotComparable:``; it is never skipped.

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
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run

MIN_ROWS_FOR_STD = 200
SUBSAMPLES = 5
SUBSAMPLE_FRACTION = 0.8
MAX_ROC_POINTS = 50

TASKS = ("binary", "multiclass", "regression")
GROUPS = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
METRICS = {
    "binary": ("auc", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1"),
    "regression": ("mse", "rmse", "mae", "r2"),
}
DEFAULT_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
#: Errors are better lower; every other metric written here is better higher.
LOWER_IS_BETTER = ("mse", "rmse", "mae")
CHAMPION_FAILURE = "ChampionNotComparable"


log = logger("evaluate")


class ChampionNotComparable(ScriptError):
    """The champion cannot score the test rows; the message is the job's failure reason."""

    def __init__(self, arn, problem: str) -> None:
        who = f"the champion {arn}" if arn else "the champion"
        super().__init__(
            f"{CHAMPION_FAILURE}: {who} cannot score the challenger's test rows: {problem}. "
            "It must be compared on the same rows: reject that package in the Model Registry, "
            "or register a model trained on this data's columns, then retrain."
        )


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    p.add_argument("--test-dir", default="/opt/ml/processing/input/test")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/evaluation")
    p.add_argument("--label", default=None, help="label column (default: the model's label)")
    p.add_argument("--task", default="binary", choices=TASKS)
    p.add_argument("--metric", default=None, help="the gate's metric (default: auc, accuracy or rmse by task)")
    p.add_argument("--direction", default=None, choices=("higher", "lower"),
                   help="which way the metric is better (default: lower for mse/rmse/mae, else higher)")
    p.add_argument("--champion-dir", default=None, help="the current champion's model.tar.gz folder")
    p.add_argument("--champion-arn", default=None, help="the champion's model package ARN (recorded as is)")
    p.add_argument("--threshold", type=float, default=0.5, help="binary: probability cut-off")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsamples for the std")
    args = p.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        raise ScriptError(f"--threshold must be in (0, 1), got {args.threshold}")
    args.metric = args.metric or DEFAULT_METRIC[args.task]
    if args.metric not in METRICS[args.task]:
        raise ScriptError(f"--metric {args.metric!r} is not written for --task {args.task}; "
                          f"use one of {', '.join(METRICS[args.task])}")
    natural = "lower" if args.metric in LOWER_IS_BETTER else "higher"
    if args.direction is None:
        args.direction = natural
    elif args.direction != natural:
        raise ScriptError(f"--direction {args.direction} contradicts {args.metric}, which is better {natural}")
    if args.champion_arn and not args.champion_dir:
        raise ScriptError("--champion-arn needs --champion-dir (the champion's model to score)")
    return args


# ----------------------------------------------------------------------------- models
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


def read_model(model_dir: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        return load_model(extract_model(model_dir, work))


# ----------------------------------------------------------------------------- rows
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


def labels(df: pd.DataFrame, label: str, task: str):
    """(mask of the rows kept, their labels): the rows whose label is valid for the task."""
    if label not in df.columns:
        raise ScriptError(f"test data lacks the label column {label!r}; has {list(df.columns)}")
    raw = df[label]
    if task == "binary":
        y = pd.to_numeric(raw, errors="coerce")
        valid = y.isin([0, 1])
        kind = "missing or not 0/1"
    elif task == "regression":
        y = pd.to_numeric(raw, errors="coerce")
        valid = pd.Series(np.isfinite(y.to_numpy(dtype="float64")), index=df.index)
        kind = "missing or not a finite number"
    else:
        y = raw
        valid = raw.notna()
        kind = "missing"
    dropped = int((~valid).sum())
    if dropped:
        log(f"dropped {dropped} test row(s) whose label is {kind}")
    y = y[valid]
    if task == "binary":
        values = y.astype("int64").to_numpy()
    elif task == "regression":
        values = y.astype("float64").to_numpy()
    else:
        values = y.to_numpy()
        numeric = pd.to_numeric(y, errors="coerce")
        if numeric.notna().all() and (numeric == numeric.round()).all():
            values = numeric.astype("int64").to_numpy()  # class ids read back as 1.0 when any is empty
    if len(values) == 0:
        raise ScriptError(f"test data has no rows with a valid label ({kind} in every row)")
    if task == "binary" and len(np.unique(values)) < 2:
        raise ScriptError(f"test data has a single label class ({len(values)} rows); AUC is undefined")
    if task == "regression" and len(values) < 2:
        raise ScriptError("test data has fewer than 2 rows with a numeric label; r2 is undefined")
    return valid.to_numpy(), values


def features(df: pd.DataFrame, keep: np.ndarray, model: dict) -> pd.DataFrame:
    """The kept rows in the model's own feature columns, typed as it was trained."""
    columns = list(model["features"])
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ScriptError(f"test data lacks column(s) {missing}; has {list(df.columns)}")
    X = df.loc[keep, columns].copy()
    numeric = model.get("numeric_features")
    if numeric is None:
        numeric = [c for c in columns if pd.api.types.is_numeric_dtype(X[c])]
    for col in columns:
        if col in numeric:
            X[col] = pd.to_numeric(X[col], errors="coerce")
        else:
            X[col] = X[col].astype(object).where(X[col].notna(), np.nan)
    return X


def check_task(model: dict, task: str) -> None:
    """A model that records its task (train.py does) must have been trained for ``task``."""
    trained = model.get("task")
    if trained and trained != task:
        raise ScriptError(f"the model was trained for task {trained}, not {task}")


def predict(model: dict, X: pd.DataFrame, task: str) -> np.ndarray:
    """Binary: the probability of class 1; multiclass: the class; regression: the value."""
    check_task(model, task)
    pipeline = model["pipeline"]
    if task == "binary":
        classes = list(getattr(pipeline, "classes_", []))
        if 1 not in classes:
            raise ScriptError(f"the model's classes are {classes}, not a binary 0/1 classifier")
        return np.asarray(pipeline.predict_proba(X))[:, classes.index(1)]
    out = np.asarray(pipeline.predict(X))
    if task == "regression":
        out = out.astype("float64")
        if not np.isfinite(out).all():
            raise ScriptError("the model predicted values that are not finite numbers")
    return out


# ----------------------------------------------------------------------------- metrics
def binary_point(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    pred = (prob >= threshold).astype("int64")
    auc = roc_auc_score(y, prob) if len(np.unique(y)) == 2 else float("nan")
    return {
        "auc": float(auc),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
    }


def multiclass_point(y: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "weighted_precision": float(precision_score(y, pred, average="weighted", zero_division=0)),
        "weighted_recall": float(recall_score(y, pred, average="weighted", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, average="weighted", zero_division=0)),
    }


def regression_point(y: np.ndarray, pred: np.ndarray) -> dict:
    mse = float(mean_squared_error(y, pred))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) >= 2 else float("nan"),
    }


def point_metrics(task: str, y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    if task == "binary":
        return binary_point(y, scores, threshold)
    if task == "multiclass":
        return multiclass_point(y, scores)
    return regression_point(y, scores)


def spread(task: str, y: np.ndarray, scores: np.ndarray, threshold: float, seed: int) -> dict:
    """Std of each metric over seeded 80% subsamples, or "NaN" for small test sets."""
    names = METRICS[task]
    if len(y) < MIN_ROWS_FOR_STD:
        return {name: "NaN" for name in names}
    rng = np.random.default_rng(seed)
    size = int(len(y) * SUBSAMPLE_FRACTION)
    samples = {name: [] for name in names}
    for _ in range(SUBSAMPLES):
        idx = rng.choice(len(y), size=size, replace=False)
        for name, value in point_metrics(task, y[idx], scores[idx], threshold).items():
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


def class_confusion(y: np.ndarray, pred: np.ndarray, classes) -> dict:
    cm = confusion_matrix(y, pred, labels=list(classes))
    return {
        str(actual): {str(p): int(cm[i][j]) for j, p in enumerate(classes)}
        for i, actual in enumerate(classes)
    }


def evaluate(task: str, y: np.ndarray, scores: np.ndarray, threshold: float, seed: int) -> dict:
    """The model quality report (Model Registry shape) of one model's scores on the rows."""
    values = point_metrics(task, y, scores, threshold)
    for name, value in values.items():
        if not np.isfinite(value):
            raise ScriptError(f"{name} is not a finite number on these {len(y)} test rows")
    stds = spread(task, y, scores, threshold, seed)
    metrics = {name: {"value": values[name], "standard_deviation": stds[name]} for name in values}
    if task == "binary":
        pred = (scores >= threshold).astype("int64")
        metrics["confusion_matrix"] = class_confusion(y, pred, (0, 1))
        metrics["receiver_operating_characteristic_curve"] = roc_points(y, scores)
    elif task == "multiclass":
        metrics["confusion_matrix"] = class_confusion(y, scores, np.unique(np.concatenate([y, scores])).tolist())
    return {GROUPS[task]: metrics}


# ----------------------------------------------------------------------------- the champion
def score_champion(args, df: pd.DataFrame, keep: np.ndarray, y: np.ndarray, label: str) -> dict:
    """The champion's report on the same rows; ChampionNotComparable if it cannot score them."""
    arn = args.champion_arn
    try:
        champion = read_model(args.champion_dir)
    except ScriptError as exc:
        raise ChampionNotComparable(arn, str(exc)) from None
    trained_for = champion.get("label")
    if trained_for and trained_for != label:
        raise ChampionNotComparable(arn, f"it was trained for the label {trained_for!r}, not {label!r}")
    try:
        scores = predict(champion, features(df, keep, champion), args.task)
    except ScriptError as exc:
        raise ChampionNotComparable(arn, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a foreign pipeline can raise anything
        raise ChampionNotComparable(arn, f"its prediction failed: {type(exc).__name__}: {exc}") from None
    if len(scores) != len(y):
        raise ChampionNotComparable(arn, f"it returned {len(scores)} predictions for {len(y)} rows")
    try:
        return evaluate(args.task, y, scores, args.threshold, args.seed)
    except ScriptError as exc:
        raise ChampionNotComparable(arn, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. its classes are of another type than the labels
        raise ChampionNotComparable(arn, f"its predictions cannot be scored: {type(exc).__name__}: {exc}") from None


def write_json(folder: str, name: str, doc: dict) -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, allow_nan=False)
    log(f"wrote {path}")
    return path


def main(argv=None) -> None:
    args = parse_args(argv)
    model = read_model(args.model_dir)
    check_task(model, args.task)
    label = args.label or model.get("label")
    if not label:
        raise ScriptError("no --label given and the model does not record one")
    log(f"model trained with scikit-learn {model.get('sklearn_version', '?')}; label {label}; task {args.task}")
    df = read_test(args.test_dir)
    keep, y = labels(df, label, args.task)
    log(f"scoring {len(y)} test rows")
    report = evaluate(args.task, y, predict(model, features(df, keep, model), args.task), args.threshold, args.seed)
    group = GROUPS[args.task]
    challenger = report[group][args.metric]["value"]

    champion_report = None
    if args.champion_dir:
        log(f"scoring the champion {args.champion_arn or '(no ARN given)'} on the same {len(y)} rows")
        champion_report = score_champion(args, df, keep, y, label)
    comparison = {
        "metric": args.metric,
        "direction": args.direction,
        "holdout_rows": int(len(y)),
        "challenger": challenger,
        "champion": champion_report[group][args.metric]["value"] if champion_report else None,
        "champion_arn": args.champion_arn if champion_report else None,
    }

    os.makedirs(args.output_dir, exist_ok=True)
    write_json(args.output_dir, "evaluation.json", report)
    if champion_report is not None:
        write_json(args.output_dir, "champion_evaluation.json", champion_report)
    write_json(args.output_dir, "comparison.json", comparison)
    m = report[group]
    summary = " ".join(f"{name}={m[name]['value']:.4f}" for name in METRICS[args.task])
    print(f"evaluation: rows={len(y)} {summary}", flush=True)
    if champion_report is not None:
        print(f"comparison: {args.metric} challenger={comparison['challenger']:.4f} "
              f"champion={comparison['champion']:.4f} ({args.direction} is better) on {len(y)} rows", flush=True)
    print(json.dumps(report, allow_nan=False), flush=True)


if __name__ == "__main__":
    run(main)
