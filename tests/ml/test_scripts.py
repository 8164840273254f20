"""The ml/ scripts run as SageMaker would run them: subprocesses, /opt/ml paths in a temp dir.

One module-scoped run goes preprocess -> train -> (tar like SageMaker) -> evaluate on 2k
synthetic rows with a few invalid labels; the tests check its outputs, then the failure
paths and the inference handlers.
"""

from __future__ import annotations

import ast
import csv
import functools
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from autoloop_cli import datagen, publish

REPO = Path(__file__).resolve().parents[2]
ML = REPO / "ml"
CONFIG_PATH = ML.parent / "models" / "churn" / "config.json"
CONFIG = json.loads(CONFIG_PATH.read_text())
LABEL = CONFIG["label"]
FEATURES = CONFIG["columns"][1:]
SCRIPTS = ("preprocess.py", "train.py", "evaluate.py", "inference.py")
INVALID_LABELS = ("", "2", "yes", "-1", "0.5", "NaN", "churned?")


@functools.cache
def churn_code() -> Path:
    """The churn model's source bundle, extracted as the training job extracts it (/opt/ml/code)."""
    return publish.model_folders()["churn"].unpack(Path(tempfile.mkdtemp(prefix="churn-code-")))


def script_path(script: str) -> Path:
    """train.py from the churn model's bundle; Autoloop's own scripts from ml/."""
    return churn_code() / script if script == "train.py" else ML / script


def run(script: str, *args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run <script> like a container would: own process, SM_* from ``env`` only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, str(script_path(script)), *map(str, args)],
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
        check=False,
    )


def write_raw(path: Path, rows: int, seed: int, bad_labels: tuple[str, ...] = ()) -> None:
    """A datagen CSV; the first len(bad_labels) data rows get those label values."""
    datagen.write_csv(path, rows, seed=seed)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, bad in enumerate(bad_labels, start=1):
        lines[i] = bad + lines[i][lines[i].index(",") :]
    path.write_text("".join(lines), encoding="utf-8")


# Non-default values, so the test sees that train.py applied them.
HP_OVERRIDES = {"C": 0.5, "max-iter": 400}


def toolkit_args(hyperparameters: dict[str, object]) -> list[str]:
    """CLI args as SageMaker's training toolkit builds them from the job's hyperparameters:
    values JSON-encoded then decoded, keys sorted, ``-k`` for one-letter keys."""
    args = []
    for key in sorted(hyperparameters):
        value = json.loads(json.dumps(hyperparameters[key]))
        args += [f"--{key}" if len(key) > 1 else f"-{key}", str(value)]
    return args


def failure_reason(output_dir: Path) -> str:
    path = output_dir / "failure"
    assert path.is_file(), f"no failure file in {output_dir}"
    text = path.read_text(encoding="utf-8")
    assert text.strip() and "\n" not in text.strip(), repr(text)
    return text


