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


class WebhookOut(BaseModel):
    """What a CRM delivery did (items seen before are acknowledged and not processed again)."""

    received: int = Field(description="events or notifications in the delivery")
    routed: int = Field(description="leads routed now")
    outcomes: int = Field(description="outcome events stored now")
    duplicates: int = Field(description="items handled before (retries), and outcomes already stored")
    ignored: int = Field(description="items with nothing to do (see notes)")
    decisions: list[str] = Field(description="decision ids of the leads routed now")
    notes: list[str] = Field(description="why items were ignored, by position")


#: The HubSpot webhook body as the docs and real deliveries show it (for /docs and the fuzz run).
HUBSPOT_BODY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 100,
    "items": {
        "type": "object",
        "required": ["eventId", "objectId", "occurredAt", "subscriptionType"],
        "properties": {
            "eventId": {"type": "integer"},
            "subscriptionId": {"type": "integer"},
            "portalId": {"type": "integer"},
            "appId": {"type": "integer"},
            "occurredAt": {"type": "integer", "description": "milliseconds since the epoch"},
            "subscriptionType": {"type": "string", "description": "eventType in older payloads"},
            "attemptNumber": {"type": "integer"},
            "objectId": {"type": "integer"},
            "propertyName": {"type": "string"},
            "propertyValue": {"type": "string"},
            "changeSource": {"type": "string"},
            "associationType": {"type": "string"},
            "fromObjectId": {"type": "integer"},
            "toObjectId": {"type": "integer"},
            "associationRemoved": {"type": "boolean"},
        },
        "additionalProperties": True,
    },
}


class ReloadOut(BaseModel):
    previous_deployment_id: int | None
    deployment: DeploymentOut


class PassesOut(BaseModel):
    destination: str
    virtual_time: float
    passes: dict[str, float] = Field(description="rep → stride pass (leads taken / weight); lowest goes next")


class CapacityOut(BaseModel):
    rep_id: str
    used: int
    capacity: int | None = Field(description="leads per UTC day; null when unlimited")


class PolicyStateOut(BaseModel):
    policy: str = Field(description="name@version")
    round_robin: list[PassesOut]
    capacity_today: list[CapacityOut]


class LogPositionOut(BaseModel):
    files: int
    current_file: str | None
    bytes: int = Field(description="size of the current file")


class OutboxOut(BaseModel):
    configured: bool
    format: str | None
    pending: int


class AdminStateOut(BaseModel):
    deployment_id: int | None
    today: str = Field(description="the UTC day capacity is counted for")
    policies: list[PolicyStateOut]
    decision_log: LogPositionOut
    outbox: OutboxOut
    webhook_deliveries_handled: int
