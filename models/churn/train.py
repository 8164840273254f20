"""Training step (SageMaker script mode): fit a scikit-learn pipeline for the model's task.

Runs in SageMaker's scikit-learn 1.2-1 training container (Python 3.9, pandas 1.x) and
locally on the project venv, unchanged. From this repo it imports only
``autoloop_ml_common.py``, shipped beside it (in ``sourcedir.tar.gz``).

Channels: ``SM_CHANNEL_TRAIN`` (required) and ``SM_CHANNEL_VALIDATION`` (optional), each a
folder of CSV files with a header and the label first, as written by preprocess.py.
Hyperparameters arrive as CLI args: ``--label churned --C 1.0 --max-iter 500`` (the
training toolkit writes one-letter keys as ``-C 1.0``; ``--max_iter`` also works; values
may be JSON-quoted; unknown ones are reported and ignored). Without ``--label``
the first column is the label (SageMaker's CSV convention).

``--task`` (the model config's ``task``; the launch step passes it) picks the estimator:
``binary`` and ``multiclass``: ``LogisticRegression(C, max_iter)`` (multinomial for several
classes); ``regression``: ``Ridge(alpha)``. Rows whose label does not fit the task are
dropped (binary: not 0/1; multiclass: missing; regression: not a finite number).

Feature types come from the training CSV's dtypes: numeric columns get a median imputer and
a standard scaler; every other column is categorical and gets a most-frequent imputer and a
one-hot encoder that ignores unseen categories.

Checkpoints (managed spot training): the model is fitted in rounds of
``--checkpoint-every`` solver iterations, each round warm-started from the one before. With
``--checkpoint-dir`` (default: ``checkpoints`` beside the model folder, i.e.
``/opt/ml/checkpoints``, when it exists: SageMaker creates and syncs it for a job with a
``CheckpointConfig``) the state after each round goes to ``checkpoint.joblib``
there; a restarted job (SageMaker restores the folder after a spot interruption) resumes from
it. A checkpoint of other data or hyperparameters is ignored. The rounds are the same with or
without checkpoints, so a resumed run ends with exactly the model of an uninterrupted one.
Ridge is solved in one step (no rounds, so no checkpoints).

Writes ``$SM_MODEL_DIR/model.joblib``, a dict with ``pipeline``, ``features`` (ordered),
``label``, ``task``, ``sklearn_version``, ``numeric_features`` and ``categorical_features``, and copies
``inference.py`` (next to this file) to ``$SM_MODEL_DIR/code/inference.py``.

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import os
import shutil
import warnings

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run


CHECKPOINTS = "checkpoints"
CHECKPOINT_FILE = "checkpoint.joblib"
TASKS = ("binary", "multiclass", "regression")


log = logger("train")


def _unquote(value: str) -> str:
    """Hyperparameters may arrive JSON-encoded (the SageMaker SDK's convention): '"x"' -> x."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def number(value: str) -> float:
    return float(_unquote(value))


def integer(value: str) -> int:
    x = float(_unquote(value))
    if not np.isfinite(x) or x != int(x):
        raise ValueError(value)
    return int(x)


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--label", type=_unquote, default=None,
                   help="label column (default: the first column)")
    # The training toolkit passes one-letter hyperparameters with one dash: -C 1.0.
    p.add_argument("-C", "--C", dest="C", type=number, default=1.0,
                   help="inverse regularization strength")
    p.add_argument("--max-iter", "--max_iter", dest="max_iter", type=integer, default=500)
    p.add_argument("--task", type=_unquote, default="binary", help="binary, multiclass or regression")
    p.add_argument("--alpha", type=number, default=1.0, help="regression: Ridge's regularization strength")
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument(
        "--validation",
        default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
    )
    p.add_argument("--model-dir", default=None, help="default: $SM_MODEL_DIR or /opt/ml/model")
    p.add_argument("--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", type=_unquote,
                   default=None, help="save and resume training state here "
                   "(default: the checkpoints folder beside the model folder, if it exists)")
    p.add_argument("--checkpoint-every", "--checkpoint_every", dest="checkpoint_every", type=integer,
                   default=50, help="solver iterations per round (one checkpoint a round)")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments: {' '.join(unknown)}")
    if args.task not in TASKS:
        raise ScriptError(f"--task must be one of {', '.join(TASKS)}, got {args.task!r}")
    if not args.C > 0:
        raise ScriptError(f"--C must be > 0, got {args.C}")
    if not args.alpha >= 0:
        raise ScriptError(f"--alpha must be >= 0, got {args.alpha}")
    if args.max_iter < 1:
        raise ScriptError(f"--max-iter must be >= 1, got {args.max_iter}")
    if args.checkpoint_every < 1:
        raise ScriptError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    # Some launchers pass an S3 --model-dir; the local folder is always SM_MODEL_DIR.
    if not args.model_dir or args.model_dir.startswith("s3://"):
        args.model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    if args.checkpoint_dir is None:
        # /opt/ml/checkpoints in the container (SM_MODEL_DIR is /opt/ml/model); SageMaker
        # creates it only for a job with a CheckpointConfig.
        beside = os.path.join(os.path.dirname(os.path.abspath(args.model_dir)), CHECKPOINTS)
        args.checkpoint_dir = beside if os.path.isdir(beside) else None
    return args


