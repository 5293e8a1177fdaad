"""How the endpoint's append-only logs are named on disk: ``<prefix>-<YYYYMMDD>-<n>.jsonl``.

Shared by the writer (``leadroute.serving.log``) and the loader (``pipelines.endpoint_logs``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic_core

LOG_NAME = re.compile(r"^(?P<prefix>[a-z_]+)-(?P<day>\d{8})-(?P<n>\d{6})\.jsonl$")


def log_files(directory: Path, prefix: str) -> list[Path]:
    """The log's files in write order (by their sequence number)."""
    if not directory.exists():
        return []
    found = []
    for path in directory.iterdir():
        match = LOG_NAME.match(path.name)
        if match and match["prefix"] == prefix:
            found.append((int(match["n"]), path))
    return [p for _, p in sorted(found)]


def read_new_lines(path: Path, start: int) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON records after byte ``start`` of a log file, and the offset after the last
    whole line (a torn tail — never acknowledged — waits for its newline)."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines()
    try:
        # All lines as one JSON array, parsed by pydantic-core: several times faster than a
        # json.loads per line (the SLA timer reads every decision the endpoint logs).
        parsed = pydantic_core.from_json(b"[" + b",".join(lines) + b"]") if lines else []
    except ValueError:
        parsed = [_parse_line(line) for line in lines]  # a bad line: skip just that one
    return [record for record in parsed if isinstance(record, dict)], start + end


def _parse_line(line: bytes) -> Any:
    try:
        return pydantic_core.from_json(line)
    except ValueError:
        return None
