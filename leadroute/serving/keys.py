"""API keys: from ``LEADROUTE_API_KEYS`` or a key file the workspace creates (owner-only); admin
keys the same way from ``LEADROUTE_ADMIN_KEYS`` or ``<home>/admin_keys``.

Keys are compared in constant time and never logged, echoed in an error or counted in metrics.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_FILE_NAME = "api_keys"
ENV_VAR = "LEADROUTE_API_KEYS"
ADMIN_KEY_FILE_NAME = "admin_keys"
ADMIN_ENV_VAR = "LEADROUTE_ADMIN_KEYS"


@dataclass(frozen=True)
class KeyRing:
    """The accepted keys and where they came from (``env`` or the key file's path)."""

    keys: tuple[bytes, ...] = field(repr=False)  # a repr in a traceback must not show a key
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


def owner_only_secret_file(path: Path, *, create: bool) -> list[str]:
    """The non-empty lines of an owner-only file; ``create`` makes it with one fresh random key
    (mode 0600, never overwriting) when missing. A file readable by others is refused."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
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
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _load(home: Path, env: Mapping[str, str] | None, var: str, file_name: str) -> KeyRing:
    env = os.environ if env is None else env
    listed = tuple(k.strip().encode() for k in env.get(var, "").split(",") if k.strip())
    if listed:
        return KeyRing(listed, "env")
    path = home / file_name
    keys = tuple(line.encode() for line in owner_only_secret_file(path, create=True))
    if not keys:
        raise ValueError(f"the key file {path} holds no key")
    return KeyRing(keys, str(path))


def load_keys(home: Path, env: Mapping[str, str] | None = None) -> KeyRing:
    """Client keys from the environment, else from ``<home>/api_keys`` (created with one key, 0600)."""
    return _load(home, env, ENV_VAR, KEY_FILE_NAME)


def load_admin_keys(home: Path, env: Mapping[str, str] | None = None) -> KeyRing:
    """Admin keys from ``LEADROUTE_ADMIN_KEYS``, else from ``<home>/admin_keys`` (created like the
    client key file). An admin key also works on client routes; a client key never on admin ones."""
    return _load(home, env, ADMIN_ENV_VAR, ADMIN_KEY_FILE_NAME)
