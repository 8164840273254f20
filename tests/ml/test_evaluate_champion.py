"""ml/evaluate.py with a champion: both models on the same test rows, for each task.

The models are fitted here (small, seeded, a second each at most) and packed as training jobs
pack them: ``model.tar.gz`` holding ``model.joblib``, a dict with ``pipeline`` over the raw
feature columns. Each run is a subprocess, as the processing container runs the script.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autoloop import gate

REPO = Path(__file__).resolve().parents[2]
ML = REPO / "ml"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/autoloop-dev-churn/4"
NUMERIC = ["x1", "x2", "x3"]
CATEGORICAL = ["colour"]


def _load_script():
    """ml/evaluate.py as a module of its own name (ml/ is not a package), and its shared helpers."""
    sys.path.insert(0, str(ML))
    try:
        spec = importlib.util.spec_from_file_location("ml_evaluate_under_test", ML / "evaluate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ML))
    return module, sys.modules["autoloop_ml_common"]


SCRIPT, COMMON = _load_script()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def run(*args: object, sm_output: Path, subprocess_run: bool = False) -> Done:
    """evaluate.py with these arguments, under the job scripts' failure contract (exit 1 and a
    failure file). In-process by default (a subprocess pays the scikit-learn import each time)."""
    argv = [str(a) for a in args]
    if subprocess_run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env["SM_OUTPUT_DIR"] = str(sm_output)
        proc = subprocess.run([sys.executable, str(ML / "evaluate.py"), *argv], capture_output=True,
                              text=True, env=env, timeout=120, check=False)
        return Done(proc.returncode, proc.stdout, proc.stderr)
    out, err = io.StringIO(), io.StringIO()
    previous = os.environ.get("SM_OUTPUT_DIR")
    os.environ["SM_OUTPUT_DIR"] = str(sm_output)
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            COMMON.run(lambda: SCRIPT.main(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        if previous is None:
            del os.environ["SM_OUTPUT_DIR"]
        else:
            os.environ["SM_OUTPUT_DIR"] = previous
    return Done(code, out.getvalue(), err.getvalue())


def frame(task: str, rows: int, seed: int) -> pd.DataFrame:
    """Rows with a label first: binary 0/1, three classes, or a number; a categorical column too."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    colour = rng.choice(["red", "green", "blue"], size=rows)
    signal = 1.5 * x[:, 0] - x[:, 1] + 0.5 * (colour == "red") + rng.normal(scale=0.8, size=rows)
    if task == "binary":
        y = (signal > 0.2).astype(int)
    elif task == "multiclass":
        y = np.digitize(signal, [-0.7, 0.7])  # classes 0, 1, 2
    else:
        y = np.round(3.0 * signal + 10.0, 3)
    return pd.DataFrame({"label": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "colour": colour})


def fit(task: str, df: pd.DataFrame, features: list[str], weak: bool = False) -> dict:
    numeric = [c for c in features if c in NUMERIC]
    categorical = [c for c in features if c in CATEGORICAL]
    parts = [("n", StandardScaler(), numeric)]
    if categorical:
        parts.append(("c", OneHotEncoder(handle_unknown="ignore"), categorical))
    if task == "regression":
        model = Ridge(alpha=1e4) if weak else LinearRegression()
    else:
        model = LogisticRegression(C=1e-3 if weak else 1.0, max_iter=500)
    pipeline = Pipeline([("features", ColumnTransformer(parts)), ("model", model)])
    pipeline.fit(df[features], df["label"])
    return {"pipeline": pipeline, "features": features, "label": "label", "numeric_features": numeric,
            "categorical_features": categorical}


def pack(folder: Path, model: dict | bytes) -> Path:
    """model.tar.gz as a training job writes it (or a broken one, from raw bytes)."""
    folder.mkdir(parents=True)
    if isinstance(model, bytes):
        (folder / "model.tar.gz").write_bytes(model)
        return folder
    joblib.dump(model, folder / "model.joblib")
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        tar.add(folder / "model.joblib", arcname="model.joblib")
    (folder / "model.joblib").unlink()
    return folder


def holdout(tmp: Path, df: pd.DataFrame) -> Path:
    folder = tmp / "test"
    folder.mkdir()
    df.to_csv(folder / "test.csv", index=False)
    return folder


def evaluate(tmp: Path, task: str, challenger: dict, champion: dict | bytes | None, test: pd.DataFrame,
             *extra: object, subprocess_run: bool = False) -> tuple[Done, Path]:
    out = tmp / "evaluation"
    args: list[object] = ["--model-dir", pack(tmp / "model", challenger), "--test-dir", holdout(tmp, test),
                          "--output-dir", out, "--task", task, *extra]
    if champion is not None:
        args += ["--champion-dir", pack(tmp / "champion", champion), "--champion-arn", ARN]
    return run(*args, sm_output=tmp / "output", subprocess_run=subprocess_run), out


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def failure(tmp: Path) -> str:
    return (tmp / "output" / "failure").read_text(encoding="utf-8")


