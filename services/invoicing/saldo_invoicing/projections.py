"""The invoices read model: what the operators' invoice overview shows (rules I2, I3).

Invoices come from this service's topic and money from the payments topic, with no order
between the two: a payment may be read before its invoice. So what is paid is kept apart,
added up per invoice, and joined when read (queries.py, which also derives the status).
"""

from __future__ import annotations

from saldo_events import invoicing, payments
from saldo_events.envelope import IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class InvoicesProjection(Projection):
    name = "invoicing.invoices"
    schema = {
        "invoices": """(
            invoice_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, number BIGINT NOT NULL,
            customer_id TEXT NOT NULL, currency TEXT NOT NULL, total BIGINT NOT NULL,
            credited BIGINT NOT NULL, due_date TEXT NOT NULL, issued_at TEXT NOT NULL,
            version BIGINT NOT NULL)""",
        "invoice_payments": """(
            invoice_id TEXT PRIMARY KEY, paid BIGINT NOT NULL)""",
        "credit_notes": """(
            credit_note_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, business_unit TEXT NOT NULL,
            customer_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            reason TEXT NOT NULL, issued_at TEXT NOT NULL, version BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, invoicing.InvoiceIssued):
            await tx.execute(self.sql(
                "INSERT INTO {invoices} (invoice_id, business_unit, number, customer_id, currency,"
                " total, credited, due_date, issued_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.invoice_id), event.business_unit, event.number, event.customer_id,
                event.total.currency, event.total.amount, event.due_date.isoformat(),
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, invoicing.CreditNoteIssued):
            await tx.execute(self.sql(
                "UPDATE {invoices} SET credited = credited + $2, version = $3 WHERE invoice_id = $1"),
                str(event.invoice_id), event.amount.amount, event.aggregate_version,
            )
            await tx.execute(self.sql(
                "INSERT INTO {credit_notes} (credit_note_id, invoice_id, business_unit, customer_id,"
                " amount, currency, reason, issued_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"),
                str(event.credit_note_id), str(event.invoice_id), event.business_unit,
                event.customer_id, event.amount.amount, event.amount.currency, event.reason,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, payments.PaymentReceived):
            for allocation in event.allocations:
                await self._paid(tx, str(allocation.invoice_id), allocation.amount)
        elif isinstance(event, payments.PaymentAllocated):
            await self._paid(tx, str(event.invoice_id), event.amount.amount)
        elif isinstance(event, payments.AmountReleased):
            await self._paid(tx, str(event.invoice_id), -event.amount.amount)

    async def _paid(self, tx: Executor, invoice_id: str, amount: int) -> None:
        await tx.execute(self.sql(
            "INSERT INTO {invoice_payments} (invoice_id, paid) VALUES ($1, $2)"
            " ON CONFLICT (invoice_id) DO UPDATE SET paid = {invoice_payments}.paid + excluded.paid"),
            invoice_id, amount,
        )
