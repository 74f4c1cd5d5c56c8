"""What a service is made of, and how its parts are started in either mode.

Each service's `bootstrap.py` returns a `ServiceDefinition`; this module is the one place
where settings become databases, the event store, the bus, the relay, the consumers and the
background jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache, partial
from importlib.metadata import entry_points
from typing import Any

from fastapi import APIRouter, FastAPI

from saldo_platform import telemetry
from saldo_platform.bus import (
    Consumer,
    KafkaConsumer,
    KafkaProducer,
    LocalBus,
    Producer,
    ensure_topics,
)
from saldo_platform.consumer import ConsumerRunner, Handler, dead_letter_topic
from saldo_platform.eventstore import EventStoreApplication
from saldo_platform.http.app import create_api
from saldo_platform.http.auth import ApiKeys
from saldo_platform.http.idempotency import IdempotencyStore
from saldo_platform.jobs import Job, run_periodically
from saldo_platform.policy import Policy
from saldo_platform.projection import Projection
from saldo_platform.relay import Relay, ToIntegration
from saldo_platform.settings import SERVICES, Settings
from saldo_platform.sql import Database, open_database

log = logging.getLogger(__name__)

# How long close() lets background loops finish what they hold before cancelling them.
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Command:
    """A `saldo <name> …` command a service brings. `add_arguments` declares its arguments on
    its own parser; `run` gets the opened runtime (its application and read models, with their
    tables set up, and no relay, consumers or jobs running) and returns the exit status."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[ServiceRuntime, argparse.Namespace], Awaitable[int]]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    application: Callable[[str], EventStoreApplication]
    router: APIRouter
    to_integration: ToIntegration
    # (projection class, names of the services whose topics it reads)
    projections: Sequence[tuple[type[Projection], Sequence[str]]] = ()
    policies: Sequence[tuple[type[Policy], Sequence[str]]] = ()
    # Periodic work (jobs.py), run wherever the service's consumers run, e.g. the mail outbox.
    jobs: Sequence[Job] = ()
    # Commands an operator runs by hand: `saldo <name> …` (e.g. `saldo reminders run`).
    commands: Sequence[Command] = ()
    extra_state: dict[str, Any] = field(default_factory=dict)


@cache  # the installed services do not change while a process runs; host_app asks per service
def definitions() -> dict[str, ServiceDefinition]:
    """Every installed service, found through the `saldo.services` entry points (pyproject.toml):
    the platform imports no service; a service registers itself."""
    found = {}
    for entry in entry_points(group="saldo.services"):
        definition = entry.load()()
        found[definition.name] = definition
    missing = set(SERVICES) - set(found)
    if missing:
        raise RuntimeError(f"services not installed: {', '.join(sorted(missing))}; run `make install`")
    return {name: found[name] for name in SERVICES}


