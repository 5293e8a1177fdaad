"""A labelled lead-to-account matching fixture built from a list of real account names.

Given accounts (the shared CRM dataset's ``accounts.csv`` in the tests), it writes leads the way
people really type them — other case, legal forms added or dropped, abbreviations, punctuation,
one or two typos, a free-mail address instead of a company one, a corporate address with the
company left blank — plus distractors that must *not* match: invented companies, and real
account names extended into a different business ("Initech Dental"). Each lead carries the
account it truly belongs to (``true_account_id``, null for distractors) and the perturbation
(``variant``). Everything is drawn from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.quality.normalise import FREE_MAIL_DOMAINS, company_key, country_code

_SUFFIXES = (" Inc.", ", Inc", " LLC", " Ltd", " Ltd.", " GmbH", " Corp.", " Co.", " S.A.", " PLC", " Pty Ltd")
_ABBREVIATIONS = (("Corporation", "Corp."), ("Company", "Co"), (" & ", " and "), ("Capital", "Capital"))
_OTHER_BUSINESS = ("Dental", "Realty", "Bakery", "Plumbing", "Tours", "Law Firm", "Auto Repair", "Studio", "Farms")
_SYLLABLES = (
    "al", "bo", "cor", "da", "el", "fin", "gra", "hex", "is", "jo", "ka", "lum", "mar", "nex", "or", "pla",
    "qui", "ro", "sun", "tri", "ul", "vel", "wex", "xo", "yu", "zan", "tech", "tron", "ware", "soft",
)  # fmt: skip
_FREE = tuple(sorted(FREE_MAIL_DOMAINS))[:8]
_VARIANTS = ("case", "suffix", "abbreviation", "punctuation", "typo", "typo_suffix", "typos", "domain")


@dataclass(frozen=True)
class MatchingFixture:
    """Accounts (canonical columns) and leads labelled with ``true_account_id`` and ``variant``."""

    accounts: pl.DataFrame
    leads: pl.DataFrame


def crm_accounts(raw: pl.DataFrame) -> pl.DataFrame:
    """Canonical accounts from the CRM dataset's ``accounts.csv`` (``account``, ``sector``,
    ``office_location`` …): ids in file order, a web domain made from the name, alpha-2 countries."""
    return raw.select(
        pl.format("C{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(3)).alias("account_id"),
        pl.col("account").alias("name"),
        (pl.col("account").str.to_lowercase().str.replace_all(r"[^a-z0-9]", "") + ".com").alias("domain"),
        pl.format("R{}", (pl.int_range(pl.len()) % 12 + 1).cast(pl.String).str.zfill(2)).alias("owner_rep_id"),
        pl.col("sector").alias("industry"),
        pl.col("employees").cast(pl.Int64, strict=False).alias("employees"),
        country_code(pl.col("office_location")).alias("country"),
    )


def build_fixture(accounts: pl.DataFrame, *, seed: int, distractors_per_account: float = 5.0) -> MatchingFixture:
    """One lead per account and variant, plus ``distractors_per_account`` × accounts non-matches."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, str | None]] = []
    for account in accounts.iter_rows(named=True):
        for variant in _VARIANTS:
            rows.append(_perturbed_lead(rng, account, variant))
    names = set(accounts["name"].str.to_lowercase().to_list())
    for _ in range(round(distractors_per_account * accounts.height)):
        rows.append(_distractor(rng, accounts, names))
    order = rng.permutation(len(rows))
    leads = pl.DataFrame([rows[i] for i in order], schema=dict.fromkeys(rows[0], pl.String()), orient="row")
    leads = leads.with_columns(pl.format("F{}", pl.int_range(1, pl.len() + 1)).alias("lead_id"))
    return MatchingFixture(accounts=accounts, leads=leads)


def synthetic_accounts(n: int, *, seed: int) -> pl.DataFrame:
    """``n`` invented accounts with distinct names ("Velnexora Systems Inc."), domains, countries
    and owners — for benchmarks at sizes the CRM dataset does not reach."""
    rng = np.random.default_rng(seed)
    tails = ("", "", "", " Systems", " Labs", " Group", " Analytics", " Partners", " Media", " Capital")
    legal = ("", "", " Inc.", " LLC", " Ltd", " GmbH", " Corporation")
    names: dict[str, None] = {}
    while len(names) < n:
        names[_word(rng, int(rng.integers(3, 6))).capitalize() + _choice(rng, tails) + _choice(rng, legal)] = None
    frame = pl.DataFrame({"name": list(names)})
    countries = ("US", "GB", "DE", "FR", "NL", "ES", "CA", "AU", "JP", "BR")
    return frame.select(
        pl.format("A{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7)).alias("account_id"),
        pl.col("name"),
        (pl.col("name").str.to_lowercase().str.replace_all(r"[^a-z0-9]", "") + ".com").alias("domain"),
        pl.Series(rng.choice(countries, n)).alias("country"),
        pl.format("R{}", pl.Series(rng.integers(1, 200, n)).cast(pl.String)).alias("owner_rep_id"),
    )


def sample_leads(accounts: pl.DataFrame, n: int, *, seed: int, matching_share: float = 0.6) -> pl.DataFrame:
    """About ``n`` labelled leads: ``matching_share`` of them perturb a random account (any
    variant), the rest are distractors (less the few whose name is an account's)."""
    rng = np.random.default_rng(seed)
    names = set(accounts["name"].str.to_lowercase().to_list())
    picks = rng.integers(0, accounts.height, n)
    rows: list[dict[str, str | None]] = []
    for i in range(n):
        if rng.random() < matching_share:
            account = accounts.row(int(picks[i]), named=True)
            rows.append(_perturbed_lead(rng, account, _VARIANTS[int(rng.integers(len(_VARIANTS)))]))
        else:
            rows.append(_distractor(rng, accounts, names))
    leads = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String()), orient="row")
    # In a dense invented namespace a "distractor" can come out as an account's very name; the
    # same normalised name is the same company, so such a label would be wrong: drop the lead.
    keys = accounts.select(company_key(pl.col("name")).alias("_key"))["_key"].drop_nulls().unique()
    collides = pl.col("true_account_id").is_null() & company_key(pl.col("company")).is_in(keys.implode())
    leads = leads.filter(~collides.fill_null(False))
    return leads.with_columns(pl.format("B{}", pl.int_range(1, pl.len() + 1)).alias("lead_id"))


