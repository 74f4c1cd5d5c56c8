"""Bearer API keys, each scoped to one business unit with roles; only a hash is stored.

A key looks like `sk_<key id>_<secret>`. The secret is 32 random bytes, so a plain SHA-256
is the right hash (no password stretching needed), compared in constant time.

`AuthenticationMiddleware` authenticates every request under `/v1` before anything else runs
(idempotency, body parsing, routes): an anonymous request never gets a stored response replayed
and never has its body read. `requires(...)` then checks the roles of the authenticated key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saldo_platform.context import Context, new_correlation_id, set_for_this_task
from saldo_platform.http.problems import send_problem
from saldo_platform.sql import Database, PostgresDatabase, Row
from saldo_platform.telemetry import current_traceparent

ROLES = ("operator", "finance", "auditor", "admin")

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, business_unit TEXT NOT NULL,
    roles TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)
"""
# NOTIFY'd on the key database when a key is revoked; every serving process LISTENs.
REVOKED_CHANNEL = "saldo_api_key_revoked"

# The commands take small JSON documents: the largest valid one (an invoice of 500 lines of 500
# characters) is about 270 KB. 1 MiB keeps one request from holding megabytes of memory.
MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = f"the request body is larger than {MAX_BODY_BYTES} bytes"


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
    # How long a lookup (known key or unknown token) is trusted. A revocation reaches serving
    # processes at once by NOTIFY on PostgreSQL; this bounds it where no NOTIFY arrives
    # (SQLite in embedded mode, or a lost listening connection).
    cache_seconds = 2.0
    cache_size = 10_000  # bounded, so random bearer tokens cannot grow memory

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        # Bumped by every revocation heard of, so a lookup that raced with one is not cached.
        self._generation = 0
        self._stop_listening: Callable[[], Awaitable[None]] | None = None

    async def setup(self) -> None:
        await self.db.create_schema(SCHEMA)

    async def listen(self) -> None:
        """Forget every cached lookup as soon as any process revokes a key (PostgreSQL only)."""
        if isinstance(self.db, PostgresDatabase):
            self._stop_listening = await self.db.listen(REVOKED_CHANNEL, self.forget)

    async def close(self) -> None:
        if self._stop_listening is not None:
            await self._stop_listening()
        await self.db.close()

    def forget(self) -> None:
        self._cache.clear()
        self._generation += 1

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

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; False if there is no such key. Revoking twice keeps the first time."""
        async with self.db.transaction() as tx:
            found = await tx.fetchval(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_id = $1"
                " RETURNING key_id", key_id, datetime.now(UTC).isoformat())
            if found and isinstance(self.db, PostgresDatabase):
                await tx.execute(f"NOTIFY {REVOKED_CHANNEL}")  # delivered when this commits
        self.forget()
        return found is not None

    async def list_keys(self, business_unit: str | None = None) -> list[Row]:
        """Every key (never its secret or hash), oldest first."""
        columns = "key_id, business_unit, roles, name, created_at, revoked_at"
        if business_unit is None:
            return await self.db.fetch(f"SELECT {columns} FROM api_keys ORDER BY created_at, key_id")
        return await self.db.fetch(
            f"SELECT {columns} FROM api_keys WHERE business_unit = $1 ORDER BY created_at, key_id",
            business_unit)

    async def authenticate(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached and now - cached[0] < self.cache_seconds:
            return cached[1]
        generation = self._generation
        principal = await self._lookup(token)
        if generation == self._generation:  # no revocation arrived while we looked
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


class BodyTooLarge(HTTPException):
    """Raised by `receive` once a body passes `MAX_BODY_BYTES`. An HTTPException, so that
    wherever the body is being read (a middleware or FastAPI itself) it ends as a 413."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


class AuthenticationMiddleware:
    """Every request under /v1 needs a valid bearer key, checked before anything else runs and
    before the body is read; bodies are capped at `MAX_BODY_BYTES`. Health, /docs and
    /openapi.json stay open. The key's `Principal` goes to `scope["state"]["principal"]`."""

    def __init__(self, app: ASGIApp, api_keys: ApiKeys) -> None:
        self.app = app
        self.api_keys = api_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _under_v1(scope):
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        principal = await self.api_keys.authenticate(token) if token else None
        if principal is None:
            detail = ("send an API key as 'Authorization: Bearer sk_…'" if token is None
                      else "the API key is unknown or revoked")
            await _problem(send, scope, 401, detail, [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["principal"] = principal
        if _declared_length(scope) > MAX_BODY_BYTES:
            await _problem(send, scope, 413, TOO_LARGE)
            return

        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:  # a chunked body, or one longer than it declared
                raise BodyTooLarge()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except BodyTooLarge as e:
            if started:
                raise
            await _problem(send, scope, 413, e.detail)


def _under_v1(scope: Scope) -> bool:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):  # mounted at /<service>: route paths are below it
        path = path[len(root):]
    return path == "/v1" or path.startswith("/v1/")


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed Content-Length before we are called
    return 0


async def _problem(send: Send, scope: Scope, status: int, detail: str,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_problem(send, status, detail, instance=scope["path"], headers=headers)


def requires(*roles: str) -> Callable[[Request], Awaitable[Context]]:
    """A dependency: the caller holds one of `roles`; its Context becomes the acting one."""

    async def dependency(request: Request) -> Context:
        who: Principal | None = getattr(request.state, "principal", None)
        if who is None:  # only a route outside /v1 gets here unauthenticated
            raise HTTPException(401, "send an API key as 'Authorization: Bearer sk_…'",
                                headers={"WWW-Authenticate": "Bearer"})
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

# What a route declares to say who may call it; the value is the caller's acting Context.
Operator = Annotated[Context, Depends(requires(*OPERATOR))]  # commands
Reader = Annotated[Context, Depends(requires(*READER))]  # queries (auditors read too)
