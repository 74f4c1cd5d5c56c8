"""Operations: logs are JSON lines, and SIGTERM stops a service cleanly (issue "Conventions").

A `saldo serve` process told to stop (SIGTERM, as Kubernetes and Docker do) stops accepting
connections, answers the request it is in the middle of, stops its relay and consumers, closes
its pools and exits with status 0. `saldo relay` and `saldo consume` stop the same way. Every
line such a process writes to stderr, uvicorn's included, is one JSON object.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from saldo_platform.logs import JsonFormatter
from saldo_platform.settings import Settings
from tests.support import Process, create_key, eventually, free_port, wait_healthy

# A hang guard, not a performance requirement: it takes about a second; 8 s stays below the 10 s
# after which ServiceRuntime.close() gives up on a loop that ignores the stop and cancels it.
STOPPED_WITHIN_S = 8.0


def log_lines(process: Process, prints: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The process's log records. Its stdout shares the file (tests.support.Process), so lines
    starting with one of `prints` (what the command prints for people) are left out."""
    lines = [line for line in process.output().splitlines() if line and not line.startswith(prints)]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return records


def assert_well_formed(records: list[dict[str, Any]], service: str) -> None:
    assert records, "nothing was logged"
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert datetime.fromisoformat(record["time"]).utcoffset() == timedelta(0), record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
        assert record["service"] == service, record


def troubles(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Warnings and errors of Saldo's own code or uvicorn's (a loop that would not stop, a failed
    close). aiokafka's are left out: it reports a group coordinator still being elected on a
    fresh broker as an error, and retries."""
    return [r for r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")
            and r["logger"].startswith(("saldo", "uvicorn"))]


async def exit_status(process: Process) -> int:
    assert process.popen is not None
    try:
        return await asyncio.to_thread(process.popen.wait, STOPPED_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"saldo {' '.join(process.args)} still running {STOPPED_WITHIN_S} s after "
                    f"SIGTERM:\n{process.output()[-3000:]}")


async def logged(process: Process, text: str) -> None:
    async def seen() -> bool:
        return text in process.output()

    await eventually(seen, timeout=60, what=f"{text!r} in the output of saldo {process.args[0]}")


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    port = free_port()
    process = Process(["serve", "payments", "--port", str(port)], env, tmp_path / "payments.log").start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_healthy(client, f"http://127.0.0.1:{port}/payments", process)
        key = create_key(env, "bu_ops")

        # A request whose body is sent only after SIGTERM: with `Expect: 100-continue` uvicorn
        # says "100 Continue" once the app asks for the body, so the request is provably in
        # flight (authenticated, inside the idempotency middleware) when the signal arrives.
        # The path is no route of the service: the answer is the service's 404 problem, which
        # needs the same middleware, database and event store as any command.
        path = "/payments/v1/in-flight-during-shutdown"
        body = b'{"probe": true}'
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Idempotency-Key: in-flight-1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert interim.startswith(b"HTTP/1.1 100"), interim

        assert process.popen is not None
        process.popen.send_signal(signal.SIGTERM)
        await logged(process, "Waiting for connections to close")
        with pytest.raises(OSError):  # no new connections once shutting down
            await asyncio.open_connection("127.0.0.1", port)

        writer.write(body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)  # the server closes after answering
        writer.close()
        assert answer.startswith(b"HTTP/1.1 404"), answer
        assert b"application/problem+json" in answer, answer

        assert await exit_status(process) == 0, process.output()[-3000:]
    finally:
        process.stop()

    records = log_lines(process)
    assert_well_formed(records, "saldo-payments")
    uvicorn_messages = [r["message"] for r in records if r["logger"].startswith("uvicorn")]
    assert "Application shutdown complete." in uvicorn_messages  # relay, consumers, pools closed
    # uvicorn logs the access inside the request's server span: the line names its trace.
    access = [r for r in records if r["logger"] == "uvicorn.access" and f"POST {path}" in r["message"]]
    assert len(access) == 1 and " 404" in access[0]["message"], uvicorn_messages
    assert len(access[0]["trace_id"]) == 32 and len(access[0]["span_id"]) == 16, access
    assert not troubles(records)


async def relay_lock_held(env: dict[str, str], service: str) -> None:
    """Until some relay of `service` holds its lock (relay.py): asked without waiting for it."""
    conn = await asyncpg.connect(Settings.from_env(env).service_database(service))
    name = f"relay:{service}"

    async def held() -> bool:
        if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
            return False
        return True

    try:
        await eventually(held, timeout=60, what=f"a relay of {service} to hold its lock")
    finally:
        await conn.close()


async def test_sigterm_stops_relays_and_consumers_promptly(env: dict[str, str], tmp_path: Path) -> None:
    """`saldo relay` and `saldo consume` stop at once, and so does a second relay still waiting
    for the first one's lock (as in a rolling update, where the old replica keeps publishing)."""

    def start(command: str, n: int = 0) -> Process:
        return Process([command, "payments"], env, tmp_path / f"{command}-{n}.log").start()

    leader, consumers = start("relay"), start("consume")
    standby: Process | None = None
    try:
        await logged(leader, "saldo payments: relay running")
        await relay_lock_held(env, "payments")
        standby = start("relay", 1)
        await logged(standby, "saldo payments: relay running")
        await logged(consumers, "saldo payments: consumers running")

        assert standby.popen is not None and leader.popen is not None
        standby.popen.send_signal(signal.SIGTERM)
        assert await exit_status(standby) == 0, standby.output()[-3000:]
        assert leader.popen.poll() is None  # the standby never got the lock: it gave up waiting

        for process in (leader, consumers):
            assert process.popen is not None
            process.popen.send_signal(signal.SIGTERM)
        for process in (leader, consumers):
            assert await exit_status(process) == 0, process.output()[-3000:]
    finally:
        for running in (leader, consumers, standby):
            if running is not None:
                running.stop()
    assert standby is not None
    for process in (leader, consumers, standby):
        records = log_lines(process, prints=("saldo payments: ",))
        if records:  # at INFO these commands may have nothing to say
            assert_well_formed(records, "saldo-payments")
        assert not troubles(records)


def test_a_log_record_is_one_json_line_with_its_span_and_exception() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("saldo-test"))
    logger = logging.getLogger("saldo.test.operations")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("request") as span:
            try:
                raise ValueError("line one\nline two")
            except ValueError:
                logger.exception("failed: %s", "quoted \"text\"")
        logger.warning("outside any span")
    finally:
        logger.removeHandler(handler)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "ERROR" and first["logger"] == "saldo.test.operations"
    assert first["message"] == 'failed: quoted "text"' and first["service"] == "saldo-test"
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "ValueError: line one\nline two" in first["exc_info"]
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert "trace_id" not in second and "exc_info" not in second


def test_the_log_level_comes_from_saldo_log_level() -> None:
    assert Settings.from_env({}).log_level == "INFO"
    assert Settings.from_env({"SALDO_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(ValueError, match="SALDO_LOG_LEVEL"):
        Settings.from_env({"SALDO_LOG_LEVEL": "chatty"})
