"""`Idempotency-Key` on every POST, with Stripe's semantics, safe across crashes.

Same key + same request → the original answer is replayed; same key + another body → 422;
the first request still running → 409. Only successful (2xx) answers are kept: after an error
the client may retry with the same key. Keys are scoped to the caller's API key.

Two records, one truth. The command's events are recorded in one transaction with a
`CommandRecord` of its answer, whose id is derived from the caller and the key (unitofwork.py):
that is what makes a command run at most once, whatever crashes. The `idempotency_keys` table
is the fast path beside it: the claim that answers 409 while a request runs, and a copy of the
answer for replays; its rows are kept 48 hours (at least the 24 promised).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saldo_platform import failpoints
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.http.problems import PROBLEM, TYPES, problem_body
from saldo_platform.sql import Database
from saldo_platform.unitofwork import UnitOfWork, collecting

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL, key TEXT NOT NULL, request_sha256 TEXT NOT NULL, state TEXT NOT NULL,
    status INTEGER, headers TEXT, body TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key))
"""
KEEP = timedelta(hours=48)
# A claim still running after this is taken over (setting SALDO_IDEMPOTENCY_TAKEOVER_SECONDS).
# Taking over is safe even if the first attempt lives on: only one of them can record the
# command (CommandRecord), the other replays its answer.
ABANDONED = timedelta(seconds=10)
CONFLICT_ATTEMPTS = 5


class IdempotencyStore:
    def __init__(self, db: Database, abandoned_after: timedelta = ABANDONED) -> None:
        self.db = db
        self.abandoned_after = abandoned_after

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
                scope, key, request_sha256, token, (now - self.abandoned_after).isoformat(),
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


class CommandRecord(Aggregate):
    """What the command sent with one Idempotency-Key answered: saved with the command's events.

    Its id comes from the caller and the key, so a second attempt that also reaches the commit
    collides with it (a version conflict) instead of taking effect a second time.
    """

    @staticmethod
    def create_id(caller: str, key: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:idempotency:{caller}:{key}")

    @event("Answered")
    def __init__(self, caller: str, key: str, request_sha256: str, status: int,
                 headers: list[list[str]], body: str) -> None:
        self.caller = caller
        self.key = key
        self.request_sha256 = request_sha256
        self.status = status
        self.headers = headers
        self.body = body

    def as_row(self) -> dict[str, Any]:
        return {"request_sha256": self.request_sha256, "state": "done", "status": self.status,
                "headers": json.dumps(self.headers), "body": self.body}


def _problem(status: int, title: str, detail: str) -> Answer:
    body = json.dumps(problem_body(status, detail, title, TYPES + "idempotency"))
    return status, [["content-type", PROBLEM]], body


Answer = tuple[int, list[list[str]], str]


class IdempotencyMiddleware:
    """Claims the key, runs the command collecting its events, records events and answer at once.

    Runs inside the authentication middleware: keys are scoped to the caller's API key.
    """

    def __init__(self, app: ASGIApp, store: IdempotencyStore, application: EventStoreApplication,
                 service: str) -> None:
        self.app = app
        self.store = store
        self.application = application
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "").strip()
        if not key or len(key) > 255:
            title = "Idempotency-Key too long" if key else "Idempotency-Key required"
            await _respond(send, *_problem(
                400, title,
                "every POST needs an Idempotency-Key header (1 to 255 characters), e.g. a UUID; "
                "resend the same key to retry safely",
            ))
            return
        body = await _read_body(receive)
        caller = _caller(scope, headers)
        fingerprint = hashlib.sha256(
            b"\n".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        token, earlier = await self.store.claim(caller, key, fingerprint)
        if token is None:
            assert earlier is not None
            if earlier["state"] != "done":
                # Its process may have died after recording the command, before noting it here.
                earlier = await self._recorded(caller, key) or earlier
            await _respond(send, *_answer_for(earlier, fingerprint))
            return
        failpoints.reach("after-claim", "http", self.service)
        try:
            status, response_headers, text = await self._run_once(scope, body, caller, key, fingerprint)
        except BaseException:
            await self.store.release(caller, key, token)
            raise
        if 200 <= status < 300:
            await self.store.complete(caller, key, token, status, response_headers, text)
            failpoints.reach("after-complete", "http", self.service)
        else:
            await self.store.release(caller, key, token)
        await _respond(send, status, response_headers, text)

    async def _run_once(self, scope: Scope, body: bytes, caller: str, key: str,
                        fingerprint: str) -> Answer:
        """Run the command and record its events with its answer, or find who did already."""
        for _ in range(CONFLICT_ATTEMPTS):
            unit = UnitOfWork()
            try:
                with collecting(unit):
                    status, headers, text = await _call(self.app, scope, body)
                if not 200 <= status < 300:
                    # A slow first attempt with this key may have finished while this one ran.
                    recorded = await self._recorded(caller, key)
                    return _answer_for(recorded, fingerprint) if recorded else (status, headers, text)
                record = CommandRecord(caller, key, fingerprint, status, headers, text)
                failpoints.reach("before-commit", "http", self.service)
                await failpoints.meet("before-commit", "http", self.service)
                try:
                    await asyncio.to_thread(self.application.record_unit, unit, record)
                except IntegrityError:
                    recorded = await self._recorded(caller, key)
                    if recorded:
                        return _answer_for(recorded, fingerprint)
                    continue  # another command changed the same aggregate: run again on its result
                failpoints.reach("after-commit", "http", self.service)
                return status, headers, text
            finally:
                unit.end()
        return _problem(409, "Conflict", "the resource kept being changed by other requests; retry")

    async def _recorded(self, caller: str, key: str) -> dict[str, Any] | None:
        record = await asyncio.to_thread(self.application.get_or_none,
                                         CommandRecord.create_id(caller, key))
        return record.as_row() if isinstance(record, CommandRecord) else None


def _caller(scope: Scope, headers: dict[str, str]) -> str:
    principal = scope.get("state", {}).get("principal")
    if principal is not None:
        return str(principal.key_id)
    return hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()


def _answer_for(earlier: dict[str, Any], fingerprint: str) -> Answer:
    if earlier["request_sha256"] != fingerprint:
        return _problem(422, "Idempotency-Key reused",
                        "this Idempotency-Key was used for a different request; use a new key")
    if earlier["state"] != "done":
        return _problem(409, "Request in progress",
                        "a request with this Idempotency-Key is still running; retry shortly")
    # The stored answer may itself have been a replay (a retry that took over a dead attempt's
    # claim and found its CommandRecord), so the replay header is set once, never added again.
    stored = [h for h in json.loads(earlier["headers"])
              if h[0].lower() not in ("content-length", "idempotent-replayed")]
    return earlier["status"], stored + [["idempotent-replayed", "true"]], earlier["body"]


async def _call(app: ASGIApp, scope: Scope, body: bytes) -> Answer:
    """Run the app on a body already read; capture its answer instead of sending it."""
    status, headers, chunks = 500, [], []

    async def replay_body() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, replay_body, capture)
    return status, headers, b"".join(chunks).decode("utf-8", errors="replace")


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


async def _respond(send: Send, status: int, headers: list[list[str]], body: str) -> None:
    raw = body.encode()
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
               if k.lower() != "content-length"]
    encoded.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": raw})
