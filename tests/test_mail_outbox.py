"""The mail outbox against real PostgreSQL (and SQLite) and a real SMTP server (aiosmtpd).

Issue 7: "E-mail goes through an outbox to an SMTP server set in settings; tests use a real
local SMTP server, never a mock; sending twice after a crash sends once." Shown here: a queued
mail arrives once with its attachment intact; a key enqueued twice is one mail; two senders
on one database send each mail once (SKIP LOCKED); a sender killed after its claim leaves the
mail to whoever takes over its lease; a sender killed after recording the send sends nothing
again; the one window SMTP leaves open (the server's 250, then our commit) gives a copy with the
same Message-ID; an unreachable server and 4xx replies are retried until the mail is accepted;
a 5xx reply fails the mail with the server's reason, for the operator, and is not retried.
Jobs run in a ServiceRuntime in both modes and stop on SIGTERM.

The killed senders are OS processes: a service runtime whose only part is the outbox job
(`sender_process()` below), killed by a failpoint (`failpoints.py`) the way the idempotency and
relay crash tests kill theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from saldo_platform.bus import LocalBus
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.jobs import Job, run_once
from saldo_platform.mail import (
    Attachment,
    Mail,
    MailSender,
    OutboxTiming,
    enqueue,
    mails,
    message_id,
    outbox_job,
    requeue,
    setup_outbox,
    undelivered,
)
from saldo_platform.service import ServiceDefinition, ServiceRuntime
from saldo_platform.settings import Settings
from saldo_platform.sql import Database, open_database
from tests.smtp import SmtpServer
from tests.support import ROOT, eventually, free_port

CRASHED = 86  # failpoints.py exits with this
SERVICE = "mail-test"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"  # 100 KB, every byte value
# Quick enough for a test: a dead sender's lease runs out after 2 s, retries come after 0.2 s.
QUICK = {"lease_s": 2.0, "first_retry_s": 0.2, "longest_retry_s": 0.5, "batch": 5}


def timing(lease_s: float, first_retry_s: float, longest_retry_s: float, batch: int) -> OutboxTiming:
    return OutboxTiming(batch=batch, lease=timedelta(seconds=lease_s),
                        first_retry=timedelta(seconds=first_retry_s),
                        longest_retry=timedelta(seconds=longest_retry_s), smtp_timeout=5.0)


def mail_service(outbox_timing: OutboxTiming, *more_jobs: Job) -> ServiceDefinition:
    """A service whose only parts are its event store and the outbox job, polling every 0.1 s."""
    return ServiceDefinition(name=SERVICE, application=EventStoreApplication, router=APIRouter(),
                             to_integration=lambda event: None,
                             jobs=[outbox_job(outbox_timing, interval=timedelta(milliseconds=100)),
                                   *more_jobs])


def invoice_mail(number: int, business_unit: str = "bu_a", to: str = "kunde@example.dk") -> Mail:
    return Mail(key=f"invoice-issued:{number}", business_unit=business_unit, to=to,
                subject=f"Faktura {number} fra Købmand Ærø", body=f"Hej,\n\nhermed faktura {number}.\n",
                attachments=[Attachment(f"faktura-{number}.pdf", "application/pdf", PDF)])


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def db(env: dict[str, str]) -> AsyncIterator[Database]:
    """The test service's own database (`<test prefix>_mail_test`) with its outbox."""
    database = open_database(Settings.from_env(env).service_database(SERVICE))
    await database.connect()
    await setup_outbox(database)
    try:
        yield database
    finally:
        await database.close()


async def queue(db: Database, *queued: Mail) -> None:
    async with db.transaction() as tx:
        for mail in queued:
            assert await enqueue(tx, mail)


async def statuses(db: Database) -> dict[tuple[str, str], str]:
    rows = await db.fetch("SELECT business_unit, mail_key, status FROM mail_outbox")
    return {(r["business_unit"], r["mail_key"]): r["status"] for r in rows}


