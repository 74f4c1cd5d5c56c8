"""Running Saldo the way operators do (OS processes, HTTP), and waiting for it to settle."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from saldo_platform.bus import Message, partitions_of
from saldo_platform.http.auth import ApiKeys
from saldo_platform.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parents[1]
SALDO = [sys.executable, "-m", "saldo_platform.cli"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """One `saldo …` OS process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log_path = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (open as long as the process runs)
        self.popen = subprocess.Popen(SALDO + self.args, env=self.env, stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        if hasattr(self, "_log"):
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0,
                     what: str = "condition") -> T:
    """Poll until `probe` returns something truthy (eventual consistency across services)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = await probe()
        except (httpx.TransportError, AssertionError) as e:
            last = e
        else:
            if result:
                return result
            last = result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@dataclass
class Saldo:
    """A running Saldo (embedded or distributed) as an HTTP client sees it."""

    base_urls: dict[str, str]
    keys: dict[str, str]  # business unit -> admin key
    env: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    def headers(self, business_unit: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[business_unit]}", **extra}

    async def post(self, service: str, path: str, body: Any, business_unit: str = "bu_a",
                   key: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        h = self.headers(business_unit, **{"Idempotency-Key": key or str(uuid.uuid4())})
        return await self.client.post(self.base_urls[service] + path, json=body,
                                      headers={**h, **(headers or {})})

    async def get(self, service: str, path: str, business_unit: str = "bu_a") -> httpx.Response:
        return await self.client.get(self.base_urls[service] + path, headers=self.headers(business_unit))

    async def found(self, service: str, path: str, business_unit: str = "bu_a") -> dict[str, Any] | None:
        """The resource once a read model has it (404 until then)."""
        response = await self.get(service, path, business_unit)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    async def restart(self, service: str, extra_env: dict[str, str] | None = None) -> None:
        """Start one service's process again (after it crashed or was killed), same port."""
        old = self.processes[service]
        old.stop()
        port = int(self.base_urls[service].rsplit(":", 1)[1].split("/")[0])
        process = Process(["serve", service, "--port", str(port)], {**self.env, **(extra_env or {})},
                          old.log_path).start()
        self.processes[service] = process
        await wait_healthy(self.client, self.base_urls[service], process)


