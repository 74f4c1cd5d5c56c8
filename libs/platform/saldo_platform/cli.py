"""`saldo`: the command line, and the composition root that wires the five services.

  saldo embedded                 all five services in one process (SQLite, in-process bus)
  saldo serve SERVICE            one service's API, relay and consumers (distributed mode)
  saldo relay SERVICE            only the relay;   saldo consume SERVICE: only the consumers
  saldo keys create ...          an API key for a business unit (printed once, stored hashed)
  saldo keys revoke KEY_ID       revoke a key;     saldo keys list: every key, without secrets
  saldo rebuild SERVICE          rebuild its projections from offset 0 and compare with live
  saldo reminders run [--date D] the reminders due today (invoicing; each service may bring
                                 commands of its own: `saldo --help` lists them)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from saldo_platform import telemetry
from saldo_platform.bus import LocalBus
from saldo_platform.http import problems
from saldo_platform.http.auth import ROLES, ApiKeys
from saldo_platform.logs import configure_logging
from saldo_platform.service import Command, ServiceRuntime, definitions
from saldo_platform.settings import SERVICES, Settings
from saldo_platform.sql import open_database


async def open_api_keys(settings: Settings) -> ApiKeys:
    db = open_database(settings.auth_database)
    await db.connect()
    keys = ApiKeys(db)
    await keys.setup()
    return keys


def host_app(settings: Settings, services: list[str], relay: bool = True,
             consumers: bool = True, announce: bool = False) -> FastAPI:
    """One HTTP app for the given services, each under `/<service>` (and at `/` if alone)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.setup("saldo" if len(services) > 1 else f"saldo-{services[0]}")
        # Whatever was opened is closed again, after the last request on shutdown, and also
        # when the start fails half-way; in reverse order (runtimes, then keys, then the bus).
        async with AsyncExitStack() as opened:
            bus = LocalBus(str(settings.var_dir / "bus.sqlite")) if settings.mode == "embedded" else None
            if bus is not None:
                settings.var_dir.mkdir(parents=True, exist_ok=True)
                await bus.start()
                opened.push_async_callback(bus.stop)
            keys = await open_api_keys(settings)
            opened.push_async_callback(keys.close)
            await keys.listen()  # a key revoked anywhere is refused here at once
            runtimes = []
            for name in services:
                runtime = ServiceRuntime(definitions()[name], settings, keys, bus)
                opened.push_async_callback(runtime.close)
                await runtime.open()
                runtimes.append(runtime)
                api = runtime.api()
                app.mount(f"/{runtime.name}", api)
                if len(services) == 1:
                    app.mount("/", api)
            for runtime in runtimes:
                await runtime.start(relay=relay, consumers=consumers)
            if announce:
                await _announce(settings, keys)
            yield

    app = FastAPI(title="Saldo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    problems.install(app)  # a path outside every service is a problem+json 404 too

    @app.get("/")
    async def index() -> dict[str, object]:
        return {"saldo": "billing back end", "services": {s: f"/{s}/docs" for s in services}}

    return app


async def _announce(settings: Settings, keys: ApiKeys) -> None:
    # Only the embedded demo keeps a key in plain text, so `make run` can show a ready one.
    demo = settings.var_dir / "demo-api-key.txt"
    if not demo.exists():
        demo.write_text(await keys.create("demo", ["admin"], "demo key from make run") + "\n")
    print(f"\nSaldo is running (embedded mode, data in {settings.var_dir}).", flush=True)
    print(f"  API docs: http://{_host}:{_port}/invoicing/docs  (and /payments, /refunds, /payouts, "
          "/accounting-sync)", flush=True)
    print(f"  API key for business unit 'demo' (role admin): {demo.read_text().strip()}", flush=True)
    print(f"  try: curl -H 'Authorization: Bearer {demo.read_text().strip()}' "
          f"http://{_host}:{_port}/invoicing/v1/invoices\n", flush=True)


_host, _port = "127.0.0.1", 8000


# On SIGTERM uvicorn stops accepting connections, lets requests in flight finish for up to this
# long, then runs the lifespan's shutdown (relay and consumers stop, pools close).
GRACEFUL_SHUTDOWN_S = 5


def _serve(app: FastAPI, host: str, port: int) -> None:
    global _host, _port
    _host, _port = host, port
    # After its graceful shutdown uvicorn raises the signal again for the handler that was there
    # before it. With the default one the process would die of SIGTERM (status 143); this one
    # makes a requested stop a normal exit (status 0), also before uvicorn took over the signal.
    signal.signal(signal.SIGTERM, _exit_normally)
    # log_config=None: uvicorn keeps the JSON logging configured by main() (logs.py).
    uvicorn.run(app, host=host, port=port, lifespan="on", log_config=None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)


def _exit_normally(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


async def _run_background(settings: Settings, service: str, relay: bool, consumers: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # from the start: a stop during start-up counts
        loop.add_signal_handler(sig, stop.set)
    keys = await open_api_keys(settings)
    runtime = ServiceRuntime(definitions()[service], settings, keys, None)
    try:
        await runtime.open()
        await runtime.start(relay=relay, consumers=consumers)
        print(f"saldo {service}: {'relay ' if relay else ''}{'consumers ' if consumers else ''}running",
              flush=True)
        await stop.wait()
    finally:
        await runtime.close()
        await keys.close()


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """`saldo keys create|revoke|list`; returns the exit status."""
    keys = await open_api_keys(settings)
    try:
        if args.action == "create":
            roles = [r.strip() for r in args.roles.split(",") if r.strip()]
            print(await keys.create(args.business_unit, roles, args.name))
        elif args.action == "revoke":
            if not await keys.revoke(args.key_id):
                print(f"saldo keys revoke: no API key with id {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        else:
            print(_table(await keys.list_keys(args.business_unit)))
        return 0
    finally:
        await keys.close()


def _table(rows: list[dict[str, Any]]) -> str:
    """API keys as aligned columns, times to the second."""
    header = ["key id", "business unit", "roles", "name", "created", "revoked"]

    def when(value: str | None) -> str:
        return datetime.fromisoformat(value).isoformat(timespec="seconds") if value else "-"

    lines = [header] + [[r["key_id"], r["business_unit"], r["roles"], r["name"] or "-",
                         when(r["created_at"]), when(r["revoked_at"])] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


async def _rebuild(settings: Settings, service: str, until: datetime | None) -> bool:
    from saldo_platform.rebuild import print_table, rebuild

    bus = None
    if settings.mode == "embedded":
        bus = LocalBus(str(settings.var_dir / "bus.sqlite"))
        await bus.start()
    keys = await open_api_keys(settings)
    runtime = ServiceRuntime(definitions()[service], settings, keys, bus)
    await runtime.open()
    await runtime.setup_projections()
    all_equal = True
    try:
        for projection in runtime.projections():
            if not projection.read_model:
                print(f"{service}: {projection.name} is a work queue, not a read model: not rebuilt",
                      file=sys.stderr)
                continue
            differences = await rebuild(runtime, projection, until)
            print_table(service, projection.name, differences)
            all_equal = all_equal and all(d.equal for d in differences)
    finally:
        await runtime.close()
        await keys.close()
        if bus is not None:
            await bus.stop()
    return all_equal


async def _service_command(settings: Settings, service: str, command: Command,
                           args: argparse.Namespace) -> int:
    """A service's own command, on its opened runtime: no relay, consumers or jobs running (what
    it saves is published by the service's running relay, as any command's events are)."""
    keys = await open_api_keys(settings)
    runtime = ServiceRuntime(definitions()[service], settings, keys, None)
    try:
        await runtime.open()
        await runtime.setup_projections()
        return await command.run(runtime, args)
    finally:
        await runtime.close()
        await keys.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="saldo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    embedded = sub.add_parser("embedded", help="run all services in one process")
    embedded.add_argument("--host", default="127.0.0.1")
    embedded.add_argument("--port", type=int, default=8000)
    serve = sub.add_parser("serve", help="run one service (distributed mode)")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--no-relay", action="store_true")
    serve.add_argument("--no-consumers", action="store_true")
    for name in ("relay", "consume"):
        p = sub.add_parser(name, help=f"run only the {name} loop of one service")
        p.add_argument("service", choices=SERVICES)
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="a new API key, printed once")
    create.add_argument("--business-unit", required=True)
    create.add_argument("--roles", default="operator", help=f"comma-separated: {', '.join(ROLES)}")
    create.add_argument("--name", default="")
    revoke = keys.add_parser("revoke", help="revoke a key: refused at once by every service")
    revoke.add_argument("key_id", help="the id in sk_<key id>_<secret>, as 'saldo keys list' shows")
    listing = keys.add_parser("list", help="every key with its business unit and roles, no secrets")
    listing.add_argument("--business-unit", default=None)
    rebuild = sub.add_parser("rebuild", help="rebuild projections from offset 0 and compare")
    rebuild.add_argument("service", choices=SERVICES)
    rebuild.add_argument("--until", type=datetime.fromisoformat, default=None,
                         help="only events that occurred at or before this ISO instant")
    for definition in definitions().values():
        for command in definition.commands:
            own = sub.add_parser(command.name, help=f"{command.help} ({definition.name})")
            own.set_defaults(service_command=(definition.name, command))
            command.add_arguments(own)
    args = parser.parse_args(argv)

    try:
        env = {**_env(), "SALDO_MODE": "embedded"} if args.command == "embedded" else None
        settings = Settings.from_env(env)
    except ValueError as e:
        parser.error(str(e))
    if argv is None:
        # A process of its own (the console script, `python -m`). A caller that passes argv runs
        # a command inside its own process (tests do), whose logging stays its own business.
        service = getattr(args, "service", None)
        configure_logging(f"saldo-{service}" if service else "saldo", settings.log_level)

    if args.command == "embedded":
        _serve(host_app(settings, list(SERVICES), announce=True), args.host, args.port)
    elif args.command == "serve":
        app = host_app(settings, [args.service], not args.no_relay, not args.no_consumers)
        _serve(app, args.host, args.port)
    elif args.command in ("relay", "consume") and settings.mode != "distributed":
        parser.error(f"'saldo {args.command}' runs one part of a service in distributed mode; set "
                     "SALDO_MODE=distributed with SALDO_DATABASE_URL and SALDO_KAFKA_BOOTSTRAP "
                     "(the embedded mode runs everything in 'saldo embedded')")
    elif args.command in ("relay", "consume"):
        relay = args.command == "relay"
        asyncio.run(_run_background(settings, args.service, relay=relay, consumers=not relay))
    elif args.command == "keys":
        sys.exit(asyncio.run(_keys(settings, args)))
    elif args.command == "rebuild":
        equal = asyncio.run(_rebuild(settings, args.service, args.until))
        sys.exit(0 if equal else 1)
    elif hasattr(args, "service_command"):
        service, command = args.service_command
        sys.exit(asyncio.run(_service_command(settings, service, command, args)))


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    main()
