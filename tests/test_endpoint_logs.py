"""Loading the endpoint's logs into the warehouse: only whole new lines, idempotent by key, bad
records kept as rejects with their reason, counts that add up."""

from __future__ import annotations

import json
from pathlib import Path

from leadroute.serving import JsonLog
from leadroute.serving.traffic import simulate_traffic
from pipelines.demo import build_demo
from pipelines.endpoint_logs import load_endpoint_logs, outcome_log_dir
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame, scalar


def test_logs_load_once_whole_lines_only_and_bad_outcomes_are_rejected(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=600, seed=2, register_policies=True)
    traffic = simulate_traffic(settings, prefix="live-", seed=1, n_leads=200)
    first = load_endpoint_logs(settings).to_json()
    assert first["decisions"] == {"read": 200, "loaded": 200, "updated": 0, "rejected": 0}
    converted = int(traffic.decisions["converted"].sum())
    assert first["outcomes"]["loaded"] == converted
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        rows = query_frame(
            con,
            "SELECT d.lead_id, d.policy, l.created_at IS NOT NULL AS has_lead"
            " FROM decisions d JOIN leads l USING (lead_id) WHERE d.lead_id LIKE 'live-%'",
        )
    assert rows.height == 200 and rows["has_lead"].all()
    assert load_endpoint_logs(settings).lines == 0  # nothing new: nothing read

    # An outcome for a lead nobody routed, and a torn last line (a crash mid-append).
    log = JsonLog(outcome_log_dir(settings), "outcomes")
    log.sync(log.append([{"event_id": "ghost-1", "lead_id": "nobody", "event": "converted",
                          "occurred_at": "2026-11-27T10:00:00+00:00"}]))  # fmt: skip
    log.close()
    newest = sorted(outcome_log_dir(settings).glob("outcomes-*.jsonl"))[-1]
    with newest.open("ab") as handle:
        handle.write(json.dumps({"event_id": "torn", "lead_id": "live-x"}).encode()[:20])
    second = load_endpoint_logs(settings).to_json()
    assert second["outcomes"] == {"read": 1, "loaded": 0, "updated": 0, "rejected": 1}
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        reason = scalar(con, "SELECT reason FROM rejects ORDER BY import_id DESC LIMIT 1")
        assert "lead_id" in str(reason)
        assert scalar(con, "SELECT count(*) FROM outcomes WHERE event_id = 'torn'") == 0
        decisions = scalar(con, "SELECT count(*) FROM decisions WHERE lead_id LIKE 'live-%'")
    assert decisions == 200
