"""CRM adapters: HubSpot webhooks and Salesforce Outbound Messages to leads and outcome events.

Parsing, signature checks and the mapping are plain functions over bytes and dicts; the only
state is :class:`WebhookInbox` (which deliveries were already handled, HubSpot deal → contact
associations), kept in an append-only log so a retry after a restart is still recognised.

**HubSpot** (``POST /v1/webhooks/hubspot``) sends a JSON array of events that carry ids, not
contact properties. Signature v3: ``X-HubSpot-Signature-v3`` is the base64 HMAC-SHA256, keyed
with the app secret, of ``method + URI + body + X-HubSpot-Request-Timestamp``; a timestamp more
than 5 minutes away from now is refused. The mapping (``eventType`` or ``subscriptionType``):

* ``contact.creation`` → a lead to route: ``lead_id`` = the contact's ``objectId``,
  ``created_at`` = ``occurredAt``, plus every ``contact.propertyChange`` for the same contact in
  the same delivery and an optional ``properties`` object (:data:`HUBSPOT_PROPERTIES` renames
  HubSpot names to canonical ones; other properties stay as extra attributes).
* ``contact.propertyChange`` of ``lifecyclestage`` or ``hs_lead_status`` → an outcome
  (:data:`HUBSPOT_OUTCOMES`; other values and properties are acknowledged and ignored).
* ``contact.associationChange`` / ``deal.associationChange`` between a deal and a contact → the
  association is remembered (removed ones forgotten).
* ``deal.propertyChange`` of ``dealstage`` → an outcome (:data:`HUBSPOT_DEAL_STAGES`) for every
  contact associated with the deal; a deal with no known contact is acknowledged and ignored.
* anything else is acknowledged and ignored.

**Salesforce** (``POST /v1/webhooks/salesforce``) sends SOAP XML; each ``Notification`` holds an
``sObject``. For a Lead (``xsi:type="sf:Lead"``): a lead id the endpoint has not routed yet is
routed (:data:`SALESFORCE_FIELDS` renames fields; others stay as extras; without ``CreatedDate``
the receipt time is used), and ``IsConverted``/``Status`` give an outcome
(:data:`SALESFORCE_STATUSES`) once per lead and event. The answer is the ``notificationsResponse``
envelope with ``<Ack>true</Ack>``. A document with a DOCTYPE or an entity declaration is refused
before parsing (no external entities, no entity expansion).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

from leadroute.serving.keys import owner_only_secret_file
from leadroute.serving.log import JsonLog, read_records

HUBSPOT_SECRET_ENV = "LEADROUTE_HUBSPOT_SECRET"  # noqa: S105 (a variable name)
HUBSPOT_SECRET_FILE = "hubspot_secret"  # noqa: S105 (a file name)
SALESFORCE_ORG_ENV = "LEADROUTE_SALESFORCE_ORG_ID"
PUBLIC_URL_ENV = "LEADROUTE_PUBLIC_URL"
MAX_SKEW_MS = 5 * 60 * 1000
MAX_EVENTS = 1000
WEBHOOKS = "webhooks"

#: HubSpot contact property → canonical lead field (values arrive as text; validation types them).
HUBSPOT_PROPERTIES = {
    "email": "email",
    "company": "company",
    "jobtitle": "title",
    "industry": "industry",
    "numemployees": "employees",
    "annualrevenue": "annual_revenue",
    "country": "country",
    "hs_analytics_source": "source",
    "seniority": "seniority",
}
#: (property, value) of a contact → outcome event (values compared case-insensitively).
HUBSPOT_OUTCOMES = {
    ("lifecyclestage", "salesqualifiedlead"): "qualified",
    ("lifecyclestage", "opportunity"): "qualified",
    ("lifecyclestage", "customer"): "converted",
    ("hs_lead_status", "attempted_to_contact"): "contacted",
    ("hs_lead_status", "connected"): "contacted",
    ("hs_lead_status", "in_progress"): "contacted",
    ("hs_lead_status", "open_deal"): "qualified",
    ("hs_lead_status", "unqualified"): "lost",
    ("hs_lead_status", "bad_timing"): "lost",
}
#: HubSpot default sales pipeline deal stage → outcome event of the deal's contacts.
HUBSPOT_DEAL_STAGES = {
    "appointmentscheduled": "meeting",
    "qualifiedtobuy": "qualified",
    "closedwon": "converted",
    "closedlost": "lost",
}
#: Salesforce Lead field → canonical lead field.
SALESFORCE_FIELDS = {
    "Id": "lead_id",
    "CreatedDate": "created_at",
    "Email": "email",
    "Company": "company",
    "Industry": "industry",
    "NumberOfEmployees": "employees",
    "AnnualRevenue": "annual_revenue",
    "Country": "country",
    "LeadSource": "source",
    "Title": "title",
}
#: Salesforce Lead ``Status`` (standard LeadStatus picklist and common variants, lower case) → outcome.
SALESFORCE_STATUSES = {
    "working - contacted": "contacted",
    "contacted": "contacted",
    "working": "contacted",
    "meeting scheduled": "meeting",
    "meeting booked": "meeting",
    "qualified": "qualified",
    "closed - converted": "converted",
    "converted": "converted",
    "closed - not converted": "lost",
    "unqualified": "lost",
    "disqualified": "lost",
}
_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_FORBIDDEN_XML = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class PayloadError(ValueError):
    """A delivery that cannot be used: ``fields`` names each problem (``field``, ``problem``)."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['problem']}" for f in fields))
        self.fields = fields


