"""Tests for autoloop_cli.datagen: schema, determinism, drift, learnability, CSV writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autoloop_cli import datagen

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / "models" / "churn" / "config.json").read_text())
NUMERIC = CONFIG["numeric_features"]
CATEGORICAL = CONFIG["categorical_features"]


def ks_distance(a: pd.Series, b: pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (missing values ignored)."""
    x = np.sort(a.dropna().to_numpy(dtype=float))
    y = np.sort(b.dropna().to_numpy(dtype=float))
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / len(x)
    cdf_y = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.max(np.abs(cdf_x - cdf_y)))


def shares(s: pd.Series) -> pd.Series:
    return s.value_counts(normalize=True)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return datagen.generate(20_000, seed=1)


def test_columns_and_types_follow_the_config() -> None:
    df = datagen.generate(500, seed=0)
    assert list(df.columns) == CONFIG["columns"]
    assert list(datagen.COLUMNS) == CONFIG["columns"]
    assert df.columns[0] == CONFIG["label"]
    assert len(df) == 500
    assert set(df[CONFIG["label"]].unique()) == {0, 1}
    for col in NUMERIC:
        assert pd.api.types.is_numeric_dtype(df[col]), col
    for col in CATEGORICAL:
        assert not pd.api.types.is_numeric_dtype(df[col]), col
    assert df["tenure_months"].between(1, 72).all()
    assert df["age"].between(18, 90).all()
    assert list(datagen.generate(0).columns) == CONFIG["columns"]


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = datagen.generate(3000, seed=7)
    pd.testing.assert_frame_equal(a, datagen.generate(3000, seed=7))
    b = datagen.generate(3000, seed=8)
    assert not a["monthly_charges"].equals(b["monthly_charges"])
    # Rows come in fixed seeded blocks: whole blocks do not depend on the total row count.
    block = datagen.BLOCK_ROWS
    pd.testing.assert_frame_equal(datagen.generate(2 * block + 5, seed=7).head(block), datagen.generate(block, seed=7))


def test_reference_data_is_byte_for_byte_what_it_was(tmp_path: Path) -> None:
    """Drift changes only drifted data: ``drift=0`` files (the demo's first upload, the tests'
    fixtures) keep the exact bytes they had before concept drift was added."""
    import hashlib

    path = tmp_path / "reference.csv"
    datagen.write_csv(path, 2000, seed=0, drift=0.0)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "5e4de4be810f3ed00ae82663314f463c3f351a2a886c2ebdaf3743d60e4ab058"
    )


def test_two_seeds_give_the_same_distribution(reference: pd.DataFrame) -> None:
    other = datagen.generate(20_000, seed=2)
    for col in NUMERIC:
        assert ks_distance(reference[col], other[col]) < 0.03, col
    for col in CATEGORICAL:
        diff = (shares(reference[col]) - shares(other[col])).abs().max()
        assert diff < 0.02, col
    assert abs(reference["churned"].mean() - other["churned"].mean()) < 0.02


def test_drift_shifts_features(reference: pd.DataFrame) -> None:
    drifted = datagen.generate(20_000, seed=1, drift=1.0)
    ks = {col: ks_distance(reference[col], drifted[col]) for col in NUMERIC}
    assert sum(d > 0.15 for d in ks.values()) >= 2, ks
    assert ks["monthly_charges"] > 0.15
    assert ks["data_usage_gb"] > 0.15
    assert ks["tenure_months"] > 0.1
    shift = drifted["monthly_charges"].mean() - reference["monthly_charges"].mean()
    assert 9 < shift < 15
    ratio = drifted["data_usage_gb"].median() / reference["data_usage_gb"].median()
    assert 1.4 < ratio < 1.6
    assert drifted["tenure_months"].median() < reference["tenure_months"].median()
    m2m_ref = shares(reference["contract"])["month-to-month"]
    m2m_drift = shares(drifted["contract"])["month-to-month"]
    assert m2m_drift - m2m_ref > 0.15
    assert drifted["churned"].mean() > reference["churned"].mean() + 0.1


def test_drift_grows_with_the_knob(reference: pd.DataFrame) -> None:
    small = datagen.generate(20_000, seed=1, drift=0.25)
    large = datagen.generate(20_000, seed=1, drift=2.0)
    d_small = ks_distance(reference["monthly_charges"], small["monthly_charges"])
    d_large = ks_distance(reference["monthly_charges"], large["monthly_charges"])
    assert d_small < 0.1 < d_large
    with pytest.raises(ValueError, match="drift"):
        datagen.generate(10, drift=-0.5)
    with pytest.raises(ValueError, match="rows"):
        datagen.generate(-1)


