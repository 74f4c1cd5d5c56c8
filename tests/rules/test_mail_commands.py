"""`saldo mails list|requeue` (embedded mode, the invoicing service's own SQLite database): an
operator sees a mail the SMTP server refused and sends it again once the address is fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from saldo_platform import cli
from saldo_platform.mail import Mail, Status, enqueue, mails, setup_outbox
from saldo_platform.settings import Settings
from saldo_platform.sql import open_database


async def _refused_mail() -> None:
    db = open_database(Settings.from_env().service_database("invoicing"))
    await db.connect()
    try:
        await setup_outbox(db)
        async with db.transaction() as tx:
            await enqueue(tx, Mail(key="invoice:42", business_unit="bu_a", to="anna@example.dk",
                                   subject="Invoice 42", body="…"))
        await db.execute("UPDATE mail_outbox SET status = 'failed', attempts = 1,"
                         " last_error = '550 5.1.1 no such user' WHERE mail_key = 'invoice:42'")
    finally:
        await db.close()


async def _statuses(unit: str) -> list[Status]:
    db = open_database(Settings.from_env().service_database("invoicing"))
    await db.connect()
    try:
        return [m.status for m in await mails(db, unit, ["queued", "sending", "sent", "failed"])]
    finally:
        await db.close()


def saldo(*argv: str) -> int:
    """`saldo …` in this process (the command runs its own event loop, as from a shell)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    return int(exited.value.code or 0)


def test_an_operator_lists_a_refused_mail_and_sends_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SALDO_MODE", "embedded")
    monkeypatch.setenv("SALDO_VAR_DIR", str(tmp_path))
    for name in ("SALDO_DATABASE_URL", "SALDO_KAFKA_BOOTSTRAP", "SALDO_AUTH_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    asyncio.run(_refused_mail())

    assert saldo("mails", "list", "--business-unit", "bu_a", "--status", "failed") == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and listed[1].split()[:2] == ["failed", "1"]
    assert "invoice:42" in listed[1] and "550 5.1.1 no such user" in listed[1]

    assert saldo("mails", "requeue", "invoice:42", "--business-unit", "bu_a") == 0
    assert asyncio.run(_statuses("bu_a")) == ["queued"]
    assert saldo("mails", "requeue", "invoice:42", "--business-unit", "bu_a") == 1  # not failed now
    assert "no failed mail 'invoice:42'" in capsys.readouterr().err
    assert saldo("mails", "list", "--business-unit", "bu_a", "--status", "lost") == 2
    assert "unknown status lost" in capsys.readouterr().err
    assert saldo("mails", "list", "--business-unit", "bu_b") == 0  # another unit's: none (M3)
    assert capsys.readouterr().out.splitlines()[1:] == []
