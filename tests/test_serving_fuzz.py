"""Fuzzing a real uvicorn server on 127.0.0.1: schemathesis over ``/openapi.json`` (every
operation, valid and invalid inputs) and random bytes into the CRM webhooks. No answer may be a
5xx, and the server keeps serving. Seeded (derandomized) and bounded, so a run is repeatable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.serving_support import Server, api_key, demo_workspace

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "fuzz-hubspot-secret"
EXAMPLES_PER_OPERATION = 15
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same examples every run
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings_ = demo_workspace(tmp_path_factory.mktemp("fuzz") / "ws")
    env = {"LEADROUTE_HUBSPOT_SECRET": SECRET, "LEADROUTE_SALESFORCE_ORG_ID": "00D5e000000AbCd"}
    running = Server(settings_, extra_args=("--no-model",), env=env).start()
    yield running
    running.stop()


def test_schemathesis_finds_no_server_error_on_any_operation(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    admin = (server.settings.home / "admin_keys").read_text().strip()
    headers = {"Authorization": f"Bearer {admin}"}  # an admin key reaches every route
    statuses: Counter[tuple[str, int]] = Counter()
    without_negative: set[str] = set()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation in /openapi.json is a usable schema
        operations.append(result.ok())
    assert {op.path for op in operations} >= {
        "/v1/route", "/v1/route/batch", "/v1/outcomes", "/v1/webhooks/hubspot", "/v1/webhooks/salesforce",
        "/v1/admin/reload", "/v1/admin/state",
    }  # fmt: skip
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if mode is GenerationMode.POSITIVE and operation.path.startswith("/v1/route"):
                # Generated timestamps are almost never ISO 8601: give half the leads a real one, so
                # generated values for every other field reach the policy and the decision log.
                strategy = st.tuples(strategy, st.booleans()).map(lambda pair: _timestamped(*pair))

            @FUZZ
            @given(case=strategy)
            def call(case: schemathesis.Case[Any]) -> None:
                response = case.call_and_validate(
                    base_url=server.url, headers=headers, checks=[not_a_server_error], timeout=30
                )
                statuses[(case.operation.path, response.status_code)] += 1

            try:
                call()
            except Unsatisfiable:
                # No invalid input exists for an operation without parameters or body (GET /healthz).
                assert mode is GenerationMode.NEGATIVE, operation.path
                without_negative.add(operation.path)
    assert without_negative <= {"/healthz", "/metrics", "/v1/deployment", "/v1/admin/state", "/v1/admin/reload"}
    assert sum(statuses.values()) >= len(operations) * EXAMPLES_PER_OPERATION
    assert not [key for key in statuses if key[1] >= 500]
    # Valid inputs were generated too (not only refusals): some leads were routed.
    assert statuses[("/v1/route", 200)] + statuses[("/v1/route/batch", 200)] > 0
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        assert 'status="5' not in client.get("/metrics").text
        assert client.get("/healthz").status_code == 200


def _timestamped(case: schemathesis.Case[Any], fix: bool) -> schemathesis.Case[Any]:
    body = case.body
    leads = body.get("leads") if isinstance(body, dict) and "leads" in body else [body]
    for lead in leads if fix and isinstance(leads, list) else []:
        if isinstance(lead, dict):
            lead["created_at"] = "2026-11-27T10:00:00Z"
    return case


def _mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """The fixture with a random slice replaced by random bytes, or random bytes alone."""
    spliced = st.tuples(st.integers(0, len(original)), st.integers(0, 64), st.binary(max_size=64)).map(
        lambda t: original[: t[0]] + t[2] + original[t[0] + t[1] :]
    )
    return st.one_of(st.binary(max_size=4096), spliced)


def test_random_bytes_into_the_webhooks_get_4xx_never_5xx(server: Server) -> None:
    hubspot_url = f"{server.url}/v1/webhooks/hubspot"
    salesforce_url = f"{server.url}/v1/webhooks/salesforce"
    key = api_key(server.settings)
    seen: Counter[int] = Counter()
    with httpx.Client(timeout=30.0) as client:

        @settings(FUZZ, max_examples=60)
        @given(body=_mutations((FIXTURES / "hubspot_delivery.json").read_bytes()))
        def hubspot(body: bytes) -> None:
            # Correctly signed, so the bytes reach the parser and the mapping.
            timestamp = str(int(time.time() * 1000))
            message = b"POST" + hubspot_url.encode() + body + timestamp.encode()
            signature = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
            headers = {
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": signature,
                "X-HubSpot-Request-Timestamp": timestamp,
            }
            response = client.post(hubspot_url, content=body, headers=headers)
            assert response.status_code < 500, response.text
            assert response.headers["content-type"].startswith("application/json")
            seen[response.status_code] += 1

        @settings(FUZZ, max_examples=60)
        @given(body=_mutations((FIXTURES / "salesforce_new_lead.xml").read_bytes()))
        def salesforce(body: bytes) -> None:
            headers = {"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {key}"}
            response = client.post(salesforce_url, content=body, headers=headers)
            assert response.status_code < 500, response.text
            assert response.headers["content-type"].startswith("text/xml")
            seen[response.status_code] += 1

        hubspot()
        salesforce()
        assert client.get(f"{server.url}/healthz").status_code == 200
    assert sum(seen.values()) >= 100 and not [s for s in seen if s >= 500]
    assert seen[200] > 0 and any(400 <= s < 500 for s in seen)  # both kept and refused deliveries
