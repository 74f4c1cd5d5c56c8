"""Money: integer minor units of one ISO 4217 currency (rules M1, M6). Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saldo_kernel.currencies import check_currency, format_money
from saldo_kernel.errors import DomainRuleViolated


class CurrencyMismatch(DomainRuleViolated):
    """Amounts in two currencies were combined: there is no rate inside a billing rule (M1)."""


@dataclass(frozen=True, slots=True)
class Money:
    minor_units: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int in Python; 1.0 is not money at all.
        if type(self.minor_units) is not int:
            raise TypeError(f"money is counted in integer minor units, not {self.minor_units!r}")
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"{other!r} is not Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"{self} and {other} are in different currencies and cannot be combined (rule M1)"
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor_units + other.minor_units, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor_units - other.minor_units, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor_units, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor_units < other.minor_units

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor_units <= other.minor_units

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor_units > other.minor_units

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor_units >= other.minor_units

    def __bool__(self) -> bool:
        return self.minor_units != 0

    @property
    def is_positive(self) -> bool:
        return self.minor_units > 0

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def __str__(self) -> str:
        """As an operator reads it: 49900 DKK → "499.00 DKK" (messages, never JSON)."""
        return format_money(self.minor_units, self.currency)

    def check_positive_at_most(self, limit: Money, what: str, available: str) -> None:
        """The one check behind "refund/allocate/credit at most what is left" (rules I3, P3, M6).

        `what` names the amount asked for ("a refund of"), `available` what limits it
        ("payment 12 has {limit} refundable"); both end up in the operator's message.
        """
        if not self.is_positive:
            raise DomainRuleViolated(f"{what} {self} is not positive; amounts are above zero")
        if self > limit:
            raise DomainRuleViolated(f"{available.format(limit=limit)}; {what} {self} is more than that")

    def as_json(self) -> dict[str, Any]:
        """The wire form used by every API and contract: {"amount": 49900, "currency": "DKK"}."""
        return {"amount": self.minor_units, "currency": self.currency}


def total(amounts: list[Money], currency: str) -> Money:
    """The sum of `amounts`, zero in `currency` when there are none."""
    result = Money.zero(currency)
    for amount in amounts:
        result += amount
    return result


def upcast_amounts(state: dict[str, Any], *fields: str) -> None:
    """Upcast an event stored before amounts were Money: integer `fields` and one `currency`.

    Used by an event class's `upcast_v1_v2` (class_version 2), so stores written by earlier
    builds stay readable.
    """
    currency = state.pop("currency")
    for name in fields:
        state[name] = Money(state[name], currency)
