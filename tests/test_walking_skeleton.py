"""The walking skeleton through all five services, over HTTP and the bus (issue 2).

Rules on the path: I3 (credit note releases), P3 (refundable), B1/B2 (draft, ready list),
B4 (mark paid out), A1 (balanced postings, zero trial balance). On the happy path nothing is
dead-lettered.
"""

from __future__ import annotations

import os

import httpx

from saldo_platform.settings import SERVICES
from tests.scenarios import walking_skeleton
from tests.support import Saldo, dead_letters, settled


def _origin(saldo: Saldo, service: str) -> str:
    return saldo.base_urls[service].removesuffix(f"/{service}")


async def _answers(saldo: Saldo, url: str) -> int | None:
    try:
        return (await saldo.client.get(url, timeout=5)).status_code
    except httpx.TransportError:
        return None


async def test_walking_skeleton_distributed_five_processes(distributed: Saldo) -> None:
    """Five separate OS processes, each alive and serving its own service only, talking through
    Kafka only: stopping one takes exactly that service away and leaves the other four up."""
    saldo = distributed
    assert set(saldo.processes) == set(SERVICES)
    pids = {}
    for service, process in saldo.processes.items():
        assert process.popen is not None and process.popen.poll() is None, f"{service} is not running"
        assert os.path.exists(f"/proc/{process.popen.pid}"), service
        pids[service] = process.popen.pid
    assert len(set(pids.values())) == len(SERVICES), pids
    assert len({_origin(saldo, s) for s in SERVICES}) == len(SERVICES)  # one port each
    for service in SERVICES:
        origin = _origin(saldo, service)
        index = (await saldo.client.get(origin + "/")).json()
        assert list(index["services"]) == [service], (service, index)
        for other in SERVICES:
            expected = 200 if other == service else 404
            assert await _answers(saldo, f"{origin}/{other}/health") == expected, (service, other)

    await walking_skeleton(saldo)
    await settled(saldo)
    assert await dead_letters(saldo) == []

    for n, service in enumerate(SERVICES):
        saldo.processes[service].stop()
        assert await _answers(saldo, saldo.base_urls[service] + "/health") is None, service
        for still_up in SERVICES[n + 1:]:
            assert await _answers(saldo, saldo.base_urls[still_up] + "/health") == 200, (service, still_up)


async def test_walking_skeleton_embedded(embedded: Saldo) -> None:
    await walking_skeleton(embedded)
    await settled(embedded)
    assert await dead_letters(embedded) == []