def read_channel(path: str, name: str, required: bool):
    if not path or not os.path.isdir(path):
        if required:
            raise ScriptError(f"{name} channel folder not found: {path}")
        return None
    files = csv_files(path)
    if not files:
        if required:
            raise ScriptError(f"no .csv files in the {name} channel ({path})")
        return None
    frames = []
    for f in files:
        try:
            frames.append(pd.read_csv(f, low_memory=False))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise ScriptError(f"{name} channel: cannot parse {os.path.basename(f)}: {exc}") from None
    header = list(frames[0].columns)
    for f, df in zip(files, frames):
        if list(df.columns) != header:
            raise ScriptError(f"{name} channel: {os.path.basename(f)} has a different header")
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    log(f"{name}: {len(df)} rows from {len(files)} file(s)")
    return df


def split_xy(df: pd.DataFrame, label: str, features: list, name: str, task: str = "binary"):
    """(features, labels) of the rows whose label fits the task."""
    missing = [c for c in [label] + features if c not in df.columns]
    if missing:
        raise ScriptError(f"{name} data lacks column(s) {missing}")
    if task == "multiclass":
        y = df[label]
        valid = y.notna()
        kind = "missing"
    else:
        y = pd.to_numeric(df[label], errors="coerce")
        if task == "binary":
            valid, kind = y.isin([0, 1]), "missing or not 0/1"
        else:
            valid = pd.Series(np.isfinite(y.to_numpy(dtype="float64")), index=df.index)
            kind = "missing or not a finite number"
    if not valid.all():
        log(f"{name}: dropping {int((~valid).sum())} row(s) whose label is {kind}")
    X = df.loc[valid, features].copy()
    values = y[valid]
    if task == "binary":
        return X, values.astype("int64").to_numpy()
    if task == "regression":
        return X, values.astype("float64").to_numpy()
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and bool((numeric == numeric.round()).all()):
        return X, numeric.astype("int64").to_numpy()  # class ids read back as 1.0 when any is empty
    return X, values.astype(str).to_numpy(dtype=object)


def as_object(X: pd.DataFrame, categorical: list) -> pd.DataFrame:
    """Categorical columns as plain object dtype with NaN for missing (any pandas version)."""
    for col in categorical:
        values = X[col].astype(object)
        X[col] = values.where(X[col].notna(), np.nan)
    return X


def build_pipeline(numeric: list, categorical: list, C: float, max_iter: int, task: str = "binary",
                   alpha: float = 1.0) -> Pipeline:
    transformers = []
    if numeric:
        transformers.append((
            "numeric",
            Pipeline([
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
            ]),
            numeric,
        ))
    if categorical:
        transformers.append((
            "categorical",
            Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ]),
            categorical,
        ))
    model = Ridge(alpha=alpha) if task == "regression" else LogisticRegression(C=C, max_iter=max_iter)
    return Pipeline([
        ("features", ColumnTransformer(transformers)),
        ("model", model),
    ])


def fingerprint(X: pd.DataFrame, y, args) -> str:
    """What a checkpoint must match to be resumed: the data and the training settings."""
    settings = (list(X.columns), args.C, args.max_iter, args.checkpoint_every)
    return joblib.hash((settings, pd.util.hash_pandas_object(X, index=False).to_numpy(), np.asarray(y)))


def load_checkpoint(directory, expected: str):
    if not directory:
        return None
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        state = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file: start over
        log(f"ignoring unreadable checkpoint {path}: {exc}")
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != expected:
        log(f"ignoring checkpoint {path}: it is for other data or hyperparameters")
        return None
    return state


def save_checkpoint(directory, state: dict) -> None:
    """Atomically: SageMaker uploads the folder as it changes and may stop the job any time."""
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{CHECKPOINT_FILE}.tmp")
    joblib.dump(state, tmp)
    os.replace(tmp, os.path.join(directory, CHECKPOINT_FILE))