async def row(db: Database, key: str, business_unit: str = "bu_a") -> dict[str, Any]:
    found = await db.fetchrow("SELECT * FROM mail_outbox WHERE business_unit = $1 AND mail_key = $2",
                              business_unit, key)
    assert found is not None, key
    return found


def sender_settings(env: dict[str, str], server: SmtpServer) -> Settings:
    return Settings.from_env({**env, **server.env()})


# --- Sent once ------------------------------------------------------------------------------

async def test_a_queued_mail_arrives_once_with_its_attachment_intact(db: Database, smtp: SmtpServer,
                                                                     env: dict[str, str]) -> None:
    await queue(db, invoice_mail(1))
    sender = MailSender(timing(**QUICK))
    result = await sender.send_due(db, sender_settings(env, smtp).smtp)
    assert (result.sent, result.retried, result.failed) == (1, 0, 0)

    [received] = smtp.mailbox.received
    assert received["To"] == "kunde@example.dk"
    assert received["Subject"] == "Faktura 1 fra Købmand Ærø"
    assert received["Message-ID"] == message_id("bu_a", "invoice-issued:1", "faktura@koebmand.example")
    [attachment] = list(received.iter_attachments())
    assert (attachment.get_filename(), attachment.get_content_type()) == ("faktura-1.pdf", "application/pdf")
    assert attachment.get_content() == PDF
    stored = await row(db, "invoice-issued:1")
    assert (stored["status"], stored["attempts"], stored["message_id"]) == ("sent", 1, received["Message-ID"])
    assert stored["sent_at"] >= stored["enqueued_at"]

    again = await sender.send_due(db, sender_settings(env, smtp).smtp)  # a pass that finds nothing due
    assert again.sent == 0 and smtp.mailbox.count() == 1


async def test_a_key_enqueued_twice_is_one_mail(db: Database, smtp: SmtpServer, env: dict[str, str]) -> None:
    """The same key in one business unit is one mail, whatever the second says; another business
    unit's same key is its own mail. A mail queued in a transaction that rolls back is not queued."""
    await queue(db, invoice_mail(7))
    async with db.transaction() as tx:
        assert not await enqueue(tx, replace(invoice_mail(7), subject="Faktura 7, igen"))
        assert await enqueue(tx, invoice_mail(7, business_unit="bu_b"))
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await enqueue(tx, invoice_mail(8))
            raise RuntimeError("the projection failed after queueing")  # e.g. storing the offset

    await MailSender(timing(**QUICK)).send_due(db, sender_settings(env, smtp).smtp)
    assert smtp.mailbox.subjects() == ["Faktura 7 fra Købmand Ærø"] * 2
    ids = {str(m["Message-ID"]) for m in smtp.mailbox.received}
    assert len(ids) == 2  # one per business unit
    assert await statuses(db) == {("bu_a", "invoice-issued:7"): "sent", ("bu_b", "invoice-issued:7"): "sent"}


async def test_two_senders_never_claim_the_same_mail(db: Database) -> None:
    """While one sender's claim is uncommitted, another skips the rows it locked (SKIP LOCKED)
    and takes the others at once, rather than waiting for them or taking them too."""
    await queue(db, *[invoice_mail(n) for n in range(10)])
    first, second = MailSender(timing(**{**QUICK, "batch": 3})), MailSender(timing(**{**QUICK, "batch": 10}))
    async with db.transaction() as tx:
        held = await first.claim(db, tx)
        other = await asyncio.wait_for(second.claim(db), 5)
    assert len(held) == 3 and len(other) == 7
    assert not {c.mail.key for c in held} & {c.mail.key for c in other}
    assert set((await statuses(db)).values()) == {"sending"}


