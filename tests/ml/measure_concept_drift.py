"""Measure the demo's concept drift (autoloop_cli.datagen at drift 1) with models/churn/train.py's pipeline.

Not a test (pytest does not collect it; about a second a seed). For each seed it prints:

- ``loss``: the AUC of a model trained on reference rows, on fresh reference rows minus on
  fresh drift-1 rows. The demo needs >= 0.08: drift makes the champion worse.
- ``gain``: on the held-out test split of a retrain dataset of 2000 reference rows and 1000
  drift-1 rows, the AUC of the model retrained on that dataset's train split minus the AUC of
  the reference model. The demo needs >= 0.03: the retrain beats the champion on the same rows.

Both models are fitted as the TrainingPipeline fits them: ml/preprocess.py's stratified
70/15/15 split (its default seed, 42) and models/churn/train.py's ``build_pipeline`` with the churn
config's hyperparameters (C=1.0, max-iter 500). The reference model is the first run's: trained
on the train split of the 2000 reference rows, which are also part of the retrain dataset.

    PYTHONPATH=. python tests/ml/measure_concept_drift.py --seeds 5

Exits 1 if any seed misses either bar.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "ml"), str(REPO / "models" / "churn")]

from preprocess import stratified_split  # noqa: E402  (ml/preprocess.py)
from train import build_pipeline  # noqa: E402  (models/churn/train.py)

from autoloop_cli import datagen  # noqa: E402

FEATURES = [*datagen.NUMERIC_FEATURES, *datagen.CATEGORICAL_FEATURES]
FRACTIONS = (0.70, 0.15, 0.15)  # preprocess.py's train / validation / test
SPLIT_SEED = 42  # preprocess.py's default --seed
MIN_LOSS, MIN_GAIN = 0.08, 0.03


def fit(frame: pd.DataFrame):
    model = build_pipeline(list(datagen.NUMERIC_FEATURES), list(datagen.CATEGORICAL_FEATURES), C=1.0, max_iter=500)
    return model.fit(frame[FEATURES], frame[datagen.LABEL])


def auc(model, frame: pd.DataFrame) -> float:
    return float(roc_auc_score(frame[datagen.LABEL], model.predict_proba(frame[FEATURES])[:, 1]))


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) as the preprocess job cuts them."""
    train, _validation, test = stratified_split(frame[datagen.LABEL].to_numpy(), FRACTIONS, SPLIT_SEED)
    return frame.iloc[train], frame.iloc[test]


def measure(seed: int, drift: float = 1.0) -> dict[str, float]:
    reference = datagen.generate(2000, seed=seed)
    champion = fit(split(reference)[0])
    fresh_reference = datagen.generate(5000, seed=1000 + seed)
    fresh_drifted = datagen.generate(5000, seed=2000 + seed, drift=drift)
    retrain_set = pd.concat([reference, datagen.generate(1000, seed=3000 + seed, drift=drift)], ignore_index=True)
    train, test = split(retrain_set)
    challenger = fit(train)
    return {
        "seed": seed,
        "auc_reference": auc(champion, fresh_reference),
        "auc_drifted": auc(champion, fresh_drifted),
        "loss": auc(champion, fresh_reference) - auc(champion, fresh_drifted),
        "champion_on_test": auc(champion, test),
        "challenger_on_test": auc(challenger, test),
        "gain": auc(challenger, test) - auc(champion, test),
        "churn_reference": float(fresh_reference[datagen.LABEL].mean()),
        "churn_drifted": float(fresh_drifted[datagen.LABEL].mean()),
        "test_rows": len(test),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--drift", type=float, default=1.0)
    args = parser.parse_args(argv)
    rows = pd.DataFrame([measure(seed, args.drift) for seed in range(args.seeds)])
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(rows.to_string(index=False))
    print(f"loss: min {rows['loss'].min():.3f}, mean {rows['loss'].mean():.3f} (needs >= {MIN_LOSS})")
    print(f"gain: min {rows['gain'].min():.3f}, mean {rows['gain'].mean():.3f} (needs >= {MIN_GAIN})")
    ok = bool(np.all(rows["loss"] >= MIN_LOSS) and np.all(rows["gain"] >= MIN_GAIN))
    print("ok" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