def test_missing_values_only_in_some_numeric_features(reference: pd.DataFrame) -> None:
    rates = reference.isna().mean()
    assert rates[CONFIG["label"]] == 0
    for col in ("monthly_charges", "data_usage_gb"):
        assert 0.002 < rates[col] < 0.01, (col, rates[col])
    others = [c for c in CONFIG["columns"] if c not in ("monthly_charges", "data_usage_gb")]
    assert rates[others].sum() == 0


def test_label_is_learnable_but_not_trivial() -> None:
    train = datagen.generate(2000, seed=0)
    test = datagen.generate(2000, seed=1)
    features = NUMERIC + CATEGORICAL
    model = make_pipeline(
        ColumnTransformer(
            [
                ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
                (
                    "c",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                    CATEGORICAL,
                ),
            ]
        ),
        LogisticRegression(max_iter=500),
    )
    model.fit(train[features], train["churned"])
    auc = roc_auc_score(test["churned"], model.predict_proba(test[features])[:, 1])
    assert 0.78 < auc < 0.92, auc
    assert 0.2 < train["churned"].mean() < 0.45


def quartile_gap(df: pd.DataFrame, column: str) -> float:
    """Churn rate of the top quarter of ``column`` minus that of the bottom quarter."""
    low, high = df[column].quantile([0.25, 0.75])
    return float(df.loc[df[column] >= high, "churned"].mean() - df.loc[df[column] <= low, "churned"].mean())


def test_concept_drift_turns_heavy_usage_and_age_into_churn(reference: pd.DataFrame) -> None:
    """In the reference, heavy data users and older customers churn a little less; with drift they
    churn more, increasingly with the knob (the relationship itself changes, not only the features)."""
    half = datagen.generate(20_000, seed=1, drift=0.5)
    drifted = datagen.generate(20_000, seed=1, drift=1.0)
    assert quartile_gap(reference, "data_usage_gb") < -0.05
    assert 0.2 < quartile_gap(half, "data_usage_gb") < quartile_gap(drifted, "data_usage_gb")
    assert quartile_gap(drifted, "data_usage_gb") > 0.4
    assert quartile_gap(reference, "age") < -0.02
    assert 0.05 < quartile_gap(half, "age") < quartile_gap(drifted, "age")
    assert 0.55 < drifted["churned"].mean() < 0.8


def test_a_model_of_the_reference_loses_auc_on_drifted_rows() -> None:
    """The demo's premise (measured fully, with models/churn/train.py's pipeline, by measure_concept_drift.py)."""
    features = NUMERIC + CATEGORICAL
    model = make_pipeline(
        ColumnTransformer(
            [
                ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
                ("c", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                 CATEGORICAL),
            ]
        ),
        LogisticRegression(max_iter=500),
    )
    model.fit(datagen.generate(2000, seed=0)[features], datagen.generate(2000, seed=0)["churned"])
    scores = {}
    for drift in (0.0, 1.0):
        test = datagen.generate(5000, seed=11, drift=drift)
        scores[drift] = roc_auc_score(test["churned"], model.predict_proba(test[features])[:, 1])
    assert scores[0.0] - scores[1.0] >= 0.12, scores


