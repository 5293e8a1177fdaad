"""Statistics of online A/B experiments: tests you can trust while peeking (pure numpy/scipy).

Entry point: :func:`compare` (two arms, one metric → :class:`Comparison` with fixed-horizon and
always-valid intervals, relative lift, CUPED, cluster-robust variances and a decision) and
:func:`confidence_sequence_path` (the sequence at each look). Around it: :func:`srm_check`
(sample-ratio mismatch), :func:`adjust_p_values` (Holm, Benjamini–Hochberg over metrics × arms),
the planner (:func:`sample_size_two_proportions`, :func:`mde_two_proportions`, …) and
:func:`interference_risk`. The vectorised kernels (:mod:`.fixed`, :mod:`.sequential`) are what the
Monte Carlo in ``benchmarks/ab_calibration.py`` runs. Formulas: ``docs/statistics.md``.
"""

from models.experiments.adjust import CupedAdjustment, cuped
from models.experiments.analysis import compare, confidence_sequence_path
from models.experiments.cluster import (
    ClusterRobustMeans,
    InterferenceCheck,
    RandomisationUnit,
    cluster_robust_means,
    interference_risk,
)
from models.experiments.fixed import EffectArrays, normal_difference, relative_lift, two_proportions, welch
from models.experiments.multiple import (
    AdjustedPValue,
    AdjustMethod,
    adjust_p_values,
    benjamini_hochberg,
    holm,
)
from models.experiments.power import (
    MinimumDetectableEffect,
    PowerPlan,
    cohens_h,
    effect_size_for_power,
    mde_means,
    mde_two_proportions,
    n_control_for_power,
    power_from_effect_size,
    sample_size_means,
    sample_size_two_proportions,
)
from models.experiments.sequential import (
    DEFAULT_N_STAR,
    always_valid_p_value,
    confidence_sequence_half_width,
    mixture_rho,
)
from models.experiments.srm import DEFAULT_SRM_ALPHA, SrmResult, srm_by_segment, srm_check, srm_statistic
from models.experiments.types import ArmData, Comparison, Decision, Metric, SequencePoint

__all__ = [
    "DEFAULT_N_STAR",
    "DEFAULT_SRM_ALPHA",
    "AdjustMethod",
    "AdjustedPValue",
    "ArmData",
    "ClusterRobustMeans",
    "Comparison",
    "CupedAdjustment",
    "Decision",
    "EffectArrays",
    "InterferenceCheck",
    "Metric",
    "MinimumDetectableEffect",
    "PowerPlan",
    "RandomisationUnit",
    "SequencePoint",
    "SrmResult",
    "adjust_p_values",
    "always_valid_p_value",
    "benjamini_hochberg",
    "cluster_robust_means",
    "cohens_h",
    "compare",
    "confidence_sequence_half_width",
    "confidence_sequence_path",
    "cuped",
    "effect_size_for_power",
    "holm",
    "interference_risk",
    "mde_means",
    "mde_two_proportions",
    "mixture_rho",
    "n_control_for_power",
    "normal_difference",
    "power_from_effect_size",
    "relative_lift",
    "sample_size_means",
    "sample_size_two_proportions",
    "srm_by_segment",
    "srm_check",
    "srm_statistic",
    "two_proportions",
    "welch",
]
