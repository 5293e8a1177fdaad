"""Conversion scoring, pure: features, the two models, calibration metrics, drift, promotion.

numpy, polars, scipy and scikit-learn only; the warehouse and MLflow live in ``pipelines``.
"""

from models.scoring.destinations import candidate_pairs, destination_features, fit_feature_set
from models.scoring.diagnostics import PairedComparison, gains_table, paired_comparison, reliability_table
from models.scoring.drift import FeatureDrift, feature_drift, population_stability_index
from models.scoring.estimator import ConversionClassifier
from models.scoring.features import (
    ExtraFeature,
    FeatureSet,
    decode_extras,
    feature_set,
    infer_extra_features,
    lead_features,
)
from models.scoring.metrics import (
    ClassificationMetrics,
    RankingAgreement,
    classification_metrics,
    expected_calibration_error,
    ranking_agreement,
    top_decile_lift,
)
from models.scoring.training import Hyperparameters, Promotion, Split, promotion_decision, temporal_split

__all__ = [
    "ClassificationMetrics",
    "ConversionClassifier",
    "ExtraFeature",
    "FeatureDrift",
    "FeatureSet",
    "Hyperparameters",
    "PairedComparison",
    "Promotion",
    "RankingAgreement",
    "Split",
    "candidate_pairs",
    "classification_metrics",
    "decode_extras",
    "destination_features",
    "expected_calibration_error",
    "feature_drift",
    "feature_set",
    "fit_feature_set",
    "gains_table",
    "infer_extra_features",
    "lead_features",
    "paired_comparison",
    "population_stability_index",
    "promotion_decision",
    "ranking_agreement",
    "reliability_table",
    "temporal_split",
    "top_decile_lift",
]
