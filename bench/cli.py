"""`python -m bench`: parse the options, run both parts, report, clean up."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from bench import infra, report
from bench.latency import http_latency
from bench.progress import say
from bench.throughput import throughput


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--events", type=int, default=20000,
                   help="events the relay publishes (and records for the Kafka perf tool)")
    p.add_argument("--commands", type=int, default=200, help="commands per service in a burst")
    p.add_argument("--concurrency", type=int, default=8, help="commands in flight in a burst")
    p.add_argument("--iterations", type=int, default=20,
                   help="walking-skeleton cases timed one at a time")
    p.add_argument("--warmup", type=int, default=2, help="uncounted cases first")
    p.add_argument("--poll-ms", type=float, default=10, help="read-model polling interval")
    p.add_argument("--step-timeout", type=float, default=60, help="seconds before a step fails")
    p.add_argument("--ceiling-seconds", type=float, default=10,
                   help="duration of each append loop and pgbench run")
    p.add_argument("--skip-ceilings", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep this run's databases and topics")
    return p.parse_args(argv)


def _git() -> str:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=infra.ROOT).stdout.strip()

    dirty = [line for line in run("status", "--porcelain").splitlines()
             if not line[3:].startswith("bench/")]
    return run("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


async def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    servers = infra.servers()
    tag = infra.new_tag()
    latency_tag = f"{tag}l"
    settings = infra.settings(servers, tag)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "run": {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "tag": tag,
                "command": " ".join(["python -m bench", *argv]), "git": _git(),
                "options": vars(args), "load_before": infra.load_average(),
                "busy_processes_at_start": infra.busy_processes()},
        "machine": await infra.machine(servers),
    }
    say(f"run {tag}: PostgreSQL {servers.database_url.rpartition('@')[2]}, "
        f"Kafka {servers.kafka_bootstrap}")
    cpu = infra.CpuWatch()
    results["run"]["cpu"] = cpu.phases
    try:
        cpu.start()
        results["throughput"] = await throughput(servers, settings, tag, args)
        cpu.stop("throughput")
        if not args.skip_latency:
            cpu.start()
            # Fresh databases and topics: the services must not first work through the
            # throughput phase's backlog of events.
            results["latency"] = await http_latency(
                servers, latency_tag, infra.RESULTS / tag / "logs", args.iterations, args.warmup,
                args.commands, args.concurrency, args.poll_ms / 1000, args.step_timeout)
            cpu.stop("latency")
    finally:
        results["run"]["load_after"] = infra.load_average()
        results["run"]["seconds"] = (datetime.now(UTC) - started).total_seconds()
        if not args.keep:
            say("dropping this run's databases and topics")
            for each in (tag, latency_tag):
                await infra.drop_databases(servers.database_url, each)
                await infra.delete_topics(servers.kafka_bootstrap, each)
    return results


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    # Like a service process, but quiet: spans are recorded (SDK tracer), logs only warnings.
    os.environ.setdefault("SALDO_LOG_LEVEL", "WARNING")
    from saldo_platform import logs, telemetry

    logs.configure_logging("saldo-bench", os.environ["SALDO_LOG_LEVEL"])
    telemetry.setup("saldo-bench")
    results = asyncio.run(run(args, argv))
    stem = infra.RESULTS / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{results['run']['tag']}"
    results["plot"] = report.plot(results, stem.with_suffix(".png"))
    if results["plot"] is None:
        say("matplotlib is not installed: no plot (the JSON and the table have everything)")
    report.write_json(results, stem.with_suffix(".json"))
    say(f"results: {stem.with_suffix('.json')}")
    print(report.markdown(results))
