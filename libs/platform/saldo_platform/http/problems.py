"""RFC 9457 problem details: every error answer of every service is built here.

Route errors arrive as exceptions (the domain's `saldo_kernel.errors`, FastAPI's validation
and HTTP errors); the ASGI middlewares that answer before any route runs (authentication, body
size, NUL in the URL, Idempotency-Key) call `send_problem`. A 5xx on any input is a bug.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import Send

from saldo_kernel.errors import Conflict, DomainRuleViolated, NotFound, PreconditionFailed, SaldoError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TYPES = "https://saldo.dev/problems/"

# Each kind of domain error, as HTTP: status, title, problem type.
KINDS: dict[type[SaldoError], tuple[int, str, str]] = {
    DomainRuleViolated: (422, "Rule violated", TYPES + "rule-violated"),
    NotFound: (404, "Not found", TYPES + "not-found"),
    Conflict: (409, "Conflict", TYPES + "conflict"),
    PreconditionFailed: (412, "Precondition failed", TYPES + "precondition-failed"),
}


class Problem(BaseModel):
    """An RFC 9457 problem, as every error is answered (`application/problem+json`)."""

    type: str = Field(examples=[TYPES + "rule-violated"])
    title: str = Field(examples=["Rule violated"])
    status: int = Field(ge=400, le=599)
    detail: str = Field(examples=["payment 7 has 499.00 DKK refundable; a refund of 600.00 DKK "
                                  "is more than that"])
    instance: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None, description="for an invalid request: each field's location and message")


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: str, title: str | None = None, type_: str = "about:blank",
                 instance: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"type": type_, "title": title or title_of(status), "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    return {**body, **extra}


def problem(status: int, detail: str, title: str | None = None, type_: str = "about:blank",
            instance: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, title, type_, instance, **extra),
                        status_code=status, media_type=PROBLEM)


async def send_problem(send: Send, status: int, detail: str, title: str | None = None,
                       type_: str = "about:blank", instance: str | None = None,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A problem answered from ASGI middleware, before any route (and without reading the body)."""
    raw = json.dumps(problem_body(status, detail, title, type_, instance)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", PROBLEM.encode()), (b"content-length", str(len(raw)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": raw})


def install(api: FastAPI) -> None:
    @api.exception_handler(SaldoError)
    async def saldo_error(request: Request, e: SaldoError) -> JSONResponse:
        for kind, (status, title, type_) in KINDS.items():
            if isinstance(e, kind):
                return problem(status, e.detail, title, type_, instance=request.url.path)
        return problem(400, e.detail, instance=request.url.path)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
            for err in e.errors()
        ]
        detail = "; ".join(f"{x['location']}: {x['message']}" for x in errors) or "invalid request"
        return problem(422, detail, "Invalid request", TYPES + "invalid-request",
                       instance=request.url.path, errors=errors)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        response = problem(e.status_code, str(e.detail), instance=request.url.path)
        for k, v in (e.headers or {}).items():
            response.headers[k] = v
        return response

    @api.exception_handler(AggregateNotFoundError)
    async def not_found(request: Request, e: AggregateNotFoundError) -> JSONResponse:
        return problem(404, "no such resource", "Not found", TYPES + "not-found",
                       instance=request.url.path)

    @api.exception_handler(IntegrityError)
    async def conflict(request: Request, e: IntegrityError) -> JSONResponse:
        return problem(409, "the resource was changed by another request; reload and retry",
                       "Conflict", TYPES + "conflict", instance=request.url.path)

    @api.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged", "Internal error")