def fit(pipeline: Pipeline, X: pd.DataFrame, y, args) -> Pipeline:
    """Fit the features, then the model in warm-started rounds, checkpointing each round
    (Ridge, solved in one step, has no rounds)."""
    if not hasattr(pipeline.named_steps["model"], "warm_start"):
        pipeline.fit(X, y)
        log("fitted in one step (no solver rounds to checkpoint)")
        return pipeline
    expected = fingerprint(X, y, args)
    state = load_checkpoint(args.checkpoint_dir, expected)
    if state is not None:
        pipeline = state["pipeline"]
        log(f"resuming from checkpoint: {state['iterations']} iteration(s) done")
    else:
        pipeline.named_steps["features"].fit(X, y)
        state = {"fingerprint": expected, "iterations": 0, "converged": False, "pipeline": pipeline}
    Xt = pipeline.named_steps["features"].transform(X)
    model = pipeline.named_steps["model"]
    while not state["converged"] and state["iterations"] < args.max_iter:
        budget = min(args.checkpoint_every, args.max_iter - state["iterations"])
        model.set_params(warm_start=True, max_iter=budget)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a round ends before convergence
            model.fit(Xt, y)
        used = int(np.max(model.n_iter_))
        state["iterations"] += budget
        state["converged"] = used < budget
        save_checkpoint(args.checkpoint_dir, state)
    model.set_params(max_iter=args.max_iter)
    if not state["converged"]:
        log(f"the solver did not converge in {args.max_iter} iterations")
    log(f"fitted in {state['iterations']} iteration(s) or fewer"
        + (f"; checkpoints in {args.checkpoint_dir}" if args.checkpoint_dir else ""))
    return pipeline


def score(pipeline: Pipeline, X: pd.DataFrame, y, task: str):
    """(name, value) of the task's default metric: auc, accuracy or rmse."""
    if task == "binary":
        positive = list(pipeline.classes_).index(1)
        return "auc", float(roc_auc_score(y, pipeline.predict_proba(X)[:, positive]))
    if task == "multiclass":
        return "accuracy", float(accuracy_score(y, pipeline.predict(X)))
    return "rmse", float(np.sqrt(mean_squared_error(y, pipeline.predict(X))))


def main(argv=None) -> None:
    args = parse_args(argv)
    log(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}")
    train = read_channel(args.train, "train", required=True)
    if train.shape[1] < 2:
        raise ScriptError(f"train data needs a label and at least one feature, got {list(train.columns)}")
    label = args.label or str(train.columns[0])
    if label not in train.columns:
        raise ScriptError(f"label column '{label}' is not in the train data columns {list(train.columns)}")
    features = [str(c) for c in train.columns if c != label]
    task = args.task
    X, y = split_xy(train, label, features, "train", task)
    if len(np.unique(y)) < 2:
        what = "the same target value" if task == "regression" else "a single label class"
        raise ScriptError(f"train data has {what} ({len(y)} valid rows)")
    if task == "binary" and set(np.unique(y).tolist()) != {0, 1}:
        raise ScriptError(f"train data's labels are {np.unique(y).tolist()}, not 0 and 1")
    numeric = [
        c for c in features
        if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
    ]
    categorical = [c for c in features if c not in numeric]
    X = as_object(X, categorical)
    log(f"task {task}; label {label}; numeric {numeric}; categorical {categorical}")
    estimator = (f"Ridge(alpha={args.alpha})" if task == "regression"
                 else f"LogisticRegression(C={args.C}, max_iter={args.max_iter})")
    log(f"fitting {estimator} on {len(X)} rows" + (f", {len(np.unique(y))} classes" if task == "multiclass" else ""))

    pipeline = fit(build_pipeline(numeric, categorical, args.C, args.max_iter, task, args.alpha), X, y, args)
    name, value = score(pipeline, X, y, task)
    log(f"train:{name}={value:.4f}")

    validation = read_channel(args.validation, "validation", required=False)
    if validation is None:
        log(f"no validation channel; skipping validation {name}")
    else:
        Xv, yv = split_xy(validation, label, features, "validation", task)
        Xv = as_object(Xv, categorical)
        if task == "binary" and len(np.unique(yv)) < 2:
            log("validation data has a single label class; skipping validation auc")
        elif len(yv):
            print(f"validation:{name}={score(pipeline, Xv, yv, task)[1]:.4f}", flush=True)

    os.makedirs(args.model_dir, exist_ok=True)
    model_path = os.path.join(args.model_dir, "model.joblib")
    joblib.dump(
        {
            "pipeline": pipeline,
            "features": features,
            "label": label,
            "task": task,
            "sklearn_version": sklearn.__version__,
            "numeric_features": numeric,
            "categorical_features": categorical,
        },
        model_path,
    )
    log(f"saved {model_path}")

    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference.py")
    if not os.path.isfile(source):
        raise ScriptError(f"inference.py not found next to train.py ({source})")
    code_dir = os.path.join(args.model_dir, "code")
    os.makedirs(code_dir, exist_ok=True)
    shutil.copyfile(source, os.path.join(code_dir, "inference.py"))
    log(f"copied inference.py to {code_dir}")


if __name__ == "__main__":
    run(main)