async def test_two_sender_processes_send_each_mail_once(db: Database, smtp: SmtpServer,
                                                        env: dict[str, str], tmp_path: Path) -> None:
    smtp.mailbox.seconds_per_message = 0.05  # 3 s of work: both senders take part
    senders = [SenderProcess({**env, **smtp.env()}, tmp_path / f"sender-{n}.log").start() for n in (1, 2)]
    try:
        for sender in senders:
            await sender.running()
        await queue(db, *[invoice_mail(n) for n in range(60)])
        await eventually(lambda: all_sent(db, 60), what="every mail sent")
    finally:
        for sender in senders:
            sender.stop()
    assert smtp.mailbox.subjects() == sorted(f"Faktura {n} fra Købmand Ærø" for n in range(60))
    shares = [sender.output().count("mail outbox: sent") for sender in senders]
    assert sum(shares) == 60 and min(shares) > 0, shares


async def all_sent(db: Database, count: int) -> bool:
    found = await statuses(db)
    return len(found) == count and set(found.values()) == {"sent"}


# --- Crashes --------------------------------------------------------------------------------

async def test_a_sender_killed_after_its_claim_leaves_the_mail_to_the_next_once_the_lease_expires(
        db: Database, smtp: SmtpServer, env: dict[str, str], tmp_path: Path) -> None:
    await queue(db, invoice_mail(1))
    crashed = SenderProcess({**env, **smtp.env(), "SALDO_FAILPOINTS": "after-claim@mail-outbox@Mail"},
                            tmp_path / "crashed.log").start()
    assert await crashed.exit_code() == CRASHED
    claimed = await row(db, "invoice-issued:1")
    assert (claimed["status"], claimed["attempts"]) == ("sending", 1)
    assert smtp.mailbox.count() == 0  # its sender is dead: nothing can have sent it

    successor = SenderProcess({**env, **smtp.env()}, tmp_path / "successor.log").start()
    try:
        await eventually(lambda: all_sent(db, 1), what="the mail sent by the successor")
    finally:
        successor.stop()
    assert smtp.mailbox.count() == 1
    sent = await row(db, "invoice-issued:1")
    assert sent["attempts"] == 2
    assert sent["sent_at"] >= claimed["lease_until"]  # not before the dead sender's lease ran out
    assert "never finished" in successor.output()


async def test_a_sender_killed_after_recording_the_send_sends_nothing_again(
        db: Database, smtp: SmtpServer, env: dict[str, str], tmp_path: Path) -> None:
    await queue(db, invoice_mail(1))
    crashed = SenderProcess({**env, **smtp.env(), "SALDO_FAILPOINTS": "after-commit@mail-outbox@Mail"},
                            tmp_path / "crashed.log").start()
    assert await crashed.exit_code() == CRASHED
    assert (await row(db, "invoice-issued:1"))["status"] == "sent"

    successor = SenderProcess({**env, **smtp.env()}, tmp_path / "successor.log").start()
    try:
        await successor.running()
        # A mail queued after the restart arrives only after the successor's pass looked at the
        # outbox: once it is here, the first mail had every chance to be sent again.
        await queue(db, invoice_mail(2))
        await eventually(lambda: all_sent(db, 2), what="the later mail sent")
    finally:
        successor.stop()
    assert smtp.mailbox.subjects() == ["Faktura 1 fra Købmand Ærø", "Faktura 2 fra Købmand Ærø"]


async def test_the_window_between_the_servers_250_and_our_commit_sends_a_recognisable_copy(
        db: Database, smtp: SmtpServer, env: dict[str, str], tmp_path: Path) -> None:
    """SMTP has no exactly-once: a sender that dies after the server accepted the mail and before
    it recorded that leaves the mail claimed; once the lease expires it is sent again. The copy is
    the same message, with the same Message-ID and Date, which a mail client can recognise."""
    await queue(db, invoice_mail(1))
    crashed = SenderProcess({**env, **smtp.env(), "SALDO_FAILPOINTS": "before-commit@mail-outbox@Mail"},
                            tmp_path / "crashed.log").start()
    assert await crashed.exit_code() == CRASHED
    assert smtp.mailbox.count() == 1
    assert (await row(db, "invoice-issued:1"))["status"] == "sending"

    successor = SenderProcess({**env, **smtp.env()}, tmp_path / "successor.log").start()
    try:
        await eventually(lambda: all_sent(db, 1), what="the mail sent again")
    finally:
        successor.stop()
    first, copy = smtp.mailbox.received
    assert first["Message-ID"] == copy["Message-ID"] and first["Date"] == copy["Date"]


