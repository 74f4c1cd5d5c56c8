"""Concurrent commands on one aggregate, made deterministic (rule P3).

The refunds process runs with a meeting point before the commit (`SALDO_MEETINGS`): each
command waits there until the other has arrived, so both have loaded the payment's account and
checked the refundable amount before either records anything. Every round is therefore the
worst case, not a lucky interleaving.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from tests.support import eventually, start_distributed

ROUNDS = 5


async def test_P3_two_operators_refunding_at_once_pay_the_customer_once(env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    """Rule P3: two refunds of 30,000 of a 49,900 payment, both checked before either is saved.

    Exactly one is made; the other runs again on the newer account and is refused (422, more
    than refundable). Refundable never goes below zero and only one payout is drafted.
    """
    saldo = await start_distributed(
        env, tmp_path, services=("payments", "refunds", "payouts"),
        service_env={"refunds": {"SALDO_MEETINGS": "before-commit@http@refunds:2"}})
    try:
        for round_ in range(ROUNDS):
            paid = await saldo.post("payments", "/v1/payments", {
                "customer_id": f"race-{round_}", "method": "bank_transfer", "amount": 49900,
                "currency": "DKK", "received_at": "2026-11-21T09:00:00Z"})
            assert paid.status_code == 201, paid.text
            payment_id = paid.json()["id"]
            path = f"/v1/payments/{payment_id}/refundable"
            await eventually(lambda path=path: saldo.found("refunds", path),
                             what="refunds to hear of the payment")

            body = {"payment_id": payment_id, "amount": 30000, "reason": "charged twice",
                    "channel": "bank",
                    "bank_account": {"registration_number": "1234", "account_number": "0001234567"}}
            responses = await asyncio.gather(*[
                saldo.post("refunds", "/v1/refunds", body, key=str(uuid.uuid4())) for _ in range(2)])

            statuses = sorted(r.status_code for r in responses)
            assert statuses == [201, 422], [(r.status_code, r.text) for r in responses]
            refused = next(r for r in responses if r.status_code == 422)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "19900" in refused.json()["detail"] or "199.00" in refused.json()["detail"]
            made = next(r for r in responses if r.status_code == 201).json()

            account = await saldo.found("refunds", path)
            assert account is not None
            assert (account["in_progress"], account["refundable"]) == (30000, 19900), round_

            async def drafted(made: dict[str, Any] = made) -> list[Any] | None:
                ready = (await saldo.get("payouts", "/v1/payouts/ready?limit=500")).json()["items"]
                return [p for p in ready if p["refund_id"] == made["id"]] or None

            await eventually(drafted, what="the refund's payout draft (rule B1)")
        ready = (await saldo.get("payouts", "/v1/payouts/ready?limit=500")).json()["items"]
        assert len(ready) == ROUNDS  # one payout per round: the refused refund drafted nothing
    finally:
        saldo.stop()
        await saldo.client.aclose()
