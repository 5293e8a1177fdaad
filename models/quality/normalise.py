"""Normalisation of the fields that identify a company or a person, as polars expressions.

Every check in this package (matching, duplicates, flags) compares *normalised* values, and the
batch path and the single-lead path both run these expressions (a single lead is a one-row
frame), so there is exactly one definition of "the same company" or "the same phone".
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import OSA

from models.quality.countries import COUNTRY_ALIASES, ISO_ALPHA2

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
     "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com",
     "proton.me", "protonmail.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "mail.com", "mail.ru",
     "yandex.ru", "yandex.com", "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com", "hey.com",
     "t-online.de", "orange.fr", "free.fr", "libero.it", "seznam.cz", "naver.com", "rediffmail.com"}
)  # fmt: skip
"""Consumer mailboxes: their domain says nothing about the lead's employer."""

DISPOSABLE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {"mailinator.com", "guerrillamail.com", "10minutemail.com", "tempmail.com", "temp-mail.org",
     "yopmail.com", "trashmail.com", "sharklasers.com", "getnada.com", "dispostable.com"}
)  # fmt: skip
"""Throw-away mailboxes: a lead from one is rarely reachable."""

ABBREVIATIONS: dict[str, str] = {
    "corporation": "corp", "incorporated": "inc", "company": "co", "limited": "ltd",
    "international": "intl", "brothers": "bros", "manufacturing": "mfg", "associates": "assoc",
    "technologies": "tech", "technology": "tech", "laboratories": "labs", "laboratory": "lab",
    "holdings": "holding", "services": "svc", "service": "svc", "industries": "ind",
    "&": "and", "und": "and", "et": "and",
}  # fmt: skip
"""Long and short forms of a token are compared in their short form."""

LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {"inc", "corp", "co", "ltd", "llc", "llp", "lp", "plc", "gmbh", "mbh", "ag", "kg", "ug", "sa", "sas",
     "sarl", "srl", "spa", "bv", "nv", "oy", "oyj", "ab", "as", "asa", "aps", "pty", "pte", "kk", "se",
     "bhd", "sdn", "sl", "nl", "cv", "ltda", "and"}
)  # fmt: skip
"""Trailing tokens that name a legal form, not the company (``and`` closes "Gekko & Co")."""

GENERIC_WORDS: frozenset[str] = frozenset(
    {"labs", "lab", "systems", "group", "analytics", "health", "healthcare", "logistics", "retail", "media",
     "capital", "tech", "ind", "partners", "solutions", "foods", "food", "learning", "software", "consulting",
     "svc", "holding", "global", "intl", "enterprises", "ventures", "digital", "networks", "energy",
     "financial", "finance", "insurance", "pharma", "motors", "marketing", "design", "studio", "data",
     "cloud", "security", "management", "trading", "products", "communications", "electronics",
     "engineering", "research", "resources", "investments", "properties", "realty", "bank", "agency"}
)  # fmt: skip
"""Business words many companies share: "Oakstar Labs" and "Lakestar Labs" differ in "oakstar"."""

_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = rf"^{_LOCAL}(\.{_LOCAL})*@([a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,24}}$"


def company_tokens(name: pl.Expr) -> pl.Expr:
    """Lower-case ASCII word tokens of a company name, abbreviations in their short form.

    Accents are folded ("Café" → "cafe"), dots and apostrophes vanish so "S.A." is one token
    and "Macy's" stays one word, and every other punctuation mark separates words.
    """
    folded = name.str.to_lowercase().str.normalize("NFKD").str.replace_all(r"\p{M}", "")
    cleaned = folded.str.replace_all(r"[.'’`]", "").str.replace_all("&", " & ")
    tokens = cleaned.str.extract_all(r"[a-z0-9]+|&")
    return tokens.list.eval(pl.element().replace(ABBREVIATIONS))


def company_key(name: pl.Expr) -> pl.Expr:
    """The company's identifying key: tokens without a leading "the" and trailing legal forms,
    joined without spaces ("The Acme Corporation, Inc." → "acme"); a name that is nothing but
    those words keeps them ("The Co"); null when the name has no letters or digits."""
    return key_from_tokens(company_tokens(name))


