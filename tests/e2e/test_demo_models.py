"""`autoloop local demo --model <name> --data <csv>`: any model of models/ through the short loop."""

from __future__ import annotations

import io

import pytest

from autoloop_cli import cli, datagen
from autoloop_cli.console import Console
from autoloop_cli.demo import lifecycle

pytestmark = pytest.mark.e2e


def test_the_fraud_model_runs_from_a_users_csv_through_deploy_and_its_month(tmp_path):
    data = tmp_path / "transactions.csv"
    datagen.generate_fraud(3000, seed=5).to_csv(data, index=False)
    out = io.StringIO()
    result = lifecycle.run(model="fraud", data=data, console=Console(stages=8, out=out),
                           tracking=False)  # tests/e2e/test_loop.py is the demo with tracking
    log = out.getvalue()
    assert result.status == "SUCCEEDED", log[-3000:]
    assert [r.name for r in result.runs][:2] == ["TrainingPipeline", "DeployPipeline"]
    assert result.runs[2].name.startswith("BatchTransform (")
    assert f"Uploading 3,000 {data} rows to" in log
    assert '{"predictions": [' in log  # the endpoint's answer to the request
    report = result.runs[2].output["report"]
    assert report["rows"] == 3000 and report["malformed"] == 2 and "fraud" in report["message"]


def test_a_model_without_example_data_or_an_unknown_one_says_what_to_pass(tmp_path, capsys, monkeypatch):
    assert cli.main(["local", "demo", "--model", "spam"]) == 2
    assert "no model 'spam' in models/ (models: churn, fraud, price)" in capsys.readouterr().err
    monkeypatch.delitem(datagen.GENERATORS, "price")
    assert cli.main(["local", "demo", "--model", "price"]) == 2
    err = capsys.readouterr().err
    assert "model 'price' has no example data: pass --data <csv> with its columns (price, area_m2" in err
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00")
    assert cli.main(["local", "demo", "--model", "price", "--data", str(bad)]) == 2
    assert f"cannot read --data {bad}" in capsys.readouterr().err
