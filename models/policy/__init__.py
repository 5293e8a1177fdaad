"""Routing policies: versioned specs, one semantics for batch replay and single-lead routing.

The public surface: parse a YAML-loaded spec (:func:`parse_policy`), check it against the
workspace (:func:`validate_policy`), compare versions (:func:`diff_policies`), bind it to a
:class:`Roster` as a :class:`Policy` to replay history or route one lead, and measure a routing
(:func:`operational_metrics`).
"""

from models.policy.assignment import RoutingState
from models.policy.conditions import compile_condition, describe, evaluate
from models.policy.diff import describe_destination, diff_policies
from models.policy.metrics import OperationalMetrics, TeamFairness, coefficient_of_variation, gini, operational_metrics
from models.policy.parse import parse_policy
from models.policy.roster import Roster
from models.policy.router import Policy, Replay, reasons_of
from models.policy.spec import (
    MAX_SPEC_BYTES,
    Destination,
    PolicySpec,
    PolicySpecError,
    Rule,
)
from models.policy.types import Decision, FitScorer, LeadScorer, OneLeadFit, OneLeadScorer
from models.policy.validation import ValidationReport, validate_policy

__all__ = [
    "MAX_SPEC_BYTES",
    "Decision",
    "Destination",
    "FitScorer",
    "LeadScorer",
    "OneLeadFit",
    "OneLeadScorer",
    "OperationalMetrics",
    "Policy",
    "PolicySpec",
    "PolicySpecError",
    "Replay",
    "Roster",
    "RoutingState",
    "Rule",
    "TeamFairness",
    "ValidationReport",
    "coefficient_of_variation",
    "compile_condition",
    "describe",
    "describe_destination",
    "diff_policies",
    "evaluate",
    "gini",
    "operational_metrics",
    "parse_policy",
    "reasons_of",
    "validate_policy",
]
