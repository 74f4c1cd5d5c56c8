"""Consumers apply each event exactly once, whatever crashes (issue 2; DESIGN.md step 4).

A failpoint makes the consuming process exit at once — inside the open transaction after the
effect was applied, or just after it committed and before anything was acknowledged to Kafka.
After a restart the read model and the event store show the effect exactly once.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from saldo_platform.service import definitions
from tests.scenarios import issue_invoice, pay_invoice
from tests.support import Saldo, dead_letters, eventually, settled, start_distributed


def _policy_of(service: str, reading: str) -> str:
    """The name of `service`'s policy that reacts to `reading`'s events (names change; roles don't)."""
    policies = [cls.name for cls, sources in definitions()[service].policies if reading in sources]
    assert len(policies) == 1, policies
    return policies[0]


async def _exited(saldo: Saldo, service: str) -> bool:
    popen = saldo.processes[service].popen
    return popen is not None and popen.poll() is not None


# The payment reaches the invoice in two hops, each its own consumer in the invoicing process:
# its policy applies PaymentReceived's allocation to the invoice (InvoicePaymentApplied), then
# the invoices projection shows that as paid.
PAYMENT_HOPS = [(_policy_of("invoicing", "payments"), "PaymentReceived"),
                ("invoicing.invoices", "InvoicePaymentApplied")]


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
@pytest.mark.parametrize(("consumer", "event_type"), PAYMENT_HOPS)
async def test_consumer_crash_applies_payment_once(point: str, consumer: str, event_type: str,
                                                     env: dict[str, str], tmp_path: Path,
                                                     tag: str) -> None:
    crash = {"SALDO_FAILPOINTS": f"{point}@{consumer}@{event_type}"}
    saldo = await start_distributed(env, tmp_path, service_env={"invoicing": crash})
    try:
        invoice = await issue_invoice(saldo, amount=49900)
        await pay_invoice(saldo, invoice)
        await eventually(lambda: _exited(saldo, "invoicing"), what="invoicing to crash at the failpoint")
        assert f"failpoint {point}@{consumer}" in saldo.processes["invoicing"].output()

        await saldo.restart("invoicing")

        async def paid() -> dict[str, object] | None:
            found = await saldo.found("invoicing", f"/v1/invoices/{invoice['id']}")
            return found if found and found["status"] == "paid" else None

        seen = await eventually(paid, what="the payment to be applied after the restart")
        assert seen["paid"] == 49900  # once, not 99800
        await settled(saldo)  # every consumer at the end of every topic: nothing more can come
        again = await saldo.found("invoicing", f"/v1/invoices/{invoice['id']}")
        assert again is not None and again["paid"] == 49900
        conn = await asyncpg.connect(env["SALDO_DATABASE_URL"].rsplit("/", 1)[0] + f"/{tag}_invoicing")
        try:
            stored = await conn.fetchval(
                "SELECT count(*) FROM invoicing_events WHERE topic LIKE '%Invoice.PaymentApplied'")
        finally:
            await conn.close()
        assert stored == 1  # the allocation applied once in the invoicing event store
        assert await dead_letters(saldo) == []
    finally:
        saldo.stop()
        await saldo.client.aclose()


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
async def test_policy_crash_releases_once(point: str, env: dict[str, str], tmp_path: Path,
                                          tag: str) -> None:
    """Rule I3 through a policy: a credit note releases its amount once, even across a crash."""
    crash = {"SALDO_FAILPOINTS": f"{point}@{_policy_of('payments', 'invoicing')}@CreditNoteIssued"}
    saldo = await start_distributed(env, tmp_path, service_env={"payments": crash})
    try:
        invoice = await issue_invoice(saldo, amount=30000)
        payment = await pay_invoice(saldo, invoice)
        credit = await saldo.post("invoicing", f"/v1/invoices/{invoice['id']}/credit-notes",
                                  {"amount": 10000, "reason": "one issue missing"})
        assert credit.status_code == 201, credit.text
        await eventually(lambda: _exited(saldo, "payments"), what="payments to crash at the failpoint")

        await saldo.restart("payments")

        async def released() -> dict[str, object] | None:
            found = await saldo.found("payments", f"/v1/payments/{payment['id']}")
            return found if found and found["unallocated"] == 10000 else None

        await eventually(released, what="the credited amount to be released after the restart")
        await settled(saldo)
        conn = await asyncpg.connect(env["SALDO_DATABASE_URL"].rsplit("/", 1)[0] + f"/{tag}_payments")
        try:
            stored = await conn.fetchval(
                "SELECT count(*) FROM payments_events WHERE topic LIKE '%Payment.AmountReleased'")
        finally:
            await conn.close()
        assert stored == 1  # one release event in the payments event store
        final = await saldo.found("payments", f"/v1/payments/{payment['id']}")
        assert final is not None and final["allocated"] == 20000
        assert await dead_letters(saldo) == []
    finally:
        saldo.stop()
        await saldo.client.aclose()
