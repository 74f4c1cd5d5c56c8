"""Bearer API keys, each scoped to one business unit with roles; only a hash is stored.

A key looks like `sk_<key id>_<secret>`. The secret is 32 random bytes, so a plain SHA-256
is the right hash (no password stretching needed), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from starlette.exceptions import HTTPException

from saldo_platform.context import Context, new_correlation_id, set_for_this_task
from saldo_platform.sql import Database
from saldo_platform.telemetry import current_traceparent

ROLES = ("operator", "finance", "auditor", "admin")

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, business_unit TEXT NOT NULL,
    roles TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)
"""


@dataclass(frozen=True)
class Principal:
    key_id: str
    business_unit: str
    roles: frozenset[str]

    def may(self, *roles: str) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    cache_seconds = 30.0  # a revoked key stops working within this
    unknown_seconds = 2.0  # unknown tokens are remembered briefly: a burst of them costs one query
    cache_size = 10_000  # bounded, so random bearer tokens cannot grow memory

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def setup(self) -> None:
        await self.db.create_schema(SCHEMA)

    async def create(self, business_unit: str, roles: list[str], name: str) -> str:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {sorted(roles)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        await self.db.execute(
            "INSERT INTO api_keys (key_id, secret_sha256, business_unit, roles, name, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            key_id, _sha256(secret), business_unit, ",".join(sorted(roles)), name,
            datetime.now(UTC).isoformat(),
        )
        return f"sk_{key_id}_{secret}"

    async def authenticate(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached and now - cached[0] < (self.cache_seconds if cached[1] else self.unknown_seconds):
            return cached[1]
        principal = await self._lookup(token)
        self._cache[token] = (now, principal)
        self._cache.move_to_end(token)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _lookup(self, token: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "sk":
            return None
        row = await self.db.fetchrow(
            "SELECT secret_sha256, business_unit, roles, revoked_at FROM api_keys WHERE key_id = $1",
            parts[1],
        )
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_sha256"], _sha256(parts[2])):
            return None
        return Principal(parts[1], row["business_unit"], frozenset(row["roles"].split(",")))


async def principal(request: Request) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "send an API key as 'Authorization: Bearer sk_…'",
                            headers={"WWW-Authenticate": "Bearer"})
    found = await request.app.state.api_keys.authenticate(token.strip())
    if found is None:
        raise HTTPException(401, "the API key is unknown or revoked",
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def requires(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency: the caller holds one of `roles`; its Context becomes the acting one."""

    async def dependency(request: Request) -> Context:
        who = await principal(request)
        if not who.may(*roles):
            raise HTTPException(403, f"this needs one of the roles: {', '.join(roles)}")
        context = Context(
            business_unit=who.business_unit,
            actor=f"api-key:{who.key_id}",
            correlation_id=request.headers.get("x-correlation-id") or new_correlation_id(),
            traceparent=current_traceparent(),
        )
        # Set for this request's task, and so for the thread its sync route runs in.
        set_for_this_task(context)
        return context

    return dependency


OPERATOR = ("operator", "finance")
READER = ("operator", "finance", "auditor")
