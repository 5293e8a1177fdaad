"""CRM webhooks: HubSpot (signature v3, JSON events) and Salesforce Outbound Messages (SOAP) into
routed leads and outcome events, in process and against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadroute.serving import read_records
from leadroute.serving.crm import (
    PayloadError,
    hubspot_actions,
    load_webhook_config,
    parse_hubspot,
    parse_outbound_message,
    salesforce_actions,
    same_org,
    verify_hubspot,
)
from tests.serving_support import Server, api_key, demo_workspace

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "hubspot-app-secret-for-tests-0123456789"
ORG_15 = "00D5e000000AbCd"  # the fixtures' organisation (18-character form 00D5e000000AbCdEAB)
SOAP_NS = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "o": "http://soap.sforce.com/2005/09/outbound"}


def signed(url: str, body: bytes, secret: str = SECRET, age_ms: int = 0) -> dict[str, str]:
    """Headers as HubSpot sends them: v3 = base64(HMAC-SHA256(method + URI + body + timestamp))."""
    timestamp = str(int(time.time() * 1000) - age_ms)
    digest = hmac.new(secret.encode(), b"POST" + url.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v3",
    }


# -- in process ---------------------------------------------------------------------------


def test_signature_v3_checks_secret_body_uri_and_age() -> None:
    body = (FIXTURES / "hubspot_delivery.json").read_bytes()
    url = "https://leads.example.com/v1/webhooks/hubspot"
    headers = signed(url, body)
    sig, ts = headers["X-HubSpot-Signature-v3"], headers["X-HubSpot-Request-Timestamp"]
    now = int(time.time() * 1000)
    assert verify_hubspot(SECRET.encode(), "POST", [url], body, sig, ts, now) is None
    # Any candidate URI may match (the request's own URL, or the public URL behind a proxy).
    assert verify_hubspot(SECRET.encode(), "POST", ["http://127.0.0.1/x", url], body, sig, ts, now) is None
    assert verify_hubspot(b"other-secret", "POST", [url], body, sig, ts, now) == "the signature does not match"
    assert verify_hubspot(SECRET.encode(), "POST", [url], body + b" ", sig, ts, now) == "the signature does not match"
    assert verify_hubspot(SECRET.encode(), "POST", [url + "?x=1"], body, sig, ts, now) is not None
    stale = verify_hubspot(SECRET.encode(), "POST", [url], body, sig, ts, now + 5 * 60 * 1000 + 1)
    assert stale is not None and "5 minutes" in stale
    assert "missing" in str(verify_hubspot(SECRET.encode(), "POST", [url], body, None, ts, now))
    assert "milliseconds" in str(verify_hubspot(SECRET.encode(), "POST", [url], body, sig, "yesterday", now))


def test_hubspot_events_map_to_a_lead_outcomes_and_associations() -> None:
    events = parse_hubspot((FIXTURES / "hubspot_delivery.json").read_bytes())
    actions = hubspot_actions(events, lambda deal: set())
    assert [a.kind for a in actions] == [
        "lead", "ignored", "ignored", "ignored", "outcome", "association", "outcome", "ignored", "ignored",
    ]  # fmt: skip
    lead = actions[0].lead
    assert lead is not None
    # The creation carries only ids: the same delivery's property changes fill the lead in.
    assert lead["lead_id"] == "70010001" and lead["industry"] == "Software" and lead["employees"] == "250"
    assert lead["created_at"] == datetime.fromtimestamp(1795600000, UTC).isoformat()
    assert actions[4].outcomes == [
        {"event_id": "hubspot:4401:5005", "lead_id": "70010001", "event": "contacted",
         "occurred_at": datetime.fromtimestamp(1795603600, UTC).isoformat()},
    ]  # fmt: skip
    assert actions[5].association == ("9001", "70010001", False)
    # The deal stage reaches the contact associated earlier in the same delivery.
    assert [(o["lead_id"], o["event"]) for o in actions[6].outcomes] == [("70010001", "converted")]
    assert "no contact" in actions[7].note and "contact.deletion" in actions[8].note
    # An association known from an earlier delivery works the same way.
    later = hubspot_actions([events[6]], lambda deal: {"55"} if deal == "9001" else set())
    assert later[0].outcomes[0]["lead_id"] == "55"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b'{"eventId": 1}', "body"),
        (b"[]", "body"),
        (b"[1]", "0"),
        (b'[{"objectId": 1, "occurredAt": 1, "subscriptionType": "contact.creation"}]', "0.eventId"),
        (b'[{"eventId": 1, "objectId": 1, "occurredAt": 1}]', "0.subscriptionType"),
        (b'[{"eventId": 1, "objectId": 1, "occurredAt": "soon", "subscriptionType": "x"}]', "0.occurredAt"),
    ],
)
def test_bad_hubspot_deliveries_name_the_problem(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_hubspot(body)
    assert field in [f["field"] for f in caught.value.fields]


def test_outbound_message_parses_and_maps_leads_and_status() -> None:
    message = parse_outbound_message((FIXTURES / "salesforce_new_lead.xml").read_bytes())
    assert message.organization_id == "00D5e000000AbCdEAB" and len(message.notifications) == 2
    assert message.notifications[0].fields["Rating"] is None  # xsi:nil
    received = datetime(2026, 11, 27, 10, tzinfo=UTC)
    actions = salesforce_actions(message, lambda lead_id: False, received)
    assert [a.kind for a in actions] == ["lead", "ignored"]
    lead = actions[0].lead
    assert lead is not None and not actions[0].outcomes  # "Open - Not Contacted" is not an outcome
    assert (lead["lead_id"], lead["created_at"], lead["employees"], lead["source"]) == (
        "00Q5e00000LeAd1EAA", "2026-11-20T09:15:00.000Z", "250", "Web",
    )  # fmt: skip
    assert lead["LastName"] == "Lovelace" and "Rating" not in lead  # other fields stay as extras
    converted = parse_outbound_message((FIXTURES / "salesforce_converted_lead.xml").read_bytes())
    known = salesforce_actions(converted, lambda lead_id: lead_id == "00Q5e00000LeAd1EAA", received)
    assert known[0].kind == "outcome" and known[0].lead is None
    assert known[0].outcomes == [
        {"event_id": "salesforce:00Q5e00000LeAd1EAA:converted", "lead_id": "00Q5e00000LeAd1EAA",
         "event": "converted", "occurred_at": "2026-11-26"},
    ]  # fmt: skip
    assert same_org("00D5e000000AbCdEAB", ORG_15) and not same_org("00D5e000000XXXXEAB", ORG_15)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&lol2;</soapenv:Body>
</soapenv:Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!doctype x [ <!entity xxe SYSTEM "file:///etc/passwd"> ]><x>&xxe;</x>"""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (BILLION_LAUGHS, "DOCTYPE"),
        (EXTERNAL_ENTITY, "DOCTYPE"),
        (b"<soapenv:Envelope", "well-formed"),
        (b"\xff\xfe<\x00x\x00>\x00", "UTF-8"),
        (b'<Envelope xmlns="urn:other"/>', "SOAP"),
        (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>', "notifications"),
    ],
)
def test_unsafe_or_foreign_xml_is_refused_before_use(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        parse_outbound_message(body)


def test_webhook_config_from_env_or_an_owner_only_file(tmp_path: Path) -> None:
    assert load_webhook_config(tmp_path, {}).hubspot_secret is None
    config = load_webhook_config(tmp_path, {"LEADROUTE_HUBSPOT_SECRET": "s3", "LEADROUTE_SALESFORCE_ORG_ID": ORG_15})
    assert config.hubspot_secret == b"s3" and config.salesforce_org_id == ORG_15
    assert "s3" not in repr(config)
    secret_file = tmp_path / "hubspot_secret"
    secret_file.write_text("from-file\n")
    secret_file.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_webhook_config(tmp_path, {})
    secret_file.chmod(0o600)
    assert load_webhook_config(tmp_path, {}).hubspot_secret == b"from-file"


# -- against a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = demo_workspace(tmp_path_factory.mktemp("crm") / "ws")
    env = {"LEADROUTE_HUBSPOT_SECRET": SECRET, "LEADROUTE_SALESFORCE_ORG_ID": ORG_15}
    running = Server(settings, extra_args=("--no-model",), env=env).start()
    yield running
    running.stop()


def _decisions(server: Server) -> list[dict[str, Any]]:
    return list(read_records(server.settings.decision_log_dir, "decisions"))


def _outcomes(server: Server) -> list[dict[str, Any]]:
    return list(read_records(server.settings.home / "outcomes", "outcomes"))


def test_hubspot_delivery_round_trips_and_a_retry_is_not_processed_again(server: Server) -> None:
    url = f"{server.url}/v1/webhooks/hubspot"
    body = (FIXTURES / "hubspot_delivery.json").read_bytes()
    with httpx.Client(timeout=30.0) as client:
        first = client.post(url, content=body, headers=signed(url, body))
        assert first.status_code == 200, first.text
        answer = first.json()
        assert (answer["received"], answer["routed"], answer["outcomes"], answer["duplicates"]) == (9, 1, 2, 0)
        assert answer["ignored"] == 5 and len(answer["decisions"]) == 1
        # HubSpot retries with a new timestamp (and attemptNumber): acknowledged, nothing new.
        retry = client.post(url, content=body, headers=signed(url, body))
        assert retry.status_code == 200 and retry.json()["duplicates"] == 9 and retry.json()["routed"] == 0
    routed = [d for d in _decisions(server) if d["lead_id"] == "70010001"]
    assert [d["decision_id"] for d in routed] == answer["decisions"]
    assert routed[0]["lead"]["industry"] == "Software" and routed[0]["lead"]["employees"] == 250
    stored = {(o["lead_id"], o["event"]) for o in _outcomes(server) if o["event_id"].startswith("hubspot:")}
    assert stored == {("70010001", "contacted"), ("70010001", "converted")}


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"Content-Type": "application/json"}, b'[{"eventId": 1}]', 401, ""),
        ("wrong-secret", b'[{"eventId": 1}]', 401, ""),
        ("stale", b'[{"eventId": 1}]', 401, ""),
        ("signed", b"[{not json", 422, "body"),
        ("signed", b'[{"eventId": 2, "objectId": 3, "occurredAt": 4}]', 422, "0.subscriptionType"),
        (
            "signed",
            b'[{"eventId": 7, "objectId": 8, "occurredAt": 1795600000000, "subscriptionType": "contact.creation",'
            b' "properties": {"numemployees": "-5"}}]',
            422,
            "0.employees",
        ),
        ({"Content-Type": "text/plain"}, b"[]", 415, ""),
    ],
)
def test_bad_hubspot_requests_get_a_4xx_json_and_change_nothing(
    server: Server, headers: dict[str, str] | str, body: bytes, status: int, field: str
) -> None:
    url = f"{server.url}/v1/webhooks/hubspot"
    if headers == "wrong-secret":
        headers = signed(url, body, secret="not-the-secret")
    elif headers == "stale":
        headers = signed(url, body, age_ms=6 * 60 * 1000)
    elif headers == "signed":
        headers = signed(url, body)
    assert isinstance(headers, dict)
    before = (len(_decisions(server)), len(_outcomes(server)))
    response = httpx.post(url, content=body, headers=headers, timeout=30.0)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    if field:
        assert field in [f["field"] for f in response.json()["fields"]], response.text
    assert (len(_decisions(server)), len(_outcomes(server))) == before
    assert SECRET not in response.text


