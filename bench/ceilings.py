"""External ceilings: Kafka's own producer perf tool and pgbench, on the same servers."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg

from bench.infra import ROOT, pgbench_path
from bench.progress import say
from saldo_platform.sql import ensure_postgres_database

_PERF_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
    r"(?:, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th)?")


def kafka_producer_perf(bootstrap: str, topic: str, records: int,
                        record_size: int) -> dict[str, Any]:
    """deploy/local/kafka-producer-perf.sh with idempotence and acks=all, like Saldo's producer."""
    command = [str(ROOT / "deploy/local/kafka-producer-perf.sh"), "--bootstrap-server", bootstrap,
               "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
               "--throughput", "-1", "--producer-props", "acks=all", "enable.idempotence=true"]
    say(f"kafka producer perf: {records} records of {record_size} B")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    summaries = [m for line in done.stdout.splitlines() if (m := _PERF_SUMMARY.search(line))]
    if done.returncode != 0 or not summaries:
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout)[-2000:]}",
                "command": _shown(command)}
    last = summaries[-1]  # the final line is the whole run's summary
    return {
        "command": _shown(command),
        "records": int(last["records"]),
        "per_second": float(last["rps"]),
        "mb_per_second": float(last["mbps"]),
        "avg_latency_ms": float(last["avg"]),
        "max_latency_ms": float(last["max"]),
        "p50_ms": float(last["p50"]) if last["p50"] else None,
        "p99_ms": float(last["p99"]) if last["p99"] else None,
        "summary_line": last.group(0),
    }


PGBENCH_TABLE = """
CREATE TABLE IF NOT EXISTS bench_events (
    originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text,
    state bytea, notification_id bigserial NOT NULL,
    PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS bench_events_notification_id_idx
    ON bench_events (notification_id);
"""


async def prepare_pgbench(database_url: str) -> None:
    await ensure_postgres_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(PGBENCH_TABLE)
    finally:
        await conn.close()


def pgbench_script(state_bytes: int) -> str:
    """One single-row INSERT per transaction into a table shaped like eventsourcing's."""
    return ("INSERT INTO bench_events (originator_id, originator_version, topic, state) VALUES "
            f"(gen_random_uuid(), 1, 'bench:Event', decode(repeat('ab', {state_bytes}), 'hex'));\n")


def pgbench(database_url: str, seconds: int, clients: int, state_bytes: int) -> dict[str, Any]:
    """tps of pgbench's custom script (each transaction inserts one event-sized row).

    The table must exist: `prepare_pgbench` first.
    """
    binary = pgbench_path()
    if binary is None:
        return {"error": "pgbench not found (Debian: postgresql-contrib / postgresql-client)"}
    url = urlparse(database_url)
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    base = [binary, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres"]
    db = url.path.lstrip("/")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(pgbench_script(state_bytes))
    command = [*base, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
               "-f", script.name, db]
    say(f"pgbench: {clients} client(s), {seconds} s of single-row INSERTs")
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=seconds + 120)
    finally:
        Path(script.name).unlink(missing_ok=True)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if done.returncode != 0 or not tps:
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"}
    return {"command": _shown(command[:-3] + ["<script: one INSERT>", db]),
            "clients": clients, "seconds": seconds, "per_second": float(tps.group(1)),
            "latency_avg_ms": float(latency.group(1)) if latency else None}


def _shown(command: list[str]) -> str:
    return " ".join(str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c
                    for c in command)
