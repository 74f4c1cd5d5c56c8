"""The mail outbox's pure parts and the job loop, without a database or a server.

What is sent (the rendered message, its Message-ID), how a server's refusal is read (5xx to the
mail's own transaction is final, everything else is retried), the retry backoff, the SMTP
settings an operator may give, and how a periodic job runs, fails and stops.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import logging
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import pytest

from saldo_platform.jobs import Job, run_periodically
from saldo_platform.mail import Attachment, Mail, OutboxTiming, message_id, refusal, render
from saldo_platform.settings import Settings, SmtpSettings

SMTP = SmtpSettings(host="127.0.0.1", port=2525, sender="Saldo Billing <billing@saldo.example>")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"  # every byte value: nothing may be mangled


def invoice_mail(key: str = "invoice-issued:42", business_unit: str = "bu_a") -> Mail:
    return Mail(key=key, business_unit=business_unit, to="kunde@example.dk",
                subject="Faktura 42 fra Købmand Ærø – forfald 1. december",
                body="Hej,\n\nhermed faktura 42.\n\nVenlig hilsen\nKøbmand Ærø\n",
                attachments=[Attachment("Faktura 42 – Ærø.pdf", "application/pdf", PDF)])


def test_a_mail_is_rendered_with_its_attachment_byte_for_byte() -> None:
    queued = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    wire = render(invoice_mail(), SMTP, queued).as_bytes()
    parsed = email.message_from_bytes(wire, _class=EmailMessage, policy=email.policy.default)
    assert parsed["From"] == "Saldo Billing <billing@saldo.example>"
    assert parsed["To"] == "kunde@example.dk"
    assert parsed["Subject"] == "Faktura 42 fra Købmand Ærø – forfald 1. december"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert email.utils.parsedate_to_datetime(parsed["Date"]) == queued
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content() == invoice_mail().body
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "Faktura 42 – Ærø.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


def test_the_message_id_is_derived_from_the_business_unit_and_the_key() -> None:
    """Every attempt of a mail carries the same Message-ID, so a duplicate is recognisable."""
    first = render(invoice_mail(), SMTP, datetime(2026, 3, 1, tzinfo=UTC))
    again = render(invoice_mail(), SMTP, datetime(2026, 3, 1, tzinfo=UTC))
    assert first["Message-ID"] == again["Message-ID"] == message_id("bu_a", "invoice-issued:42",
                                                                    "billing@saldo.example")
    assert str(first["Message-ID"]).endswith("@saldo.example>")
    assert message_id("bu_b", "invoice-issued:42", "billing@saldo.example") != first["Message-ID"]
    assert message_id("bu_a", "invoice-issued:43", "billing@saldo.example") != first["Message-ID"]
    assert first.as_bytes() == again.as_bytes().replace(  # the same message but for MIME boundaries
        _boundary(again), _boundary(first))


def _boundary(message: EmailMessage) -> bytes:
    boundary = message.get_boundary()
    assert boundary is not None
    return boundary.encode()


@pytest.mark.parametrize("change", [
    {"to": "not an address"}, {"to": "a@b.dk, c@d.dk"}, {"to": "x@example.dk\r\nBcc: y@example.dk"},
    {"subject": "Faktura\r\nBcc: y@example.dk"}, {"key": ""}, {"key": "k" * 301}, {"business_unit": ""},
])
def test_a_mail_that_could_not_be_sent_as_meant_is_refused_when_queued(change: dict[str, str]) -> None:
    fields: dict[str, Any] = {"key": "k", "business_unit": "bu_a", "to": "kunde@example.dk",
                              "subject": "s", "body": "b", **change}
    with pytest.raises(ValueError):
        Mail(**fields)


@pytest.mark.parametrize(("filename", "content_type"), [("", "application/pdf"),
                                                        ("a\nb.pdf", "application/pdf"),
                                                        ("a.pdf", "pdf"), ("a.pdf", "application/pdf; x")])
def test_an_attachment_needs_a_filename_and_a_content_type(filename: str, content_type: str) -> None:
    with pytest.raises(ValueError):
        Attachment(filename, content_type, b"x")


@pytest.mark.parametrize(("error", "reason", "permanent"), [
    (smtplib.SMTPRecipientsRefused({"kunde@example.dk": (550, b"5.1.1 No such mailbox")}),
     "550 5.1.1 No such mailbox", True),
    (smtplib.SMTPRecipientsRefused({"kunde@example.dk": (450, b"4.2.0 Greylisted, try later")}),
     "450 4.2.0 Greylisted, try later", False),
    (smtplib.SMTPDataError(554, b"5.7.1 Message rejected\r\n as spam"), "554 5.7.1 Message rejected as spam",
     True),
    (smtplib.SMTPDataError(451, b"4.3.0 Temporary failure"), "451 4.3.0 Temporary failure", False),
    (smtplib.SMTPSenderRefused(552, b"5.3.4 Message too big", "billing@saldo.example"),
     "552 5.3.4 Message too big", True),
    (smtplib.SMTPSenderRefused(421, b"4.7.0 Try again later", "billing@saldo.example"),
     "421 4.7.0 Try again later", False),
])
def test_a_5xx_reply_to_the_mail_is_final_and_a_4xx_is_retried(error: Exception, reason: str,
                                                               permanent: bool) -> None:
    refused = refusal(error)
    assert refused is not None
    assert (refused.reason, refused.permanent) == (reason, permanent)


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out"),
    smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
    smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"),
    smtplib.SMTPConnectError(554, b"no service"),
])
def test_a_failing_connection_or_login_is_no_verdict_on_the_mail(error: Exception) -> None:
    """Our password or their server being down says nothing about the mail: retried, even a 5xx."""
    assert refusal(error) is None


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    timing = OutboxTiming(first_retry=timedelta(seconds=30), longest_retry=timedelta(minutes=30))
    delays = [timing.retry_delay(attempts) for attempts in range(1, 10)]
    assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays[-1] == timedelta(minutes=30)
    assert timing.retry_delay(10_000) == timedelta(minutes=30)


def test_smtp_is_not_configured_without_a_host() -> None:
    assert Settings.from_env({}).smtp is None


def test_smtp_settings_from_the_environment() -> None:
    smtp = Settings.from_env({"SALDO_SMTP_HOST": "smtp.example.dk", "SALDO_SMTP_PORT": "587",
                              "SALDO_SMTP_FROM": "Købmand Ærø <faktura@koebmand.dk>",
                              "SALDO_SMTP_USER": "faktura", "SALDO_SMTP_PASSWORD": "hemmeligt",
                              "SALDO_SMTP_STARTTLS": "true"}).smtp
    assert smtp == SmtpSettings("smtp.example.dk", 587, "Købmand Ærø <faktura@koebmand.dk>",
                                "faktura", "hemmeligt", True)
    assert smtp.sender_address == "faktura@koebmand.dk"
    assert "hemmeligt" not in repr(smtp)
    plain = Settings.from_env({"SALDO_SMTP_HOST": "localhost", "SALDO_SMTP_FROM": "a@b.dk"}).smtp
    assert plain is not None and (plain.port, plain.starttls, plain.user) == (25, False, None)


@pytest.mark.parametrize(("env", "named"), [
    ({"SALDO_SMTP_PORT": "0"}, "SALDO_SMTP_PORT"), ({"SALDO_SMTP_PORT": "smtp"}, "SALDO_SMTP_PORT"),
    ({"SALDO_SMTP_FROM": ""}, "SALDO_SMTP_FROM"), ({"SALDO_SMTP_FROM": "billing"}, "SALDO_SMTP_FROM"),
    ({"SALDO_SMTP_STARTTLS": "maybe"}, "SALDO_SMTP_STARTTLS"),
    ({"SALDO_SMTP_USER": "u"}, "SALDO_SMTP_PASSWORD"),
    ({"SALDO_SMTP_USER": "u", "SALDO_SMTP_PASSWORD": "p"}, "SALDO_SMTP_STARTTLS"),
])
def test_smtp_settings_an_operator_could_not_have_meant_are_refused(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env({"SALDO_SMTP_HOST": "smtp.example.dk", "SALDO_SMTP_FROM": "a@b.dk", **env})


# --- Jobs -------------------------------------------------------------------------------------

def fake_runtime() -> Any:
    """What a job's loop uses of a ServiceRuntime: its name and database (only for exclusive jobs)."""
    return SimpleNamespace(name="invoicing", db=None)


