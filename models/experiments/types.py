"""Typed inputs and results of the experiment statistics: an arm's leads, a comparison, a look."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

Metric = Literal["proportion", "mean"]
Decision = Literal["treatment better", "control better", "no difference detected"]
JsonValue = float | int | str | bool | None | list[str]


@dataclass(frozen=True)
class ArmData:
    """One arm's matured leads.

    Attributes:
        name: the arm (policy version).
        y: per matured lead outcome: 0/1 conversion, or revenue for a mean metric.
        covariate: the lead score per lead, fixed before assignment (for CUPED); same length as ``y``.
        cluster: rep or team id per lead when randomised by cluster; same length as ``y``.
        time: when each lead entered (any increasing number: day index, epoch seconds), for
            :func:`confidence_sequence_path`; same length as ``y``.
    """

    name: str
    y: np.ndarray
    covariate: np.ndarray | None = None
    cluster: np.ndarray | None = None
    time: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = np.shape(self.y)
        if len(n) != 1:
            raise ValueError(f"arm {self.name!r}: y must be one-dimensional")
        for label, values in (("covariate", self.covariate), ("cluster", self.cluster), ("time", self.time)):
            if values is not None and np.shape(values) != n:
                raise ValueError(
                    f"arm {self.name!r}: {label} must have one value per lead ({n[0]}), got {np.shape(values)}"
                )

    @property
    def n(self) -> int:
        return int(np.size(self.y))

    def head(self, k: int) -> ArmData:
        """The first ``k`` leads (in the arrays' order)."""
        cut = slice(0, k)
        return ArmData(
            self.name,
            self.y[cut],
            None if self.covariate is None else self.covariate[cut],
            None if self.cluster is None else self.cluster[cut],
            None if self.time is None else self.time[cut],
        )

    def until(self, t: float) -> ArmData:
        """The leads with ``time <= t``."""
        if self.time is None:
            raise ValueError(f"arm {self.name!r} has no time per lead")
        keep = self.time <= t
        return ArmData(
            self.name,
            self.y[keep],
            None if self.covariate is None else self.covariate[keep],
            None if self.cluster is None else self.cluster[keep],
            self.time[keep],
        )


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric. Intervals are for ``treatment − control``.

    Fixed-horizon numbers (``lift``, ``ci_*``, ``p_value``) are valid at one planned look; the
    sequential ones (``sequential_*``, ``always_valid_p_value``) at every look. ``None`` marks a
    number that cannot be computed; ``warnings`` says why.
    """

    control: str
    treatment: str
    metric: Metric
    method: str
    alpha: float
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    lift: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    decision: Decision
    decision_basis: str
    sequential: bool = False
    n_star: float | None = None
    sequential_ci_low: float | None = None
    sequential_ci_high: float | None = None
    always_valid_p_value: float | None = None
    relative_sequential_ci_low: float | None = None
    relative_sequential_ci_high: float | None = None
    adjusted: bool = False
    adjusted_lift: float | None = None
    adjusted_ci_low: float | None = None
    adjusted_ci_high: float | None = None
    adjusted_p_value: float | None = None
    adjusted_sequential_ci_low: float | None = None
    adjusted_sequential_ci_high: float | None = None
    adjusted_always_valid_p_value: float | None = None
    theta: float | None = None
    variance_reduction: float | None = None
    n_clusters: int | None = None
    higher_is_better: bool = True
    assumptions: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, JsonValue]:
        """Plain Python values only (floats, ints, str, bool, None, lists of str)."""
        out: dict[str, JsonValue] = {}
        for key, value in asdict(self).items():
            if isinstance(value, tuple):
                out[key] = [str(v) for v in value]
            elif isinstance(value, bool | str | int) or value is None:
                out[key] = value
            else:
                out[key] = float(value)
        return out


@dataclass(frozen=True)
class SequencePoint:
    """The comparison at one look: for the "lift with its confidence sequence over time" plot."""

    look: float
    n_control: int
    n_treatment: int
    lift: float
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    always_valid_p_value: float | None
    ci_low: float
    ci_high: float
    p_value: float