def _problem(where: str, problem: str) -> PayloadError:
    return PayloadError([{"field": where, "problem": problem}])


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConfig:
    """Webhook secrets and checks (secrets never in a repr, a log or an answer).

    Attributes:
        hubspot_secret: the HubSpot app's client secret; HubSpot deliveries are refused without one.
        salesforce_org_id: when set, Salesforce messages from another organisation are refused.
        public_url: the endpoint's public base URL (``https://leads.example.com``) as HubSpot
            calls it, for the signed URI behind a proxy; the request's own URL is checked too.
    """

    hubspot_secret: bytes | None = field(default=None, repr=False)
    salesforce_org_id: str | None = None
    public_url: str | None = None


def load_webhook_config(home: Path, env: Mapping[str, str] | None = None) -> WebhookConfig:
    """From ``LEADROUTE_HUBSPOT_SECRET`` (else an owner-only ``<home>/hubspot_secret`` file, if
    present), ``LEADROUTE_SALESFORCE_ORG_ID`` and ``LEADROUTE_PUBLIC_URL``."""
    env = os.environ if env is None else env
    secret = env.get(HUBSPOT_SECRET_ENV, "").strip()
    if not secret and (home / HUBSPOT_SECRET_FILE).exists():
        lines = owner_only_secret_file(home / HUBSPOT_SECRET_FILE, create=False)
        secret = lines[0] if lines else ""
    return WebhookConfig(
        hubspot_secret=secret.encode() or None,
        salesforce_org_id=env.get(SALESFORCE_ORG_ENV, "").strip() or None,
        public_url=env.get(PUBLIC_URL_ENV, "").strip().rstrip("/") or None,
    )


# -- HubSpot ---------------------------------------------------------------------------------


def hubspot_signature(secret: bytes, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Signature v3: base64 of HMAC-SHA256(secret, method + uri + body + timestamp)."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def verify_hubspot(
    secret: bytes,
    method: str,
    uris: Sequence[str],
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int,
) -> str | None:
    """None when the v3 signature matches one of ``uris`` and the timestamp is fresh, else the
    problem (which names no secret and no expected signature)."""
    if not signature or not timestamp:
        return "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp"
    if not timestamp.isdigit() or len(timestamp) > 15:
        return "X-HubSpot-Request-Timestamp is not milliseconds since the epoch"
    if abs(now_ms - int(timestamp)) > MAX_SKEW_MS:
        return "X-HubSpot-Request-Timestamp is more than 5 minutes old (or in the future)"
    given = signature.strip().encode()
    ok = False
    for uri in uris:  # every candidate compared: the time taken does not say which one matched
        ok |= hmac.compare_digest(given, hubspot_signature(secret, method, uri, body, timestamp).encode())
    return None if ok else "the signature does not match"


