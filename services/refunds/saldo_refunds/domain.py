"""Refunds and what the refunds service knows of each payment. No I/O here."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_events.currencies import format_money
from saldo_platform.errors import DomainRuleViolated
from saldo_platform.eventstore import SaldoAggregate


class PaymentAccount(SaldoAggregate):
    """A payment as the refunds service sees it: how much of it may still be refunded (rule P3).

    Every refund reserves its amount here in the same transaction as the refund is created, so
    two operators refunding at once conflict on this aggregate's version: one of them gets a
    409 and, retrying, sees the smaller refundable amount. The customer is never paid twice.
    """

    @staticmethod
    def create_id(payment_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:refundable:{payment_id}")

    @event("Opened")
    def __init__(self, business_unit: str, payment_id: UUID, customer_id: str, method: str,
                 amount: int, currency: str, received_at: datetime, allocated: int) -> None:
        self.business_unit = business_unit
        self.payment_id = payment_id
        self.customer_id = customer_id
        self.method = method
        self.amount = amount
        self.currency = currency
        self.received_at = received_at
        self.allocated = allocated  # what the payment paid at once is not refundable (P3)
        self.in_progress = 0
        self.refunded = 0
        self.seen: list[str] = []  # payment events already counted (they may come twice)
        self.pending: dict[str, int] = {}  # refund id -> amount, refunds still in progress

    @property
    def refundable(self) -> int:
        """Unallocated − refunds in progress − refunded; never below zero (rule P3).

        Below zero only for a moment, when an allocation made in payments before it heard of
        a refund arrives first; payments then gives the refund its money back (rule M6).
        """
        return max(0, self.amount - self.allocated - self.in_progress - self.refunded)

    def note_allocation_change(self, source_event_id: UUID, delta: int) -> bool:
        if str(source_event_id) in self.seen:
            return False
        self._allocation_changed(str(source_event_id), delta)
        return True

    @event("AllocationChanged")
    def _allocation_changed(self, source_event_id: str, delta: int) -> None:
        self.allocated += delta
        self.seen.append(source_event_id)

    def reserve(self, refund_id: UUID, amount: int) -> None:
        if amount <= 0:
            raise DomainRuleViolated("a refund's amount must be positive")
        if amount > self.refundable:
            raise DomainRuleViolated(
                f"payment {self.payment_id} has {format_money(self.refundable, self.currency)} "
                f"refundable; a refund of {format_money(amount, self.currency)} is more than that"
            )
        self._reserved(refund_id, amount)

    @event("Reserved")
    def _reserved(self, refund_id: UUID, amount: int) -> None:
        self.in_progress += amount
        self.pending[str(refund_id)] = amount

    def settle(self, refund_id: UUID) -> bool:
        """A refund completed: its amount moves from in progress to refunded (rule M6).

        Once per refund; False if it is not (or no longer) in progress.
        """
        amount = self.pending.get(str(refund_id))
        if amount is None:
            return False
        self._settled(refund_id, amount)
        return True

    @event("Settled")
    def _settled(self, refund_id: UUID, amount: int) -> None:
        self.in_progress -= amount
        self.refunded += amount
        del self.pending[str(refund_id)]


class Refund(SaldoAggregate):
    @event("Requested")
    def __init__(self, business_unit: str, payment_id: UUID, customer_id: str, amount: int,
                 currency: str, channel: str, reason: str, bank_account: dict[str, Any] | None) -> None:
        self.business_unit = business_unit
        self.payment_id = payment_id
        self.customer_id = customer_id
        self.amount = amount
        self.currency = currency
        self.channel = channel
        self.reason = reason
        self.bank_account = bank_account
        self.status = "requested"

    def draft_bank_payout(self) -> None:
        """Handed to the payouts service as a draft bank payout (rule B1)."""
        self._drafted(self.payment_id, self.customer_id, self.amount, self.currency, self.reason,
                      self.bank_account)

    @event("Drafted")
    def _drafted(self, payment_id: UUID, customer_id: str, amount: int, currency: str, reason: str,
                 bank_account: dict[str, Any] | None) -> None:
        self.status = "drafted"

    def complete(self, payout_id: UUID) -> bool:
        """Its bank payout was marked paid out (rule B4): the customer has the money.

        False if it had completed already (the payouts topic may deliver the news twice).
        """
        if self.status == "completed":
            return False
        if self.status != "drafted":
            raise DomainRuleViolated(f"refund {self.id} is {self.status}; only a drafted bank "
                                     "refund is completed by its payout")
        self._succeeded(payout_id, self.payment_id, self.customer_id, self.amount, self.currency,
                        self.channel)
        return True

    @event("Succeeded")
    def _succeeded(self, payout_id: UUID, payment_id: UUID, customer_id: str, amount: int,
                   currency: str, channel: str) -> None:
        self.status = "completed"
        self.payout_id = payout_id
