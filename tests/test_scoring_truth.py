"""The scoring models against the simulated company's ground truth (in memory, no MLflow).

Figures (seed 3, 40,000 leads over 12 months; 2 holdout months, 6,640 matured holdout leads),
measured with ``python benchmarks/train.py --truth``:

* lead score ROC AUC 0.770 vs the truth's P(convert | lead) 0.782 and the truth at the realised
  routing 0.791. The realised-routing truth also knows which rep got the lead and how busy they
  were — information no lead score can have at decision time; on other seeds the gap between the
  two truths alone exceeds 0.02 (seed 1: 0.747 vs 0.768). So the 0.02 bound is pinned against
  the lead-level truth, and the realised-routing gap is pinned at 0.03.
  The logistic baseline: 0.770.
* ECE 0.009 (bound 0.02).
* fit model: mean Spearman correlation of its destination ranking with the truth's over 23
  destinations 0.46, top-1 agreement 0.23 (chance 0.04), mean regret 0.030 probability points.
  The logistic baseline ranks better here (0.51, 0.30, 0.025): the simulated fit is close to
  additive in the logit, which a linear model captures with less data.
"""

from __future__ import annotations

import pytest

from models.scoring.truth_check import TruthReport, check_against_truth
from models.simulation.company import simulate_company
from models.simulation.config import SimulationConfig


@pytest.fixture(scope="module")
def report() -> TruthReport:
    return check_against_truth(simulate_company(SimulationConfig(n_leads=40_000, seed=3)))


def test_lead_score_discriminates_like_the_truth(report: TruthReport) -> None:
    score, lead_truth, truth = report.score.roc_auc, report.lead_truth.roc_auc, report.truth.roc_auc
    assert score is not None and lead_truth is not None and truth is not None
    assert report.n_holdout > 5_000
    assert lead_truth - score <= 0.02, (score, lead_truth)
    assert truth - score <= 0.03, (score, truth)
    assert score <= truth + 0.005  # the truth is the ceiling: a higher figure would mean leakage


def test_lead_score_is_calibrated(report: TruthReport) -> None:
    assert report.score.ece is not None and report.score.ece < 0.02
    assert report.score.top_decile_lift is not None and report.score.top_decile_lift > 2.5


def test_fit_model_ranks_destinations_like_the_truth(report: TruthReport) -> None:
    ranking = report.fit_ranking
    assert ranking.n_destinations == 23
    assert ranking.mean_spearman >= 0.40
    assert ranking.top1_agreement >= 0.20  # chance is 1/23
