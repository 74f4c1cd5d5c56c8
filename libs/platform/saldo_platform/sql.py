"""The read-model store: one small async SQL interface over PostgreSQL (asyncpg) and SQLite.

SQL is written once in PostgreSQL style with `$1` parameters; for SQLite they become `?1`.
Keep statements portable: TEXT/BIGINT/BOOLEAN columns, ISO timestamps as TEXT, no casts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import asyncpg

Row = dict[str, Any]

# Held while start-up DDL runs, so concurrent starters never collide in PostgreSQL's catalog.
SCHEMA_LOCK = "saldo-schema"


class Executor(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Executor, Protocol):
    url: str

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    def transaction(self) -> Any: ...  # async context manager yielding an Executor
    async def create_schema(self, ddl: str) -> None:
        """Run `CREATE … IF NOT EXISTS` statements safely while other processes do the same."""
        ...

    def schema_lock(self) -> AbstractAsyncContextManager[None]:
        """Keep other processes' `create_schema` waiting while DDL runs on other connections."""
        ...


def open_database(url: str) -> Database:
    if url.startswith("sqlite:"):
        return SQLiteDatabase(url)
    return PostgresDatabase(url)


class PostgresDatabase:
    def __init__(self, url: str, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        await ensure_postgres_database(self.url)
        self._pool = await asyncpg.create_pool(
            self.url, min_size=self._sizes[0], max_size=self._sizes[1]
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "database not connected"
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield _PgExecutor(conn)

    async def execute(self, sql: str, *args: Any) -> None:
        await self.pool.execute(sql, *args)

    async def create_schema(self, ddl: str) -> None:
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog.
        async with self.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", SCHEMA_LOCK)
            await tx.execute(ddl)

    @asynccontextmanager
    async def schema_lock(self) -> AsyncIterator[None]:
        # Session-level, on a connection of its own: the DDL it guards (eventsourcing's) runs on
        # other connections, and the lock goes with the connection if this process dies.
        release = await self.hold_lock(SCHEMA_LOCK)
        try:
            yield
        finally:
            await release()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self.pool.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self.pool.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchval(sql, *args)

    async def listen(self, channel: str, callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        """Call `callback` on every NOTIFY on `channel`; returns a function that stops listening."""
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        await conn.add_listener(channel, lambda *_: callback())

        async def stop() -> None:
            await conn.close()

        return stop

    async def hold_lock(self, name: str) -> Callable[[], Awaitable[None]]:
        """Wait for a session-level advisory lock; it is released when the holder dies, too."""
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)
        return _closing(conn)

    async def hold_lock_unless(self, name: str,
                               stopping: asyncio.Event) -> Callable[[], Awaitable[None]] | None:
        """`hold_lock`, but None once `stopping` is set: a process told to stop must not sit in
        a lock wait that another process may hold for hours. Asked for again every half second,
        because a wait in the server cannot be given up cleanly from here."""
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):
                with suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 0.5)
                if stopping.is_set():
                    await conn.close()
                    return None
        except BaseException:
            conn.terminate()
            raise
        return _closing(conn)


def _closing(conn: asyncpg.Connection) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        await conn.close()

    return close


class _PgExecutor:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self._conn.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)


_PARAM = re.compile(r"\$(\d+)")


def _sqlite(sql: str) -> str:
    return _PARAM.sub(r"?\1", sql)


class SQLiteDatabase:
    """One connection, one writer at a time: what SQLite is good at, for the embedded mode."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite:")
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA busy_timeout=10000")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        assert self._conn is not None, "database not connected"
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteExecutor(self.conn)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def execute(self, sql: str, *args: Any) -> None:
        async with self._lock:
            await _SQLiteExecutor(self.conn).execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await _SQLiteExecutor(self.conn).fetch(sql, *args)

    async def create_schema(self, ddl: str) -> None:
        await self.execute(ddl)

    def schema_lock(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()  # one process per SQLite file: no one to collide with

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._lock:
            return await _SQLiteExecutor(self.conn).fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._lock:
            return await _SQLiteExecutor(self.conn).fetchval(sql, *args)


class _SQLiteExecutor:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        for statement in _statements(sql):
            await self._conn.execute(_sqlite(statement), args if "$" in statement else ())

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn.execute(_sqlite(sql), args) as cursor:
            return [dict(r) for r in await cursor.fetchall()]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return next(iter(row.values())) if row else None


def _statements(sql: str) -> list[str]:
    # asyncpg runs several statements in one execute() without parameters; aiosqlite doesn't.
    parts = [s.strip() for s in sql.split(";")]
    return [s for s in parts if s] or [sql]


async def ensure_postgres_database(url: str) -> None:
    """Create the database named in `url` if the server lacks it (one database per service)."""
    head, _, name = url.rpartition("/")
    name = name.split("?")[0]
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(f"{head}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another process created it at the same moment.
            pass
        finally:
            await admin.close()
    else:
        await conn.close()
