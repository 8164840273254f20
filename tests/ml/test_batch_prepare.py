"""ml/batch_prepare.py, run as SageMaker runs it: a subprocess, /opt/ml paths in a temp dir."""

from __future__ import annotations

import ast
import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoloop_cli import datagen

ML = Path(__file__).resolve().parents[2] / "ml"
CONFIG = json.loads((ML.parent / "models" / "churn" / "config.json").read_text())
FEATURES = CONFIG["columns"][1:]


def run(tmp: Path, config: dict | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp / "config.json"
    path.write_text(json.dumps(config or CONFIG))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SM_")}, "SM_OUTPUT_DIR": str(tmp / "sm")}
    return subprocess.run([sys.executable, str(ML / "batch_prepare.py"), "--input-dir", str(tmp / "in"),
                           "--config", str(path), "--output-dir", str(tmp / "out")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def write(tmp: Path, name: str, text: str | bytes) -> None:
    path = tmp / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text().splitlines()))


def summary(tmp: Path) -> dict:
    return json.loads((tmp / "out" / "summary" / "summary.json").read_text())


def test_valid_rows_are_reordered_and_malformed_ones_set_aside(tmp_path):
    frame = datagen.generate(50, seed=1)
    lines = frame.to_csv(index=False).splitlines()  # with the label, which is dropped
    lines[3] = "1,2,3"  # too few fields
    for i, column, value in ((4, 1, "ten"), (5, 2, "inf")):  # a non-numeric tenure, an infinite charge
        fields = lines[i].split(",")
        fields[column] = value
        lines[i] = ",".join(fields)
    lines[6] = '0,1,"2,3,4,5,6,a,b,c'  # an unbalanced quote
    write(tmp_path, "a.csv", "\n".join(lines) + "\n\n")
    shuffled = frame.drop(columns=["churned"])[list(reversed(FEATURES))]
    write(tmp_path, "sub/b.csv.gz", gzip.compress(shuffled.to_csv(index=False).encode()))
    write(tmp_path, "empty.csv", "")
    write(tmp_path, "header-only.csv", ",".join(FEATURES) + "\n")
    write(tmp_path, "_SUCCESS", "")
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr

    clean_a = rows(tmp_path / "out" / "clean" / "a.csv")
    assert len(clean_a) == 46 and all(len(r) == len(FEATURES) for r in clean_a)
    assert clean_a[0] == lines[1].split(",")[1:]  # features in the model's order, no label, no header
    clean_b = rows(tmp_path / "out" / "clean" / "sub" / "b.csv")
    assert clean_b[0] == frame.drop(columns=["churned"]).to_csv(index=False, header=False).splitlines()[0].split(",")
    monitor = rows(tmp_path / "out" / "monitor" / "a.csv")
    assert monitor[0] == FEATURES and monitor[1:] == clean_a

    bad = rows(tmp_path / "out" / "malformed" / "malformed.csv")
    assert bad[0] == ["file", "line", "reason", "row"]
    assert [(r[0], r[1]) for r in bad[1:]] == [("a.csv", "4"), ("a.csv", "5"), ("a.csv", "6"), ("a.csv", "7")]
    reasons = [r[2] for r in bad[1:]]
    assert reasons[0] == "3 fields, expected 9" and "tenure_months: 'ten' is not a number" in reasons[1]
    assert "not a finite number" in reasons[2] and "unbalanced quotes" in reasons[3]

    doc = summary(tmp_path)
    assert doc["rows_valid"] == 96 and doc["rows_malformed"] == 4
    assert doc["empty_files"] == ["empty.csv", "header-only.csv"]
    assert [f["file"] for f in doc["files"]] == ["a.csv", "sub/b.csv.gz"]
    assert doc["files"][1]["output"] == "sub/b.csv" and doc["columns"] == FEATURES
    assert len(doc["malformed_examples"]) == 4


def test_id_columns_come_first_and_quoted_values_survive(tmp_path):
    config = {**CONFIG, "batch": {"id_columns": ["customer_id"]}}
    header = ",".join([*reversed(FEATURES), "customer_id"])
    write(tmp_path, "a.csv", f'{header}\nnorth,credit_card,"one,year",40,1.5,0,20,12,"c,1"\n')
    assert run(tmp_path, config).returncode == 0
    assert rows(tmp_path / "out" / "clean" / "a.csv") == [["c,1", "12", "20", "0", "1.5", "40", "one,year",
                                                         "credit_card", "north"]]
    assert rows(tmp_path / "out" / "monitor" / "a.csv")[1][0] == "12"


@pytest.mark.parametrize(("header", "detail"), [
    (",".join(FEATURES[1:]), "missing ['tenure_months']"),
    (",".join([*FEATURES, "extra"]), "unexpected ['extra']"),
    (",".join([*FEATURES, "age"]), "duplicated ['age']"),
])
def test_a_file_with_the_wrong_columns_fails_the_job_naming_it(tmp_path, header, detail):
    write(tmp_path, "ok.csv", ",".join(FEATURES) + "\n1,2,3,4,5,a,b,c\n")
    write(tmp_path, "bad.csv", header + "\n")
    result = run(tmp_path)
    assert result.returncode == 1
    reason = (tmp_path / "sm" / "failure").read_text()
    assert reason.startswith("BatchSchemaMismatch: bad.csv has the wrong columns") and detail in reason


def test_a_month_of_empty_files_has_no_valid_rows(tmp_path):
    write(tmp_path, "empty.csv", "")
    assert run(tmp_path).returncode == 0
    doc = summary(tmp_path)
    assert doc["rows_valid"] == 0 and doc["empty_files"] == ["empty.csv"] and doc["files"] == []
    assert not (tmp_path / "out" / "clean").exists()


def test_the_script_stays_python39_and_standard_library_only():
    source = (ML / "batch_prepare.py").read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    # autoloop_ml_common needs the standard library only too (test_common.py)
    assert imported <= {"__future__", "autoloop_ml_common", "csv", "gzip", "json", "math", "os"}
    assert not any(isinstance(n, ast.Match) for n in ast.walk(tree))
