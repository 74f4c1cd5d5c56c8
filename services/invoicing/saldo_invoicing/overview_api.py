"""HTTP routes of the customer's overview and an invoice's history (rules P2, I2, I4, M3, E1, E3).

Queries only. The overview and the per-customer lists read the read models; the history reads
the event store, which is synchronous, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from saldo_invoicing import overview
from saldo_invoicing.overview import (
    CustomerOverview,
    CustomerPaymentOut,
    CustomerRefundOut,
    InvoiceEventOut,
    ReminderOut,
)
from saldo_invoicing.parties_api import CustomerId
from saldo_invoicing.queries import CreditNoteOut
from saldo_kernel.errors import NotFound
from saldo_platform.http.app import state
from saldo_platform.http.auth import Reader
from saldo_platform.http.pages import Page, Pages

router = APIRouter()


@router.get("/customers/{customer_id}/overview", tags=["customers"], response_model=CustomerOverview)
async def get_customer_overview(
        customer_id: CustomerId, who: Reader, request: Request,
        limit: Annotated[int, Query(ge=1, le=500, description="items in each list")] = 50,
) -> CustomerOverview:
    """The customer with their invoices (status and overdue, rule I2), credit notes, reminders
    (I4), subscriptions, payments (what is not allocated flagged, rule P2) and refunds; each
    list's next_cursor continues on that list's own route."""
    found = await overview.customer_overview(state(request, "db"), who.business_unit, customer_id, limit)
    if found is None:
        raise NotFound(f"customer {customer_id} not found")
    return found


async def _known(request: Request, business_unit: str, customer_id: str) -> None:
    """Another business unit's customer is not found here, not empty (rule M3)."""
    if not await overview.is_customer(state(request, "db"), business_unit, customer_id):
        raise NotFound(f"customer {customer_id} not found")


@router.get("/customers/{customer_id}/payments", tags=["customers"],
            response_model=Page[CustomerPaymentOut])
async def list_customer_payments(customer_id: CustomerId, who: Reader, request: Request,
                                 paging: Pages) -> Page[CustomerPaymentOut]:
    """The customer's payments in the order they were received, what is not allocated flagged
    (rule P2), as the payments and refunds services reported them."""
    await _known(request, who.business_unit, customer_id)
    return await overview.customer_payments(state(request, "db"), who.business_unit, customer_id, paging)


@router.get("/customers/{customer_id}/refunds", tags=["customers"], response_model=Page[CustomerRefundOut])
async def list_customer_refunds(customer_id: CustomerId, who: Reader, request: Request,
                                paging: Pages) -> Page[CustomerRefundOut]:
    """The refunds of the customer's payments in the order they were requested."""
    await _known(request, who.business_unit, customer_id)
    return await overview.customer_refunds(state(request, "db"), who.business_unit, customer_id, paging)


@router.get("/customers/{customer_id}/credit-notes", tags=["customers"], response_model=Page[CreditNoteOut])
async def list_customer_credit_notes(customer_id: CustomerId, who: Reader, request: Request,
                                     paging: Pages) -> Page[CreditNoteOut]:
    """The credit notes of all the customer's invoices in the order they were issued (rule I3)."""
    await _known(request, who.business_unit, customer_id)
    return await overview.credit_notes(state(request, "db"), who.business_unit, customer_id, paging)


@router.get("/customers/{customer_id}/reminders", tags=["customers"], response_model=Page[ReminderOut])
async def list_customer_reminders(customer_id: CustomerId, who: Reader, request: Request,
                                  paging: Pages) -> Page[ReminderOut]:
    """The reminders sent for the customer's invoices in the order they were sent (rule I4)."""
    await _known(request, who.business_unit, customer_id)
    return await overview.reminders(state(request, "db"), who.business_unit, customer_id, paging)


@router.get("/invoices/{invoice_id}/history", tags=["invoices"], response_model=Page[InvoiceEventOut])
async def get_invoice_history(invoice_id: UUID, who: Reader, request: Request,
                              paging: Pages) -> Page[InvoiceEventOut]:
    """Every event of the invoice in order, from its event store (rules E1, E3): what happened
    in operators' words, when (UTC), who and why, its correlation id, the amount, and the
    invoice's status, credited and paid right after it."""
    found = await asyncio.to_thread(overview.invoice_history, state(request, "application"),
                                    who.business_unit, invoice_id, paging)
    if found is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return found
