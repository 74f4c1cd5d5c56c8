"""Part 2: the five services as separate processes (distributed mode), driven over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.bursts import run_bursts
from bench.client import Client
from bench.infra import Servers
from bench.progress import say
from bench.skeleton import run_cases
from bench.stats import Latency
from tests.support import distributed_env, start_distributed


async def http_latency(servers: Servers, tag: str, logs: Path, iterations: int, warmup: int,
                       commands: int, concurrency: int, poll_s: float,
                       timeout_s: float) -> dict[str, Any]:
    # WARNING: the services' INFO logging would be part of what is measured otherwise.
    env = distributed_env(servers.database_url, servers.kafka_bootstrap, tag,
                          {"SALDO_LOG_LEVEL": "WARNING"})
    env.pop("SALDO_TRACE_FILE", None)
    say(f"starting the five services (logs in {logs})")
    saldo = await start_distributed(env, logs)
    try:
        client = Client(saldo, poll_s=poll_s, timeout_s=timeout_s)
        say(f"walking skeleton: {warmup} warm-up + {iterations} measured cases, "
            f"polling every {poll_s * 1000:.0f} ms")
        samples, failures, warmups = await run_cases(client, tag, iterations, warmup, say)
        single = {
            "steps_ms": {step: Latency.of_seconds(s).as_dict() for step, s in samples.items()},
            "commands_ms": {svc: Latency.of_seconds(s).as_dict()
                            for svc, s in sorted(client.commands.items())},
            "queries_ms": {svc: Latency.of_seconds(s).as_dict()
                           for svc, s in sorted(client.queries.items())},
            "statuses": {svc: {str(k): v for k, v in sorted(c.items())}
                         for svc, c in sorted(client.statuses.items())},
            "failures": failures,
            "warmup_steps_ms": [{step: s * 1000 for step, s in case.items()} for case in warmups],
        }
        say(f"bursts: {commands} commands per service, {concurrency} at a time")
        bursts = await run_bursts(client, tag, commands, concurrency)
        return {"single_cases": single, "bursts": bursts, "poll_ms": poll_s * 1000}
    finally:
        say("stopping the services")
        saldo.stop()
        await saldo.client.aclose()
