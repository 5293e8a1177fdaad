"""Measure the scoring models against the simulated company's ground truth, in memory.

Used by the truth tests and the benchmark: the same time-based split and fitting as the
training stage, without the warehouse or MLflow, so a 40k-lead check takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.scoring.destinations import candidate_pairs, destination_features
from models.scoring.estimator import ConversionClassifier
from models.scoring.features import ExtraFeature, feature_set, lead_features, usable
from models.scoring.metrics import ClassificationMetrics, RankingAgreement, classification_metrics, ranking_agreement
from models.scoring.training import Hyperparameters, fit_classifier, fit_features, fit_rows, temporal_split
from models.simulation.company import SimulatedCompany

SIMULATED_EXTRAS: tuple[ExtraFeature, ...] = (
    ExtraFeature("web_visits", "numeric"),
    ExtraFeature("email_opens", "numeric"),
    ExtraFeature("pricing_page_views", "numeric"),
    ExtraFeature("demo_requested", "numeric"),
    ExtraFeature("language", "categorical"),
)
"""The simulated company's engagement extras (what ``infer_extra_features`` finds in its export)."""


def lead_level_truth(company: SimulatedCompany, leads: pl.DataFrame, draws: int = 8, seed: int = 0) -> np.ndarray:
    """The true P(convert | lead) under the historical routing, for the rows of ``leads``.

    What the lead score estimates: the truth averaged over the logging policy's random choices
    (team exploration, which rep), each whole routing redrawn so loads and speed to lead stay
    realistic. Monte Carlo over ``draws`` routings of all the company's leads, seeded.
    """
    rng = np.random.default_rng(seed)
    total = np.zeros(leads.height)
    rows = leads.select("lead_id")
    for _ in range(draws):
        decisions = company.logging_policy.sample(company.leads, rng)
        p = company.truth.conversion_probability(company.leads, decisions)
        found = rows.join(pl.DataFrame({"lead_id": company.leads["lead_id"], "p": p}), on="lead_id", how="left")
        total += found["p"].to_numpy()
    return total / draws


@dataclass(frozen=True)
class TruthReport:
    """Holdout figures of the models next to the truth's own.

    Attributes:
        score, score_baseline: the lead score (gradient boosting) and its logistic baseline.
        truth: the truth's probabilities at the realised routing, on the same leads (the ceiling
            of any model that knows the routing).
        lead_truth: the truth's P(convert | lead) under the historical routing (the ceiling of a
            lead score, which cannot know which rep will get the lead or how busy they will be).
        fit_ranking, fit_baseline_ranking: agreement of the fit model's destination ranking with
            the truth's :meth:`conversion_matrix` (each rep otherwise idle), per holdout lead.
        n_train, n_holdout: matured leads in each part.
    """

    score: ClassificationMetrics
    score_baseline: ClassificationMetrics
    truth: ClassificationMetrics
    lead_truth: ClassificationMetrics
    fit_ranking: RankingAgreement
    fit_baseline_ranking: RankingAgreement
    n_train: int
    n_holdout: int


def check_against_truth(
    company: SimulatedCompany,
    holdout_months: int = 2,
    hyper: Hyperparameters | None = None,
    max_ranked_leads: int = 3000,
) -> TruthReport:
    """Train both models on the company's matured history and compare them with its truth.

    Args:
        holdout_months: the most recent matured months held out.
        max_ranked_leads: holdout leads (the first ones, deterministic) whose destinations are ranked.
    """
    hyper = hyper or Hyperparameters()
    matured = company.matured()
    conversions = (
        company.outcomes.filter(pl.col("event") == "converted")
        .join(company.leads.select("lead_id", "account_id"), on="lead_id", how="left")
        .select("lead_id", "account_id", "occurred_at")
    )
    # Features over all leads (recent ones count in the arrival volume), then the matured ones.
    features = lead_features(company.leads, SIMULATED_EXTRAS, conversions).filter(
        pl.col("lead_id").is_in(matured["lead_id"].implode())
    )
    y = matured["converted"].to_numpy()
    split = temporal_split(features["created_at"], holdout_months)
    train_mask, holdout_mask = pl.Series(split.train), pl.Series(split.holdout)
    lead_set = usable(feature_set(SIMULATED_EXTRAS), features.filter(train_mask))
    train, holdout = features.filter(train_mask), features.filter(holdout_mask)
    y_train, y_holdout = y[split.train], y[split.holdout]

    models = {kind: fit_classifier(train, y_train, lead_set, kind, hyper) for kind in ("hgb", "logistic")}
    holdout_leads = matured.filter(holdout_mask)
    truth_p = company.truth.conversion_probability(holdout_leads, company.decisions)

    rows = fit_rows(features, matured, company.decisions, company.reps, company.accounts)
    fit_train = rows.filter(rows["created_at"] < split.holdout_start)
    labels = matured.select("lead_id", "converted")
    y_fit = (
        fit_train.select("lead_id")
        .join(labels, on="lead_id", how="left", maintain_order="left")["converted"]
        .to_numpy()
    )
    fit_set = usable(fit_features(lead_set), fit_train)
    fit_models = {kind: fit_classifier(fit_train, y_fit, fit_set, kind, hyper) for kind in ("hgb", "logistic")}

    ranked = holdout_leads.head(max_ranked_leads)
    destinations = company.truth.destinations()
    pairs = candidate_pairs(
        features.filter(holdout_mask)
        .head(max_ranked_leads)
        .join(ranked.select("lead_id", "account_id"), on="lead_id", how="left", maintain_order="left"),
        destinations,
    )
    pairs = destination_features(pairs, company.reps, company.accounts)
    reference = company.truth.conversion_matrix(ranked)
    shape = (ranked.height, destinations.height)

    def ranking(model: ConversionClassifier) -> RankingAgreement:
        return ranking_agreement(model.predict_proba(pairs)[:, 1].reshape(shape), reference)

    return TruthReport(
        score=classification_metrics(y_holdout, models["hgb"].predict_proba(holdout)[:, 1]),
        score_baseline=classification_metrics(y_holdout, models["logistic"].predict_proba(holdout)[:, 1]),
        truth=classification_metrics(y_holdout, truth_p),
        lead_truth=classification_metrics(y_holdout, lead_level_truth(company, holdout_leads)),
        fit_ranking=ranking(fit_models["hgb"]),
        fit_baseline_ranking=ranking(fit_models["logistic"]),
        n_train=int(split.train.sum()),
        n_holdout=int(split.holdout.sum()),
    )
