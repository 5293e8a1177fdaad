"""The lead score on real data: UCI bank marketing, imported through the shipped mapping.

``duration`` (the call's length) is known only after the call and leaks the outcome: the default
config excludes it, and the test proves it is not a feature. The file's dates are synthetic
(rows spread evenly over the campaign in file order), so the holdout is a seeded stratified 25%.
Measured: ROC AUC 0.792 (logistic baseline 0.786), ECE 0.005 on 10,286 held-out contacts.
"""

from __future__ import annotations

import pytest

from models.scoring.metrics import classification_metrics
from models.scoring.training import fit_classifier
from pipelines.config import ScoringConfig
from pipelines.features import load_history
from pipelines.ingest import ingest_file
from pipelines.train import hyperparameters, prepare
from pipelines.warehouse import Warehouse
from tests.conftest import MAPPINGS, SHARED_DATA

BANK = SHARED_DATA / "bank-additional-full.csv"


@pytest.mark.skipif(not BANK.exists(), reason="shared bank-marketing data not present")
def test_bank_marketing_lead_score_auc(warehouse: Warehouse) -> None:
    summary = ingest_file(warehouse, "leads", BANK, MAPPINGS / "bank_marketing_leads.yaml")
    assert summary.counts.loaded == 41_188
    # Outcomes are recorded at the contact itself: a one-day window matures every lead.
    config = ScoringConfig(split="random", conversion_window_days=1)
    data = prepare(load_history(warehouse), config)
    assert "duration" not in data.score.features.columns
    assert {"age", "job", "poutcome", "euribor3m", "nr.employed"} <= set(data.score.features.columns)
    train, y = data.score.part(data.score.split.train)
    holdout, y_holdout = data.score.part(data.score.split.holdout)
    model = fit_classifier(train, y, data.score.features, "hgb", hyperparameters(config))
    figures = classification_metrics(y_holdout, model.predict_proba(holdout)[:, 1])
    assert figures.n > 10_000
    assert figures.roc_auc is not None and figures.roc_auc >= 0.79, figures
    assert figures.ece is not None and figures.ece < 0.02
