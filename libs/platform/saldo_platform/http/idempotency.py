"""`Idempotency-Key` on every POST, with Stripe's semantics.

Same key + same request → the stored response is replayed; same key + another body → 422;
the first request still running → 409. Only successful (2xx) responses are kept: after an
error the client may retry with the same key. Keys are scoped to the caller's API key and
kept 48 hours (at least the 24 promised).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saldo_platform.sql import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL, key TEXT NOT NULL, request_sha256 TEXT NOT NULL, state TEXT NOT NULL,
    status INTEGER, headers TEXT, body TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key))
"""
KEEP = timedelta(hours=48)
ABANDONED = timedelta(minutes=2)  # a request whose process died while it ran


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def setup(self) -> None:
        await self.db.create_schema(SCHEMA)
        cutoff = (datetime.now(UTC) - KEEP).isoformat()
        await self.db.execute("DELETE FROM idempotency_keys WHERE created_at < $1", cutoff)

    async def claim(self, scope: str, key: str,
                    request_sha256: str) -> tuple[str | None, dict[str, Any] | None]:
        """(token, None) if this request may run; otherwise (None, the earlier request's row).

        The token (the claim's `created_at`) names this claim, so a request only ever completes
        or releases its own claim. If the earlier request failed and released the key between
        our INSERT and our SELECT, we claim again rather than run unclaimed: running unclaimed
        let two requests with one key both take effect.
        """
        for _ in range(5):
            now = datetime.now(UTC)
            token = now.isoformat()
            claimed = await self.db.fetchval(
                "INSERT INTO idempotency_keys (scope, key, request_sha256, state, created_at)"
                " VALUES ($1, $2, $3, 'running', $4) ON CONFLICT DO NOTHING RETURNING 1",
                scope, key, request_sha256, token,
            )
            if claimed:
                return token, None
            taken_over = await self.db.fetchval(
                "UPDATE idempotency_keys SET created_at = $4 WHERE scope = $1 AND key = $2"
                " AND request_sha256 = $3 AND state = 'running' AND created_at < $5 RETURNING 1",
                scope, key, request_sha256, token, (now - ABANDONED).isoformat(),
            )
            if taken_over:
                return token, None
            earlier = await self.db.fetchrow(
                "SELECT request_sha256, state, status, headers, body FROM idempotency_keys"
                " WHERE scope = $1 AND key = $2", scope, key,
            )
            if earlier is not None:
                return None, earlier
        # The key keeps being claimed and released by others: answer as if one is running.
        return None, {"request_sha256": request_sha256, "state": "running"}

    async def complete(self, scope: str, key: str, token: str, status: int,
                       headers: list[list[str]], body: str) -> None:
        await self.db.execute(
            "UPDATE idempotency_keys SET state = 'done', status = $4, headers = $5, body = $6"
            " WHERE scope = $1 AND key = $2 AND created_at = $3 AND state = 'running'",
            scope, key, token, status, json.dumps(headers), body,
        )

    async def release(self, scope: str, key: str, token: str) -> None:
        await self.db.execute(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at = $3"
            " AND state = 'running'", scope, key, token,
        )


def _problem(status: int, title: str, detail: str) -> tuple[int, list[list[str]], str]:
    body = json.dumps({"type": "https://saldo.dev/problems/idempotency", "title": title,
                       "status": status, "detail": detail})
    return status, [["content-type", "application/problem+json"]], body


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "").strip()
        if not key or len(key) > 255:
            await _respond(send, *_problem(
                400, "Idempotency-Key required",
                "every POST needs an Idempotency-Key header (1 to 255 characters), e.g. a UUID; "
                "resend the same key to retry safely",
            ))
            return
        body = await _read_body(receive)
        caller = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()
        fingerprint = hashlib.sha256(
            b"\n".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        token, earlier = await self.store.claim(caller, key, fingerprint)
        if token is None:
            assert earlier is not None
            await _respond(send, *self._answer_for(earlier, fingerprint))
            return

        status, response_headers, chunks = 500, [], []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [[k.decode("latin-1"), v.decode("latin-1")]
                                    for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await self.store.release(caller, key, token)
            raise
        text = b"".join(chunks).decode("utf-8", errors="replace")
        if 200 <= status < 300:
            await self.store.complete(caller, key, token, status, response_headers, text)
        else:
            await self.store.release(caller, key, token)
        await _respond(send, status, response_headers, text)

    @staticmethod
    def _answer_for(earlier: dict[str, Any], fingerprint: str) -> tuple[int, list[list[str]], str]:
        if earlier["request_sha256"] != fingerprint:
            return _problem(422, "Idempotency-Key reused",
                            "this Idempotency-Key was used for a different request; use a new key")
        if earlier["state"] != "done":
            return _problem(409, "Request in progress",
                            "a request with this Idempotency-Key is still running; retry shortly")
        stored = [h for h in json.loads(earlier["headers"]) if h[0].lower() != "content-length"]
        return earlier["status"], stored + [["idempotent-replayed", "true"]], earlier["body"]


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _respond(send: Send, status: int, headers: list[list[str]], body: str) -> None:
    raw = body.encode()
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
               if k.lower() != "content-length"]
    encoded.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": raw})
