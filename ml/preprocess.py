"""Processing step: validate the raw CSV and split it into train / validation / test.

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9, pandas 1.x) and
locally on the project venv, unchanged. From this repo it imports only
``autoloop_ml_common.py``, shipped beside it.

    python preprocess.py --input-dir /opt/ml/processing/input/raw \
        --config /opt/ml/processing/input/config/model.json \
        --output-dir /opt/ml/processing/output --seed 42

Reads every ``*.csv`` under ``--input-dir`` (recursively; normally one file). Each header
must equal the config's ``columns`` exactly. Rows whose label is not valid for the config's
``task`` (binary: 0 or 1; multiclass: present, and one of ``classes`` when the config lists
them; regression: a finite number) are dropped and counted; non-numeric values in numeric
features become missing (imputed at training time). The rest is split into train /
validation / test, per class (stratified) for a classifier and at random for regression,
and written, with a header and the label first, to ``train/train.csv``,
``validation/validation.csv`` and ``test/test.csv`` under ``--output-dir``;
``baseline/baseline.csv`` holds the training features only (for monitoring baselines).

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd

from autoloop_ml_common import ScriptError, argument_parser, class_text, logger, read_config, run


log = logger("preprocess")


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/raw")
    p.add_argument("--config", default="/opt/ml/processing/input/config/model.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    args = p.parse_args(argv)
    v, t = args.validation_fraction, args.test_fraction
    if not (0 < v < 1 and 0 < t < 1 and v + t < 1):
        raise ScriptError(
            f"--validation-fraction ({v}) and --test-fraction ({t}) must be in (0, 1) "
            "and sum to less than 1"
        )
    return args


def load_config(path: str) -> dict:
    config = read_config(path)
    if not isinstance(config, dict):
        raise ScriptError(f"config {path} is not a JSON object")
    columns = config.get("columns")
    label = config.get("label")
    if not isinstance(columns, list) or not columns or not all(
        isinstance(c, str) for c in columns
    ):
        raise ScriptError(f"config {path}: 'columns' must be a non-empty list of names")
    if label not in columns:
        raise ScriptError(f"config {path}: label {label!r} is not one of 'columns'")
    return config


def find_csvs(input_dir: str) -> list:
    if not os.path.isdir(input_dir):
        raise ScriptError(f"input directory not found: {input_dir}")
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".csv"):
                found.append(os.path.join(root, name))
    if not found:
        raise ScriptError(f"no .csv files found under {input_dir}")
    return found


def read_header(path: str) -> list:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        try:
            return next(csv.reader(fh))
        except StopIteration:
            return []


def check_header(path: str, header: list, columns: list) -> None:
    name = os.path.basename(path)
    if not header:
        raise ScriptError(f"{name}: file is empty (expected a header row)")
    if header == columns:
        return
    missing = [c for c in columns if c not in header]
    extra = [c for c in header if c not in columns]
    if missing or extra:
        detail = f"missing {missing}, unexpected {extra}"
    else:
        detail = "same names in a different order"
    raise ScriptError(
        f"{name}: header does not match the config columns ({detail}); "
        f"expected {','.join(columns)} got {','.join(header)}"
    )


def read_csv(path: str, columns: list, numeric: list) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{os.path.basename(path)}: not valid UTF-8 ({exc})") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise ScriptError(f"{os.path.basename(path)}: cannot parse CSV: {exc}") from None
    for col in numeric:
        if not pd.api.types.is_numeric_dtype(df[col]):
            present = df[col].notna()
            df[col] = pd.to_numeric(df[col], errors="coerce")
            bad = int((present & df[col].isna()).sum())
            if bad:
                log(f"{os.path.basename(path)}: {bad} non-numeric value(s) in {col} set to missing")
    return df[columns]


TASKS = ("binary", "multiclass", "regression")
WHAT_IS_VALID = {"binary": "0 or 1", "multiclass": "a class", "regression": "a finite number"}


def clean_labels(df: pd.DataFrame, label: str, task: str = "binary", classes=None):
    """(the rows with a valid label for the task, the number dropped). Class labels that are
    all whole numbers are written as integers, others as their text."""
    raw = df[label]
    if task == "multiclass":
        present = raw.notna() & (raw.astype(str).str.strip() != "")
        texts = raw[present].map(class_text)
        if classes:
            allowed = {class_text(c) for c in classes}
            present[present] = texts.isin(allowed).to_numpy()
            texts = texts[texts.isin(allowed)]
        numbers = pd.to_numeric(texts, errors="coerce")
        whole = numbers.notna().all() and bool((numbers == numbers.round()).all())
        values = numbers.astype("int64") if whole and len(texts) else texts.astype(object)
        valid = present
    else:
        numbers = pd.to_numeric(raw, errors="coerce")
        if task == "binary":
            valid = numbers.isin([0, 1])
            values = numbers[valid].astype("int64")
        else:
            valid = pd.Series(np.isfinite(numbers.to_numpy(dtype="float64")), index=df.index)
            values = numbers[valid].astype("float64")
    dropped = int((~valid).sum())
    df = df.loc[valid].copy()
    df[label] = values.to_numpy()
    return df.reset_index(drop=True), dropped


def random_split(n: int, fractions, seed: int):
    """Indices of each split, at random (regression: there are no classes to keep in proportion)."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)
    sizes = [int(round(n * f)) for f in fractions[1:]]
    cuts = np.cumsum([n - sum(sizes)] + sizes)[:-1]
    return np.split(idx, cuts)