# --- Refusals ---------------------------------------------------------------------------------

async def test_while_the_smtp_server_is_down_the_mail_is_retried_and_sent_once_it_is_up(
        db: Database, env: dict[str, str]) -> None:
    port = free_port()  # nothing listens here yet
    down = SmtpServer(port)
    runtime = ServiceRuntime(mail_service(timing(**QUICK)), sender_settings(env, down), None, None)  # type: ignore[arg-type]
    await runtime.open()
    await runtime.start(relay=False, consumers=False, jobs=True)
    try:
        await queue(db, invoice_mail(1))

        async def retried_twice() -> dict[str, Any] | None:
            stored = await row(db, "invoice-issued:1")
            return stored if stored["attempts"] >= 2 and stored["status"] == "queued" else None

        waiting = await eventually(retried_twice, what="two failed attempts")
        assert "cannot reach 127.0.0.1" in waiting["last_error"]
        assert "ConnectionRefusedError" in waiting["last_error"]
        [pending] = await undelivered(db, "bu_a")
        assert pending.status == "queued" and pending.next_attempt_at is not None

        up = SmtpServer(port).start()
        try:
            await eventually(lambda: all_sent(db, 1), what="the mail sent once the server is up")
            assert up.mailbox.count() == 1
        finally:
            up.stop()
    finally:
        await runtime.close()


async def test_a_4xx_reply_is_retried_and_the_mail_sent_once(db: Database, smtp: SmtpServer,
                                                             env: dict[str, str]) -> None:
    smtp.mailbox.data_refusals = ["451 4.3.0 Mail server temporarily rejected message"]
    smtp.mailbox.refuse["greylisted@example.dk"] = "450 4.2.0 Greylisted, please try again later"
    await queue(db, invoice_mail(1), invoice_mail(2, to="greylisted@example.dk"))
    sender, settings = MailSender(timing(**QUICK)), sender_settings(env, smtp)
    first = await sender.send_due(db, settings.smtp)
    assert (first.sent, first.retried) == (0, 2)
    assert {m.key: m.last_error for m in await undelivered(db, "bu_a")} == {
        "invoice-issued:1": "451 4.3.0 Mail server temporarily rejected message",
        "invoice-issued:2": "450 4.2.0 Greylisted, please try again later"}

    del smtp.mailbox.refuse["greylisted@example.dk"]

    async def both_sent() -> bool:
        await sender.send_due(db, settings.smtp)
        return await all_sent(db, 2)

    await eventually(both_sent, what="both mails sent after their backoff")
    assert smtp.mailbox.subjects() == ["Faktura 1 fra Købmand Ærø", "Faktura 2 fra Købmand Ærø"]
    assert [(await row(db, f"invoice-issued:{n}"))["attempts"] for n in (1, 2)] == [2, 2]


