"""Lead data quality before routing: account matching, duplicates, enrichment merge, flags.

Pure functions over polars frames (plus rapidfuzz for string similarity); each serves a batch and
one lead with one semantics. I/O (the warehouse, the enrichment provider) lives in
``pipelines.quality`` and ``pipelines.enrichment``.
"""

from models.quality.duplicates import DuplicateConfig, DuplicateMatch, find_duplicate, find_duplicates
from models.quality.enrich import ENRICHABLE, empty_offers, fill_missing
from models.quality.flags import FLAGS, QualityReport, check_lead, quality_flags
from models.quality.matching import AccountIndex, AccountMatch, MatchConfig, MatchMethod
from models.quality.normalise import FREE_MAIL_DOMAINS, company_features, company_key, email_key, phone_key

__all__ = [
    "ENRICHABLE",
    "FLAGS",
    "FREE_MAIL_DOMAINS",
    "AccountIndex",
    "AccountMatch",
    "DuplicateConfig",
    "DuplicateMatch",
    "MatchConfig",
    "MatchMethod",
    "QualityReport",
    "check_lead",
    "company_features",
    "company_key",
    "email_key",
    "empty_offers",
    "fill_missing",
    "find_duplicate",
    "find_duplicates",
    "phone_key",
    "quality_flags",
]
