"""Rule M6, money is conserved, and the rules it rests on (P1, P2, P3, I2, I3, R1, B4, M1, M3):
over real HTTP against the services as OS processes on PostgreSQL and Kafka.

Every refusal is a 422 problem an operator can act on, and writes nothing: after the services
settled (every relay and consumer at the end of its topics, tests/support.py) the books of the
business unit still add up (tests/money.py).

One Saldo serves most of the module; each test has its own business units. The two races get
their own: one with a meeting point before the commit, one with payments' consumers stopped.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from saldo_events import decode, encode
from saldo_events.envelope import Money
from saldo_platform.cli import open_api_keys
from saldo_platform.http.auth import ApiKeys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.kafka_tools import produce, read_topic
from tests.money import Books, assert_money_conserved
from tests.scenarios import register_customer, set_up_business_unit
from tests.support import (
    Process,
    Saldo,
    dead_letters,
    distributed_with_keys,
    settled,
    start_distributed,
    wait_healthy,
)
from tests.test_contracts import invoice_issued

PROBLEM = "application/problem+json"
BANK = {"registration_number": "1234", "account_number": "0001234567"}
RECEIVED = "2026-11-20T10:00:00Z"

_keys: ApiKeys


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    global _keys
    async with distributed_with_keys(infra.database_url, infra.kafka_bootstrap,
                                     tmp_path_factory.mktemp("m6")) as (running, _keys):
        yield running


async def new_unit(saldo: Saldo, keys: ApiKeys | None = None, currency: str = "DKK") -> str:
    """A fresh business unit, set up to invoice in `currency` (its business entity, rule M4)."""
    unit = f"m6-{uuid.uuid4().hex[:8]}"
    saldo.keys[unit] = await (keys or _keys).create(unit, ["admin"], f"test key for {unit}")
    await set_up_business_unit(saldo, unit, currency)
    return unit


def refused(response: httpx.Response, status: int = 422) -> str:
    """The problem's detail, after checking it is an RFC 9457 problem with that status."""
    assert response.status_code == status, f"not {status}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    detail: str = response.json()["detail"]
    return detail


async def invoice(saldo: Saldo, unit: str, amount: int, customer: str = "alice",
                  currency: str = "DKK") -> dict[str, Any]:
    """An invoice to `customer`, registered first (rule C1; a repeated PUT changes nothing)."""
    await register_customer(saldo, unit, customer)
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": customer, "currency": currency, "due_date": "2026-12-31",
        "lines": [{"description": "Magazine, 12 months", "amount": amount}]}, business_unit=unit)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def receive(saldo: Saldo, unit: str, amount: int, customer: str = "alice",
                  allocations: list[tuple[str, int]] | None = None, currency: str = "DKK",
                  received_at: str = RECEIVED) -> httpx.Response:
    return await saldo.post("payments", "/v1/payments", {
        "customer_id": customer, "method": "bank_transfer", "amount": amount, "currency": currency,
        "received_at": received_at, "provider_reference": "bank-1",
        "allocations": [{"invoice_id": i, "amount": a} for i, a in allocations or []]},
        business_unit=unit)


async def allocate(saldo: Saldo, unit: str, payment_id: str, invoice_id: str,
                   amount: int) -> httpx.Response:
    return await saldo.post("payments", f"/v1/payments/{payment_id}/allocations",
                            {"invoice_id": invoice_id, "amount": amount}, business_unit=unit)


async def credit(saldo: Saldo, unit: str, invoice_id: str, amount: int) -> None:
    response = await saldo.post("invoicing", f"/v1/invoices/{invoice_id}/credit-notes",
                                {"amount": amount, "reason": "subscription stopped"},
                                business_unit=unit)
    assert response.status_code == 201, response.text


async def books(saldo: Saldo, unit: str) -> Books:
    """Settled, then M6 checked on everything the unit's read models show."""
    await settled(saldo)
    return await assert_money_conserved(saldo, unit)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


# --- allocation never above the open amount --------------------------------------------------------