def company_full_key(name: pl.Expr) -> pl.Expr:
    """All tokens joined without spaces: catches a name whose legal form is part of the brand
    ("Zen Corporation" vs "Zencorporation")."""
    return _join_or_null(company_tokens(name))


def key_from_tokens(tokens: pl.Expr) -> pl.Expr:
    """:func:`company_key` from :func:`company_tokens` output."""
    position = pl.int_range(pl.len())
    legal = pl.element().is_in(sorted(LEGAL_SUFFIXES)).cast(pl.Int8)
    # A token belongs to the trailing run of legal forms when it and every later token are legal.
    trailing = legal.reverse().cum_min().reverse() == 1
    leading_the = (position == 0) & (pl.element() == "the") & (pl.len() > 1)
    kept = tokens.list.eval(pl.element().filter(~(trailing & (position > 0)) & ~leading_the))
    return pl.coalesce(_join_or_null(kept), _join_or_null(tokens))


def core_from_tokens(tokens: pl.Expr) -> pl.Expr:
    """The distinctive words only: without legal forms, "the" and generic business words
    ("Oakstar Labs" → "oakstar"); null when nothing distinctive is left."""
    return _join_or_null(_core_tokens(tokens))


def _core_tokens(tokens: pl.Expr) -> pl.Expr:
    common = sorted(LEGAL_SUFFIXES | GENERIC_WORDS | {"the"})
    return tokens.list.eval(pl.element().filter(~pl.element().is_in(common)))


def company_compact(name: pl.Expr) -> pl.Expr:
    """The name's letters and digits only, as typed (no abbreviation mapping): a typo inside a
    long form ("Corporatiwn") is still close to the long form."""
    folded = name.str.to_lowercase().str.normalize("NFKD").str.replace_all(r"[^a-z0-9]", "")
    return pl.when(folded.str.len_chars() > 0).then(folded)


def company_features(names: pl.Series) -> pl.DataFrame:
    """Every form of each name that matching compares: ``key``, ``full``, ``core``,
    ``core_head`` and ``raw`` (:func:`company_compact`). Unlike the plain expressions, a
    misspelt legal form or generic word ("Corporatiwn", "Sytems") is corrected first, so it is
    stripped like the right one."""
    text = names.cast(pl.String)
    tokens = _correct_common_words(pl.DataFrame({"name": text}).select(company_tokens(pl.col("name")))["name"])
    core = pl.col("c")
    return (
        pl.DataFrame({"t": tokens, "name": text})
        .with_columns(_core_tokens(pl.col("t")).alias("c"))
        .select(
            key_from_tokens(pl.col("t")).alias("key"),
            _join_or_null(pl.col("t")).alias("full"),
            _join_or_null(core).alias("core"),
            # The core without its last word: a stray or garbled trailing word ("Kaveljowex Lbs")
            # should not hide that the distinctive part is the same.
            pl.when(core.list.len() > 1).then(_join_or_null(core.list.head(core.list.len() - 1))).alias("core_head"),
            company_compact(pl.col("name")).alias("raw"),
        )
    )


_VOCABULARY: tuple[str, ...] = tuple(sorted(LEGAL_SUFFIXES | GENERIC_WORDS | set(ABBREVIATIONS)))
_CORRECTION_MIN_LENGTH = 6  # shorter words are too easily another word ("medic" is not "media")
_CORRECTION_SIMILARITY = 0.83  # one edit from six letters on, two from twelve


