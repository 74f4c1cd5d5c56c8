"""Invoicing HTTP routes (commands run in a worker thread: the event store is synchronous)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from saldo_events.envelope import CurrencyCode
from saldo_invoicing import queries
from saldo_invoicing.application import InvoicingApplication
from saldo_invoicing.domain import InvoiceLine
from saldo_invoicing.parties_api import router as parties_router
from saldo_invoicing.queries import CreditNoteOut, InvoiceOut
from saldo_kernel.errors import NotFound
from saldo_kernel.money import Money
from saldo_platform.businessdates import today
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
    customer_id: str = Field(min_length=1, max_length=100)
    currency: CurrencyCode
    due_date: date
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class IssueCreditNote(Body):
    amount: Annotated[MinorUnits, Field(description="minor units, at most what is left to credit")]
    reason: str = Field(min_length=1, max_length=500)


def app(request: Request) -> InvoicingApplication:
    return state(request, "application")  # type: ignore[no-any-return]


@invoices.post("/invoices", status_code=201, response_model=InvoiceOut)
def issue_invoice(body: IssueInvoice, who: Operator, request: Request, response: Response) -> InvoiceOut:
    """Issue an invoice with the business unit's next number (rule I1)."""
    invoice = app(request).issue_invoice(
        business_unit=who.business_unit, customer_id=body.customer_id, due_date=body.due_date,
        lines=[InvoiceLine(description=line.description, amount=Money(line.amount, body.currency))
               for line in body.lines],
    )
    response.headers["ETag"] = etag(invoice.version)
    response.headers["Location"] = request.url_for("get_invoice", invoice_id=str(invoice.id)).path
    # Payments cannot have paid an invoice that did not exist until now.
    return InvoiceOut.of(invoice, paid=Money.zero(invoice.currency), today=today())


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
    found = await queries.invoice(state(request, "db"), who.business_unit, invoice_id, today=today())
    return found_or_404(found, response, f"invoice {invoice_id}")


@invoices.get("/invoices", response_model=Page[InvoiceOut])
async def list_invoices(who: Reader, request: Request, paging: Pages,
                        customer_id: Annotated[str | None, Query(max_length=100)] = None,
                        ) -> Page[InvoiceOut]:
    """The business unit's invoices in the order they were issued (of one customer, if given)."""
    return await queries.invoices(state(request, "db"), who.business_unit, paging,
                                  customer_id=customer_id, today=today())


# The service's routes: invoices, and the business entity, customers and subscriptions
# (parties_api.py), each under its own tags.
router = APIRouter()
router.include_router(invoices)
router.include_router(parties_router)