async def test_a_5xx_reply_fails_the_mail_with_the_reason_and_it_is_not_retried(
        db: Database, smtp: SmtpServer, env: dict[str, str]) -> None:
    smtp.mailbox.refuse["gone@example.dk"] = "550 5.1.1 <gone@example.dk>: Recipient address rejected"
    await queue(db, invoice_mail(1, to="gone@example.dk"), invoice_mail(2))
    sender, settings = MailSender(timing(**QUICK)), sender_settings(env, smtp)
    result = await sender.send_due(db, settings.smtp)
    assert (result.sent, result.failed, result.retried) == (1, 1, 0)

    [failed] = await undelivered(db, "bu_a")
    assert (failed.key, failed.status, failed.attempts) == ("invoice-issued:1", "failed", 1)
    assert failed.last_error == "550 5.1.1 <gone@example.dk>: Recipient address rejected"
    assert failed.failed_at is not None and failed.to == "gone@example.dk"
    assert await undelivered(db, "bu_b") == []  # per business unit
    assert [m.key for m in await mails(db, "bu_a", ["sent"])] == ["invoice-issued:2"]

    # Later passes leave it alone: a mail queued after it is sent, and it is not tried again.
    await queue(db, invoice_mail(3))
    later = await sender.send_due(db, settings.smtp)
    assert (later.sent, later.failed, later.retried) == (1, 0, 0)
    assert smtp.mailbox.recipients_tried.count("gone@example.dk") == 1
    assert smtp.mailbox.subjects() == ["Faktura 2 fra Købmand Ærø", "Faktura 3 fra Købmand Ærø"]

    # The operator fixed the mailbox and asks for it again.
    del smtp.mailbox.refuse["gone@example.dk"]
    assert await requeue(db, "bu_a", "invoice-issued:1")
    assert (await sender.send_due(db, settings.smtp)).sent == 1
    assert smtp.mailbox.count() == 3 and await undelivered(db, "bu_a") == []


# --- Jobs in the runtime: stopping, exclusivity, embedded mode -----------------------------

async def test_a_stopped_sender_finishes_the_mail_in_hand_and_gives_back_the_rest(
        db: Database, smtp: SmtpServer, env: dict[str, str], tmp_path: Path) -> None:
    """SIGTERM stops the process's jobs with its relay and consumers, well within 10 s: the mail
    being sent is sent and recorded, the rest of the claim is released unsent and uncounted."""
    smtp.mailbox.seconds_per_message = 0.5
    sender = SenderProcess({**env, **smtp.env()}, tmp_path / "sender.log").start()
    try:
        await sender.running()
        await queue(db, *[invoice_mail(n) for n in range(5)])
        await eventually(lambda: smtp.mailbox.has(1), what="a first mail sent")
        started = time.monotonic()
        assert await sender.terminate() == 0
        assert time.monotonic() - started < 10
    finally:
        sender.stop()
    found = await db.fetch("SELECT status, attempts FROM mail_outbox")
    sent = [r for r in found if r["status"] == "sent"]
    assert len(sent) == smtp.mailbox.count()  # each mail the server took is recorded as sent
    assert sorted({r["status"] for r in found}) == ["queued", "sent"]  # nothing left claimed
    assert all(r["attempts"] == 0 for r in found if r["status"] == "queued")


async def test_an_exclusive_job_runs_on_one_replica_at_a_time(db: Database, env: dict[str, str]) -> None:
    other_replica = open_database(db.url)
    await other_replica.connect()
    inside, leave = asyncio.Event(), asyncio.Event()

    async def reminders(runtime: Any) -> None:
        inside.set()
        await leave.wait()

    job = Job("reminders", timedelta(seconds=1), reminders, exclusive=True)
    replicas = [_Replica(SERVICE, db), _Replica(SERVICE, other_replica)]
    try:
        first = asyncio.create_task(run_once(job, replicas[0]))  # type: ignore[arg-type]
        await asyncio.wait_for(inside.wait(), 5)
        assert await run_once(job, replicas[1]) is False  # type: ignore[arg-type]  # skipped, not waiting
        leave.set()
        assert await first is True
        inside.clear()
        assert await run_once(job, replicas[1]) is True  # type: ignore[arg-type]  # the lock is free again
    finally:
        await other_replica.close()


@dataclass
class _Replica:
    name: str
    db: Database


