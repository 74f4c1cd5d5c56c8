"""Scenarios that read like what an operator does, used by several tests."""

from __future__ import annotations

from typing import Any

from tests.support import Saldo, eventually


async def issue_invoice(saldo: Saldo, amount: int = 49900, unit: str = "bu_a",
                        customer: str = "cust-1") -> dict[str, Any]:
    """An invoice of `amount` DKK to `customer`, as an operator issues one: the unit set up and
    the customer registered first (rules M4, C1; repeating either PUT changes nothing)."""
    await set_up_business_unit(saldo, unit)
    await register_customer(saldo, unit, customer)
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": customer, "currency": "DKK", "due_date": "2026-12-31",
        "lines": [{"description": "Magazine, 12 months", "amount": amount}],
    }, business_unit=unit)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def pay_invoice(saldo: Saldo, invoice: dict[str, Any], unit: str = "bu_a") -> dict[str, Any]:
    body = {
        "customer_id": invoice["customer_id"], "method": "card",
        "amount": invoice["total"]["amount"], "currency": "DKK",
        "received_at": "2026-11-20T10:00:00Z", "provider_reference": "qp-1001",
        "allocations": [{"invoice_id": invoice["id"], "amount": invoice["total"]["amount"]}],
    }

    async def accepted() -> Any:
        # 404 until payments has heard of the invoice (InvoiceIssued over the bus).
        response = await saldo.post("payments", "/v1/payments", body, business_unit=unit)
        return response if response.status_code != 404 else None

    response = await eventually(accepted, what="payments to accept the allocation")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def walking_skeleton(saldo: Saldo) -> dict[str, Any]:
    """Invoice → card payment → credit note releases it → bank refund → payout → paid → postings."""
    invoice = await issue_invoice(saldo)
    payment = await pay_invoice(saldo, invoice)
    paid = await eventually(
        lambda: _with(saldo, "invoicing", f"/v1/invoices/{invoice['id']}", status="paid"),
        what="the invoice to show as paid")
    assert paid["paid"] == 49900

    credit = await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                              {"amount": 49900, "reason": "subscription stopped"})
    assert credit.status_code == 201, credit.text

    released = await eventually(
        lambda: _with(saldo, "payments", f"/v1/payments/{payment['id']}", unallocated=49900),
        what="payments to release the credited amount (AmountReleased)")
    assert released["allocated"] == 0
    await eventually(
        lambda: _with(saldo, "refunds", f"/v1/payments/{payment['id']}/refundable", refundable=49900),
        what="refunds to see the released amount as refundable")

    refund = await saldo.post("refunds", "/v1/refunds", {
        "payment_id": payment["id"], "amount": 49900, "reason": "subscription stopped",
        "channel": "bank",
        "bank_account": {"registration_number": "1234", "account_number": "0001234567"},
    })
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "drafted"

    async def ready_payout() -> dict[str, Any] | None:
        items = (await saldo.get("payouts", "/v1/payouts/ready")).json()["items"]
        return next((p for p in items if p["refund_id"] == refund.json()["id"]), None)

    payout = await eventually(ready_payout, what="a payout under 'Refunds ready for bank payout'")
    assert payout["amount"] == {"amount": 49900, "currency": "DKK"}
    assert payout["status"] == "draft"

    marked = await saldo.post("payouts", f"/v1/payouts/{payout['id']}/mark-paid-out", {})
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "paid_out"

    async def gone_from_ready_list() -> bool:
        return (await ready_payout()) is None

    await eventually(gone_from_ready_list, what="rule B4: the payout leaves the ready list")

    async def all_posted() -> dict[str, Any] | None:
        page = (await saldo.get("accounting-sync", "/v1/postings?limit=500")).json()
        types = sorted(p["source_event_type"] for p in page["items"])
        expected = sorted(["InvoiceIssued", "PaymentReceived",
                           "CreditNoteIssued", "AmountReleased", "PayoutMarkedPaid"])
        return page if types == expected else None

    postings = await eventually(all_posted, what="a posting for each financial event")
    for posting in postings["items"]:  # rule A1: each posting balances on its own
        assert sum(line["debit"] for line in posting["lines"]) == sum(
            line["credit"] for line in posting["lines"])
    balance = (await saldo.get("accounting-sync", "/v1/trial-balance")).json()
    assert balance["balanced"] is True
    assert balance["currencies"]["DKK"]["total"] == 0
    assert all(v == 0 for v in balance["currencies"]["DKK"]["accounts"].values())

    final = (await saldo.get("invoicing", f"/v1/invoices/{invoice['id']}")).json()
    assert final["status"] == "credited"  # rule I2/I3: credited, so no reminders
    return {"invoice": invoice, "payment": payment, "refund": refund.json(), "payout": payout}


