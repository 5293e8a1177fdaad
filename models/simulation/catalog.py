"""Vocabularies of the simulated world: teams, regions, countries, industries, sources, titles.

Plain constants, shared by the world, the leads, the ground truth and the logging policy so
that every component speaks of the same categories in the same order.
"""

from __future__ import annotations

from typing import Final, Literal

TeamKind = Literal["sales", "nurture", "queue"]
Region = Literal["NA", "EMEA", "APAC", "LATAM"]

SALES_TEAMS: Final = ("enterprise", "mid-market", "smb")
TEAMS: Final = (*SALES_TEAMS, "nurture", "queue")
TEAM_KINDS: Final[dict[str, TeamKind]] = {
    "enterprise": "sales",
    "mid-market": "sales",
    "smb": "sales",
    "nurture": "nurture",
    "queue": "queue",
}
TEAM_DESCRIPTIONS: Final = {
    "enterprise": "Account executives for large companies and named strategic accounts",
    "mid-market": "Account executives for companies of 200-1,000 employees",
    "smb": "Inside sales for small businesses; the junior bench",
    "nurture": "Automated nurture program (email sequences); no reps, no capacity",
    "queue": "Unassigned queue, worked late by whoever is free",
}
TEAM_ACTIONS: Final = {
    "enterprise": "assign",
    "mid-market": "assign",
    "smb": "assign",
    "nurture": "nurture",
    "queue": "queue",
}

REGIONS: Final[tuple[Region, ...]] = ("NA", "EMEA", "APAC", "LATAM")
REGION_SHARES: Final = (0.46, 0.30, 0.14, 0.10)
REGION_TIMEZONES: Final = {
    # The queue is worked from one hub per region; its clock decides when queued leads are seen.
    "NA": "America/Chicago",
    "EMEA": "Europe/London",
    "APAC": "Asia/Singapore",
    "LATAM": "America/Sao_Paulo",
}
REP_TIMEZONES: Final = {
    "NA": ("America/New_York", "America/Chicago", "America/Los_Angeles"),
    "EMEA": ("Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Amsterdam"),
    "APAC": ("Australia/Sydney", "Asia/Singapore", "Asia/Tokyo"),
    "LATAM": ("America/Sao_Paulo", "America/Mexico_City", "America/Bogota"),
}
TIMEZONE_LANGUAGE: Final = {
    "Europe/Berlin": "de",
    "Europe/Paris": "fr",
    "Asia/Tokyo": "ja",
    "America/Sao_Paulo": "pt",
    "America/Mexico_City": "es",
    "America/Bogota": "es",
}

# (ISO code, region, timezone, language, share within the region)
COUNTRIES: Final = (
    ("US", "NA", "America/Chicago", "en", 0.86),
    ("CA", "NA", "America/Toronto", "en", 0.14),
    ("GB", "EMEA", "Europe/London", "en", 0.26),
    ("DE", "EMEA", "Europe/Berlin", "de", 0.20),
    ("FR", "EMEA", "Europe/Paris", "fr", 0.14),
    ("NL", "EMEA", "Europe/Amsterdam", "en", 0.09),
    ("ES", "EMEA", "Europe/Madrid", "es", 0.07),
    ("IT", "EMEA", "Europe/Rome", "it", 0.06),
    ("SE", "EMEA", "Europe/Stockholm", "en", 0.05),
    ("IE", "EMEA", "Europe/Dublin", "en", 0.04),
    ("AE", "EMEA", "Asia/Dubai", "en", 0.05),
    ("ZA", "EMEA", "Africa/Johannesburg", "en", 0.04),
    ("AU", "APAC", "Australia/Sydney", "en", 0.34),
    ("SG", "APAC", "Asia/Singapore", "en", 0.18),
    ("JP", "APAC", "Asia/Tokyo", "ja", 0.20),
    ("IN", "APAC", "Asia/Kolkata", "en", 0.20),
    ("NZ", "APAC", "Pacific/Auckland", "en", 0.08),
    ("BR", "LATAM", "America/Sao_Paulo", "pt", 0.40),
    ("MX", "LATAM", "America/Mexico_City", "es", 0.27),
    ("AR", "LATAM", "America/Argentina/Buenos_Aires", "es", 0.12),
    ("CO", "LATAM", "America/Bogota", "es", 0.12),
    ("CL", "LATAM", "America/Santiago", "es", 0.09),
)
LANGUAGES: Final = ("en", "de", "fr", "es", "pt", "ja", "it")

INDUSTRIES: Final = (
    "software",
    "fintech",
    "healthcare",
    "manufacturing",
    "retail",
    "education",
    "media",
    "logistics",
)
INDUSTRY_SHARES: Final = (0.22, 0.12, 0.13, 0.14, 0.12, 0.08, 0.09, 0.10)

SEGMENTS: Final = ("smb", "mid", "enterprise")
SEGMENT_SHARES: Final = (0.56, 0.29, 0.15)
# log-normal employees per segment: (median, sigma of the natural log)
SEGMENT_EMPLOYEES: Final = ((35.0, 0.95), (450.0, 0.55), (6_000.0, 0.9))

