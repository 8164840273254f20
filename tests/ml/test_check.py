"""`autoloop check <model>`: the steps run for real on the in-process local AWS, and every
failure is one line naming the step and the reason, with exit code 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from autoloop_cli import check, cli, publish
from tests.badinput import build_corpus

MODELS = Path(__file__).resolve().parents[2] / "models"
STEPS = ("config", "data", "preprocess", "train", "evaluate", "serve")


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of models/churn as the only model folder; AUTOLOOP_LOCAL_HOME in tmp_path."""
    root = tmp_path / "models"
    shutil.copytree(MODELS / "churn", root / "churn", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(publish, "MODELS_DIR", root)
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path / "home"))
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def edit_train(models: Path, old: str, new: str) -> int:
    """Replace ``old`` in churn's train.py; the 1-based line of the change."""
    path = models / "churn" / "train.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


# ----------------------------------------------------------------------------- happy path
def test_churn_passes_with_one_line_per_step_and_a_verdict(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "churn")
    assert code == 0, (out, err)
    assert err == []
    assert out[0] == "autoloop check churn"
    assert [line.split()[0] for line in out[1:-2]] == list(STEPS)
    assert all(re.match(r"  \w+ +\d+\.\d\d s  ", line) for line in out[1:-2]), out
    # the tests run jobs on the project's venv (tests/conftest.py), and the check says so
    assert out[-2].startswith("  ran on     the project's venv (Python 3."), out[-2]
    assert "NOT sagemaker-scikit-learn:1.2-1's Python 3.9" in out[-2]
    assert "400 rows valid" in out[2] and "train 280 / validation 60 / test 60 rows" in out[3]
    assert "inference.py: 5 rows -> 5 predictions" in out[6]
    verdict = re.fullmatch(r"verdict: PASS: auc (0\.\d{4}) >= threshold 0\.75 \(higher is better\), on 60 held-out "
                           r"rows of a 400-row sample", out[-1])
    assert verdict, out[-1]


