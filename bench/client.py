"""A timing HTTP client over a running Saldo (tests.support.Saldo): commands, queries, waits."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from tests.support import Saldo

T = TypeVar("T")


class StepTimeout(Exception):
    pass


class Client:
    """Records every command's and query's latency per service (seconds)."""

    def __init__(self, saldo: Saldo, poll_s: float, timeout_s: float) -> None:
        self.saldo = saldo
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.commands: dict[str, list[float]] = defaultdict(list)
        self.queries: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)

    async def post(self, service: str, path: str, body: Any, record: bool = True) -> httpx.Response:
        started = time.perf_counter()
        response = await self.saldo.post(service, path, body)
        elapsed = time.perf_counter() - started
        if record:
            self.statuses[service][response.status_code] += 1
            if response.is_success:
                self.commands[service].append(elapsed)
        return response

    async def get(self, service: str, path: str) -> httpx.Response:
        started = time.perf_counter()
        response = await self.saldo.get(service, path)
        self.queries[service].append(time.perf_counter() - started)
        return response

    async def found(self, service: str, path: str) -> dict[str, Any] | None:
        """The resource once a read model has it (404 until then)."""
        response = await self.get(service, path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"GET {service}{path}: {response.status_code} {response.text}")
        return response.json()  # type: ignore[no-any-return]

    async def until(self, probe: Callable[[], Awaitable[T | None]], what: str,
                    poll_s: float | None = None) -> T:
        """Poll `probe` until it returns something truthy."""
        deadline = time.perf_counter() + self.timeout_s
        while True:
            found = await probe()
            if found:
                return found
            if time.perf_counter() > deadline:
                raise StepTimeout(f"no {what} after {self.timeout_s:.0f} s")
            await asyncio.sleep(self.poll_s if poll_s is None else poll_s)

    async def count_pages(self, service: str, path: str,
                          keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> int:
        """Items of a paged list (all pages, 500 at a time) for which `keep` holds."""
        count, cursor = 0, None
        while True:
            separator = "&" if "?" in path else "?"
            after = f"&after={cursor}" if cursor else ""
            page = (await self.get(service, f"{path}{separator}limit=500{after}")).json()
            count += sum(1 for item in page["items"] if keep(item))
            cursor = page.get("next_cursor")
            if not cursor:
                return count
