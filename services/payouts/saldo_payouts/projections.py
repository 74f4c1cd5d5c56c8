"""The payout lists operators work from: ready for bank payout, and pending (rule B2)."""

from __future__ import annotations

from saldo_events import payouts
from saldo_events.envelope import IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class PayoutsProjection(Projection):
    name = "payouts.payouts"
    schema = {
        "payouts": """(
            payout_id TEXT PRIMARY KEY, business_unit TEXT NOT NULL, refund_id TEXT NOT NULL,
            customer_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            bank_account TEXT, status TEXT NOT NULL, posting_date TEXT, bank_date TEXT,
            drafted_at TEXT NOT NULL, version BIGINT NOT NULL)""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if isinstance(event, payouts.PayoutDrafted):
            account = event.bank_account.model_dump_json(exclude_none=True) if event.bank_account else None
            await tx.execute(self.sql(
                "INSERT INTO {payouts} (payout_id, business_unit, refund_id, customer_id, amount,"
                " currency, bank_account, status, drafted_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $9) ON CONFLICT DO NOTHING"),
                str(event.payout_id), event.business_unit, str(event.refund_id), event.customer_id,
                event.amount.amount, event.amount.currency, account,
                sortable_time(event.occurred_at), event.aggregate_version,
            )
        elif isinstance(event, payouts.PayoutMarkedPaid):
            await tx.execute(self.sql(
                "UPDATE {payouts} SET status = 'paid_out', posting_date = $2, bank_date = $3,"
                " version = $4 WHERE payout_id = $1"),
                str(event.payout_id), event.posting_date.isoformat(), event.bank_date.isoformat(),
                event.aggregate_version,
            )