def stratified_split(y: np.ndarray, fractions, seed: int):
    """Indices of each split; every class is cut in the same proportions."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n = len(idx)
        # The smaller splits get round(n * fraction) rows, at least one when possible.
        sizes = [0] * len(fractions)
        for i in range(1, len(fractions)):
            sizes[i] = int(round(n * fractions[i]))
            if sizes[i] == 0 and n >= len(fractions):
                sizes[i] = 1
        sizes[0] = n - sum(sizes[1:])
        start = 0
        for i, size in enumerate(sizes):
            parts[i].append(idx[start:start + size])
            start += size
    return [rng.permutation(np.concatenate(p)) for p in parts]


def describe(labels: pd.Series, task: str) -> str:
    if not len(labels):
        return "empty"
    if task == "binary":
        return f"positive rate {float(labels.mean()):.3f}"
    if task == "regression":
        return f"target mean {float(labels.mean()):.4g}"
    return f"{labels.nunique()} classes"


def write(df: pd.DataFrame, out_dir: str, name: str) -> str:
    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    path = os.path.join(out_dir, name, f"{name}.csv")
    df.to_csv(path, index=False)
    return path


def main(argv=None) -> None:
    args = parse_args(argv)
    config = load_config(args.config)
    columns = list(config["columns"])
    label = config["label"]
    task = config.get("task", "binary")
    if task not in TASKS:
        raise ScriptError(f"config task {task!r} is not one of {', '.join(TASKS)}")
    numeric = [c for c in config.get("numeric_features", []) if c in columns]
    files = find_csvs(args.input_dir)
    log(f"model {config.get('model', '?')}: {len(files)} input file(s) under {args.input_dir}")

    frames = []
    for path in files:
        check_header(path, read_header(path), columns)
        df = read_csv(path, columns, numeric)
        log(f"read {len(df)} rows from {os.path.basename(path)}")
        frames.append(df)
    data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    total = len(data)
    log(f"rows read: {total}")

    data, dropped = clean_labels(data, label, task, config.get("classes"))
    valid = WHAT_IS_VALID[task]
    log(f"dropped {dropped} row(s) whose label '{label}' is missing or not {valid} (task {task})")
    if data.empty:
        raise ScriptError(f"no rows whose label '{label}' is {valid} (task {task}; {total} rows read)")
    min_rows = config.get("min_rows")
    if isinstance(min_rows, int) and len(data) < min_rows:
        raise ScriptError(
            f"only {len(data)} rows with a valid label, the config requires min_rows={min_rows}"
        )
    if task == "regression":
        target = data[label]
        if target.nunique() < 2:
            raise ScriptError(f"label '{label}' has the same value ({target.iloc[0]}) in all {len(data)} rows")
        log(f"valid rows: {len(data)} (target mean {target.mean():.4g}, sd {target.std():.4g})")
    else:
        counts = data[label].value_counts().to_dict()
        if len(counts) < 2:
            only = next(iter(counts))
            raise ScriptError(f"label '{label}' has a single class ({only}) in {len(data)} rows")
        log(f"valid rows: {len(data)} (class counts {dict(sorted(counts.items(), key=str))})")

    val_frac, test_frac = args.validation_fraction, args.test_fraction
    fractions = (1.0 - val_frac - test_frac, val_frac, test_frac)
    names = ("train", "validation", "test")
    if task == "regression":
        splits = random_split(len(data), fractions, args.seed)
    else:
        splits = stratified_split(data[label].to_numpy(), fractions, args.seed)
    for name, idx in zip(names, splits):
        part = data.iloc[idx]
        path = write(part, args.output_dir, name)
        log(f"{name}: {len(part)} rows, {describe(part[label], task)} -> {path}")
    baseline = data.iloc[splits[0]].drop(columns=[label])
    path = write(baseline, args.output_dir, "baseline")
    log(f"baseline: {len(baseline)} rows, {baseline.shape[1]} features -> {path}")


if __name__ == "__main__":
    run(main)
