"""Periodic background jobs of a service: the mail outbox's sender, reminders, and the like.

A `ServiceDefinition` lists its `Job`s; every `ServiceRuntime` that runs consumers runs them
too (in both modes), in the background of its event loop, beside the relay and the consumers:

- a job runs once at start, then again `interval` after each run ended (a slow run never piles
  up behind itself);
- a run that raises is logged and counted (`saldo.jobs.failed`), and the job runs again at the
  next interval: one failure never stops the job, nor the process;
- on shutdown (SIGTERM) the runtime sets `runtime.stopping`: the wait between runs ends at
  once, and a run in progress should look at `runtime.stopping` between units of work and
  return. A run still busy after `service.STOP_TIMEOUT_S` (10 s) is cancelled.

Every replica of a service runs its jobs. A job that must not run on two replicas at the same
time says `exclusive=True`: each run first takes a PostgreSQL advisory lock named after the
service and the job, without waiting; a replica that does not get it skips that run. (In
embedded mode there is one process, and no lock.) A job safe to run everywhere at once, such as
the mail sender (rows are claimed with SKIP LOCKED), leaves it False and spreads its work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from saldo_platform import telemetry
from saldo_platform.sql import PostgresDatabase

if TYPE_CHECKING:
    from saldo_platform.service import ServiceRuntime

log = logging.getLogger(__name__)

job_failures = telemetry.meter.create_counter(
    "saldo.jobs.failed", description="Runs of background jobs that raised (retried at the next interval)")


@dataclass(frozen=True)
class Job:
    # Short and stable: it names the job in logs, metrics and its lock, e.g. "mail-outbox".
    name: str
    interval: timedelta
    # One run. It gets the runtime (its db, settings, application, stopping) and returns when
    # the work due now is done, or as soon as `runtime.stopping` is set.
    run: Callable[[ServiceRuntime], Awaitable[None]]
    # At most one replica of the service runs it at a time (distributed mode).
    exclusive: bool = False
    # Called once when the service starts, before any consumer or job runs: creates the tables
    # the job works on, so a projection may write to them from its first event.
    setup: Callable[[ServiceRuntime], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a job needs a name")
        if self.interval <= timedelta(0):
            raise ValueError(f"job {self.name}: the interval must be positive, not {self.interval}")


async def run_periodically(job: Job, runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """Run `job` now and then every `interval` until `stopping` is set."""
    while not stopping.is_set():
        await run_once(job, runtime)
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), job.interval.total_seconds())


async def run_once(job: Job, runtime: ServiceRuntime) -> bool:
    """One run of `job`; False if it raised (logged) or another replica holds an exclusive job."""
    try:
        if job.exclusive and isinstance(runtime.db, PostgresDatabase):
            # A transaction-level lock: released by the commit, by the rollback if the run
            # raises or is cancelled, and with the connection if the process dies.
            async with runtime.db.transaction() as tx:
                if not await tx.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))",
                                         f"job:{runtime.name}:{job.name}"):
                    log.debug("%s: job %s runs on another replica; skipped", runtime.name, job.name)
                    return False
                await job.run(runtime)
        else:
            await job.run(runtime)
        return True
    except asyncio.CancelledError:
        raise
    except Exception:
        job_failures.add(1, {"service": runtime.name, "job": job.name})
        log.exception("%s: job %s failed; it runs again in %s", runtime.name, job.name, job.interval)
        return False
