"""Seeded synthetic card transactions for the ``fraud`` example model (``models/fraud/``).

Columns, label first: ``is_fraud`` (0/1), ``amount``, ``hour``, ``distance_km``,
``account_age_days``, ``txn_last_24h``, ``card_present`` (0/1), ``merchant_category``,
``channel``.

About 4 % of transactions are fraud. The label comes from interactions a linear model on
the raw columns cannot express and trees can: large amounts matter only when the card is not
present, night hours only for online and electronics merchants, and a new account only with
many recent transactions. Some fraud is unobservable noise: on 4000 rows, gradient-boosted
trees reach a validation AUC of about 0.8 and a logistic regression on the raw columns about
0.7. The same ``(rows, seed)`` always gives the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LABEL = "is_fraud"
NUMERIC_FEATURES = ("amount", "hour", "distance_km", "account_age_days", "txn_last_24h", "card_present")
CATEGORICAL_FEATURES = ("merchant_category", "channel")
COLUMNS = (LABEL, *NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
CATEGORIES = ("grocery", "fuel", "travel", "electronics", "online_services")
CHANNELS = ("pos", "web", "app")


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(np.log(40), 1.0, rows), 2)
    hour = rng.integers(0, 24, rows)
    distance = np.round(rng.exponential(12.0, rows), 1)
    age_days = rng.integers(1, 3650, rows)
    recent = rng.poisson(2.0, rows)
    category = rng.choice(CATEGORIES, rows, p=[0.35, 0.2, 0.1, 0.15, 0.2])
    channel = rng.choice(CHANNELS, rows, p=[0.55, 0.3, 0.15])
    present = ((channel == "pos") & (rng.random(rows) < 0.95)).astype("int64")
    night = (hour < 5) | (hour >= 23)
    risky = np.isin(category, ("electronics", "online_services"))
    logit = (-4.6
             + 3.0 * (present == 0) * (amount > 150)
             + 2.8 * (night & risky)
             + 2.6 * ((age_days < 60) & (recent >= 4))
             + 1.5 * (distance > 60) * (present == 1)
             + 0.8 * (channel == "web")
             + rng.normal(0, 0.7, rows))
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return pd.DataFrame({LABEL: label, "amount": amount, "hour": hour, "distance_km": distance,
                         "account_age_days": age_days, "txn_last_24h": recent, "card_present": present,
                         "merchant_category": category, "channel": channel}, columns=list(COLUMNS))
