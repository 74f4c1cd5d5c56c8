"""Invoicing HTTP routes (commands run in a worker thread: the event store is synchronous)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field, model_validator

from saldo_events.envelope import CurrencyCode
from saldo_invoicing import overview_api, queries
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.documents_api import router as documents_router
from saldo_invoicing.domain import InvoiceLine, InvoiceStatus
from saldo_invoicing.parties_api import router as parties_router
from saldo_invoicing.queries import CreditNoteOut, InvoiceOut, SubscriptionOut
from saldo_kernel.errors import NotFound
from saldo_kernel.money import Money
from saldo_platform.http.app import IfMatch, etag, found_or_404, state
from saldo_platform.http.auth import Operator, Reader
from saldo_platform.http.bodies import MinorUnits
from saldo_platform.http.bodies import RequestBody as Body
from saldo_platform.http.pages import Page, Pages

invoices = APIRouter(tags=["invoices"])


class LineIn(Body):
    description: str = Field(min_length=1, max_length=500)
    amount: MinorUnits


class IssueInvoice(Body):
    """Either the operator's own lines to a customer, or a subscription's next period."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=100)
    currency: CurrencyCode | None = None
    lines: list[LineIn] | None = Field(default=None, min_length=1, max_length=500)
    subscription_id: UUID | None = Field(
        default=None, description="invoice this subscription's next period at its price (C2)")
    due_date: date

    @model_validator(mode="after")
    def one_kind(self) -> IssueInvoice:
        own = (self.customer_id, self.currency, self.lines)
        if self.subscription_id is not None:
            if any(v is not None for v in own):
                raise ValueError("subscription_id: a subscription's period is invoiced at its price;"
                                 " send no customer_id, currency or lines with it")
        elif any(v is None for v in own):
            raise ValueError("customer_id, currency and lines are required (or a subscription_id)")
        return self


class IssueCreditNote(Body):
    amount: Annotated[MinorUnits, Field(description="minor units, at most what is left to credit")]
    reason: str = Field(min_length=1, max_length=500)


def app(request: Request) -> InvoicingApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@invoices.post("/invoices", status_code=201, response_model=InvoiceOut)
def issue_invoice(body: IssueInvoice, who: Operator, request: Request, response: Response) -> InvoiceOut:
    """Issue an invoice with the business unit's next number and FIK reference (rule I1), its
    channel resolved (C3): of the operator's own lines to a registered customer, or of a
    subscription's next period (C2)."""
    if body.subscription_id is not None:
        invoice = app(request).invoice_subscription(
            business_unit=who.business_unit, subscription_id=body.subscription_id,
            due_date=body.due_date)
    else:
        assert body.customer_id and body.currency and body.lines  # one_kind checked them
        invoice = app(request).issue_invoice(
            business_unit=who.business_unit, customer_id=body.customer_id, due_date=body.due_date,
            lines=[InvoiceLine(description=line.description, amount=Money(line.amount, body.currency))
                   for line in body.lines],
        )
    response.headers["ETag"] = etag(invoice.version)
    response.headers["Location"] = request.url_for("get_invoice", invoice_id=str(invoice.id)).path
    return InvoiceOut.of(invoice, today=app(request).unit_today(who.business_unit))


@invoices.post("/invoices/{invoice_id}/credit-notes", status_code=201, response_model=CreditNoteOut)
def issue_credit_note(invoice_id: UUID, body: IssueCreditNote, who: Operator, request: Request,
                      response: Response, expected_version: IfMatch) -> CreditNoteOut:
    """Credit part or all of an invoice (rule I3). Its ETag is the invoice's new version."""
    invoice = app(request).issue_credit_note(
        business_unit=who.business_unit, invoice_id=invoice_id, minor_units=body.amount,
        reason=body.reason, expected_version=expected_version,
    )
    credit_note = CreditNoteOut.just_issued(invoice)
    response.headers["ETag"] = etag(invoice.version)
    response.headers["Location"] = request.url_for(
        "get_credit_note", invoice_id=str(invoice.id), credit_note_id=str(credit_note.id)).path
    return credit_note


@invoices.get("/invoices/{invoice_id}/credit-notes/{credit_note_id}", response_model=CreditNoteOut)
async def get_credit_note(invoice_id: UUID, credit_note_id: UUID, who: Reader, request: Request,
                          response: Response) -> CreditNoteOut:
    found = await queries.credit_note(state(request, "db"), who.business_unit, invoice_id, credit_note_id)
    return found_or_404(found, response, f"credit note {credit_note_id} of invoice {invoice_id}")


@invoices.get("/invoices/{invoice_id}/credit-notes", response_model=Page[CreditNoteOut])
async def list_credit_notes(invoice_id: UUID, who: Reader, request: Request,
                            paging: Pages) -> Page[CreditNoteOut]:
    """An invoice's credit notes in the order they were issued."""
    found = await queries.credit_notes(state(request, "db"), who.business_unit, invoice_id, paging)
    if found is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return found


@invoices.get("/invoices/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: UUID, who: Reader, request: Request, response: Response) -> InvoiceOut:
    db = state(request, "db")
    found = await queries.invoice(db, who.business_unit, invoice_id,
                                  today=await queries.unit_today(db, who.business_unit))
    return found_or_404(found, response, f"invoice {invoice_id}")


@invoices.get("/invoices", response_model=Page[InvoiceOut])
async def list_invoices(who: Reader, request: Request, paging: Pages,
                        customer_id: Annotated[str | None, Query(max_length=100)] = None,
                        status: Annotated[InvoiceStatus | None, Query(description="rule I2")] = None,
                        overdue: Annotated[bool | None, Query(
                            description="unsettled and past due on the unit's business date")] = None,
                        ) -> Page[InvoiceOut]:
    """The business unit's invoices in the order they were issued: of one customer, in one
    status, overdue or not, if asked (rules I2, I4)."""
    db = state(request, "db")
    return await queries.invoices(db, who.business_unit, paging, customer_id=customer_id,
                                  status=status, overdue=overdue,
                                  today=await queries.unit_today(db, who.business_unit))


class StopSubscription(Body):
    stop_date: date = Field(description="the first day not served (rule C4)")
    issues_delivered: int | None = Field(
        default=None, ge=0, le=1000,
        description="issue-based periods: how many of the period's issues were delivered")
    reason: str = Field(min_length=1, max_length=500)


@invoices.post("/subscriptions/{subscription_id}/stop", response_model=SubscriptionOut,
               tags=["subscriptions"])
def stop_subscription(subscription_id: UUID, body: StopSubscription, who: Operator, request: Request,
                      response: Response) -> SubscriptionOut:
    """Stop it from `stop_date`; the unused part of its last invoiced period is credited by a
    credit note on that invoice (rule C4), which releases the money for a refund (I3)."""
    subscription, credited = app(request).stop_subscription(
        business_unit=who.business_unit, subscription_id=subscription_id, stop_date=body.stop_date,
        issues_delivered=body.issues_delivered, reason=body.reason)
    response.headers["ETag"] = etag(subscription.version)
    if credited is not None:
        response.headers["Link"] = "<{}>; rel=\"credit-note\"".format(request.url_for(
            "get_credit_note", invoice_id=str(credited.id),
            credit_note_id=str(next(reversed(credited.credit_notes)))).path)
    return SubscriptionOut.of(subscription)


# The service's routes: invoices, and the business entity, customers and subscriptions
# (parties_api.py), each under its own tags.
router = APIRouter()
router.include_router(invoices)
router.include_router(parties_router)
router.include_router(documents_router)
router.include_router(overview_api.router)
