"""Money: integer minor units of one currency, never combined across currencies (rules M1, M6)."""

from __future__ import annotations

import pytest

from saldo_kernel.errors import DomainRuleViolated
from saldo_kernel.money import CurrencyMismatch, Money, total


def test_M1_amounts_of_one_currency_add_and_compare() -> None:
    assert Money(49900, "DKK") + Money(100, "DKK") == Money(50000, "DKK")
    assert Money(49900, "DKK") - Money(50000, "DKK") == Money(-100, "DKK")
    assert Money(1, "DKK") < Money(2, "DKK") and Money(2, "DKK").min(Money(1, "DKK")) == Money(1, "DKK")
    assert total([Money(1, "EUR"), Money(2, "EUR")], "EUR") == Money(3, "EUR")
    assert total([], "SEK") == Money.zero("SEK")


@pytest.mark.parametrize("combine", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b,
    lambda a, b: a > b, lambda a, b: a >= b, lambda a, b: a.min(b),
], ids=["+", "-", "<", "<=", ">", ">=", "min"])
def test_M1_amounts_in_two_currencies_are_never_combined(combine: object) -> None:
    with pytest.raises(CurrencyMismatch, match="499.00 DKK and 10.00 EUR"):
        combine(Money(49900, "DKK"), Money(1000, "EUR"))  # type: ignore[operator]


def test_M1_money_is_never_a_float_and_only_a_real_currency() -> None:
    with pytest.raises(TypeError):
        Money(499.0, "DKK")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "DKK")
    for code in ("XXX", "AAA", "dkk"):
        with pytest.raises(ValueError, match="ISO 4217"):
            Money(1, code)


def test_amounts_read_as_an_operator_writes_them() -> None:
    assert str(Money(49900, "DKK")) == "499.00 DKK"
    assert str(Money(100000000, "DKK")) == "1,000,000.00 DKK"
    assert str(Money(-5, "EUR")) == "-0.05 EUR"
    assert str(Money(1500, "JPY")) == "1,500 JPY"  # no minor unit
    assert str(Money(1234, "BHD")) == "1.234 BHD"  # three decimals
    assert Money(49900, "DKK").as_json() == {"amount": 49900, "currency": "DKK"}


def test_M6_at_most_what_is_left_positive_and_in_the_same_currency() -> None:
    left = Money(49900, "DKK")
    Money(49900, "DKK").check_positive_at_most(left, "a refund of", "payment 7 has {limit} refundable")
    with pytest.raises(DomainRuleViolated,
                       match=r"payment 7 has 499.00 DKK refundable; a refund of 499.01 DKK is more"):
        Money(49901, "DKK").check_positive_at_most(left, "a refund of", "payment 7 has {limit} refundable")
    with pytest.raises(DomainRuleViolated, match="not positive"):
        Money(0, "DKK").check_positive_at_most(left, "a refund of", "{limit}")
    with pytest.raises(CurrencyMismatch):
        Money(1, "EUR").check_positive_at_most(left, "a refund of", "{limit}")
