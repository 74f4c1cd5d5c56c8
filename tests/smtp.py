"""A real SMTP server for the e-mail tests: aiosmtpd on 127.0.0.1, keeping what it accepted."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass
class Mailbox:
    """aiosmtpd's handler: keeps what it accepted; refuses what a test tells it to."""

    received: list[EmailMessage] = field(default_factory=list)
    recipients_tried: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> the reply to its RCPT
    data_refusals: list[str] = field(default_factory=list)  # replies to the next DATA commands
    seconds_per_message: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.recipients_tried.append(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_refusals:
            return self.data_refusals.pop(0)
        if self.seconds_per_message:
            await asyncio.sleep(self.seconds_per_message)  # a slow server, for the stop tests
        message = email.message_from_bytes(envelope.content, _class=EmailMessage,
                                           policy=email.policy.default)
        with self.lock:
            self.received.append(message)
        return "250 2.0.0 Ok: queued"

    def subjects(self) -> list[str]:
        with self.lock:
            return sorted(str(m["Subject"]) for m in self.received)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    async def has(self, count: int) -> bool:
        return self.count() >= count


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def env(self) -> dict[str, str]:
        return {"SALDO_SMTP_HOST": "127.0.0.1", "SALDO_SMTP_PORT": str(self.port),
                "SALDO_SMTP_FROM": "Købmand Ærø <faktura@koebmand.example>"}


