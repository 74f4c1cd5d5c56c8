"""Reactions to other services' events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saldo_events import invoicing
from saldo_events.envelope import IntegrationEvent
from saldo_payments.application import PaymentsApplication
from saldo_platform.policy import Policy


class ReleaseOnCreditNote(Policy):
    """A credit note releases the credited amount from the invoice's payments (rule I3)."""

    name = "payments.release-on-credit-note"
    application: PaymentsApplication

    def react(self, event: IntegrationEvent) -> Sequence[Any]:
        if isinstance(event, invoicing.CreditNoteIssued):
            return self.application.release_for_credit_note(
                event.invoice_id, event.credit_note_id, event.amount.amount
            )
        return []