async def _with(saldo: Saldo, service: str, path: str, **expected: Any) -> dict[str, Any] | None:
    found = await saldo.found(service, path)
    if found and all(found.get(k) == v for k, v in expected.items()):
        return found
    return None


# --- Invoicing's parties over HTTP: a business unit set up, customers, subscriptions --------------


def business_entity_body(currency: str = "DKK", **overrides: Any) -> dict[str, Any]:
    """A valid PUT /v1/business-entity body (rules M4, M5); `overrides` replace its fields."""
    return {
        "legal_name": "Bladhuset A/S", "registration_number": "13585628",
        "postal_address": {"lines": ["Bladvej 1"], "postal_code": "8000", "city": "Aarhus C",
                           "country": "DK"},
        "bank_account": {"iban": "DK5000400440116243", "bic": "DABADKKK"},
        "invoicing_method": "email", "payment_message_prefix": "Bladhuset", "currency": currency,
        "time_zone": "Europe/Copenhagen", "reminder_schedule_days": [7, 14],
        "fik_creditor_number": "85236417", **overrides}


def customer_body(**overrides: Any) -> dict[str, Any]:
    """A valid PUT /v1/customers/{customer_id} body (rule C1); `overrides` replace its fields."""
    return {
        "name": "Anna Hansen", "email": "anna@example.dk",
        "postal_address": {"lines": ["Søndergade 1"], "postal_code": "8000", "city": "Aarhus C",
                           "country": "DK"}, **overrides}


async def put(saldo: Saldo, service: str, path: str, body: Any, business_unit: str = "bu_a",
              **headers: str) -> Any:
    """A PUT (no Idempotency-Key: a PUT says the whole state, so repeating it is harmless)."""
    return await saldo.client.put(saldo.base_urls[service] + path, json=body,
                                  headers=saldo.headers(business_unit, **headers))


async def set_up_business_unit(saldo: Saldo, unit: str = "bu_a", currency: str = "DKK",
                               **overrides: Any) -> dict[str, Any]:
    """PUT a valid business entity for `unit` (rule M4): what subscriptions and invoices need first."""
    response = await put(saldo, "invoicing", "/v1/business-entity",
                         business_entity_body(currency, **overrides), unit)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def register_customer(saldo: Saldo, unit: str = "bu_a", customer_id: str = "cust-1",
                            **overrides: Any) -> dict[str, Any]:
    """PUT a valid customer under `customer_id` (rule C1); `overrides` replace body fields."""
    response = await put(saldo, "invoicing", f"/v1/customers/{customer_id}",
                         customer_body(**overrides), unit)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def start_subscription(saldo: Saldo, unit: str = "bu_a", customer_id: str = "cust-1",
                             **overrides: Any) -> dict[str, Any]:
    """POST a monthly subscription of 149.00 DKK with no invoicing method of its own (rule C2);
    the unit must be set up and the customer registered."""
    response = await saldo.post("invoicing", "/v1/subscriptions", {
        "customer_id": customer_id, "product": "Bladet, monthly",
        "price": {"amount": 14900, "currency": "DKK"}, "period": {"unit": "months", "length": 1},
        **overrides}, business_unit=unit)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
