"""Reminders end to end (rules I4, I2): `saldo reminders run` as an operator runs it, a process
of its own against the real PostgreSQL, while invoicing and payments run as services on Kafka."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from saldo_events import invoicing as contracts
from saldo_events.codec import decode
from saldo_platform.cli import open_api_keys
from saldo_platform.settings import Settings
from tests.infrastructure import Servers
from tests.kafka_tools import read_topic
from tests.scenarios import pay_invoice, register_customer, set_up_business_unit
from tests.support import Saldo, distributed_env, eventually, start_distributed

DUE = date(2026, 12, 1)
SALDO = str(Path(sys.executable).with_name("saldo"))


@pytest.fixture(scope="module")
async def saldo(infra: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Saldo]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    running = await start_distributed(env, tmp_path_factory.mktemp("reminders"), ("invoicing", "payments"))
    keys = await open_api_keys(Settings.from_env(env))
    unit = "bu_reminders"
    running.keys[unit] = await keys.create(unit, ["operator"], "reminders test")
    await keys.close()
    await set_up_business_unit(running, unit, reminder_schedule_days=[7, 14])
    try:
        yield running
    finally:
        running.stop()
        await running.client.aclose()


async def reminders_run(saldo: Saldo, on: date) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        SALDO, "reminders", "run", "--date", on.isoformat(), "--business-unit", "bu_reminders",
        env={**os.environ, **saldo.env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def invoice(saldo: Saldo, customer: str) -> dict[str, Any]:
    await register_customer(saldo, "bu_reminders", customer)
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": customer, "currency": "DKK", "due_date": DUE.isoformat(),
        "lines": [{"description": "Bladet, 12 måneder", "amount": 49900}]}, business_unit="bu_reminders")
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def shown(saldo: Saldo, invoice_id: str, **expected: Any) -> dict[str, Any] | None:
    found = (await saldo.get("invoicing", f"/v1/invoices/{invoice_id}", "bu_reminders")).json()
    return found if all(found.get(k) == v for k, v in expected.items()) else None


async def test_I4_saldo_reminders_run_reminds_the_unpaid_once_on_the_units_schedule(saldo: Saldo) -> None:
    unpaid, paid = await invoice(saldo, "cust-unpaid"), await invoice(saldo, "cust-paid")
    await pay_invoice(saldo, paid, unit="bu_reminders")
    await eventually(lambda: shown(saldo, paid["id"], status="paid"), what="the paid invoice to show as paid")
    await eventually(lambda: shown(saldo, unpaid["id"], status="open"), what="the unpaid invoice listed")

    code, out, err = await reminders_run(saldo, DUE + timedelta(days=6))
    assert code == 0, err
    assert "bu_reminders" in out and out.split()[-1] == "0"  # not yet due: nothing sent

    code, out, err = await reminders_run(saldo, DUE + timedelta(days=7))
    assert code == 0, err
    assert out.splitlines()[-1].split() == ["bu_reminders", "2026-12-08", "1", "1"]  # 1 unpaid, reminded
    assert "reminders bu_reminders 2026-12-08" in err and "1 reminders sent" in err  # the progress

    reminded = await eventually(lambda: shown(saldo, unpaid["id"], reminders=1),
                                what="the reminder on the invoice")
    assert reminded["last_reminder_on"] == "2026-12-08"
    assert (await shown(saldo, paid["id"], reminders=0)) is not None  # paid: never reminded

    code, out, err = await reminders_run(saldo, DUE + timedelta(days=7))  # run twice on one day
    assert code == 0, err
    assert out.splitlines()[-1].split() == ["bu_reminders", "2026-12-08", "1", "0"]

    topic = Settings.from_env(saldo.env).topic("invoicing")

    async def published() -> list[contracts.ReminderSent] | None:
        messages = await read_topic(saldo.env["SALDO_KAFKA_BOOTSTRAP"], topic)
        events = [decode(m.headers, m.value) for m in messages]
        sent = [e for e in events if isinstance(e, contracts.ReminderSent)]
        return sent or None

    sent = await eventually(published, what="ReminderSent on Kafka")
    assert [(str(e.invoice_id), e.number, e.business_date, e.actor) for e in sent] == [
        (unpaid["id"], 1, DUE + timedelta(days=7), "job:reminders")]


async def test_I4_a_unit_that_is_not_set_up_is_an_error_an_operator_reads(saldo: Saldo) -> None:
    process = await asyncio.create_subprocess_exec(
        SALDO, "reminders", "run", "--business-unit", "nobody", env={**os.environ, **saldo.env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 1
    assert "no business unit with a business entity named nobody" in err.decode()
