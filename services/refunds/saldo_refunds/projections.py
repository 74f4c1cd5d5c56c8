"""The refunds list operators read: every refund and where it stands."""

from __future__ import annotations

from saldo_events import refunds
from saldo_events.envelope import IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class RefundsProjection(Projection):
    name = "refunds.refunds"
    schema = {
        "refunds": """(
            refund_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, payment_id TEXT NOT NULL,
            customer_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            channel TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
            requested_at TEXT NOT NULL, version BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, refunds.RefundRequested):
            await tx.execute(self.sql(
                "INSERT INTO {refunds} (refund_id, business_unit, payment_id, customer_id, amount,"
                " currency, channel, reason, status, requested_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9, $10)"
                " ON CONFLICT DO NOTHING"),
                str(event.refund_id), event.business_unit, str(event.payment_id), event.customer_id,
                event.amount.amount, event.amount.currency, event.channel, event.reason,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, refunds.RefundDrafted | refunds.RefundSucceeded):
            status = "drafted" if isinstance(event, refunds.RefundDrafted) else "completed"
            await tx.execute(self.sql(
                "UPDATE {refunds} SET status = $3, version = $2 WHERE refund_id = $1"),
                str(event.refund_id), event.aggregate_version, status,
            )