async def test_jobs_run_in_the_embedded_runtime_and_a_failure_is_retried(
        tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    async def flaky(runtime: ServiceRuntime) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise ConnectionError("the accounting package did not answer")

    settings = Settings.from_env({"SALDO_MODE": "embedded", "SALDO_VAR_DIR": str(tmp_path / "var"),
                                  **smtp.env()})
    settings.var_dir.mkdir(parents=True)
    bus = LocalBus(str(settings.var_dir / "bus.sqlite"))
    await bus.start()
    runtime = ServiceRuntime(mail_service(timing(**QUICK), Job("flaky", timedelta(milliseconds=50), flaky)),
                             settings, None, bus)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.ERROR, "saldo_platform.jobs"):
            await runtime.open()
            await runtime.start()  # the embedded process runs everything, jobs included
            await queue(runtime.db, invoice_mail(1))
            await eventually(lambda: all_sent(runtime.db, 1), what="the mail sent from SQLite")
            await eventually(lambda: ran_at_least(runs, 3), what="the flaky job run again")
        assert any("job flaky failed" in r.getMessage() for r in caplog.records)
        [received] = smtp.mailbox.received
        assert [a.get_content() for a in received.iter_attachments()] == [PDF]
        started = time.monotonic()
        await runtime.close()
        assert time.monotonic() - started < 2  # the jobs stop between runs, at once
    except BaseException:
        await runtime.close()
        raise
    finally:
        await bus.stop()


async def ran_at_least(runs: list[int], count: int) -> bool:
    return len(runs) >= count


async def test_without_smtp_settings_mails_stay_queued_and_one_warning_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = open_database(f"sqlite:{tmp_path / 'outbox.sqlite'}")
    await db.connect()
    try:
        await setup_outbox(db)
        await queue(db, invoice_mail(1))
        sender = MailSender(timing(**QUICK))
        with caplog.at_level(logging.WARNING, "saldo_platform.mail"):
            for _ in range(3):
                await sender.send_due(db, None)
        warnings = [r.getMessage() for r in caplog.records if r.name == "saldo_platform.mail"]
        assert warnings == ["mail outbox: SALDO_SMTP_HOST is not set; 1 mail(s) stay queued until it is"]
        assert await statuses(db) == {("bu_a", "invoice-issued:1"): "queued"}
    finally:
        await db.close()


# --- The sender as an OS process ---------------------------------------------------------------

class SenderProcess:
    """`sender_process()` in a process of its own: a runtime of the test service running only its
    jobs, stopped by SIGTERM, or killed by a failpoint (`SALDO_FAILPOINTS`)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log_path = {**env, "MAIL_TEST_TIMING": json.dumps(QUICK)}, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> SenderProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-c", "from tests.test_mail_outbox import sender_process; sender_process()"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def running(self) -> None:
        async def said_so() -> bool:
            assert self.popen is not None and self.popen.poll() is None, self.output()[-3000:]
            return "outbox sender running" in self.output()

        await eventually(said_so, timeout=60, what="the sender process to start")

    async def exit_code(self, timeout: float = 60) -> int:
        assert self.popen is not None
        return await asyncio.to_thread(self.popen.wait, timeout)

    async def terminate(self) -> int:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        return await self.exit_code(15)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def sender_process() -> None:
    from saldo_platform.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(f"saldo-{SERVICE}", settings.log_level)
    asyncio.run(_run_sender(settings, timing(**json.loads(os.environ["MAIL_TEST_TIMING"]))))


async def _run_sender(settings: Settings, outbox_timing: OutboxTiming) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    runtime = ServiceRuntime(mail_service(outbox_timing), settings, None, None)  # type: ignore[arg-type]
    try:
        await runtime.open()
        await runtime.start(relay=False, consumers=False, jobs=True)
        print(f"outbox sender running at {datetime.now(UTC).isoformat()}", flush=True)
        await stop.wait()
    finally:
        await runtime.close()
