"""The tenant wall (rule M3) for every role that may read: operator, finance, auditor, admin.

Two business units work side by side on one running Saldo (distributed mode). Unit A's operator
issues an invoice, takes the payment, credits it and refunds part of it by bank; unit B's finance
clerk issues a small invoice and records a payment that is not allocated. Then each reading role
of each unit looks at everything it may read. Each sees its own unit whole and nothing of the
other: the same lists, resources, postings and trial balance (rule A1) whatever its role, and
another unit's resources are simply not found.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from saldo_platform.cli import open_api_keys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.scenarios import issue_invoice, pay_invoice
from tests.support import Saldo, distributed_env, eventually, settled, start_distributed

READING_ROLES = ("operator", "finance", "auditor", "admin")
BANK = {"registration_number": "1234", "account_number": "0001234567"}


@dataclass
class Unit:
    name: str
    customer: str
    ids: dict[str, str] = field(default_factory=dict)  # what it made: invoice, payment, ...

    def as_(self, role: str) -> str:
        """The label under which the test holds this unit's key with `role`."""
        return f"{self.name}:{role}"


@dataclass
class World:
    saldo: Saldo
    a: Unit
    b: Unit


@pytest.fixture(scope="module")
async def world(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    saldo = await start_distributed(env, tmp_path_factory.mktemp("tenant-wall"))
    keys = await open_api_keys(Settings.from_env(env))
    try:
        a, b = Unit("unit-a", "cust-a"), Unit("unit-b", "cust-b")
        for unit in (a, b):
            for role in READING_ROLES:
                saldo.keys[unit.as_(role)] = await keys.create(unit.name, [role], f"{role} of {unit.name}")
            saldo.keys[unit.name] = saldo.keys[unit.as_("admin")]  # the set-up's own reads
        await _unit_a_refunds_by_bank(saldo, a)
        await _unit_b_takes_an_unallocated_payment(saldo, b)
        await settled(saldo)
        yield World(saldo, a, b)
    finally:
        saldo.stop()
        await saldo.client.aclose()
        await keys.db.close()


async def _unit_a_refunds_by_bank(saldo: Saldo, a: Unit) -> None:
    """A's operator: invoice 100.00, paid by card, credited in full, 40.00 refunded by bank."""
    who = a.as_("operator")
    invoice = await issue_invoice(saldo, amount=10000, unit=who, customer=a.customer)
    payment = await pay_invoice(saldo, invoice, unit=who)
    credit = await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                              {"amount": 10000, "reason": "subscription stopped"}, business_unit=who)
    assert credit.status_code == 201, credit.text

    async def refundable() -> bool:
        found = await saldo.found("refunds", f"/v1/payments/{payment['id']}/refundable", a.name)
        return bool(found and found["refundable"] == 10000)

    await eventually(refundable, what="A's credited payment to be refundable")
    refund = await saldo.post("refunds", "/v1/refunds", {
        "payment_id": payment["id"], "amount": 4000, "reason": "goodwill", "channel": "bank",
        "bank_account": BANK}, business_unit=who)
    assert refund.status_code == 201, refund.text

    async def payout() -> dict[str, Any] | None:
        ready = (await saldo.get("payouts", "/v1/payouts/ready", a.name)).json()["items"]
        return next((p for p in ready if p["refund_id"] == refund.json()["id"]), None)

    drafted = await eventually(payout, what="A's payout under 'ready for bank payout'")
    a.ids.update(invoice=invoice["id"], payment=payment["id"], refund=refund.json()["id"],
                 payout=drafted["id"], credit_note=credit.json()["id"])


async def _unit_b_takes_an_unallocated_payment(saldo: Saldo, b: Unit) -> None:
    """B's finance clerk: invoice 7.00, and a 3.00 bank transfer not (yet) allocated."""
    who = b.as_("finance")
    invoice = await issue_invoice(saldo, amount=700, unit=who, customer=b.customer)
    payment = await saldo.post("payments", "/v1/payments", {
        "customer_id": b.customer, "method": "bank_transfer", "amount": 300, "currency": "DKK",
        "received_at": "2026-11-20T10:00:00Z"}, business_unit=who)
    assert payment.status_code == 201, payment.text
    b.ids.update(invoice=invoice["id"], payment=payment.json()["id"])


async def _read(saldo: Saldo, label: str, service: str, path: str) -> Any:
    response = await saldo.get(service, path, label)
    assert response.status_code == 200, (label, path, response.status_code, response.text)
    return response.json()


async def _ids(saldo: Saldo, label: str, service: str, path: str) -> list[str]:
    return [item["id"] for item in (await _read(saldo, label, service, path))["items"]]


