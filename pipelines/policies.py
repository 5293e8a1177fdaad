"""Policy files and their versions in the workspace, and the roster they route into.

A policy is a YAML file. Registering it stores its text with a version number and a content hash
in the warehouse ``policies`` table (and a copy in ``settings.policies_dir``); registering the same
content again returns the existing version. The hash is over the parsed content, so comments and
formatting do not make a new version.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from models.policy import MAX_SPEC_BYTES, PolicySpec, PolicySpecError, Roster, ValidationReport, parse_policy
from models.policy import validate_policy as validate_spec
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame, scalar

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "policies"
"""The policies that ship with leadroute (the seed workflow and the baselines)."""


class PolicyNotFoundError(LookupError):
    """No file, registered policy or shipped policy by that name."""


@dataclass(frozen=True)
class PolicySource:
    """A spec with where it came from: ``text`` as written, ``raw`` as loaded, ``spec`` parsed."""

    text: str
    raw: dict[str, Any]
    spec: PolicySpec
    origin: str
    version: int | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(self.raw)


@dataclass(frozen=True)
class StoredPolicy:
    name: str
    version: int
    content_hash: str
    created_at: datetime
    created_by: str | None
    created: bool = False  # this call registered it (False: identical content was already there)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "created": self.created,
        }


def content_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def parse_text(text: str, origin: str) -> PolicySource:
    """Load YAML text safely (``safe_load``: no tags, no code) and parse it; size-limited."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise PolicySpecError([f"{origin}: the spec is larger than {MAX_SPEC_BYTES // 1000} kB"])
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "not YAML"
        raise PolicySpecError([f"{origin}: not valid YAML ({first})"]) from None
    if not isinstance(raw, dict):
        raise PolicySpecError([f"{origin}: a policy is a YAML mapping with name, rules and fallback"])
    try:
        spec = parse_policy(raw)
    except PolicySpecError as exc:
        raise PolicySpecError([f"{origin}: {p}" for p in exc.problems]) from None
    return PolicySource(text=text, raw=raw, spec=spec, origin=origin)


def read_file(path: Path) -> PolicySource:
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise PolicySpecError([f"{path.name}: the spec is larger than {MAX_SPEC_BYTES // 1000} kB"])
    return parse_text(path.read_text(encoding="utf-8"), path.name)


def resolve(settings: Settings, ref: str) -> PolicySource:
    """A policy by file path, ``name`` (latest registered) or ``name@version``; a name that is not
    registered falls back to the shipped policy of that name."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return read_file(path)
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise PolicyNotFoundError(f"policy '{ref}': the version after '@' must be a number")
    if settings.warehouse_path.exists():
        with Warehouse(settings.warehouse_path).connect() as con:
            sql = "SELECT spec, version FROM policies WHERE name = ?"
            params: list[object] = [name]
            if version:
                sql += " AND version = ?"
                params.append(int(version))
            row = con.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchall()
        if row:
            source = parse_text(str(row[0][0]), f"{name}@v{row[0][1]}")
            return PolicySource(source.text, source.raw, source.spec, source.origin, int(row[0][1]))
    shipped = SHIPPED_DIR / f"{name}.yaml"
    if not version and shipped.exists():
        return read_file(shipped)
    raise PolicyNotFoundError(f"no policy '{ref}': not a file, not registered, not shipped")


def register(settings: Settings, source: PolicySource, created_by: str | None = None) -> StoredPolicy:
    """Store ``source`` as the next version of its policy (idempotent for identical content)."""
    digest = source.content_hash
    name = source.spec.name
    who = created_by or _user()
    with Warehouse(settings.warehouse_path).connect() as con:
        con.begin()
        existing = con.execute(
            "SELECT version, created_at, created_by FROM policies WHERE name = ? AND content_hash = ?"
            " ORDER BY version DESC LIMIT 1",
            [name, digest],
        ).fetchall()
        if existing:
            con.rollback()
            version, at, by = existing[0]
            return StoredPolicy(name, int(version), digest, at, by, created=False)
        version = int(scalar(con, "SELECT coalesce(max(version), 0) + 1 FROM policies WHERE name = ?", [name]))
        con.execute(
            "INSERT INTO policies (name, version, content_hash, spec, created_at, created_by)"
            " VALUES (?, ?, ?, ?, now(), ?)",
            [name, version, digest, source.text, who],
        )
        at = scalar(con, "SELECT created_at FROM policies WHERE name = ? AND version = ?", [name, version])
        con.commit()
    settings.policies_dir.mkdir(parents=True, exist_ok=True)
    (settings.policies_dir / f"{name}@v{version}.yaml").write_text(source.text, encoding="utf-8")
    return StoredPolicy(name, version, digest, at, who, created=True)


def list_policies(settings: Settings) -> pl.DataFrame:
    """Every registered version: ``name, version, content_hash, created_at, created_by``."""
    with Warehouse(settings.warehouse_path).connect() as con:
        return query_frame(
            con, "SELECT name, version, content_hash, created_at, created_by FROM policies ORDER BY name, version"
        )


def load_roster(settings: Settings) -> Roster:
    """The workspace's teams, reps (extras unpacked), absences and account owners."""
    with Warehouse(settings.warehouse_path).connect() as con:
        reps = query_frame(con, "SELECT * FROM reps ORDER BY rep_id")
        teams = query_frame(con, "SELECT team, kind FROM teams ORDER BY team")
        absences = query_frame(con, "SELECT rep_id, starts_on, ends_on FROM rep_absences")
        accounts = query_frame(con, "SELECT account_id, owner_rep_id FROM accounts")
    reps = unpack_extra(reps)
    if "languages" in reps.columns and reps.schema["languages"] == pl.String:
        reps = reps.with_columns(pl.col("languages").str.split("|"))
    return Roster.from_frames(reps, teams if teams.height else None, absences, accounts)


def known_fields(settings: Settings) -> set[str]:
    """Lead columns and every extra attribute seen on leads (what rules may name)."""
    with Warehouse(settings.warehouse_path).connect() as con:
        columns = {
            str(r[0])
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads'"
            ).fetchall()
        }
        keys = con.execute("SELECT DISTINCT unnest(json_keys(extra)) FROM leads WHERE extra IS NOT NULL").fetchall()
    return (columns - {"extra", "import_id", "updated_at"}) | {str(k[0]) for k in keys}


def validate(settings: Settings, source: PolicySource) -> ValidationReport:
    """Validate against the workspace when it has one (teams, reps, fields), else the spec alone."""
    if not settings.warehouse_path.exists():
        return validate_spec(source.spec)
    return validate_spec(source.spec, load_roster(settings), known_fields(settings))


def unpack_extra(frame: pl.DataFrame) -> pl.DataFrame:
    """Turn the ``extra`` JSON column into one column per attribute (text values, as imported)."""
    if "extra" not in frame.columns:
        return frame
    extra = frame["extra"].cast(pl.String)
    if extra.drop_nulls().len() == 0:
        return frame.drop("extra")
    decoded = extra.str.json_decode(infer_schema_length=None)
    fields = [f for f in decoded.struct.fields if f not in frame.columns]
    return frame.drop("extra").with_columns(decoded.struct.field(f) for f in fields) if fields else frame.drop("extra")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