def _soap(server: Server, name: str, **params: str) -> httpx.Response:
    body = (FIXTURES / name).read_bytes() if name.endswith(".xml") else name.encode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    if "key" not in params:
        headers["Authorization"] = f"Bearer {api_key(server.settings)}"
    return httpx.post(f"{server.url}/v1/webhooks/salesforce", content=body, headers=headers, params=params, timeout=30)


def _fault(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("text/xml")
    fault = ET.fromstring(response.content).find("s:Body/s:Fault", SOAP_NS)
    assert fault is not None, response.text
    return str(fault.findtext("faultstring"))


def test_salesforce_outbound_messages_route_then_convert_with_an_ack(server: Server) -> None:
    first = _soap(server, "salesforce_new_lead.xml")
    assert first.status_code == 200, first.text
    ack = ET.fromstring(first.content).find("s:Body/o:notificationsResponse/o:Ack", SOAP_NS)
    assert ack is not None and ack.text == "true"
    routed = [d for d in _decisions(server) if d["lead_id"] == "00Q5e00000LeAd1EAA"]
    assert len(routed) == 1 and routed[0]["lead"]["company"] == "Analytical Engines Ltd"
    assert routed[0]["lead"]["employees"] == 250 and routed[0]["lead"]["annual_revenue"] == 12_000_000.0
    # The key may come in the URL: Salesforce cannot set headers on an Outbound Message.
    converted = _soap(server, "salesforce_converted_lead.xml", key=api_key(server.settings))
    assert converted.status_code == 200, converted.text
    again = _soap(server, "salesforce_converted_lead.xml")  # a retry: acknowledged again, nothing new
    assert again.status_code == 200 and b"<Ack>true</Ack>" in again.content
    assert len([d for d in _decisions(server) if d["lead_id"] == "00Q5e00000LeAd1EAA"]) == 1
    events = [o for o in _outcomes(server) if o["lead_id"] == "00Q5e00000LeAd1EAA"]
    assert [(o["event"], o["occurred_at"][:10]) for o in events] == [("converted", "2026-11-26")]
    metrics = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {api_key(server.settings)}"}, timeout=30
    ).text
    assert 'leadroute_webhook_items_total{result="routed",source="salesforce"} 1' in metrics
    assert 'leadroute_webhook_items_total{result="duplicate",source="salesforce"} 1' in metrics
    assert 'status="5' not in metrics


