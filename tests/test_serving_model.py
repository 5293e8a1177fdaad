"""The endpoint scores with the MLflow ``lead-score`` champion when one is registered (trains once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from leadroute.serving import JsonLog, RoutingService, build_deployment, load_scorer
from leadroute.serving.records import validate_records
from pipelines.policies import load_roster
from tests.serving_support import demo_workspace, sample_leads


def test_the_champion_scores_leads_instead_of_their_own_score(tmp_path: Path) -> None:
    settings = demo_workspace(tmp_path / "ws", train=True)
    scorer = load_scorer(settings)
    assert scorer is not None and scorer.version is not None
    roster = load_roster(settings)
    log = JsonLog(settings.decision_log_dir, "decisions")
    service = RoutingService(settings, roster, build_deployment(settings, roster, scorer, None), log)
    leads = [dict(lead, score=0) for lead in sample_leads(settings, 20)]
    rows, rejects = validate_records("leads", leads)
    assert not rejects
    records = service.route(rows)
    log.close()
    expected = scorer.score(pl.DataFrame(rows))
    got = np.array([r["score"] for r in records])
    assert got == pytest.approx(expected)
    assert got.std() > 0 and (got > 0).any()  # not the leads' own (zero) score
    # The log keeps the score used, so a restart replays the same decisions without the model.
    assert service.rebuild().matched == len(records)
