"""Bank payouts. No I/O here."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from saldo_kernel.aggregate import SaldoAggregate
from saldo_kernel.errors import Conflict
from saldo_kernel.money import Money, upcast_amounts

BankAccount = dict[str, str]  # IBAN (+ BIC) or Danish registration + account number (rule M4)
PayoutStatus = Literal["draft", "paid_out"]


class Payout(SaldoAggregate):
    """A bank payout of one refund. It starts as a draft, outside the accounting (rule B1)."""

    @staticmethod
    def create_id(refund_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"saldo:payout:{refund_id}")

    class Drafted(SaldoAggregate.Created):
        class_version = 2
        refund_id: UUID
        customer_id: str
        amount: Money
        bank_account: BankAccount | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(Drafted)
    def __init__(self, *, business_unit: str, refund_id: UUID, customer_id: str, amount: Money,
                 bank_account: BankAccount | None) -> None:
        self.business_unit = business_unit
        self.refund_id = refund_id
        self.customer_id = customer_id
        self.amount = amount
        self.bank_account = bank_account
        self.status: PayoutStatus = "draft"
        self.posting_date: date | None = None
        self.bank_date: date | None = None

    @property
    def ready(self) -> bool:
        """Ready for a payout file once the customer's bank account is known (rule B2)."""
        return self.status == "draft" and bool(self.bank_account)

    def mark_paid_out(self, *, today: date) -> None:
        """Ends the draft of a payout ready for the bank; posting and bank date are today
        (rules B2, B4, M2). A pending refund, with no bank account, cannot have been paid out."""
        if self.status != "draft":
            raise Conflict(f"payout {self.id} is already {self.status.replace('_', ' ')}")
        if not self.ready:
            raise Conflict(f"payout {self.id} is a pending refund: the customer's bank account is "
                           "not known yet, so the bank cannot have paid it out (rule B2)")
        self._marked_paid(refund_id=self.refund_id, customer_id=self.customer_id,
                          amount=self.amount, posting_date=today, bank_date=today)

    class MarkedPaid(SaldoAggregate.Event):
        class_version = 2
        refund_id: UUID
        customer_id: str
        amount: Money
        posting_date: date
        bank_date: date

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_amounts(state, "amount")

    @event(MarkedPaid)
    def _marked_paid(self, *, refund_id: UUID, customer_id: str, amount: Money, posting_date: date,
                     bank_date: date) -> None:
        self.status = "paid_out"
        self.posting_date = posting_date
        self.bank_date = bank_date
