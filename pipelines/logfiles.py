"""How the endpoint's append-only logs are named on disk: ``<prefix>-<YYYYMMDD>-<n>.jsonl``.

Shared by the writer (``leadroute.serving.log``) and the loader (``pipelines.endpoint_logs``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, start + end