FEATURES = NUMERIC + CATEGORICAL


# ----------------------------------------------------------------------------- each task
def test_binary_challenger_and_champion_are_scored_on_the_same_rows(tmp_path: Path) -> None:
    train, test = frame("binary", 1500, 1), frame("binary", 400, 2)
    test = test.astype({"label": object})
    test.loc[:9, "label"] = "unknown"  # 10 rows without a valid label: neither model scores them
    challenger, champion = fit("binary", train, FEATURES), fit("binary", train, ["x1", "x3"])
    # as the processing job runs it: its own process
    proc, out = evaluate(tmp_path, "binary", challenger, champion, test, subprocess_run=True)
    assert proc.returncode == 0, proc.stderr
    kept = test.iloc[10:].astype({"label": int})
    mine, theirs = read(out, "evaluation.json"), read(out, "champion_evaluation.json")
    expected = {
        "binary_classification_metrics": roc_auc_score(kept["label"], challenger["pipeline"].predict_proba(
            kept[FEATURES])[:, 1]),
    }
    assert mine["binary_classification_metrics"]["auc"]["value"] == pytest.approx(
        expected["binary_classification_metrics"], abs=1e-12)
    champion_auc = roc_auc_score(kept["label"], champion["pipeline"].predict_proba(kept[["x1", "x3"]])[:, 1])
    assert theirs["binary_classification_metrics"]["auc"]["value"] == pytest.approx(champion_auc, abs=1e-12)
    for report in (mine, theirs):
        cm = report["binary_classification_metrics"]["confusion_matrix"]
        assert sum(n for row in cm.values() for n in row.values()) == 390
        assert set(report["binary_classification_metrics"]) == set(gate.TASK_METRICS["binary"]) | {
            "confusion_matrix", "receiver_operating_characteristic_curve"}
    comparison = read(out, "comparison.json")
    assert comparison == {"metric": "auc", "direction": "higher", "holdout_rows": 390,
                          "challenger": mine["binary_classification_metrics"]["auc"]["value"],
                          "champion": theirs["binary_classification_metrics"]["auc"]["value"], "champion_arn": ARN}
    assert comparison["challenger"] > comparison["champion"]  # the champion lacks x2
    assert "comparison: auc challenger=" in proc.stdout and "on 390 rows" in proc.stdout


def test_multiclass_reports_weighted_metrics_for_both(tmp_path: Path) -> None:
    train, test = frame("multiclass", 1500, 3), frame("multiclass", 300, 4)
    challenger, champion = fit("multiclass", train, FEATURES), fit("multiclass", train, FEATURES, weak=True)
    proc, out = evaluate(tmp_path, "multiclass", challenger, champion, test, "--metric", "weighted_f1")
    assert proc.returncode == 0, proc.stderr
    for name, model in (("evaluation.json", challenger), ("champion_evaluation.json", champion)):
        metrics = read(out, name)["multiclass_classification_metrics"]
        pred = model["pipeline"].predict(test[FEATURES])
        assert metrics["accuracy"]["value"] == pytest.approx(accuracy_score(test["label"], pred))
        assert metrics["weighted_f1"]["value"] == pytest.approx(f1_score(test["label"], pred, average="weighted"))
        assert set(metrics) == set(gate.TASK_METRICS["multiclass"]) | {"confusion_matrix"}
        assert set(metrics["confusion_matrix"]) == {"0", "1", "2"}
        assert sum(n for row in metrics["confusion_matrix"].values() for n in row.values()) == 300
        assert isinstance(metrics["weighted_f1"]["standard_deviation"], float)  # 300 rows: measured
    comparison = read(out, "comparison.json")
    assert comparison["metric"] == "weighted_f1" and comparison["direction"] == "higher"
    assert comparison["holdout_rows"] == 300 and comparison["champion_arn"] == ARN


