"""The customer's overview and an invoice's history end to end (rules P2, I2, M3, E1, E3):
invoicing, payments and refunds as their own processes on real PostgreSQL and Kafka, over HTTP.

Payments and refunds publish; invoicing's overview reads their topics. One set of processes
serves the module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.infrastructure import Servers
from tests.scenarios import register_customer, set_up_business_unit
from tests.support import Saldo, dead_letters, distributed_env, eventually, settled, start_distributed

CUSTOMER = "ov-1"


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    running = await start_distributed(env, tmp_path_factory.mktemp("overview"),
                                      ("invoicing", "payments", "refunds"))
    try:
        yield running
    finally:
        running.stop()
        await running.client.aclose()


async def created(saldo: Saldo, service: str, path: str, body: dict[str, Any],
                  correlation_id: str | None = None) -> dict[str, Any]:
    """POST until the service has heard what it needs over the bus (404 until then), then 201."""
    headers = {"X-Correlation-Id": correlation_id} if correlation_id else {}

    async def answered() -> Any:
        response = await saldo.post(service, path, body, headers=headers)
        return response if response.status_code != 404 else None

    response = await eventually(answered, what=f"POST {path} to be accepted")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_P2_I2_M3_E3_a_customers_overview_and_an_invoices_history(saldo: Saldo) -> None:
    await set_up_business_unit(saldo, "bu_a")
    await register_customer(saldo, "bu_a", CUSTOMER)

    def invoice(amount: int, due: str) -> dict[str, Any]:
        return {"customer_id": CUSTOMER, "currency": "DKK", "due_date": due,
                "lines": [{"description": "Bladet, 12 issues", "amount": amount}]}

    paid = await created(saldo, "invoicing", "/v1/invoices", invoice(49900, "2099-12-31"), "corr-issue")
    late = await created(saldo, "invoicing", "/v1/invoices", invoice(10000, "2026-01-15"))
    payment = await created(saldo, "payments", "/v1/payments", {
        "customer_id": CUSTOMER, "method": "bank_transfer", "amount": 60000, "currency": "DKK",
        "received_at": "2026-11-20T10:00:00Z", "provider_reference": "bank-77",
        "allocations": [{"invoice_id": paid["id"], "amount": 49900}]}, "corr-pay")
    await created(saldo, "invoicing", f"/v1/invoices/{late['id']}/credit-notes",
                  {"amount": 2000, "reason": "two issues missing"})
    refund = await created(saldo, "refunds", "/v1/refunds", {
        "payment_id": payment["id"], "amount": 5000, "reason": "asked for the rest back",
        "bank_account": {"registration_number": "1234", "account_number": "0001234567"}})

    async def overview() -> dict[str, Any] | None:
        seen = await saldo.found("invoicing", f"/v1/customers/{CUSTOMER}/overview")
        if not seen or not seen["payments"]["items"] or not seen["refunds"]["items"]:
            return None
        statuses = [i["status"] for i in seen["invoices"]["items"]]
        return seen if statuses == ["paid", "open"] and seen["credit_notes"]["items"] else None

    seen = await eventually(overview, what="the overview to show the payment, refund and credit note")
    (shown,) = seen["payments"]["items"]
    assert shown["id"] == payment["id"] and shown["has_unallocated"] is True  # rule P2
    assert (shown["amount"], shown["allocated"], shown["unallocated"]) == (
        {"amount": 60000, "currency": "DKK"}, {"amount": 49900, "currency": "DKK"},
        {"amount": 10100, "currency": "DKK"})
    assert shown["unallocated"]["amount"] == payment["unallocated"]  # as payments itself says
    assert shown["refund_in_progress"] == {"amount": 5000, "currency": "DKK"}
    assert [(r["id"], r["status"]) for r in seen["refunds"]["items"]] == [(refund["id"], "in_progress")]
    assert [(i["id"], i["overdue"]) for i in seen["invoices"]["items"]] == [
        (paid["id"], False), (late["id"], True)]  # rule I2
    assert seen["balance"] == {
        "unsettled_invoices": 1, "overdue_invoices": 1, "left_to_pay": [{"amount": 8000, "currency": "DKK"}],
        "payments_with_unallocated": 1, "unallocated": [{"amount": 10100, "currency": "DKK"}]}

    history = (await saldo.get("invoicing", f"/v1/invoices/{paid['id']}/history")).json()["items"]
    assert [(e["what"], e["correlation_id"]) for e in history] == [
        ("issued", "corr-issue"), ("payment applied", "corr-pay")]  # one request, across services
    assert history[0]["who"].startswith("api-key:") and history[0]["why"] == paid["channel_reason"]
    assert history[1]["who"] == "policy:invoicing.follow-payments"
    assert history[1]["balance_after"]["status"] == "paid"

    for path in (f"/v1/customers/{CUSTOMER}/overview", f"/v1/invoices/{paid['id']}/history"):
        elsewhere = await saldo.get("invoicing", path, business_unit="bu_b")
        assert elsewhere.status_code == 404, elsewhere.text  # rule M3
    await settled(saldo)
    assert await dead_letters(saldo) == []
