"""API keys, workspaces and roles: who is calling, and what they may see and change.

A key looks like ``sis_<id>_<secret>``: ``id`` (12 hex characters) is public and names the key
in listings and logs; ``secret`` is 256 random bits (``secrets.token_urlsafe(32)``). Only the
SHA-256 of the whole key is stored: a fast hash is enough for a random secret of that size (no
dictionary to guess from), and a lookup by ``id`` plus one ``hmac.compare_digest`` keeps the
check constant-time.

With no unrevoked key the product is in *local mode*: nobody authenticates, everything lives in
the workspace ``default``, and ``sistack serve`` binds to the loopback interface only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sistack.config import Settings
from sistack.errors import AuthError, InputError, StorageError
from sistack.io.store.metadata import DEFAULT_WORKSPACE, ApiKeyRecord, MetadataStore
from sistack.service.queue import utcnow

Role = Literal["read", "write"]
ROLES: tuple[Role, ...] = ("read", "write")
PREFIX = "sis_"
WORKSPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEY_PATTERN = re.compile(r"^sis_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. ``key_id`` is None in local mode (no keys exist)."""

    workspace: str
    role: Role
    key_id: str | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "write"


LOCAL = Principal(workspace=DEFAULT_WORKSPACE, role="write")


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``secret`` is the whole key, shown once and never stored."""

    record: ApiKeyRecord
    secret: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id in a well-formed key, or None."""
    match = _KEY_PATTERN.match(key.strip())
    return match.group(1) if match else None


def check_workspace(name: str) -> str:
    if not WORKSPACE_PATTERN.match(name):
        raise InputError(
            f"Invalid workspace name '{name[:70]}': use 1 to 64 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit.",
            code="invalid_workspace",
        )
    return name


class KeyService:
    """Create, list, revoke and verify API keys in the metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def create(self, *, workspace: str, role: str, name: str | None = None) -> NewKey:
        check_workspace(workspace)
        if role not in ROLES:
            raise InputError(
                f"Unknown role '{role[:20]}': use 'read' or 'write'.", code="invalid_role"
            )
        key_id = secrets.token_hex(6)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(
            id=key_id,
            key_hash=hash_key(secret),
            name=(name or f"{workspace} {role}")[:255],
            workspace=workspace,
            role=role,
            created_at=utcnow(),
        )
        self.store.add_api_key(record)
        return NewKey(record=record, secret=secret)

    def list(self) -> list[ApiKeyRecord]:
        return self.store.list_api_keys()

    def revoke(self, key_id: str) -> ApiKeyRecord:
        return self.store.revoke_api_key(key_id.removeprefix(PREFIX), now=utcnow())

    def enabled(self) -> bool:
        """True when at least one key is active: every API call then needs a key."""
        return self.store.has_active_keys()

    def verify(self, key: str) -> Principal:
        """The principal of a presented key; ``invalid_key`` for unknown, revoked or malformed."""
        key_id = key_id_of(key)
        record = self.store.get_api_key(key_id) if key_id else None
        # compare_digest also when the id is unknown, so both failures take the same time.
        expected = record.key_hash if record else hash_key("")
        matches = hmac.compare_digest(expected, hash_key(key.strip()))
        if record is None or not matches or record.revoked_at is not None:
            raise AuthError(
                "The API key is not valid (unknown or revoked). Create one with "
                "`sistack keys create`.",
                code="invalid_key",
            )
        return self.principal(record)

    def by_id(self, key_id: str) -> Principal | None:
        """The principal of an unrevoked key id (a signed web session stores only the id)."""
        record = self.store.get_api_key(key_id)
        if record is None or record.revoked_at is not None:
            return None
        return self.principal(record)

    @staticmethod
    def principal(record: ApiKeyRecord) -> Principal:
        role: Role = "write" if record.role == "write" else "read"
        return Principal(workspace=record.workspace, role=role, key_id=record.id)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an interface to bind) is reachable only from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_decision(host: str, *, keys_enabled: bool) -> str | None:
    """Why ``sistack serve`` must not listen on ``host``, or None when it may.

    Without keys nothing authenticates requests, so only the loopback interface is allowed.
    """
    if keys_enabled or is_loopback(host):
        return None
    return (
        f"Refusing to listen on {host}: no API key exists, so anyone who can reach this "
        "address could read and delete every run. Create a key with `sistack keys create "
        "--workspace default --role write` (then every API call and the web UI need it), or "
        "serve on 127.0.0.1."
    )


def session_secret(settings: Settings) -> str:
    """The secret that signs web sessions: ``SISTACK_SESSION_SECRET``, or one generated on first
    use into ``<home>/session.key`` (mode 0600) and reused by every process of this home."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path = settings.home / "session.key"
    for _ in range(50):
        try:
            secret = path.read_text().strip()
        except FileNotFoundError:
            secret = ""
        if len(secret) >= 32:
            return secret
        if not path.exists():
            _create_secret(path)
        else:
            time.sleep(0.05)  # another process is writing it: read again
    raise StorageError(f"Cannot read the session secret {path}.", code="session_secret_unreadable")


def _create_secret(path: Path) -> None:
    """Write a new secret with no window where the file exists half-written or readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".session-")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another process won: its secret is used
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
