"""RFC 9457 problem details for every error; a 5xx on any input is a bug."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from saldo_platform.errors import SaldoError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(api: FastAPI) -> None:
    @api.exception_handler(SaldoError)
    async def saldo_error(request: Request, e: SaldoError) -> JSONResponse:
        return problem(e.status, e.title, e.detail, e.type, instance=request.url.path)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
            for err in e.errors()
        ]
        detail = "; ".join(f"{x['location']}: {x['message']}" for x in errors) or "invalid request"
        return problem(
            422, "Invalid request", detail, "https://saldo.dev/problems/invalid-request",
            instance=request.url.path, errors=errors,
        )

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        response = problem(e.status_code, _title(e.status_code), str(e.detail), instance=request.url.path)
        for k, v in (e.headers or {}).items():
            response.headers[k] = v
        return response

    @api.exception_handler(AggregateNotFoundError)
    async def not_found(request: Request, e: AggregateNotFoundError) -> JSONResponse:
        return problem(404, "Not found", "no such resource", instance=request.url.path)

    @api.exception_handler(IntegrityError)
    async def conflict(request: Request, e: IntegrityError) -> JSONResponse:
        return problem(
            409, "Conflict", "the resource was changed by another request; reload and retry",
            "https://saldo.dev/problems/conflict", instance=request.url.path,
        )

    @api.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
