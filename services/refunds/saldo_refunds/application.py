"""Refunds commands, and the reactions to payments and payouts (one method per command)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.application import ProcessingEvent

from saldo_kernel.errors import NotFound
from saldo_kernel.money import Money
from saldo_platform.eventstore import EventStoreApplication
from saldo_refunds.domain import BankAccount, PaymentAccount, Refund, RefundChannel


class RefundsApplication(EventStoreApplication):
    name = "refunds"

    def payment_account(self, *, business_unit: str, payment_id: UUID) -> PaymentAccount:
        """What may still be refunded from one payment of the caller's business unit (rule P3)."""
        account = self.get_or_none(PaymentAccount.create_id(payment_id))
        if not isinstance(account, PaymentAccount) or account.business_unit != business_unit:
            raise NotFound(f"payment {payment_id} not found (a new payment can take a moment to appear)")
        return account

    def request_refund(self, *, business_unit: str, payment_id: UUID, minor_units: int, reason: str,
                       channel: RefundChannel | None, bank_account: BankAccount | None) -> Refund:
        """A refund of `minor_units` of the payment's own currency: it is refunded in what it paid."""
        account = self.payment_account(business_unit=business_unit, payment_id=payment_id)
        refund = account.request_refund(amount=Money(minor_units, account.currency), reason=reason,
                                        channel=channel, bank_account=bank_account)
        self.save(account, refund)
        return refund

    # --- reactions to other services' events (policies.py) ---

    def payment_received(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                         payment_id: UUID, customer_id: str, method: str, amount: Money,
                         received_at: datetime, allocated: Money) -> None:
        if self.get_or_none(PaymentAccount.create_id(payment_id)) is not None:
            return  # one account per payment, however often the payment is announced
        processing_event.collect_events(PaymentAccount(
            business_unit=business_unit, payment_id=payment_id, customer_id=customer_id,
            method=method, amount=amount, received_at=received_at, allocated=allocated))

    def allocation_changed(self, processing_event: ProcessingEvent[UUID], *, payment_id: UUID,
                           source_event_id: UUID, delta: Money) -> None:
        account: PaymentAccount = self.repository.get(PaymentAccount.create_id(payment_id))
        if account.note_allocation_change(source_event_id=source_event_id, delta=delta):
            processing_event.collect_events(account)

    def payout_paid(self, processing_event: ProcessingEvent[UUID], *, business_unit: str,
                    refund_id: UUID, payout_id: UUID) -> None:
        """The refund's payout was paid out: the refund completes and counts as refunded (M6)."""
        refund = self.get_or_none(refund_id)
        if not isinstance(refund, Refund) or refund.business_unit != business_unit:
            raise NotFound(f"refund {refund_id} of payout {payout_id} is not known to refunds")
        if not refund.complete(payout_id=payout_id):
            return  # completed already: the payouts topic delivered the news again
        account: PaymentAccount = self.repository.get(PaymentAccount.create_id(refund.payment_id))
        account.settle(refund_id=refund.id)
        processing_event.collect_events(refund, account)
