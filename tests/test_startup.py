"""Several processes of one service, started at the same instant on a fresh database, all start
(README: "Several processes per service are fine"; issue 5, part 4).

Each starter creates what is missing: the service's database, its tables (ours and those
`eventsourcing` creates as the Application is constructed), the API-key database and table, the
Kafka topics. Done by several processes at once, the DDL collided in PostgreSQL's catalog
(`UniqueViolation pg_type_typname_nsp_index`) and all but one starter exited.

Starters launched together meet in the catalog only by chance, so the first test makes them
meet: it holds an uncommitted CREATE TABLE of the very table `eventsourcing` creates first, waits
until all three starters are blocked, and rolls it back. Without a lock around that DDL all three
wake at once, one creates the table and the other two fail every time. The second test starts
everything from nothing, a few times, as an operator would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from saldo_platform.settings import Settings
from saldo_platform.sql import ensure_postgres_database
from tests.infrastructure import Servers
from tests.scenarios import business_entity_body, customer_body
from tests.support import Process, Saldo, create_key, distributed_env, free_port, wait_healthy

SERVICES = ["invoicing", "accounting-sync"]
STARTERS = 3
ROUNDS = 2


def start_together(service: str, env: dict[str, str], logs: Path) -> Saldo:
    """`STARTERS` processes of `service`, all launched before any is waited for."""
    saldo = Saldo({}, {}, env)
    for n in range(STARTERS):
        port, name = free_port(), f"{service}-{n}"
        saldo.processes[name] = Process(["serve", service, "--port", str(port)], env,
                                        logs / f"{name}.log").start()
        saldo.base_urls[name] = f"http://127.0.0.1:{port}/{service}"
    return saldo


async def all_healthy_and_serving(service: str, saldo: Saldo) -> None:
    for name, process in saldo.processes.items():
        # Raises with the process's log if it exited (as it did on the catalog collision).
        await wait_healthy(saldo.client, saldo.base_urls[name], process)
    saldo.keys["bu_a"] = await asyncio.to_thread(create_key, saldo.env, "bu_a")
    await each_process_serves(service, saldo)


async def each_process_serves(service: str, saldo: Saldo) -> None:
    """Every started process answers a real request from the one shared database."""
    if service == "invoicing":
        # Set up as an operator does before invoicing (rules M4, C1), through the first process.
        first = next(iter(saldo.base_urls.values()))
        for path, body in (("/v1/business-entity", business_entity_body()),
                           ("/v1/customers/cust-1", customer_body())):
            response = await saldo.client.put(first + path, json=body, headers=saldo.headers("bu_a"))
            assert response.status_code == 201, response.text
        numbers = []
        for name, url in saldo.base_urls.items():
            response = await saldo.client.post(url + "/v1/invoices", headers=saldo.headers(
                "bu_a", **{"Idempotency-Key": str(uuid.uuid4())}), json={
                "customer_id": "cust-1", "currency": "DKK", "due_date": "2026-12-31",
                "lines": [{"description": "Magazine, 12 months", "amount": 49900}]})
            assert response.status_code == 201, (name, response.text)
            numbers.append(response.json()["number"])
        assert numbers == [1, 2, 3]  # one gapless sequence (rule I1): one event store behind all
    else:
        for name, url in saldo.base_urls.items():
            response = await saldo.client.get(url + "/v1/trial-balance", headers=saldo.headers("bu_a"))
            assert response.status_code == 200, (name, response.text)
            assert response.json()["balanced"] is True


async def wait_until_blocked(url: str, database: str, count: int, saldo: Saldo,
                             timeout: float = 120) -> None:
    """Until `count` sessions on `database` wait for a lock (ours, or each other's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A connection of its own each time: pg_stat_activity stays as it was first read in a
        # transaction (and the blocker's connection is in one).
        conn = await asyncpg.connect(url)
        try:
            waiting = await conn.fetchval("SELECT count(*) FROM pg_stat_activity"
                                          " WHERE datname = $1 AND wait_event_type = 'Lock'", database)
        finally:
            await conn.close()
        if waiting >= count:
            return
        for name, process in saldo.processes.items():
            assert process.popen and process.popen.poll() is None, f"{name} exited:\n{process.output()}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} starters never blocked on {database}: the test no longer holds "
                         "them where they meet (did eventsourcing's table name change?)")


@pytest.mark.parametrize("service", SERVICES)
async def test_starters_that_meet_in_the_catalog_all_start(
        service: str, infra: Servers, tmp_path: Path) -> None:
    env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
    settings = Settings.from_env(env)
    url = settings.service_database(service)
    await ensure_postgres_database(url)  # empty: no table yet
    blocker = await asyncpg.connect(url)
    saldo = None
    try:
        catalog = blocker.transaction()
        await catalog.start()
        # `eventsourcing` names the table after the Application: "<name>_events".
        await blocker.execute(f'CREATE TABLE "{service}_events" (placeholder INTEGER)')
        saldo = start_together(service, env, tmp_path)
        await wait_until_blocked(url, settings.database_name(service), STARTERS, saldo)
        await catalog.rollback()  # all waiters wake together
        await all_healthy_and_serving(service, saldo)
    finally:
        await blocker.close()
        if saldo is not None:
            saldo.stop()
            await saldo.client.aclose()


@pytest.mark.parametrize("service", SERVICES)
async def test_starters_on_nothing_all_start(service: str, infra: Servers, tmp_path: Path) -> None:
    """Nothing exists yet: not the databases, not the API-key table, not the Kafka topics."""
    for round_ in range(ROUNDS):
        env = distributed_env(infra.database_url, infra.kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}")
        saldo = start_together(service, env, tmp_path / f"round-{round_}")
        try:
            await all_healthy_and_serving(service, saldo)
        finally:
            saldo.stop()
            await saldo.client.aclose()