SOURCES: Final = (
    "web_form",
    "paid_search",
    "webinar",
    "content_download",
    "event",
    "referral",
    "partner",
    "outbound",
)
# Source mix per segment (rows follow SEGMENTS): big companies come more from events,
# partners and outbound, small ones from search and content.
SOURCE_SHARES: Final = (
    (0.30, 0.22, 0.11, 0.11, 0.05, 0.08, 0.05, 0.08),
    (0.27, 0.15, 0.13, 0.08, 0.09, 0.08, 0.08, 0.12),
    (0.20, 0.08, 0.12, 0.05, 0.15, 0.09, 0.12, 0.19),
)
# Buying intent a source brings on average: feeds the engagement signals a lead arrives with.
SOURCE_INTENT: Final = (0.35, -0.05, 0.0, -0.35, 0.1, 0.55, 0.3, -0.8)

SENIORITIES: Final = ("c_level", "vp", "director", "manager", "individual")
SENIORITY_SHARES: Final = (
    (0.18, 0.10, 0.15, 0.27, 0.30),
    (0.06, 0.12, 0.20, 0.30, 0.32),
    (0.02, 0.10, 0.22, 0.33, 0.33),
)
DEPARTMENTS: Final = ("Sales", "Marketing", "Operations", "Engineering", "Finance", "IT", "Revenue Operations")
C_LEVEL_TITLES: Final = ("CEO", "CTO", "CFO", "COO", "CMO", "CRO", "Founder")
INDIVIDUAL_TITLES: Final = ("Analyst", "Specialist", "Engineer", "Coordinator", "Consultant")

PRODUCTS: Final = ("platform", "analytics", "automation", "integrations")
PRODUCT_SHARES: Final = (
    (0.15, 0.30, 0.30, 0.25),
    (0.28, 0.30, 0.25, 0.17),
    (0.45, 0.25, 0.18, 0.12),
)

REP_SENIORITIES: Final = ("junior", "mid", "senior")

FREE_MAIL: Final = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com")

FIRST_NAMES: Final = (
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Mia",
    "Ethan",
    "Sofia",
    "Mateo",
    "Hannah",
    "Jonas",
    "Chloe",
    "Leon",
    "Yuki",
    "Haruto",
    "Priya",
    "Arjun",
    "Isabela",
    "Diego",
    "Camila",
    "Gabriel",
    "Amelia",
    "Oscar",
    "Freya",
    "Elias",
    "Zoe",
    "Felix",
    "Nora",
    "Samuel",
    "Aisha",
    "Omar",
    "Grace",
    "Daniel",
    "Lea",
    "Marco",
    "Julia",
    "Tomas",
    "Ines",
    "Kenji",
    "Maya",
    "Ravi",
    "Clara",
    "Hugo",
    "Alice",
    "Victor",
    "Lina",
    "Adam",
    "Sara",
    "David",
)
LAST_NAMES: Final = (
    "Smith",
    "Johnson",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Muller",
    "Schmidt",
    "Schneider",
    "Dubois",
    "Laurent",
    "Rossi",
    "Bianchi",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Patel",
    "Sharma",
    "Silva",
    "Santos",
    "Oliveira",
    "Hernandez",
    "Gonzalez",
    "Rodriguez",
    "Nguyen",
    "Kim",
    "Chen",
    "Wang",
    "Jansen",
    "De Vries",
    "Andersson",
    "Nilsson",
    "Murphy",
    "Kelly",
    "Walker",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Carter",
    "Mitchell",
    "Perez",
)
COMPANY_PREFIXES: Final = (
    "North",
    "Blue",
    "Bright",
    "Iron",
    "Silver",
    "Red",
    "Clear",
    "Swift",
    "Summit",
    "Cedar",
    "Atlas",
    "Nova",
    "Lumen",
    "Vertex",
    "Harbor",
    "Pioneer",
    "Quantum",
    "Crimson",
    "Granite",
    "Maple",
    "Orbit",
    "Prism",
    "Sage",
    "Terra",
    "Apex",
    "Beacon",
    "Cobalt",
    "Delta",
    "Echo",
    "Falcon",
    "Golden",
    "Horizon",
    "Indigo",
    "Juniper",
    "Keystone",
    "Lake",
    "Meridian",
    "Oak",
    "Polar",
    "Radiant",
)
COMPANY_STEMS: Final = (
    "wave",
    "peak",
    "stone",
    "field",
    "bridge",
    "point",
    "path",
    "line",
    "works",
    "forge",
    "gate",
    "leaf",
    "star",
    "river",
    "cloud",
    "core",
    "light",
    "vale",
    "crest",
    "spring",
)
COMPANY_TAILS: Final = (
    "Labs",
    "Systems",
    "Group",
    "Analytics",
    "Health",
    "Logistics",
    "Retail",
    "Media",
    "Capital",
    "Technologies",
    "Industries",
    "Partners",
    "Solutions",
    "Foods",
    "Learning",
)
TLDS: Final = (".com", ".io", ".co", ".net")