@pytest.mark.parametrize("role", READING_ROLES)
async def test_each_unit_has_its_own_ledger_whoever_reads_it(world: World, role: str) -> None:
    """Rules M3 and A1: a unit's postings are the postings of its own events, and its trial
    balance adds up exactly those postings — zero, and nothing of the other unit in it."""
    saldo, a, b = world.saldo, world.a, world.b
    books = {}
    for unit in (a, b):
        postings = (await _read(saldo, unit.as_(role), "accounting-sync", "/v1/postings?limit=500"))["items"]
        balance = await _read(saldo, unit.as_(role), "accounting-sync", "/v1/trial-balance")
        books[unit.name] = postings
        assert {p["customer_id"] for p in postings} == {unit.customer}, (unit.name, postings)
        summed: dict[str, int] = defaultdict(int)
        for posting in postings:
            for line in posting["lines"]:
                summed[line["account"]] += line["debit"] - line["credit"]
        assert balance == {"currencies": {"DKK": {"accounts": dict(summed), "total": 0}},
                           "balanced": True}, (unit.name, balance)

    assert sorted((p["source_event_type"], sum(line["debit"] for line in p["lines"]))
                  for p in books[b.name]) == [("InvoiceIssued", 700), ("PaymentReceived", 300)]
    assert (await _read(saldo, b.as_(role), "accounting-sync", "/v1/trial-balance"))["currencies"] == {
        "DKK": {"accounts": {"bank": 300, "customer_credit": -300, "receivables": 700, "revenue": -700},
                "total": 0}}
    assert {"InvoiceIssued", "PaymentReceived", "CreditNoteIssued", "AmountReleased"} <= {
        p["source_event_type"] for p in books[a.name]}
    assert not {p["id"] for p in books[a.name]} & {p["id"] for p in books[b.name]}
    for posting in books[a.name]:  # B cannot find A's posting even by its source event
        path = f"/v1/postings?source_event_id={posting['source_event_id']}"
        assert (await _read(saldo, b.as_(role), "accounting-sync", path))["items"] == []


@pytest.mark.parametrize("role", ["operator", "finance"])
async def test_operator_and_finance_read_their_own_unit_and_nothing_of_another(world: World,
                                                                              role: str) -> None:
    """The two roles that do the daily work may read every list and every resource of their own
    unit (DESIGN.md: reads accept operator, finance, auditor); the other unit's resources are a
    404, exactly like an id that never existed (rule M3)."""
    saldo, a, b = world.saldo, world.a, world.b
    lists = [("invoicing", "/v1/invoices", "invoice"), ("payments", "/v1/payments", "payment"),
             ("refunds", "/v1/refunds", "refund"), ("payouts", "/v1/payouts/ready", "payout")]
    for unit in (a, b):
        for service, path, kind in lists:
            expected = [unit.ids[kind]] if kind in unit.ids else []
            assert await _ids(saldo, unit.as_(role), service, path) == expected, (unit.name, path)
        assert await _ids(saldo, unit.as_(role), "payouts", "/v1/payouts/pending") == []
        for_customer = f"/v1/invoices?customer_id={a.customer}"
        assert await _ids(saldo, unit.as_(role), "invoicing", for_customer) == (
            [a.ids["invoice"]] if unit is a else [])

    resources = [("invoicing", f"/v1/invoices/{a.ids['invoice']}"),
                 ("invoicing", f"/v1/invoices/{a.ids['invoice']}/credit-notes/{a.ids['credit_note']}"),
                 ("invoicing", f"/v1/invoices/{a.ids['invoice']}/credit-notes"),
                 ("payments", f"/v1/payments/{a.ids['payment']}"),
                 ("refunds", f"/v1/payments/{a.ids['payment']}/refundable"),
                 ("refunds", f"/v1/refunds/{a.ids['refund']}"),
                 ("payouts", f"/v1/payouts/{a.ids['payout']}")]
    for service, path in resources:
        assert (await saldo.get(service, path, a.as_(role))).status_code == 200, path
        theirs = await saldo.get(service, path, b.as_(role))
        never = await saldo.get(service, path.replace(path.split("/")[3], str(uuid.uuid4())), b.as_(role))
        assert theirs.status_code == never.status_code == 404, (path, theirs.text)
        assert theirs.json()["title"] == never.json()["title"]
    refundable = await _read(saldo, a.as_(role), "refunds", f"/v1/payments/{a.ids['payment']}/refundable")
    assert (refundable["in_progress"], refundable["refundable"]) == (4000, 6000)
    own = await _read(saldo, b.as_(role), "payments", f"/v1/payments/{b.ids['payment']}")
    assert (own["amount"], own["unallocated"]) == ({"amount": 300, "currency": "DKK"}, 300)
