"""Files uploaded through the app: stored safely inside the workspace, then imported."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from models.canonical import EntityName
from pipelines.ingest import IngestSummary, ingest_file
from pipelines.settings import Settings
from pipelines.sources import detect_format
from pipelines.warehouse import Warehouse

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
SHIPPED_MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


class UploadError(ValueError):
    """The upload was refused (name, size or mapping); nothing was stored or imported."""


def shipped_mappings() -> dict[str, Path]:
    """The mapping files that ship with leadroute, by file name."""
    return {p.name: p for p in sorted(SHIPPED_MAPPINGS.glob("*.yaml"))}


def safe_upload_name(filename: str) -> str:
    """A file name that cannot leave the uploads folder: the last path component, with every
    character outside ``[A-Za-z0-9._-]`` replaced and no leading dots."""
    base = re.split(r"[\\/]", filename)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    if not cleaned or cleaned in {"_", "-"}:
        raise UploadError(f"upload name {filename!r}: no usable file name")
    return cleaned[:120]


def import_upload(
    settings: Settings,
    entity: EntityName,
    filename: str,
    content: bytes,
    mapping_name: str | None = None,
) -> IngestSummary:
    """Store an uploaded file under ``<home>/imports/uploads/`` and import it.

    ``mapping_name`` must be one of :func:`shipped_mappings` (a user-supplied path is never
    followed from the app).
    """
    if len(content) > MAX_UPLOAD_BYTES:
        raise UploadError(f"upload {filename!r}: {len(content):,} bytes is over the {MAX_UPLOAD_BYTES:,}-byte limit")
    name = safe_upload_name(filename)
    try:
        detect_format(Path(name))
    except ValueError as exc:
        raise UploadError(str(exc)) from None
    mapping: Path | None = None
    if mapping_name:
        mapping = shipped_mappings().get(mapping_name)
        if mapping is None:
            raise UploadError(f"mapping {mapping_name!r} is not one of the shipped mapping files")
    folder = settings.ensure().imports_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{name}"
    path.write_bytes(content)
    return ingest_file(Warehouse(settings.warehouse_path), entity, path, mapping)
