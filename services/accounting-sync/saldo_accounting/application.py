"""Accounting commands."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from saldo_accounting.domain import Posting
from saldo_platform.eventstore import EventStoreApplication


class AccountingApplication(EventStoreApplication):
    name = "accounting-sync"

    def record_posting(self, business_unit: str, source_event_id: UUID, source_event_type: str,
                       customer_id: str, currency: str, posting_date: date,
                       lines: list[dict[str, Any]]) -> list[Any]:
        if self.get_or_none(Posting.create_id(source_event_id)) is not None:
            return []  # this event was posted already: never book twice
        Posting.check_balanced(lines)
        return [Posting(business_unit, source_event_id, source_event_type, customer_id, currency,
                        posting_date, lines)]
