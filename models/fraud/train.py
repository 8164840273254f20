"""Fraud model: gradient-boosted trees (XGBoost) in a scikit-learn pipeline, SageMaker script mode.

Runs in SageMaker's XGBoost framework container and locally on the project's venv
(``xgboost-cpu``). The contract it meets is docs/MODELS.md's: CSV channels with the label
first, hyperparameters as ``--key value``, ``$SM_MODEL_DIR/model.joblib`` with the fitted
pipeline, ``code/inference.py`` copied beside it, a one-line failure reason.

Hyperparameters: ``--n-estimators`` (150), ``--max-depth`` (3), ``--learning-rate`` (0.05),
``--scale-pos-weight`` (1.0; weighting the rare class up trades ranking quality (AUC) for recall).
"""

from __future__ import annotations

import os
import shutil

import joblib
import numpy as np
import pandas as pd
import sklearn
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from autoloop_ml_common import ScriptError, argument_parser, csv_files, logger, run

log = logger("train")


def _number(text):
    return float(str(text).strip('"'))


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--label", type=lambda s: s.strip('"'), default=None)
    p.add_argument("--n-estimators", "--n_estimators", dest="n_estimators", type=lambda s: int(_number(s)),
                   default=150)
    p.add_argument("--max-depth", "--max_depth", dest="max_depth", type=lambda s: int(_number(s)), default=3)
    p.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=_number, default=0.05)
    p.add_argument("--scale-pos-weight", "--scale_pos_weight", dest="scale_pos_weight", type=_number, default=1.0)
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    args, unknown = p.parse_known_args(argv)  # SageMaker adds its own (sagemaker_*, --model-dir)
    if unknown:
        log(f"ignoring arguments {unknown}")
    if args.n_estimators < 1 or args.max_depth < 1 or not 0 < args.learning_rate <= 1:
        raise ScriptError("--n-estimators and --max-depth must be >= 1 and --learning-rate in (0, 1]")
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
    log(f"xgboost {xgboost.__version__}, scikit-learn {sklearn.__version__}")
    train = read(args.train, required=True)
    label = args.label or str(train.columns[0])
    if label not in train.columns:
        raise ScriptError(f"label column '{label}' is not in the train data columns {list(train.columns)}")
    features = [str(c) for c in train.columns if c != label]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    y = train[label].to_numpy()
    if set(np.unique(y)) != {0, 1}:
        raise ScriptError(f"the label must be 0 or 1 with both present, got {sorted(set(np.unique(y)))[:5]}")
    positives = int(y.sum())
    pipeline = Pipeline([
        ("columns", ColumnTransformer([
            ("numeric", SimpleImputer(strategy="median"), numeric),
            ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                      ("onehot", OneHotEncoder(handle_unknown="ignore"))]), categorical),
        ])),
        ("model", xgboost.XGBClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth,
                                        learning_rate=args.learning_rate, scale_pos_weight=args.scale_pos_weight,
                                        eval_metric="auc", n_jobs=int(os.environ.get("SM_NUM_CPUS", "1")))),
    ])
    log(f"fitting XGBClassifier on {len(train)} rows ({positives} positives)")
    pipeline.fit(train[features], y)

    validation = read(args.validation, required=False)
    if validation is not None and validation[label].nunique() == 2:
        auc = roc_auc_score(validation[label], pipeline.predict_proba(validation[features])[:, 1])
        print(f"validation:auc={auc:.4f}", flush=True)

    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(os.path.join(model_dir, "code"), exist_ok=True)
    joblib.dump({"pipeline": pipeline, "features": features, "label": label, "sklearn_version": sklearn.__version__,
                 "numeric_features": numeric, "categorical_features": categorical}, os.path.join(model_dir, "model.joblib"))
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copyfile(os.path.join(here, "inference.py"), os.path.join(model_dir, "code", "inference.py"))
    log(f"saved the model and its inference code to {model_dir}")


if __name__ == "__main__":
    run(main)
