"""Invoices, credit notes and reminders by e-mail end to end (rules C3, I4): invoicing as its own
process on PostgreSQL and Kafka, delivering through its outbox to a real local SMTP server."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from saldo_platform.cli import open_api_keys
from saldo_platform.mail import undelivered
from saldo_platform.settings import Settings
from saldo_platform.sql import open_database
from tests.infrastructure import Servers
from tests.scenarios import register_customer, set_up_business_unit
from tests.smtp import SmtpServer
from tests.support import Saldo, distributed_env, eventually, settled, start_distributed

UNIT = "bu_mails"
DUE = date(2026, 12, 1)


@pytest.fixture(scope="module")
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def saldo(infra: Servers, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Saldo]:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}",
                          {**smtp.env(), "SALDO_PAYMENT_LINK": "https://pay.example.dk/?ref={payment_reference}"})
    running = await start_distributed(env, tmp_path_factory.mktemp("mails"), ("invoicing",))
    keys = await open_api_keys(Settings.from_env(env))
    running.keys[UNIT] = await keys.create(UNIT, ["operator"], "mails test")
    await keys.close()
    await set_up_business_unit(running, UNIT, reminder_schedule_days=[7])
    try:
        yield running
    finally:
        running.stop()
        await running.client.aclose()


async def invoice(saldo: Saldo, customer: str, **customer_fields: Any) -> dict[str, Any]:
    await register_customer(saldo, UNIT, customer, **customer_fields)
    response = await saldo.post("invoicing", "/v1/invoices", {
        "customer_id": customer, "currency": "DKK", "due_date": DUE.isoformat(),
        "lines": [{"description": "Bladet, 12 måneder", "amount": 49900}]}, business_unit=UNIT)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def to(smtp: SmtpServer, address: str) -> list[EmailMessage]:
    with smtp.mailbox.lock:
        return [m for m in smtp.mailbox.received if str(m["To"]) == address]


async def mails_to(smtp: SmtpServer, address: str, count: int) -> list[EmailMessage] | None:
    """Once `count` mails reached `address` (a probe for `eventually`)."""
    received = to(smtp, address)
    return received if len(received) >= count else None


async def all_delivered(saldo: Saldo) -> None:
    """Nothing more can be mailed: consumers settled, no request left, the outbox empty."""
    await settled(saldo)
    db = open_database(Settings.from_env(saldo.env).service_database("invoicing"))
    await db.connect()
    try:
        async def empty() -> bool | None:
            requests = await db.fetchval("SELECT count(*) FROM document_mails")
            return (requests == 0 and await undelivered(db, UNIT) == []) or None
        await eventually(empty, what="the document mails delivered")
    finally:
        await db.close()


def pdf_of(message: EmailMessage) -> bytes:
    [attachment] = [part for part in message.iter_attachments()]
    assert attachment.get_content_type() == "application/pdf"
    content = attachment.get_content()
    assert isinstance(content, bytes)
    return content


async def test_C3_an_email_channel_invoice_is_mailed_once_with_its_pdf_and_payment_link(
        saldo: Saldo, smtp: SmtpServer) -> None:
    issued = await invoice(saldo, "cust-mail", email="anna@example.dk")
    assert issued["channel"] == "email"
    [mail] = await eventually(lambda: mails_to(smtp, "anna@example.dk", 1), what="the invoice mail")
    assert str(mail["Subject"]) == f"Invoice {issued['number']} from Bladhuset A/S"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert issued["payment_reference"] in text and "499.00 DKK" in text
    link = "https://pay.example.dk/?ref=" + issued["payment_reference"].replace("+", "%2B")
    assert link in text
    assert pdf_of(mail).startswith(b"%PDF-")
    await all_delivered(saldo)
    assert len(to(smtp, "anna@example.dk")) == 1  # once

    credit = await saldo.post("invoicing", f"/v1/invoices/{issued['id']}/credit-notes",
                              {"amount": 10000, "reason": "two issues missing"}, business_unit=UNIT)
    assert credit.status_code == 201, credit.text
    note = (await eventually(lambda: mails_to(smtp, "anna@example.dk", 2), what="the credit note mail"))[1]
    assert str(note["Subject"]).startswith(f"Credit note {issued['number']}-1 for invoice {issued['number']}")
    assert pdf_of(note).startswith(b"%PDF-")


async def test_C3_an_e_invoice_customer_gets_no_mailed_invoice(saldo: Saldo, smtp: SmtpServer) -> None:
    issued = await invoice(saldo, "cust-ean", email="ean@example.dk", ean="5790000435975")
    assert issued["channel"] == "e_invoice"
    marker = await invoice(saldo, "cust-after", email="after@example.dk")  # mailed after it
    await eventually(lambda: mails_to(smtp, "after@example.dk", 1), what="a later mail")
    await all_delivered(saldo)
    assert to(smtp, "ean@example.dk") == [] and marker["channel"] == "email"


async def test_I4_a_reminder_is_mailed_to_the_customer(saldo: Saldo, smtp: SmtpServer) -> None:
    issued = await invoice(saldo, "cust-late", email="late@example.dk",
                           betalingsservice_mandate=None, e_invoice_to_online_banking=False)
    await eventually(lambda: mails_to(smtp, "late@example.dk", 1), what="the invoice mail")
    await eventually(lambda: _listed(saldo, issued["id"]), what="the invoice in the read model")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("saldo")), "reminders", "run", "--business-unit", UNIT,
        "--date", (DUE + timedelta(days=7)).isoformat(), env={**os.environ, **saldo.env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    reminder = (await eventually(lambda: mails_to(smtp, "late@example.dk", 2), what="the reminder mail"))[1]
    assert str(reminder["Subject"]) == f"Reminder 1: invoice {issued['number']} from Bladhuset A/S is overdue"
    assert pdf_of(reminder).startswith(b"%PDF-")


async def _listed(saldo: Saldo, invoice_id: str) -> bool | None:
    return (await saldo.get("invoicing", f"/v1/invoices/{invoice_id}", UNIT)).status_code == 200 or None