async def test_a_job_runs_at_once_then_every_interval_and_a_failure_is_retried_next_time(
        caplog: pytest.LogCaptureFixture) -> None:
    runs: list[float] = []
    third = asyncio.Event()

    async def flaky(runtime: Any) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) == 1:
            raise RuntimeError("the database went away")
        if len(runs) == 3:
            third.set()

    stopping = asyncio.Event()
    job = Job("flaky", timedelta(milliseconds=50), flaky)
    with caplog.at_level(logging.ERROR, "saldo_platform.jobs"):
        task = asyncio.create_task(run_periodically(job, fake_runtime(), stopping))
        await asyncio.wait_for(third.wait(), 5)
        stopping.set()
        await asyncio.wait_for(task, 1)  # stops at once, not after another interval
    assert task.exception() is None  # the failure did not end the loop
    assert all(later - earlier >= 0.045 for earlier, later in zip(runs, runs[1:], strict=False))
    [failure] = [r for r in caplog.records if "job flaky failed" in r.getMessage()]
    assert failure.exc_info is not None and "the database went away" in str(failure.exc_info[1])


async def test_a_job_waiting_for_its_next_run_stops_at_once() -> None:
    ran = asyncio.Event()

    async def once(runtime: Any) -> None:
        ran.set()

    stopping = asyncio.Event()
    task = asyncio.create_task(run_periodically(Job("hourly", timedelta(hours=1), once),
                                                fake_runtime(), stopping))
    await asyncio.wait_for(ran.wait(), 5)
    stopping.set()
    await asyncio.wait_for(task, 1)


def test_a_job_needs_a_name_and_a_positive_interval() -> None:
    async def nothing(runtime: Any) -> None:
        pass

    with pytest.raises(ValueError):
        Job("", timedelta(seconds=1), nothing)
    with pytest.raises(ValueError):
        Job("x", timedelta(0), nothing)
