"""The simulated company and its ground truth: determinism, invariants, calibration, structure.

Every later number in leadroute is checked against this truth, so the checks here are against
oracles (scipy's chi-square, scikit-learn's ROC AUC, hand-built routings) and invariants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.simulation import (
    EVENTS,
    RULES,
    GroundTruth,
    LoggingPolicy,
    PolicyValue,
    SimulatedCompany,
    SimulationConfig,
    export_files,
    ground_truth,
    simulate_company,
)
from models.simulation.export import as_text

FRAMES = ("teams", "reps", "absences", "accounts", "leads", "decisions", "outcomes")
WORLD = ("teams", "reps", "absences", "accounts")


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company()


@pytest.fixture(scope="module")
def large() -> SimulatedCompany:
    # 80k leads over four years: the default pace (20k a year), so the same staffing applies.
    return simulate_company(SimulationConfig(n_leads=80_000, months=48, seed=11))


def _matured_probabilities(company: SimulatedCompany) -> tuple[np.ndarray, np.ndarray]:
    probability = company.truth.conversion_probability(company.leads, company.decisions)
    matured = company.matured()
    mask = company.leads["lead_id"].is_in(matured["lead_id"].implode()).to_numpy()
    return probability[mask], matured["converted"].to_numpy()


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    config = SimulationConfig(n_leads=3_000, seed=3)
    first, second = simulate_company(config), simulate_company(config)
    for name in FRAMES:
        assert getattr(first, name).equals(getattr(second, name)), name
    assert first.now == second.now


def test_different_seed_gives_different_company() -> None:
    first = simulate_company(SimulationConfig(n_leads=3_000, seed=3))
    second = simulate_company(SimulationConfig(n_leads=3_000, seed=4))
    for name in ("reps", "accounts", "leads", "decisions", "outcomes"):
        assert not getattr(first, name).equals(getattr(second, name)), name


def test_more_leads_leave_the_world_unchanged() -> None:
    small = simulate_company(SimulationConfig(n_leads=2_000, seed=5))
    big = simulate_company(SimulationConfig(n_leads=6_000, seed=5))
    for name in WORLD:
        assert getattr(small, name).equals(getattr(big, name)), name


def test_the_truth_can_be_rebuilt_from_the_config_alone(company: SimulatedCompany) -> None:
    rebuilt = ground_truth(company.config)
    leads, decisions = company.leads.head(2_000), company.decisions.head(2_000)
    assert np.array_equal(
        rebuilt.conversion_probability(leads, decisions), company.truth.conversion_probability(leads, decisions)
    )
    # Timestamps from elsewhere (another zone, nanoseconds, naive meaning UTC) give the same truth.
    for created in (
        pl.col("created_at").dt.convert_time_zone("Asia/Tokyo"),
        pl.col("created_at").cast(pl.Datetime("ns", "UTC")),
        pl.col("created_at").dt.replace_time_zone(None),
    ):
        moved = leads.with_columns(created)
        assert np.array_equal(
            rebuilt.conversion_probability(moved, decisions), company.truth.conversion_probability(leads, decisions)
        )


def test_config_fails_fast() -> None:
    with pytest.raises(ValueError, match="exploration"):
        SimulationConfig(exploration=1.5)
    with pytest.raises(ValueError, match="n_leads"):
        SimulationConfig(n_leads=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulationConfig(start=datetime(2025, 1, 1))
    assert SimulationConfig(start=datetime(2025, 1, 31, tzinfo=UTC), months=1).now == datetime(2025, 2, 28, tzinfo=UTC)


def test_empty_and_single_lead_histories() -> None:
    empty = simulate_company(SimulationConfig(n_leads=0))
    assert empty.leads.height == empty.decisions.height == empty.outcomes.height == 0
    assert empty.truth.policy_value(empty.leads, empty.decisions) == PolicyValue(0.0, 0.0, 0.0, 0)
    single = simulate_company(SimulationConfig(n_leads=1))
    assert single.decisions.height == 1


# -- schema and invariants --------------------------------------------------------------------


def test_schemas(company: SimulatedCompany) -> None:
    utc = pl.Datetime("us", "UTC")
    expected = {
        "teams": {"team": pl.String, "kind": pl.String, "description": pl.String},
        "reps": {
            "rep_id": pl.String, "name": pl.String, "team": pl.String, "seniority": pl.String,
            "regions": pl.List(pl.String), "industries": pl.List(pl.String), "capacity_per_day": pl.Int64,
            "weight": pl.Float64, "active": pl.Boolean, "timezone": pl.String,
            "languages": pl.List(pl.String), "working_hours": pl.String,
        },
        "absences": {"rep_id": pl.String, "starts_on": pl.Date, "ends_on": pl.Date, "reason": pl.String},
        "accounts": {
            "account_id": pl.String, "name": pl.String, "domain": pl.String, "owner_rep_id": pl.String,
            "industry": pl.String, "employees": pl.Int64, "annual_revenue": pl.Float64, "country": pl.String,
        },
        "leads": {
            "lead_id": pl.String, "created_at": utc, "email": pl.String, "company": pl.String,
            "account_id": pl.String, "industry": pl.String, "employees": pl.Int64,
            "annual_revenue": pl.Float64, "country": pl.String, "region": pl.String, "source": pl.String,
            "title": pl.String, "seniority": pl.String, "product_interest": pl.String, "score": pl.Float64,
            "web_visits": pl.Int64, "email_opens": pl.Int64, "pricing_page_views": pl.Int64,
            "demo_requested": pl.Boolean, "language": pl.String,
        },
        "decisions": {
            "decision_id": pl.String, "lead_id": pl.String, "decided_at": utc, "team": pl.String,
            "rep_id": pl.String, "action": pl.String, "policy": pl.String, "policy_version": pl.Int64,
            "propensity": pl.Float64, "reasons": pl.String,
        },
        "outcomes": {"event_id": pl.String, "lead_id": pl.String, "event": pl.String, "occurred_at": utc,
                     "value": pl.Float64},
    }  # fmt: skip
    for name, schema in expected.items():
        assert dict(getattr(company, name).schema) == schema, name


def test_world_looks_like_a_sales_org(company: SimulatedCompany) -> None:
    teams = company.teams
    assert teams["team"].to_list() == ["enterprise", "mid-market", "smb", "nurture", "queue"]
    reps = company.reps
    assert 20 <= reps.height <= 26
    assert reps["rep_id"].is_unique().all()
    assert reps.filter(~pl.col("active")).height == 1
    assert set(reps["team"]) == {"enterprise", "mid-market", "smb"}
    senior_share = reps.group_by("team").agg(
        (pl.col("seniority") == "senior").mean().alias("s"), (pl.col("seniority") == "junior").mean().alias("j")
    )
    shares = {row["team"]: row for row in senior_share.iter_rows(named=True)}
    assert shares["enterprise"]["s"] > 0.5
    assert shares["smb"]["j"] > 0.5
    for team in ("enterprise", "mid-market", "smb"):
        covered = set(reps.filter(pl.col("team") == team)["regions"].explode())
        assert covered == {"NA", "EMEA", "APAC", "LATAM"}, team
    assert reps["industries"].list.len().is_between(2, 3).all()
    assert reps["languages"].list.contains("en").all()
    lengths = company.absences.select((pl.col("ends_on") - pl.col("starts_on")).dt.total_days() + 1)
    assert lengths.to_series().is_between(3, 15).all()
    per_rep = company.absences.group_by("rep_id").len()["len"]
    assert per_rep.min() >= 1
    assert per_rep.max() <= 3
    owners = company.accounts.join(reps, left_on="owner_rep_id", right_on="rep_id")
    assert owners.height == company.accounts.height
    assert set(owners["team"]) <= {"enterprise", "mid-market"}


def test_leads_are_sorted_unique_and_within_history(company: SimulatedCompany) -> None:
    leads = company.leads
    assert leads.height == company.config.n_leads
    assert leads["lead_id"].is_unique().all()
    assert leads["created_at"].is_sorted()
    assert leads["created_at"].min() >= company.config.start  # type: ignore[operator]
    assert leads["created_at"].max() < company.now  # type: ignore[operator]
    assert leads["score"].null_count() == leads.height
    assert set(leads["region"]) == {"NA", "EMEA", "APAC", "LATAM"}


def test_weekday_volume_exceeds_weekend(company: SimulatedCompany) -> None:
    days = company.leads.group_by(pl.col("created_at").dt.date().alias("day")).len()
    days = days.with_columns(pl.col("day").dt.weekday().alias("weekday"))
    weekday = days.filter(pl.col("weekday") <= 5)["len"].mean()
    weekend = days.filter(pl.col("weekday") > 5)["len"].mean()
    assert weekend is not None
    assert weekday is not None
    assert 0.1 < weekend / weekday < 0.3  # type: ignore[operator]


def test_leads_are_realistically_incomplete_but_valid(company: SimulatedCompany) -> None:
    leads = company.leads
    for column in ("industry", "country", "employees"):
        assert 0.01 < leads[column].null_count() / leads.height < 0.10, column
    assert (leads["employees"].drop_nulls() >= 1).all()
    known = leads.filter(pl.col("account_id").is_not_null())
    assert 0.12 < known.height / leads.height < 0.18
    domains = known.join(company.accounts.select("account_id", "domain"), on="account_id")
    assert (domains["email"].str.split("@").list.last() == domains["domain"]).all()
    assert leads["email"].str.contains("@").all()


def test_decisions_are_one_per_lead_shortly_after_creation(company: SimulatedCompany) -> None:
    decisions = company.decisions
    assert decisions["decision_id"].is_unique().all()
    assert decisions["lead_id"].to_list() == company.leads["lead_id"].to_list()
    lag = (decisions["decided_at"] - company.leads["created_at"]).dt.total_milliseconds()
    assert lag.is_between(1_000, 10_000).all()
    with_rep = decisions["rep_id"].is_not_null()
    assert (with_rep == decisions["action"].eq("assign")).all()
    assert set(decisions["policy"]) == {"legacy-rules"}
    assert set(decisions["policy_version"]) == {1}
    reasons = decisions["reasons"].str.json_decode()
    assert set(reasons.struct.field("rule")) <= {rule for rule, _, _ in RULES}


def test_logging_probabilities_sum_to_one_and_match_the_logged_propensity(company: SimulatedCompany) -> None:
    table = company.logging_policy.probabilities(company.leads)
    sums = table.group_by("lead_id").agg(pl.col("probability").sum())
    assert sums.height == company.leads.height
    assert np.allclose(sums["probability"].to_numpy(), 1.0)
    assert (table["probability"] > 0).all()
    chosen = company.decisions.join(table, on=["lead_id", "team", "rep_id"], how="left", nulls_equal=True)
    assert chosen["probability"].null_count() == 0
    assert np.allclose(chosen["propensity"].to_numpy(), chosen["probability"].to_numpy())
    again = company.logging_policy.probability_of(company.leads, company.decisions)
    assert np.allclose(again, company.decisions["propensity"].to_numpy())


def test_exploration_share_and_zero_exploration(company: SimulatedCompany) -> None:
    explored = company.decisions["reasons"].str.json_decode().struct.field("exploration")
    assert abs(explored.mean() - company.config.exploration) < 0.015  # type: ignore[operator]
    strict = LoggingPolicy(company.reps, company.absences, exploration=0.0)
    table = strict.probabilities(company.leads.head(2_000))
    teams = table.group_by("lead_id").agg(pl.col("team").n_unique())
    assert (teams["team"] == 1).all()
    rule_team = np.array([team for _, _, team in RULES])[strict.rule(company.leads.head(2_000))]
    first = table.unique("lead_id", keep="first", maintain_order=True)
    names = np.array(["enterprise", "mid-market", "smb", "nurture", "queue"])
    unstaffed = first["team"].to_numpy() != names[rule_team]
    assert unstaffed.mean() < 0.01  # only when a whole team is away


def test_no_decision_to_an_inactive_or_absent_rep(company: SimulatedCompany) -> None:
    assigned = company.decisions.filter(pl.col("rep_id").is_not_null()).join(
        company.reps.select("rep_id", "active"), on="rep_id"
    )
    assert assigned["active"].all()
    days = assigned.select("rep_id", pl.col("decided_at").dt.date().alias("day"), "lead_id")
    clash = days.join(company.absences, on="rep_id").filter(
        pl.col("day").is_between(pl.col("starts_on"), pl.col("ends_on"))
    )
    # decided_at is seconds after created_at; compare on the creation day the policy used.
    created = company.leads.select("lead_id", pl.col("created_at").dt.date().alias("created_day"))
    clash = clash.join(created, on="lead_id").filter(
        pl.col("created_day").is_between(pl.col("starts_on"), pl.col("ends_on"))
    )
    assert clash.height == 0


def test_capacity_binds_under_the_logging_policy(company: SimulatedCompany) -> None:
    assigned = company.decisions.filter(pl.col("rep_id").is_not_null()).join(
        company.leads.select("lead_id", "created_at"), on="lead_id"
    )
    weekdays = company.leads.filter(pl.col("created_at").dt.weekday() <= 5)["created_at"].dt.date().n_unique()
    load = (
        assigned.filter(pl.col("created_at").dt.weekday() <= 5)
        .group_by("rep_id")
        .len()
        .join(company.reps, on="rep_id")
        .with_columns((pl.col("capacity_per_day") / (pl.col("len") / weekdays)).alias("ratio"))
    )
    ratio = load.group_by("team").agg(pl.col("ratio").mean())["ratio"]
    assert ratio.is_between(1.2, 2.3).all()
    evaluation = company.truth.evaluate(company.leads, company.decisions)
    capacity = company.reps["capacity_per_day"].to_numpy()[np.maximum(evaluation.rep, 0)]
    overloaded = (evaluation.rep >= 0) & (evaluation.load > capacity)
    assert 0.02 < overloaded.mean() < 0.4


def test_outcomes_are_consistent_funnels(company: SimulatedCompany) -> None:
    outcomes = company.outcomes
    assert outcomes["event_id"].is_unique().all()
    assert set(outcomes["event"]) <= set(EVENTS)
    assert outcomes["lead_id"].is_in(company.leads["lead_id"].implode()).all()
    assert (outcomes["occurred_at"] < company.now).all()
    assert ((outcomes["event"] == "converted") == outcomes["value"].is_not_null()).all()
    assert (outcomes["value"].drop_nulls() > 0).all()
    per_lead = outcomes.pivot(on="event", index="lead_id", values="occurred_at", aggregate_function="first")
    assert outcomes.group_by("lead_id", "event").len()["len"].max() == 1
    joined = per_lead.join(company.leads.select("lead_id", "created_at"), on="lead_id").join(
        company.decisions.select("lead_id", "team"), on="lead_id"
    )
    assert joined.filter(pl.col("converted").is_not_null() & pl.col("lost").is_not_null()).height == 0
    assert joined.filter(pl.col("converted").is_not_null() & pl.col("qualified").is_null()).height == 0
    assert joined.filter(pl.col("qualified").is_not_null() & pl.col("meeting").is_null()).height == 0
    assert joined.filter((pl.col("team") == "nurture") & pl.col("contacted").is_not_null()).height == 0
    assert joined.filter(pl.col("meeting") < pl.col("contacted")).height == 0
    assert joined.filter(pl.col("qualified") < pl.col("meeting")).height == 0
    assert joined.filter(pl.col("converted") < pl.col("qualified")).height == 0
    window = timedelta(days=company.config.conversion_window_days)
    terminal = pl.coalesce("converted", "lost")
    assert joined.filter(terminal > pl.col("created_at") + window).height == 0
    # Every matured lead has its terminal outcome; conversions take 7–90 days after first touch.
    matured = company.matured()
    assert matured["lead_id"].is_in(joined.filter(terminal.is_not_null())["lead_id"].implode()).all()
    touch = joined.select(pl.coalesce("contacted", "created_at").alias("touch"), "converted").drop_nulls()
    lag_days = (touch["converted"] - touch["touch"]).dt.total_hours() / 24
    assert lag_days.quantile(0.02) >= 6.9
    assert lag_days.max() <= 90.1


# -- the truth --------------------------------------------------------------------------------


def test_calibration_of_matured_conversions(large: SimulatedCompany) -> None:
    probability, converted = _matured_probabilities(large)
    assert probability.size > 60_000
    expected, observed = probability.sum(), converted.sum()
    assert abs(observed - expected) < 3 * np.sqrt((probability * (1 - probability)).sum())
    # Hosmer–Lemeshow over deciles of the true probability; the truth is not fitted: df = groups.
    edges = np.quantile(probability, np.linspace(0, 1, 11))
    group = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, 9)
    statistic = 0.0
    for g in range(10):
        p, y = probability[group == g], converted[group == g]
        variance = (p * (1 - p)).sum()
        statistic += (y.sum() - p.sum()) ** 2 / variance
        assert abs(y.sum() - p.sum()) < 3.5 * np.sqrt(variance), g
    assert stats.chi2.sf(statistic, df=10) > 0.001


def test_truth_auc_is_in_a_realistic_band(large: SimulatedCompany) -> None:
    probability, converted = _matured_probabilities(large)
    try:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(converted, probability))
    except ImportError:  # pragma: no cover - the rank formula gives the same number
        ranks = stats.rankdata(probability)
        positives = converted.sum()
        auc = (ranks[converted].sum() - positives * (positives + 1) / 2) / (positives * (converted.size - positives))
    assert 0.74 < auc < 0.84
    quality = large.truth.quality(large.matured())
    from_quality = stats.mannwhitneyu(quality[converted], quality[~converted]).statistic / (
        converted.sum() * (~converted).sum()
    )
    assert 0.72 < from_quality < 0.84
    assert 0.07 < converted.mean() < 0.14


def test_best_fit_router_beats_the_logging_policy(company: SimulatedCompany) -> None:
    truth, leads = company.truth, company.leads
    logged = truth.policy_value(leads, company.decisions)
    online = truth.policy_value(leads, truth.oracle_decisions(leads))
    hindsight = truth.policy_value(leads, truth.oracle_decisions(leads, priority="probability"))
    assert online.conversion_rate > 1.2 * logged.conversion_rate
    assert hindsight.conversion_rate >= online.conversion_rate
    assert online.expected_revenue > logged.expected_revenue
    # Greedy without capacity overloads the best reps and gives most of the gain back.
    greedy = truth.policy_value(leads, truth.oracle_decisions(leads, respect_capacity=False))
    assert greedy.conversion_rate < online.conversion_rate


def test_overload_reduces_value(company: SimulatedCompany) -> None:
    leads = company.leads
    everything_to_one = leads.select("lead_id").with_columns(
        pl.lit("enterprise").alias("team"), pl.lit("R001").alias("rep_id")
    )
    swamped = company.truth.policy_value(leads, everything_to_one)
    assert swamped.conversion_rate < 0.5 * company.truth.policy_value(leads, company.decisions).conversion_rate
    one_lead = leads.head(1)
    alone = company.truth.conversion_probability(one_lead, everything_to_one.head(1))
    with_crowd = company.truth.conversion_probability(leads, everything_to_one)[0]
    assert with_crowd < alone[0]


def test_an_absent_rep_delays_the_lead_and_lowers_conversion(company: SimulatedCompany) -> None:
    absence = company.absences.filter((pl.col("ends_on") - pl.col("starts_on")).dt.total_days() >= 6).row(0, named=True)
    rep = company.reps.filter(pl.col("rep_id") == absence["rep_id"]).row(0, named=True)
    during = company.leads.filter(pl.col("created_at").dt.date().is_between(absence["starts_on"], absence["ends_on"]))
    present = GroundTruth(
        reps=company.reps,
        rep_traits=company.truth.rep_traits,
        absences=company.absences.clear(),
        accounts=company.accounts,
        start=company.truth.start,
        now=company.truth.now,
    )
    # One lead a day, so the rep is never overloaded and only the wait differs.
    daily = during.unique(pl.col("created_at").dt.date(), keep="first", maintain_order=True)
    decisions = daily.select("lead_id").with_columns(
        pl.lit(rep["team"]).alias("team"), pl.lit(rep["rep_id"]).alias("rep_id")
    )
    away, here = company.truth.evaluate(daily, decisions), present.evaluate(daily, decisions)
    back = datetime.combine(absence["ends_on"], datetime.min.time(), UTC) + timedelta(days=1)
    waited = (back - daily["created_at"].max()).total_seconds() / 3600 - 15  # time zones: up to 15 h early
    assert (away.delay_hours >= waited).all()
    assert (away.delay_hours >= here.delay_hours).all()
    assert (away.delay_hours > here.delay_hours).any()
    # Every lead of the absence, each as if the rep had nothing else that day.
    column = company.truth.destinations()["rep_id"].to_list().index(rep["rep_id"])
    away_p = company.truth.conversion_matrix(during)[:, column]
    here_p = present.conversion_matrix(during)[:, column]
    assert (away_p <= here_p + 1e-12).all()
    ratio = away_p / here_p
    assert ratio.min() < 0.8
    assert ratio.mean() < 0.97


def test_nurture_touches_at_once_and_the_queue_waits(company: SimulatedCompany) -> None:
    leads = company.leads.head(500)
    for team, low, high in (("nurture", 0.0, 0.0), ("queue", 12.0, 24 * 5)):
        decisions = leads.select("lead_id").with_columns(
            pl.lit(team).alias("team"), pl.lit(None, pl.String).alias("rep_id")
        )
        delay = company.truth.first_touch_delay_hours(leads, decisions)
        assert (delay >= low).all(), team
        assert (delay <= high).all(), team


def test_best_destination_depends_on_the_lead(company: SimulatedCompany) -> None:
    truth, leads = company.truth, company.leads
    matrix = truth.conversion_matrix(leads)
    destinations = truth.destinations()
    assert matrix.shape == (leads.height, destinations.height)
    assert destinations.height == company.reps["active"].sum() + 2
    best = destinations.select(pl.all().gather(matrix.argmax(axis=1)))
    assert best.n_unique() >= 10
    by_size = best.with_columns(leads["employees"]).drop_nulls("employees")
    large_teams = by_size.filter(pl.col("employees") >= 5_000)["team"]
    tiny_teams = by_size.filter(pl.col("employees") <= 20)["team"]
    assert (large_teams == "enterprise").mean() > 0.6  # type: ignore[operator]
    assert (tiny_teams == "enterprise").mean() < 0.1  # type: ignore[operator]
    assert ((tiny_teams == "smb") | (tiny_teams == "nurture")).mean() > 0.5  # type: ignore[operator]
    quality = truth.quality(leads)
    weakest = quality < np.quantile(quality, 0.1)
    strongest = quality > np.quantile(quality, 0.9)
    nurture = (best["team"] == "nurture").to_numpy()
    assert nurture[weakest].mean() > 0.2
    assert nurture[strongest].mean() < 0.02


def test_conversion_matrix_agrees_with_single_lead_routing(company: SimulatedCompany) -> None:
    truth = company.truth
    destinations = truth.destinations()
    leads = company.leads.gather([0, 777, 4_242, 9_999, 15_000])
    matrix = truth.conversion_matrix(leads)
    for i in range(leads.height):
        lead = leads.slice(i, 1)
        for j, (team, rep_id) in enumerate(destinations.iter_rows()):
            decision = pl.DataFrame(
                {"lead_id": lead["lead_id"], "team": [team], "rep_id": [rep_id]}, schema_overrides={"rep_id": pl.String}
            )
            assert truth.conversion_probability(lead, decision)[0] == pytest.approx(matrix[i, j])


def test_decisions_join_on_lead_id_and_are_validated(company: SimulatedCompany) -> None:
    truth, leads, decisions = company.truth, company.leads.head(3_000), company.decisions.head(3_000)
    baseline = truth.conversion_probability(leads, decisions)
    shuffled = decisions.sample(fraction=1.0, shuffle=True, seed=1)
    assert np.array_equal(truth.conversion_probability(leads, shuffled), baseline)
    assert np.array_equal(truth.conversion_probability(leads, company.decisions), baseline)
    with pytest.raises(ValueError, match="no decision"):
        truth.conversion_probability(leads, decisions.tail(2_999))
    with pytest.raises(ValueError, match="more than one"):
        truth.conversion_probability(leads, pl.concat([decisions, decisions.head(1)]))
    with pytest.raises(ValueError, match="unknown rep_id"):
        truth.conversion_probability(leads, decisions.with_columns(pl.lit("R999").alias("rep_id")))
    value = truth.policy_value(leads, decisions)
    assert value.n_leads == 3_000
    assert value.expected_conversions == pytest.approx(baseline.sum())
    assert value.conversion_rate == pytest.approx(baseline.mean())
    revenue = truth.expected_revenue(leads, decisions)
    assert value.expected_revenue == pytest.approx(revenue.sum())
    assert (revenue > 0).all()


def test_outcome_values_follow_the_expected_deal_size(large: SimulatedCompany) -> None:
    evaluation = large.truth.evaluate(large.leads, large.decisions)
    won = large.outcomes.filter(pl.col("event") == "converted").join(
        pl.DataFrame({"lead_id": large.leads["lead_id"], "deal": evaluation.deal_size}), on="lead_id"
    )
    ratio = (won["value"] / won["deal"]).to_numpy()
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std() / np.sqrt(ratio.size)


# -- export -----------------------------------------------------------------------------------


def test_export_is_text_with_added_messy_rows(company: SimulatedCompany) -> None:
    files = export_files(company)
    assert set(files) == {"reps", "accounts", "leads", "decisions", "outcomes", "expected_rejects"}
    for name, frame in files.items():
        assert all(dtype == pl.String for dtype in frame.dtypes), name
    rejects = files["expected_rejects"]
    assert rejects.columns == ["entity", "id", "why"]
    for name, key in (("reps", "rep_id"), ("accounts", "account_id"), ("leads", "lead_id"),
                      ("decisions", "decision_id"), ("outcomes", "event_id")):  # fmt: skip
        clean = as_text(getattr(company, name))
        exported = files[name]
        bad = rejects.filter(pl.col("entity") == name)
        assert bad.height >= 1, name
        assert exported.height > clean.height, name
        # Clean rows all survive unchanged; the added rows carry fresh keys (or none).
        survivors = exported.filter(pl.col(key).is_in(clean[key].implode())).unique(maintain_order=True)
        assert survivors.sort(key).equals(clean.sort(key)), name
        assert not bad["id"].drop_nulls().is_in(clean[key].implode()).any(), name
    leads = files["leads"]
    assert leads.filter(pl.col("created_at") == "31/13/2025").height >= 1
    assert leads.filter(pl.col("lead_id").is_null()).height >= 1
    assert leads.filter(pl.col("employees").is_in(["n/a", "-50"])).height >= 2
    assert leads.filter(pl.col("lead_id").is_not_null()).is_duplicated().any()  # an exact duplicate row
    assert files["outcomes"].filter(pl.col("event") == "won").height >= 1
    assert (
        files["leads"]["created_at"]
        .drop_nulls()
        .head(3)
        .str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        .all()
    )
    assert files["reps"]["active"].is_in(["true", "false", "maybe"]).all()
    assert files["reps"]["regions"].str.contains(r"^[A-Z]+(\|[A-Z]+)*$").all()


def test_export_is_deterministic_and_can_be_clean(company: SimulatedCompany) -> None:
    first, second = export_files(company), export_files(company)
    for name in first:
        assert first[name].equals(second[name]), name
    assert not export_files(company, seed=99)["leads"].equals(first["leads"])
    clean = export_files(company, messy_share=0.0)
    assert clean["expected_rejects"].height == 0
    assert clean["leads"].equals(as_text(company.leads))


def test_export_rejects_match_the_canonical_validator(company: SimulatedCompany) -> None:
    canonical = pytest.importorskip("models.canonical")
    files = export_files(company)
    known: dict[str, pl.DataFrame] = {}
    for name in ("reps", "accounts", "leads", "decisions", "outcomes"):
        raw = files[name].with_row_index(canonical.ROW_NUMBER, offset=1)
        validated = canonical.validate(name, raw, known)
        known[name] = validated.rows
        expected = files["expected_rejects"].filter(pl.col("entity") == name)
        assert validated.rejects.height == expected.height, name