def load_inference(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"inference_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    opt = tmp_path_factory.mktemp("flow") / "opt" / "ml"
    raw = opt / "processing" / "input" / "raw"
    raw.mkdir(parents=True)
    write_raw(raw / "incoming.csv", 2000, seed=11, bad_labels=INVALID_LABELS)
    processed = opt / "processing" / "output"
    pre = run(
        "preprocess.py",
        "--input-dir",
        raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        processed,
        "--seed",
        42,
        env={"SM_OUTPUT_DIR": str(opt / "output" / "preprocess")},
    )

    model_dir = opt / "model"
    train = run(
        "train.py",
        *toolkit_args({"label": LABEL, **CONFIG["hyperparameters"], **HP_OVERRIDES}),
        env={
            "SM_CHANNEL_TRAIN": str(processed / "train"),
            "SM_CHANNEL_VALIDATION": str(processed / "validation"),
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DIR": str(opt / "output" / "train"),
        },
    )

    # SageMaker tars SM_MODEL_DIR into model.tar.gz; the evaluate job gets that file.
    model_input = opt / "processing" / "input" / "model"
    model_input.mkdir(parents=True)
    if model_dir.is_dir():
        with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
            for item in sorted(model_dir.iterdir()):
                tar.add(item, arcname=item.name)
    evaluation = opt / "processing" / "output" / "evaluation"
    ev = run(
        "evaluate.py",
        "--model-dir",
        model_input,
        "--test-dir",
        processed / "test",
        "--output-dir",
        evaluation,
        "--label",
        LABEL,
        env={"SM_OUTPUT_DIR": str(opt / "output" / "evaluate")},
    )
    return SimpleNamespace(
        opt=opt,
        raw=raw,
        processed=processed,
        pre=pre,
        model_dir=model_dir,
        train=train,
        model_input=model_input,
        evaluation=evaluation,
        ev=ev,
    )


# --- preprocess -----------------------------------------------------------------------


def test_preprocess_writes_four_stratified_splits(flow: SimpleNamespace) -> None:
    assert flow.pre.returncode == 0, flow.pre.stderr
    out = flow.processed
    splits = {name: pd.read_csv(out / name / f"{name}.csv") for name in ("train", "validation", "test")}
    for name, df in splits.items():
        assert list(df.columns) == CONFIG["columns"], name
        assert set(df[LABEL].unique()) == {0, 1}, name
    baseline = pd.read_csv(out / "baseline" / "baseline.csv")
    assert list(baseline.columns) == FEATURES
    assert len(baseline) == len(splits["train"])

    valid = 2000 - len(INVALID_LABELS)
    sizes = {name: len(df) for name, df in splits.items()}
    assert sum(sizes.values()) == valid
    for name, fraction in (("train", 0.70), ("validation", 0.15), ("test", 0.15)):
        assert abs(sizes[name] - fraction * valid) <= 2, sizes
    overall = sum(df[LABEL].sum() for df in splits.values()) / valid
    for name, df in splits.items():
        assert abs(df[LABEL].mean() - overall) < 0.01, name
    assert "rows read: 2000" in flow.pre.stdout
    for name in ("train", "validation", "test"):
        assert f"{name}: {sizes[name]} rows" in flow.pre.stdout


def test_preprocess_splits_partition_the_valid_rows(flow: SimpleNamespace) -> None:
    raw = pd.read_csv(flow.raw / "incoming.csv", dtype={LABEL: str}, keep_default_na=False)
    raw = raw[raw[LABEL].isin(["0", "1"])].replace("", np.nan)
    raw = raw.astype({LABEL: "int64", "monthly_charges": float, "data_usage_gb": float})
    parts = pd.concat([pd.read_csv(flow.processed / n / f"{n}.csv") for n in ("train", "validation", "test")])
    cols = CONFIG["columns"]

    def canon(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({c: object for c in CONFIG["categorical_features"]})
        return df[cols].sort_values(cols, na_position="last").reset_index(drop=True)

    pd.testing.assert_frame_equal(canon(parts), canon(raw), check_dtype=False)


def test_preprocess_drops_and_counts_invalid_labels(flow: SimpleNamespace) -> None:
    assert flow.pre.returncode == 0, flow.pre.stderr
    assert f"dropped {len(INVALID_LABELS)} row(s)" in flow.pre.stdout
    assert f"valid rows: {2000 - len(INVALID_LABELS)}" in flow.pre.stdout


def test_preprocess_is_seeded(flow: SimpleNamespace, tmp_path: Path) -> None:
    same = run(
        "preprocess.py",
        "--input-dir",
        flow.raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "same",
        "--seed",
        42,
        env={"SM_OUTPUT_DIR": str(tmp_path / "output")},
    )
    other = run(
        "preprocess.py",
        "--input-dir",
        flow.raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "other",
        "--seed",
        7,
        env={"SM_OUTPUT_DIR": str(tmp_path / "output")},
    )
    assert same.returncode == 0 and other.returncode == 0, same.stderr + other.stderr
    original = (flow.processed / "train" / "train.csv").read_bytes()
    assert (tmp_path / "same" / "train" / "train.csv").read_bytes() == original
    assert (tmp_path / "other" / "train" / "train.csv").read_bytes() != original


def test_preprocess_rejects_a_wrong_header(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    df = datagen.generate(300, seed=1)
    swapped = list(df.columns)
    swapped[6], swapped[8] = swapped[8], swapped[6]  # contract <-> region
    df[swapped].to_csv(raw / "x.csv", index=False)
    output = tmp_path / "opt" / "ml" / "output"
    proc = run(
        "preprocess.py",
        "--input-dir",
        raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "out",
        env={"SM_OUTPUT_DIR": str(output)},
    )
    assert proc.returncode == 1
    reason = failure_reason(output)
    assert "header does not match" in reason and "x.csv" in reason
    assert "different order" in reason
    assert reason.strip() in proc.stderr
    assert not (tmp_path / "out" / "train").exists()

    (raw / "x.csv").write_text("churned,tenure_months\n1,2\n", encoding="utf-8")
    proc = run(
        "preprocess.py",
        "--input-dir",
        raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "out",
        env={"SM_OUTPUT_DIR": str(output)},
    )
    assert proc.returncode == 1
    assert "missing ['monthly_charges'" in failure_reason(output)


def test_preprocess_fails_on_an_empty_input_dir(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "notes.txt").write_text("not a csv", encoding="utf-8")
    output = tmp_path / "output"
    proc = run(
        "preprocess.py",
        "--input-dir",
        raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "out",
        env={"SM_OUTPUT_DIR": str(output)},
    )
    assert proc.returncode == 1
    assert "no .csv files found under" in failure_reason(output)


def test_preprocess_fails_below_min_rows(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = CONFIG["min_rows"] + 5
    write_raw(raw / "small.csv", rows, seed=2, bad_labels=("x",) * 10)
    output = tmp_path / "output"
    proc = run(
        "preprocess.py",
        "--input-dir",
        raw,
        "--config",
        CONFIG_PATH,
        "--output-dir",
        tmp_path / "out",
        env={"SM_OUTPUT_DIR": str(output)},
    )
    assert proc.returncode == 1
    reason = failure_reason(output)
    assert f"only {rows - 10} rows" in reason and f"min_rows={CONFIG['min_rows']}" in reason
    assert "dropped 10 row(s)" in proc.stdout


# --- train ----------------------------------------------------------------------------


def test_train_writes_a_loadable_model_and_the_inference_code(flow: SimpleNamespace) -> None:
    assert flow.train.returncode == 0, flow.train.stderr
    model = joblib.load(flow.model_dir / "model.joblib")
    assert set(model) >= {"pipeline", "features", "label", "sklearn_version"}
    assert model["features"] == FEATURES
    assert model["label"] == LABEL
    assert model["numeric_features"] == CONFIG["numeric_features"]
    assert model["categorical_features"] == CONFIG["categorical_features"]
    copied = flow.model_dir / "code" / "inference.py"
    assert copied.read_bytes() == (ML / "inference.py").read_bytes()
    clf = model["pipeline"].named_steps["model"]
    assert set(CONFIG["hyperparameters"]) == set(HP_OVERRIDES)
    assert clf.C == HP_OVERRIDES["C"]
    assert clf.max_iter == HP_OVERRIDES["max-iter"]
    auc_lines = [ln for ln in flow.train.stdout.splitlines() if ln.startswith("validation:auc=")]
    assert len(auc_lines) == 1
    assert 0.7 < float(auc_lines[0].split("=")[1]) < 0.98


def test_train_fails_clearly_on_an_unknown_label(flow: SimpleNamespace, tmp_path: Path) -> None:
    output = tmp_path / "output"
    proc = run(
        "train.py",
        "--label",
        "nope",
        "--max_iter",
        "50",
        "--model",  # an extra hyperparameter: ignored, never taken for --model-dir
        "churn",
        env={
            "SM_CHANNEL_TRAIN": str(flow.processed / "train"),
            "SM_MODEL_DIR": str(tmp_path / "model"),
            "SM_OUTPUT_DIR": str(output),
        },
    )
    assert proc.returncode == 1
    assert "label column 'nope'" in failure_reason(output)
    assert "ignoring unknown arguments: --model churn" in proc.stdout
    assert not (tmp_path / "model" / "model.joblib").exists()


# --- evaluate -------------------------------------------------------------------------

METRICS = ("auc", "accuracy", "precision", "recall", "f1")


def test_evaluate_writes_the_metrics_report(flow: SimpleNamespace) -> None:
    assert flow.ev.returncode == 0, flow.ev.stderr
    report = json.loads((flow.evaluation / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]
    assert set(metrics) == set(METRICS) | {"confusion_matrix", "receiver_operating_characteristic_curve"}
    for name in METRICS:
        assert set(metrics[name]) == {"value", "standard_deviation"}
        assert 0.0 <= metrics[name]["value"] <= 1.0, name
        std = metrics[name]["standard_deviation"]
        assert isinstance(std, float) and 0.0 <= std < 0.1, (name, std)  # test split >= 200 rows
    assert 0.7 < metrics["auc"]["value"] < 0.98

    test = pd.read_csv(flow.processed / "test" / "test.csv")
    model = joblib.load(flow.model_dir / "model.joblib")
    prob = model["pipeline"].predict_proba(test[FEATURES])[:, 1]
    assert metrics["auc"]["value"] == pytest.approx(roc_auc_score(test[LABEL], prob), abs=1e-9)

    cm = metrics["confusion_matrix"]
    assert set(cm) == {"0", "1"} and all(set(row) == {"0", "1"} for row in cm.values())
    assert sum(n for row in cm.values() for n in row.values()) == len(test)
    assert cm["1"]["0"] + cm["1"]["1"] == int(test[LABEL].sum())
    accuracy = (cm["0"]["0"] + cm["1"]["1"]) / len(test)
    assert metrics["accuracy"]["value"] == pytest.approx(accuracy)

    roc = metrics["receiver_operating_characteristic_curve"]
    fpr, tpr = roc["false_positive_rates"], roc["true_positive_rates"]
    assert 2 < len(fpr) == len(tpr) <= 50
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert all(np.diff(fpr) >= 0) and all(np.diff(tpr) >= 0)

    assert "evaluation: rows=" in flow.ev.stdout
    assert f"auc={metrics['auc']['value']:.4f}" in flow.ev.stdout


def test_evaluate_reports_nan_std_for_small_test_sets(flow: SimpleNamespace, tmp_path: Path) -> None:
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    pd.read_csv(flow.processed / "test" / "test.csv").head(120).to_csv(test_dir / "test.csv", index=False)
    out = tmp_path / "evaluation"
    proc = run(
        "evaluate.py",
        "--model-dir",
        flow.model_input,
        "--test-dir",
        test_dir,
        "--output-dir",
        out,
        env={"SM_OUTPUT_DIR": str(tmp_path / "output")},
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "evaluation.json").read_text())["binary_classification_metrics"]
    for name in METRICS:
        assert metrics[name]["standard_deviation"] == "NaN"
        assert isinstance(metrics[name]["value"], float)
    assert sum(n for row in metrics["confusion_matrix"].values() for n in row.values()) == 120


def test_evaluate_fails_without_a_model(tmp_path: Path, flow: SimpleNamespace) -> None:
    empty = tmp_path / "model"
    empty.mkdir()
    output = tmp_path / "output"
    proc = run(
        "evaluate.py",
        "--model-dir",
        empty,
        "--test-dir",
        flow.processed / "test",
        "--output-dir",
        tmp_path / "evaluation",
        env={"SM_OUTPUT_DIR": str(output)},
    )
    assert proc.returncode == 1
    assert "no model.joblib" in failure_reason(output)
    assert not (tmp_path / "evaluation" / "evaluation.json").exists()


# --- inference ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(flow: SimpleNamespace) -> SimpleNamespace:
    assert flow.train.returncode == 0, flow.train.stderr
    module = load_inference(flow.model_dir / "code" / "inference.py")
    model = module.model_fn(str(flow.model_dir))
    lines = (flow.processed / "test" / "test.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",", 1)[1] for line in lines[1:31]]  # drop the label column
    rows[0] = ",".join(["12", "", "3", "", "40", "month-to-month", "electronic_check", "north"])
    frame = pd.read_csv(io.StringIO("\n".join([",".join(FEATURES), *rows])))
    expected = model["pipeline"].predict_proba(frame)[:, 1]
    return SimpleNamespace(module=module, model=model, rows=rows, frame=frame, expected=expected)


def test_inference_csv_round_trip(served: SimpleNamespace) -> None:
    m = served.module
    body = ("\n".join(served.rows) + "\n").encode("utf-8")
    data = m.input_fn(body, "text/csv")
    prediction = m.predict_fn(data, served.model)
    np.testing.assert_allclose(prediction, served.expected, rtol=1e-12)
    assert ((prediction > 0) & (prediction < 1)).all()
    text = m.output_fn(prediction, "text/csv")
    assert [float(v) for v in text.splitlines()] == pytest.approx(list(served.expected))

    with_header = ",".join(FEATURES) + "\r\n" + "\r\n".join(served.rows)
    again = m.predict_fn(m.input_fn(with_header, "text/csv; charset=utf-8"), served.model)
    np.testing.assert_allclose(again, served.expected, rtol=1e-12)


def test_inference_json_round_trip(served: SimpleNamespace) -> None:
    m = served.module
    records = served.frame.astype(object).where(served.frame.notna(), None)
    as_lists = json.dumps({"instances": records.values.tolist()})
    as_dicts = json.dumps(records.to_dict(orient="records"))
    for body in (as_lists, as_dicts.encode("utf-8")):
        prediction = m.predict_fn(m.input_fn(body, "application/json"), served.model)
        np.testing.assert_allclose(prediction, served.expected, rtol=1e-12)
    out = json.loads(m.output_fn(prediction, "application/json"))
    assert out["predictions"] == pytest.approx(list(served.expected))
    assert json.loads(m.output_fn(prediction, "*/*"))["predictions"] == out["predictions"]


def test_inference_rejects_bad_requests(served: SimpleNamespace) -> None:
    m = served.module
    with pytest.raises(ValueError, match="unsupported content type"):
        m.input_fn(b"1,2,3", "application/x-npy")
    with pytest.raises(ValueError, match=r"has 9 columns, expected 8.*drop it"):
        m.input_fn("1," + served.rows[1], "text/csv")
    with pytest.raises(ValueError, match="lacks feature"):
        m.input_fn(json.dumps([{"tenure_months": 3}]), "application/json")
    with pytest.raises(ValueError, match="has 2 values, expected 8"):
        m.input_fn(json.dumps({"instances": [[1, 2]]}), "application/json")
    bad = served.rows[1].split(",")
    bad[0] = "twelve"
    with pytest.raises(ValueError, match="tenure_months must be a number"):
        m.input_fn(",".join(bad), "text/csv")
    with pytest.raises(ValueError, match="no rows"):
        m.input_fn("\n\n", "text/csv")
    with pytest.raises(ValueError, match="unsupported accept"):
        m.output_fn(np.array([0.5]), "application/x-protobuf")


def test_inference_unseen_category_is_ignored(served: SimpleNamespace) -> None:
    m = served.module
    row = served.rows[1].split(",")
    row[-1] = "atlantis"  # region never seen in training
    prediction = m.predict_fn(m.input_fn(",".join(row), "text/csv"), served.model)
    assert prediction.shape == (1,) and 0 < prediction[0] < 1


# --- container compatibility ------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_stay_python39_and_import_only_the_shared_helpers(script: str) -> None:
    source = script_path(script).read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 9))
    assert "from __future__ import annotations" in source
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        assert not isinstance(node, ast.Match)
    # the job scripts share autoloop_ml_common.py (shipped beside them); inference.py is
    # alone in model.tar.gz:code/, so it imports nothing from ml/
    shared = set() if script == "inference.py" else {"autoloop_ml_common"}
    local = {p.stem for p in ML.glob("*.py")} | {"autoloop", "localaws"}
    assert imported & local <= shared, imported & local
    assert imported - shared <= {
        "__future__",
        "csv",
        "glob",
        "io",
        "json",
        "os",
        "shutil",
        "tarfile",
        "tempfile",
        "warnings",
        "joblib",
        "numpy",
        "pandas",
        "sklearn",
    }, imported


def test_csv_writer_quoting_is_understood(served: SimpleNamespace) -> None:
    """A quoted CSV row (as csv.writer emits for values with commas) parses correctly."""
    m = served.module
    buf = io.StringIO()
    row = served.rows[1].split(",")
    csv.writer(buf, quoting=csv.QUOTE_ALL).writerow(row)
    prediction = m.predict_fn(m.input_fn(buf.getvalue(), "text/csv"), served.model)
    np.testing.assert_allclose(prediction, served.expected[1:2], rtol=1e-12)


def _row_by_row(m: ModuleType, text: str, model: dict[str, object]) -> pd.DataFrame:
    rows = m._rows_from_csv(text, list(model["features"]))  # type: ignore[call-overload]
    if not rows:
        raise ValueError("the request has no rows")
    return m._frame(rows, model)


def test_vectorised_csv_parsing_gives_the_row_by_row_frame(served: SimpleNamespace) -> None:
    """Mini-batches are read by pandas when plain; the DataFrame must be the row-by-row reader's,
    value for value (bits of the floats included), and every other input takes that reader."""
    import random

    m, model = served.module, served.model
    numeric = ["1", "2.5", "", "nan", "NaN", "NA", "null", "None", "1e3", "-0", "inf", "-Infinity", "1_0",
               "True", "x", " 3", "+.5", "5.", "1e400", "00012", "-nan", "0x1"]  # fmt: skip
    categorical = ["one-year", "two-year", "", "NA", "None", "nan", "a b", " x", "False", 'q"q', "é"]
    numeric_features = set(model["numeric_features"])
    rng = random.Random(11)
    plain = 0
    for _ in range(1500):
        lines = []
        for _ in range(rng.randint(0, 6)):
            kind = rng.random()
            if kind < 0.05:
                lines.append("")
            elif kind < 0.08:
                lines.append(",".join(FEATURES))
            else:
                width = len(FEATURES) + (rng.choice([-1, 1]) if rng.random() < 0.05 else 0)
                cells = []
                for j in range(width):
                    pool = numeric if j < len(FEATURES) and FEATURES[j] in numeric_features else categorical
                    cells.append(rng.choice(pool[:5]) if rng.random() < 0.85 else rng.choice(pool))
                lines.append(",".join(cells))
        text = "\n".join(lines) + rng.choice(["", "\n", "\n\n"])
        try:
            expected, error = _row_by_row(m, text, model), None
        except ValueError as exc:
            expected, error = None, str(exc)
        try:
            got, got_error = m._parse("text/csv", text, model), None
        except ValueError as exc:
            got, got_error = None, str(exc)
        assert got_error == error, text
        if expected is not None:
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            for name in numeric_features:
                assert got[name].to_numpy().tobytes() == expected[name].to_numpy().tobytes(), (text, name)
        plain += m._fast_csv_frame(text, model) is not None
    assert plain > 200  # the vectorised path was exercised

    body = ("\n".join(served.rows) + "\n") * 200  # a mini-batch of 6,000 rows, plain
    assert m._fast_csv_frame(body, model) is not None
    pd.testing.assert_frame_equal(m._parse("text/csv", body, model), _row_by_row(m, body, model), check_exact=True)