def test_bad_salesforce_messages_get_a_soap_fault_naming_the_problem(server: Server) -> None:
    before = (len(_decisions(server)), len(_outcomes(server)))
    assert "API key" in _fault(_soap(server, "salesforce_new_lead.xml", key="wrong"))
    doctype = _soap(server, BILLION_LAUGHS.decode())
    assert doctype.status_code == 400 and "DOCTYPE" in _fault(doctype)
    other_org = (FIXTURES / "salesforce_new_lead.xml").read_text().replace("00D5e000000AbCdEAB", "00D5e000000ZZZZEAB")
    wrong_org = _soap(server, other_org)
    assert wrong_org.status_code == 403 and "OrganizationId" in _fault(wrong_org)
    bad_lead = (
        (FIXTURES / "salesforce_new_lead.xml")
        .read_text()
        .replace("00Q5e00000LeAd1EAA", "00Q5e00000LeAd9EAA")
        .replace("04l5e00000Abc01AAA", "04l5e00000Abc09AAA")  # a new notification, not a retry
        .replace("<sf:NumberOfEmployees>250", "<sf:NumberOfEmployees>lots")
    )
    invalid = _soap(server, bad_lead)
    assert invalid.status_code == 422 and "Notification.0.employees" in _fault(invalid)
    as_json = httpx.post(
        f"{server.url}/v1/webhooks/salesforce",
        json={"a": 1},
        headers={"Authorization": f"Bearer {api_key(server.settings)}"},
        timeout=30,
    )
    assert as_json.status_code == 415 and "XML" in _fault(as_json)
    too_big = _soap(server, "<x>" + "a" * 1_100_000 + "</x>")
    assert too_big.status_code == 413 and "larger than" in _fault(too_big)
    assert (len(_decisions(server)), len(_outcomes(server))) == before
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_hubspot_is_refused_when_no_secret_is_configured(tmp_path: Path) -> None:
    settings = demo_workspace(tmp_path / "ws")
    running = Server(settings, extra_args=("--no-model", "--reload-interval", "0")).start()
    try:
        url = f"{running.url}/v1/webhooks/hubspot"
        body = json.dumps([{"eventId": 1}]).encode()
        response = httpx.post(url, content=body, headers=signed(url, body), timeout=30)
    finally:
        running.stop()
    assert response.status_code == 403 and "LEADROUTE_HUBSPOT_SECRET" in response.json()["error"]
    assert "HubSpot webhook: off" in running.output()
