"""ISO 3166-1 alpha-2 country codes and the common ways people write a country instead.

A lead's ``country`` is canonical as an alpha-2 code (the simulated company and the mapping
files use them); forms and CRM exports often carry names ("United States", "UK"), so the
quality stage maps the usual aliases to codes and flags anything it cannot place.
"""

from __future__ import annotations

ISO_ALPHA2: frozenset[str] = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
    ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU
    LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK
    SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA
    VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()  # noqa: SIM905 (a block reads better than 249 quoted codes)
)
"""The 249 officially assigned codes."""

COUNTRY_ALIASES: dict[str, str] = {
    "united states": "US", "united states of america": "US", "usa": "US", "us": "US", "america": "US",
    "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "canada": "CA", "germany": "DE", "deutschland": "DE", "france": "FR",
    "netherlands": "NL", "the netherlands": "NL", "holland": "NL", "spain": "ES", "espana": "ES",
    "italy": "IT", "italia": "IT", "sweden": "SE", "ireland": "IE", "united arab emirates": "AE",
    "uae": "AE", "south africa": "ZA", "belgium": "BE", "brazil": "BR", "brasil": "BR", "china": "CN",
    "japan": "JP", "jordan": "JO", "kenya": "KE", "korea": "KR", "south korea": "KR",
    "republic of korea": "KR", "norway": "NO", "panama": "PA", "philippines": "PH", "philipines": "PH",
    "poland": "PL", "romania": "RO", "australia": "AU", "new zealand": "NZ", "india": "IN",
    "singapore": "SG", "mexico": "MX", "switzerland": "CH", "austria": "AT", "denmark": "DK",
    "finland": "FI", "portugal": "PT", "israel": "IL", "argentina": "AR", "chile": "CL",
    "colombia": "CO", "hong kong": "HK", "taiwan": "TW", "turkey": "TR", "turkiye": "TR",
}  # fmt: skip
"""Lower-case names and abbreviations → alpha-2 (checked before the code list, so "us" maps)."""
