"""API keys: from ``LEADROUTE_API_KEYS`` or a key file the workspace creates (owner-only).

Keys are compared in constant time and never logged, echoed in an error or counted in metrics.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_FILE_NAME = "api_keys"
ENV_VAR = "LEADROUTE_API_KEYS"


@dataclass(frozen=True)
class KeyRing:
    """The accepted keys and where they came from (``env`` or the key file's path)."""

    keys: tuple[bytes, ...]
    source: str

    def accepts(self, authorization: str | None) -> bool:
        """True for ``Bearer KEY`` with a known key; every key is compared (constant time)."""
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.accepts_token(token)

    def accepts_token(self, token: str) -> bool:
        """True for a known key (the bearer token alone)."""
        given = token.strip().encode()
        if not given:
            return False
        ok = False
        for key in self.keys:
            # No early exit: the time taken does not reveal which key (or how much of one) matched.
            ok |= hmac.compare_digest(given, key)
        return ok


def load_keys(home: Path, env: Mapping[str, str] | None = None) -> KeyRing:
    """Keys from the environment, else from ``<home>/api_keys`` (created with one key, 0600)."""
    env = os.environ if env is None else env
    listed = tuple(k.strip().encode() for k in env.get(ENV_VAR, "").split(",") if k.strip())
    if listed:
        return KeyRing(listed, "env")
    path = home / KEY_FILE_NAME
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two servers starting at once cannot overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"the key file {path} is readable by others: chmod 600 it")
    keys = tuple(line.strip().encode() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not keys:
        raise ValueError(f"the key file {path} holds no key")
    return KeyRing(keys, str(path))
