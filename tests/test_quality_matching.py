"""Lead-to-account matching: normalisation, the labelled CRM fixture, batch = one lead."""

from __future__ import annotations

import polars as pl
import pytest

from models.quality import normalise
from models.quality.fixture import build_fixture, crm_accounts, score_matches
from models.quality.matching import AccountIndex, MatchConfig
from models.simulation import SimulationConfig, simulate_company
from tests.conftest import SHARED_DATA

CRM_ACCOUNTS = SHARED_DATA / "crm_sales_opportunities" / "accounts.csv"


@pytest.fixture(scope="module")
def accounts() -> pl.DataFrame:
    if not CRM_ACCOUNTS.is_file():
        pytest.skip(f"shared CRM dataset not found at {CRM_ACCOUNTS}")
    return crm_accounts(pl.read_csv(CRM_ACCOUNTS, infer_schema_length=0))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("The Acme Corporation, Inc.", "acme"),
        ("ACME corp.", "acme"),
        ("Gekko & Co", "gekko"),
        ("Gekko and Company", "gekko"),
        ("Müller GmbH & Co. KG", "muller"),
        ("Green-Plus", "greenplus"),
        ("The Co", "theco"),
        ("  ", None),
    ],
)
def test_company_key_ignores_legal_forms_punctuation_case_abbreviations(name: str, key: str | None) -> None:
    assert pl.select(normalise.company_key(pl.lit(name, pl.String))).item() == key


def test_company_features_correct_misspelt_legal_forms_and_isolate_the_distinctive_words() -> None:
    features = normalise.company_features(pl.Series(["Umbrella Corporatiwn", "Oakstar Sytems", "Labs"]))
    assert features["key"].to_list() == ["umbrella", "oakstarsystems", "labs"]
    assert features["core"].to_list() == ["umbrella", "oakstar", None]


def test_domains_and_free_mail() -> None:
    frame = pl.DataFrame({"e": ["Jo@Sub.Acme.COM", "x@gmail.com", "not-an-email", None]})
    domains = frame.select(normalise.email_domain(pl.col("e")))["e"].to_list()
    assert domains == ["sub.acme.com", "gmail.com", None, None]
    assert pl.select(normalise.normalise_domain(pl.lit("https://www.Acme.com/about?x=1"))).item() == "acme.com"
    assert pl.select(normalise.is_free_mail(pl.lit("gmail.com"))).item() is True


def test_precision_and_recall_on_the_labelled_crm_fixture(accounts: pl.DataFrame) -> None:
    """Targets: precision ≥ 0.98 at recall ≥ 0.90 (the threshold was chosen on seeds 1–3;
    these seeds were not used for tuning)."""
    index = AccountIndex(accounts)
    for seed in (7, 11):
        fixture = build_fixture(accounts, seed=seed)
        assert fixture.leads.height == 85 * 8 + 425
        quality = score_matches(index.match(fixture.leads))
        print(f"seed {seed}: precision {quality.precision:.4f} recall {quality.recall:.4f}")
        assert quality.precision >= 0.98
        assert quality.recall >= 0.90


def test_every_perturbation_is_mostly_recovered_and_distractors_stay_unmatched(accounts: pl.DataFrame) -> None:
    fixture = build_fixture(accounts, seed=7)
    result = AccountIndex(accounts).match(fixture.leads)
    per_variant = result.group_by("variant").agg(
        (pl.col("matched_account_id") == pl.col("true_account_id")).fill_null(False).mean().alias("recall"),
        pl.col("matched_account_id").is_not_null().mean().alias("matched"),
    )
    rates = {v: (r, m) for v, r, m in per_variant.iter_rows()}
    for variant in ("case", "suffix", "abbreviation", "domain"):
        assert rates[variant][0] == 1.0, variant
    for variant in ("punctuation", "typo", "typo_suffix", "typos"):
        assert rates[variant][0] >= 0.85, variant
    assert rates["distractor"][1] <= 0.01
    assert rates["distractor_extended"][1] == 0.0


def test_batch_and_single_lead_agree_on_every_fixture_lead(accounts: pl.DataFrame) -> None:
    fixture = build_fixture(accounts, seed=3)
    index = AccountIndex(accounts)
    batch = index.match(fixture.leads)
    columns = ["matched_account_id", "match_method", "match_confidence", "matched_owner_rep_id", "match_reason"]
    singles = [index.match_one(lead) for lead in fixture.leads.iter_rows(named=True)]
    assert batch.select(columns).rows() == [
        (m.account_id, m.method, m.confidence, m.owner_rep_id, m.reason) for m in singles
    ]


def test_methods_confidence_and_tie_breaks() -> None:
    accounts = pl.DataFrame(
        {
            "account_id": ["A1", "A2", "A3", "A4"],
            "name": ["Acme Corporation", "Acme Inc", "Brightwave Labs", "Brightwave Labs GmbH"],
            "domain": ["acme.com", None, "brightwave.io", "brightwave.de"],
            "country": ["US", "DE", "US", "DE"],
            "owner_rep_id": ["R1", "R2", "R3", "R4"],
        }
    )
    index = AccountIndex(accounts)
    given = index.match_one({"account_id": "A3", "company": "Acme"})
    assert (given.account_id, given.method, given.confidence) == ("A3", "given", 1.0)
    by_domain = index.match_one({"email": "jo@acme.com", "company": "Something Else"})
    assert (by_domain.account_id, by_domain.method, by_domain.owner_rep_id) == ("A1", "domain", "R1")
    # Two accounts normalise to "acme": the lead's country decides; without it, it is a tie.
    assert index.match_one({"company": "ACME, Inc.", "country": "DE"}).account_id == "A2"
    tie = index.match_one({"company": "ACME, Inc.", "email": "x@gmail.com"})
    assert (tie.account_id, tie.method, tie.confidence) == (None, "ambiguous", 0.0)
    typo = index.match_one({"company": "Brigthwave Labs", "country": "US", "email": "y@gmail.com"})
    assert (typo.account_id, typo.method) == ("A3", "fuzzy") and 0.8 < typo.confidence < 0.95
    # Fuzzy names do not override a company domain that says otherwise.
    assert index.match_one({"company": "Brigthwave Labs", "email": "y@brigthwave.net"}).method == "none"
    assert index.match_one({}).method == "none"


def test_simulated_leads_without_account_ids_find_their_accounts() -> None:
    """Ground truth from the simulated company: hide the account ids and match them back."""
    company = simulate_company(SimulationConfig(n_leads=3000, seed=5))
    leads = company.leads.select("lead_id", "email", "company", "country", pl.col("account_id").alias("truth"))
    result = AccountIndex(company.accounts).match(leads)
    matched = result.filter(pl.col("matched_account_id").is_not_null())
    correct = matched.filter(pl.col("matched_account_id") == pl.col("truth")).height
    precision = correct / matched.height
    recall = correct / result.filter(pl.col("truth").is_not_null()).height
    print(f"simulated company: precision {precision:.4f} recall {recall:.4f}")
    assert precision >= 0.99 and recall >= 0.95


def test_sizes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.quality.matching as matching

    monkeypatch.setattr(matching, "MAX_ACCOUNTS", 1)
    with pytest.raises(ValueError, match="exceed the limit"):
        AccountIndex(pl.DataFrame({"account_id": ["a", "b"], "name": ["A", "B"]}), MatchConfig())
