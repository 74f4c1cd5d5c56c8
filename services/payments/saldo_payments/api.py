"""Payments HTTP routes."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import AwareDatetime, Field, model_validator

from saldo_events.envelope import CurrencyCode
from saldo_events.payments import PaymentMethod
from saldo_kernel.money import Money
from saldo_payments import queries
from saldo_payments.application import PaymentsApplication
from saldo_payments.queries import PaymentOut
from saldo_platform.http.app import etag, found_or_404, state
from saldo_platform.http.auth import Operator, Reader
from saldo_platform.http.bodies import MinorUnits
from saldo_platform.http.bodies import RequestBody as Body
from saldo_platform.http.pages import Page, Pages

router = APIRouter(tags=["payments"])


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


@router.post("/payments", status_code=201, response_model=PaymentOut)
def receive_payment(body: ReceivePayment, who: Operator, request: Request,
                    response: Response) -> PaymentOut:
    """A payment received, with the open invoices it pays at once (rules P1, P2, M6)."""
    application: PaymentsApplication = state(request, "application")
    payment = application.receive_payment(
        business_unit=who.business_unit, customer_id=body.customer_id, method=body.method,
        amount=Money(body.amount, body.currency), received_at=body.received_at,
        provider_reference=body.provider_reference,
        allocations={a.invoice_id: Money(a.amount, body.currency) for a in body.allocations},
    )
    response.headers["ETag"] = etag(payment.version)
    response.headers["Location"] = request.url_for("get_payment", payment_id=str(payment.id)).path
    return PaymentOut.of(payment)


class Allocate(Body):
    invoice_id: UUID
    amount: MinorUnits = Field(description="integer minor units of the payment's currency")


@router.post("/payments/{payment_id}/allocations", response_model=PaymentOut)
def allocate_payment(payment_id: UUID, body: Allocate, who: Operator,
                     request: Request, response: Response) -> PaymentOut:
    """Place unallocated money of a payment on an open invoice (rules P2, M6)."""
    application: PaymentsApplication = state(request, "application")
    payment = application.allocate_payment(business_unit=who.business_unit, payment_id=payment_id,
                                           invoice_id=body.invoice_id, minor_units=body.amount)
    response.headers["ETag"] = etag(payment.version)
    return PaymentOut.of(payment)


@router.get("/payments/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: UUID, who: Reader, request: Request, response: Response) -> PaymentOut:
    found = await queries.payment(state(request, "db"), who.business_unit, payment_id)
    return found_or_404(found, response, f"payment {payment_id}")


@router.get("/payments", summary="Payments, in the order they were received",
            response_model=Page[PaymentOut])
async def list_payments(who: Reader, request: Request, paging: Pages,
                        customer_id: str | None = None) -> Page[PaymentOut]:
    return await queries.payments(state(request, "db"), who.business_unit, paging,
                                  customer_id=customer_id)