def test_write_csv_matches_generate_whatever_the_chunking(tmp_path: Path) -> None:
    small_chunks = tmp_path / "a.csv"
    one_chunk = tmp_path / "nested" / "b.csv"
    size = datagen.write_csv(small_chunks, 25_000, seed=3, drift=0.5, chunk_rows=7000)
    assert size == small_chunks.stat().st_size
    datagen.write_csv(one_chunk, 25_000, seed=3, drift=0.5, chunk_rows=1_000_000)
    assert small_chunks.read_bytes() == one_chunk.read_bytes()
    with open(small_chunks, encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n") == ",".join(CONFIG["columns"])
    back = pd.read_csv(small_chunks)
    expected = datagen.generate(25_000, seed=3, drift=0.5)
    assert len(back) == 25_000
    pd.testing.assert_frame_equal(
        back.astype({c: object for c in CATEGORICAL}),
        expected.astype({c: object for c in CATEGORICAL}),
        check_dtype=False,
    )


def test_write_csv_memory_stays_flat(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        datagen.write_csv(tmp_path / "small.csv", 20_000, chunk_rows=10_000)
        small_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        datagen.write_csv(tmp_path / "large.csv", 40_000, chunk_rows=10_000)
        large_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert large_peak < 1.25 * small_peak, (small_peak, large_peak)


def test_cli_writes_the_same_rows(tmp_path: Path) -> None:
    out = tmp_path / "cli" / "churn.csv"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "autoloop_cli.datagen", "--rows", "500", "--seed", "5", "--drift", "0.5", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "500 rows" in proc.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 501
    expected = datagen.generate(500, seed=5, drift=0.5)
    back = pd.read_csv(out)
    np.testing.assert_allclose(back["monthly_charges"], expected["monthly_charges"])
    assert back["contract"].tolist() == expected["contract"].tolist()

    bad = subprocess.run(
        [sys.executable, "-m", "autoloop_cli.datagen", "--rows", "5", "--drift", "-1", "--out", str(tmp_path / "bad.csv")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "drift" in bad.stderr
    assert not (tmp_path / "bad.csv").exists()


# --- ground truth ---------------------------------------------------------------------------


def test_ground_truth_files_are_model_monitor_records_in_utc_hour_folders() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    rows = datagen.generate(6, seed=3)
    ids = [f"order-{i}" for i in range(6)]
    t0 = datetime(2026, 11, 1, 3, 5, tzinfo=UTC)
    times = [t0, t0, t0 + timedelta(minutes=50), t0 + timedelta(hours=1), t0, t0]
    times[4] = times[4].astimezone(timezone(timedelta(hours=-5)))  # 22:05 the day before, in UTC-5: still 03 UTC
    files = datagen.ground_truth_files("churn", rows["churned"], ids, times)

    assert sorted(k.rsplit("/", 1)[0] for k in files) == ["groundtruth/churn/2026/11/01/03",
                                                         "groundtruth/churn/2026/11/01/04"]
    records = {k.rsplit("/", 1)[0]: [json.loads(line) for line in v.decode().splitlines()] for k, v in files.items()}
    hour3, hour4 = records["groundtruth/churn/2026/11/01/03"], records["groundtruth/churn/2026/11/01/04"]
    assert [r["eventMetadata"]["eventId"] for r in hour3] == ["order-0", "order-1", "order-2", "order-4", "order-5"]
    assert [r["eventMetadata"]["eventId"] for r in hour4] == ["order-3"]
    labels = dict(zip(ids, rows["churned"].astype(str), strict=True))
    for record in hour3 + hour4:
        assert set(record) == {"groundTruthData", "eventMetadata", "eventVersion"}
        assert record["eventVersion"] == "0" and record["groundTruthData"]["encoding"] == "CSV"
        assert record["groundTruthData"]["data"] == labels[record["eventMetadata"]["eventId"]]
    for key, body in files.items():
        assert key.endswith(".jsonl") and body.endswith(b"\n")
    # pure and deterministic: the same labels, the same keys and bytes
    assert datagen.ground_truth_files("churn", rows["churned"], ids, times) == files


def test_ground_truth_labels_are_written_as_csv_text() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 1, 3, tzinfo=UTC)
    [body] = datagen.ground_truth_files("churn", [1, 0.0, 2.5, True, np.int64(1), " yes "],
                                        ["a", "b", "c", "d", "e", "f"], when).values()
    data = [json.loads(line)["groundTruthData"]["data"] for line in body.decode().splitlines()]
    assert data == ["1", "0", "2.5", "1", "1", "yes"]


@pytest.mark.parametrize(
    ("labels", "ids", "match"),
    [
        ([1, 0], ["a"], "2 labels for 1 inference ids"),
        ([1, 0], ["a", "a"], "labelled twice"),
        ([1, float("nan")], ["a", "b"], "'b' has no label"),
        ([1, None], ["a", "b"], "'b' has label None"),
        ([1], [""], "inference id is empty"),
    ],
)
def test_ground_truth_refuses_what_could_not_be_merged(labels, ids, match) -> None:
    from datetime import UTC, datetime

    with pytest.raises(ValueError, match=match):
        datagen.ground_truth_files("churn", labels, ids, datetime(2026, 11, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="time zone"):
        datagen.ground_truth_files("churn", [1], ["a"], datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="model"):
        datagen.ground_truth_files("Churn!", [1], ["a"], datetime(2026, 11, 1, tzinfo=UTC))