async def test_M6_an_allocation_never_exceeds_the_invoices_open_amount(saldo: Saldo) -> None:
    """Rules M6, P2, I3: 1,000.00 allocated in full to a 499.00 invoice is refused and writes
    nothing; allocated 499.00, the payment keeps 501.00 unallocated and refundable; the open
    amount is total − credited − already allocated, at receipt and later; after a full credit
    note the whole 1,000.00 is refundable (it used to be 499.00, and 501.00 showed nowhere)."""
    unit = await new_unit(saldo)
    bill = await invoice(saldo, unit, 49900)
    await settled(saldo)  # payments has opened the invoice's account

    detail = refused(await receive(saldo, unit, 100000, allocations=[(bill["id"], 100000)]))
    assert f"invoice {bill['number']} has 499.00 DKK open" in detail, detail
    assert "an allocation of 1,000.00 DKK is more than that" in detail, detail
    state = await books(saldo, unit)
    assert state.payments == [] and by_id(state.invoices)[bill["id"]]["paid"] == 0  # nothing written

    paid = await receive(saldo, unit, 100000, allocations=[(bill["id"], 49900)])
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["unallocated"] == 50100
    detail = refused(await allocate(saldo, unit, payment["id"], bill["id"], 1))
    assert f"invoice {bill['number']} is paid in full" in detail, detail
    state = await books(saldo, unit)
    assert by_id(state.invoices)[bill["id"]]["status"] == "paid"
    assert state.refundable[payment["id"]]["refundable"] == 50100

    # A partial credit note releases what it credits; the invoice stays settled, nothing is open.
    await credit(saldo, unit, bill["id"], 10000)
    await books(saldo, unit)
    refused(await allocate(saldo, unit, payment["id"], bill["id"], 1))
    second = await invoice(saldo, unit, 20000)
    await settled(saldo)
    detail = refused(await allocate(saldo, unit, payment["id"], second["id"], 20001))
    assert "200.00 DKK open" in detail, detail
    placed = await allocate(saldo, unit, payment["id"], second["id"], 20000)
    assert placed.status_code == 200, placed.text
    assert placed.json()["unallocated"] == 100000 - 39900 - 20000

    await credit(saldo, unit, bill["id"], 39900)  # the rest of the first invoice: fully credited
    state = await books(saldo, unit)
    assert by_id(state.invoices)[bill["id"]]["status"] == "credited"
    assert state.refundable[payment["id"]]["refundable"] == 80000  # all of it but the 200.00 placed


async def test_M6_I3_a_credit_note_on_a_partly_paid_invoice_leaves_open_what_is_still_owed(
        saldo: Saldo) -> None:
    """Rules M6, I3: 300.00 invoiced, 100.00 paid, then credited 250.00: the credit note releases
    the 100.00 and the invoice asks 50.00 more. Exactly that may be placed on it, not a minor
    unit more: payments' account of the invoice follows both the credit and the release."""
    unit = await new_unit(saldo)
    bill = await invoice(saldo, unit, 30000)
    await settled(saldo)
    paid = await receive(saldo, unit, 10000, allocations=[(bill["id"], 10000)])
    assert paid.status_code == 201, paid.text
    await credit(saldo, unit, bill["id"], 25000)
    state = await books(saldo, unit)
    assert (by_id(state.invoices)[bill["id"]]["paid"], state.payments[0]["unallocated"]) == (0, 10000)

    detail = refused(await allocate(saldo, unit, paid.json()["id"], bill["id"], 5001))
    assert "has 50.00 DKK open (total 300.00 DKK, credited 250.00 DKK" in detail, detail
    placed = await allocate(saldo, unit, paid.json()["id"], bill["id"], 5000)
    assert placed.status_code == 200, placed.text
    state = await books(saldo, unit)
    assert by_id(state.invoices)[bill["id"]]["status"] == "paid"
    assert state.refundable[paid.json()["id"]]["refundable"] == 5000


