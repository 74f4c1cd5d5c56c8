"""Read models of the payments service."""

from __future__ import annotations

from saldo_events import invoicing, payments
from saldo_events.envelope import IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class PaymentsProjection(Projection):
    """Payments with what is allocated of them: the operators' cue that money waits (rule P2).

    It adds up the amounts the events carry and decides nothing: what may be allocated or
    released is decided by the domain before the event exists.
    """

    name = "payments.payments"
    schema = {
        "payments": """(
            payment_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, customer_id TEXT NOT NULL,
            method TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            allocated BIGINT NOT NULL, received_at TEXT NOT NULL,
            provider_reference TEXT, version BIGINT NOT NULL)""",
        "known_invoices": """(
            invoice_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, currency TEXT NOT NULL,
            total BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, payments.PaymentReceived):
            await tx.execute(self.sql(
                "INSERT INTO {payments} (payment_id, business_unit, customer_id, method, amount,"
                " currency, allocated, received_at, provider_reference, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"),
                str(event.payment_id), event.business_unit, event.customer_id, event.method,
                event.amount.amount, event.amount.currency,
                sum(a.amount for a in event.allocations), sortable_time(event.received_at),
                event.provider_reference, event.aggregate_version,
            )
        elif isinstance(event, payments.PaymentAllocated | payments.AmountReleased):
            sign = 1 if isinstance(event, payments.PaymentAllocated) else -1
            await tx.execute(self.sql(
                "UPDATE {payments} SET allocated = allocated + $2, version = $3 WHERE payment_id = $1"),
                str(event.payment_id), sign * event.amount.amount, event.aggregate_version,
            )
        elif isinstance(event, invoicing.InvoiceIssued):
            await tx.execute(self.sql(
                "INSERT INTO {known_invoices} (invoice_id, business_unit, currency, total)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"),
                str(event.invoice_id), event.business_unit, event.total.currency, event.total.amount,
            )