def _correct_common_words(tokens: pl.Series) -> pl.Series:
    """Replace tokens one or two typos away from a legal form or generic word by that word."""
    unique = tokens.explode().drop_nulls().unique()
    unknown = unique.filter((unique.str.len_chars() >= _CORRECTION_MIN_LENGTH) & ~unique.is_in(_VOCABULARY))
    if unknown.is_empty():
        return tokens
    words = unknown.to_list()
    scores = process.cdist(words, _VOCABULARY, scorer=OSA.normalized_similarity, dtype=np.float32, workers=1)
    best = scores.argmax(axis=1)
    hit = scores[np.arange(len(words)), best] >= _CORRECTION_SIMILARITY
    mapping = {words[i]: _VOCABULARY[best[i]] for i in np.flatnonzero(hit)}
    if not mapping:
        return tokens
    return tokens.list.eval(pl.element().replace(mapping).replace(ABBREVIATIONS))


def _join_or_null(tokens: pl.Expr) -> pl.Expr:
    joined = tokens.list.join("")
    return pl.when(joined.str.len_chars() > 0).then(joined)


def normalise_domain(domain: pl.Expr) -> pl.Expr:
    """A web domain from a URL or host as people type it ("https://www.Acme.com/about" →
    "acme.com"); null when it does not look like a domain."""
    host = (
        domain.str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^[a-z][a-z0-9+.-]*://", "")
        .str.replace(r"^[^@/]*@", "")
        .str.replace(r"[/?#:].*$", "")
        .str.replace(r"^www\d*\.", "")
        .str.strip_chars_end(".")
    )
    return pl.when(host.str.contains(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")).then(host)


def email_domain(email: pl.Expr) -> pl.Expr:
    """The domain part of an e-mail address, normalised; null without an ``@``."""
    text = email.str.strip_chars().str.to_lowercase()
    return pl.when(text.str.contains("@")).then(normalise_domain(text.str.extract(r"@([^@]+)$")))


def is_free_mail(domain: pl.Expr) -> pl.Expr:
    """Whether a (normalised) domain is a consumer mailbox."""
    return domain.is_in(sorted(FREE_MAIL_DOMAINS))


def is_valid_email(email: pl.Expr) -> pl.Expr:
    """Syntactic validity of an address (null when missing)."""
    return email.str.strip_chars().str.to_lowercase().str.contains(_EMAIL)


def email_key(email: pl.Expr) -> pl.Expr:
    """One key per mailbox: lower case, without a ``+tag``, and for Gmail without dots
    ("J.Doe+news@GoogleMail.com" → "jdoe@gmail.com"); null when not a valid address."""
    text = email.str.strip_chars().str.to_lowercase()
    local = text.str.extract(r"^([^@]+)@").str.replace(r"\+.*$", "")
    domain = email_domain(text).replace({"googlemail.com": "gmail.com"})
    local = pl.when(domain == "gmail.com").then(local.str.replace_all(".", "", literal=True)).otherwise(local)
    return pl.when(is_valid_email(text)).then(pl.concat_str([local, pl.lit("@"), domain]))


def phone_key(phone: pl.Expr, *, significant_digits: int = 9) -> pl.Expr:
    """The last ``significant_digits`` digits of a phone number: "+1 (415) 555-0100" and
    "415.555.0100" agree without knowing every country's trunk prefix; null under 7 digits."""
    digits = phone.cast(pl.String).str.replace_all(r"\D", "")
    return pl.when(digits.str.len_chars() >= 7).then(digits.str.slice(-significant_digits))


def person_key(name: pl.Expr) -> pl.Expr:
    """A person's name as lower-case letters only ("Anne-Marie O'Neil" → "annemarieoneil")."""
    letters = name.str.to_lowercase().str.normalize("NFKD").str.replace_all(r"[^a-z]", "")
    return pl.when(letters.str.len_chars() >= 2).then(letters)


def country_code(country: pl.Expr) -> pl.Expr:
    """An ISO alpha-2 code from a code or a common name; null when it cannot be placed."""
    text = country.str.strip_chars()
    lowered = text.str.to_lowercase().str.replace_all(r"[.]", "")
    upper = text.str.to_uppercase()
    by_alias = lowered.replace_strict(COUNTRY_ALIASES, default=None, return_dtype=pl.String)
    return pl.coalesce(by_alias, pl.when(upper.is_in(sorted(ISO_ALPHA2))).then(upper))