def create_key(env: dict[str, str], business_unit: str, roles: str = "admin") -> str:
    done = subprocess.run(SALDO + ["keys", "create", "--business-unit", business_unit,
                                   "--roles", roles], env=env, capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return done.stdout.strip().splitlines()[-1]


async def wait_healthy(client: httpx.AsyncClient, url: str, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen and process.popen.poll() is not None:
            raise RuntimeError(f"process exited:\n{process.output()[-4000:]}")
        try:
            if (await client.get(url + "/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not healthy in {timeout}s:\n{process.output()[-4000:]}")


def distributed_env(database_url: str, kafka: str, tag: str,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
    """Settings of one isolated Saldo: its own databases and topics on the shared servers."""
    return {**os.environ, "SALDO_MODE": "distributed", "SALDO_DATABASE_URL": database_url,
            "SALDO_KAFKA_BOOTSTRAP": kafka, "SALDO_DATABASE_PREFIX": tag, "SALDO_TOPIC_PREFIX": tag,
            "SALDO_LOG_LEVEL": "INFO", **(extra or {})}


async def start_distributed(env: dict[str, str], logs: Path, services: tuple[str, ...] = SERVICES,
                            args: tuple[str, ...] = (),
                            service_env: dict[str, dict[str, str]] | None = None) -> Saldo:
    """Each service as its own OS process (API, relay and consumers), like a deployment."""
    saldo = Saldo({}, {}, env)
    for service in services:
        port = free_port()
        own_env = {**env, **(service_env or {}).get(service, {})}
        process = Process(["serve", service, "--port", str(port), *args], own_env,
                          logs / f"{service}.log")
        saldo.processes[service] = process.start()
        saldo.base_urls[service] = f"http://127.0.0.1:{port}/{service}"
    try:
        for service in services:
            await wait_healthy(saldo.client, saldo.base_urls[service], saldo.processes[service])
        for unit in ("bu_a", "bu_b"):
            saldo.keys[unit] = create_key(env, unit)
    except BaseException:
        saldo.stop()  # no orphans when one of them fails to start
        raise
    return saldo


async def start_embedded(var_dir: Path, extra_env: dict[str, str] | None = None) -> Saldo:
    port = free_port()
    env = {**os.environ, "SALDO_MODE": "embedded", "SALDO_VAR_DIR": str(var_dir), **(extra_env or {})}
    env.pop("SALDO_DATABASE_URL", None)
    env.pop("SALDO_KAFKA_BOOTSTRAP", None)
    process = Process(["embedded", "--port", str(port)], env, var_dir / "embedded.log").start()
    saldo = Saldo({s: f"http://127.0.0.1:{port}/{s}" for s in SERVICES}, {}, env, {"embedded": process})
    try:
        await wait_healthy(saldo.client, saldo.base_urls["invoicing"], process)
        for unit in ("bu_a", "bu_b"):
            saldo.keys[unit] = create_key(env, unit)
    except BaseException:
        saldo.stop()
        raise
    return saldo


# --- Settled: every relay and every consumer has caught up ------------------------------------
#
# "Nothing more happened" can only be asserted once nothing more *can* happen: every relay has
# published every event its service stored, and every consumer's stored position — the
# `consumer_offsets` row of a projection, the `eventsourcing` tracking record of a policy — is
# the end offset of each partition it reads. Both are read where the product keeps them, not
# guessed from a sleep.

Position = tuple[str, str, int]  # (consumer or "relay", topic or service, partition)


@dataclass(frozen=True)
class _Parts:
    """What the running processes do: whose relays run, whose consumers run, in which mode."""

    settings: Settings
    relays: frozenset[str]
    consumers: frozenset[str]


def _parts(processes: Iterable[Process]) -> _Parts:
    relays: set[str] = set()
    consumers: set[str] = set()
    settings: Settings | None = None
    for process in processes:
        command, rest = process.args[0], process.args[1:]
        if command == "embedded":
            settings = Settings.from_env({**process.env, "SALDO_MODE": "embedded"})
            relays.update(SERVICES)
            consumers.update(SERVICES)
            continue
        settings = settings or Settings.from_env(process.env)
        service = rest[0]
        if command in ("serve", "relay") and "--no-relay" not in rest:
            relays.add(service)
        if command in ("serve", "consume") and "--no-consumers" not in rest:
            consumers.add(service)
    assert settings is not None, "no processes to wait for"
    return _Parts(settings, frozenset(relays), frozenset(consumers))


def _handlers(service: str, settings: Settings) -> list[tuple[str, str, list[str]]]:
    """(kind, name, topics) of every consumer a service runs: its projections and policies."""
    from saldo_platform.service import definitions

    definition = definitions()[service]
    return ([("projection", cls.name, [settings.topic(s) for s in sources])
             for cls, sources in definition.projections]
            + [("policy", cls.name, [settings.topic(s) for s in sources])
               for cls, sources in definition.policies])


def _store_name(service: str) -> str:
    """The `eventsourcing` table prefix of a service's Application (`<name>_events`, `_tracking`)."""
    from saldo_platform.service import definitions

    return str(definitions()[service].application.name).lower()


class _Snapshot:
    """One reading of every relay's and every consumer's position beside what there is to do."""

    def __init__(self) -> None:
        self.behind: list[str] = []
        self.values: list[tuple[Any, ...]] = []

    def compare(self, what: str, done: int, there: int) -> None:
        self.values.append((what, done, there))
        if done != there:
            self.behind.append(f"{what}: {done} of {there}")


class _Distributed:
    def __init__(self, parts: _Parts) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.conns: dict[str, asyncpg.Connection] = {}
        self.kafka: AIOKafkaConsumer | None = None
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def open(self) -> None:
        assert self.settings.kafka_bootstrap
        self.kafka = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                      enable_auto_commit=False)
        await self.kafka.start()

    async def close(self) -> None:
        for conn in self.conns.values():
            await conn.close()
        if self.kafka is not None:
            await self.kafka.stop()

    async def _conn(self, service: str) -> asyncpg.Connection | None:
        if service not in self.conns:
            try:
                self.conns[service] = await asyncpg.connect(self.settings.service_database(service))
            except asyncpg.InvalidCatalogNameError:
                return None  # the service has not created its database yet
        return self.conns[service]

    async def _rows(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self._conn(service)
        if conn is None:
            return []
        try:
            return list(await conn.fetch(sql, *args))
        except asyncpg.UndefinedTableError:
            return []  # not created yet: nothing stored

    async def ends(self, topics: list[str]) -> dict[tuple[str, int], int]:
        assert self.kafka is not None and self.settings.kafka_bootstrap
        missing = [t for t in topics if not self.partitions.get(t)]
        if missing:
            for tp in await partitions_of(self.settings.kafka_bootstrap, missing):
                self.partitions.setdefault(tp.topic, []).append(tp)
        tps = [tp for t in topics for tp in self.partitions.get(t, [])]
        offsets = await self.kafka.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): int(offset) for tp, offset in offsets.items()}

    async def snapshot(self) -> _Snapshot:
        snap = _Snapshot()
        for service in sorted(self.parts.relays):
            stored = await self._rows(
                service, f'SELECT max(notification_id) AS n FROM "{_store_name(service)}_events"')
            published = await self._rows(
                service, "SELECT position FROM relay_positions WHERE relay = $1", service)
            snap.compare(f"relay {service}", int(published[0]["position"]) if published else 0,
                         int(stored[0]["n"] or 0) if stored else 0)
        for service in sorted(self.parts.consumers):
            handlers = _handlers(service, self.settings)
            ends = await self.ends(sorted({t for _, _, topics in handlers for t in topics}))
            offsets = {(r["consumer"], r["topic"], r["partition"]): int(r["next_offset"])
                       for r in await self._rows(service, "SELECT * FROM consumer_offsets")}
            tracking = {r["application_name"]: int(r["notification_id"]) for r in await self._rows(
                service, f'SELECT application_name, max(notification_id) AS notification_id'
                         f' FROM "{_store_name(service)}_tracking" GROUP BY application_name')}
            for kind, name, topics in handlers:
                for (topic, partition), end in sorted(ends.items()):
                    if topic not in topics:
                        continue
                    done = (offsets.get((name, topic, partition), 0) if kind == "projection"
                            else tracking.get(f"{name}:{topic}:{partition}", 0))
                    snap.compare(f"{name} {topic}/{partition}", done, end)
        return snap


class _Embedded:
    """The embedded product's files: read-only SQLite readers beside the running process."""

    def __init__(self, parts: _Parts) -> None:
        self.parts = parts
        self.var = parts.settings.var_dir

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _rows(self, file: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        path = self.var / file
        if not path.exists():
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
            try:
                return list(conn.execute(sql, args).fetchall())
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return []
                raise

    async def snapshot(self) -> _Snapshot:
        return await asyncio.to_thread(self._snapshot)

    def _snapshot(self) -> _Snapshot:
        snap = _Snapshot()
        ends = {topic: int(end) for topic, end in self._rows(
            "bus.sqlite", 'SELECT topic, max("offset") + 1 FROM bus_messages GROUP BY topic')}
        for service in sorted(self.parts.relays):
            stored = self._rows(f"{service}.events.sqlite", "SELECT max(rowid) FROM stored_events")
            published = self._rows(f"{service}.sqlite",
                                   "SELECT position FROM relay_positions WHERE relay = ?", service)
            snap.compare(f"relay {service}", int(published[0][0]) if published else 0,
                         int(stored[0][0] or 0) if stored else 0)
        for service in sorted(self.parts.consumers):
            offsets = {(c, t): int(n) for c, t, n in self._rows(
                f"{service}.sqlite", "SELECT consumer, topic, next_offset FROM consumer_offsets")}
            tracking = {name: int(n) for name, n in self._rows(
                f"{service}.events.sqlite",
                "SELECT application_name, max(notification_id) FROM tracking GROUP BY application_name")}
            for kind, name, topics in _handlers(service, self.parts.settings):
                for topic in topics:
                    done = (offsets.get((name, topic), 0) if kind == "projection"
                            else tracking.get(f"{name}:{topic}:0", 0))
                    snap.compare(f"{name} {topic}/0", done, ends.get(topic, 0))
        return snap


async def settled(running: Saldo | Iterable[Process], timeout: float = 60.0) -> None:
    """Wait until nothing more can happen: every running relay has published every stored event
    and every running consumer has stored, with its effects, the end offset of every partition
    it reads — twice in a row, unchanged. Then "it did not happen" is a fact, not a bet on time.

    `running` is a Saldo (its processes) or the `saldo serve|relay|consume|embedded` processes
    a test started itself; only what they run is waited for.
    """
    processes = list(running.processes.values()) if isinstance(running, Saldo) else list(running)
    parts = _parts(processes)
    probe: _Distributed | _Embedded = (_Embedded(parts) if parts.settings.mode == "embedded"
                                       else _Distributed(parts))
    await probe.open()
    try:
        deadline = time.monotonic() + timeout
        previous: list[tuple[Any, ...]] | None = None
        while True:
            for process in processes:
                if process.popen is not None and process.popen.poll() is not None:
                    raise AssertionError(f"{' '.join(process.args[:2])} exited while waiting to "
                                         f"settle:\n{process.output()[-3000:]}")
            snap = await probe.snapshot()
            if not snap.behind and snap.values == previous:
                return
            previous = None if snap.behind else snap.values
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled in {timeout} s; behind: {snap.behind}")
            await asyncio.sleep(0.1)
    finally:
        await probe.close()


def dead_letter_topics(settings: Settings) -> list[str]:
    return [f"{settings.topic(s)}.dlq" for s in SERVICES]


async def dead_letters(saldo: Saldo) -> list[Message]:
    """Everything any consumer dead-lettered so far, on every service's `<topic>.dlq`."""
    from saldo_platform.bus import LocalBus
    from saldo_platform.rebuild import kafka_messages

    process = next(iter(saldo.processes.values()))
    if process.args[0] == "embedded":
        settings = Settings.from_env({**saldo.env, "SALDO_MODE": "embedded"})
        bus = LocalBus(str(settings.var_dir / "bus.sqlite"))
        await bus.start()
        try:
            return [m for t in dead_letter_topics(settings) for m in await bus.read(t, 0, 100_000)]
        finally:
            await bus.stop()
    settings = Settings.from_env(saldo.env)
    assert settings.kafka_bootstrap
    return [m async for m, _ in kafka_messages(settings.kafka_bootstrap, dead_letter_topics(settings))]


@asynccontextmanager
async def distributed_with_keys(database_url: str, kafka: str, logs: Path,
                                services: tuple[str, ...] = SERVICES) -> AsyncIterator[tuple[Saldo, ApiKeys]]:
    """A distributed Saldo on fresh databases and topics, with its key store opened in this process
    (the CLI's own code), so a test makes keys for new business units without a process start."""
    from saldo_platform.cli import open_api_keys

    env = distributed_env(database_url, kafka, f"t{uuid.uuid4().hex[:10]}")
    running = await start_distributed(env, logs, services)
    keys = await open_api_keys(Settings.from_env(env))
    try:
        yield running, keys
    finally:
        running.stop()
        await running.client.aclose()
        await keys.close()