class ServiceRuntime:
    """One service's database, event store, API, relay, consumers and jobs."""

    def __init__(self, definition: ServiceDefinition, settings: Settings,
                 api_keys: ApiKeys, bus: LocalBus | None = None) -> None:
        self.definition = definition
        self.settings = settings
        self.api_keys = api_keys
        self.bus = bus
        self.name = definition.name
        self.db: Database = open_database(settings.service_database(self.name))
        self.application: EventStoreApplication | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._producer: Producer | None = None

    async def open(self) -> None:
        telemetry.setup(f"saldo-{self.name}")
        await self.db.connect()  # creates the service's PostgreSQL database if needed
        await IdempotencyStore(self.db).setup()
        # The Application creates its tables (CREATE TABLE IF NOT EXISTS) as it is constructed;
        # two processes doing that at once collide in PostgreSQL's catalog (pg_type_typname_nsp_index).
        async with self.db.schema_lock():
            self.application = await asyncio.to_thread(
                self.definition.application, self.settings.service_database(self.name)
            )

    def api(self) -> FastAPI:
        assert self.application is not None, "open() first"
        state = {"application": self.application, "db": self.db, "api_keys": self.api_keys,
                 "settings": self.settings, **self.definition.extra_state}
        return create_api(self.name, self.definition.router, state, self.db)

    def projections(self, suffix: str = "") -> list[Projection]:
        return [cls(self.db, [self.settings.topic(s) for s in sources], suffix)
                for cls, sources in self.definition.projections]

    def policies(self) -> list[Policy]:
        assert self.application is not None
        return [cls(self.application, [self.settings.topic(s) for s in sources])
                for cls, sources in self.definition.policies]

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the runtime is told to stop: a job's run returns as soon as it sees it."""
        return self._stopping

    async def setup_projections(self) -> None:
        """Create read-model tables, and the tables the jobs work on (a projection may write to
        the mail outbox), so queries work before the first event arrives."""
        for job in self.definition.jobs:
            if job.setup is not None:
                await job.setup(self)
        for projection in self.projections():
            await projection.setup()

    def producer(self) -> Producer:
        if self._producer is None:
            if self.bus is not None:
                self._producer = self.bus.producer()
            else:
                assert self.settings.kafka_bootstrap
                self._producer = KafkaProducer(self.settings.kafka_bootstrap, f"saldo-{self.name}")
        return self._producer

    def consumer(self, handler_name: str) -> Consumer:
        if self.bus is not None:
            return self.bus.consumer()
        assert self.settings.kafka_bootstrap
        group = f"{self.settings.topic_prefix}.{self.name}.{handler_name}"
        return KafkaConsumer(self.settings.kafka_bootstrap, group)

    async def start(self, relay: bool = True, consumers: bool = True, jobs: bool | None = None) -> None:
        """Run the relay, consumers and jobs in the background of the current event loop.

        Jobs run where the consumers run unless `jobs` says otherwise: `saldo serve` and
        `saldo consume` run them, `saldo relay` and `saldo serve --no-consumers` do not.
        """
        assert self.application is not None
        await self.setup_projections()
        if relay or consumers:
            await self._start_bus_parts(relay, consumers)
        if jobs if jobs is not None else consumers:
            for job in self.definition.jobs:
                self._spawn(partial(run_periodically, job, self))

    async def _start_bus_parts(self, relay: bool, consumers: bool) -> None:
        assert self.application is not None
        if self.bus is None and self.settings.kafka_bootstrap:
            topics = [self.settings.topic(s) for s in SERVICES]
            await ensure_topics(self.settings.kafka_bootstrap,
                                topics + [dead_letter_topic(t) for t in topics])
        producer = self.producer()
        await producer.start()
        if relay:
            self._spawn(Relay(self.name, self.application, self.db, producer,
                              self.settings.topic(self.name), self.definition.to_integration).run)
        if consumers:
            handlers: list[Handler] = [*self.projections(), *self.policies()]
            for handler in handlers:
                runner = ConsumerRunner(handler, self.consumer(handler.name), producer)
                self._spawn(runner.run)

    def _spawn(self, run: Callable[[asyncio.Event], Any]) -> None:
        async def guarded() -> None:
            # A crashed loop is restarted after a pause rather than leaving the service half-alive.
            while not self._stopping.is_set():
                try:
                    await run(self._stopping)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: background loop failed; restarting in 2 s", self.name)
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), 2.0)

        self._tasks.append(asyncio.create_task(guarded()))

    async def close(self) -> None:
        """Stop the relay, consumers and jobs (each loop notices `_stopping` within about a second
        and finishes the message or unit of work in hand), then close what they used. Safe after a
        failed open()."""
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            if pending:
                log.warning("%s: %d background loop(s) still busy after %.0f s; cancelling them",
                            self.name, len(pending), STOP_TIMEOUT_S)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=1.0)
        if self._producer is not None:
            await self._producer.stop()
        await self.db.close()
        if self.application is not None:
            self.application.close()
