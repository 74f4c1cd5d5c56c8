"""Settings from `SALDO_*` environment variables: the mode is chosen here, never by code edits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("invoicing", "payments", "refunds", "payouts", "accounting-sync")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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


def database_name_url(server_url: str, name: str) -> str:
    """The same server URL with another database name."""
    head, _, _ = server_url.rpartition("/")
    return f"{head}/{name}"