def parse_hubspot(body: bytes) -> list[dict[str, Any]]:
    """The delivery's events, each checked for the fields the mapping needs."""
    try:
        events = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise _problem("body", "not valid JSON") from None
    if not isinstance(events, list):
        raise _problem("body", "expected a JSON array of events")
    if not events or len(events) > MAX_EVENTS:
        raise _problem("body", f"expected 1 to {MAX_EVENTS} events")
    problems = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            problems.append({"field": f"{i}", "problem": "an event must be a JSON object"})
            continue
        for name in ("eventId", "objectId", "occurredAt"):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
                problems.append({"field": f"{i}.{name}", "problem": "required (a number or text)"})
        if not isinstance(event.get("subscriptionType", event.get("eventType")), str):
            problems.append({"field": f"{i}.subscriptionType", "problem": "required (eventType in older payloads)"})
        if "occurredAt" in event and _millis_iso(event["occurredAt"]) is None:
            problems.append({"field": f"{i}.occurredAt", "problem": "expected milliseconds since the epoch"})
        if not isinstance(event.get("properties", {}), dict):
            problems.append({"field": f"{i}.properties", "problem": "expected an object"})
    if problems:
        raise PayloadError(problems)
    return events


def hubspot_key(event: Mapping[str, Any]) -> str:
    """The deduplication key of a HubSpot event (``eventId`` within its portal)."""
    return f"hubspot:{event.get('portalId', '')}:{event['eventId']}"


def _millis_iso(value: Any) -> str | None:
    try:
        millis = int(str(value))
        return datetime.fromtimestamp(millis / 1000, UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("subscriptionType", event.get("eventType", "")))


@dataclass
class Action:
    """What one delivered item does: ``lead`` to route, ``outcomes`` to store, an association
    change, or nothing (``note`` says why). ``index`` is its position in the delivery."""

    key: str
    index: int
    kind: Literal["lead", "outcome", "association", "ignored"]
    lead: dict[str, Any] | None = None
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    association: tuple[str, str, bool] | None = None  # (deal id, contact id, removed)
    note: str = ""


