"""The e-mail outbox: a mail is written with the effect that causes it, and sent by a job.

A projection handling an event calls `enqueue(tx, mail)` in its own transaction, so the mail is
queued exactly once, together with the consumer's offset (projection.py). Each mail has a key,
unique per business unit ("invoice-issued:<invoice id>"); enqueuing a key again is a no-op,
whatever the second mail says. The `mail_outbox` table lives in the service's own database.

`outbox_job()` is the sender, a `Job` (jobs.py) each replica runs:

1. **claim** due mails in a short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
   replicas never take the same mail; SQLite: the one embedded process), marking them
   `sending` with a lease;
2. **send** each through SMTP (stdlib `smtplib` in a worker thread), with a Message-ID derived
   from the business unit and the key, the same on every attempt;
3. **mark** it `sent`, with the time, in a transaction of its own, right after the server's 250.

SMTP has no exactly-once. A mail is sent once, except when the process dies (or loses its
lease) in the window between the server's 250 for the message and the commit of step 3, a
few milliseconds: the lease then expires and another pass sends it again, with the same
Message-ID, so the copy is recognisable. A sender that is stopped cleanly finishes the mail in
hand and gives back the rest of its claim unsent.

Refusals: connection failures and 4xx replies are retried with exponential backoff (attempts
are counted on the row) until `give_up_after`; a 5xx reply to the mail's own transaction
(MAIL FROM, RCPT TO, DATA) is permanent: the mail is `failed`, with the server's reason, and not
retried unless an operator calls `requeue`. `undelivered()` lists a business unit's failed and
pending mails. Without SMTP settings (settings.py, `SALDO_SMTP_*`) mails stay queued and a
warning is logged once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Literal
from uuid import NAMESPACE_URL, uuid4, uuid5

from saldo_platform import failpoints, telemetry
from saldo_platform.http.pages import sortable_time
from saldo_platform.jobs import Job
from saldo_platform.settings import SmtpSettings, address_domain
from saldo_platform.sql import Database, Executor, Row

if TYPE_CHECKING:
    from saldo_platform.service import ServiceRuntime

log = logging.getLogger(__name__)

Status = Literal["queued", "sending", "sent", "failed"]
UNDELIVERED: tuple[Status, ...] = ("queued", "sending", "failed")

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS mail_outbox (
    business_unit TEXT NOT NULL, mail_key TEXT NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
    attachments TEXT NOT NULL,
    status TEXT NOT NULL, attempts BIGINT NOT NULL,
    enqueued_at TEXT NOT NULL, next_attempt_at TEXT NOT NULL,
    claim TEXT, claimed_at TEXT, lease_until TEXT,
    message_id TEXT, sent_at TEXT, failed_at TEXT, last_error TEXT,
    PRIMARY KEY (business_unit, mail_key));
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (status, next_attempt_at)
"""

sent_counter = telemetry.meter.create_counter("saldo.mail.sent", description="Mails the SMTP server accepted")
retried_counter = telemetry.meter.create_counter(
    "saldo.mail.retried", description="Mail attempts that failed and will be retried")
failed_counter = telemetry.meter.create_counter(
    "saldo.mail.failed", description="Mails refused for good (5xx) or given up")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+\.[^@\s<>,;:\"()\[\]\\]+")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "application/pdf"
    content: bytes

    def __post_init__(self) -> None:
        if not self.filename or _CONTROL.search(self.filename):
            raise ValueError(f"attachment filename {self.filename!r}: empty or with control characters")
        if not _CONTENT_TYPE.fullmatch(self.content_type):
            raise ValueError(f"attachment content type {self.content_type!r} is not type/subtype")


