"""Rule M6, read back from every service's read models of one business unit after they settled.

Money is conserved when what payments, invoicing, refunds and accounting-sync each show of it
adds up: for every payment amount = allocated + unallocated and unallocated = refundable + in
progress + refunded; no invoice is paid above what it still asks (total − credited); and the
ledger holds exactly that money on each account, its trial balance zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.support import Saldo


@dataclass
class Books:
    """What one business unit's read models show, per currency."""

    payments: list[dict[str, Any]] = field(default_factory=list)
    refundable: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment id -> /refundable
    invoices: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    trial_balance: dict[str, Any] = field(default_factory=dict)


async def everything(saldo: Saldo, service: str, path: str, unit: str) -> list[dict[str, Any]]:
    """All items of a list, page by page."""
    found: list[dict[str, Any]] = []
    after = ""
    while True:
        sep = "&" if "?" in path else "?"
        response = await saldo.get(service, f"{path}{sep}limit=500{after}", unit)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        if not page["next_cursor"]:
            return found
        after = f"&after={page['next_cursor']}"


async def read_books(saldo: Saldo, unit: str) -> Books:
    books = Books(
        payments=await everything(saldo, "payments", "/v1/payments", unit),
        invoices=await everything(saldo, "invoicing", "/v1/invoices", unit),
        refunds=await everything(saldo, "refunds", "/v1/refunds", unit),
    )
    for payment in books.payments:
        response = await saldo.get("refunds", f"/v1/payments/{payment['id']}/refundable", unit)
        assert response.status_code == 200, f"refunds does not know payment {payment['id']}: " \
                                             f"{response.status_code} {response.text}"
        books.refundable[payment["id"]] = response.json()
    response = await saldo.get("accounting-sync", "/v1/trial-balance", unit)
    assert response.status_code == 200, response.text
    books.trial_balance = response.json()
    return books


def assert_conserved(books: Books) -> None:
    """Rule M6 (with P2, P3, I2, I3, A1), for every payment, invoice and currency of the unit."""
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # ledger balances
    paid_by_customer: dict[tuple[str, str], int] = defaultdict(int)
    refunds_of: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for refund in books.refunds:
        refunds_of[refund["payment_id"]][refund["status"]] += refund["amount"]["amount"]

    for p in books.payments:
        amount, currency = p["amount"]["amount"], p["amount"]["currency"]
        seen = books.refundable[p["id"]]
        where = f"payment {p['id']} ({p['customer_id']}): {p} / refunds: {seen}"
        assert 0 <= p["allocated"] <= amount, where  # P2
        assert p["unallocated"] == amount - p["allocated"], where
        assert (seen["amount"], seen["currency"], seen["allocated"]) == (amount, currency,
                                                                         p["allocated"]), where
        assert seen["refundable"] >= 0, where  # P3
        assert p["unallocated"] == seen["refundable"] + seen["in_progress"] + seen["refunded"], where
        assert seen["refunded"] == refunds_of[p["id"]]["completed"], where
        assert seen["in_progress"] == refunds_of[p["id"]]["drafted"] + refunds_of[p["id"]]["requested"], \
            where
        paid_by_customer[(p["customer_id"], currency)] += p["allocated"]
        expected[currency]["bank"] += amount - seen["refunded"]
        expected[currency]["customer_credit"] -= p["unallocated"] - seen["refunded"]

    paid_on_invoices: dict[tuple[str, str], int] = defaultdict(int)
    for i in books.invoices:
        total, currency = i["total"]["amount"], i["total"]["currency"]
        where = f"invoice {i['number']}: {i}"
        assert 0 <= i["paid"] <= total - i["credited"] <= total, where  # M6, I3: never paid above
        paid_on_invoices[(i["customer_id"], currency)] += i["paid"]
        expected[currency]["receivables"] += total - i["credited"] - i["paid"]
        expected[currency]["revenue"] -= total - i["credited"]
    # What payments says it allocated is what invoicing says was paid, customer by customer.
    assert {k: v for k, v in paid_by_customer.items() if v} == \
        {k: v for k, v in paid_on_invoices.items() if v}

    balance = books.trial_balance
    assert balance["balanced"] is True, balance  # A1
    for currency, accounts in expected.items():
        shown = balance["currencies"].get(currency, {"accounts": {}, "total": 0})
        assert shown["total"] == 0, balance
        assert {a: v for a, v in shown["accounts"].items() if v} == \
            {a: v for a, v in accounts.items() if v}, (currency, balance)
    assert set(balance["currencies"]) <= set(expected), balance


async def assert_money_conserved(saldo: Saldo, unit: str) -> Books:
    """Read every service's view of `unit` (settle first) and check rule M6 on it."""
    books = await read_books(saldo, unit)
    assert_conserved(books)
    return books
