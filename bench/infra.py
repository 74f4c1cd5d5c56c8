"""The shared PostgreSQL and Kafka, this run's own names on them, and cleaning up after it."""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from saldo_platform.bus import kafka_admin
from saldo_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Servers:
    database_url: str  # …/postgres on the server
    kafka_bootstrap: str


def servers() -> Servers:
    """SALDO_DATABASE_URL / SALDO_KAFKA_BOOTSTRAP, else deploy/local/up.sh (idempotent)."""
    url, kafka = os.environ.get("SALDO_DATABASE_URL"), os.environ.get("SALDO_KAFKA_BOOTSTRAP")
    if not (url and kafka):
        out = subprocess.run([str(ROOT / "deploy/local/up.sh")], capture_output=False,
                             stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT).stdout
        found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        url, kafka = found["SALDO_DATABASE_URL"], found["SALDO_KAFKA_BOOTSTRAP"]
    return Servers(url, kafka)


def new_tag() -> str:
    """Prefix of this run's databases and topics, so nothing collides with parallel tests."""
    return f"bench{uuid.uuid4().hex[:8]}"


def settings(servers: Servers, tag: str) -> Settings:
    return Settings.from_env({
        "SALDO_MODE": "distributed", "SALDO_DATABASE_URL": servers.database_url,
        "SALDO_KAFKA_BOOTSTRAP": servers.kafka_bootstrap, "SALDO_DATABASE_PREFIX": tag,
        "SALDO_TOPIC_PREFIX": tag, "SALDO_VAR_DIR": str(RESULTS / tag / "var"),
    })


async def drop_databases(server_url: str, tag: str) -> list[str]:
    """Drop every database this run created (named `<tag>_…`)."""
    conn = await asyncpg.connect(server_url)
    try:
        names = [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{tag}\\_%")]
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return names
    finally:
        await conn.close()


async def delete_topics(bootstrap: str, tag: str) -> list[str]:
    async with kafka_admin(bootstrap) as admin:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{tag}.")]
        if mine:
            await admin.delete_topics(mine)
        return mine


def _first_line(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def pgbench_path() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return str(candidates[-1]) if candidates else None


async def machine(servers: Servers) -> dict[str, Any]:
    """What the figures were measured on."""
    conn = await asyncpg.connect(servers.database_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
        pg_settings = {name: await conn.fetchval(f"SHOW {name}")
                       for name in ("fsync", "synchronous_commit", "shared_buffers")}
    finally:
        await conn.close()
    jars = sorted((ROOT / os.environ.get("SALDO_CACHE_DIR", ".cache") / "kafka-libs").glob(
        "kafka-clients-*.jar"))
    kafka = re.sub(r"^kafka-clients-|\.jar$", "", jars[-1].name) if jars else "unknown"
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = re.search(r"MemTotal:\s+(\d+)", meminfo)
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()) \
        if Path("/proc/cpuinfo").exists() else None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "memory_gib": round(int(mem_kb.group(1)) / 1024 / 1024, 1) if mem_kb else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql_settings": pg_settings,
        "kafka": kafka,
        "java": _first_line(["java", "-version"]),
        "pgbench": _first_line([p, "--version"]) if (p := pgbench_path()) else None,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def busy_processes(limit: int = 8) -> list[str]:
    """The other processes by %CPU (ps: average over each one's lifetime): who shared the cores."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    me = str(os.getpid())
    lines = [line.strip() for line in out.splitlines()[1:]]
    return [line[:120] for line in lines if "-m bench" not in line and me not in line][:limit]


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuWatch:
    """How busy the whole machine was, and how much of that was this process, per phase."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self._start: tuple[tuple[int, int], float, float] | None = None

    def start(self) -> None:
        times = os.times()
        self._start = (_cpu_ticks(), times.user + times.system, time.monotonic())

    def stop(self, phase: str) -> None:
        assert self._start is not None
        (busy0, total0), own0, wall0 = self._start
        busy1, total1 = _cpu_ticks()
        times = os.times()
        wall = time.monotonic() - wall0
        cores = os.cpu_count() or 1
        self.phases[phase] = {
            "seconds": wall,
            "machine_busy": (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan,
            "bench_process_share_of_machine": (times.user + times.system - own0) / (wall * cores),
        }
