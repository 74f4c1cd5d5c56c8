"""Refunds and what the refunds service knows of each payment. No I/O here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeGuard, get_args
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money, upcast_amounts

BankAccount = dict[str, str]  # IBAN (+ BIC) or Danish registration + account number (rule M4)
RefundStatus = Literal["requested", "drafted", "completed"]

# Every channel rule R2 names, and those the product can pay a refund through today. Card
# (R3), MobilePay (R4) and manual (R5) refunds are not built: they are preselected from the
# payment's method all the same, and refused with the reason, never silently re-routed.
RefundChannel = Literal["card", "mobilepay", "manual", "bank"]
AvailableChannel = Literal["bank"]
CHANNELS_BUILT: tuple[AvailableChannel, ...] = get_args(AvailableChannel)


def preselected_channel(method: str) -> RefundChannel:
    """Card back to the card, MobilePay back through MobilePay, the rest by bank (rule R2)."""
    if method == "card":
        return "card"
    if method == "mobilepay":
        return "mobilepay"
    return "bank"


def is_available(channel: str) -> TypeGuard[AvailableChannel]:
    return channel in CHANNELS_BUILT


def not_available_yet(channel: str) -> str:
    """Why a refund cannot go through `channel`, in the operator's words (also the HTTP 422)."""
    return (f"the {channel} refund channel is not available yet; "
            f"choose channel {' or '.join(repr(c) for c in CHANNELS_BUILT)}")


