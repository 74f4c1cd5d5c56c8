"""Payments HTTP routes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AwareDatetime, Field, model_validator

from saldo_events.envelope import CurrencyCode
from saldo_events.payments import PaymentMethod
from saldo_payments.application import PaymentsApplication
from saldo_platform.context import Context
from saldo_platform.errors import NotFound
from saldo_platform.http.app import etag, state
from saldo_platform.http.auth import OPERATOR, READER, requires
from saldo_platform.http.bodies import MinorUnits
from saldo_platform.http.bodies import RequestBody as Body
from saldo_platform.http.pages import Page, Paging, page_query

router = APIRouter(tags=["payments"])
Operator = Annotated[Context, Depends(requires(*OPERATOR))]
Reader = Annotated[Context, Depends(requires(*READER))]


class AllocationIn(Body):
    invoice_id: UUID
    amount: MinorUnits


class ReceivePayment(Body):
    customer_id: str = Field(min_length=1, max_length=100)
    method: PaymentMethod
    amount: MinorUnits
    currency: CurrencyCode
    received_at: AwareDatetime
    provider_reference: str | None = Field(default=None, max_length=200)
    allocations: list[AllocationIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _each_invoice_once(self) -> ReceivePayment:
        # Twice the same invoice used to end in a misleading 409 "changed by another request".
        invoices = [a.invoice_id for a in self.allocations]
        if len(set(invoices)) != len(invoices):
            raise ValueError("each invoice may appear only once in allocations; add the amounts up")
        return self


@router.post("/payments", status_code=201)
def receive_payment(body: ReceivePayment, who: Operator, request: Request,
                    response: Response) -> dict[str, Any]:
    """A payment received, with the open invoices it pays at once (rules P1, P2, M6)."""
    application: PaymentsApplication = state(request, "application")
    payment = application.receive_payment(
        who.business_unit, body.customer_id, body.method, body.amount, body.currency,
        body.received_at, body.provider_reference,
        [(a.invoice_id, a.amount) for a in body.allocations],
    )
    response.headers["ETag"] = etag(payment.version)
    location = request.url_for("get_payment", payment_id=str(payment.id))
    response.headers["Location"] = location.path
    return {"id": str(payment.id), "amount": {"amount": payment.amount, "currency": payment.currency},
            "unallocated": payment.unallocated, "version": payment.version}


class Allocate(Body):
    invoice_id: UUID
    amount: MinorUnits


@router.post("/payments/{payment_id}/allocations")
def allocate_payment(payment_id: UUID, body: Allocate, who: Operator,
                     request: Request, response: Response) -> dict[str, Any]:
    """Place unallocated money of a payment on an open invoice (rules P2, M6)."""
    application: PaymentsApplication = state(request, "application")
    payment = application.allocate_payment(who.business_unit, payment_id, body.invoice_id, body.amount)
    response.headers["ETag"] = etag(payment.version)
    return {"id": str(payment.id), "unallocated": payment.unallocated, "version": payment.version}


def _payment(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["payment_id"], "customer_id": row["customer_id"], "method": row["method"],
            "amount": {"amount": row["amount"], "currency": row["currency"]},
            "allocated": row["allocated"], "unallocated": row["amount"] - row["allocated"],
            "received_at": row["received_at"], "provider_reference": row["provider_reference"],
            "version": row["version"]}


@router.get("/payments/{payment_id}")
async def get_payment(payment_id: UUID, who: Reader, request: Request, response: Response) -> dict[str, Any]:
    row = await state(request, "db").fetchrow(
        "SELECT * FROM payments WHERE payment_id = $1 AND business_unit = $2",
        str(payment_id), who.business_unit,
    )
    if row is None:
        raise NotFound(f"payment {payment_id} not found")
    response.headers["ETag"] = etag(row["version"])
    return _payment(row)


@router.get("/payments")
async def list_payments(who: Reader, request: Request,
                        paging: Annotated[Paging, Depends(page_query)],
                        customer_id: str | None = None) -> Page:
    rows = await state(request, "db").fetch(
        "SELECT * FROM payments WHERE business_unit = $1 AND ($2 = '' OR customer_id = $2)"
        " AND payment_id > $3 ORDER BY payment_id LIMIT $4",
        who.business_unit, customer_id or "", paging.after or "", paging.limit + 1,
    )
    return Page.of([_payment(r) for r in rows], paging.limit, cursor=lambda r: r["id"])
