"""The payout aggregate's rules, without I/O."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from saldo_kernel.errors import Conflict
from saldo_kernel.money import Money
from saldo_payouts.domain import Payout

DKK50 = Money(5000, "DKK")


def test_B2_B4_a_payout_is_marked_paid_out_once() -> None:
    with_account = Payout(business_unit="bu", refund_id=uuid4(), customer_id="cust", amount=DKK50,
                          bank_account={"iban": "DK5000400440116243"})
    without = Payout(business_unit="bu", refund_id=uuid4(), customer_id="cust", amount=DKK50,
                     bank_account=None)
    assert with_account.ready and not without.ready  # ready list vs pending refunds
    with_account.mark_paid_out(today=date(2026, 11, 22))
    assert with_account.status == "paid_out" and not with_account.ready
    assert with_account.posting_date == with_account.bank_date == date(2026, 11, 22)
    with pytest.raises(Conflict):
        with_account.mark_paid_out(today=date(2026, 11, 23))
    with pytest.raises(Conflict, match="pending refund"):
        without.mark_paid_out(today=date(2026, 11, 22))
    assert without.status == "draft" and without.version == 1
