"""Fixtures: real PostgreSQL and Kafka for the session; a fresh, isolated Saldo per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.infrastructure import Servers, servers
from tests.support import Saldo, distributed_env, start_distributed, start_embedded


@pytest.fixture(scope="session")
def infra() -> Iterator[Servers]:
    with servers() as found:
        yield found


@pytest.fixture
def tag() -> str:
    """A name for this test's own databases and topics on the shared servers."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(infra: Servers, tag: str, tmp_path: Path) -> dict[str, str]:
    return distributed_env(infra.database_url, infra.kafka_bootstrap, tag,
                           {"SALDO_TRACE_FILE": str(tmp_path / "spans.jsonl")})


@pytest.fixture
async def distributed(env: dict[str, str], tmp_path: Path) -> AsyncIterator[Saldo]:
    saldo = await start_distributed(env, tmp_path)
    try:
        yield saldo
    finally:
        saldo.stop()
        await saldo.client.aclose()


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Saldo]:
    saldo = await start_embedded(tmp_path / "var", {"SALDO_TRACE_FILE": str(tmp_path / "spans.jsonl")})
    try:
        yield saldo
    finally:
        saldo.stop()
        await saldo.client.aclose()
