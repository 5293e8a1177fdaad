"""Off-policy evaluation of routing policies: compare strategies on history, with honest intervals.

Pure core (numpy, scipy, polars, scikit-learn). Estimators (:mod:`models.ope.estimators`):
DM, IPS, SNIPS, DR, SNDR and clipped DR, each a small variant of :class:`Estimator`, returning a
typed :class:`Estimate` (value, CLT interval from per-lead influence contributions, diagnostics,
or an explicit not-valid reason). :func:`compare` runs them over several policies with paired
differences against the first; :func:`by_segment` breaks one estimator down by lead segments;
:func:`offline_inputs` forms the inputs from logged and replayed decisions with a cross-fitted
:class:`RewardModel`. Formulas and assumptions: ``docs/evaluation.md``.
"""

from models.ope.compare import (
    ASSUMPTIONS,
    Comparison,
    PolicyEstimates,
    SegmentRow,
    by_segment,
    compare,
    offline_inputs,
    same_destination,
    unsupported_destinations,
)
from models.ope.estimators import (
    ClippedDR,
    DirectMethod,
    DoublyRobust,
    Estimator,
    InversePropensity,
    SelfNormalisedDR,
    SelfNormalisedIPS,
    diagnostics,
    importance_weights,
    make_estimator,
    paired_difference,
    self_normalised_weights,
)
from models.ope.reward import CrossFitted, RewardModel, cross_fit
from models.ope.tables import (
    diagnostics_table,
    differences_table,
    estimates_table,
    operational_table,
    segments_table,
)
from models.ope.types import (
    ESTIMATOR_NAMES,
    Diagnostics,
    Estimate,
    EstimatorName,
    Interval,
    LoggedData,
    TargetData,
)

__all__ = [
    "ASSUMPTIONS",
    "ESTIMATOR_NAMES",
    "ClippedDR",
    "Comparison",
    "CrossFitted",
    "Diagnostics",
    "DirectMethod",
    "DoublyRobust",
    "Estimate",
    "Estimator",
    "EstimatorName",
    "Interval",
    "InversePropensity",
    "LoggedData",
    "PolicyEstimates",
    "RewardModel",
    "SegmentRow",
    "SelfNormalisedDR",
    "SelfNormalisedIPS",
    "TargetData",
    "by_segment",
    "compare",
    "cross_fit",
    "diagnostics",
    "diagnostics_table",
    "differences_table",
    "estimates_table",
    "importance_weights",
    "make_estimator",
    "offline_inputs",
    "operational_table",
    "paired_difference",
    "same_destination",
    "segments_table",
    "self_normalised_weights",
    "unsupported_destinations",
]
