"""What may be refunded from a payment (rule P3), as payments and refunds see it together.

Money a payment paid on an invoice is not refundable until it is released (I3). A refund
asked for right after the payment — before or after the refunds service has heard of it —
is refused, never granted: the payment announces its allocations with itself.
"""

from __future__ import annotations

from tests.scenarios import issue_invoice, pay_invoice
from tests.support import Saldo, eventually


async def test_allocated_money_is_never_refundable(distributed: Saldo) -> None:
    for attempt in range(3):
        invoice = await issue_invoice(distributed, amount=20000, customer=f"race-{attempt}")
        payment = await pay_invoice(distributed, invoice)
        body = {"payment_id": payment["id"], "amount": 20000, "reason": "asked at once",
                "channel": "bank"}

        async def answered(body: dict[str, object] = body) -> object:
            response = await distributed.post("refunds", "/v1/refunds", body)
            return response if response.status_code != 404 else None  # 404: not heard of yet

        response = await eventually(answered, what="refunds to hear of the payment")
        assert response.status_code == 422, response.text  # type: ignore[attr-defined]
        refundable = (await distributed.get(
            "refunds", f"/v1/payments/{payment['id']}/refundable")).json()
        assert refundable["allocated"] == 20000 and refundable["refundable"] == 0


async def test_unallocated_money_can_be_placed_on_an_invoice(distributed: Saldo) -> None:
    """Rule P2: a payment without an invoice waits as unallocated money until it is placed."""
    invoice = await issue_invoice(distributed, amount=15000, customer="walk-in")
    loose = await distributed.post("payments", "/v1/payments", {
        "customer_id": "walk-in", "method": "bank_transfer", "amount": 20000, "currency": "DKK",
        "received_at": "2026-11-21T09:00:00Z", "provider_reference": "bank-77"})
    assert loose.status_code == 201, loose.text
    payment_id = loose.json()["id"]
    await eventually(lambda: _refundable(distributed, payment_id, 20000),
                     what="the loose payment to be fully refundable")

    async def placed() -> object:
        response = await distributed.post("payments", f"/v1/payments/{payment_id}/allocations",
                                          {"invoice_id": invoice["id"], "amount": 15000})
        return response if response.status_code != 404 else None

    response = await eventually(placed, what="payments to know the invoice")
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.json()["unallocated"] == 5000  # type: ignore[attr-defined]

    too_much = await distributed.post("payments", f"/v1/payments/{payment_id}/allocations",
                                      {"invoice_id": invoice["id"], "amount": 5001})
    assert too_much.status_code == 422, too_much.text

    async def invoice_paid() -> object:
        found = await distributed.found("invoicing", f"/v1/invoices/{invoice['id']}")
        return found if found and found["status"] == "paid" else None

    await eventually(invoice_paid, what="the invoice to show as paid")
    await eventually(lambda: _refundable(distributed, payment_id, 5000),
                     what="only the unplaced 5000 to stay refundable")


async def _refundable(saldo: Saldo, payment_id: str, amount: int) -> bool:
    found = await saldo.found("refunds", f"/v1/payments/{payment_id}/refundable")
    return bool(found and found["refundable"] == amount)
