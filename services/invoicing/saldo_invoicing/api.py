"""Invoicing HTTP routes (plain `def` commands: the event store is synchronous)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from saldo_events.envelope import CurrencyCode
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.projections import INVOICES_WITH_PAID, status
from saldo_platform.businessdates import today
from saldo_platform.context import Context
from saldo_platform.errors import NotFound
from saldo_platform.http.app import etag, if_match_version, state
from saldo_platform.http.auth import OPERATOR, READER, requires
from saldo_platform.http.bodies import MinorUnits
from saldo_platform.http.bodies import RequestBody as Body
from saldo_platform.http.pages import Page, Paging, page_query

router = APIRouter(tags=["invoices"])
Operator = Annotated[Context, Depends(requires(*OPERATOR))]
Reader = Annotated[Context, Depends(requires(*READER))]


class LineIn(Body):
    description: str = Field(min_length=1, max_length=500)
    amount: MinorUnits


class IssueInvoice(Body):
    customer_id: str = Field(min_length=1, max_length=100)
    currency: CurrencyCode
    due_date: date
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class IssueCreditNote(Body):
    amount: Annotated[MinorUnits, Field(description="minor units, at most what is left to credit")]
    reason: str = Field(min_length=1, max_length=500)


def app(request: Request) -> InvoicingApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@router.post("/invoices", status_code=201)
def issue_invoice(body: IssueInvoice, who: Operator, request: Request, response: Response) -> dict[str, Any]:
    invoice = app(request).issue_invoice(
        who.business_unit, body.customer_id, body.currency,
        [line.model_dump() for line in body.lines], body.due_date,
    )
    response.headers["ETag"] = etag(invoice.version)
    response.headers["Location"] = request.url_for("get_invoice", invoice_id=str(invoice.id)).path
    return {"id": str(invoice.id), "number": invoice.number, "customer_id": invoice.customer_id,
            "total": {"amount": invoice.total, "currency": invoice.currency},
            "due_date": invoice.due_date.isoformat(), "version": invoice.version}


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201)
def issue_credit_note(invoice_id: UUID, body: IssueCreditNote, who: Operator, request: Request,
                      response: Response) -> dict[str, Any]:
    invoice, credit_note_id = app(request).issue_credit_note(
        who.business_unit, invoice_id, body.amount, body.reason, if_match_version(request),
    )
    response.headers["ETag"] = etag(invoice.version)
    return {"id": str(credit_note_id), "invoice_id": str(invoice.id),
            "amount": {"amount": body.amount, "currency": invoice.currency},
            "invoice_credited": invoice.credited}


def _invoice(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["invoice_id"], "number": row["number"], "customer_id": row["customer_id"],
            "total": {"amount": row["total"], "currency": row["currency"]},
            "credited": row["credited"], "paid": row["paid"], "status": status(row),
            "overdue": status(row) in ("open", "partially_paid")
            and row["due_date"] < today().isoformat(),
            "due_date": row["due_date"], "version": row["version"]}


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: UUID, who: Reader, request: Request, response: Response) -> dict[str, Any]:
    row = await state(request, "db").fetchrow(
        INVOICES_WITH_PAID + " WHERE i.invoice_id = $1 AND i.business_unit = $2",
        str(invoice_id), who.business_unit,
    )
    if row is None:
        raise NotFound(f"invoice {invoice_id} not found")
    response.headers["ETag"] = etag(row["version"])
    return _invoice(row)


@router.get("/invoices")
async def list_invoices(who: Reader, request: Request, paging: Annotated[Paging, Depends(page_query)],
                        customer_id: Annotated[str | None, Query(max_length=100)] = None) -> Page:
    rows = await state(request, "db").fetch(
        INVOICES_WITH_PAID + " WHERE i.business_unit = $1 AND i.number > $2"
        " AND ($3 = '' OR customer_id = $3) ORDER BY number LIMIT $4",
        who.business_unit, int(paging.after) if paging.after and paging.after.isdigit() else 0,
        customer_id or "", paging.limit + 1,
    )
    return Page.of([_invoice(r) for r in rows], paging.limit, cursor=lambda r: str(r["number"]))
