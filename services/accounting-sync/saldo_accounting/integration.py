"""Which domain events are published, and as what."""

from __future__ import annotations

from typing import Any

from saldo_accounting.domain import Posting
from saldo_events import accounting as contracts
from saldo_events.envelope import IntegrationEvent
from saldo_platform.relay import envelope


def to_integration(e: Any) -> IntegrationEvent | None:
    if isinstance(e, Posting.Recorded):
        return contracts.PostingRecorded(
            **envelope(e), posting_id=e.originator_id, source_event_id=e.source_event_id,
            source_event_type=e.source_event_type, customer_id=e.customer_id,
            currency=e.currency, posting_date=e.posting_date,
            lines=[contracts.PostingLine(account=line.account.value, debit=line.debit.minor_units,
                                         credit=line.credit.minor_units) for line in e.lines],
        )
    return None
