"""The compiled one-lead scorer gives the batch path's score bit for bit, and routing one lead
with it decides exactly as routing through one-row frames does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadroute.serving.deployment import ModelScorer
from models.policy import Policy, Roster, RoutingState
from models.scoring.compiled import CompiledClassifier, LeadFeaturizer, compile_classifier
from models.scoring.estimator import ConversionClassifier
from models.scoring.features import ExtraFeature, feature_set, lead_features, usable
from models.simulation import SimulatedCompany, SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file

EXTRAS = (
    ExtraFeature("web_visits", "numeric"),
    ExtraFeature("demo_requested", "numeric"),
    ExtraFeature("language", "categorical"),
)
KINDS = [("hgb", "isotonic"), ("hgb", "sigmoid"), ("hgb", "none"), ("logistic", "none"), ("logistic", "isotonic")]


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company(SimulationConfig(n_leads=2000, seed=21))


@pytest.fixture(scope="module")
def scorers(company: SimulatedCompany) -> dict[str, ModelScorer]:
    matured = company.matured()
    frame = lead_features(matured, EXTRAS, company.outcomes.filter(pl.col("event") == "converted").join(
        company.leads.select("lead_id", "account_id"), on="lead_id"
    ))  # fmt: skip
    columns = usable(feature_set(EXTRAS), frame)
    out = {}
    for kind, calibration in KINDS:
        model = ConversionClassifier(
            categorical=columns.categorical,
            numeric=columns.numeric,
            kind=kind,  # type: ignore[arg-type]
            calibration=calibration,  # type: ignore[arg-type]
            max_iter=60,
            min_category_count=30,  # some countries become one "infrequent" category
        ).fit(frame, matured["converted"])
        out[f"{kind}-{calibration}"] = ModelScorer(model, None)
    return out


def messy_leads(company: SimulatedCompany, n: int, seed: int) -> list[dict[str, Any]]:
    """Leads as the endpoint sees them, then roughed up: missing values, unseen categories,
    padded text, numbers as text, extras of every type, created_at in other zones or naive."""
    rng = np.random.default_rng(seed)
    rows = simulate_company(SimulationConfig(n_leads=n, seed=seed)).leads.to_dicts()
    zones = [UTC, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3)), None]
    for i, lead in enumerate(rows):
        pick = rng.integers(0, 12)
        if pick == 0:
            lead["industry"], lead["country"] = "Atlantis mining", "ZZ"  # never seen in training
        elif pick == 1:
            lead.update(employees=None, annual_revenue=None, email=None, country=None, language=None)
        elif pick == 2:
            lead.update(industry=f"  {lead['industry']}\u3000", country=f" {str(lead['country']).lower()} ")
        elif pick == 3:
            lead.update(employees=str(lead["employees"]), web_visits=" 7 ", demo_requested="Yes")
        elif pick == 4:
            lead.update(web_visits="lots", demo_requested="maybe", language=3, score=55)
        elif pick == 5:
            lead.update(employees=True, annual_revenue=-1.5e20, web_visits=2.5, language="")
        elif pick == 6:
            lead["account_id"] = ""  # present (not null): has an account
            lead["email"] = "SOMEONE@GMAIL.COM"
        elif pick == 7:
            lead.pop("web_visits", None)
            lead.pop("language", None)
        zone = zones[i % len(zones)]
        created: datetime = lead["created_at"]
        lead["created_at"] = created.replace(tzinfo=None) if zone is None else created.astimezone(zone)
    return rows


@pytest.mark.parametrize("name", [f"{k}-{c}" for k, c in KINDS])
def test_score_one_equals_the_frame_path_bit_for_bit(
    name: str, scorers: dict[str, ModelScorer], company: SimulatedCompany
) -> None:
    scorer = scorers[name]
    compiled = compile_classifier(scorer.model)
    assert compiled is not None, "the model's structure is compiled, not left to the frame path"
    leads = messy_leads(company, 200, seed=5)
    featurizer = LeadFeaturizer(scorer._extras)
    assert all(featurizer.features(lead) is not None for lead in leads)  # none fell back to frames
    one = [float(scorer.score(pl.DataFrame([lead]))[0]) for lead in leads]
    got = [scorer.score_one(lead) for lead in leads]
    assert got == one
    # The model's batch path over all the leads' one-row features at once.
    frames = pl.concat([lead_features(pl.DataFrame([lead]), scorer._extras) for lead in leads], how="diagonal_relaxed")
    batch = scorer.model.predict_proba(frames)[:, 1]
    probabilities = np.array([compiled.probability(f) for f in map(featurizer.features, leads) if f is not None])
    if compiled._linear is not None and not compiled._linear.sparse:
        # A dense logistic design: BLAS sums a 300-row product in another order than a one-row
        # product (see the module doc), so the batch agrees to rounding, and the percentile
        # scores agree wherever that rounding cannot cross a reference point.
        np.testing.assert_allclose(probabilities, batch, rtol=0, atol=1e-12)
        reference = scorer.model.reference_
        clear = np.min(np.abs(batch[:, None] - reference[None, :]), axis=1) > 1e-12
        assert np.array(got)[clear].tolist() == scorer.model.lead_score(frames)[clear].tolist()
    else:
        assert probabilities.tolist() == batch.tolist()
        assert got == scorer.model.lead_score(frames).tolist()
    assert len(set(got)) > 5  # the leads really differ (isotonic calibration has plateaus)


def test_text_timestamps_and_json_extras_fall_back_to_frames(scorers: dict[str, ModelScorer]) -> None:
    scorer = scorers["hgb-isotonic"]
    leads: list[dict[str, Any]] = [
        {"lead_id": "a", "created_at": "2025-03-04T05:06:07+02:00", "industry": "software", "country": "DE"},
        {"lead_id": "b", "created_at": datetime(2025, 3, 4, tzinfo=UTC), "extra": '{"web_visits": "12"}'},
        {"lead_id": "c", "created_at": datetime(2025, 3, 4, tzinfo=UTC), "employees": 2**70},
    ]
    featurizer = LeadFeaturizer(scorer._extras)
    assert [featurizer.features(lead) for lead in leads] == [None, None, None]
    for lead in leads[:2]:
        assert scorer.score_one(lead) == float(scorer.score(pl.DataFrame([lead]))[0])


def test_the_raw_column_model_row_matches_its_frame(company: SimulatedCompany) -> None:
    history = company.matured()
    model = ConversionClassifier(
        categorical=("industry", "region", "source"),
        numeric=("employees", "web_visits", "pricing_page_views"),
        kind="logistic",
        calibration="none",
    ).fit(history, history["converted"])
    compiled = CompiledClassifier(model)
    leads = messy_leads(company, 200, seed=8)
    lacking = [lead for lead in leads if "web_visits" not in lead]
    assert lacking and all(compiled.model_row(lead) is None for lead in lacking)  # the frame path names it
    leads = [lead for lead in leads if "web_visits" in lead]
    rows = [compiled.model_row(lead) for lead in leads]
    got = [compiled.lead_score(row) for row in rows if row is not None]
    assert len(got) == len(leads)
    assert got == [float(model.lead_score(pl.DataFrame([lead]))[0]) for lead in leads]


class _FrameOnly:
    """The same scorer without its one-lead path: routing builds one-row frames."""

    def __init__(self, scorer: ModelScorer) -> None:
        self.inner = scorer

    def score(self, leads: pl.DataFrame) -> np.ndarray:
        return self.inner.score(leads)


def _affinity(lead_id: str, rep_id: str) -> float:
    return float((sum(map(ord, lead_id)) * 7 + sum(map(ord, rep_id)) * 31) % 17)


class _Fit:
    """A deterministic fit (expected value from the lead and the rep ids), with and without its
    one-lead path."""

    def expected_value(self, leads: pl.DataFrame, rep_ids: Sequence[str]) -> np.ndarray:
        return np.array([[_affinity(lead, rep) for rep in rep_ids] for lead in leads["lead_id"].to_list()])


class _FitOne(_Fit):
    def expected_value_one(self, lead: Mapping[str, Any], rep_ids: Sequence[str]) -> np.ndarray:
        return np.array([_affinity(str(lead["lead_id"]), rep) for rep in rep_ids])


@pytest.mark.parametrize("policy_name", ["seed", "best_fit"])
def test_route_one_decides_the_same_with_and_without_the_compiled_path(
    policy_name: str, scorers: dict[str, ModelScorer], company: SimulatedCompany
) -> None:
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    spec = read_file(SHIPPED_DIR / f"{policy_name}.yaml").spec
    leads = sorted(messy_leads(company, 200, seed=13), key=lambda lead: lead["created_at"].astimezone(UTC))
    for scorer in (scorers["hgb-isotonic"], scorers["logistic-none"]):
        fast = Policy(spec, roster, scorer=scorer, fit=_FitOne())
        slow = Policy(spec, roster, scorer=_FrameOnly(scorer), fit=_Fit())
        decisions = []
        for policy in (fast, slow):
            state, rng = RoutingState(roster.size), np.random.default_rng(4)
            decisions.append([policy.route_one(lead, state, rng) for lead in leads])
        assert decisions[0] == decisions[1]
        assert len({d.team for d in decisions[0]}) > 1  # the scores send leads to different teams


_TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["software", " retail ", "US", "de", "GB ", "NA", "EMEA", "webinar", "vp", "en", "fr", "yes", ""]),
)
_NUMBER = st.one_of(
    st.none(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["12", "1e3", " 4 ", "abc", "-0", "true", "NaN"]),
)


@st.composite
def random_leads(draw: st.DrawFn) -> dict[str, Any]:
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)))
    zone = draw(st.sampled_from([UTC, ZoneInfo("America/Chicago"), timezone(timedelta(hours=5, minutes=30)), None]))
    lead: dict[str, Any] = {"lead_id": "L", "created_at": moment if zone is None else moment.replace(tzinfo=zone)}
    for name in ("industry", "country", "region", "source", "seniority", "product_interest", "language", "email"):
        if draw(st.booleans()):
            lead[name] = draw(_TEXT)
    for name in ("employees", "annual_revenue", "score", "web_visits", "demo_requested"):
        if draw(st.booleans()):
            lead[name] = draw(_NUMBER)
    if draw(st.booleans()):
        lead["account_id"] = draw(st.sampled_from([None, "", "A1"]))
    return lead


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lead=random_leads())
def test_any_lead_scores_the_same_on_both_paths(lead: dict[str, Any], scorers: dict[str, ModelScorer]) -> None:
    for name in ("hgb-isotonic", "logistic-none"):
        scorer = scorers[name]
        try:
            want = float(scorer.score(pl.DataFrame([lead]))[0])
        except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
            continue  # a lead the frame path cannot type either (the endpoint validates first)
        got = scorer.score_one(lead)
        assert got == want or (np.isnan(got) and np.isnan(want))