async def test_M6_two_payments_at_once_never_pay_an_invoice_above_its_total(
        env: dict[str, str], tmp_path: Path) -> None:
    """Rule M6 under concurrency: two payments placed on one invoice for its whole open amount,
    both checked before either is saved (a meeting point before the commit), five rounds,
    alternately at receipt and later. One is made; the other runs again on the newer invoice
    account and is refused. The invoice is never paid above its total."""
    saldo = await start_distributed(
        env, tmp_path, services=("invoicing", "payments", "refunds", "accounting-sync"),
        service_env={"payments": {"SALDO_MEETINGS": "before-commit@http@payments:2"}})
    keys = await open_api_keys(Settings.from_env(env))
    try:
        unit = await new_unit(saldo, keys)
        for round_ in range(5):
            bill = await invoice(saldo, unit, 49900)
            await settled(saldo)
            if round_ % 2 == 0:  # both at receipt
                responses = await asyncio.gather(*[
                    receive(saldo, unit, 49900, allocations=[(bill["id"], 49900)]) for _ in range(2)])
            else:  # both later, from two loose payments (made together: payments meets in pairs)
                loose = await asyncio.gather(*[receive(saldo, unit, 49900) for _ in range(2)])
                assert [r.status_code for r in loose] == [201, 201], [r.text for r in loose]
                responses = await asyncio.gather(*[
                    allocate(saldo, unit, r.json()["id"], bill["id"], 49900) for r in loose])
            ok = 201 if round_ % 2 == 0 else 200
            assert sorted(r.status_code for r in responses) == sorted([ok, 422]), \
                [(r.status_code, r.text) for r in responses]
            detail = refused(next(r for r in responses if r.status_code == 422))
            assert "paid in full" in detail, detail
            state = await books(saldo, unit)
            assert by_id(state.invoices)[bill["id"]]["paid"] == 49900, round_
    finally:
        saldo.stop()
        await saldo.client.aclose()
        await keys.close()


# --- only the payer's own open invoices, same unit and currency ------------------------------------

async def test_M6_money_goes_only_to_the_payers_own_open_invoices(saldo: Saldo) -> None:
    """Rules M6, M1, M3, I2: bob's payment is not allocated to alice's invoice (at receipt or
    later); nor to his own invoice when the payment is in another currency (a unit invoices in
    its entity's currency only, rule M4, so the other currency is the payment's), nor to a
    fully credited one; another business unit's invoice is not found at all. Each refusal
    writes nothing."""
    unit, other = await new_unit(saldo), await new_unit(saldo)
    alices = await invoice(saldo, unit, 30000, customer="alice")
    bobs = await invoice(saldo, unit, 30000, customer="bob")
    credited = await invoice(saldo, unit, 30000, customer="bob")
    theirs = await invoice(saldo, other, 30000, customer="bob")
    await credit(saldo, unit, credited["id"], 30000)
    await settled(saldo)

    detail = refused(await receive(saldo, unit, 30000, customer="bob",
                                   allocations=[(alices["id"], 30000)]))
    assert "customer 'alice'" in detail and "customer 'bob'" in detail, detail
    assert "in DKK, the payment in EUR" in refused(await receive(
        saldo, unit, 30000, customer="bob", currency="EUR", allocations=[(bobs["id"], 30000)]))
    assert "fully credited" in refused(await receive(
        saldo, unit, 30000, customer="bob", allocations=[(credited["id"], 1)]))
    refused(await receive(saldo, unit, 30000, customer="bob", allocations=[(theirs["id"], 1)]), 404)
    state = await books(saldo, unit)
    assert state.payments == []

    loose = await receive(saldo, unit, 30000, customer="bob")
    assert loose.status_code == 201, loose.text
    payment_id = loose.json()["id"]
    in_euro = await receive(saldo, unit, 30000, customer="bob", currency="EUR")
    assert in_euro.status_code == 201, in_euro.text
    await settled(saldo)
    assert "customer 'alice'" in refused(await allocate(saldo, unit, payment_id, alices["id"], 100))
    assert "in DKK, the payment in EUR" in refused(
        await allocate(saldo, unit, in_euro.json()["id"], bobs["id"], 100))
    refused(await allocate(saldo, unit, payment_id, credited["id"], 100))
    refused(await allocate(saldo, unit, payment_id, theirs["id"], 100), 404)
    state = await books(saldo, unit)
    assert [p["allocated"] for p in state.payments] == [0, 0]
    assert all(i["paid"] == 0 for i in state.invoices)
    assert state.refundable[payment_id]["refundable"] == 30000


# --- currencies and instants -------------------------------------------------------------------------