def _perturbed_lead(rng: np.random.Generator, account: dict[str, object], variant: str) -> dict[str, str | None]:
    name, domain = str(account["name"]), str(account["domain"])
    kept = rng.random() < 0.85  # drawn for every lead, so the stream does not depend on the data
    country = str(account["country"]) if kept and account["country"] is not None else None
    person = f"{_word(rng, 2)}.{_word(rng, 2)}"
    email = f"{person}@{_FREE[int(rng.integers(len(_FREE)))]}"
    company: str | None = name
    if variant == "case":
        company = name.upper() if rng.random() < 0.5 else name.lower()
    elif variant == "suffix":
        company = name + _choice(rng, _SUFFIXES)
    elif variant == "abbreviation":
        for long, short in _ABBREVIATIONS:
            company = company.replace(long, short) if company else company
        if company == name:
            company = "The " + name if rng.random() < 0.5 else name + " Company"
    elif variant == "punctuation":
        spaced = name.replace("-", " ").replace(" & ", "&")
        company = spaced if spaced != name else name.replace(" ", "") if " " in name else name + "."
    elif variant == "typo":
        company = _typo(rng, name)
    elif variant == "typo_suffix":
        company = _typo(rng, name).lower() + _choice(rng, _SUFFIXES)
    elif variant == "typos":
        # About one error per ten letters: long names get two.
        for _ in range(max(1, round(sum(ch.isalpha() for ch in name) / 10))):
            company = _typo(rng, company or name)
    elif variant == "domain":
        email = f"{person}@{domain}"
        company = None if rng.random() < 0.5 else _typo(rng, name)
    return {"email": email, "company": company, "country": country, "true_account_id": str(account["account_id"]),
            "variant": variant}  # fmt: skip


def _distractor(rng: np.random.Generator, accounts: pl.DataFrame, names: set[str]) -> dict[str, str | None]:
    if rng.random() < 0.3:
        # A real account's first word in another business: similar text, another company.
        base = str(accounts["name"][int(rng.integers(accounts.height))]).split(" ")[0]
        company = f"{base} {_choice(rng, _OTHER_BUSINESS)}"
        variant = "distractor_extended"
    else:
        company = _word(rng, int(rng.integers(2, 4))).capitalize()
        while company.lower() in names:
            company = _word(rng, int(rng.integers(2, 4))).capitalize()
        company += _choice(rng, ("", "", " Inc.", " Group", " Labs"))
        variant = "distractor"
    own = company.lower().replace(" ", "").replace(".", "") + ".net"
    mailbox = own if rng.random() < 0.5 else _FREE[int(rng.integers(len(_FREE)))]
    country = _choice(rng, ("US", "GB", "DE", "FR", None)) or None
    return {"email": f"{_word(rng, 2)}@{mailbox}", "company": company, "country": country,
            "true_account_id": None, "variant": variant}  # fmt: skip


@dataclass(frozen=True)
class MatchQuality:
    """Precision and recall of matches against the fixture's labels."""

    precision: float
    """Share of returned matches that name the true account (distractors matched count against it)."""
    recall: float
    """Share of leads with a true account that were matched to it."""
    matched: int
    correct: int
    positives: int


def score_matches(labelled: pl.DataFrame) -> MatchQuality:
    """Compare ``matched_account_id`` with ``true_account_id`` (one row per lead)."""
    matched = labelled.filter(pl.col("matched_account_id").is_not_null())
    correct = matched.filter(pl.col("matched_account_id") == pl.col("true_account_id")).height
    positives = labelled.filter(pl.col("true_account_id").is_not_null()).height
    return MatchQuality(
        precision=correct / matched.height if matched.height else 1.0,
        recall=correct / positives if positives else 1.0,
        matched=matched.height,
        correct=correct,
        positives=positives,
    )


def _typo(rng: np.random.Generator, name: str) -> str:
    """One random keystroke error (substitution, deletion, insertion or transposition) in a letter."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    if len(letters) < 2:
        return name
    i = letters[int(rng.integers(len(letters)))]
    kind = int(rng.integers(4))
    new = chr(ord("a") + int(rng.integers(26)))
    if kind == 0:
        return name[:i] + new + name[i + 1 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + new + name[i:]
    j = min(i + 1, len(name) - 1)
    return name[:i] + name[j] + name[i] + name[j + 1 :] if j > i else name[: i - 1] + name[i] + name[i - 1]


def _word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(_SYLLABLES[int(rng.integers(len(_SYLLABLES)))] for _ in range(syllables))


def _choice(rng: np.random.Generator, options: tuple[str | None, ...]) -> str:
    picked = options[int(rng.integers(len(options)))]
    return picked or ""