def test_regression_reports_errors_that_are_better_lower(tmp_path: Path) -> None:
    train, test = frame("regression", 1000, 5), frame("regression", 150, 6)
    test = test.astype({"label": object})
    test.loc[:4, "label"] = None  # no label: not scored
    challenger, champion = fit("regression", train, FEATURES), fit("regression", train, FEATURES, weak=True)
    proc, out = evaluate(tmp_path, "regression", challenger, champion, test)
    assert proc.returncode == 0, proc.stderr
    kept = test.iloc[5:].astype({"label": float})
    for name, model in (("evaluation.json", challenger), ("champion_evaluation.json", champion)):
        metrics = read(out, name)["regression_metrics"]
        pred = model["pipeline"].predict(kept[FEATURES])
        mse = mean_squared_error(kept["label"], pred)
        assert metrics["mse"]["value"] == pytest.approx(mse)
        assert metrics["rmse"]["value"] == pytest.approx(np.sqrt(mse))
        assert metrics["mae"]["value"] == pytest.approx(mean_absolute_error(kept["label"], pred))
        assert metrics["r2"]["value"] == pytest.approx(r2_score(kept["label"], pred))
        assert metrics["rmse"]["standard_deviation"] == "NaN"  # fewer than 200 rows
        assert set(metrics) == set(gate.TASK_METRICS["regression"])
    comparison = read(out, "comparison.json")
    assert comparison["metric"] == "rmse" and comparison["direction"] == "lower"
    assert comparison["holdout_rows"] == 145 and comparison["challenger"] < comparison["champion"]


def test_without_a_champion_the_comparison_says_so(tmp_path: Path) -> None:
    train, test = frame("binary", 600, 7), frame("binary", 120, 8)
    proc, out = evaluate(tmp_path, "binary", fit("binary", train, FEATURES), None, test, "--metric", "f1")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "champion_evaluation.json").exists()
    comparison = read(out, "comparison.json")
    assert comparison == {"metric": "f1", "direction": "higher", "holdout_rows": 120,
                          "challenger": read(out, "evaluation.json")["binary_classification_metrics"]["f1"]["value"],
                          "champion": None, "champion_arn": None}


# ----------------------------------------------------------------------------- a champion that cannot be scored
@pytest.mark.parametrize(("champion", "problem"), [
    ("needs-a-column", "test data lacks column(s) ['tenure']"),
    ("other-label", "it was trained for the label 'churned', not 'label'"),
    ("broken-archive", "cannot extract model.tar.gz"),
    ("not-a-model", "model.joblib is not a dict with 'pipeline' and 'features'"),
    ("regressor", "not a binary 0/1 classifier"),
])
def test_a_champion_that_cannot_score_the_rows_is_a_named_failure(tmp_path: Path, champion: str,
                                                                 problem: str) -> None:
    train, test = frame("binary", 600, 9), frame("binary", 120, 10)
    good = fit("binary", train, FEATURES)
    if champion == "needs-a-column":
        model: dict | bytes = {**fit("binary", train.assign(tenure=1.0), [*FEATURES]),
                               "features": [*FEATURES, "tenure"]}
    elif champion == "other-label":
        model = {**good, "label": "churned"}
    elif champion == "broken-archive":
        model = b"this is not a gzip file"
    elif champion == "not-a-model":
        model = {"weights": [1, 2, 3]}
    else:
        model = {**fit("regression", frame("regression", 300, 11), FEATURES)}
    proc, out = evaluate(tmp_path, "binary", good, model, test)
    assert proc.returncode == 1
    reason = failure(tmp_path)
    assert reason.startswith(f"ChampionNotComparable: the champion {ARN} cannot score the challenger's test rows")
    assert problem in reason and "reject that package" in reason
    assert "\n" not in reason.strip()
    assert not out.exists() or not any(out.iterdir())  # nothing half-written for the gate to read


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    cases = [
        (["--task", "binary", "--metric", "rmse"], "--metric 'rmse' is not written for --task binary"),
        (["--task", "regression", "--direction", "higher"], "--direction higher contradicts rmse"),
        (["--champion-arn", ARN], "--champion-arn needs --champion-dir"),
        (["--task", "ranking"], "invalid arguments: argument --task: invalid choice: 'ranking'"),
    ]
    for args, message in cases:
        proc = run(*args, sm_output=tmp_path / "output")
        assert proc.returncode == 1, args
        assert message in failure(tmp_path), (args, failure(tmp_path))


def test_the_script_and_the_gate_agree_on_metrics_and_directions() -> None:
    """ml/evaluate.py cannot import src/ (it runs alone in the container): its tables must
    equal the gate's, which the model config is validated against."""
    assert SCRIPT.METRICS == gate.TASK_METRICS and SCRIPT.GROUPS == gate.TASK_GROUPS
    assert SCRIPT.DEFAULT_METRIC == gate.DEFAULT_METRIC and SCRIPT.TASKS == tuple(gate.TASK_METRICS)
    assert set(SCRIPT.LOWER_IS_BETTER) == gate.ERROR_METRICS
    for metrics in SCRIPT.METRICS.values():
        for metric in metrics:
            assert gate.default_direction(metric) == ("lower" if metric in SCRIPT.LOWER_IS_BETTER else "higher")