@pytest.mark.parametrize("currency", ["XXX", "AAA", "XTS", "XAU", "QQQ"])
def test_M6_a_contract_refuses_what_is_not_an_iso_4217_currency(currency: str) -> None:
    """Rule M6 in the contracts (libs/events): no event carries a made-up currency, and one
    arriving with it is undecodable (dead-lettered), not booked."""
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(amount=100, currency=currency)
    sent = Money(amount=100, currency="DKK")
    _, value, headers = encode(invoice_issued(total=sent))
    body = json.loads(value)
    body["total"]["currency"] = currency
    with pytest.raises(Exception, match="ISO 4217"):
        decode(headers, json.dumps(body).encode())


async def test_M6_P1_currencies_are_iso_4217_and_payments_are_not_from_the_future(
        saldo: Saldo) -> None:
    """Rules M6, P1: XXX, AAA and other codes that are no currency are refused on invoices and
    payments (422, the field named); real ones are taken, JPY without minor units too. A payment
    received more than five minutes from now is refused; one a minute ahead (clock skew) is not."""
    unit = await new_unit(saldo)
    for code in ("XXX", "AAA", "XTS", "XAU"):
        for response in (
            await saldo.post("invoicing", "/v1/invoices", {
                "customer_id": "alice", "currency": code, "due_date": "2026-12-31",
                "lines": [{"description": "x", "amount": 100}]}, business_unit=unit),
            await receive(saldo, unit, 100, currency=code),
        ):
            detail = refused(response)
            assert "currency" in detail and "ISO 4217" in detail, detail
    yen = await new_unit(saldo, currency="JPY")  # a unit invoices in its entity's currency (M4)
    assert (await invoice(saldo, yen, 5000, currency="JPY"))["total"]["currency"] == "JPY"
    assert (await receive(saldo, unit, 5000, customer="c", currency="SEK")).status_code == 201

    detail = refused(await receive(saldo, unit, 100, received_at="2099-01-01T00:00:00Z"))
    assert "in the future" in detail, detail
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    refused(await receive(saldo, unit, 100, received_at=later))
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await receive(saldo, unit, 100, customer="c", received_at=soon)).status_code == 201
    state = await books(saldo, unit)
    assert sorted(p["amount"]["amount"] for p in state.payments) == [100, 5000]


# --- a refund completes when its payout is paid out ----------------------------------------------------

async def test_M6_B4_a_refund_completes_when_its_payout_is_paid_out_once(saldo: Saldo) -> None:
    """Rules M6, B4, P3: marked paid out, the payout completes its refund (RefundSucceeded, status
    completed) and the payment's refund moves from in progress to refunded. The same
    PayoutMarkedPaid delivered again (republished at a new offset) changes nothing."""
    unit = await new_unit(saldo)
    loose = await receive(saldo, unit, 50000, customer="carol")
    assert loose.status_code == 201, loose.text
    payment_id = loose.json()["id"]
    await settled(saldo)
    made = await saldo.post("refunds", "/v1/refunds", {
        "payment_id": payment_id, "amount": 20000, "reason": "overpaid", "channel": "bank",
        "bank_account": BANK}, business_unit=unit)
    assert made.status_code == 201, made.text
    refund = made.json()
    state = await books(saldo, unit)
    assert state.refundable[payment_id]["in_progress"] == 20000
    [payout] = (await saldo.get("payouts", "/v1/payouts/ready", unit)).json()["items"]

    marked = await saldo.post("payouts", f"/v1/payouts/{payout['id']}/mark-paid-out", {},
                              business_unit=unit)
    assert marked.status_code == 200, marked.text
    state = await books(saldo, unit)
    assert by_id(state.refunds)[refund["id"]]["status"] == "completed"
    assert {k: state.refundable[payment_id][k] for k in ("in_progress", "refunded", "refundable")} \
        == {"in_progress": 0, "refunded": 20000, "refundable": 30000}

    settings = Settings.from_env(saldo.env)
    assert settings.kafka_bootstrap
    published = await read_topic(settings.kafka_bootstrap, settings.topic("refunds"))
    succeeded = [m for m in published if dict(m.headers)["ce_type"] == b"dk.saldo.refunds.RefundSucceeded"
                 and json.loads(m.value)["refund_id"] == refund["id"]]
    assert len(succeeded) == 1
    assert json.loads(succeeded[0].value)["payout_id"] == payout["id"]

    # The payouts topic delivers the news again (a relay crash republishes): nothing changes.
    [again] = [m for m in await read_topic(settings.kafka_bootstrap, settings.topic("payouts"))
               if dict(m.headers)["ce_type"] == b"dk.saldo.payouts.PayoutMarkedPaid"
               and json.loads(m.value)["payout_id"] == payout["id"]]
    await produce(settings.kafka_bootstrap, settings.topic("payouts"),
                  [(again.partition, again.value, again.headers)])
    state = await books(saldo, unit)
    assert state.refundable[payment_id]["refunded"] == 20000
    published = await read_topic(settings.kafka_bootstrap, settings.topic("refunds"))
    assert sum(dict(m.headers)["ce_type"] == b"dk.saldo.refunds.RefundSucceeded"
               and json.loads(m.value)["refund_id"] == refund["id"] for m in published) == 1
    assert await dead_letters(saldo) == []


