"""Settings from `SALDO_*` environment variables: the mode is chosen here, never by code edits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path

SERVICES = ("invoicing", "payments", "refunds", "payouts", "accounting-sync")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class SmtpSettings:
    """Where the mail outbox (mail.py) sends: one SMTP server, the same for every business unit."""

    host: str
    port: int
    # The From header, e.g. "Saldo Billing <billing@example.com>"; its address is the envelope
    # sender and its domain the right-hand side of every Message-ID.
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    def __repr__(self) -> str:  # never the password, not even in a traceback's locals
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
                f"user={self.user!r}, starttls={self.starttls})")


@dataclass(frozen=True)
class Settings:
    # "embedded": SQLite files + in-process bus; "distributed": PostgreSQL + Kafka.
    mode: str
    var_dir: Path
    # A server URL (…/postgres); each service gets its own database `saldo_<service>` on it.
    database_url: str | None
    # Optional prefix so several test runs can share one server without colliding.
    database_prefix: str
    kafka_bootstrap: str | None
    topic_prefix: str
    auth_database: str
    # SALDO_LOG_LEVEL: the least severe log record written (logs.py), for every logger.
    log_level: str = "INFO"
    # SALDO_IDEMPOTENCY_TAKEOVER_SECONDS: a POST's claim on its Idempotency-Key still "running"
    # after this long is taken over by a retry (its process is presumed dead; http/idempotency.py).
    idempotency_takeover_seconds: float = 10.0
    # SALDO_SMTP_*: the mail outbox's server; None (no SALDO_SMTP_HOST) keeps mails queued.
    smtp: SmtpSettings | None = None
    # SALDO_PAYMENT_LINK: where a customer pays an invoice online, with "{payment_reference}" for
    # the invoice's FIK reference, e.g. https://pay.example.dk/?ref={payment_reference}; none: no link.
    payment_link: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        mode = e.get("SALDO_MODE", "embedded")
        if mode not in ("embedded", "distributed"):
            raise ValueError(f"SALDO_MODE must be 'embedded' or 'distributed', not {mode!r}")
        var_dir = Path(e.get("SALDO_VAR_DIR", "var")).resolve()
        database_url = e.get("SALDO_DATABASE_URL")
        kafka = e.get("SALDO_KAFKA_BOOTSTRAP")
        if mode == "distributed" and not (database_url and kafka):
            raise ValueError("distributed mode needs SALDO_DATABASE_URL and SALDO_KAFKA_BOOTSTRAP")
        prefix = e.get("SALDO_DATABASE_PREFIX", "saldo")
        log_level = e.get("SALDO_LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ValueError(f"SALDO_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
        takeover = e.get("SALDO_IDEMPOTENCY_TAKEOVER_SECONDS", "10")
        try:
            takeover_seconds = float(takeover)
        except ValueError:
            takeover_seconds = -1.0
        if not 0 < takeover_seconds <= 3600:
            raise ValueError("SALDO_IDEMPOTENCY_TAKEOVER_SECONDS must be a number of seconds above 0 "
                             f"and at most 3600, not {takeover!r}")
        auth_default = (
            database_name_url(database_url, f"{prefix}_auth")
            if mode == "distributed" and database_url
            else f"sqlite:{var_dir / 'auth.sqlite'}"
        )
        return cls(
            mode=mode,
            var_dir=var_dir,
            database_url=database_url,
            database_prefix=prefix,
            kafka_bootstrap=kafka,
            topic_prefix=e.get("SALDO_TOPIC_PREFIX", "saldo"),
            auth_database=e.get("SALDO_AUTH_DATABASE", auth_default),
            log_level=log_level,
            idempotency_takeover_seconds=takeover_seconds,
            smtp=smtp_from_env(e),
            payment_link=_payment_link(e.get("SALDO_PAYMENT_LINK") or None),
        )

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}.{service}.v1"

    def service_database(self, service: str) -> str:
        """Where a service keeps its events, read models, offsets and idempotency keys."""
        if self.mode == "embedded":
            return f"sqlite:{self.var_dir / (service + '.sqlite')}"
        assert self.database_url
        return database_name_url(self.database_url, self.database_name(service))

    def database_name(self, service: str) -> str:
        return f"{self.database_prefix}_{service.replace('-', '_')}"


def smtp_from_env(e: dict[str, str]) -> SmtpSettings | None:
    """SALDO_SMTP_HOST, _PORT (25), _FROM, _USER, _PASSWORD, _STARTTLS (false); None without a host."""
    host = e.get("SALDO_SMTP_HOST", "").strip()
    if not host:
        return None
    port_text = e.get("SALDO_SMTP_PORT", "25")
    if not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"SALDO_SMTP_PORT must be a TCP port (1-65535), not {port_text!r}")
    sender = e.get("SALDO_SMTP_FROM", "").strip()
    if not sender:
        raise ValueError("SALDO_SMTP_HOST needs SALDO_SMTP_FROM, the address mails are sent from")
    if address_domain(parseaddr(sender)[1]) is None:
        raise ValueError(f"SALDO_SMTP_FROM must be an e-mail address such as "
                         f"'Billing <billing@example.com>', not {sender!r}")
    starttls_text = e.get("SALDO_SMTP_STARTTLS", "false").strip().lower()
    if starttls_text not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"SALDO_SMTP_STARTTLS must be true or false, not {starttls_text!r}")
    starttls = starttls_text in ("true", "1", "yes")
    user, password = e.get("SALDO_SMTP_USER") or None, e.get("SALDO_SMTP_PASSWORD") or None
    if (user is None) != (password is None):
        raise ValueError("SALDO_SMTP_USER and SALDO_SMTP_PASSWORD go together: set both or neither")
    if user is not None and not starttls:
        raise ValueError("SALDO_SMTP_USER needs SALDO_SMTP_STARTTLS=true: the password would "
                         "cross the network in clear text")
    return SmtpSettings(host=host, port=int(port_text), sender=sender, user=user,
                        password=password, starttls=starttls)


def address_domain(addr_spec: str) -> str | None:
    """The domain of an address such as `billing@example.com`; None if it is not one."""
    try:
        address = Address(addr_spec=addr_spec)
    except (ValueError, IndexError, HeaderParseError):
        return None
    return address.domain if address.username and "." in address.domain else None


def database_name_url(server_url: str, name: str) -> str:
    """The same server URL with another database name."""
    head, _, _ = server_url.rpartition("/")
    return f"{head}/{name}"


def _payment_link(template: str | None) -> str | None:
    if template is not None and (not template.startswith(("https://", "http://"))
                                 or "{payment_reference}" not in template):
        raise ValueError(f"SALDO_PAYMENT_LINK must be an http(s) URL with {{payment_reference}} in it, "
                         f"not {template!r}")
    return template