def test_price_passes_on_its_regression_metric(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOOP_LOCAL_HOME", str(tmp_path))
    code, out, err = run(capsys, "price", "--rows", "250")
    assert code == 0, (out, err)
    assert "400 rows valid (ValidateInput's checks); checking on a sample of 250" in out[2]
    assert "ml/preprocess.py: train 174 / validation 38 / test 38 rows" in out[3]
    assert re.fullmatch(r"verdict: PASS: rmse \d+\.\d{4} <= threshold 30 \(lower is better\), on \d+ held-out "
                        r"rows of a 250-row sample", out[-1]), out[-1]


# ----------------------------------------------------------------------------- broken train.py
def test_a_syntax_error_in_train_py_names_the_line(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = edit_train(models, "def main(argv=None) -> None:", "def main(argv=None) -> None\n")
    code, out, err = run(capsys, "churn")
    assert code == 2
    assert len(err) == 1, err
    assert re.fullmatch(rf"autoloop check churn: train failed: train\.py line {line}: SyntaxError: .+ \(log: .+\)",
                        err[0]), err
    assert "verdict" not in "".join(out)


def test_train_py_that_raises_names_the_exception_and_its_line(models: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    marker = "def main(argv=None) -> None:\n"
    line = edit_train(models, marker, marker + "    raise RuntimeError('the data source is unreachable')\n") + 1
    code, _, err = run(capsys, "churn")
    assert code == 2
    assert err == [err[0]] and err[0].startswith(
        f"autoloop check churn: train failed: train.py line {line}: RuntimeError: the data source is unreachable"
    ), err


def test_train_py_that_writes_no_model_fails_at_the_train_step(models: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (models / "churn" / "train.py").write_text("print('training... done, I promise')\n")
    code, _, err = run(capsys, "churn")
    assert code == 2
    assert err == ["autoloop check churn: train failed: models/churn/train.py exited 0 but wrote no model.joblib "
                   "under $SM_MODEL_DIR (the fitted pipeline that evaluation and serving load; docs/MODELS.md, "
                   "'Outputs')."]


def test_a_script_failure_line_is_passed_on(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = models / "churn" / "config.json"
    config.write_text(config.read_text().replace('"max-iter": 500', '"max-iter": 0'))
    code, _, err = run(capsys, "churn")
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        "autoloop check churn: train failed: --max-iter must be >= 1, got 0 (log: "), err


# ----------------------------------------------------------------------------- config and data
def test_a_config_error_names_the_field(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = models / "churn" / "config.json"
    config.write_text(config.read_text().replace('"metric": "auc"', '"metric": "AUC"'))
    code, out, err = run(capsys, "churn")
    assert code == 2
    assert len(err) == 1 and err[0].startswith("autoloop check churn: config: model config ")
    assert "metric 'AUC' is not one that ml/evaluate.py reports" in err[0]
    assert out == ["autoloop check churn"]


def test_bad_sample_data_names_the_line_and_column(models: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.csv"
    data.write_bytes(build_corpus.data_files()["labels_not_binary.csv"])
    code, _, err = run(capsys, "churn", "--data", str(data))
    assert code == 2
    assert err == [f"autoloop check churn: data: InvalidLabels: {data} line 5: label 'churned' is '2'; expected 0 or 1 "
                   "(task binary)."]


def test_no_data_says_what_to_pass(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (models / "churn" / "sample.csv").unlink()
    code, _, err = run(capsys, "churn")
    assert code == 2
    assert len(err) == 1 and "no --data given and models/churn/sample.csv does not exist; pass --data <csv>" in err[0]


def test_an_unknown_model_and_too_few_rows_are_refused(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spam")
    assert code == 2 and len(err) == 1 and "no model 'spam'" in err[0] and "(models: churn)" in err[0]
    code, _, err = run(capsys, "churn", "--rows", "50")
    assert code == 2 and err == ["autoloop check churn: data: --rows 50 is below the config's min_rows (200); the "
                                 "preprocess step refuses fewer rows. Pass --rows of at least that."]


# ----------------------------------------------------------------------------- pure parts
def test_script_reason_prefers_the_failure_line_and_adds_the_script_line() -> None:
    log = ('Traceback (most recent call last):\n  File "/opt/ml/code/train.py", line 42, in main\n'
           "    fit()\nValueError: bad C\n")
    assert check.script_reason("AlgorithmError: ValueError: bad C", log, {"train.py"}) == \
        "train.py line 42: ValueError: bad C"
    assert check.script_reason("AlgorithmError: no CSV files in /x", "", {"train.py"}) == "no CSV files in /x"
    toolkit = 'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "..."'
    syntax = '  File "/opt/ml/code/helpers.py", line 3\n    def f(:\n          ^\nSyntaxError: invalid syntax\n'
    assert check.script_reason(toolkit, syntax, {"train.py", "helpers.py"}) == \
        "helpers.py line 3: SyntaxError: invalid syntax"


def test_sampling_is_seeded_uniform_and_keeps_file_order(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("y,x\n" + "".join(f"{i % 2},{i}\n" for i in range(1000)))
    header, rows = check.sample_rows(path, 100)
    assert header == ["y", "x"] and len(rows) == 100
    xs = [int(r[1]) for r in rows]
    assert xs == sorted(xs) and xs[-1] > 500  # not just the first rows
    assert check.sample_rows(path, 100) == (header, rows)
    assert check.sample_rows(path, 5000)[1] == [[str(i % 2), str(i)] for i in range(1000)]


def test_the_example_samples_are_what_the_generators_make_and_stay_out_of_the_bundle() -> None:
    for model in check.EXAMPLE_SAMPLES:
        assert (MODELS / model / check.SAMPLE_FILE).read_bytes() == check.example_sample(model), model
    folders = publish.model_folders()
    for model in check.EXAMPLE_SAMPLES:
        assert check.SAMPLE_FILE not in folders[model].files()
        assert "train.py" in folders[model].files()


def test_the_default_threshold_is_the_template_default() -> None:
    template = (MODELS.parent / "template.yaml").read_text()
    block = template[template.index("  MetricThreshold:"):]
    assert float(re.search(r"Default: ([\d.]+)", block).group(1)) == check.STACK_METRIC_THRESHOLD  # type: ignore[union-attr]


def test_publish_check_runs_the_scripts_first_and_publishes_nothing_when_one_fails(
    models: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # publish would fail on AWS if it got that far
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    (models / "churn" / "train.py").write_text("import sys\nsys.exit(3)\n")
    code = cli.main(["publish", "--stack-name", "s", "--check"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: autoloop check churn: train failed: ") and \
        err[0].endswith("Nothing was published."), err