class PaymentAccount(SaldoAggregate):
    """A payment as the refunds service sees it: how much of it may still be refunded (rule P3).

    Every refund reserves its amount here in the same transaction as the refund is created, so
    two operators refunding at once conflict on this aggregate's version: one of them gets a
    409 and, retrying, sees the smaller refundable amount. The customer is never paid twice.

    Only `Opened` stores Money. `AllocationChanged`, `Reserved` and `Settled` were stored as
    bare minor units by earlier builds, without a currency to upcast them with; they stay minor
    units of the payment's currency, and the methods below take and give Money.
    """

    @staticmethod
    def create_id(payment_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:refundable:{payment_id}")

    class Opened(SaldoAggregate.Created):
        class_version = 2
        payment_id: UUID
        customer_id: str
        method: str
        amount: Money
        received_at: datetime
        allocated: Money

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount", "allocated")

    @event(Opened)
    def __init__(self, *, business_unit: str, payment_id: UUID, customer_id: str, method: str,
                 amount: Money, received_at: datetime, allocated: Money) -> None:
        self.business_unit = business_unit
        self.payment_id = payment_id
        self.customer_id = customer_id
        self.method = method
        self.amount = amount
        self.received_at = received_at
        self.allocated = allocated  # what the payment paid at once is not refundable (P3)
        self.in_progress = Money.zero(amount.currency)
        self.refunded = Money.zero(amount.currency)
        self.seen: list[str] = []  # payment events already counted (they may come twice)
        self.pending: dict[str, Money] = {}  # refund id -> amount, refunds still in progress

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def refundable(self) -> Money:
        """Unallocated − refunds in progress − refunded; never below zero (rule P3).

        Below zero only for a moment, when an allocation made in payments before it heard of
        a refund arrives first; payments then gives the refund its money back (rule M6).
        """
        left = self.amount - self.allocated - self.in_progress - self.refunded
        return max(left, Money.zero(self.currency))

    def note_allocation_change(self, *, source_event_id: UUID, delta: Money) -> bool:
        """Payments placed (+) or released (−) money of this payment. Once per payments event."""
        if str(source_event_id) in self.seen:
            return False
        if delta.currency != self.currency:
            raise CurrencyMismatch(f"payment {self.payment_id} is in {self.currency}; an allocation "
                                   f"change of {delta} cannot apply to it (rule M1)")
        self._allocation_changed(source_event_id=str(source_event_id), delta=delta.minor_units)
        return True

    class AllocationChanged(SaldoAggregate.Event):
        source_event_id: str
        delta: int  # minor units of the payment's currency

    @event(AllocationChanged)
    def _allocation_changed(self, *, source_event_id: str, delta: int) -> None:
        self.allocated += Money(delta, self.currency)
        self.seen.append(source_event_id)

    def request_refund(self, *, amount: Money, reason: str, channel: RefundChannel | None,
                       bank_account: BankAccount | None) -> Refund:
        """A refund from this payment (rule R1), through the operator's channel or the one its
        method preselects (R2), of at most what is refundable (P3). A bank refund is drafted as
        a bank payout at once (B1)."""
        refund: Refund = Refund(
            business_unit=self.business_unit, payment_id=self.payment_id,
            customer_id=self.customer_id, amount=amount, channel=self.refund_channel(channel),
            reason=reason, bank_account=bank_account)
        self.reserve(refund_id=refund.id, amount=amount)
        if refund.channel == "bank":
            refund.draft_bank_payout()
        return refund

    def refund_channel(self, requested: RefundChannel | None) -> AvailableChannel:
        """The operator's channel, or else the one preselected from the payment's method (R2);
        either way one the product can pay through today."""
        channel = requested or preselected_channel(self.method)
        if is_available(channel):
            return channel
        if requested is None:
            raise DomainRuleViolated(
                f"payment {self.payment_id} was paid by {self.method}, which preselects the "
                f"{channel} refund channel (rule R2); {not_available_yet(channel)}")
        raise DomainRuleViolated(not_available_yet(channel))

    def reserve(self, *, refund_id: UUID, amount: Money) -> None:
        """A refund in progress holds its amount until it completes (rules P3, R1)."""
        amount.check_positive_at_most(self.refundable, "a refund of",
                                      f"payment {self.payment_id} has {{limit}} refundable")
        self._reserved(refund_id=refund_id, amount=amount.minor_units)

    class Reserved(SaldoAggregate.Event):
        refund_id: UUID
        amount: int  # minor units of the payment's currency

    @event(Reserved)
    def _reserved(self, *, refund_id: UUID, amount: int) -> None:
        money = Money(amount, self.currency)
        self.in_progress += money
        self.pending[str(refund_id)] = money

    def settle(self, *, refund_id: UUID) -> bool:
        """A refund completed: its amount moves from in progress to refunded (rule M6).

        Once per refund; False if it is not (or no longer) in progress.
        """
        amount = self.pending.get(str(refund_id))
        if amount is None:
            return False
        self._settled(refund_id=refund_id, amount=amount.minor_units)
        return True

    class Settled(SaldoAggregate.Event):
        refund_id: UUID
        amount: int  # minor units of the payment's currency

    @event(Settled)
    def _settled(self, *, refund_id: UUID, amount: int) -> None:
        money = Money(amount, self.currency)
        self.in_progress -= money
        self.refunded += money
        del self.pending[str(refund_id)]


class Refund(SaldoAggregate):
    """Money given back from one payment, through one channel (rules R1, R2)."""

    class Requested(SaldoAggregate.Created):
        class_version = 2
        payment_id: UUID
        customer_id: str
        amount: Money
        channel: AvailableChannel
        reason: str
        bank_account: BankAccount | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(Requested)
    def __init__(self, *, business_unit: str, payment_id: UUID, customer_id: str, amount: Money,
                 channel: AvailableChannel, reason: str, bank_account: BankAccount | None) -> None:
        self.business_unit = business_unit
        self.payment_id = payment_id
        self.customer_id = customer_id
        self.amount = amount
        self.channel = channel
        self.reason = reason
        self.bank_account = bank_account
        self.status: RefundStatus = "requested"
        self.payout_id: UUID | None = None

    def draft_bank_payout(self) -> None:
        """Handed to the payouts service as a draft bank payout (rule B1)."""
        self._drafted(payment_id=self.payment_id, customer_id=self.customer_id, amount=self.amount,
                      reason=self.reason, bank_account=self.bank_account)

    class Drafted(SaldoAggregate.Event):
        class_version = 2
        payment_id: UUID
        customer_id: str
        amount: Money
        reason: str
        bank_account: BankAccount | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(Drafted)
    def _drafted(self, *, payment_id: UUID, customer_id: str, amount: Money, reason: str,
                 bank_account: BankAccount | None) -> None:
        self.status = "drafted"

    def complete(self, *, payout_id: UUID) -> bool:
        """Its bank payout was marked paid out (rule B4): the customer has the money.

        False if it had completed already (the payouts topic may deliver the news twice).
        """
        if self.status == "completed":
            return False
        if self.status != "drafted":
            raise DomainRuleViolated(f"refund {self.id} is {self.status}; only a drafted bank "
                                     "refund is completed by its payout")
        self._succeeded(payout_id=payout_id, payment_id=self.payment_id,
                        customer_id=self.customer_id, amount=self.amount, channel=self.channel)
        return True

    class Succeeded(SaldoAggregate.Event):
        class_version = 2
        payout_id: UUID
        payment_id: UUID
        customer_id: str
        amount: Money
        channel: AvailableChannel

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(Succeeded)
    def _succeeded(self, *, payout_id: UUID, payment_id: UUID, customer_id: str, amount: Money,
                   channel: AvailableChannel) -> None:
        self.status = "completed"
        self.payout_id = payout_id
