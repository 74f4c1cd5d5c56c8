"""The FastAPI app of one service: routes under /v1, problems, idempotency, tracing, OpenAPI."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from saldo_kernel.errors import NotFound, PreconditionFailed
from saldo_platform import telemetry
from saldo_platform.http import openapi, problems
from saldo_platform.http.auth import AuthenticationMiddleware
from saldo_platform.http.idempotency import ABANDONED, IdempotencyMiddleware, IdempotencyStore
from saldo_platform.sql import Database


class CommandCounter:
    """Counts commands per service. (FastAPI makes the server span itself, continuing the
    caller's W3C `traceparent`; a second one here would only double every request's trace.)"""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            telemetry.commands_counter.add(1, {"service": self.service})
        await self.app(scope, receive, send)


class NoNulMiddleware:
    """A NUL character in the URL is a 400 problem before any route sees it.

    PostgreSQL text cannot hold U+0000, so a `?customer_id=%00` that reached a query was a 500.
    (Bodies are checked by `saldo_platform.http.bodies.RequestBody`.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"\x00" in unquote_to_bytes(scope.get("query_string", b""))
            or "\x00" in scope.get("path", "")
        ):
            await problems.send_problem(
                send, 400, "the URL must not contain the NUL character (%00)",
                instance=scope.get("path", "").replace("\x00", "%00"))
            return
        await self.app(scope, receive, send)


def create_api(service: str, router: APIRouter, state: dict[str, Any], db: Database) -> FastAPI:
    api = FastAPI(
        title=f"Saldo {service}",
        version="1",
        description=f"The {service} service of Saldo. Every POST needs an Idempotency-Key header.",
    )
    for name, value in state.items():
        setattr(api.state, name, value)
    problems.install(api)
    api.include_router(router, prefix="/v1")
    openapi.install(api)

    @api.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    settings = state.get("settings")
    takeover = timedelta(seconds=settings.idempotency_takeover_seconds) if settings else ABANDONED
    api.add_middleware(IdempotencyMiddleware, store=IdempotencyStore(db, takeover),
                       application=state["application"], service=service)
    api.add_middleware(NoNulMiddleware)
    api.add_middleware(CommandCounter, service=service)
    # Added last, so it runs first: no anonymous request is counted, reaches idempotency (no
    # replay of a stored response) or has its body read.
    api.add_middleware(AuthenticationMiddleware, api_keys=state["api_keys"])
    return api


def state(request: Request, name: str) -> Any:
    return getattr(request.app.state, name)


def etag(version: int) -> str:
    return f'"{version}"'


class Versioned(Protocol):
    version: int


Found = TypeVar("Found", bound=Versioned)


def found_or_404(found: Found | None, response: Response, what: str) -> Found:
    """A GET of one resource: its representation with its ETag, or a 404 naming `what`."""
    if found is None:
        raise NotFound(f"{what} not found")
    response.headers["ETag"] = etag(found.version)
    return found


def if_match(
    header: Annotated[str | None, Header(
        alias="If-Match", description='the ETag of the version you last read, e.g. "3": the '
        "command is refused with 412 if the resource has changed since")] = None,
) -> int | None:
    """The aggregate version the client last saw (`If-Match: "3"`), if it sent one."""
    if not header or header.strip() == "*":
        return None
    if header.strip().startswith("W/"):
        # If-Match compares strongly (RFC 9110, 13.1.1): a weak tag never matches.
        raise PreconditionFailed(f"If-Match needs a strong ETag like '\"3\"', not the weak {header!r}")
    try:
        return int(header.strip().strip('"'))
    except ValueError:
        raise PreconditionFailed(
            f"If-Match must be an ETag from this API, like '\"3\"'; got {header!r}") from None


IfMatch = Annotated[int | None, Depends(if_match)]