# --- a refund and an allocation of the same money, each service unaware of the other ----------------

async def test_M6_a_refund_keeps_money_an_allocation_spent_before_payments_heard_of_it(
        env: dict[str, str], tmp_path: Path) -> None:
    """Rule M6 across services: refunds grants a refund of 800.00 from 1,000.00 unallocated while
    payments, not yet told (its consumers stopped), places 300.00 of it on an invoice. Once
    payments hears of the refund the newest allocation gives the 100.00 shortfall back
    (AmountReleased with the refund's id; the invoice is unpaid again by as much): no minor
    unit is created or lost, and the books add up."""
    saldo = await start_distributed(env, tmp_path)
    keys = await open_api_keys(Settings.from_env(env))
    try:
        unit = await new_unit(saldo, keys)
        bill = await invoice(saldo, unit, 30000)
        loose = await receive(saldo, unit, 100000)
        assert loose.status_code == 201, loose.text
        payment_id = loose.json()["id"]
        await books(saldo, unit)

        deaf = await _restart_without_consumers(saldo, "payments")
        made = await saldo.post("refunds", "/v1/refunds", {
            "payment_id": payment_id, "amount": 80000, "reason": "overpaid", "channel": "bank",
            "bank_account": BANK}, business_unit=unit)
        assert made.status_code == 201, made.text
        placed = await allocate(saldo, unit, payment_id, bill["id"], 30000)
        assert placed.status_code == 200, placed.text  # payments has not heard of the refund
        await settled(saldo)
        shown = (await saldo.get("refunds", f"/v1/payments/{payment_id}/refundable", unit)).json()
        assert (shown["allocated"], shown["in_progress"], shown["refundable"]) == (30000, 80000, 0)

        deaf.stop()
        await saldo.restart("payments")  # with its consumers: it hears of the refund
        state = await books(saldo, unit)
        [payment] = state.payments
        assert (payment["allocated"], payment["unallocated"]) == (20000, 80000)
        assert state.refundable[payment_id]["in_progress"] == 80000
        assert by_id(state.invoices)[bill["id"]]["paid"] == 20000
        assert by_id(state.invoices)[bill["id"]]["status"] == "partially_paid"
        detail = refused(await allocate(saldo, unit, payment_id, bill["id"], 1))
        assert "800.00 DKK of it is being refunded" in detail, detail

        settings = Settings.from_env(env)
        assert settings.kafka_bootstrap
        released = [json.loads(m.value)
                    for m in await read_topic(settings.kafka_bootstrap, settings.topic("payments"))
                    if dict(m.headers)["ce_type"] == b"dk.saldo.payments.AmountReleased"]
        assert [(r["amount"]["amount"], r["refund_id"], r["credit_note_id"]) for r in released] == \
            [(10000, made.json()["id"], None)]
        assert await dead_letters(saldo) == []
    finally:
        saldo.stop()
        await saldo.client.aclose()
        await keys.close()


async def _restart_without_consumers(saldo: Saldo, service: str) -> Process:
    """The service again on its port, its API and relay running but none of its consumers."""
    old = saldo.processes[service]
    old.stop()
    port = saldo.base_urls[service].rsplit(":", 1)[1].split("/")[0]
    process = Process(["serve", service, "--port", port, "--no-consumers"], saldo.env,
                      old.log_path).start()
    saldo.processes[service] = process
    await wait_healthy(saldo.client, saldo.base_urls[service], process)
    return process