def _with_properties(lead: dict[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in properties.items():
        if value is None or value == "":
            continue
        target = HUBSPOT_PROPERTIES.get(name, name)
        lead.setdefault(target, value if isinstance(value, str | int | float) else json.dumps(value))
    return lead


def hubspot_actions(events: Sequence[Mapping[str, Any]], contacts_of: Callable[[str], Iterable[str]]) -> list[Action]:
    """Map checked events (duplicates already removed) to actions, in delivery order.

    ``contacts_of(deal_id)`` gives the contacts known to be associated with a deal; association
    changes earlier in the same delivery are applied on top of it.
    """
    changes: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        if _event_type(event) == "contact.propertyChange" and event.get("propertyName"):
            changes.setdefault(str(event["objectId"]), []).append(
                (str(event["propertyName"]), str(event.get("propertyValue", "")))
            )
    local: dict[str, set[str]] = {}
    actions = []
    for index, event in enumerate(events):
        kind, key, object_id = _event_type(event), hubspot_key(event), str(event["objectId"])
        occurred = _millis_iso(event["occurredAt"])
        if kind == "contact.creation":
            lead: dict[str, Any] = {"lead_id": object_id, "created_at": occurred, "crm": "hubspot"}
            _with_properties(lead, event.get("properties") or {})
            _with_properties(lead, dict(changes.get(object_id, [])))
            actions.append(Action(key, index, "lead", lead=lead))
        elif kind == "contact.propertyChange":
            name, value = str(event.get("propertyName", "")), str(event.get("propertyValue", ""))
            outcome = HUBSPOT_OUTCOMES.get((name, value.lower()))
            if outcome is None:
                actions.append(Action(key, index, "ignored", note=f"{name} is not mapped to an outcome"))
                continue
            out = {"event_id": key, "lead_id": object_id, "event": outcome, "occurred_at": occurred}
            actions.append(Action(key, index, "outcome", outcomes=[out]))
        elif kind in ("contact.associationChange", "deal.associationChange"):
            pair = _deal_contact(event)
            if pair is None:
                actions.append(Action(key, index, "ignored", note="not a deal-contact association"))
                continue
            deal, contact = pair
            removed = event.get("associationRemoved") is True
            known = local.setdefault(deal, set(contacts_of(deal)))
            if removed:
                known.discard(contact)
            else:
                known.add(contact)
            actions.append(Action(key, index, "association", association=(deal, contact, removed)))
        elif kind == "deal.propertyChange" and event.get("propertyName") == "dealstage":
            stage = str(event.get("propertyValue", "")).lower()
            outcome = HUBSPOT_DEAL_STAGES.get(stage)
            contacts = sorted(local[object_id] if object_id in local else set(contacts_of(object_id)))
            if outcome is None or not contacts:
                why = f"deal stage {stage!r} is not mapped" if outcome is None else "no contact known for the deal"
                actions.append(Action(key, index, "ignored", note=why))
                continue
            outs = [
                {"event_id": f"{key}:{c}", "lead_id": c, "event": outcome, "occurred_at": occurred} for c in contacts
            ]
            actions.append(Action(key, index, "outcome", outcomes=outs))
        else:
            actions.append(Action(key, index, "ignored", note=f"{kind or 'this event'} is not mapped"))
    return actions


def _deal_contact(event: Mapping[str, Any]) -> tuple[str, str] | None:
    kind = str(event.get("associationType", "")).upper()
    source, target = event.get("fromObjectId"), event.get("toObjectId")
    if source is None or target is None:
        return None
    if kind == "DEAL_TO_CONTACT":
        return str(source), str(target)
    if kind == "CONTACT_TO_DEAL":
        return str(target), str(source)
    return None


# -- Salesforce ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One ``Notification``: its id, the sObject's type (``Lead``) and fields (text; nil → None)."""

    notification_id: str
    sobject_type: str
    fields: dict[str, str | None]


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    notifications: list[Notification]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """Parse a Salesforce Outbound Message safely (DOCTYPE/ENTITY refused before parsing)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _problem("body", "not UTF-8 text") from None
    if _FORBIDDEN_XML.search(text):
        raise _problem("body", "DOCTYPE and ENTITY declarations are not accepted")
    try:
        # Parsing text (not bytes) ignores a declared encoding: the check above saw what expat parses.
        root = ET.fromstring(text)  # noqa: S314 (no DOCTYPE, so no entity can be declared)
    except ET.ParseError as exc:
        raise _problem("body", f"not well-formed XML ({exc})") from None
    if _local(root.tag) != "Envelope" or not root.tag.startswith("{" + _SOAP):
        raise _problem("Envelope", "expected a SOAP 1.1 envelope")
    found = [el for el in root.iter() if _local(el.tag) == "notifications"]
    if not found:
        raise _problem("notifications", "missing")
    notifications = found[0]
    org = next((el.text or "" for el in notifications if _local(el.tag) == "OrganizationId"), "").strip()
    if not org:
        raise _problem("OrganizationId", "missing")
    items = []
    for i, note in enumerate(el for el in notifications if _local(el.tag) == "Notification"):
        note_id = next((el.text or "" for el in note if _local(el.tag) == "Id"), "").strip()
        sobject = next((el for el in note if _local(el.tag) == "sObject"), None)
        if not note_id or sobject is None:
            raise _problem(f"Notification.{i}", "needs an Id and an sObject")
        sobject_type = _local(sobject.get(f"{{{_XSI}}}type", "")).rpartition(":")[2]
        fields: dict[str, str | None] = {}
        for el in sobject:
            nil = el.get(f"{{{_XSI}}}nil") == "true"
            fields[_local(el.tag)] = None if nil else (el.text or "").strip()
        items.append(Notification(note_id, sobject_type, fields))
    if not items:
        raise _problem("Notification", "at least one is required")
    if len(items) > MAX_EVENTS:
        raise _problem("Notification", f"at most {MAX_EVENTS} are accepted")
    return OutboundMessage(org, items)


def same_org(given: str, configured: str) -> bool:
    """Organisation ids compared on their 15-character case-sensitive form (18 = 15 + checksum)."""
    a, b = given.strip()[:15].encode(), configured.strip()[:15].encode()
    return hmac.compare_digest(a, b)


def salesforce_actions(
    message: OutboundMessage, is_routed: Callable[[str], bool], received_at: datetime
) -> list[Action]:
    """Map notifications (duplicates already removed): a Lead not yet routed becomes a lead, and
    ``IsConverted``/``Status`` an outcome (event id ``salesforce:<lead>:<event>``: once per lead)."""
    actions = []
    for index, note in enumerate(message.notifications):
        key = f"salesforce:{note.notification_id}"
        fields = {k: v for k, v in note.fields.items() if v not in (None, "")}
        if note.sobject_type != "Lead" or not fields.get("Id"):
            actions.append(Action(key, index, "ignored", note=f"{note.sobject_type or 'this sObject'} is not a Lead"))
            continue
        lead_id = str(fields["Id"])
        action = Action(key, index, "ignored", note="no new lead and no mapped status")
        if not is_routed(lead_id):
            lead: dict[str, Any] = {"created_at": received_at.isoformat(), "crm": "salesforce"}
            for name, value in fields.items():
                lead[SALESFORCE_FIELDS.get(name, name)] = value
            action = Action(key, index, "lead", lead=lead)
        converted = str(fields.get("IsConverted", "")).lower() == "true"
        event = "converted" if converted else SALESFORCE_STATUSES.get(str(fields.get("Status", "")).strip().lower())
        if event is not None:
            when = (fields.get("ConvertedDate") if converted else None) or fields.get("LastModifiedDate")
            action.outcomes.append(
                {
                    "event_id": f"salesforce:{lead_id}:{event}",
                    "lead_id": lead_id,
                    "event": event,
                    "occurred_at": when or received_at.isoformat(),
                }
            )
            if action.kind == "ignored":
                action.kind, action.note = "outcome", ""
        actions.append(action)
    return actions


def soap_ack() -> bytes:
    """The acknowledgement Salesforce waits for (without it, it retries for up to 24 hours)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP}"><soapenv:Body>'
        '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>'
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def soap_fault(message: str, code: str = "soapenv:Client") -> bytes:
    """A SOAP 1.1 fault naming the problem (the text is escaped)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


# -- the inbox ------------------------------------------------------------------------------


class WebhookInbox:
    """Handled delivery keys and deal → contact associations, durable in ``<home>/webhooks``.

    Hold :attr:`lock` from the duplicate check to :meth:`record`, so a concurrent retry of the
    same delivery waits and is then recognised. Recorded after the leads and outcomes are
    durable: a crash in between makes a retry be processed again (at least once); a retried
    lead id already routed is not routed twice, and outcome event ids stay idempotent.
    """

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.lock = threading.Lock()
        self._seen: set[str] = set()
        self._deals: dict[str, set[str]] = {}
        for record in read_records(directory, WEBHOOKS):
            self._apply(record)
        self.log = JsonLog(directory, WEBHOOKS, fsync=fsync)

    def seen(self, key: str) -> bool:
        return key in self._seen

    def contacts_of(self, deal_id: str) -> set[str]:
        return set(self._deals.get(deal_id, ()))

    def size(self) -> int:
        return len(self._seen)

    def record(self, actions: Sequence[Action]) -> None:
        """Remember handled deliveries (and association changes), durably."""
        now = datetime.now(UTC).isoformat()
        records = []
        for action in actions:
            record: dict[str, Any] = {"key": action.key, "kind": action.kind, "at": now}
            if action.association is not None:
                record["deal"], record["contact"], record["removed"] = action.association
            records.append(record)
        if records:
            self.log.write(records)
        for record in records:
            self._apply(record)

    def _apply(self, record: Mapping[str, Any]) -> None:
        self._seen.add(str(record.get("key")))
        if "deal" in record:
            contacts = self._deals.setdefault(str(record["deal"]), set())
            if record.get("removed"):
                contacts.discard(str(record["contact"]))
            else:
                contacts.add(str(record["contact"]))
