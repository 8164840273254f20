"""Price model: a regularised linear regression of a home's price, SageMaker script mode.

Runs in SageMaker's scikit-learn container and locally, unchanged. It meets docs/MODELS.md's
contract: CSV channels with the label first, ``--alpha`` and ``--label`` as arguments,
``$SM_MODEL_DIR/model.joblib`` (with ``task: regression``), ``code/inference.py`` beside it,
and a one-line failure reason. Numeric columns are imputed and scaled, the rest one-hot
encoded; the validation RMSE is printed as ``validation:rmse=<value>``.
"""

from __future__ import annotations

import os
import shutil

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run

log = logger("train")


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--label", type=lambda s: s.strip('"'), default=None)
    p.add_argument("--alpha", type=lambda s: float(s.strip('"')), default=1.0)
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    args, unknown = p.parse_known_args(argv)  # SageMaker's own (--task, sagemaker_*, --model-dir)
    if unknown:
        log(f"ignoring arguments {unknown}")
    if args.alpha < 0:
        raise ScriptError(f"--alpha must be >= 0, got {args.alpha}")
    return args


def read(folder, required):
    files = csv_files(folder) if os.path.isdir(folder) else []
    if not files:
        if required:
            raise ScriptError(f"no CSV files in {folder}")
        return None
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def main(argv=None):
    args = parse_args(argv)
    train = read(args.train, required=True)
    label = args.label or str(train.columns[0])
    if label not in train.columns:
        raise ScriptError(f"label column '{label}' is not in the train data columns {list(train.columns)}")
    features = [str(c) for c in train.columns if c != label]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    y = pd.to_numeric(train[label], errors="coerce").to_numpy(dtype="float64")
    if not np.isfinite(y).all():
        raise ScriptError(f"{int((~np.isfinite(y)).sum())} train rows have a {label} that is not a finite number")
    pipeline = Pipeline([
        ("columns", ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                      ("onehot", OneHotEncoder(handle_unknown="ignore"))]), categorical),
        ])),
        ("model", Ridge(alpha=args.alpha)),
    ])
    log(f"fitting Ridge(alpha={args.alpha}) on {len(train)} rows, scikit-learn {sklearn.__version__}")
    pipeline.fit(train[features], y)

    validation = read(args.validation, required=False)
    if validation is not None and len(validation):
        error = pipeline.predict(validation[features]) - validation[label].to_numpy(dtype="float64")
        print(f"validation:rmse={float(np.sqrt(np.mean(error ** 2))):.4f}", flush=True)

    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(os.path.join(model_dir, "code"), exist_ok=True)
    joblib.dump({"pipeline": pipeline, "features": features, "label": label, "task": "regression",
                 "sklearn_version": sklearn.__version__, "numeric_features": numeric,
                 "categorical_features": categorical}, os.path.join(model_dir, "model.joblib"))
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference.py"),
                    os.path.join(model_dir, "code", "inference.py"))
    log(f"saved the model and its inference code to {model_dir}")


if __name__ == "__main__":
    run(main)
