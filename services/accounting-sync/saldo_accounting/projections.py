"""The ledger: posting lines, from which the postings list and the trial balance are read."""

from __future__ import annotations

from saldo_events import accounting
from saldo_events.envelope import IntegrationEvent
from saldo_platform.http.pages import sortable_time
from saldo_platform.projection import Projection
from saldo_platform.sql import Executor


class LedgerProjection(Projection):
    name = "accounting.ledger"
    schema = {
        # One row per line; each carries its posting's fields, and `posted_at` (when the
        # posting was recorded) orders the postings list.
        "posting_lines": """(
            posting_id TEXT NOT NULL, line_no INTEGER NOT NULL, business_unit TEXT NOT NULL,
            source_event_id TEXT NOT NULL, source_event_type TEXT NOT NULL,
            customer_id TEXT NOT NULL, currency TEXT NOT NULL, posting_date TEXT NOT NULL,
            posted_at TEXT NOT NULL,
            account TEXT NOT NULL, debit BIGINT NOT NULL, credit BIGINT NOT NULL,
            PRIMARY KEY (posting_id, line_no))""",
    }

    async def project(self, tx: Executor, event: IntegrationEvent) -> None:
        if not isinstance(event, accounting.PostingRecorded):
            return
        for number, line in enumerate(event.lines):
            await tx.execute(self.sql(
                "INSERT INTO {posting_lines} (posting_id, line_no, business_unit, source_event_id,"
                " source_event_type, customer_id, currency, posting_date, posted_at, account,"
                " debit, credit)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"),
                str(event.posting_id), number, event.business_unit, str(event.source_event_id),
                event.source_event_type, event.customer_id, event.currency,
                event.posting_date.isoformat(), sortable_time(event.occurred_at), line.account,
                line.debit, line.credit,
            )
