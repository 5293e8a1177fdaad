"""The HTTP contract as pydantic models (what ``/docs`` shows).

Field types here are deliberately loose where ingest accepts text (a number may arrive as
``"12"``): the values are then checked by ``models.canonical.validate``, the one semantics shared
with batch ingest, and a problem comes back naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

MAX_BATCH = 1000


def _number_as_text(value: Any) -> Any:
    # CRMs send ids and numbers either way ("12" or 12): accept both as text, and let the
    # canonical validation (shared with ingest) type and check them, naming the field.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_number_as_text)]
LeadId = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Number = Annotated[Text | None, WithJsonSchema({"type": ["number", "string", "null"]})]


class LeadIn(BaseModel):
    """A lead: canonical fields plus any extra attribute (kept and usable in rule conditions)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    lead_id: LeadId
    created_at: str = Field(description="ISO 8601; without an offset it means UTC")
    email: str | None = None
    company: str | None = None
    account_id: str | None = None
    industry: str | None = None
    employees: Number = None
    annual_revenue: Number = None
    country: str | None = None
    region: str | None = None
    source: str | None = None
    title: str | None = None
    seniority: str | None = None
    product_interest: str | None = None
    score: Number = Field(None, description="an externally supplied 0–100 score (used without a model)")


class BatchIn(BaseModel):
    leads: list[LeadIn] = Field(min_length=1, max_length=MAX_BATCH)


class DecisionOut(BaseModel):
    decision_id: str
    lead_id: str
    team: str
    rep_id: str | None
    action: str = Field(description="assign, inbox, nurture or queue")
    score: float | None
    policy: str
    policy_version: int | None
    experiment: str | None
    arm: str | None
    propensity: float = Field(description="probability of this destination (arm share × policy)")
    reasons: dict[str, Any] = Field(description="which rule fired and why")


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    lead_id: LeadId
    event: str = Field(description="contacted, meeting, qualified, converted or lost")
    occurred_at: str
    value: Number = None
    event_id: Annotated[Text, StringConstraints(max_length=200)] | None = Field(
        None, description="deduplication key: a retry is not counted twice"
    )


class OutcomesIn(BaseModel):
    events: list[OutcomeIn] = Field(min_length=1, max_length=MAX_BATCH)


class OutcomesOut(BaseModel):
    accepted: int
    duplicates: int


class ArmOut(BaseModel):
    arm: str | None
    policy: str
    policy_version: int | None
    share: float


class DeploymentOut(BaseModel):
    deployment_id: int | None
    experiment: str | None
    arms: list[ArmOut]
    model: dict[str, Any]


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorOut(BaseModel):
    error: str
    fields: list[FieldProblem] = []
