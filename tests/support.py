"""Running Saldo the way operators do (OS processes, HTTP), and waiting for it to settle."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from saldo_platform.settings import SERVICES

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