@dataclass(frozen=True)
class Mail:
    # Unique per business unit, e.g. "invoice-issued:<invoice id>": the same key is one mail.
    key: str
    business_unit: str
    to: str  # one address, e.g. "customer@example.com"
    subject: str
    body: str  # plain text
    attachments: Sequence[Attachment] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "attachments", tuple(self.attachments))
        if not self.key or len(self.key) > 300 or _CONTROL.search(self.key):
            raise ValueError(f"mail key {self.key!r}: 1-300 characters, no control characters")
        if not self.business_unit:
            raise ValueError("a mail belongs to a business unit")
        if not _ADDRESS.fullmatch(self.to):
            raise ValueError(f"mail {self.key}: {self.to!r} is not one e-mail address")
        if _CONTROL.search(self.subject):
            raise ValueError(f"mail {self.key}: the subject has control characters (a line break?)")


def mail_id(business_unit: str, key: str) -> str:
    return str(uuid5(NAMESPACE_URL, f"saldo:mail:{business_unit}:{key}"))


def message_id(business_unit: str, key: str, sender: str) -> str:
    """The Message-ID of a mail: the same for every attempt, so a duplicate is recognisable."""
    domain = address_domain(sender) or "saldo.invalid"
    return f"<{mail_id(business_unit, key)}@{domain.encode('idna').decode('ascii')}>"


def render(mail: Mail, smtp: SmtpSettings, date: datetime) -> EmailMessage:
    """The message as sent. `date` is when it was queued, so every attempt is the same message."""
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(date.astimezone(UTC))
    message["Message-ID"] = message_id(mail.business_unit, mail.key, smtp.sender_address)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(mail.body)
    for attachment in mail.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.filename)
    return message


async def setup_outbox(db: Database) -> None:
    await db.create_schema(OUTBOX_SCHEMA)


async def enqueue(tx: Executor, mail: Mail, *, now: datetime | None = None) -> bool:
    """Queue `mail` in the caller's transaction; False (and nothing written) if its key is queued."""
    at = sortable_time(now or datetime.now(UTC))
    attachments = [{"filename": a.filename, "content_type": a.content_type,
                    "content": base64.b64encode(a.content).decode("ascii")} for a in mail.attachments]
    return bool(await tx.fetchval(
        "INSERT INTO mail_outbox (business_unit, mail_key, recipient, subject, body, attachments,"
        " status, attempts, enqueued_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6,"
        " 'queued', 0, $7, $7) ON CONFLICT (business_unit, mail_key) DO NOTHING RETURNING 1",
        mail.business_unit, mail.key, mail.to, mail.subject, mail.body, json.dumps(attachments), at))


def _mail_of(row: Row) -> Mail:
    return Mail(key=row["mail_key"], business_unit=row["business_unit"], to=row["recipient"],
                subject=row["subject"], body=row["body"],
                attachments=[Attachment(a["filename"], a["content_type"], base64.b64decode(a["content"]))
                             for a in json.loads(row["attachments"])])


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# --- What an operator sees ---------------------------------------------------------------------

@dataclass(frozen=True)
class MailState:
    key: str
    business_unit: str
    to: str
    subject: str
    status: Status
    attempts: int  # SMTP attempts so far (a claim that died counts as one)
    enqueued_at: datetime
    next_attempt_at: datetime | None  # while queued
    sent_at: datetime | None
    failed_at: datetime | None
    last_error: str | None  # the server's reply or the connection error of the last failure
    message_id: str | None  # once sent or failed


async def mails(db: Database, business_unit: str, statuses: Collection[Status] = UNDELIVERED,
                limit: int = 100) -> list[MailState]:
    """A business unit's mails in the given states, oldest first (default: all not yet sent)."""
    wanted = sorted(set(statuses))
    if not wanted:
        return []
    marks = ", ".join(f"${i + 2}" for i in range(len(wanted)))
    rows = await db.fetch(
        "SELECT business_unit, mail_key, recipient, subject, status, attempts, enqueued_at,"
        " next_attempt_at, sent_at, failed_at, last_error, message_id FROM mail_outbox"
        f" WHERE business_unit = $1 AND status IN ({marks})"
        f" ORDER BY enqueued_at, mail_key LIMIT ${len(wanted) + 2}",
        business_unit, *wanted, limit)
    return [MailState(key=r["mail_key"], business_unit=r["business_unit"], to=r["recipient"],
                      subject=r["subject"], status=r["status"], attempts=int(r["attempts"]),
                      enqueued_at=datetime.fromisoformat(r["enqueued_at"]),
                      next_attempt_at=_time(r["next_attempt_at"]) if r["status"] == "queued" else None,
                      sent_at=_time(r["sent_at"]), failed_at=_time(r["failed_at"]),
                      last_error=r["last_error"], message_id=r["message_id"]) for r in rows]


