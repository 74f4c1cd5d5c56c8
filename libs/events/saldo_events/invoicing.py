"""Events published by the invoicing service."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import StrictInt

from saldo_events.envelope import Amount, Contract, IntegrationEvent, Money


class InvoiceLine(Contract):
    description: str
    amount: Amount


class InvoiceIssued(IntegrationEvent):
    SERVICE = "invoicing"
    invoice_id: UUID
    number: StrictInt
    customer_id: str
    total: Money
    due_date: date
    lines: list[InvoiceLine]


class CreditNoteIssued(IntegrationEvent):
    SERVICE = "invoicing"
    invoice_id: UUID
    credit_note_id: UUID
    customer_id: str
    amount: Money
    reason: str
