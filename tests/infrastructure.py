"""Where the tests' PostgreSQL and Kafka come from, in the order DESIGN.md gives:

1. `SALDO_DATABASE_URL` / `SALDO_KAFKA_BOOTSTRAP` when set;
2. testcontainers, when a Docker engine answers;
3. otherwise the servers `deploy/local/up.sh` starts from Debian's and Maven Central's packages.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# What deploy/local/up.sh starts (postgres.sh, kafka.sh).
LOCAL_PG_PORT, LOCAL_KAFKA_PORT = 55432, 19092
LOCAL_DATABASE_URL = f"postgresql://saldo:saldo@127.0.0.1:{LOCAL_PG_PORT}/postgres"


@dataclass(frozen=True)
class Servers:
    database_url: str
    kafka_bootstrap: str
    source: str


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def servers() -> Iterator[Servers]:
    url, kafka = os.environ.get("SALDO_DATABASE_URL"), os.environ.get("SALDO_KAFKA_BOOTSTRAP")
    if url and kafka:
        yield Servers(url, kafka, "environment")
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16") as pg, KafkaContainer("apache/kafka:4.1.0").with_kraft() as kc:
            db = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
            yield Servers(db, kc.get_bootstrap_server(), "testcontainers")
        return
    if _listening(LOCAL_PG_PORT) and _listening(LOCAL_KAFKA_PORT):
        # deploy/local servers someone else started (another checkout, `make infra-up`):
        # use them and leave them running.
        yield Servers(LOCAL_DATABASE_URL, f"127.0.0.1:{LOCAL_KAFKA_PORT}", "deploy/local (running)")
        return
    started = subprocess.run([str(ROOT / "deploy/local/up.sh")], capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"deploy/local/up.sh failed:\n{started.stderr[-4000:]}")
    found = dict(line.split("=", 1) for line in started.stdout.split() if "=" in line)
    try:
        yield Servers(found["SALDO_DATABASE_URL"], found["SALDO_KAFKA_BOOTSTRAP"], "deploy/local")
    finally:
        if os.environ.get("SALDO_KEEP_SERVERS") != "1":
            subprocess.run([str(ROOT / "deploy/local/down.sh")], check=False, capture_output=True)