async def undelivered(db: Database, business_unit: str, limit: int = 100) -> list[MailState]:
    """Failed and pending mails of a business unit: what an operator looks at."""
    return await mails(db, business_unit, UNDELIVERED, limit)


async def requeue(db: Database, business_unit: str, key: str) -> bool:
    """Send a failed mail again at the next pass (after the operator fixed the cause)."""
    return bool(await db.fetchval(
        "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $3, failed_at = NULL"
        " WHERE business_unit = $1 AND mail_key = $2 AND status = 'failed' RETURNING 1",
        business_unit, key, sortable_time(datetime.now(UTC))))


# --- The sender --------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboxTiming:
    batch: int = 10  # mails claimed per transaction
    # A claim older than this is presumed dead and taken over. Far above what a batch takes
    # (each SMTP operation times out after `smtp_timeout`), so a slow sender keeps its mails.
    lease: timedelta = timedelta(minutes=5)
    first_retry: timedelta = timedelta(seconds=30)  # then doubling after each failure...
    longest_retry: timedelta = timedelta(minutes=30)  # ...up to this
    give_up_after: timedelta = timedelta(days=3)  # transient failures for this long: failed
    smtp_timeout: float = 10.0  # seconds, per SMTP operation

    def retry_delay(self, attempts: int) -> timedelta:
        """Before attempt `attempts + 1`: first_retry, doubled per earlier failure, capped."""
        doublings: int = min(max(attempts - 1, 0), 32)
        return min(self.first_retry * (1 << doublings), self.longest_retry)


@dataclass(frozen=True)
class Claimed:
    mail: Mail
    enqueued_at: datetime
    attempts: int  # this one included
    claim: str


@dataclass
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0


class _Unsendable(Exception):
    """A refusal of one mail: `permanent` for a 5xx reply to its own MAIL, RCPT or DATA."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(message.split())}"


def refusal(error: Exception) -> _Unsendable | None:
    """How the server refused one mail, or None if the connection itself failed (retry all)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()), (0, b"recipient refused"))
        return _Unsendable(_reply(code, text), 500 <= code < 600)
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return _Unsendable(_reply(error.smtp_code, error.smtp_error), 500 <= error.smtp_code < 600)
    if isinstance(error, smtplib.SMTPNotSupportedError):  # an address needs SMTPUTF8
        return _Unsendable(f"the server cannot take this mail: {error}", True)
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(error.smtp_code, error.smtp_error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class MailSender:
    """Sends what is due in a service's outbox; one per job, shared by its runs."""

    def __init__(self, timing: OutboxTiming | None = None) -> None:
        self.timing = timing or OutboxTiming()
        self._warned_unconfigured = False

    async def send_due(self, db: Database, smtp: SmtpSettings | None,
                       stopping: asyncio.Event | None = None) -> PassResult:
        """Claim and send due mails, batch after batch, until none is due, the server cannot be
        reached (the rest waits for the next pass) or `stopping` is set."""
        result = PassResult()
        stopping = stopping or asyncio.Event()
        if smtp is None:
            await self._warn_unconfigured(db)
            return result
        while not stopping.is_set():
            claimed = await self.claim(db)
            if not claimed:
                break
            failpoints.reach("after-claim", "mail-outbox", "Mail")
            if not await self._send_batch(db, smtp, claimed, stopping, result):
                break
        return result

    async def claim(self, db: Database, tx: Executor | None = None) -> list[Claimed]:
        """Mark up to `batch` due mails `sending` under a new lease; in `tx` if given (tests)."""
        if tx is None:
            async with db.transaction() as own:
                return await self.claim(db, own)
        now = datetime.now(UTC)
        token = uuid4().hex
        skip_locked = "" if db.url.startswith("sqlite:") else " FOR UPDATE SKIP LOCKED"
        rows = await tx.fetch(
            "SELECT * FROM mail_outbox WHERE (status = 'queued' AND next_attempt_at <= $1)"
            " OR (status = 'sending' AND lease_until <= $1)"
            " ORDER BY next_attempt_at, enqueued_at LIMIT $2" + skip_locked,
            sortable_time(now), self.timing.batch)
        claimed = []
        for row in rows:
            if row["status"] == "sending":
                log.warning("mail outbox: %s/%s was claimed at %s by a sender that never finished; "
                            "sending it again with the same Message-ID (it may have arrived already)",
                            row["business_unit"], row["mail_key"], row["claimed_at"])
            await tx.execute(
                "UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, claim = $1,"
                " claimed_at = $2, lease_until = $3 WHERE business_unit = $4 AND mail_key = $5",
                token, sortable_time(now), sortable_time(now + self.timing.lease),
                row["business_unit"], row["mail_key"])
            claimed.append(Claimed(_mail_of(row), datetime.fromisoformat(row["enqueued_at"]),
                                    int(row["attempts"]) + 1, token))
        return claimed

    async def _send_batch(self, db: Database, smtp: SmtpSettings, claimed: list[Claimed],
                          stopping: asyncio.Event, result: PassResult) -> bool:
        """Send a claimed batch on one connection; False if the connection failed."""
        try:
            connection = await asyncio.to_thread(self._connect, smtp)
        except (OSError, smtplib.SMTPException) as e:
            log.warning("mail outbox: cannot reach %s:%d (%s); %d mail(s) retried later",
                        smtp.host, smtp.port, _describe(e), len(claimed))
            for item in claimed:  # one warning for the server, not one per mail
                await self._retry(db, item, f"cannot reach {smtp.host}:{smtp.port}: {_describe(e)}",
                                  result, level=logging.DEBUG)
            return False
        try:
            for n, item in enumerate(claimed):
                if stopping.is_set():
                    await self._release(db, claimed[n:], result)
                    break
                message = render(item.mail, smtp, item.enqueued_at)
                try:
                    await asyncio.to_thread(connection.send_message, message,
                                            smtp.sender_address, [item.mail.to])
                except (OSError, smtplib.SMTPException) as e:
                    refused = refusal(e)
                    if refused is None:  # the connection broke: this mail retried, the rest later
                        await self._retry(db, item, _describe(e), result)
                        await self._release(db, claimed[n + 1:], result)
                        return False
                    if refused.permanent:
                        await self._fail(db, item, refused.reason, str(message["Message-ID"]), result)
                    else:
                        await self._retry(db, item, refused.reason, result)
                    continue
                await self._mark_sent(db, item, str(message["Message-ID"]), result)
        except BaseException:
            connection.close()  # cancelled or a bug: no polite QUIT, the leases cover the rest
            raise
        await asyncio.to_thread(_quit, connection)
        return True

    def _connect(self, smtp: SmtpSettings) -> smtplib.SMTP:
        # gethostname(), not smtplib's default getfqdn(): a reverse DNS lookup can take seconds.
        connection = smtplib.SMTP(smtp.host, smtp.port, local_hostname=socket.gethostname(),
                                  timeout=self.timing.smtp_timeout)
        try:
            if smtp.starttls:
                connection.starttls(context=ssl.create_default_context())
            if smtp.user is not None and smtp.password is not None:
                connection.login(smtp.user, smtp.password)
        except BaseException:
            connection.close()
            raise
        return connection

    async def _mark_sent(self, db: Database, item: Claimed, message_id: str, result: PassResult) -> None:
        # The crash window is from the server's 250 (send_message returned) to this commit.
        async with db.transaction() as tx:
            ours = await tx.fetchval(
                "UPDATE mail_outbox SET status = 'sent', sent_at = $1, message_id = $2, claim = NULL,"
                " lease_until = NULL WHERE business_unit = $3 AND mail_key = $4 AND claim = $5"
                " RETURNING 1", sortable_time(datetime.now(UTC)), message_id,
                item.mail.business_unit, item.mail.key, item.claim)
            failpoints.reach("before-commit", "mail-outbox", "Mail")
        failpoints.reach("after-commit", "mail-outbox", "Mail")
        result.sent += 1
        sent_counter.add(1)
        log.info("mail outbox: sent %s/%s, Message-ID %s", item.mail.business_unit, item.mail.key, message_id)
        if not ours:
            log.warning("mail outbox: %s/%s was sent after its lease ran out; another sender may "
                        "send it again (same Message-ID %s)", item.mail.business_unit, item.mail.key,
                        message_id)

    async def _retry(self, db: Database, item: Claimed, reason: str, result: PassResult,
                     level: int = logging.WARNING) -> None:
        now = datetime.now(UTC)
        if now - item.enqueued_at >= self.timing.give_up_after:
            await self._fail(db, item, f"gave up after {item.attempts} attempts: {reason}", None, result)
            return
        await db.execute(
            "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $1, last_error = $2,"
            " claim = NULL, lease_until = NULL WHERE business_unit = $3 AND mail_key = $4 AND claim = $5",
            sortable_time(now + self.timing.retry_delay(item.attempts)), reason,
            item.mail.business_unit, item.mail.key, item.claim)
        result.retried += 1
        retried_counter.add(1)
        log.log(level, "mail outbox: %s/%s not sent (attempt %d), retried later: %s",
                item.mail.business_unit, item.mail.key, item.attempts, reason)

    async def _fail(self, db: Database, item: Claimed, reason: str, message_id: str | None,
                    result: PassResult) -> None:
        await db.execute(
            "UPDATE mail_outbox SET status = 'failed', failed_at = $1, last_error = $2, message_id = $3,"
            " claim = NULL, lease_until = NULL WHERE business_unit = $4 AND mail_key = $5 AND claim = $6",
            sortable_time(datetime.now(UTC)), reason, message_id, item.mail.business_unit,
            item.mail.key, item.claim)
        result.failed += 1
        failed_counter.add(1)
        log.error("mail outbox: %s/%s failed for good: %s", item.mail.business_unit, item.mail.key, reason)

    async def _release(self, db: Database, items: Sequence[Claimed], result: PassResult) -> None:
        """Give back mails claimed but not tried: the next pass (any replica) takes them at once."""
        for item in items:
            await db.execute(
                "UPDATE mail_outbox SET status = 'queued', attempts = attempts - 1, claim = NULL,"
                " claimed_at = NULL, lease_until = NULL"
                " WHERE business_unit = $1 AND mail_key = $2 AND claim = $3",
                item.mail.business_unit, item.mail.key, item.claim)
            result.released += 1

    async def _warn_unconfigured(self, db: Database) -> None:
        if self._warned_unconfigured:
            return
        waiting = await db.fetchval(
            "SELECT count(*) FROM mail_outbox WHERE status IN ('queued', 'sending')")
        if waiting:
            self._warned_unconfigured = True
            log.warning("mail outbox: SALDO_SMTP_HOST is not set; %d mail(s) stay queued until it is",
                        waiting)


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()  # everything was sent and recorded; a failed goodbye changes nothing


def outbox_job(timing: OutboxTiming | None = None, interval: timedelta = timedelta(seconds=2)) -> Job:
    """The sender as a service's background job: `ServiceDefinition(jobs=[outbox_job()])`."""
    sender = MailSender(timing)

    async def run(runtime: ServiceRuntime) -> None:
        await sender.send_due(runtime.db, runtime.settings.smtp, runtime.stopping)

    async def setup(runtime: ServiceRuntime) -> None:
        await setup_outbox(runtime.db)

    return Job("mail-outbox", interval, run, setup=setup)


